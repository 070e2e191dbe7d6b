"""The probe port, on the real sidecar (set by GATE_SIDECAR_PROBE_LISTEN, as the manifests do).

Covers: the probe port answers /healthz, /readyz and /metrics (GET and HEAD) and nothing else (a
webhook there is 404 in JSON, so it cannot be used to pass a gate); the webhook port still answers
the probes (compatibility); a flood of the probe port from one peer does not keep another peer's
probes out (its own caps, 16 per peer); and the shipped manifests wire it: the kubelet probes the probe port
named by the container's GATE_SIDECAR_PROBE_LISTEN, which neither the Service nor the NetworkPolicy
opens; in Flagger's pod the webhook port listens on 127.0.0.1 only and the probes on another port.
"""

from __future__ import annotations

import pathlib
import time

import pytest
import yaml
from server_harness import OTHER_PEER, PAYLOAD, PEER, SidecarUnderAttack, connect, exchange, get, post

from gate_sidecar.server import PROBE_CAPS

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sidecar(kubeconfig, crds, tmp_path_factory):
    process = SidecarUnderAttack(kubeconfig, tmp_path_factory.mktemp("probes"), probe_env=True)
    yield process
    process.stop()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_the_probe_port_answers_the_probes_and_the_webhook_port_still_does(sidecar, path):
    for port in (sidecar.probe_port, sidecar.port):
        answer = exchange(port, get(path))
        assert answer.status == 200, (port, answer)
    head = exchange(sidecar.probe_port, f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout=3)
    assert head.status == 200
    if path == "/metrics":
        assert b"# TYPE" in exchange(sidecar.probe_port, get(path)).body


@pytest.mark.parametrize(
    "request_bytes",
    [
        post("/confirm-rollout", PAYLOAD),
        post("/rollback", PAYLOAD),
        post("/event", PAYLOAD),
        get("/version"),
    ],
)
def test_the_probe_port_serves_nothing_else(sidecar, request_bytes):
    answer = exchange(sidecar.probe_port, request_bytes)
    assert answer.status == 404 and "probe port" in answer.json()["message"], answer


def test_a_flood_of_the_probe_port_does_not_keep_other_probes_out(sidecar):
    per_peer = PROBE_CAPS[0]
    flood = [connect(sidecar.probe_port) for _ in range(per_peer)]
    try:
        for sock in flood:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # never finished: cannot be closed as idle
        time.sleep(0.5)  # the server reads them: the peer's whole share is mid-request
        flood += [connect(sidecar.probe_port) for _ in range(200)]
        started = time.monotonic()
        answer = exchange(sidecar.probe_port, get("/readyz"), source=OTHER_PEER, timeout=2)
        assert answer.status == 200 and time.monotonic() - started < 2
        refused = exchange(sidecar.probe_port, get("/healthz"), source=PEER, timeout=3)
        assert refused.status == 503 and "16 connections per peer" in refused.json()["message"], refused
        assert exchange(sidecar.port, get("/healthz"), source=PEER, timeout=3).status == 200
    finally:
        for sock in flood:
            sock.close()


# -- the shipped manifests ------------------------------------------------------------------------------


def container_of(path: pathlib.Path) -> dict:
    (doc,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def listen_of(container: dict) -> tuple[str, int, str, int]:
    """(webhook host, port, probe host, port) as the container's flags and variables set them."""
    args, env = container["args"], {e["name"]: e["value"] for e in container["env"]}
    host, _, port = args[args.index("--listen") + 1].rpartition(":")
    probe_host, _, probe_port = env["GATE_SIDECAR_PROBE_LISTEN"].rpartition(":")
    return host, int(port), probe_host, int(probe_port)


@pytest.mark.parametrize(
    "path, webhook_host",
    [
        (ROOT / "deploy/sidecar/deployment.yaml", "0.0.0.0"),
        (ROOT / "deploy/flagger-pod/flagger-deployment-patch.yaml", "127.0.0.1"),
    ],
    ids=["sidecar", "flagger-pod"],
)
def test_the_manifests_probe_the_probe_port(path, webhook_host):
    container = container_of(path)
    host, port, probe_host, probe_port = listen_of(container)
    assert host == webhook_host and probe_host == "0.0.0.0" and probe_port != port
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert named[container[probe]["httpGet"]["port"]] == probe_port, probe
    if webhook_host == "127.0.0.1":
        assert port not in named.values(), "a localhost-only port is not a container port"


def test_the_probe_port_is_not_exposed_by_the_service_or_the_network_policy():
    _, port, _, probe_port = listen_of(container_of(ROOT / "deploy/sidecar/deployment.yaml"))
    service = yaml.safe_load((ROOT / "deploy/sidecar/service.yaml").read_text())
    policy = yaml.safe_load((ROOT / "deploy/sidecar/networkpolicy.yaml").read_text())
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == [port]
    assert probe_port != port
