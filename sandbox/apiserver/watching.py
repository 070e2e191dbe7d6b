"""Watch streams: one JSON event per line, chunked, flushed as it happens.

Semantics (kube-apiserver's watch cache):

* ``resourceVersion`` empty or ``0``: synthetic ADDED for every matching object,
  then changes.  ``resourceVersion=N``: the changes after N; N older than the kept
  history → one ERROR event (410 Expired) and the end of the stream.
* ``sendInitialEvents=true`` (WatchList, what kubectl 1.37's ``wait`` sends): the
  ADDED events, then a BOOKMARK annotated ``k8s.io/initial-events-end: "true"``;
  it requires ``resourceVersionMatch=NotOlderThan`` and ``allowWatchBookmarks``.
* label and field selectors apply to events; an object that stops (starts)
  matching is sent as DELETED (ADDED), as kube does.
* ``allowWatchBookmarks``: a BOOKMARK every ``bookmark_interval`` seconds and one
  shortly before ``timeoutSeconds`` ends the stream.
* Table Accept (``kubectl get -w``): each object is wrapped in a one-row Table;
  only the first carries column definitions.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator

from sandbox.apiserver import objects as objects_mod
from sandbox.apiserver import status, tables
from sandbox.apiserver.resources import ResourceType
from sandbox.apiserver.store import Expired, Store

DEFAULT_TIMEOUT = 1800.0  # NB: kube-apiserver's --min-request-timeout, before its random factor


class WatchCut(ConnectionAbortedError):
    """Raised inside a stream to drop the connection without the final chunk."""


def validate_watch_list(query: dict[str, str]) -> bool:
    """Whether this is a WatchList request; 422 when its parameters do not go together."""
    if query.get("sendInitialEvents") not in ("true", "1"):
        return False
    causes = []
    if query.get("resourceVersionMatch") != "NotOlderThan":
        causes.append(
            {
                "reason": "FieldValueForbidden",
                "field": "resourceVersionMatch",
                "message": "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            }
        )
    if query.get("allowWatchBookmarks") not in ("true", "1"):
        causes.append(
            {
                "reason": "FieldValueForbidden",
                "field": "allowWatchBookmarks",
                "message": "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            }
        )
    if causes:
        raise status.invalid("ListOptions", "meta.k8s.io", "", causes)
    return True


class WatchStream:
    def __init__(
        self,
        *,
        store: Store,
        rt: ResourceType,
        namespace: str | None,
        match: Callable[[dict], bool],
        query: dict[str, str],
        as_table: bool,
        sock: socket.socket | None,
        bookmark_interval: float,
        stopping: Callable[[], bool],
    ):
        self.store, self.rt, self.namespace, self.match = store, rt, namespace, match
        self.as_table = as_table
        self.sock = sock
        self.bookmarks = query.get("allowWatchBookmarks") in ("true", "1") and not as_table
        self.watch_list = validate_watch_list(query)
        self.rv = query.get("resourceVersion", "")
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else DEFAULT_TIMEOUT
        except ValueError:
            raise status.bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']!r}") from None
        self.timeout = timeout
        self.bookmark_interval = bookmark_interval
        self.stopping = stopping
        self._table_header_sent = False
        if self.rv not in ("", "0"):
            try:
                int(self.rv)
            except ValueError:
                raise status.bad_request(f'invalid resource version "{self.rv}"') from None

    def _wanted(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace", "") != self.namespace:
            return False
        return self.match(obj)

    def _line(self, etype: str, obj: dict) -> bytes:
        if etype not in ("BOOKMARK", "ERROR"):
            obj = objects_mod.present(self.rt, obj)
            if self.as_table:
                obj = tables.build_table(
                    self.rt,
                    [obj],
                    resource_version=obj["metadata"]["resourceVersion"],
                    headers=not self._table_header_sent,
                )
                self._table_header_sent = True
        return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"

    def _bookmark(self, rv: int, *, initial_end: bool = False) -> bytes:
        meta: dict = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return self._line("BOOKMARK", {"kind": self.rt.kind, "apiVersion": self.rt.api_version, "metadata": meta})

    def _expired(self, e: Expired) -> bytes:
        return self._line("ERROR", status.status_body(410, str(e), reason="Expired"))

    def __iter__(self) -> Iterator[bytes]:
        yield b""  # NB: sends the 200 and headers now, as kube-apiserver flushes them when a watch starts
        start = time.monotonic()
        deadline = start + self.timeout
        epoch = self.store.cut_epoch
        with self.store.lock:
            if self.watch_list or self.rv in ("", "0"):
                current, cursor = self.store.list(self.rt.key)
                initial = [o for o in current if self._wanted(o)]
            else:
                initial, cursor = [], int(self.rv)
                try:
                    self.store.events_after(cursor)
                except Expired as e:
                    yield self._expired(e)
                    return
        for obj in initial:
            yield self._line("ADDED", obj)
        if self.watch_list:
            yield self._bookmark(cursor, initial_end=True)
        next_bookmark = min(start + self.bookmark_interval, deadline - 2.0)
        if next_bookmark <= start:
            next_bookmark = start + max(self.timeout / 2, 0.1)
        while True:
            now = time.monotonic()
            if now >= deadline or self.stopping() or self.store.closed:
                return
            if self.store.cut_epoch != epoch:
                self._cut()
            if self.bookmarks and now >= next_bookmark:
                yield self._bookmark(cursor)
                next_bookmark = now + self.bookmark_interval
            with self.store.changed:
                try:
                    events = self.store.events_after(cursor)
                except Expired as e:
                    yield self._expired(e)
                    return
                if not events:
                    wait = min(deadline - now, 0.5)
                    if self.bookmarks:
                        wait = min(wait, max(next_bookmark - now, 0.01))
                    self.store.changed.wait(max(wait, 0.01))
                    continue
            for ev in events:
                cursor = ev.rv
                if ev.key != self.rt.key:
                    continue
                now_in, was_in = self._wanted(ev.obj), self._wanted(ev.prev)
                if ev.type == "MODIFIED" and now_in and not was_in:
                    yield self._line("ADDED", ev.obj)
                elif ev.type == "MODIFIED" and was_in and not now_in:
                    yield self._line("DELETED", ev.obj)
                elif now_in:
                    yield self._line(ev.type, ev.obj)

    def _cut(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
        raise WatchCut("watch cut by fault injection")
