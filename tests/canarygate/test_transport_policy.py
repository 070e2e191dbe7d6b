"""The transport's refusals, on both transports: no credential of any kind over plain http (and an
exec plugin is not even run), a CA together with insecure-skip-tls-verify, an exec plugin that
fails in any way (an error naming it, never a request without credentials), and no secret in any
message (plugin stderr, a server that echoes the token, YAML and type errors, proxy passwords).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys

import pytest
from helpers import kubeconfigs

from canarygate import errors
from canarygate.kube import connect, kubeconfig, light

from .test_transport_bench import RecordingServer, tls_pair

TOKEN = "sekret-token-5b1e9d7c"
CA, SERVER_TLS = tls_pair("127.0.0.1")
CA_DATA = base64.b64encode(CA.cert_pem.bytes()).decode()
BOTH = pytest.mark.parametrize("transport", [connect.LIGHT, connect.OFFICIAL])


def write(tmp_path, cluster, user, name="config") -> str:
    return kubeconfigs.write(tmp_path / name, cluster, user)


def plugin(tmp_path, body: str, name="plugin") -> str:
    """An exec plugin (a Python script) that first leaves a mark that it ran."""
    path = tmp_path / name
    path.write_text(
        f"#!{sys.executable}\nimport sys, time, json\nopen({str(tmp_path / 'ran')!r}, 'a').write('x')\n" + body + "\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def exec_user(command: str, **extra) -> dict:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": command,
            "interactiveMode": "Never",
            **extra,
        }
    }


def use(path: str, transport: str):
    conn = connect.connect(connect.Settings(kubeconfig=path, transport=transport, request_timeout=5))
    return conn, conn.kube.request("GET", "/api/v1/namespaces/default")


GOOD = (
    "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', "
    f"'status': {{'token': {TOKEN!r}}}}}))"
)


@BOTH
@pytest.mark.parametrize("scheme", ["http", "HTTP", "Http", ""])
@pytest.mark.parametrize(
    "kind", ["token", "tokenFile", "basic auth", "exec plugin", "client certificate", "auth-provider"]
)
def test_no_credential_of_any_kind_over_plain_http(tmp_path, transport, scheme, kind):
    cert = CA.issue_cert("alice")
    users = {
        "token": {"token": TOKEN},
        "tokenFile": {"tokenFile": str(tmp_path / "token")},
        "basic auth": {"username": "alice", "password": TOKEN},
        "exec plugin": exec_user(plugin(tmp_path, GOOD)),
        "client certificate": {
            "client-certificate-data": base64.b64encode(cert.cert_chain_pems[0].bytes()).decode(),
            "client-key-data": base64.b64encode(cert.private_key_pem.bytes()).decode(),
        },
        "auth-provider": {"auth-provider": {"name": "oidc", "config": {"id-token": TOKEN}}},
    }
    (tmp_path / "token").write_text(TOKEN)
    with RecordingServer() as server:
        where = f"{scheme}://127.0.0.1:{server.port}" if scheme else f"127.0.0.1:{server.port}"
        with pytest.raises(errors.ConfigError) as e:
            use(write(tmp_path, {"server": where}, users[kind]), transport)
        assert server.requests == []
    text = str(e.value)
    named = "token" if kind == "tokenFile" else kind
    assert f'refusing to send the credentials of user "u" ({named}) over plain http to {where}' in text, text
    assert "https://" in text and TOKEN not in text
    assert not (tmp_path / "ran").exists()  # the plugin was not even run


@BOTH
def test_anonymous_over_plain_http_still_works(tmp_path, transport):
    with RecordingServer() as server:
        _, answer = use(write(tmp_path, {"server": server.url()}, {}), transport)
    assert answer["metadata"]["name"] == "default" and server.authorizations == [""]


@BOTH
@pytest.mark.parametrize("ca", ["certificate-authority", "certificate-authority-data"])
def test_a_ca_with_insecure_skip_tls_verify_is_refused_as_kubectl_refuses_it(tmp_path, transport, ca):
    CA.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    value = str(tmp_path / "ca.pem") if ca == "certificate-authority" else CA_DATA
    with RecordingServer(tls=SERVER_TLS) as server:
        path = write(tmp_path, {"server": server.url(), ca: value, "insecure-skip-tls-verify": True}, {"token": TOKEN})
        with pytest.raises(
            errors.ConfigError, match="specifying a root certificates file with the insecure flag is not allowed"
        ):
            use(path, transport)
        assert server.requests == []


FAILING = [
    (
        "non-zero exit",
        f"sys.stderr.write('login failed; cached token={TOKEN}\\nAuthorization: Bearer {TOKEN}\\n'); sys.exit(3)",
        "failed with exit code 3",
    ),
    ("bad JSON", f"print('{{not json {TOKEN}')", "printed no ExecCredential JSON"),
    ("not an ExecCredential", f"print(json.dumps({{'token': {TOKEN!r}}}))", "not an ExecCredential"),
    (
        "no credential",
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', 'kind': 'ExecCredential', 'status': {}}))",
        "didn't return a token or cert/key pair",
    ),
    (
        "key without cert",
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
        "'kind': 'ExecCredential', 'status': {'clientKeyData': 'x'}}))",
        "didn't return a token or cert/key pair",
    ),
    (
        "other apiVersion",
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1beta1', "
        f"'kind': 'ExecCredential', 'status': {{'token': {TOKEN!r}}}}}))",
        "is configured to use API version client.authentication.k8s.io/v1, plugin returned version "
        "client.authentication.k8s.io/v1beta1",
    ),
    ("timeout", "time.sleep(30)", "did not finish within 0.5 s"),
]


@pytest.mark.parametrize("body, words", [r[1:] for r in FAILING], ids=[r[0] for r in FAILING])
def test_a_failing_exec_plugin_is_an_error_naming_it(tmp_path, monkeypatch, body, words):
    monkeypatch.setattr(light, "EXEC_TIMEOUT", 0.5)
    command = plugin(tmp_path, body, "get-token")
    with RecordingServer(tls=SERVER_TLS) as server:
        with pytest.raises(errors.ConfigError) as e:
            use(
                write(tmp_path, {"server": server.url(), "certificate-authority-data": CA_DATA}, exec_user(command)),
                connect.LIGHT,
            )
        assert server.requests == []  # never "carry on without credentials"
    text = str(e.value)
    assert f'the exec credential plugin "{command}" of user "u"' in text and words in text, text
    assert TOKEN not in text, text
    assert (tmp_path / "ran").exists()


def test_a_failing_plugins_stderr_is_shown_scrubbed(tmp_path):
    command = plugin(
        tmp_path,
        "sys.stderr.write('run: aws sso login --profile dev\\n"
        f"debug: token={TOKEN} password: hunter22 eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl\\n'); "
        "sys.exit(1)",
    )
    with pytest.raises(errors.ConfigError) as e:
        light.endpoint(
            kubeconfig.resolve(
                kubeconfig=write(
                    tmp_path,
                    {"server": "https://127.0.0.1:1", "certificate-authority-data": CA_DATA},
                    exec_user(command),
                )
            )
        )
    text = str(e.value)
    assert "run: aws sso login --profile dev" in text  # what the user must do is kept
    for secret in (TOKEN, "hunter22", "eyJhbGciOi"):
        assert secret not in text, text


def test_a_missing_plugin_names_it_with_its_install_hint(tmp_path):
    path = write(
        tmp_path,
        {"server": "https://127.0.0.1:1", "certificate-authority-data": CA_DATA},
        exec_user("no-such-plugin-xyz", installHint="install it with: brew install xyz"),
    )
    with pytest.raises(errors.ConfigError) as e:
        use(path, connect.LIGHT)
    assert str(e.value) == (
        'the exec credential plugin "no-such-plugin-xyz" of user "u": executable '
        "no-such-plugin-xyz not found\ninstall it with: brew install xyz"
    )


def test_the_official_client_never_carries_on_without_the_plugins_credential(tmp_path):
    """The official client would log a failing plugin and send the request without credentials: not with us."""
    command = plugin(tmp_path, "sys.exit(3)")
    with RecordingServer(tls=SERVER_TLS) as server:
        path = write(tmp_path, {"server": server.url(), "certificate-authority-data": CA_DATA}, exec_user(command))
        with pytest.raises(errors.ConfigError) as e:
            use(path, connect.OFFICIAL)
        assert server.requests == []
    # NB: our exec reader runs the plugin first (a client key must stay in memory), so the message is the light
    # transport's own
    assert str(e.value) == f'the exec credential plugin "{command}" of user "u" failed with exit code 3'


@BOTH
def test_a_server_that_echoes_the_token_does_not_get_it_printed(tmp_path, transport):
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 403,
        "reason": "Forbidden",
        "message": f"forbidden: the token {TOKEN} (Authorization: Bearer {TOKEN}) may not get namespaces",
    }
    with RecordingServer(tls=SERVER_TLS, answer=(403, json.dumps(status).encode())) as server:
        path = write(tmp_path, {"server": server.url(), "certificate-authority-data": CA_DATA}, {"token": TOKEN})
        with pytest.raises(errors.Forbidden) as e:
            use(path, transport)
        assert server.authorizations == [f"Bearer {TOKEN}"]
    assert TOKEN not in str(e.value) and "may not get namespaces" in str(e.value), str(e.value)


def test_yaml_and_type_errors_do_not_quote_the_token(tmp_path):
    path = tmp_path / "config"
    path.write_text(f"users:\n- name: u\n  user:\n    token: {TOKEN}: oops\n")
    with pytest.raises(errors.ConfigError) as e:
        kubeconfig.load([str(path)])
    assert "line 4" in str(e.value) and TOKEN not in str(e.value), str(e.value)
    for field in ("token", "password"):
        path.write_text(f"users:\n- name: u\n  user: {{{field}: 918273645546}}\n")
        with pytest.raises(errors.ConfigError) as e:
            kubeconfig.load([str(path)])
        assert f"field {field} must be a string, not a number" in str(e.value)
        assert "918273645546" not in str(e.value)


def test_a_proxy_password_is_not_printed_when_the_proxy_is_down(tmp_path, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://bob:pr0xy-pass@127.0.0.1:9")
    path = write(
        tmp_path, {"server": "https://api.gate.invalid:6443", "certificate-authority-data": CA_DATA}, {"token": TOKEN}
    )
    with pytest.raises(errors.Unreachable) as e:
        use(path, connect.LIGHT)
    assert "pr0xy-pass" not in str(e.value) and TOKEN not in str(e.value)


def test_tls_server_name_is_checked_by_the_light_transport(tmp_path):
    """tls-server-name: the certificate names another host than the URL; the light transport checks
    that name (no fallback) and refuses a wrong one as untrusted."""
    ca, context = tls_pair("api.internal.example")
    with RecordingServer(tls=context) as server:
        cluster = {"server": server.url(), "certificate-authority-data": base64.b64encode(ca.cert_pem.bytes()).decode()}
        conn, _ = use(
            write(tmp_path, {**cluster, "tls-server-name": "api.internal.example"}, {"token": TOKEN}), connect.LIGHT
        )
        assert conn.transport == connect.LIGHT and server.authorizations == [f"Bearer {TOKEN}"]
        with pytest.raises(errors.UntrustedServer):
            use(write(tmp_path, {**cluster, "tls-server-name": "other.example"}, {"token": TOKEN}), connect.LIGHT)
        assert len(server.requests) == 1


def test_token_file_wins_over_token_as_in_kubectl(tmp_path):
    (tmp_path / "token").write_text("from-file\n")
    with RecordingServer(tls=SERVER_TLS) as server:
        use(
            write(
                tmp_path,
                {"server": server.url(), "certificate-authority-data": CA_DATA},
                {"token": TOKEN, "tokenFile": "token"},
            ),
            connect.LIGHT,
        )
    assert server.authorizations == ["Bearer from-file"]


def test_env_is_untouched_by_a_plugin_run(tmp_path):
    """The plugin gets KUBERNETES_EXEC_INFO and its env items; our own environment is not changed."""
    command = plugin(
        tmp_path,
        "import os\nassert os.environ['EXTRA'] == 'x'\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "assert info['apiVersion'] == 'client.authentication.k8s.io/v1', info\n" + GOOD,
    )
    resolved = kubeconfig.resolve(
        kubeconfig=write(
            tmp_path,
            {"server": "https://127.0.0.1:1", "certificate-authority-data": CA_DATA},
            exec_user(command, env=[{"name": "EXTRA", "value": "x"}]),
        )
    )
    assert light.endpoint(resolved).headers["Authorization"] == f"Bearer {TOKEN}"
    assert "EXTRA" not in os.environ


def test_a_token_with_a_line_break_is_refused_without_showing_it(tmp_path):
    path = write(
        tmp_path,
        {"server": "https://127.0.0.1:1", "certificate-authority-data": CA_DATA},
        {"token": f"{TOKEN}\r\nX-Injected: yes"},
    )
    with pytest.raises(errors.ConfigError) as e:
        use(path, connect.LIGHT)
    assert 'the token of user "u" contains a line break' in str(e.value) and TOKEN not in str(e.value)


def test_an_interactive_plugin_gets_the_terminal(tmp_path):
    """interactiveMode IfAvailable on a terminal: the plugin's stdin is that terminal and
    KUBERNETES_EXEC_INFO says interactive, as kubectl runs it; without a terminal, neither."""
    import pty

    command = plugin(
        tmp_path,
        "import os\ninfo = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        f"open({str(tmp_path / 'seen')!r}, 'w').write(json.dumps("
        "[os.isatty(0), info['spec']['interactive']]))\n" + GOOD,
    )
    path = write(
        tmp_path,
        {"server": "https://127.0.0.1:1", "certificate-authority-data": CA_DATA},
        exec_user(command, interactiveMode="IfAvailable"),
    )
    script = f"from canarygate.kube import kubeconfig, light\nlight.endpoint(kubeconfig.resolve(kubeconfig={path!r}))\n"
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin is the pty
        os.execv(sys.executable, [sys.executable, "-c", script])
    output = b""
    for _ in range(1000):  # bounded read until the child closes the pty
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert json.loads((tmp_path / "seen").read_text()) == [True, True]
    light.endpoint(kubeconfig.resolve(kubeconfig=path))  # here stdin is not a terminal (pytest)
    assert json.loads((tmp_path / "seen").read_text()) == [False, False]


@pytest.mark.parametrize(
    "users",
    [
        f"[{{name: u, user: {TOKEN}}}]",  # the token where the user's mapping goes
        f"[{TOKEN}]",
        "[{name: u, user: {exec: {command: x, env: [{name: AWS_SECRET, value: 918273645546}]}}}]",
        "[{name: u, user: {exec: {command: x, args: [--pin, 918273645546]}}}]",
        "[{name: u, user: {as-user-extra: {k: [918273645546]}}}]",
        f"[{{name: u, user: {{auth-provider: {TOKEN}}}}}]",
    ],
)
def test_a_wrongly_typed_user_value_is_never_shown(tmp_path, users):
    path = tmp_path / "config"
    path.write_text(f"users: {users}\n")
    with pytest.raises(errors.ConfigError) as e:
        kubeconfig.load([str(path)])
    text = str(e.value)
    assert "must be" in text and TOKEN not in text and "918273645546" not in text, text


@pytest.mark.parametrize(
    "text, kept, gone",
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2ln", "Authorization: Bearer", "eyJ"),
        ("authorization: basic Ym9iOnB3LXNlY3JldA==", "authorization: basic", "Ym9i"),
        ('{"kind": "ExecCredential", "status": {"token": "k8s-aws-v1.aHR0cHM6Ly9zdHM"}}', '"status"', "k8s-aws-v1"),
        ("id-token: abc123XYZ, refresh_token=r3fr3sh", "id-token", "abc123XYZ r3fr3sh"),
        ("proxy http://bob:hunter2@proxy.corp:3128 refused", "bob:<redacted>@proxy.corp", "hunter2"),
        ("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----", "<redacted key>", "MHcCAQEEI"),
        # what must stay readable: the API server's own words
        (
            'canarygates.piggysec.com "demo" is forbidden: User "system:serviceaccount:ns:token-reader" cannot patch '
            'resource "canarygates"',
            "token-reader",
            "",
        ),
        (
            "basic authentication is disabled; Bearer token required",
            "basic authentication is disabled; Bearer token",
            "",
        ),
        ("spec.tokenSecretRef: Required value", "spec.tokenSecretRef: Required value", ""),
    ],
)
def test_scrub_removes_what_looks_like_a_secret_and_keeps_the_rest(text, kept, gone):
    from canarygate.kube.client import scrub

    clean = scrub(text)
    assert kept in clean, clean
    for word in gone.split():
        assert word not in clean, clean
