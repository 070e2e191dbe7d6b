"""What a user of ``kubectl gate`` sees when things go wrong, on both transports: every error path we
can provoke (a server that echoes the token in 401, 403, 500 and non-JSON answers, a proxy that is
down, a failing exec plugin that prints its token, a broken kubeconfig line, plain http) exits 1
with a message, and neither stdout nor stderr ever holds the token, the password or the proxy's
password.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from helpers import kubeconfigs

from .test_transport_bench import RecordingServer, tls_pair

GATE = os.path.join(os.path.dirname(sys.executable), "kubectl-gate")
pytestmark = pytest.mark.skipif(not os.access(GATE, os.X_OK), reason="kubectl-gate is not installed in the virtualenv")
TOKEN = "cli-visible-token-0c7e55aa91"
PROXY_PASSWORD = "pr0xy-pa55-77"
CA, SERVER_TLS = tls_pair("127.0.0.1", "api.gate.invalid")
SECRETS = (TOKEN, PROXY_PASSWORD, base64.b64encode(f"bob:{TOKEN}".encode()).decode())


def _echo(code: int, as_status: bool = True) -> tuple[int, bytes]:
    text = f"denied: Authorization: Bearer {TOKEN} ({TOKEN})"
    if not as_status:
        return code, text.encode()
    return code, json.dumps(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": text}
    ).encode()


CASES = {
    "401 echoing the token": dict(answer=_echo(401)),
    "403 echoing the token": dict(answer=_echo(403)),
    "500 echoing the token": dict(answer=_echo(500)),
    "503 text echoing the token": dict(answer=_echo(503, as_status=False)),
    "200 that is not JSON": dict(answer=(200, f"<html>{TOKEN}</html>".encode())),
    "basic auth 403 echo": dict(answer=_echo(403), user={"username": "bob", "password": TOKEN}),
    "proxy down": dict(
        server="https://api.gate.invalid:{port}", env={"HTTPS_PROXY": f"http://bob:{PROXY_PASSWORD}@127.0.0.1:9"}
    ),
    "plain http": dict(server="http://127.0.0.1:{port}"),
    "failing exec plugin": dict(user="plugin"),
    "broken kubeconfig line": dict(raw=f"users:\n- name: u\n  user:\n    token: {TOKEN}: [\n"),
}


@pytest.mark.parametrize("transport", ["light", "kubernetes"])
@pytest.mark.parametrize("case", list(CASES))
def test_no_error_shows_a_secret(tmp_path, case, transport):
    spec = CASES[case]
    user = spec.get("user", {"token": TOKEN})
    if user == "plugin":
        plugin = tmp_path / "plugin"
        plugin.write_text(
            f'#!/bin/sh\necho \'credential: {{"token": "{TOKEN}"}}\' >&2\n'
            f"echo 'Authorization: Bearer {TOKEN}' >&2\nexit 2\n"
        )
        plugin.chmod(0o755)
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
            }
        }
    with RecordingServer(tls=SERVER_TLS, answer=spec.get("answer", _echo(403))) as server:
        path = tmp_path / "config"
        if "raw" in spec:
            path.write_text(spec["raw"])
        else:
            cluster = {
                "server": spec.get("server", "https://127.0.0.1:{port}").replace("{port}", str(server.port)),
                "certificate-authority-data": base64.b64encode(CA.cert_pem.bytes()).decode(),
            }
            kubeconfigs.write(path, cluster, user, namespace="default")
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and k != "KUBECTL_GATE_DEBUG"}
        env.update(spec.get("env", {}), KUBECTL_GATE_CLIENT=transport, HOME=str(tmp_path))
        done = subprocess.run(
            [GATE, "--kubeconfig", str(path), "--request-timeout", "5s", "show", "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    output = done.stdout + done.stderr
    assert done.returncode == 1 and done.stderr.strip(), output
    assert "Traceback" not in output, output
    for secret in SECRETS:
        assert secret not in output, output
