"""Benchmark of the gate sidecar against its budgets (docs/architecture.md#budgets), on the sandbox API emulator.

``python -m benchmarks.sidecar`` (or ``make bench``) prints a table; :func:`run` returns the figures.

Setup: the emulator with 1,000 CanaryGates (10 namespaces) and their Canaries; the sidecar as a
subprocess (``python -m gate_sidecar``) with a token bound to the shipped ClusterRole; a bare WSGI
app (:func:`bare_app`: reads the body, answers 200 with a 16-byte JSON body) in another
subprocess, served by the same server with the same settings (:func:`gate_sidecar.server.create_server`,
same thread count).

Load: 16 concurrent callers, one keep-alive connection each, POST the same 200 Flagger payloads
(random CanaryGates) for a fixed time (``BENCH_SECONDS`` per run, default 3). The generator is
``wrk`` (C, one thread, event loop) when it is on the PATH (``apt-get install wrk``): it leaves the
CPUs to the servers. Without it (or with ``BENCH_LOADGEN=python``) a Python generator (4 processes x
4 threads) is used, and the table says so: on a 2-CPU machine it takes most of the CPU, so its
figures bound the generator, not the servers.
Each app gets a 1 s unmeasured warm-up, and the sidecar's start-up writes (history records, first
status writes, Events) are awaited (``BENCH_SETTLE=0``: not), then ``BENCH_ROUNDS`` rounds (default
3) of runs go bare, sidecar, sidecar, bare (so a drift during a round weighs on both alike). The
throughput ratio is the median of the rounds' ratios (the lower middle one for an even number): on a
shared machine one round can be disturbed by work outside the benchmark, and the median is not
moved by it. Throughput and CPU per call are over all runs; latencies are the worst run's (a tail
budget is not judged on a median).

Figures: throughput and p50/p99 latency for both and their ratio; the CPU time each server process
used per call during its runs (all its threads, read from /proc: less sensitive to other work on the
machine than throughput); the app's own cost per call, called in this process without a server
(:func:`app_us_per_call`: what the app's code alone adds, free of the machine's noise); API requests
the sidecar made during its load (budget 0); its resident memory (budget < 100 MB); time from spawn
to /readyz and from cache sync to ready (budget 2 s); how long a gate change takes to reach the
answers (p99, budget 200 ms).
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GATES = 1000
NAMESPACES = 10
CALLERS_PROCESSES = 4
CALLERS_THREADS = 4
DURATION = float(os.environ.get("BENCH_SECONDS", "3"))
#: Rounds of runs (bare, sidecar, sidecar, bare) per app: the ratio is the median round's, so one round
#: disturbed by the rest of the machine (a neighbour, a CPU's clock) does not decide it.
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
THREADS = 8
WARMUP = 1.0
#: Wait for the sidecar's start-up writes to end before the measured runs (BENCH_SETTLE=0: do not).
SETTLE = os.environ.get("BENCH_SETTLE", "1") != "0"
LOADGEN = os.environ.get("BENCH_LOADGEN") or ("wrk" if shutil.which("wrk") else "python")
CHANGES = 50
SIDECAR_USER = "system:serviceaccount:canary-gate:canary-gate-sidecar"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(port: int, path: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"127.0.0.1:{port}{path} not ready")


def _bodies(count: int = 200) -> list[bytes]:
    rng = random.Random(7)
    out = []
    for _ in range(count):
        i = rng.randrange(GATES)
        ns, name = f"bench-{i % NAMESPACES}", f"app-{i}"
        out.append(
            json.dumps(
                {
                    "name": name,
                    "namespace": ns,
                    "phase": "Progressing",
                    "checksum": "85d557f47b",
                    "metadata": {"gate_name": name, "gate_namespace": ns},
                },
                separators=(",", ":"),
            ).encode()
        )
    return out


# -- load generator (child processes) -------------------------------------------------------------------
def _caller(port: int, path: str, bodies: list[bytes], until: float, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    latencies, errors, i = [], 0, 0
    while time.perf_counter() < until:
        body = bodies[i % len(bodies)]
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status not in (200, 403):
                errors += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        latencies.append(time.perf_counter() - t0)
    out.append((latencies, errors))


def _load_process(port: int, path: str, duration: float, start_at: float, queue) -> None:
    bodies = _bodies()
    while time.time() < start_at:
        time.sleep(0.001)
    until = time.perf_counter() + duration
    out: list = []
    threads = [threading.Thread(target=_caller, args=(port, path, bodies, until, out)) for _ in range(CALLERS_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(([x for lat, _ in out for x in lat], sum(e for _, e in out)))


def measure_load(port: int, path: str, duration: float = DURATION) -> dict[str, float]:
    """16 callers for ``duration`` seconds: requests/s, p50 and p99 latency (ms), errors."""
    return (_wrk_load if LOADGEN == "wrk" else _python_load)(port, path, duration)


WRK_SCRIPT = """
local requests, i = {}, 0
bad = 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  for _, body in ipairs(BODIES) do
    table.insert(requests, wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body))
  end
