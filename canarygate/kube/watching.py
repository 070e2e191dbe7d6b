"""Follow one object through the API's watch: its current state, then every change.

Used by ``kubectl gate show --watch`` and ``kubectl gate wait``. A LIST with a name field
selector gives the state and a resourceVersion to watch from; the watch is restarted from a fresh
LIST when the server ends it, expires it (410 Gone) or the connection breaks, so nothing is missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import Resource

#: How long one watch request lasts before it is renewed (the server's timeoutSeconds).
WATCH_SECONDS = 60


def follow(
    kube: Kube,
    resource: Resource,
    namespace: str,
    name: str,
    *,
    stop: threading.Event | None = None,
    retry_delay: float = 1.0,
) -> Iterator[dict[str, Any] | None]:
    """Yield the object now and after each change (None while it does not exist).

    Ends when ``stop`` is set (checked between events). CrdMissing, Forbidden and Unauthorized
    propagate; transient failures are retried after ``retry_delay``.
    """
    stop = stop or threading.Event()
    selector = ("fieldSelector", f"metadata.name={name}")
    last: Any = object()
    while not stop.is_set():
        try:
            listed = kube.request("GET", resource.path(namespace), query=[selector], resource=resource)
        except errors.Unreachable:
            time.sleep(retry_delay)
            continue
        items = [i for i in listed.get("items") or () if (i.get("metadata") or {}).get("name") == name]
        current = items[0] if items else None
        if current != last:
            last = current
            yield current
        rv = (listed.get("metadata") or {}).get("resourceVersion", "")
        query = [selector, ("watch", "1"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(WATCH_SECONDS))]
        if rv:
            query.append(("resourceVersion", rv))
        try:
            for event in kube.stream(resource.path(namespace), query=query, timeout=WATCH_SECONDS + 10):
                if stop.is_set():
                    return
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    break  # 410 Gone and friends: list again
                if kind == "BOOKMARK" or (obj.get("metadata") or {}).get("name") != name:
                    continue
                current = None if kind == "DELETED" else obj
                if current != last:
                    last = current
                    yield current
        except errors.Unreachable:
            time.sleep(retry_delay)
