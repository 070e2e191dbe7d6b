"""``--reconcile``: keep the Flagger Canary at every CanaryGate's ``spec.target`` rendered from it.

What ``kubectl gate apply`` does for one file, done in the cluster whenever a CanaryGate changes (as
the Go original's controller did): :func:`canarygate.rendering.render_canary` (``spec.flagger``, one
webhook per gate and the event webhook pointing at ``--endpoint``, the user's webhooks kept), checked
against Flagger's CRD (:func:`canarygate.rendering.check_canary`), then created or updated with
:func:`canarygate.kube.canaries.apply_canary` (status and others' metadata kept; "unchanged" writes
nothing).

When: a CanaryGate seen for the first time or whose ``metadata.generation`` changed (spec changes
only: status writes and live gate changes, which are annotations, do not reconcile, so no write can
feed back into another), and every CanaryGate once after each (re)list of the watch.

How: in a thread of its own, off the webhook path. Work is coalesced per CanaryGate (the latest
cached object is rendered when its turn comes); API errors (Forbidden, the Canary CRD missing, the
API server out of reach, conflicts) are retried with exponential backoff until they succeed or the
CanaryGate changes; a spec that cannot be rendered, or that Flagger's schema or the API server
rejects, waits for the next generation.

What it says: an Event on the CanaryGate, ``CanaryReconciled`` (Normal) when it created or configured
the Canary, ``ReconcileFailed`` (Warning) with the reason, at most once per generation however many
retries follow.

It never deletes a Canary, not even when its CanaryGate is deleted (neither did the Go original),
and it leaves alone a Canary rendered from another CanaryGate that still targets it (the two would
overwrite each other after every list); a Canary whose CanaryGate is gone is taken over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canarygate import errors, rendering
from canarygate.kube import canaries as kube_canaries
from canarygate.kube import events as kube_events
from canarygate.kube.client import Kube
from canarygate.model import CanaryGate, Target
from gate_sidecar.cache import Entry, GateCache, Key
from gate_sidecar.worker import Worker
from gate_sidecar.writes import rfc3339

log = logging.getLogger(__name__)

RECONCILED = "CanaryReconciled"
FAILED = "ReconcileFailed"
#: First retry after this many seconds, doubling up to MAX_BACKOFF.
BACKOFF = 1.0
MAX_BACKOFF = 300.0
#: How often a replica that does not hold the Lease checks again whether it leads now.
IDLE_POLL = 0.5
#: The rights --reconcile needs on top of the sidecar's own role (deploy/sidecar/reconcile).
ROLE_HINT = (
    "the sidecar's service account needs the canary-gate-reconciler ClusterRole "
    "(create, update on canaries.flagger.app; deploy/sidecar/reconcile)"
)

#: What a reconcile is done for: (uid, generation). A new uid is a CanaryGate deleted and re-created.
Fingerprint = tuple[str, int]


class Unrenderable(Exception):
    """The CanaryGate's spec gives no valid Canary: wait for its next generation, do not retry."""


@dataclass
class _Item:
    fingerprint: Fingerprint
    attempts: int = 0
    due: float = 0.0


