"""Watching real Flagger from outside: the calls it makes, and the ticks they make up.

Real Flagger keeps no history a test can read, and its Kubernetes Events are throttled by
client-go's correlator, so the test bench records what it does where it shows:

* :class:`HookProxy` sits between Flagger and a webhook server (the gate sidecar): it forwards
  every request unchanged, answers with the upstream's answer, and records each call (time,
  hook, payload, status, body). When the upstream is down it drops the connection, as a refused
  connection would look to Flagger.
* :class:`RealFlagger` gives the simulator's test interface, ``wait_for_phase`` and ``history``,
  for real Flagger: a tick is a burst of calls Flagger made for one Canary (calls within a tick
  are sequential and synchronous, ticks are at least 10 s apart), with the Canary's status and
  the mesh's weights as they stood after it (watched, not guessed), and the event webhook's
  messages as its events.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import kubernetes

from sandbox.flagger.records import Routes  # the simulator's; both tiers' ticks carry the same

FLAGGER_AGENT = "Go-http-client"
TICK_GAP = 2.5  # seconds: calls of one tick come within this of each other; ticks are >= 10 s apart


@dataclass(frozen=True)
class Call:
    time: float
    hook: str
    payload: dict[str, Any]
    status: int
    body: str
    agent: str

    @property
    def key(self) -> tuple[str, str]:
        return self.payload.get("namespace", ""), self.payload.get("name", "")


class HookProxy:
    """A recording pass-through on 127.0.0.1 in front of ``upstream_port``."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=raw or None, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                except OSError:
                    self.close_connection = True
                    self.connection.close()  # what a refused connection looks like to the caller
                    return
                finally:
                    upstream.close()
                proxy._record(self.path, raw, response.status, data, self.headers.get("User-Agent", ""))
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="hook-proxy")
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, path: str, raw: bytes, status: int, data: bytes, agent: str) -> None:
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        call = Call(
            time.time(), path.lstrip("/").split("?", 1)[0], payload, status, data.decode(errors="replace"), agent
        )
        with self._lock:
            self.calls.append(call)

    def flagger_calls(self, namespace: str, name: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.agent.startswith(FLAGGER_AGENT) and c.key == (namespace, name)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass(frozen=True)
class Event:
    type: str
    message: str


@dataclass
class Tick:
    """The simulator's Tick, observed: the calls of one burst and the state right after it."""

    status: dict[str, Any]
    routes: Routes
    events: list[Event] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    status_writes: list[dict[str, Any]] = field(default_factory=list)
    time: float = 0.0

    @property
    def phase(self) -> str:
        return self.status.get("phase", "")

    def messages(self) -> list[str]:
        return [e.message for e in self.events]

    def hooks(self) -> list[str]:
        return [c.hook for c in self.calls if c.hook != "event"]


class _Watcher:
    """Every status a Canary showed, and every weight its VirtualService carried, with times."""

    def __init__(self, api_client: kubernetes.client.ApiClient, group: str, version: str, plural: str):
        self.api = kubernetes.client.CustomObjectsApi(api_client)
        self.args = (group, version, plural)
        self.seen: dict[tuple[str, str], list[tuple[float, dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{plural}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listing = cast(dict[str, Any], self.api.list_cluster_custom_object(*self.args))  # NB: decoded JSON
                for item in listing.get("items") or []:
                    self._note(item)
                watch = kubernetes.watch.Watch()
                for event in watch.stream(
                    self.api.list_cluster_custom_object,
                    *self.args,
                    resource_version=listing["metadata"]["resourceVersion"],
                    timeout_seconds=30,
                ):
                    if self._stop.is_set():
                        watch.stop()
                        return
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._note(event["object"])
            except Exception:  # noqa: BLE001 - an API server restart: list and watch again
                self._stop.wait(0.5)

    def _note(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            history = self.seen.setdefault(key, [])
            if not history or history[-1][1] != obj:
                history.append((time.time(), obj))

    def at(self, key: tuple[str, str], when: float) -> dict[str, Any] | None:
        """The object as it stood at ``when`` (the last version seen before it)."""
        with self._lock:
            before = [obj for t, obj in self.seen.get(key, []) if t <= when]
        return before[-1] if before else None

    def between(self, key: tuple[str, str], start: float, end: float) -> list[dict[str, Any]]:
        with self._lock:
            return [obj for t, obj in self.seen.get(key, []) if start <= t < end]

    def stop(self) -> None:
        self._stop.set()


def istio_routes(virtual_service: dict[str, Any] | None) -> Routes:
    """The weights Flagger's Istio router wrote: the first HTTP route's primary and canary."""
    if not virtual_service:
        return Routes()
    http_routes = (virtual_service.get("spec") or {}).get("http") or []
    weights = {"primary": 100, "canary": 0}
    mirrored = False
    if http_routes:
        route = http_routes[-1]
        mirrored = bool(route.get("mirror"))
        for destination in route.get("route") or []:
            host = (destination.get("destination") or {}).get("host", "")
            role = "canary" if host.split(".")[0].endswith("-canary") else "primary"
            weights[role] = int(destination.get("weight") or 0)
    return Routes(weights["primary"], weights["canary"], mirrored)


class RealFlagger:
    """The Flagger simulator's test interface (``wait_for_phase``, ``history``) for real Flagger."""

    real = True

    def __init__(self, kubeconfig: str, proxies: Iterable[HookProxy], *, timeout_scale: float = 1.0):
        """``timeout_scale`` stretches the waits of tests written for the simulator's time scale."""
        self.timeout_scale = timeout_scale
        self.api_client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
        self.custom = kubernetes.client.CustomObjectsApi(self.api_client)
        self._proxies = proxies
        self._canaries = _Watcher(self.api_client, "flagger.app", "v1beta1", "canaries")
        self._routes = _Watcher(self.api_client, "networking.istio.io", "v1beta1", "virtualservices")

    def close(self) -> None:
        self._canaries.stop()
        self._routes.stop()
        self.api_client.close()

    def __enter__(self) -> RealFlagger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_phase(
        self, namespace: str, name: str, phase: str | Iterable[str], timeout: float = 60.0
    ) -> dict[str, Any]:
        phases = {phase} if isinstance(phase, str) else set(phase)
        timeout *= self.timeout_scale
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                canary = cast(  # NB: the decoded JSON (the client annotates it as object)
                    dict[str, Any],
                    self.custom.get_namespaced_custom_object("flagger.app", "v1beta1", namespace, "canaries", name),
                )
                last = (canary.get("status") or {}).get("phase", "")
                if last in phases:
                    return canary
            except kubernetes.client.ApiException as e:
                if e.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"canary {namespace}/{name} not in {sorted(phases)} after {timeout:.0f} s (phase {last or 'none'})"
                )
            time.sleep(0.5)

    def calls(self, namespace: str, name: str) -> list[Call]:
        calls = [c for p in list(self._proxies) for c in p.flagger_calls(namespace, name)]
        return sorted(calls, key=lambda c: c.time)

    def history(self, namespace: str, name: str) -> list[Tick]:
        """The ticks Flagger has run for one Canary that called its webhooks, oldest first.

        The last burst counts once no call has come for TICK_GAP seconds (it may still be running).
        """
        key = (namespace, name)
        calls = self.calls(namespace, name)
        bursts: list[list[Call]] = []
        for call in calls:
            if bursts and call.time - bursts[-1][-1].time <= TICK_GAP:
                bursts[-1].append(call)
            else:
                bursts.append([call])
        if bursts and time.time() - bursts[-1][-1].time <= TICK_GAP:
            bursts.pop()
        ticks = []
        for i, burst in enumerate(bursts):
            end = bursts[i + 1][0].time if i + 1 < len(bursts) else time.time()
            after = min(end, burst[-1].time + TICK_GAP) - 0.01
            canary = self._canaries.at(key, after) or {}
            service = ((canary.get("spec") or {}).get("service") or {}).get("name") or (
                (canary.get("spec") or {}).get("targetRef") or {}
            ).get("name", name)
            routes = istio_routes(self._routes.at((namespace, service), after))
            events = [
                Event(
                    c.payload.get("metadata", {}).get("eventType", ""),
                    c.payload.get("metadata", {}).get("eventMessage", ""),
                )
                for c in burst
                if c.hook == "event"
            ]
            writes = [o.get("status") or {} for o in self._canaries.between(key, burst[0].time, end)]
            ticks.append(
                Tick(
                    status=canary.get("status") or {},
                    routes=routes,
                    events=events,
                    calls=burst,
                    status_writes=writes,
                    time=burst[0].time,
                )
            )
        return ticks
