"""Request bodies and headers on the real sidecar's webhook port, sent from raw sockets.

Covers: a Content-Length over 64 KiB is answered 413 (JSON, with the limit) from the headers alone,
before a byte of the body is sent; exactly 64 KiB is still read and answered; a chunked body is
cut off with 413; a 24 MiB body, declared or chunked, never makes the sidecar create a temporary
file (its TMPDIR and its open descriptors are watched while the body streams), while plain waitress
with its defaults does spool the same body (so the watch can see spooling); a Content-Length of
thousands of digits is a 400 and headers over 16 KiB a 431, both in JSON, and the sidecar keeps
answering afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time

import pytest
from server_harness import PAYLOAD, SidecarUnderAttack, connect, exchange, free_port, get, post, read_answer, spooled

BIG = 24 * 1024 * 1024
HEAD = "POST /confirm-rollout HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def sidecar(kubeconfig, crds, tmp_path_factory):
    process = SidecarUnderAttack(kubeconfig, tmp_path_factory.mktemp("bodies"))
    yield process
    process.stop()


class SpoolWatch:
    """Polls a process's temporary files from a thread while a test streams a body.

    ``seen``: the files that were not there before (the kubernetes client keeps the kubeconfig's CA
    in a temporary file from startup on)."""

    def __init__(self, pid: int, folder):
        self.pid, self.folder, self.seen = pid, folder, set()
        self.before = set(spooled(pid, folder))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.seen.update(set(spooled(self.pid, self.folder)) - self.before)
            time.sleep(0.002)

    def __enter__(self) -> SpoolWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.05)  # one more look after the last byte
        self._stop.set()
        self._thread.join(5)


def stream(port: int, head: bytes, chunks, *, timeout: float = 20.0):
    """Send ``head`` then each chunk until the server stops reading; (bytes of body sent, its answer)."""
    sent = 0
    with connect(port) as sock:
        sock.sendall(head)
        sock.settimeout(timeout)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the server refused the rest, as it should
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return sent, read_answer(sock, timeout=10)


def test_content_length_over_the_limit_is_413_before_the_body(sidecar):
    with connect(sidecar.port) as sock:
        sock.sendall(f"{HEAD}Content-Length: {BIG}\r\n\r\n".encode())  # and not one byte of body
        answer = read_answer(sock, timeout=5)
    assert answer.status == 413, answer
    assert answer.json()["code"] == 413 and "64 KiB" in answer.json()["message"]
    assert answer.headers["content-type"] == "application/json"


def test_one_byte_over_is_refused_and_exactly_the_limit_is_read(sidecar):
    over = exchange(sidecar.port, f"{HEAD}Content-Length: {64 * 1024 + 1}\r\n\r\n".encode(), timeout=5)
    assert over.status == 413, over
    padded = PAYLOAD[:-1] + b', "pad": "' + b"x" * (64 * 1024 - len(PAYLOAD) - 11) + b'"}'
    assert len(padded) == 64 * 1024
    answer = exchange(sidecar.port, post("/confirm-rollout", padded))
    assert answer.status == 200 and answer.json()["gate"] == "confirm-rollout", answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_24_mib_body_is_never_spooled(sidecar, chunked):
    block = b"[" * 65536
    chunks = [block] * (BIG // len(block))
    if chunked:
        head = f"{HEAD}Transfer-Encoding: chunked\r\n\r\n".encode()
        chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in chunks] + [b"0\r\n\r\n"]
    else:
        head = f"{HEAD}Content-Length: {BIG}\r\n\r\n".encode()
    with SpoolWatch(sidecar.proc.pid, sidecar.spool) as watch:
        sent, answer = stream(sidecar.port, head, chunks)
    assert answer.status == 413, answer
    assert watch.seen == set(), f"the sidecar spooled the body to {watch.seen}"
    assert sent < BIG, "the sidecar read the whole body instead of refusing it"
    assert exchange(sidecar.port, post("/confirm-rollout", PAYLOAD)).status == 200


def test_the_spool_watch_sees_what_plain_waitress_does(tmp_path):
    """The control: waitress with its defaults spools the same 24 MiB body into TMPDIR."""
    spool = tmp_path / "spool"
    spool.mkdir()
    port = free_port()
    code = (
        "import waitress\n"
        "def app(environ, start_response):\n"
        "    environ['wsgi.input'].read()\n"
        "    start_response('200 OK', [('Content-Length', '0')])\n"
        "    return [b'']\n"
        f"waitress.serve(app, host='127.0.0.1', port={port})\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env={"TMPDIR": str(spool), "PATH": ""},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                connect(port, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        block = b"x" * 65536
        with SpoolWatch(proc.pid, spool) as watch, connect(port) as sock:
            sock.sendall(f"{HEAD}Content-Length: {BIG}\r\n\r\n".encode())
            for _ in range(BIG // len(block)):
                sock.sendall(block)
            answer = read_answer(sock, timeout=20)
        assert answer.status == 200
        assert watch.seen, "plain waitress did not spool: the watch would not see it either"
    finally:
        proc.kill()
        proc.wait(5)


def test_content_length_of_thousands_of_digits_is_400(sidecar):
    answer = exchange(sidecar.port, f"{HEAD}Content-Length: {'9' * 5000}\r\n\r\n".encode(), timeout=5)
    assert answer.status == 400 and answer.json()["message"] == "Content-Length is invalid", answer
    assert exchange(sidecar.port, get("/healthz")).status == 200
    assert "Traceback" not in sidecar.log()


def test_headers_over_16_kib_are_431_in_json(sidecar):
    answer = exchange(sidecar.port, f"{HEAD}X-Pad: {'a' * 20000}\r\n\r\n".encode(), timeout=5)
    assert answer.status == 431 and "16 KiB" in answer.json()["message"], answer


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"POST /confirm-rollout HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST /confirm-rollout HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ],
)
def test_what_waitress_refuses_is_json_too(sidecar, request_bytes, status):
    answer = exchange(sidecar.port, request_bytes, timeout=5)
    assert answer.status == status and answer.json()["code"] == status and answer.json()["message"], answer
