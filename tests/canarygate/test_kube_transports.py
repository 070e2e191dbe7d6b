"""connect()'s two transports against the sandbox API: the light one is used when the kubeconfig
allows it and falls back to the official client otherwise (impersonation, https proxies; broken
credentials are an error); it keeps one connection alive across requests, is safe to share between threads,
retries once on a kept-alive connection the server closed, supports tokenFile and exec plugins
(relative paths), and leaves no key material on disk. connect_service wraps connect.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import threading
from pathlib import Path

import pytest
import yaml

from canarygate import errors
from canarygate.kube import connect, identity, light
from canarygate.kube.service import connect_service


def light_conn(path, **settings) -> connect.Connection:
    return connect.connect(connect.Settings(kubeconfig=str(path), transport=connect.LIGHT, **settings))


def edit(kubeconfig, tmp_path, change, name="config") -> str:
    config = yaml.safe_load(Path(kubeconfig).read_text())
    change(config)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_light_is_used_when_it_can_be(kubeconfig, apiserver):
    conn = light_conn(kubeconfig)
    assert conn.transport == connect.LIGHT and isinstance(conn.kube.transport, light.LightTransport)
    assert (conn.server, conn.context) == (apiserver.url, "sandbox")
    assert identity.whoami(conn.kube) == "admin"
    assert connect.connect(connect.Settings(kubeconfig=kubeconfig)).transport == connect.OFFICIAL


def test_light_falls_back_to_the_official_client(kubeconfig, tmp_path):
    provider = edit(
        kubeconfig,
        tmp_path,
        lambda c: c["users"][0]["user"].update({"auth-provider": {"name": "oidc", "config": {"id-token": "x"}}}),
        "provider",
    )
    assert light_conn(provider).transport == connect.OFFICIAL
    # Credentials that cannot be loaded are an error in kubectl's words, not a fallback.
    broken = edit(
        kubeconfig,
        tmp_path,
        lambda c: c["users"][0]["user"].update(
            {"token": None, "client-certificate": "/no.crt", "client-key": "/no.key"}
        ),
    )
    with pytest.raises(
        errors.ConfigError, match=r"unable to read client-cert /no\.crt for sandbox-admin due to no such"
    ):
        light_conn(broken)


def test_an_https_proxy_means_the_official_client_with_that_proxy(kubeconfig, tmp_path, monkeypatch):
    """The light transport tunnels through http proxies only; the official client reads no proxy from
    the environment by itself, so connect hands it the one Go's rules pick."""
    monkeypatch.setenv("HTTPS_PROXY", "https://proxy.gate.invalid:3128")
    conn = light_conn(
        edit(
            kubeconfig,
            tmp_path,
            lambda c: c["clusters"][0]["cluster"].update({"server": "https://api.gate.invalid:6443"}),
        )
    )
    assert conn.transport == connect.OFFICIAL
    assert conn.kube.transport.api_client.configuration.proxy == "https://proxy.gate.invalid:3128"


def test_one_connection_kept_alive_and_shared_by_threads(kubeconfig, monkeypatch, apiserver):
    opened = []
    original = light.LightTransport._new

    def counting(self):
        opened.append(1)
        return original(self)

    monkeypatch.setattr(light.LightTransport, "_new", counting)
    kube = light_conn(kubeconfig).kube
    for _ in range(5):
        kube.request("GET", "/api/v1/namespaces/default")
    assert len(opened) == 1
    failures = []

    def reader():
        try:
            for _ in range(10):
                assert kube.request("GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"
        except Exception as e:  # noqa: BLE001 - reported below
            failures.append(e)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(opened) == 1


def test_a_kept_alive_connection_the_server_closed_is_retried(kubeconfig, apiserver):
    kube = light_conn(kubeconfig).kube
    kube.request("GET", "/api/v1/namespaces/default")
    apiserver.faults.down = True  # drops every open connection
    apiserver.faults.down = False
    assert kube.request("GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_token_file_and_exec_plugin_with_relative_paths(kubeconfig, tmp_path, apiserver):
    token = yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]["token"]
    (tmp_path / "bin").mkdir()
    (tmp_path / "token").write_text(token + "\n")
    plugin = tmp_path / "bin" / "get-token"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": token}}
    plugin.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(credential))})\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)

    def from_file(c):
        c["users"][0]["user"] = {"tokenFile": "token"}

    def from_plugin(c):
        c["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "./bin/get-token",
                "interactiveMode": "Never",
            }
        }

    for change in (from_file, from_plugin):
        conn = light_conn(edit(kubeconfig, tmp_path, change))
        assert conn.transport == connect.LIGHT
        assert identity.whoami(conn.kube) == "admin"


@pytest.mark.parametrize("transport", [connect.LIGHT, connect.OFFICIAL])
def test_exec_env_without_value_or_null_is_the_empty_string(kubeconfig, tmp_path, apiserver, transport):
    """kubectl reads ``env: [{name: AWS_PROFILE}]`` and ``value: null`` as "" (client-go's decoding): so do we."""
    token = yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]["token"]
    plugin = tmp_path / "get-token"
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": token}}
    plugin.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        "seen = [os.environ.get(k) for k in ('AWS_PROFILE', 'B', 'C')]\n"
        "if seen != ['', '', 'c']: sys.exit(f'unexpected env {seen}')\n"
        f"print({json.dumps(json.dumps(credential))})\n"
    )
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)

    def with_env(c):
        c["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
                "env": [{"name": "AWS_PROFILE"}, {"name": "B", "value": None}, {"name": "C", "value": "c"}],
            }
        }

    conn = connect.connect(connect.Settings(kubeconfig=edit(kubeconfig, tmp_path, with_env), transport=transport))
    assert conn.transport == transport
    assert identity.whoami(conn.kube) == "admin"


def test_inline_client_certificates_leave_nothing_on_disk(tmp_path, monkeypatch):
    import tempfile

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("alice")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    resolved_user = {
        "client-certificate-data": base64.b64encode(cert.cert_chain_pems[0].bytes()).decode(),
        "client-key-data": base64.b64encode(cert.private_key_pem.bytes()).decode(),
    }
    from canarygate.kube.kubeconfig import Resolved

    resolved = Resolved(
        "ctx",
        {},
        "c",
        {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True},
        "alice",
        resolved_user,
        "default",
    )
    where = light.endpoint(resolved)
    assert where.ssl_context is not None and "Authorization" not in where.headers
    assert os.listdir(tmp_path) == []


def test_connect_service_wraps_connect(kubeconfig, tmp_path, monkeypatch, apiserver):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "missing"), kubeconfig]))
    kube, url = connect_service(timeout=5.0)
    assert url == apiserver.url and kube.timeout == 5.0
    assert identity.whoami(kube) == "admin"
    assert not isinstance(kube.transport, light.LightTransport)  # services refresh credentials: official
    with pytest.raises(errors.ConfigError, match="no kubeconfig found"):
        connect_service(kubeconfig=str(tmp_path / "nothing"))
    with pytest.raises(errors.ConfigError, match='context "nope" not found'):
        connect_service(kubeconfig=kubeconfig, context="nope")
