"""The gate sidecar's WSGI application: Flagger's webhooks answered from the cache, in memory.

One class, routing as data (werkzeug ``Map``), an ``on_<endpoint>`` handler per route, and a
wrappable ``wsgi_app``. Built by :func:`create_app` from its collaborators; no module-level state.

A webhook call reads the cache and answers; it makes no API request, except that a one-step approval
is recorded as used in the API (one conditional write, :meth:`Writer.consume`) before "go on" is
answered. What else has to be written ( the latest event, the "held by" Event) is handed to the writer, which
writes in its own thread.

The hot path (measured in BENCHMARKS.md): a gate call whose route is an exact ``POST`` route of the
``Map`` and whose body has a plain ``Content-Length`` within the limit is answered straight from the
WSGI environ, without werkzeug's Request and Response objects; everything else (other methods,
trailing slashes, chunked or oversized bodies, 404, 405) goes through the ``Map`` and werkzeug as
before. Both paths share :meth:`GateSidecar.decide`, which keeps each encoded answer, by what the
call is about, until the CanaryGates a lookup reads change (``GateCache.index_version``) or the
cached CanaryGate, Canary or consumed steps it was computed from are replaced; a kept answer skips
the lookup too.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import werkzeug
from werkzeug.exceptions import ClientDisconnected, HTTPException, InternalServerError, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

import canarygate
from canarygate import gates, hooks, rendering, rollouts
from canarygate.model import Canary, CanaryGate
from canarygate.resolution import INVALID, LIVE, Decision, resolve_gate
from gate_sidecar import answers
from gate_sidecar.cache import Entry, GateCache, Key, Lookup, named_gate
from gate_sidecar.metrics import Metrics, decision_labels
from gate_sidecar.writes import NullWriter

log = logging.getLogger(__name__)

JSON = "application/json"
#: Status lines as werkzeug's Response writes them ("403 FORBIDDEN"), so both paths send the same.
STATUS_LINES = {code: f"{code} {name.upper()}" for code, name in HTTP_STATUS_CODES.items()}
#: Encoded answers kept at most (each a few hundred bytes); the table is emptied when full, so
#: payloads naming ever new Canaries cannot grow it without bound.
MAX_CACHED_ANSWERS = 8192
#: Decoded payloads kept by their raw bytes (Flagger sends the same bytes for a Canary until its phase
#: or checksum changes): at most this many, each at most MAX_MEMO_BODY bytes (~5 MB in all).
MAX_CACHED_PAYLOADS = 4096
MAX_MEMO_BODY = 1024
#: A one-step approval lost to a concurrent change is re-decided from the current entry at most this
#: many times in one call; a CanaryGate changing faster than that answers 503 (Flagger asks again).
DECIDE_ATTEMPTS = 3


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
        #: What a call is about (:func:`_call_key`) -> its last reusable answer and what it was
        #: computed from (see :meth:`decide`).
        self._answers: dict[tuple, _Answer] = {}
        self._payloads: dict[bytes, answers.Payload] = {}

    # -- webhooks ------------------------------------------------------------------------------------
    def on_gate(self, request: Request, hook: str) -> Response:
        status, body = self.decide(self._payload(request.get_data(cache=False)), hook)
        return Response(body, status, mimetype=JSON)

    def _payload(self, raw: bytes, *, memo: bool = True) -> answers.Payload:
        """The checked payload of a body (BadRequest if unusable), for both paths and every endpoint.

        With ``memo`` (gate calls: Flagger repeats the same bytes) it is decoded once per distinct
        body: payloads are only read, never changed, so one decoded dict serves every call with these
        bytes. Event bodies differ every time (timestamps) and are not kept.
        """
        payload = self._payloads.get(raw) if memo else None
        if payload is None:
            payload = answers.decode_body(raw)
            if memo and len(raw) <= MAX_MEMO_BODY:
                if len(self._payloads) >= MAX_CACHED_PAYLOADS:
                    self._payloads.clear()
                self._payloads[raw] = payload
        return payload

    def decide(self, payload: answers.Payload, hook: str) -> tuple[int, bytes]:
        """The status and encoded body answering ``hook`` for ``payload``, with its side effects.

        Side effects on every call, cached or not: the decision is counted, a closed gate that
        holds a rollout is reported to the writer (it announces each hold once), and a one-step
        approval is consumed (those answers are never cached).

        A one-step approval is used once: :meth:`GateCache.consume` takes it only if the current
        cached entry still holds it untaken (one process), and the writer then removes it from the
        API with a conditional write before "go on" is answered (every replica and restart): the
        one API write on this path, for such calls only.
        """
        namespace, name = payload["namespace"], payload["name"]
        metadata = payload.get("metadata")
        call = _call_key(hook, namespace, name, metadata)
        memo = self._answers.get(call)
        if (
            memo is not None
            and self.cache.holds(memo.index_version, memo.key, memo.entry, memo.target, memo.canary, memo.consumed)
            and self.cache.trusted(self.clock())
        ):
            return self._answered(memo)
        index_version = self.cache.index_version  # NB: before find(): a change meanwhile voids the memo
        canary_ref = f"{namespace}/{name}"
        lookup = self.cache.find(namespace, name, metadata)
        if not self.cache.trusted(self.clock()):
            why = (
                "the sidecar has not synced its cache with the API server yet"
                if not self.cache.synced
                else f"nothing has arrived from the API server for over {self.cache.fail_closed_after:g}s"
            )
            return self._unknown(
                hook, lookup.ref, canary_ref, why, guarded=self._guarded(hook, lookup, namespace, name)
            )
        if not lookup.watched:
            why = f"namespace {lookup.key[0]} is not watched by this sidecar (see --namespaces)"
            return self._unknown(hook, lookup.ref, canary_ref, why)
        if lookup.refused:  # named but missing, or another namespace's: never the defaults, never its state
            return self._unknown(hook, lookup.ref, canary_ref, lookup.refused)
        if lookup.rivals:
            return self._unknown(
                hook,
                lookup.ref,
                canary_ref,
                rivals_problem(lookup.rivals, canary_ref),
                guarded=self._guarded(hook, lookup, namespace, name),
            )
        entry = lookup.entry
        for _ in range(DECIDE_ATTEMPTS):
            if entry is not None and entry.gate is None:
                return self._unknown(
                    hook,
                    lookup.ref,
                    canary_ref,
                    f"CanaryGate {lookup.ref} cannot be read: {entry.error}",
                    guarded=self._guarded(hook, lookup, namespace, name),
                )
            target = entry.target if entry is not None and entry.target else (namespace, name)
            canary = self.cache.canary(*target)
            consumed = self.cache.consumed(lookup.key)
            resolved = self._resolve(hook, lookup, entry, canary, consumed, canary_ref)
            if resolved is None:  # the step was taken or replaced meanwhile: decide from the current entry
                entry = self.cache.entry(lookup.key)
                continue
            status, body, decision, cacheable = resolved
            break
        else:
            why = f"CanaryGate {lookup.ref} changed while this call was being answered; ask again"
            return self._unknown(hook, lookup.ref, canary_ref, why)
        answer = _Answer(
            index_version,
            lookup.key,
            entry,
            target,
            canary,
            consumed,
            status,
            body,
            decision_labels(hook, status, decision.source),
            held=(lookup.key, hook, decision, canary)
            if status != 200 and hook != gates.ROLLBACK and entry is not None
            else None,
            # NB: show reads them during a rollout
            called=(lookup.key, hook, status, canary_ref)
            if entry is not None and canary is not None and canary.active
            else None,
        )
        if cacheable:
            if len(self._answers) >= MAX_CACHED_ANSWERS:
                self._answers.clear()
            self._answers[call] = answer
        return self._answered(answer)

    def _answered(self, answer: _Answer) -> tuple[int, bytes]:
        """The side effects of every call (see :meth:`decide`), then the answer."""
        if answer.held is not None:
            self.writer.held(*answer.held)
        if answer.called is not None:
            self.writer.called(*answer.called)
        self.metrics.count_decision(answer.labels)
        return answer.status, answer.body

    def _resolve(
        self,
        hook: str,
        lookup: Lookup,
        entry: Entry | None,
        canary: Canary | None,
        consumed: frozenset[str],
        canary_ref: str,
    ) -> tuple[int, bytes, Decision, bool] | None:
        """Resolve and encode; the last item says whether the answer may be reused (not a consumed step).

        None when the decision is a one-step approval that :meth:`GateCache.consume` refused (taken
        by another call, or no longer in the cached entry): the caller decides again.
        """
        gate = entry.gate if entry is not None else None
        decision = resolve_gate(gate, hook, canary=canary, consumed=consumed)
        cacheable = True
        stale = ""
        if (
            decision.source == LIVE
            and decision.opened
            and decision.change is not None
            and canary is not None
            and rollouts.needs_revision_check(decision.change, canary)
        ):
            cacheable = False  # depends on the Deployment and its configs, which the cache does not hold
            revision = self.writer.target_revision(canary)
            verdict, stale = (
                rollouts.revision_verdict(decision.change, revision) if revision is not None else (None, "")
            )
            if verdict is None or verdict == rollouts.UNBOUND:
                why = stale or (
                    f"the target Deployment of Canary {canary_ref} or its configs cannot be read "
                    "to check that the approval names them"
                )
                if verdict == rollouts.UNBOUND:
                    self.writer.review("gate", lookup.key)  # the writer binds it, off this path
                status, body = answers.unknown_answer(hook, ref=lookup.ref, canary=canary_ref, why=why)
                return status, answers.encode(body), Decision(hook, gates.CLOSED, INVALID, problem=why), False
            if verdict == rollouts.OTHER:
                change = decision.change
                decision = resolve_gate(gate, hook, canary=canary, consumed=consumed | {change.identity})
        if (
            decision.opened
            and decision.source == LIVE
            and decision.change is not None
            and rollouts.used_on_answer(decision.change)
            and gate is not None
        ):
            cacheable = False
            change = decision.change
            if not self.cache.consume(lookup.key, hook, change.identity):
                return None
            # NB: "go on" only once the API records the approval as used (writes.Writer.consume): a
            # conditional removal of the stored text, so other replicas and restarts cannot reuse it.
            used = self.writer.consume(lookup.key, gate, change)
            if used == "skipped":
                return None  # gone from the API (used elsewhere): decide again; it stays consumed here
            if used == "error":
                self.cache.release(lookup.key, change.identity)  # the next call's write decides again
                why = (
                    f"the one-step approval of {hook} on CanaryGate {lookup.ref} could not be recorded as used "
                    "in the API server, so it was not used; Flagger asks again"
                )
                status, body = answers.unknown_answer(hook, ref=lookup.ref, canary=canary_ref, why=why)
                return status, answers.encode(body), Decision(hook, gates.CLOSED, INVALID, problem=why), False
        unreadable = unreadable_check(gate, hook)
        if unreadable is not None:  # a check nobody can read holds the step it guards
            decision = Decision(hook, gates.CLOSED, INVALID, problem=unreadable)
        if not decision.known:
            if hook in hooks.CHECK_GATES:
                cacheable = False  # NB: guarded reads the call's own Canary, which a kept answer does not check
            status, body = answers.invalid_answer(
                hook,
                decision,
                ref=lookup.ref,
                found_by=lookup.how,
                canary=canary_ref,
                guarded=self._guarded(hook, lookup, *canary_ref.split("/", 1)),
            )
        else:
            status, body = answers.gate_answer(
                hook,
                decision,
                ref=lookup.ref,
                found_by=lookup.how,
                found=gate is not None,
                canary=canary_ref,
                passed_over=lookup.passed_over,
            )
            if stale:
                body["message"] = f"{body['message']}; {stale}"
        return status, answers.encode(body), decision, cacheable

    def _guarded(self, hook: str, lookup: Lookup, namespace: str, name: str) -> bool:
        """Whether the Canary of the call sends both confirm gates to us for this CanaryGate and its
        strategy asks one of them before the step after this check (canarygate.hooks.OUTAGE_RULE);
        only asked for the check hooks, from the cache as it stands."""
        if hook not in hooks.CHECK_GATES:
            return False
        canary = self.cache.canary(namespace, name)
        if canary is None:
            return False
        analysis = (canary.raw.get("spec") or {}).get("analysis") or {}
        covered = rendering.coverage_for(lookup.key[0], lookup.key[1], canary.webhooks)
        return hooks.guarded(covered) and hooks.holds_next_step(hook, analysis)

    def _unknown(self, hook: str, ref: str, canary_ref: str, why: str, *, guarded: bool = False) -> tuple[int, bytes]:
        status, body = answers.unknown_answer(hook, ref=ref, canary=canary_ref, why=why, guarded=guarded)
        self.metrics.decided(hook, status, body.get("source", ""))
        return status, answers.encode(body)

    def on_event(self, request: Request) -> Response:
        payload = self._payload(request.get_data(cache=False), memo=False)
        lookup = self.cache.find(payload["namespace"], payload["name"], payload.get("metadata"))
        entry = lookup.entry
        recorded = entry is not None and entry.gate is not None and not lookup.rivals
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
    def dispatch_request(self, request: Request) -> tuple[str, Response]:
        endpoint = "unmatched"
        values: Mapping[str, Any]
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
        route = self._fast_routes.get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
        if route is not None and route[0] == "gate":
            length = _plain_length(environ)
            if length is not None:
                result = self._fast_gate(environ, start_response, route[1]["hook"], length)
                self.metrics.observe("gate", time.perf_counter() - started)
                return result
        request = SidecarRequest(environ)
        endpoint, response = self.dispatch_request(request)
        result = response(environ, start_response)
        self.metrics.observe(endpoint, time.perf_counter() - started)
        return result

    def _fast_gate(self, environ: dict[str, Any], start_response: Callable, hook: str, length: int) -> Iterable[bytes]:
        """A gate call answered from the environ: what ``on_gate`` answers, without werkzeug's objects."""
        try:
            raw = environ["wsgi.input"].read(length) if length else b""
            if len(raw) != length:
                raise ClientDisconnected()  # what werkzeug's LimitedStream says of a short body
            status, body = self.decide(self._payload(raw), hook)
        except HTTPException as e:
            return error_response(e)(environ, start_response)
        except Exception:
            log.exception("bug while answering %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
            return error_response(InternalServerError("the sidecar failed; see its log"))(environ, start_response)
        start_response(STATUS_LINES[status], [("Content-Type", JSON), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        return self.wsgi_app(environ, start_response)


def unreadable_check(gate: CanaryGate | None, hook: str) -> str | None:
    """For a confirm gate that guards a check (pause gates), what is wrong with an unreadable check gate."""
    if gate is None or hook not in hooks.PAUSE_GATES:
        return None
    for check in hooks.CHECK_GATES:
        if check in gate.invalid:
            return f"the state of check gate {check} cannot be read ({gate.invalid[check]}), so its step is held"
    return None


def rivals_problem(rivals: Iterable[tuple[str, str]], canary_ref: str) -> str:
    """Why a call cannot be answered when several CanaryGates name its Canary in spec.target."""
    names = ", ".join(f"{namespace}/{name}" for namespace, name in rivals)
    return (
        f"CanaryGates {names} all name Canary {canary_ref} in spec.target, so which one rules is unknown; "
        "keep spec.target on one of them (delete or retarget the others), or name the CanaryGate in the "
        "Canary's webhook metadata gate_name/gate_namespace (kubectl gate apply renders it)"
    )


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


class _Answer(NamedTuple):
    """A reusable answer and what it was computed from (:meth:`GateCache.holds` checks the first six)."""

    index_version: int
    key: Key
    entry: Entry | None
    #: The Canary the answer read (the entry's target, or the call's own).
    target: Key
    canary: Canary | None
    consumed: frozenset[str]
    status: int
    body: bytes
    #: The decision counter's labels (:func:`gate_sidecar.metrics.decision_labels`).
    labels: tuple[str, str, str]
    #: Arguments of the writer's ``held`` and ``called`` on every call, or None.
    held: tuple | None
    called: tuple | None


def _call_key(hook: str, namespace: str, name: str, metadata: Mapping[str, str] | None) -> tuple:
    """What an answer depends on in a payload: the hook, the Canary, and the CanaryGate its metadata
    names (read as :meth:`GateCache.find` reads it)."""
    return (hook, namespace, name, named_gate(namespace, metadata))


def _plain_length(environ: dict[str, Any]) -> int | None:
    """The body's length when the fast path may read it: a plain Content-Length within the limit.

    None (werkzeug's path decides: 413, chunked bodies...) for no or odd Content-Length, a
    Transfer-Encoding, or a body over the limit.
    """
    value = environ.get("CONTENT_LENGTH")
    if not value or not value.isascii() or not value.isdigit() or environ.get("HTTP_TRANSFER_ENCODING"):
        return None
    length = int(value)
    return length if length <= answers.MAX_BODY else None


def _finite(value: float) -> float | None:
    return None if value == float("inf") else round(value, 3)


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return ""
