"""No client key on disk, whatever ends the command: a real ``kubectl-gate`` process whose kubeconfig
carries its client certificate and key inline (or gets them from an exec plugin) is sent SIGTERM,
SIGINT or SIGHUP while its request is held by the server; afterwards nothing in its private
$TMPDIR (nor anywhere under it) holds the key. Both transports. And the fallback for systems
without memfd: a 0600 file in a 0700 directory, gone before the function returns.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import threading

import pytest
from helpers import kubeconfigs, signals

from canarygate.kube import light

from .test_transport_bench import RecordingServer, tls_pair

GATE = os.path.join(os.path.dirname(sys.executable), "kubectl-gate")
CA, SERVER_TLS = tls_pair("127.0.0.1")
CERT = CA.issue_cert("alice@example.com")
KEY_PEM = CERT.private_key_pem.bytes()
KEY_BODY = KEY_PEM.splitlines()[1]  # a line of the key's base64 body: in any PEM copy of it


def _kubeconfig(tmp_path, server: RecordingServer, source: str) -> str:
    if source == "kubeconfig":
        user = {
            "client-certificate-data": base64.b64encode(CERT.cert_chain_pems[0].bytes()).decode(),
            "client-key-data": base64.b64encode(KEY_PEM).decode(),
        }
    else:
        credential = {
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "status": {
                "clientCertificateData": CERT.cert_chain_pems[0].bytes().decode(),
                "clientKeyData": KEY_PEM.decode(),
            },
        }
        plugin = tmp_path / "plugin"
        plugin.write_text(f"#!{sys.executable}\nprint({json.dumps(json.dumps(credential))})\n")
        plugin.chmod(0o755)
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": str(plugin),
                "interactiveMode": "Never",
            }
        }
    cluster = {"server": server.url(), "certificate-authority-data": base64.b64encode(CA.cert_pem.bytes()).decode()}
    return kubeconfigs.write(tmp_path / "config", cluster, user, namespace="default")


def _holding_key(root) -> list[str]:
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                with open(os.path.join(directory, name), "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if KEY_BODY in data or base64.b64encode(KEY_PEM)[40:120] in data:
                found.append(os.path.join(directory, name))
    return found


@pytest.mark.skipif(not os.access(GATE, os.X_OK), reason="kubectl-gate is not installed in the virtualenv")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
@pytest.mark.parametrize(
    "source, transport",
    [("kubeconfig", "light"), ("exec plugin", "light"), ("kubeconfig", "kubernetes"), ("exec plugin", "kubernetes")],
)
def test_no_key_left_on_disk_after_a_signal_mid_request(tmp_path, sig, source, transport):
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    hold = threading.Event()
    with RecordingServer(tls=SERVER_TLS, hold=hold) as server:
        env = {**os.environ, "TMPDIR": str(tmpdir), "HOME": str(tmp_path)}
        env.pop("KUBECTL_GATE_CLIENT", None)
        if transport == "kubernetes":
            env["KUBECTL_GATE_CLIENT"] = "kubernetes"
        process = subprocess.Popen(
            [GATE, "--kubeconfig", _kubeconfig(tmp_path, server, source), "show", "demo"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=signals.default_dispositions,
        )
        try:
            arrived = server.arrived.wait(30)
            assert arrived, process.communicate(timeout=10)
            os.kill(process.pid, sig)
            process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)
    assert process.returncode != 0  # ended by the signal, mid-request
    assert _holding_key(tmpdir) == []
    assert sorted(os.listdir(tmpdir)) == []


def test_the_key_is_loaded_from_memory_where_memfd_exists(tmp_path, monkeypatch):
    """No file is created at all: tempfile's directory stays empty, and nothing is opened for writing."""
    import tempfile

    if not hasattr(os, "memfd_create"):
        pytest.skip("no memfd_create on this system: the private-file fallback is tested below")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    light.load_cert_chain(context, ("data", CERT.cert_chain_pems[0].bytes()), ("data", KEY_PEM))
    assert os.listdir(tmp_path) == []


def test_the_private_file_fallback(tmp_path, monkeypatch):
    """Without memfd: the key goes through a 0600 file in a 0700 directory, removed before returning,
    with SIGTERM/SIGINT/SIGHUP held back meanwhile (a signal sent then is delivered after)."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = {}

    class Spy(ssl.SSLContext):
        def load_cert_chain(self, certfile, keyfile=None, password=None):
            directory = os.path.dirname(keyfile)
            seen["dir"] = stat.S_IMODE(os.stat(directory).st_mode)
            seen["file"] = stat.S_IMODE(os.stat(keyfile).st_mode)
            seen["blocked"] = signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])
            return super().load_cert_chain(certfile, keyfile, password)

    context = Spy(ssl.PROTOCOL_TLS_CLIENT)
    light._load_through_private_file(context, [None, None], [CERT.cert_chain_pems[0].bytes(), KEY_PEM])
    assert seen == {"dir": 0o700, "file": 0o600, "blocked": True}
    assert os.listdir(tmp_path) == []
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