end
function request() i = i % #requests + 1; return requests[i] end
function response(status, headers, body) if status ~= 200 and status ~= 403 then bad = bad + 1 end end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    b + e.connect + e.read + e.write + e.timeout))
end
"""


#: With two CPUs or more, the servers under test run on CPU 0 and the load generator (and this process,
#: which hosts the emulator) on the others, so the generator never takes the servers' CPU. Off with
#: BENCH_PIN=0.
PIN = os.environ.get("BENCH_PIN", "1") != "0" and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
SERVER_CPUS = {0}
LOADGEN_CPUS = set(range(1, os.cpu_count() or 1))


def _on_server_cpus() -> None:
    if PIN:
        os.sched_setaffinity(0, SERVER_CPUS)


def _on_loadgen_cpus() -> None:
    if PIN:
        os.sched_setaffinity(0, LOADGEN_CPUS)


def _wrk_load(port: int, path: str, duration: float) -> dict[str, float]:
    """wrk, one thread, 16 connections; the request bodies are :func:`_bodies`, as for the Python one."""
    bodies = ", ".join("[[" + b.decode() + "]]" for b in _bodies())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(f"BODIES = {{{bodies}}}\n" + WRK_SCRIPT)
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{CALLERS_PROCESSES * CALLERS_THREADS}",
                f"-d{duration:g}s",
                "--timeout",
                "10s",
                "-s",
                f.name,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=_on_loadgen_cpus,
        ).stdout
    finally:
        os.unlink(f.name)
    result = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "errors": result["errors"],
        "requests": result["requests"],
        "seconds": result["duration_us"] / 1e6,
    }


def _python_load(port: int, path: str, duration: float) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.5  # let the spawned interpreters start first
    procs = [
        ctx.Process(target=_load_process, args=(port, path, duration, start_at, queue))
        for _ in range(CALLERS_PROCESSES)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=duration + 60) for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    return {
        "rps": len(latencies) / duration,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "errors": errors,
        "requests": len(latencies),
        "seconds": duration,
    }


def _combine(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Several runs of one app: throughput over all of them, latency the worst run's."""
    requests = sum(r["requests"] for r in runs)
    return {
        "rps": requests / sum(r["seconds"] for r in runs),
        "p50_ms": max(r["p50_ms"] for r in runs),
        "p99_ms": max(r["p99_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "requests": requests,
        "runs": runs,
    }


# -- the bare app --------------------------------------------------------------------------------------------
def bare_app(environ, start_response):
    """The baseline: read the body (Content-Length bytes), answer 200 with a 16-byte JSON body.

    No parsing, routing, metrics or werkzeug: what any WSGI webhook endpoint must at least do.
    """
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    body = b'{"allowed":true}'
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def serve_bare(port: int, threads: int = THREADS) -> None:
    """The bare app on the sidecar's server with the sidecar's settings."""
    from gate_sidecar.config import configure_logging
    from gate_sidecar.server import create_server

    configure_logging("text", "warning")  # as the sidecar run by the benchmark
    create_server(bare_app, host="127.0.0.1", port=port, threads=threads, ident="bare").run()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far; NaN where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- the run ---------------------------------------------------------------------------------------------------
def _populate(srv) -> None:
    import yaml

    for path in (ROOT / "deploy/crd/canarygate.yaml", ROOT / "canarygate/data/flagger-canary-crd.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                srv.apply(doc)
    for name in ("clusterrole.yaml", "clusterrolebinding.yaml"):
        srv.apply(yaml.safe_load((ROOT / "deploy/sidecar" / name).read_text()))
    for n in range(NAMESPACES):
        srv.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}})
    for gate, canary in _objects():
        srv.apply(gate)
        srv.apply(canary)


