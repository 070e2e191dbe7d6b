"""The sidecar's few writes, made by one background thread so that webhook answers never wait on them.

* **status**: the latest Flagger event, the Canary's phase and weight, the calls answered
  (:mod:`canarygate.calls`) and the last rollback's cause on the CanaryGate's status, coalesced: at
  most one write per CanaryGate per ``status_interval`` (1 s), the latest event wins. A call queues a
  write only when it is a hook's first, its answer changed, or a heartbeat (60 s) is due; a Canary
  whose phase changed refreshes the recorded phase.
* **consume** (the one write on the webhook path, for one-step approvals only): :meth:`Writer.consume`
  removes the approval with a JSON patch whose ``test`` compares the annotation text as stored, and
  the call answers "go on" only once that write succeeded. The API server applies the patch to the
  stored object atomically (a read-test-write under its own resourceVersion precondition), so of any
  number of calls, replicas and restarts, exactly one removal of a given text succeeds: the approval
  passes once. A write that fails or whose outcome is unknown answers 503 (the approval may be lost,
  never used twice). Equivalent to a resourceVersion-guarded update of the annotation, without
  failing on every unrelated status write (which bumps the object's resourceVersion).
* **expire / bind**: live changes whose rollout has ended are removed, and idle ones are bound to the
  rollout they meet (:mod:`canarygate.rollouts`). Reviewed whenever a CanaryGate or its Canary
  changes, and after every (re)list, so a rollout that ended while the sidecar was down is noticed.
  The cache only says when a write looks due; the write is then decided from the Canary read afresh
  (one GET), since the two watches are not ordered and the cached Canary may be older than the change.
* **event**: the first time a closed gate holds a rollout (or a revision of it), a Kubernetes Event on the
  CanaryGate names the gate and the command that opens it.

Every write is conditional (JSON-patch ``test``) or idempotent (status merge), so a write based on a
slightly old cache never undoes someone else's change.
"""

from __future__ import annotations

import datetime
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from canarygate import calls, errors, gates, rollouts
from canarygate.annotations import LiveChange
from canarygate.diagnosis import recommended_command
from canarygate.kube import canaries as kube_canaries
from canarygate.kube import canarygates
from canarygate.kube import events as kube_events
from canarygate.kube.client import Kube
from canarygate.model import Canary, CanaryGate
from canarygate.resolution import Decision, closed_gates, holding_gate, resolve_gates
from gate_sidecar import revisions
from gate_sidecar.cache import GateCache, Key
from gate_sidecar.history import Recorder
from gate_sidecar.worker import Worker

log = logging.getLogger(__name__)

#: Gates that hold a rollout when closed (post-rollout is only reported; rollback is inverted).
HOLDING_GATES = frozenset(gates.PROGRESS_GATES) - {gates.POST_ROLLOUT}
#: How many "already announced" holds are remembered (oldest forgotten first).
HELD_MEMORY = 10_000
CONSUME_RETRIES = 5
#: Conditional removals of one approval on the webhook path: the cached text, then the one read afresh.
CONSUME_ATTEMPTS = 2


