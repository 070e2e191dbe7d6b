"""A small read-only API client on the standard library, for shell completion.

Completion runs on every TAB and must not import the ``kubernetes`` client (a few hundred ms). This
reads the kubeconfig as kubectl does (``KUBECONFIG`` list, first file wins; context, cluster, user
and namespace overrides) and supports tokens, token files, client certificates, CA bundles,
``insecure-skip-tls-verify`` and exec credential plugins. Anything it cannot do raises
:class:`LiteError`; completion then simply offers nothing.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Any


class LiteError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    server: str
    namespace: str
    headers: dict[str, str]
    ssl_context: ssl.SSLContext | None
    context: str = ""
    user: str = ""


def _load(paths: list[str]) -> tuple[dict[str, Any], str]:
    import yaml

    merged: dict[str, Any] = {"clusters": {}, "contexts": {}, "users": {}, "current-context": ""}
    first_dir = ""
    for path in paths:
        path = os.path.expanduser(path)
        try:
            with open(path) as f:
                data = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError):
            continue
        base = os.path.dirname(os.path.abspath(path))
        first_dir = first_dir or base
        if not merged["current-context"]:
            merged["current-context"] = data.get("current-context") or ""
        for section, key in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
            for entry in data.get(section) or ():
                name = entry.get("name")
                if name and name not in merged[section]:
                    merged[section][name] = (dict(entry.get(key) or {}), base)
    return merged, first_dir


def kubeconfig_paths(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    return [p for p in env.split(os.pathsep) if p] if env else ["~/.kube/config"]


def names(explicit: str | None, section: str) -> list[str]:
    """Names of the kubeconfig's contexts, clusters or users."""
    merged, _ = _load(kubeconfig_paths(explicit))
    return sorted(merged[section])


def _file(value: str, base: str) -> str:
    return value if os.path.isabs(value) else os.path.join(base, os.path.expanduser(value))


def _data_file(data: str) -> str:
    handle = tempfile.NamedTemporaryFile("wb", suffix=".pem", delete=False)
    with handle:
        handle.write(base64.b64decode(data))
    return handle.name


def target(*, kubeconfig: str | None = None, context: str | None = None, cluster: str | None = None,
           user: str | None = None, namespace: str | None = None) -> Target:
    merged, _ = _load(kubeconfig_paths(kubeconfig))
    context_name = context or merged["current-context"]
    if context_name not in merged["contexts"]:
        raise LiteError(f"no context {context_name!r}")
    ctx, _ = merged["contexts"][context_name]
    cluster_name, user_name = cluster or ctx.get("cluster"), user or ctx.get("user")
    if cluster_name not in merged["clusters"]:
        raise LiteError(f"no cluster {cluster_name!r}")
    cl, cl_base = merged["clusters"][cluster_name]
    usr, usr_base = merged["users"].get(user_name, ({}, ""))
    server = cl.get("server") or ""
    if not server:
        raise LiteError("no server")
    unsupported = [k for k in ("proxy-url", "tls-server-name") if cl.get(k)] + [
        k for k in ("auth-provider", "as", "as-groups", "impersonate") if usr.get(k)]
    if unsupported or any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")):
        raise LiteError(f"not supported here: {', '.join(unsupported) or 'proxy'}")
    headers: dict[str, str] = {"Accept": "application/json"}
    ssl_context = None
    if server.startswith("https"):
        # NB: the system CA store (~20 ms to load) only when the kubeconfig names no CA of its own.
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if not (cl.get("certificate-authority-data") or cl.get("certificate-authority")):
            ssl_context.load_default_certs()
        if cl.get("insecure-skip-tls-verify"):
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        elif cl.get("certificate-authority-data"):
            ssl_context.load_verify_locations(cadata=base64.b64decode(cl["certificate-authority-data"]).decode())
        elif cl.get("certificate-authority"):
            ssl_context.load_verify_locations(cafile=_file(cl["certificate-authority"], cl_base))
    cert = key = None
    if usr.get("client-certificate-data"):
        cert = _data_file(usr["client-certificate-data"])
    elif usr.get("client-certificate"):
        cert = _file(usr["client-certificate"], usr_base)
    if usr.get("client-key-data"):
        key = _data_file(usr["client-key-data"])
    elif usr.get("client-key"):
        key = _file(usr["client-key"], usr_base)
    token = usr.get("token")
    if not token and usr.get("tokenFile"):
        with open(_file(usr["tokenFile"], usr_base)) as f:
            token = f.read().strip()
    if not token and usr.get("exec"):
        status = _exec_credential(usr["exec"], usr_base)
        token = status.get("token")
        if status.get("clientCertificateData"):
            cert = _pem_file(status["clientCertificateData"])
            key = _pem_file(status.get("clientKeyData", ""))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif usr.get("username"):
        pair = f"{usr['username']}:{usr.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if cert and ssl_context is not None:
        ssl_context.load_cert_chain(cert, key)
    return Target(server.rstrip("/"), namespace or ctx.get("namespace") or "default", headers, ssl_context,
                  context_name, user_name or "")


def _pem_file(text: str) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)
    with handle:
        handle.write(text)
    return handle.name


def _exec_credential(spec: dict[str, Any], base: str) -> dict[str, Any]:
    command = spec.get("command") or ""
    if os.sep in command and not os.path.isabs(command):
        command = os.path.join(base, command)
    env = dict(os.environ)
    for item in spec.get("env") or ():
        env[item["name"]] = item["value"]
    info = {"apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"),
            "kind": "ExecCredential", "spec": {"interactive": False}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        out = subprocess.run([command, *(spec.get("args") or ())], env=env, capture_output=True, timeout=10,
                             check=True, stdin=subprocess.DEVNULL).stdout
        return json.loads(out).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        raise LiteError(f"exec credential plugin failed: {e}") from e


def get(where: Target, path: str, *, timeout: float = 3.0) -> dict[str, Any]:
    request = urllib.request.Request(where.server + path, headers=where.headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=where.ssl_context) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as e:
        raise LiteError(str(e)) from e
