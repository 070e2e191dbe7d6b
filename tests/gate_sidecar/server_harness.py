"""Attacking the sidecar's ports from outside: the real ``gate-sidecar`` process and raw sockets.

* :class:`SidecarUnderAttack`: ``python -m gate_sidecar`` against the session's API (sandbox or
  real), on free loopback ports, with ``--probe-listen`` (or its variable), short timeouts and its own ``TMPDIR``
  (``spool``), so a test can see whether it ever writes a temporary file (:meth:`spooled`).
* :func:`exchange`: one raw request on a fresh socket from a chosen source address (127.0.0.2 is
  "another peer": all of 127/8 is loopback on Linux), read until the answer is complete or the
  server closes; every read is bounded by a deadline.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PEER = "127.0.0.1"
OTHER_PEER = "127.0.0.2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Answer:
    """What came back on one connection: status, headers, body, and whether the server closed it."""

    def __init__(self, raw: bytes, closed: bool, timed_out: bool):
        self.raw, self.closed, self.timed_out = raw, closed, timed_out
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2) if lines and lines[0].startswith("HTTP/") else ["", "0"]
        self.status = int(parts[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"Answer({self.status}, closed={self.closed}, {self.raw[:300]!r})"


def read_answer(sock: socket.socket, timeout: float = 10.0) -> Answer:
    """Read one answer (to Content-Length) or until EOF; bounded by ``timeout`` in all."""
    deadline = time.monotonic() + timeout
    raw, closed, timed_out = b"", False, False
    while True:
        head, sep, body = raw.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")[1:]
                    if line.lower().startswith(b"content-length:")
                ),
                None,
            )
            if length is not None and len(body) >= length:
                break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            timed_out = True
            break
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        raw += data
    return Answer(raw, closed, timed_out)


def hung_up(sock: socket.socket, timeout: float = 3.0) -> bool:
    """Whether the server closes ``sock`` (EOF or reset) within ``timeout``, sending nothing more."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def connect(port: int, source: str = PEER, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def exchange(port: int, request: bytes, source: str = PEER, timeout: float = 10.0) -> Answer:
    with connect(port, source) as sock:
        sock.sendall(request)
        return read_answer(sock, timeout)


def post(path: str, body: bytes, *, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: sidecar\r\n\r\n".encode()


PAYLOAD = json.dumps(
    {"name": "demo", "namespace": "demo-ns", "phase": "Progressing", "checksum": "85d557f47b"}
).encode()


def spooled(pid: int, folder: Path) -> list[str]:
    """Files of ``folder`` that process ``pid`` holds open (an unlinked O_TMPFILE too) or that exist."""
    found = []
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in list(fd_dir.iterdir()) if fd_dir.exists() else []:
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith(str(folder)):
            found.append(target)
    return found + [str(p) for p in folder.iterdir()]


class SidecarUnderAttack:
    """The real sidecar process, its webhook port ``port`` and its probe port ``probe_port``."""

    def __init__(self, kubeconfig: str, workdir: Path, *args: str, probe_env: bool = False):
        self.port, self.probe_port = free_port(), free_port()
        self.spool = workdir / "spool"
        self.spool.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "sidecar.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATE_SIDECAR_")}
        env["TMPDIR"] = str(self.spool)
        probe = f"127.0.0.1:{self.probe_port}"
        cmd = [sys.executable, "-m", "gate_sidecar", "--listen", f"127.0.0.1:{self.port}", "--kubeconfig", kubeconfig]
        if probe_env:  # as the shipped manifests set it
            env["GATE_SIDECAR_PROBE_LISTEN"] = probe
        else:
            cmd += ["--probe-listen", probe]
        cmd += args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=ROOT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gate-sidecar exited {self.proc.returncode}:\n{self.log()}")
            try:
                if exchange(self.probe_port, get("/readyz"), timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"gate-sidecar not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def spooled(self) -> list[str]:
        """Temporary files the sidecar holds or left: open descriptors into TMPDIR, and its entries."""
        return spooled(self.proc.pid, self.spool)

    def descriptors(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