def _objects():
    """The benchmark's CanaryGates (a third with confirm-promotion closed) and their Canaries."""
    for i in range(GATES):
        ns, name = f"bench-{i % NAMESPACES}", f"app-{i}"
        yield (
            {
                "apiVersion": "piggysec.com/v1alpha1",
                "kind": "CanaryGate",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
                "spec": {
                    "confirm-promotion": "closed" if i % 3 == 0 else "opened",
                    "target": {"namespace": ns, "name": name},
                },
            },
            {
                "apiVersion": "flagger.app/v1beta1",
                "kind": "Canary",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10},
                },
                "status": {
                    "phase": "Progressing",
                    "canaryWeight": 10,
                    "conditions": [
                        {
                            "type": "Promoted",
                            "status": "Unknown",
                            "reason": "Progressing",
                            "lastTransitionTime": "2026-11-22T10:00:00Z",
                        }
                    ],
                },
            },
        )


def _propagation(srv, port: int) -> list[float]:
    """Seconds from a gate change accepted by the API to the sidecar's answer showing it."""
    import kubernetes

    from canarygate.kube.client import MERGE_PATCH, Kube

    tmp = tempfile.mkdtemp()
    kube = Kube(kubernetes.config.new_client_from_config(config_file=srv.write_kubeconfig(f"{tmp}/admin")))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    out = []
    for k in range(CHANGES):
        i = 1 + 3 * k  # opened confirm-promotion gates (i % 3 == 1)
        ns, name = f"bench-{i % NAMESPACES}", f"app-{i}"
        body = json.dumps({"name": name, "namespace": ns, "metadata": {"gate_name": name, "gate_namespace": ns}})
        kube.request(
            "PATCH",
            f"/apis/piggysec.com/v1alpha1/namespaces/{ns}/canarygates/{name}",
            body={"spec": {"confirm-promotion": "closed"}},
            content_type=MERGE_PATCH,
        )
        t0 = time.perf_counter()
        while True:
            conn.request("POST", "/confirm-promotion", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 403:
                break
            if time.perf_counter() - t0 > 5:
                raise TimeoutError(f"gate change on {ns}/{name} not seen after 5 s")
        out.append(time.perf_counter() - t0)
    return out


def run(*, duration: float = DURATION, print_table: bool = True) -> dict[str, Any]:
    from sandbox.apiserver import ApiServer

    figures: dict[str, Any] = {}
    tmp = tempfile.mkdtemp(prefix="bench-sidecar-")
    with ApiServer() as srv:
        _populate(srv)
        token = "bench-" + secrets.token_hex(8)
        srv.add_token(token, SIDECAR_USER, ("system:serviceaccounts", "system:serviceaccounts:canary-gate"))
        kubeconfig = srv.write_kubeconfig(f"{tmp}/sidecar", token=token)

        bare_port, side_port = _free_port(), _free_port()
        _on_loadgen_cpus()
        bare = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.sidecar", "--bare", str(bare_port)], cwd=ROOT, preexec_fn=_on_server_cpus
        )
        log_path = Path(tmp) / "sidecar.log"
        spawned = time.monotonic()
        with open(log_path, "wb") as log:
            sidecar = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gate_sidecar",
                    "--listen",
                    f"127.0.0.1:{side_port}",
                    "--kubeconfig",
                    kubeconfig,
                    "--threads",
                    str(THREADS),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=log,
                preexec_fn=_on_server_cpus,
            )
        try:
            _wait_http(side_port, "/readyz")
            figures["ready_after_spawn_s"] = time.monotonic() - spawned
            _wait_http(bare_port, "/")
            figures["rss_idle_mb"] = _rss_mb(sidecar.pid)

            # Warm-up, unmeasured, for both: each CanaryGate answered at least once, so the one-off
            # "held by" Events (a third of the gates are closed) are written before the measured runs.
            measure_load(bare_port, "/confirm-promotion", WARMUP)
            measure_load(side_port, "/confirm-promotion", WARMUP)
            # NB: and the start-up writes done: the history records of every CanaryGate whose rollout
            # runs (1,000 here), the first calls' status writes and those Events. They take the
            # writer's thread (and the GIL) for seconds once per start; the budgets are for the
            # steady state (BENCH_SETTLE=0 measures during them).
            figures["writes_settled_s"] = _writes_settled(srv) if SETTLE else None
            figures["api_writes_warmup"] = sum(1 for r in srv.requests if r.user == SIDECAR_USER and r.method != "GET")
            srv.clear_requests()
            window = time.time()
            cpu = {"bare": 0.0, "sidecar": 0.0}
            rounds: list[dict[str, list]] = []
            for _ in range(ROUNDS):
                rounds.append({"bare": [], "sidecar": []})
                for which in ("bare", "sidecar", "sidecar", "bare"):
                    pid = bare.pid if which == "bare" else sidecar.pid
                    before = _cpu_seconds(pid)
                    rounds[-1][which].append(
                        measure_load(bare_port if which == "bare" else side_port, "/confirm-promotion", duration)
                    )
                    cpu[which] += _cpu_seconds(pid) - before
            for which in cpu:
                figures[which] = _combine([run for r in rounds for run in r[which]])
                figures[which]["cpu_us_per_call"] = 1e6 * cpu[which] / max(1, figures[which]["requests"])
            # NB: the sidecar's periodic liveness probe (GET /version) and the watches it reopens when
            # they fall silent run on their own clock, whatever the calls; they are counted apart.
            during = [r for r in srv.requests if r.user == SIDECAR_USER and r.time >= window]
            background = [r for r in during if r.path == "/version" or r.verb == "watch"]
            figures["api_background_requests_during_load"] = len(background)
            figures["api_requests_during_load"] = len(during) - len(background)
            figures["api_requests_per_call"] = figures["api_requests_during_load"] / max(
                1, figures["sidecar"]["requests"]
            )
            figures["round_ratios"] = [_combine(r["sidecar"])["rps"] / _combine(r["bare"])["rps"] for r in rounds]
            # NB: median_low: with an even number of rounds, the lower of the two middle ones
            figures["throughput_ratio"] = statistics.median_low(figures["round_ratios"])
            figures["rss_mb"] = _rss_mb(sidecar.pid)
            changes = sorted(_propagation(srv, side_port))
            figures["change_p50_ms"] = 1000 * changes[len(changes) // 2]
            figures["change_p99_ms"] = 1000 * changes[min(len(changes) - 1, int(len(changes) * 0.99))]
            figures["change_max_ms"] = 1000 * changes[-1]
            # Time from a synced cache to ready: restart with the API up, read /readyz as fast as possible.
            figures["ready_after_sync_s"] = _ready_after_sync(sidecar, side_port, kubeconfig, log_path)
        finally:
            for proc in (bare, sidecar):
                proc.terminate()
                proc.wait(10)
    for which in ("bare", "sidecar"):
        figures[which]["app_us_per_call"] = app_us_per_call(_standalone_app(which))
    if print_table:
        print(table(figures))
    return figures


def app_us_per_call(app, calls: int = 20000, repeats: int = 3) -> float:
    """µs per call of a WSGI callable called in this process with the benchmark's bodies: the app's
    own work, without a server, threads or the rest of the machine (the best of ``repeats``)."""
    import io

    bodies = _bodies()
    environs = [
        {"REQUEST_METHOD": "POST", "PATH_INFO": "/confirm-promotion", "CONTENT_LENGTH": str(len(b))} for b in bodies
    ]

    def start_response(status: str, headers: list) -> None:
        pass

    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        for i in range(calls):
            environ = dict(environs[i % len(bodies)], **{"wsgi.input": io.BytesIO(bodies[i % len(bodies)])})
            app(environ, start_response)
        best = min(best, (time.perf_counter() - began) / calls)
    return best * 1e6


def _writes_settled(srv, quiet: float = 2.0, timeout: float = 120.0) -> float:
    """Wait until the sidecar has written nothing for ``quiet`` seconds; how long that took (s)."""
    began = time.monotonic()
    count, since = -1, began
    while time.monotonic() - began < timeout:
        now = sum(1 for r in srv.requests if r.user == SIDECAR_USER and r.method != "GET")
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return since - began
        time.sleep(0.1)
    raise RuntimeError(f"the sidecar was still writing {timeout:g}s after the warm-up ({count} writes)")


def _ready_after_sync(sidecar: subprocess.Popen, port: int, kubeconfig: str, log_path: Path) -> float:
    """Restart the sidecar; seconds between its 'cache synced' log line and /readyz answering 200.

    The sidecar logs when its cache has synced (time since start); /readyz is polled every 5 ms from
    the spawn, so the difference is what readiness adds on top of the sync.
    """
    sidecar.terminate()
    sidecar.wait(10)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gate_sidecar",
                "--listen",
                f"127.0.0.1:{port}",
                "--kubeconfig",
                kubeconfig,
                "--log-format",
                "json",
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    spawned = time.monotonic()
    try:
        _wait_http(port, "/readyz")
        ready = time.monotonic() - spawned
        # NB: the line is logged by a thread that polls the cache, possibly after /readyz turned 200.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in log_path.read_text().splitlines()[::-1]:
                if line.startswith("{") and "cache synced" in line:
                    synced = float(json.loads(line)["message"].rsplit(" in ", 1)[1].rstrip("s"))
                    return max(0.0, ready - synced)
            time.sleep(0.01)
        return float("nan")
    finally:
        proc.terminate()
        proc.wait(10)


# -- server comparison (python -m benchmarks.sidecar servers) ---------------------------------------------
SERVERS = ("waitress", "gunicorn")


def _standalone_app(which: str):
    """``bare`` or the sidecar app over a cache filled by hand with the benchmark's objects (no API; the
    writer is the sidecar's, not started, so the webhook path does what it does in the sidecar)."""
    if which == "bare":
        return bare_app
    import gc

    from gate_sidecar.app import create_app
    from gate_sidecar.cache import GateCache
    from gate_sidecar.writes import Writer

    objects = list(_objects())
    cache = GateCache().fill(gates=[g for g, _ in objects], canaries=[c for _, c in objects])
    # NB: the real writer, never started: the calls' notes are queued and kept, no API is called
    app = create_app(cache=cache, writer=Writer(None, cache, record_history=True))  # type: ignore[arg-type]
    gc.collect()
    gc.freeze()  # as the sidecar does once synced
    return app


def serve_standalone(server: str, which: str, port: int, threads: int = THREADS) -> None:
    from gate_sidecar.config import configure_logging

    configure_logging("text", "warning")
    app = _standalone_app(which)
    if server == "waitress":
        from gate_sidecar.server import create_server

        create_server(app, host="127.0.0.1", port=port, threads=threads).run()
    elif server == "gunicorn":
        # One worker process: the sidecar's cache, and the one-step consumption it guards, live in
        # one process; gthread runs the app in a thread pool as waitress does.
        from gunicorn.app.base import BaseApplication

        class Gunicorn(BaseApplication):
            def load_config(self):
                for key, value in {
                    "bind": f"127.0.0.1:{port}",
                    "workers": 1,
                    "worker_class": "gthread",
                    "threads": threads,
                    "keepalive": 30,
                    "loglevel": "warning",
                }.items():
                    self.cfg.set(key, value)

            def load(self):
                return app

        Gunicorn().run()
    else:
        raise SystemExit(f"unknown server {server}")


def compare_servers(duration: float = DURATION) -> list[tuple[str, dict, dict]]:
    """For each server: the bare app and the sidecar app (cache filled by hand), same load, ABBA order."""
    import importlib.util

    out = []
    for server in SERVERS:
        if importlib.util.find_spec(server) is None:
            print(f"{server} is not installed: skipped (pip install {server})", file=sys.stderr)
            continue
        ports = {which: _free_port() for which in ("bare", "sidecar")}
        procs = {
            which: subprocess.Popen(
                [sys.executable, "-m", "benchmarks.sidecar", "--serve", server, which, str(port)], cwd=ROOT
            )
            for which, port in ports.items()
        }
        try:
            _wait_http(ports["sidecar"], "/readyz")
            _wait_http(ports["bare"], "/")
            for which in ("bare", "sidecar"):
                measure_load(ports[which], "/confirm-promotion", WARMUP)
            runs: dict[str, list] = {"bare": [], "sidecar": []}
            for which in ("bare", "sidecar", "sidecar", "bare"):
                runs[which].append(measure_load(ports[which], "/confirm-promotion", duration))
            out.append((server, _combine(runs["bare"]), _combine(runs["sidecar"])))
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(10)
    return out


def servers_table(results) -> str:
    lines = [
        f"{len(results)} servers, {THREADS} threads, 1 process each; load generator {LOADGEN}; "
        f"2 runs x {duration_label()} per app",
        "server    app      req/s   p50 ms  p99 ms  errors  ratio",
    ]
    for server, bare, side in results:
        for which, f in (("bare", bare), ("sidecar", side)):
            ratio = f"{side['rps'] / bare['rps']:.0%}" if which == "sidecar" else ""
            lines.append(
                f"{server:<9} {which:<8} {f['rps']:>6.0f}  {f['p50_ms']:>6.2f}  {f['p99_ms']:>6.2f}  "
                f"{f['errors']:>6}  {ratio}"
            )
    return "\n".join(lines)


def duration_label() -> str:
    return f"{DURATION:g}s"


def table(f: dict[str, Any]) -> str:
    b, s = f["bare"], f["sidecar"]
    rows = [
        ("figure", "bare WSGI app", "gate sidecar", "budget"),
        ("throughput (req/s, 16 callers)", f"{b['rps']:.0f}", f"{s['rps']:.0f}", ""),
        ("throughput ratio", "", f"{f['throughput_ratio']:.0%}", ">= 80%"),
        (
            "CPU per call (µs, the server process's all threads)",
            f"{b['cpu_us_per_call']:.0f}",
            f"{s['cpu_us_per_call']:.0f} ({s['cpu_us_per_call'] / b['cpu_us_per_call']:.2f}x)",
            "",
        ),
        (
            "the app alone, in one process (µs per call)",
            f"{b['app_us_per_call']:.1f}",
            f"{s['app_us_per_call']:.1f} (+{s['app_us_per_call'] - b['app_us_per_call']:.1f})",
            "",
        ),
        ("p50 latency (ms)", f"{b['p50_ms']:.2f}", f"{s['p50_ms']:.2f}", ""),
        ("p99 latency (ms)", f"{b['p99_ms']:.2f}", f"{s['p99_ms']:.2f}", "< 10"),
        ("errors", str(b["errors"]), str(s["errors"]), "0"),
        (
            "API requests per webhook call",
            "",
            f"{f['api_requests_per_call']:.0f} "
            f"({f['api_requests_during_load']} in {s['requests']} calls; "
            f"{f['api_background_requests_during_load']} liveness probes and watch reopens apart)",
            "0",
        ),
        (
            "start-up writes (warm-up), then quiet after (s)",
            "",
            f"{f['api_writes_warmup']}, "
            + (f"{f['writes_settled_s']:.1f}" if f["writes_settled_s"] is not None else "not awaited (BENCH_SETTLE=0)"),
            "",
        ),
        ("resident memory (MB)", "", f"{f['rss_mb']:.1f} (idle {f['rss_idle_mb']:.1f})", "< 100"),
        ("spawn to ready (s)", "", f"{f['ready_after_spawn_s']:.2f}", ""),
        ("synced cache to ready (s)", "", f"{f['ready_after_sync_s']:.3f}", "< 2"),
        ("gate change to answer p50/p99 (ms)", "", f"{f['change_p50_ms']:.0f} / {f['change_p99_ms']:.0f}", "p99 < 200"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if LOADGEN == "wrk":
        generator = "load generator: wrk (1 thread, 16 connections)"
    else:
        generator = (
            "load generator: Python, 4 processes x 4 threads (BENCH_LOADGEN=python, or no wrk: it shares the CPUs with "
            "the servers, so these figures bound the generator as much as the servers)"
        )
    if PIN:
        generator += f"; servers pinned to CPU {sorted(SERVER_CPUS)}, generator and emulator to {sorted(LOADGEN_CPUS)}"
    per_round = " / ".join(f"{ratio:.0%}" for ratio in f["round_ratios"])
    per_run = "; ".join(
        f"{which} " + " / ".join(f"{r['rps']:.0f}" for r in f[which]["runs"]) for which in ("bare", "sidecar")
    )
    return (
        f"{GATES} CanaryGates, {CALLERS_PROCESSES * CALLERS_THREADS} callers, {ROUNDS} rounds of 4 runs x "
        f"{DURATION:g}s (bare, sidecar, sidecar, bare), waitress {THREADS} threads, {os.cpu_count()} CPUs\n"
        f"{generator}\nratio: the median round's; throughput and CPU: over all runs; latency: the worst run's\n"
        + "\n".join(lines)
        + f"\nratio per round: {per_round}\nreq/s per run: {per_run}"
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--bare":
        serve_bare(int(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve_standalone(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1:] == ["servers"]:
        print(servers_table(compare_servers()))
    else:
        run()
