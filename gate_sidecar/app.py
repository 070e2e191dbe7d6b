"""The gate sidecar's WSGI application: Flagger's webhooks answered from the cache, in memory.

One class, routing as data (werkzeug ``Map``), an ``on_<endpoint>`` handler per route, and a
wrappable ``wsgi_app``. Built by :func:`create_app` from its collaborators; no module-level state.

A webhook call reads the cache and answers; it makes no API request. What has to be written (a
consumed one-step approval, the latest event, the "held by" Event) is handed to the writer, which
writes in its own thread.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Iterable
from typing import Any

import werkzeug
from werkzeug.exceptions import HTTPException, InternalServerError, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

import canarygate
from canarygate import gates
from canarygate.annotations import SCOPE_STEP
from canarygate.resolution import LIVE, resolve_gate

from gate_sidecar import answers
from gate_sidecar.cache import GateCache
from gate_sidecar.metrics import Metrics
from gate_sidecar.writes import NullWriter

log = logging.getLogger(__name__)

JSON = "application/json"


class SidecarRequest(Request):
    #: Flagger's payloads are a few hundred bytes; anything over 64 KiB is refused with 413.
    max_content_length = answers.MAX_BODY


class GateSidecar:
    """Answers ``POST /<gate>`` and ``/event`` for Flagger, and the probes, version and metrics."""

    def __init__(
        self,
        *,
        cache: GateCache,
        writer: NullWriter,
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.cache = cache
        self.writer = writer
        self.metrics = metrics
        self.clock = clock
        #: Set on SIGTERM: /readyz answers 503 so the Service stops sending calls here.
        self.draining = False
        self.url_map = Map(
            [Rule(f"/{gate}", endpoint="gate", methods=["POST"], defaults={"hook": gate}) for gate in gates.GATES]
            + [
                Rule("/event", endpoint="event", methods=["POST"]),
                Rule("/healthz", endpoint="healthz", methods=["GET"]),
                Rule("/readyz", endpoint="readyz", methods=["GET"]),
                Rule("/version", endpoint="version", methods=["GET"]),
                Rule("/metrics", endpoint="metrics", methods=["GET"]),
            ],
            strict_slashes=False,
        )
        #: Exact (method, path) -> (endpoint, values), derived from the Map: the hot path skips the
        #: Map's general matcher; anything else (404, 405, HEAD) goes through it.
        self._fast_routes = {
            (method, rule.rule): (rule.endpoint, dict(rule.defaults or {}))
            for rule in self.url_map.iter_rules()
            for method in rule.methods or ()
        }

    # -- webhooks ------------------------------------------------------------------------------------
    def on_gate(self, request: Request, hook: str) -> Response:
        payload = self._payload(request)
        namespace, name = payload["namespace"], payload["name"]
        lookup = self.cache.find(namespace, name, payload.get("metadata"))
        canary_ref = f"{namespace}/{name}"
        if not self.cache.trusted(self.clock()):
            why = (
                "the sidecar has not synced its cache with the API server yet"
                if not self.cache.synced
                else f"the API server has not answered for over {self.cache.fail_closed_after:g}s"
            )
            return self._answer(hook, *answers.unknown_answer(hook, ref=lookup.ref, canary=canary_ref, why=why))
        if not lookup.watched:
            why = f"namespace {lookup.key[0]} is not watched by this sidecar (see --namespaces)"
            return self._answer(hook, *answers.unknown_answer(hook, ref=lookup.ref, canary=canary_ref, why=why))
        entry = lookup.entry
        if entry is not None and entry.gate is None:
            why = f"CanaryGate {lookup.ref} cannot be read: {entry.error}"
            return self._answer(hook, *answers.unknown_answer(hook, ref=lookup.ref, canary=canary_ref, why=why))
        gate = entry.gate if entry is not None else None
        target = entry.target if entry is not None and entry.target else (namespace, name)
        canary = self.cache.canary(*target)
        decision = resolve_gate(gate, hook, canary=canary, consumed=self.cache.consumed(lookup.key))
        if decision.opened and decision.source == LIVE and decision.scope == SCOPE_STEP and gate is not None:
            change = decision.change
            assert change is not None
            if self.cache.consume(lookup.key, change.encode()):
                self.writer.consume(lookup.key, gate, change)
            else:  # a concurrent call used this step first
                decision = resolve_gate(gate, hook, canary=canary, consumed=self.cache.consumed(lookup.key))
        status, body = answers.gate_answer(
            hook, decision, ref=lookup.ref, found_by=lookup.how, found=gate is not None, canary=canary_ref
        )
        if status != 200 and hook != gates.ROLLBACK and gate is not None:
            self.writer.held(lookup.key, hook, decision, canary)
        self.metrics.decided(hook, status, decision.source)
        return Response(answers.encode(body), status, mimetype=JSON)

    def on_event(self, request: Request) -> Response:
        payload = self._payload(request)
        lookup = self.cache.find(payload["namespace"], payload["name"], payload.get("metadata"))
        entry = lookup.entry
        recorded = entry is not None and entry.gate is not None
        if recorded:
            self.writer.note_event(lookup.key, payload)
        body = {"recorded": recorded, "canarygate": lookup.ref, "found_by": lookup.how}
        return Response(answers.encode(body), 200, mimetype=JSON)

    # -- probes and information ------------------------------------------------------------------------
    def on_healthz(self, request: Request) -> Response:
        return Response(answers.encode({"status": "ok"}), 200, mimetype=JSON)

    def on_readyz(self, request: Request) -> Response:
        now = self.clock()
        body: dict[str, Any] = {
            "synced": self.cache.synced,
            "cache_age_seconds": _finite(self.cache.age(now)),
            "canarygates": len(self.cache),
        }
        if self.draining:
            body["status"] = "shutting down"
        elif not self.cache.synced:
            body["status"] = "cache not synced yet"
        elif not self.cache.trusted(now):
            body["status"] = f"API server unreachable for over {self.cache.fail_closed_after:g}s"
        else:
            body["status"] = "ready"
            return Response(answers.encode(body), 200, mimetype=JSON)
        return Response(answers.encode(body), 503, mimetype=JSON)

    def on_version(self, request: Request) -> Response:
        body = {
            "version": canarygate.__version__,
            "component": "gate-sidecar",
            "python": platform.python_version(),
            "werkzeug": werkzeug.__version__ if hasattr(werkzeug, "__version__") else _dist_version("werkzeug"),
        }
        return Response(answers.encode(body), 200, mimetype=JSON)

    def on_metrics(self, request: Request) -> Response:
        data, content_type = self.metrics.exposition()
        return Response(data, 200, content_type=content_type)

    # -- plumbing --------------------------------------------------------------------------------------
    def _payload(self, request: Request) -> answers.Payload:
        return answers.decode_body(request.get_data(cache=False))

    def _answer(self, hook: str, status: int, body: answers.Answer) -> Response:
        self.metrics.decided(hook, status, body.get("source", ""))
        return Response(answers.encode(body), status, mimetype=JSON)

    def dispatch_request(self, request: Request) -> tuple[str, Response]:
        endpoint = "unmatched"
        try:
            route = self._fast_routes.get((request.method, request.environ.get("PATH_INFO", "")))
            if route is not None:
                endpoint, values = route
            else:
                endpoint, values = self.url_map.bind_to_environ(request.environ).match()
            return endpoint, getattr(self, f"on_{endpoint}")(request, **values)
        except HTTPException as e:
            return endpoint, error_response(e)
        except Exception:
            log.exception("bug while answering %s %s", request.method, request.path)
            return endpoint, error_response(InternalServerError("the sidecar failed; see its log"))

    def wsgi_app(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        request = SidecarRequest(environ)
        endpoint, response = self.dispatch_request(request)
        result = response(environ, start_response)
        self.metrics.observe(endpoint, time.perf_counter() - started)
        return result

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)


def error_response(e: HTTPException) -> Response:
    """Every HTTP error as JSON ``{code, name, message}``, keeping its status and headers (Allow…)."""
    response = e.get_response()
    if isinstance(e, RequestEntityTooLarge):
        message = f"the body is over {answers.MAX_BODY // 1024} KiB: Flagger's payloads are far smaller"
    else:
        message = e.description or e.name
    response.set_data(answers.encode({"code": e.code, "name": e.name, "message": message}))
    response.mimetype = JSON
    return response


def create_app(
    *,
    cache: GateCache,
    writer: NullWriter | None = None,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> GateSidecar:
    """The sidecar app over ``cache``; ``writer`` None writes nothing (a NullWriter)."""
    metrics = metrics or Metrics()
    metrics.watch_cache(age=lambda: cache.age(clock()), synced=lambda: cache.synced, size=lambda: len(cache))
    return GateSidecar(cache=cache, writer=writer or NullWriter(), metrics=metrics, clock=clock)


def _finite(value: float) -> float | None:
    return None if value == float("inf") else round(value, 3)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""
