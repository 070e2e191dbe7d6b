"""Connection floods on the real sidecar (default caps: 64 connections per peer, 512 in all).

The attacker is 127.0.0.1; "Flagger" is another peer, 127.0.0.2. Covers: 1,000 idle connections from
one peer leave it holding at most 64 (each new one closes its longest-idle one), while Flagger's
calls and the probes (both ports) are answered at once, and the attacker's own new connections too;
64 connections stuck mid-request make only that peer's next connection a 503 (JSON, saying why)
until the read deadline frees them; ten peers together are held to the total cap, and Flagger is
still answered; with caps raised, a sidecar holding over 1,024 descriptors keeps answering (poll,
not select).
"""

from __future__ import annotations

import resource
import time

import pytest
from server_harness import (
    OTHER_PEER,
    PAYLOAD,
    PEER,
    SidecarUnderAttack,
    connect,
    exchange,
    get,
    post,
    read_answer,
)

PER_PEER, TOTAL = 64, 512


@pytest.fixture(scope="module")
def sidecar(kubeconfig, crds, tmp_path_factory):
    process = SidecarUnderAttack(kubeconfig, tmp_path_factory.mktemp("connections"), "--read-timeout", "3")
    yield process
    process.stop()


def still_open(socks) -> int:
    """How many of ``socks`` the server has not closed (no EOF waiting to be read)."""
    count = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            if sock.recv(1) != b"":
                count += 1
        except BlockingIOError:
            count += 1
        except OSError:
            pass
    return count


def settle(socks, at_most: int, timeout: float = 15.0) -> int:
    """Wait (bounded) until the server has accepted the flood and closed all but ``at_most``."""
    deadline = time.monotonic() + timeout
    while (left := still_open(socks)) > at_most and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def flood(port: int, count: int, source: str = PEER) -> list:
    return [connect(port, source) for _ in range(count)]


def close_all(socks) -> None:
    for sock in socks:
        sock.close()


def answered_quickly(port: int, request: bytes, source: str, within: float = 2.0) -> int:
    started = time.monotonic()
    answer = exchange(port, request, source=source, timeout=within)
    assert time.monotonic() - started <= within, answer
    return answer.status


def test_a_thousand_idle_connections_do_not_lock_out_flagger_or_the_probes(sidecar):
    idle = flood(sidecar.port, 1000)
    try:
        assert settle(idle, PER_PEER) <= PER_PEER
        assert answered_quickly(sidecar.port, post("/confirm-rollout", PAYLOAD), OTHER_PEER) == 200
        for path in ("/healthz", "/readyz"):
            assert answered_quickly(sidecar.probe_port, get(path), PEER) == 200
            assert answered_quickly(sidecar.port, get(path), OTHER_PEER) == 200
        # The attacker's own new connection is served too: it closes one of its idle ones.
        assert answered_quickly(sidecar.port, post("/confirm-rollout", PAYLOAD), PEER) == 200
        assert sidecar.descriptors() < PER_PEER + 100, "the sidecar holds the flood's descriptors"
    finally:
        close_all(idle)


def test_a_peer_whose_connections_are_all_mid_request_is_refused_alone(sidecar):
    stuck = flood(sidecar.port, PER_PEER)
    try:
        for sock in stuck:
            sock.sendall(b"POST /confirm-rollout HTTP/1.1\r\nHost: x\r\n")  # never finished
        time.sleep(0.3)
        refused = exchange(sidecar.port, post("/confirm-rollout", PAYLOAD), timeout=5)
        assert refused.status == 503, refused
        assert "per peer" in refused.json()["message"] and PEER in refused.json()["message"]
        assert answered_quickly(sidecar.port, post("/confirm-rollout", PAYLOAD), OTHER_PEER) == 200
        assert answered_quickly(sidecar.probe_port, get("/readyz"), PEER) == 200
        # The read deadline (3 s here) frees them: 408 each, and the peer is served again.
        assert {read_answer(sock, timeout=7).status for sock in stuck} == {408}
        assert exchange(sidecar.port, post("/confirm-rollout", PAYLOAD), timeout=5).status == 200
    finally:
        close_all(stuck)


def test_many_peers_together_are_held_to_the_total_cap(sidecar):
    peers = [f"127.0.0.{i}" for i in range(10, 20)]
    socks = [sock for peer in peers for sock in flood(sidecar.port, PER_PEER, peer)]
    try:
        assert len(socks) > TOTAL
        assert settle(socks, TOTAL) <= TOTAL
        assert answered_quickly(sidecar.port, post("/confirm-rollout", PAYLOAD), OTHER_PEER) == 200
        assert answered_quickly(sidecar.probe_port, get("/healthz"), peers[0]) == 200
    finally:
        close_all(socks)


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 3000,
    reason="needs 3,000 descriptors (ulimit -n) for 1,100 connections on both ends",
)
def test_over_1024_descriptors_keep_the_loop_running(kubeconfig, crds, tmp_path):
    big = SidecarUnderAttack(kubeconfig, tmp_path, "--max-connections", "1200", "--max-connections-per-peer", "1200")
    idle = []
    try:
        idle = flood(big.port, 1100)
        deadline = time.monotonic() + 15
        while big.descriptors() < 1100 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert big.descriptors() > 1024, "the flood did not reach the descriptor numbers select() cannot watch"
        assert answered_quickly(big.port, post("/confirm-rollout", PAYLOAD), OTHER_PEER, within=5) == 200
        assert big.proc.poll() is None and "Traceback" not in big.log()
    finally:
        close_all(idle)
        big.stop()