class Reconciler(Worker):
    """Renders and applies the Canary of each CanaryGate the cache reports (see the module docstring).

    Listens to ``cache`` (CanaryGate additions and changes); :meth:`resync` is called after each list.
    """

    thread_name = "canary-reconciler"

    def __init__(
        self,
        kube: Kube,
        cache: GateCache,
        *,
        endpoint: str = rendering.DEFAULT_ENDPOINT,
        metrics=None,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        backoff: float = BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        component: str = "gate-sidecar",
        leading: Callable[[], bool] = lambda: True,
    ):
        self.kube = kube
        #: Whether this replica may write Canaries now (gate_sidecar.leader: the Lease holder only);
        #: asked before each reconcile, so a replica that lost the Lease stops within one.
        self.leading = leading
        self.cache = cache
        self.endpoint = endpoint
        self.metrics = metrics
        self.clock = clock
        self.wallclock = wallclock
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.component = component
        super().__init__()
        self._pending: dict[Key, _Item] = {}
        #: The fingerprint last settled (applied, or failed for good) per CanaryGate.
        self._settled: dict[Key, Fingerprint] = {}
        #: The fingerprint a ReconcileFailed Event was last recorded for, per CanaryGate.
        self._reported: dict[Key, Fingerprint] = {}
        #: The fingerprint being reconciled right now, per CanaryGate (taken off the queue).
        self._running: dict[Key, Fingerprint] = {}
        cache.listeners.append(self.changed)

    # -- requests (informer threads; cheap) -------------------------------------------------------
    def changed(self, kind: str, key: Key) -> None:
        """Cache listener: a CanaryGate was added, changed or deleted (Canary changes are ignored)."""
        if kind != "gate":
            return
        entry = self.cache.entry(key)
        with self._cv:
            if entry is None:  # deleted: forget it (its Canary stays)
                self._pending.pop(key, None)
                self._settled.pop(key, None)
                self._reported.pop(key, None)
                return
            fingerprint = _fingerprint(entry)
            item = self._pending.get(key)
            if item is not None:
                if item.fingerprint != fingerprint:  # a new generation: now, not after the backoff
                    self._pending[key] = _Item(fingerprint, due=self.clock())
                    self._cv.notify()
                return
            if self._settled.get(key) == fingerprint or self._running.get(key) == fingerprint:
                return  # status, annotations or a relist of what was done: nothing to do
            self._pending[key] = _Item(fingerprint, due=self.clock())
            self._cv.notify()

    def resync(self, namespace: str | None = None) -> None:
        """After a (re)list: reconcile every CanaryGate in ``namespace`` (all when None) once."""
        now = self.clock()
        with self._cv:
            for entry in self.cache.entries():
                if namespace is not None and entry.key[0] != namespace:
                    continue
                if entry.key not in self._pending:
                    self._pending[entry.key] = _Item(_fingerprint(entry), due=now)
            self._cv.notify()

    def pending(self) -> dict[Key, _Item]:
        """A copy of the queue (tests, debugging)."""
        with self._cv:
            return dict(self._pending)

    # -- lifecycle --------------------------------------------------------------------------------
    # NB: stop() (gate_sidecar.worker) ends the thread after the reconcile in progress; what is
    # queued is redone after the next list.
    def run(self) -> None:
        while True:
            with self._cv:
                if self._stopping:
                    return
                if not self.leading():
                    self._cv.wait(IDLE_POLL)  # NB: the queue is kept; resync() on taking the Lease
                    continue
                due, wait = self._take()
                if due is None:
                    self._cv.wait(min(wait, IDLE_POLL))
                    continue
            self.run_once(*due)

    def run_pending(self) -> int:
        """Reconcile every CanaryGate due now, in this thread; how many (tests)."""
        done = 0
        while True:
            with self._cv:
                due, _ = self._take()
            if due is None:
                return done
            self.run_once(*due)
            done += 1

    # -- internals --------------------------------------------------------------------------------
    def _take(self) -> tuple[tuple[Key, int] | None, float]:
        """The next CanaryGate due and its attempts so far (removed from the queue), or None and
        how long to wait."""
        now = self.clock()
        wait = 60.0
        for key, item in sorted(self._pending.items()):
            if item.due <= now:
                del self._pending[key]
                self._running[key] = item.fingerprint
                return (key, item.attempts), 0.0
            wait = min(wait, item.due - now)
        return None, max(wait, 0.01)

    def run_once(self, key: Key, attempts: int = 0) -> str:
        """Reconcile one CanaryGate from the cache; the outcome (created, configured, unchanged,
        retry, failed or gone). ``attempts``: how many failed before (sets the backoff)."""
        try:
            return self._reconcile(key, attempts)
        finally:
            with self._cv:
                self._running.pop(key, None)

    def _reconcile(self, key: Key, attempts: int) -> str:
        if not self.leading():  # lost the Lease since it was taken off the queue: the leader does it
            return "skipped"
        entry = self.cache.entry(key)
        if entry is None:
            return "gone"
        fingerprint = _fingerprint(entry)
        gate = entry.gate
        try:
            if gate is None:
                raise Unrenderable(entry.error or f"CanaryGate {key[0]}/{key[1]} cannot be read")
            manifest = self._render(gate)
            self._check_owner(gate)
            outcome, _ = kube_canaries.apply_canary(self.kube, manifest)
        except Unrenderable as e:
            self._failed(key, entry, fingerprint, str(e))
            return "failed"
        except errors.Invalid as e:  # the API server rejected the Canary: the spec must change
            self._failed(key, entry, fingerprint, f"the API server rejected the Canary: {e}")
            return "failed"
        except Exception as e:
            reason = str(e) or type(e).__name__
            if isinstance(e, errors.Forbidden):
                reason = f"{reason} ({ROLE_HINT})"
            elif not isinstance(e, errors.GateError):
                log.exception("reconciling CanaryGate %s/%s failed", *key)
            self._retry(key, entry, fingerprint, attempts, reason)
            return "retry"
        with self._cv:
            self._settled[key] = fingerprint
            self._reported.pop(key, None)
        self._count(outcome)
        target = f"{manifest['metadata']['namespace']}/{manifest['metadata']['name']}"
        if outcome == "unchanged":
            log.debug("Canary %s of CanaryGate %s/%s is up to date", target, *key)
            return outcome
        hooks = manifest["spec"]["analysis"]["webhooks"]
        own = len(hooks) - len(rendering.HOOK_TYPES)
        message = (
            f"Canary {target} {outcome} from generation {entry.generation}: {len(rendering.HOOK_TYPES)} gate "
            f"webhooks to {self.endpoint}" + (f", {own} of its own kept" if own else "")
        )
        log.info("CanaryGate %s/%s: %s", *key, message)
        self._event(key, gate, RECONCILED, message, kube_events.NORMAL)
        return outcome

    def _render(self, gate: CanaryGate) -> dict[str, Any]:
        try:
            manifest = rendering.render_canary(gate, endpoint=self.endpoint)
        except errors.InvalidGate as e:
            raise Unrenderable(str(e)) from None
        problems = rendering.check_canary(manifest)
        if problems:
            raise Unrenderable("the rendered Canary is invalid for Flagger: " + "; ".join(problems))
        return manifest

    def _check_owner(self, gate: CanaryGate) -> None:
        """Refuse a Canary rendered from another CanaryGate that still targets it.

        Else two CanaryGates with one target would overwrite each other's Canary after every list.
        A Canary whose CanaryGate is gone (renamed, deleted) is taken over.
        """
        target = (gate.target.namespace, gate.target.name)
        cached = self.cache.canary(*target)
        if cached is None:
            return  # not there yet, or not in a watched namespace (nothing to compare with)
        source = str(((cached.raw.get("metadata") or {}).get("annotations") or {}).get(rendering.SOURCE_ANNOTATION, ""))
        other_ns, _, other_name = source.partition("/")
        if not source or (other_ns, other_name) == (gate.namespace, gate.name):
            return
        other = self.cache.entry((other_ns, other_name))
        if other is not None and other.target == target:
            raise Unrenderable(
                f"it is rendered from CanaryGate {source}, which targets it too: give each CanaryGate its own "
                "spec.target (or delete one of them)"
            )

    def _failed(self, key: Key, entry: Entry, fingerprint: Fingerprint, reason: str) -> None:
        """For good (until the spec changes): settled, reported once."""
        with self._cv:
            self._settled[key] = fingerprint
        self._count("failed")
        self._report(key, entry, fingerprint, reason)

    def _retry(self, key: Key, entry: Entry, fingerprint: Fingerprint, attempts: int, reason: str) -> None:
        delay = min(self.max_backoff, self.backoff * 2**attempts)
        with self._cv:
            if key not in self._pending and self.cache.entry(key) is not None:
                self._pending[key] = _Item(fingerprint, attempts + 1, self.clock() + delay)
                self._cv.notify()
        self._count("retry")
        self._report(key, entry, fingerprint, reason, retry_in=delay)

    def _report(self, key: Key, entry: Entry, fingerprint: Fingerprint, reason: str, *, retry_in: float = 0) -> None:
        target = f"{entry.target[0]}/{entry.target[1]}" if entry.target else "its target"
        message = f"cannot create or update Canary {target}: {reason}"
        with self._cv:
            first = self._reported.get(key) != fingerprint
            self._reported[key] = fingerprint
        then = f" (retrying in {retry_in:g}s)" if retry_in else ""
        if not first:
            log.debug("CanaryGate %s/%s: %s%s", *key, message, then)
            return
        log.warning("CanaryGate %s/%s: %s%s", *key, message, then)
        self._event(key, entry.gate or _stub(entry), FAILED, message, kube_events.WARNING)

    def _event(self, key: Key, gate: CanaryGate, reason: str, message: str, type_: str) -> None:
        try:
            kube_events.record_event(
                self.kube,
                gate,
                reason=reason,
                message=message,
                type=type_,
                now=rfc3339(self.wallclock()),
                component=self.component,
                action="Reconcile",
            )
        except errors.GateError as e:
            log.warning("cannot record an Event on CanaryGate %s/%s: %s", *key, e)
            self._count_event("error")
        else:
            self._count_event("ok")

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.wrote("canary", result)

    def _count_event(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.wrote("event", result)


def _fingerprint(entry: Entry) -> Fingerprint:
    return (entry.uid, entry.generation)


def _stub(entry: Entry) -> CanaryGate:
    """Enough of a CanaryGate that could not be parsed to record an Event about it."""
    namespace, name = entry.key
    target = Target(*(entry.target or entry.key))
    return CanaryGate(
        name=name,
        namespace=namespace,
        target=target,
        declared={},
        live={},
        flagger={},
        uid=entry.uid,
        generation=entry.generation,
    )
