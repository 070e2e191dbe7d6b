"""The server's settings: flags, their checks, and caps fitted to the descriptor limit.

Covers: --probe-listen empty or "off" means no probe port, an address is parsed as --listen's;
Limits refuses zero caps and timeouts; under a descriptor limit of 256 the total cap is lowered to
fit (64: 256 less 64 in reserve and the probe port's 128), and a server flooded from four peers under that limit keeps
answering a fifth and
never runs out of descriptors (it would spin on accept() if it did).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from server_harness import ROOT, connect, exchange, free_port, get

from gate_sidecar import config
from gate_sidecar.server import Limits


@pytest.mark.parametrize(
    "value, expected",
    [
        ("", None),
        ("off", None),
        (" OFF ", None),
        ("127.0.0.1:8081", ("127.0.0.1", 8081)),
        (":8081", ("0.0.0.0", 8081)),
    ],
)
def test_probe_listen_values(value, expected):
    assert config.parse_optional_listen(value) == expected


def test_probe_listen_refuses_a_bad_address():
    with pytest.raises(ValueError, match="HOST:PORT"):
        config.parse_optional_listen("8081")


@pytest.mark.parametrize(
    "field", ["max_body", "max_header", "max_per_peer", "max_total", "read_timeout", "idle_timeout"]
)
def test_limits_refuse_zero(field):
    with pytest.raises(ValueError):
        Limits(**{field: 0})


SERVER = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from gate_sidecar.server import create_server
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
server = create_server(app, host="127.0.0.1", port=int(sys.argv[1]), threads=2)
print(server.limits.max_total, flush=True)
server.run()
"""


def test_the_total_cap_fits_the_descriptor_limit():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    socks = []
    try:
        proc.stdout.readline()  # 256 less the reserve of 64
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                connect(port, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        for peer in ("127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"):
            socks += [connect(port, peer) for _ in range(64)]
        time.sleep(1)
        started = time.monotonic()
        answer = exchange(port, get("/"), source="127.0.0.20", timeout=5)
        assert answer.status == 200 and time.monotonic() - started < 2, answer
        assert len(os.listdir(f"/proc/{proc.pid}/fd")) < 256
    finally:
        for sock in socks:
            sock.close()
        proc.kill()
        proc.wait(5)
        proc.stdout.close()
