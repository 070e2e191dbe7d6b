"""In-memory objects, the global resourceVersion, and the watch history.

One lock guards everything: handlers hold :attr:`Store.lock` across a
read-check-write so that preconditions (AlreadyExists, resourceVersion Conflict)
are atomic.  Stored objects are private copies and never mutated in place; readers
get them as they are and must copy before changing them.

Every write appends an :class:`Event` to the history and wakes the watchers, which
read the history from their own cursor.  The history keeps the last
``history_limit`` events; a watch starting before them gets 410 Expired, like a
compacted etcd.
"""

from __future__ import annotations

import bisect
import builtins
import copy
import dataclasses
import threading
from collections.abc import Iterator

Key = tuple[str, str]  # (group, plural)


@dataclasses.dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    obj: dict
    prev: dict | None = None  # the object before a MODIFIED (for selector transitions)


class Expired(Exception):
    """The requested resourceVersion is older than the kept history."""

    def __init__(self, requested: int, current: int):
        super().__init__(f"too old resource version: {requested} ({current})")
        self.requested = requested
        self.current = current


class Store:
    def __init__(self, *, history_limit: int = 10_000, first_rv: int = 100):
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._objects: dict[Key, dict[tuple[str, str], dict]] = {}
        self._history: list[Event] = []
        self._history_rvs: list[int] = []
        self.history_limit = history_limit
        self.rv = first_rv
        self.oldest_rv = first_rv  # a watch may start from any rv >= this
        self.cut_epoch = 0  # bumped by cut_watches(); watchers stop when it changes
        self.closed = False

    # -- reads -------------------------------------------------------------
    def get(self, key: Key, namespace: str, name: str) -> dict | None:
        with self.lock:
            return self._objects.get(key, {}).get((namespace, name))

    def list(self, key: Key, namespace: str | None = None) -> tuple[list[dict], int]:
        """Objects of one resource (in one namespace, or all), sorted by namespace/name, and the current rv."""
        with self.lock:
            items = self._objects.get(key, {})
            out = [o for (ns, _), o in sorted(items.items()) if namespace is None or ns == namespace]
            return out, self.rv

    def namespaces_in_use(self, namespace: str) -> builtins.list[Key]:  # `list` is the method above
        with self.lock:
            return [k for k, items in self._objects.items() if any(ns == namespace for ns, _ in items)]

    # -- writes ------------------------------------------------------------
    def next_rv(self) -> int:
        with self.lock:
            return self.rv + 1

    def put(self, key: Key, obj: dict, event_type: str) -> dict:
        """Store ``obj`` (copied) under the next resourceVersion; returns the stored object."""
        with self.lock:
            self.rv += 1
            obj = copy.deepcopy(obj)
            obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            meta = obj["metadata"]
            objs = self._objects.setdefault(key, {})
            ident = (meta.get("namespace", ""), meta["name"])
            prev = objs.get(ident)
            objs[ident] = obj
            self._record(Event(self.rv, event_type, key, obj, prev))
            return obj

    def remove(self, key: Key, namespace: str, name: str) -> dict | None:
        """Delete; the DELETED event carries the object with a new resourceVersion (as kube does)."""
        with self.lock:
            obj = self._objects.get(key, {}).pop((namespace, name), None)
            if obj is None:
                return None
            self.rv += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.rv)
            self._record(Event(self.rv, "DELETED", key, obj, obj))
            return obj

    def _record(self, event: Event) -> None:
        self._history.append(event)
        self._history_rvs.append(event.rv)
        if len(self._history) > self.history_limit * 2:
            self._trim(len(self._history) - self.history_limit)
        self.changed.notify_all()

    def _trim(self, drop: int) -> None:
        if drop <= 0:
            return
        self.oldest_rv = self._history[drop - 1].rv
        del self._history[:drop]
        del self._history_rvs[:drop]

    def compact(self) -> int:
        """Forget all history (like an etcd compaction); returns the current rv."""
        with self.lock:
            self._trim(len(self._history))
            self.oldest_rv = self.rv
            return self.rv

    # -- watching ----------------------------------------------------------
    def events_after(self, rv: int) -> builtins.list[Event]:
        """Events with resourceVersion > rv; raises :class:`Expired` if some were forgotten."""
        with self.lock:
            if rv < self.oldest_rv:
                raise Expired(rv, self.rv)
            i = bisect.bisect_right(self._history_rvs, rv)
            return self._history[i:]

    def wait(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    def cut_watches(self) -> None:
        with self.changed:
            self.cut_epoch += 1
            self.changed.notify_all()

    def close(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def iter_all(self) -> Iterator[tuple[Key, dict]]:
        with self.lock:
            snapshot = [(k, o) for k, items in self._objects.items() for o in items.values()]
        yield from snapshot