def rfc3339(ts: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(time.time() if ts is None else ts, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class NullWriter:
    """Takes the hot path's requests and writes nothing (unit tests; a read-only sidecar)."""

    def note_event(self, key: Key, payload: Mapping[str, Any]) -> None:
        pass

    def consume(self, key: Key, gate: CanaryGate, change: LiveChange) -> str | None:
        """Record the one-step approval ``change`` as used, before "go on" is answered: "ok", "skipped"
        (the API holds it no more: used elsewhere, or changed) or "error" (unknown: answer 503).
        Here nothing is written: a single in-process sidecar (unit tests) answers from its memory."""
        return "ok"

    def held(self, key: Key, hook: str, decision: Decision, canary: Canary | None) -> None:
        pass

    def called(self, key: Key, hook: str, answer: int, canary: str) -> None:
        pass

    def target_revision(self, canary: Canary) -> rollouts.Revision | None:
        """The revision of the Canary's target now (its template and configs); None when it cannot be
        read, no template when the sidecar may not read the Deployment (an older ClusterRole: the
        approval then passes unchecked)."""
        return None

    def review(self, kind: str, key: Key) -> None:
        pass

    def start(self) -> NullWriter:
        return self

    def stop(self, timeout: float = 5.0) -> None:
        pass


@dataclass
class _Consume:
    key: Key
    gate: CanaryGate
    change: LiveChange
    attempts: int = 0
    due: float = 0.0


@dataclass
class _Pending:
    #: CanaryGate -> the latest event payload to record, or None: refresh the status without one.
    status: dict[Key, dict[str, Any] | None] = field(default_factory=dict)
    consume: list[_Consume] = field(default_factory=list)
    events: list[tuple[Key, str, str]] = field(default_factory=list)
    review: set[Key] = field(default_factory=set)


class Writer(Worker, NullWriter):
    """Queues writes from any thread and makes them in its own (see the module docstring)."""

    thread_name = "gate-writer"

    def __init__(
        self,
        kube: Kube,
        cache: GateCache,
        *,
        metrics=None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        status_interval: float = 1.0,
        component: str = "gate-sidecar",
        record_history: bool = False,
    ):
        self.kube = kube
        self.cache = cache
        self.metrics = metrics
        self.clock = clock
        self.wallclock = wallclock
        self.status_interval = status_interval
        self.component = component
        Worker.__init__(self)
        self._pending = _Pending()
        self._status_written: dict[Key, float] = {}
        self._held: OrderedDict[tuple, None] = OrderedDict()
        #: (CanaryGate, hook) -> the Canary object its last hold was seen with (weakly: an ended
        #: rollout's last Canary is not kept alive here). Canaries are immutable and replaced whole,
        #: so the same object has the same rollout mark: a kept answer's call (every call of a held
        #: rollout) skips computing the mark again.
        self._held_with: dict[tuple[Key, str], weakref.ref[Canary]] = {}
        #: CanaryGate -> hook -> (wall time, answer, Canary) of the last call answered (webhook path:
        #: plain dict updates), and what of it was last written (hook -> (wall time, answer)).
        self._calls: dict[Key, dict[str, tuple[float, int, str]]] = {}
        self._calls_written: dict[Key, dict[str, tuple[float, int]]] = {}
        #: CanaryGate -> the failure to record (why the rollout was rolled back), None to clear it.
        self._failure: dict[Key, dict[str, str] | None] = {}
        self._last_check: dict[Key, str] = {}
        self._phase_written: dict[Key, str] = {}
        #: Fields merged into every status write (key -> fields) and listeners told of each new hold:
        #: gate_sidecar.notify's hooks (its keys, status.notifications, stay apart from these).
        self.status_parts: list[Callable[[Key], Mapping[str, Any]]] = []
        self.hold_listeners: list[Callable[[Key, str, Decision, Canary | None], None]] = []
        #: The audit history (gate_sidecar.history), when kept: status.history.
        self.history = Recorder(kube, cache, wallclock=wallclock, metrics=metrics) if record_history else None
        cache.listeners.append(self.review)

    # -- requests (any thread; cheap) ---------------------------------------------------------------
    def note_event(self, key: Key, payload: Mapping[str, Any]) -> None:
        message = str((payload.get("metadata") or {}).get("eventMessage", ""))
        with self._cv:
            if message.startswith(calls.NEW_ROLLOUT):
                self._failure[key] = None
                self._last_check.pop(key, None)
            elif calls.failed_check_message(message):
                self._last_check[key] = message
            elif message.startswith(calls.ROLLBACK_PREFIX):
                self._failure[key] = {
                    "message": message,
                    "check": self._last_check.get(key, ""),
                    "time": _event_time((payload.get("metadata") or {}).get("timestamp"), self.wallclock()),
                }
            self._pending.status[key] = dict(payload)
            self._cv.notify()

    def called(self, key: Key, hook: str, answer: int, canary: str) -> None:
        """Flagger called ``hook`` and was answered ``answer`` (webhook path: a dict update; a status
        write is queued only for a first call, a changed answer, or once per heartbeat)."""
        now = self.wallclock()
        records = self._calls.get(key)
        if records is None:
            records = self._calls.setdefault(key, {})
        records[hook] = (now, answer, canary)
        written = self._calls_written.get(key, {}).get(hook)
        if written is not None and written[1] == answer and now - written[0] < calls.HEARTBEAT_SECONDS:
            return
        if key in self._pending.status:
            return  # already queued (a racy read: at worst one notify more)
        with self._cv:
            if key not in self._pending.status:
                self._pending.status[key] = None
                self._cv.notify()

    def consume(self, key: Key, gate: CanaryGate, change: LiveChange) -> str:
        """Remove the one-step approval in the API now (webhook thread; see the module docstring).

        The text compared is the one ``gate`` (the cached object) holds; when that test fails, the
        CanaryGate is read once more and, if the API still holds the very same approval (rebound to
        the revision meanwhile, or a text our cache has not seen yet), its stored text is removed
        instead. Each attempt is conditional, so retrying never uses an approval twice.
        """
        current = gate
        for attempt in range(CONSUME_ATTEMPTS):
            result = self._replace(current, change, None, "consume")
            self._count("consume", result)
            if result != "skipped" or attempt + 1 == CONSUME_ATTEMPTS:
                return result
            try:
                current = canarygates.get_gate(self.kube, gate.namespace, gate.name)
            except errors.NotFound:
                return "skipped"
            except errors.GateError as e:
                log.warning("cannot read CanaryGate %s to record a one-step approval as used: %s", gate.ref, e)
                return "error"
            fresh = current.live.get(change.gate)
            if fresh is None or fresh.identity != change.identity:
                return "skipped"  # used by another call or replica, or replaced: not ours
            change = fresh
        return "skipped"

    def held(self, key: Key, hook: str, decision: Decision, canary: Canary | None) -> None:
        if hook not in HOLDING_GATES:
            return
        if canary is not None:
            seen_with = self._held_with.get((key, hook))
            if seen_with is not None and seen_with() is canary:
                return
        mark = rollouts.mark_of(canary)
        # NB: the revision too: an analysis restarted on a newer revision (same rollout) is held anew.
        seen = (key, hook, mark.active, mark.since, mark.revision)
        if canary is not None:
            if len(self._held_with) >= HELD_MEMORY:
                self._held_with.clear()
            self._held_with[(key, hook)] = weakref.ref(canary)
        if seen in self._held:
            return
        with self._cv:
            if seen in self._held:
                return
            self._held[seen] = None
            while len(self._held) > HELD_MEMORY:
                self._held.popitem(last=False)
            canary_ref = canary.ref if canary else "its Canary"
            message = (
                f"Gate {hook} is closed ({decision.source}) and holds the rollout of {canary_ref}: "
                f"{gates.DESCRIPTIONS[hook]}. To go on: {recommended_command(hook, key[1], key[0])}"
            )
            self._pending.events.append((key, hook, message))
            self._cv.notify()
        for listener in self.hold_listeners:
            listener(key, hook, decision, canary)

    def refresh_status(self, key: Key) -> None:
        """Queue a status write for ``key``, coalesced like the others (at most one per interval)."""
        with self._cv:
            self._pending.status.setdefault(key, None)
            self._cv.notify()

    def review(self, kind: str, key: Key) -> None:
        """A CanaryGate or a Canary changed: check the live changes of the CanaryGates concerned, and
        refresh the status of those whose recorded phase is no longer the Canary's."""
        keys = (key,) if kind == "gate" else self.cache.gates_for_canary(key)
        if not keys:
            return
        if self.history is not None:
            self.history.note(kind, keys)
        with self._cv:
            self._pending.review.update(keys)
            if kind != "gate":
                canary = self.cache.canary(*key)
                for gate_key in keys:
                    written = self._phase_written.get(gate_key)
                    if canary is not None and written is not None and written != canary.phase:
                        self._pending.status.setdefault(gate_key, None)
            self._cv.notify()

    def target_revision(self, canary: Canary) -> rollouts.Revision | None:
        """The target Deployment and the configs it references, one GET each (the only reads on the
        webhook path: for an approval given while the revision waits, see GateSidecar._resolve)."""
        return revisions.read_for_check(self.kube, canary, self.metrics)

    # -- lifecycle ------------------------------------------------------------------------------------
    # NB: on stop() (gate_sidecar.worker) run makes the pending writes (status without waiting out
    # the interval), then ends the thread.
    def run(self) -> None:
        while True:
            with self._cv:
                work, wait = self._take(final=self._stopping)
                if work is None:
                    if self._stopping:
                        return
                    self._cv.wait(wait)
                    continue
            self._do(work)

    # -- internals ------------------------------------------------------------------------------------
    def _take(self, *, final: bool) -> tuple[_Pending | None, float]:
        """The work due now (removed from the queue), or None and how long to wait."""
        now = self.clock()
        pending = self._pending
        work = _Pending()
        wait = 1.0
        for key in list(pending.status):
            due = self._status_written.get(key, float("-inf")) + self.status_interval
            if final or due <= now:
                work.status[key] = pending.status.pop(key)
            else:
                wait = min(wait, due - now)
        keep = []
        for item in pending.consume:
            if final or item.due <= now:
                work.consume.append(item)
            else:
                keep.append(item)
                wait = min(wait, item.due - now)
        pending.consume = keep
        work.events, pending.events = pending.events, []
        if pending.review and (final or self.cache.trusted(now)):
            work.review, pending.review = pending.review, set()
        elif pending.review:
            wait = min(wait, 0.5)  # not synced or cut off: a review could expire changes wrongly
        if work.status or work.consume or work.events or work.review:
            return work, 0.0
        return None, max(wait, 0.01)

    def _do(self, work: _Pending) -> None:
        for item in work.consume:
            self._consume(item)
        for key in sorted(work.review):
            self._review(key)
        for key, payload in work.status.items():
            self._status_written[key] = self.clock()
            self._write_status(key, payload)
        for key, hook, message in work.events:
            self._event(key, hook, message)
        if self.history is not None:
            self.history.flush()

    def _count(self, kind: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.wrote(kind, result)

    def _consume(self, item: _Consume) -> None:
        result = self._replace(item.gate, item.change, None, "consume")
        if result == "ok":
            self._count("consume", "ok")
            return
        entry = self.cache.entry(item.key)
        gate = entry.gate if entry else None
        current = gate.live.get(item.change.gate) if gate else None
        if (
            gate is not None
            and current is not None
            and current.identity == item.change.identity
            and item.attempts < CONSUME_RETRIES
        ):
            # NB: still the step we answered, perhaps rebound to the revision since: remove what is there now.
            item.change = current
            item.gate = gate
            item.attempts += 1
            item.due = self.clock() + 0.1 * 2**item.attempts
            with self._cv:
                self._pending.consume.append(item)
            self._count("consume", "retry")
            return
        # Someone changed the gate meanwhile (or it is gone): the step is not ours to remove any more.
        log.info(
            "one-step approval of %s on %s/%s not removed (%s)",
            item.change.gate,
            *item.key,
            "an API error" if result == "error" else "the annotation changed",
        )
        self._count("consume", "skipped")

    def _review(self, key: Key) -> None:
        entry = self.cache.entry(key)
        if entry is None or entry.gate is None or not entry.gate.live or entry.target is None:
            return
        gate = entry.gate
        if not self.cache.watches(entry.target[0]):
            return  # NB: its Canary is not in our cache; absence would look like an ended rollout
        used = self.cache.consumed(key)
        changes = [c for c in gate.live.values() if c.identity not in used]
        canary = self.cache.canary(*entry.target)
        unbound = [c for c in changes if revisions.needs_binding(c, canary)]
        if unbound:  # approvals given while Waiting whose approver could not read every config
            revisions.bind(self.kube, gate, unbound, entry.target, self._replace, self._count)
        if not any(_action(c, canary)[0] for c in changes):
            return
        # NB: the CanaryGate and Canary watches are not ordered: a change made by someone who read a
        # newer Canary than this cache holds looks ended (or unbound) here. Decide every write from
        # the Canary as the API server has it now: one GET, only when a write looks due (rare).
        try:
            canary = kube_canaries.find_canary(self.kube, *entry.target)
        except errors.GateError as e:
            log.warning("cannot read Canary %s/%s to review the live changes of %s: %s", *entry.target, gate.ref, e)
            self._count("review", "error")
            return  # the next change of either object, or the next relist, reviews it again
        for change in changes:
            action, new = _action(change, canary)
            if action:
                self._count(action, self._replace(gate, change, new, action))

    #: What each kind of replacement did, for the log.
    _DONE: ClassVar[dict[str, str]] = {
        "consume": "consumed (a one-step approval, answered)",
        "expire": "ended (its rollout is over)",
        "bind": "bound to the rollout now running",
    }

    def _replace(self, gate: CanaryGate, change: LiveChange, new: LiveChange | None, kind: str) -> str:
        """Replace (or remove) one live change, conditionally; "ok", "skipped" (the annotation
        changed meanwhile) or "error". Consume, expire and bind all go through here."""
        try:
            done = canarygates.replace_live_change(self.kube, gate, change, new)
        except errors.GateError as e:
            log.warning("cannot %s the live change of %s on %s: %s", kind, change.gate, gate.ref, e)
            return "error"
        if done:
            log.info("live change of %s on CanaryGate %s %s", change.gate, gate.ref, self._DONE[kind])
        return "ok" if done else "skipped"

    def _write_status(self, key: Key, payload: Mapping[str, Any] | None) -> None:
        """Merge what is known now into the CanaryGate's status: the phase and weight of its Canary (as
        cached), the latest event (``payload``, None for none new), the calls answered since the last
        write, and the failure of the last rollout."""
        entry = self.cache.entry(key)
        if entry is None or entry.gate is None:
            return  # no CanaryGate (defaults): nowhere to record
        gate = entry.gate
        canary = self.cache.canary(*entry.target) if entry.target else None
        decisions = resolve_gates(gate, canary=canary, consumed=self.cache.consumed(key))
        status: dict[str, Any] = {
            "target": f"{gate.target.namespace}/{gate.target.name}",
            "holding": holding_gate(decisions, canary) or "",
            "closedGates": ",".join(closed_gates(decisions)),
            "observedGeneration": gate.generation,
        }
        # NB: the Canary's own phase first: an event's phase is the one Flagger had when it recorded it.
        phase = canary.phase if canary is not None else str((payload or {}).get("phase", ""))
        if phase:
            status["phase"] = phase
        if payload is not None:
            metadata = payload.get("metadata") or {}
            status["checksum"] = str(payload.get("checksum", ""))
            status["lastEvent"] = {
                "message": str(metadata.get("eventMessage", "")),
                "type": str(metadata.get("eventType", "")),
                "phase": str(payload.get("phase", "")),
                "checksum": str(payload.get("checksum", "")),
                "time": _event_time(metadata.get("timestamp"), self.wallclock()),
            }
        if canary is not None:
            status["canaryWeight"] = canary.canary_weight
        records = dict(self._calls.get(key, {}))
        if records:
            status["calls"] = {
                hook: {"at": rfc3339(at), "answer": answer, "canary": ref}
                for hook, (at, answer, ref) in records.items()
            }
        with self._cv:
            failure_due = key in self._failure
            failure = self._failure.pop(key, None)
        if failure_due:
            status["failure"] = failure  # None removes it (merge patch)
        for part in self.status_parts:
            status.update(part(key))
        try:
            canarygates.patch_gate_status(self.kube, gate.namespace, gate.name, status)
        except errors.NotFound:
            self._count("status", "skipped")
        except errors.GateError as e:
            log.warning("cannot write the status of CanaryGate %s: %s", gate.ref, e)
            self._count("status", "error")
            if failure_due:
                with self._cv:
                    self._failure.setdefault(key, failure)
        else:
            self._count("status", "ok")
            self._calls_written[key] = {hook: (at, answer) for hook, (at, answer, _) in records.items()}
            self._phase_written[key] = phase

    def _event(self, key: Key, hook: str, message: str) -> None:
        entry = self.cache.entry(key)
        if entry is None or entry.gate is None:
            return
        try:
            kube_events.record_event(
                self.kube,
                entry.gate,
                reason="GateHolding",
                message=message,
                now=rfc3339(self.wallclock()),
                component=self.component,
            )
        except errors.GateError as e:
            log.warning("cannot record an Event on CanaryGate %s: %s", entry.gate.ref, e)
            self._count("event", "error")
        else:
            log.info("%s", message)
            self._count("event", "ok")


def _action(change: LiveChange, canary: Canary | None) -> tuple[str, LiveChange | None]:
    """What a review writes for ``change`` given ``canary``: ("expire", None), ("bind", the bound
    change) or ("", None) for nothing."""
    if not rollouts.in_force(change, canary):
        return "expire", None
    bound = rollouts.binding_for(change, canary)
    if bound is not None:
        return "bind", bound
    return "", None


def _event_time(value: Any, fallback: float) -> str:
    """Flagger's event timestamp (epoch milliseconds as a string) as RFC 3339."""
    try:
        return rfc3339(int(str(value)) / 1000)
    except (TypeError, ValueError, OverflowError, OSError):
        return rfc3339(fallback)
