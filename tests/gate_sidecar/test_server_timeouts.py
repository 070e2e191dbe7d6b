"""Slow clients on the real sidecar's webhook port (``--read-timeout 1 --idle-timeout 2``).

Covers: headers trickled a byte at a time (slowloris) get 408 in JSON and the connection closed
once the read deadline has passed, though every byte kept the connection active; a body trickled
after complete headers too; a request that arrives whole within the deadline, however slowly, is
answered; a connection that sends nothing, or nothing after an answer, is closed after the idle
timeout; and the sidecar answers others throughout.
"""

from __future__ import annotations

import time

import pytest
from server_harness import OTHER_PEER, PAYLOAD, SidecarUnderAttack, connect, exchange, hung_up, post, read_answer

READ_TIMEOUT, IDLE_TIMEOUT = 1.0, 2.0
#: The deadlines are checked once a second, and the loop waits up to a second: the slack allowed.
SLACK = 2.5


@pytest.fixture(scope="module")
def sidecar(kubeconfig, crds, tmp_path_factory):
    process = SidecarUnderAttack(
        kubeconfig,
        tmp_path_factory.mktemp("timeouts"),
        "--read-timeout",
        str(READ_TIMEOUT),
        "--idle-timeout",
        str(IDLE_TIMEOUT),
    )
    yield process
    process.stop()


def trickle(sock, data: bytes, *, every: float, limit: float):
    """Send ``data`` a byte every ``every`` seconds until it is sent, the server hangs up, or ``limit``."""
    started = time.monotonic()
    for i in range(len(data)):
        if time.monotonic() - started > limit:
            return i
        try:
            sock.sendall(data[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return i
        time.sleep(every)
    return len(data)


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickled_request_gets_408_after_the_read_deadline(sidecar, where):
    request = post("/confirm-rollout", PAYLOAD)
    head_end = request.index(b"\r\n\r\n") + 4
    with connect(sidecar.port) as sock:
        started = time.monotonic()
        if where == "body":
            sock.sendall(request[:head_end])
            request = request[head_end:]
        else:
            request = request[:head_end]
        sent = trickle(sock, request, every=0.1, limit=READ_TIMEOUT + SLACK + 1)
        answer = read_answer(sock, timeout=READ_TIMEOUT + SLACK)
        elapsed = time.monotonic() - started
        closed = hung_up(sock)
    assert sent < len(request), "the whole request went through: the trickle was not slow enough"
    assert answer.status == 408 and answer.json()["code"] == 408, answer
    assert "1s" in answer.json()["message"]
    assert closed
    assert READ_TIMEOUT <= elapsed <= READ_TIMEOUT + SLACK


def test_a_slow_request_within_the_deadline_is_answered(sidecar):
    request = post("/confirm-rollout", PAYLOAD)
    with connect(sidecar.port) as sock:
        for start in range(0, len(request), len(request) // 4 + 1):  # four pieces over ~0.6 s
            sock.sendall(request[start : start + len(request) // 4 + 1])
            time.sleep(0.15)
        answer = read_answer(sock, timeout=5)
    assert answer.status == 200 and answer.json()["gate"] == "confirm-rollout", answer


@pytest.mark.parametrize("after_a_request", [False, True], ids=["silent", "after-an-answer"])
def test_an_idle_connection_is_closed_after_the_idle_timeout(sidecar, after_a_request):
    with connect(sidecar.port) as sock:
        if after_a_request:
            sock.sendall(post("/confirm-rollout", PAYLOAD))
            assert read_answer(sock, timeout=5).status == 200
        started = time.monotonic()
        answer = read_answer(sock, timeout=IDLE_TIMEOUT + SLACK + 1)  # nothing comes; then EOF
        elapsed = time.monotonic() - started
    assert answer.closed and answer.raw == b"", answer
    assert IDLE_TIMEOUT - 0.1 <= elapsed <= IDLE_TIMEOUT + SLACK


def test_others_are_answered_while_slow_clients_hang_on(sidecar):
    slow = [connect(sidecar.port) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(b"POST /confirm-rollout HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        for _ in range(5):
            answer = exchange(sidecar.port, post("/confirm-rollout", PAYLOAD), source=OTHER_PEER, timeout=5)
            assert answer.status == 200, answer
        answers = [read_answer(sock, timeout=READ_TIMEOUT + SLACK + 1) for sock in slow]
        assert [a.status for a in answers] == [408] * 20
    finally:
        for sock in slow:
            sock.close()
