"""The sidecar's side of the audit history (:mod:`canarygate.history`): observe, then record.

:meth:`Recorder.note` runs on the informer thread for every CanaryGate and Canary change (through
``Writer.review``) and only takes a snapshot of what it sees, so a gate opened and closed between two
writes is still recorded. :meth:`Recorder.flush` runs on the writer's thread: it folds the snapshots
into the stored record and writes it to ``status.history`` with a JSON patch whose ``test`` compares
the record as read, so two replicas never overwrite each other's entries (on a failed test the
CanaryGate is read again and the snapshots folded into what is there now).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from canarygate import errors
from canarygate import history as core
from canarygate.annotations import LiveChange
from canarygate.kube import canaries as kube_canaries
from canarygate.kube import canarygates
from canarygate.kube.client import JSON_PATCH, Kube
from canarygate.kube.resources import CANARYGATES
from canarygate.model import Canary, CanaryGate
from gate_sidecar.cache import GateCache, Key

log = logging.getLogger(__name__)

#: Snapshots kept per CanaryGate between two flushes (the oldest go first).
MAX_SNAPSHOTS = 50
#: Conditional writes tried per flush of one CanaryGate before leaving it to the next change.
ATTEMPTS = 3


@dataclass
class _Snapshot:
    at: str
    canary: Canary | None
    live: dict[str, LiveChange] | None = None  # None: a Canary change (the gate's changes not read)
    failure: dict[str, Any] | None = None
    used: frozenset[str] = frozenset()  # ids of the one-step approvals this sidecar answered
    #: What the snapshot was taken from (a Canary change's: see Recorder._settled).
    seen: tuple[Any, ...] = ()


@dataclass
class _Pending:
    snapshots: dict[Key, list[_Snapshot]] = field(default_factory=dict)


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Recorder:
    def __init__(self, kube: Kube, cache: GateCache, *, wallclock: Callable[[], float] = time.time, metrics=None):
        self.kube = kube
        self.cache = cache
        self.wallclock = wallclock
        self.metrics = metrics
        self._pending = _Pending()
        self._lock = threading.Lock()
        #: CanaryGate -> (cached entry, Canary, consumed steps) whose Canary-change snapshots, last
        #: folded into the stored record, added nothing to it. All three are immutable and replaced
        #: whole on every change, so a Canary-change note of these very objects (a relist of unchanged
        #: Canaries, every few seconds) would fold to nothing new again: it is not taken.
        self._settled: dict[Key, tuple[Any, ...]] = {}

    def note(self, kind: str, keys: tuple[Key, ...]) -> None:
        """A CanaryGate (``kind`` "gate") or the Canary of ``keys`` changed: remember what is seen now."""
        at = rfc3339(self.wallclock())
        for key in keys:
            entry = self.cache.entry(key)
            if entry is None or entry.gate is None:
                self._settled.pop(key, None)
                continue
            canary = self.cache.canary(*entry.target) if entry.target else None
            seen = (entry, canary, self.cache.consumed(key))
            if kind != "gate" and _same_objects(self._settled.get(key), seen):
                continue
            snap = _Snapshot(at=at, canary=canary, seen=seen)
            if kind == "gate":
                snap.live = dict(entry.gate.live)
                failure = entry.gate.status.get("failure")
                snap.failure = dict(failure) if isinstance(failure, dict) else None
                consumed = self.cache.consumed(key)
                snap.used = frozenset(core.change_id(c) for c in entry.gate.live.values() if c.identity in consumed)
            with self._lock:
                snaps = self._pending.snapshots.setdefault(key, [])
                snaps.append(snap)
                del snaps[:-MAX_SNAPSHOTS]

    def flush(self) -> None:
        """Write what was noted (writer thread)."""
        with self._lock:
            pending, self._pending = self._pending, _Pending()
        for key, snaps in pending.snapshots.items():
            self._record(key, snaps)

    def _record(self, key: Key, snaps: list[_Snapshot]) -> None:
        entry = self.cache.entry(key)
        if entry is None or entry.gate is None:
            return
        gate = entry.gate
        canary = self.cache.canary(*entry.target) if entry.target else None
        self._settled.pop(key, None)
        for attempt in range(ATTEMPTS):
            stored = gate.status.get("history")
            # NB: the last view is the CanaryGate as it is now: the only one from which ends are read.
            consumed = self.cache.consumed(key)
            record = fold(stored, [*snaps, self._snapshot(gate, canary, consumed)])
            if record == core.parse(stored) and (stored is not None or not record["entries"]):
                seen = (entry, canary, consumed)
                if attempt == 0 and all(s.live is None and _same_objects(s.seen, seen) for s in snaps):
                    self._settled[key] = seen  # the fold a later note of these objects would redo
                return  # nothing new (and no empty record written for a CanaryGate with nothing yet)
            try:
                written = self._write(gate, stored, record)
            except errors.NotFound:
                return
            except errors.GateError as e:
                log.warning("cannot record the history of CanaryGate %s: %s", gate.ref, e)
                self._count("error")
                return
            if written:
                self._count("ok")
                return
            self._count("conflict")
            # Another replica wrote meanwhile: fold what is there now, from both objects read afresh
            # (our snapshots' sets stay: a change already recorded is not recorded twice).
            try:
                gate = canarygates.get_gate(self.kube, gate.namespace, gate.name)
                canary = kube_canaries.find_canary(self.kube, gate.target.namespace, gate.target.name)
            except errors.GateError as e:
                log.warning("cannot read CanaryGate %s to record its history: %s", gate.ref, e)
                return
            snaps = [s for s in snaps if s.live is not None]

    def _snapshot(self, gate: CanaryGate, canary: Canary | None, consumed: frozenset[str]) -> _Snapshot:
        failure = gate.status.get("failure")
        return _Snapshot(
            at=rfc3339(self.wallclock()),
            canary=canary,
            live=dict(gate.live),
            failure=dict(failure) if isinstance(failure, dict) else None,
            used=frozenset(core.change_id(c) for c in gate.live.values() if c.identity in consumed),
        )

    def _write(self, gate: CanaryGate, stored: Any, record: dict[str, Any]) -> bool:
        """One conditional write of ``status.history``; False when the record changed meanwhile."""
        if stored is None:
            # NB: no record to compare yet: the object's resourceVersion is the condition instead.
            ops: list[dict[str, Any]] = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": gate.resource_version}
            ]
            if "status" in gate.raw:
                ops.append({"op": "add", "path": "/status/history", "value": record})
            else:
                ops.append({"op": "add", "path": "/status", "value": {"history": record}})
        else:
            ops = [
                {"op": "test", "path": "/status/history", "value": stored},
                {"op": "replace", "path": "/status/history", "value": record},
            ]
        try:
            self.kube.request(
                "PATCH",
                CANARYGATES.path(gate.namespace, gate.name, "status"),
                body=ops,
                content_type=JSON_PATCH,
                resource=CANARYGATES,
                name=gate.name,
            )
        except (errors.Invalid, errors.Conflict):
            return False  # NB: a failed JSON-patch test is 422 Invalid on kube-apiserver
        return True

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.wrote("history", result)


def _same_objects(seen: tuple[Any, ...] | None, now: tuple[Any, ...]) -> bool:
    """Whether ``seen`` (entry, Canary, consumed) are the very objects of ``now`` (and equal consumed sets)."""
    return seen is not None and len(seen) == 3 and seen[0] is now[0] and seen[1] is now[1] and seen[2] == now[2]


def fold(stored: Any, snaps: list[_Snapshot]) -> dict[str, Any]:
    """The stored record with every snapshot observed in order, then bounded."""
    record = core.parse(stored)
    used_ids: set[str] = set()
    for i, snap in enumerate(snaps):
        used_ids |= snap.used
        record = core.observe_canary(record, snap.canary, snap.at)
        if snap.live is not None:
            record = core.observe_gate(
                record, snap.live, snap.canary, snap.at, failure=snap.failure, used=used_ids, final=i == len(snaps) - 1
            )
    return core.bound(record)
