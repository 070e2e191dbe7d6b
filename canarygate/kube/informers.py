"""Informers: keep an in-memory copy of one resource current, the way client-go's reflector does.

An :class:`Informer` lists the resource, hands the items to ``on_list``, then watches from the list's
resourceVersion (with bookmarks) and hands every change to ``on_event``. It relists when the watch
says 410 Gone/Expired (or refuses to start from our resourceVersion), and reconnects with capped
exponential backoff when the API server cannot be reached.

It keeps two facts a fail-closed reader needs: :attr:`Informer.synced` (the first list has landed)
and :meth:`Informer.age`, so a caller can refuse to guess when its copy may be out of date.

What "age" means depends on ``max_silence``:

* ``max_silence`` set (the sidecar): seconds since bytes really arrived from the API server: a list,
  a watch event or bookmark, the normal end of a watch, or an answer to the :class:`Liveness`
  probe while this informer's watch is open (the probe vouches for it). An open socket proves
  nothing: an API server that stops answering but keeps its sockets open (a partition) makes the
  age grow, and the caller fails closed on that age, whatever the watch does. A watch silent for
  ``max_silence`` seconds is closed and reopened from its resourceVersion (no relist); the sidecar
  sets it to max(bound, 90 s) (:func:`feed_timing`): kube-apiserver sends a bookmark about once a
  minute, and reopening quiet watches more often only makes needless 410 relists on busy clusters.
* ``max_silence`` None (the CLI's followers): 0 while a watch is open, else seconds since the
  last answer.

Only the thread running :meth:`Informer.run` calls the callbacks; they must be quick.

The one watch mechanism of the project: the sidecar keeps whole caches with it, and the CLI's
``show --watch`` and ``wait`` follow one object with :func:`follow_object` (a field selector on
``metadata.name``; ``fatal`` errors such as Forbidden end it instead of being retried).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import Resource

log = logging.getLogger(__name__)
# NB: a library's retries are not the CLI's output: without a configured handler (the CLI has none,
# the sidecar configures the root logger) these records are dropped instead of going to stderr.
log.addHandler(logging.NullHandler())

#: kube-apiserver sends a bookmark about once a minute on a quiet watch (kept for callers; a feed
#: that fails closed relists after half its bound instead, see :func:`feed_timing`).
QUIET_WATCH = 90.0


def feed_timing(bound: float) -> tuple[float, float, float]:
    """(max_silence, probe interval, probe timeout) for feeds that must fail closed after ``bound`` s.

    Contact is fresh data only (a list, a watch event or bookmark): a watch silent for half the
    bound is relisted, so a quiet healthy feed is fresh again well within the bound, and a stalled
    one (a live ``/version`` or not) fails closed at the bound. The probe (every bound/3, bound/3
    timeout) only tells when the API server answers again after an outage, to reopen the watches.
    """
    return bound / 2, bound / 3, bound / 3


#: Watch event types the callbacks receive (BOOKMARK and ERROR are handled here).
ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"

OnList = Callable[[list[dict[str, Any]]], None]
OnEvent = Callable[[str, dict[str, Any]], None]


class Informer:
    """List-then-watch loop for ``resource`` in ``namespace`` (all namespaces when None).

    ``watch_timeout`` is the server-side ``timeoutSeconds`` of each watch (jittered up to +20%, so
    many informers do not reconnect in step); the socket read timeout is a little longer, so a
    silently dead connection is noticed too. ``backoff`` is (first, cap) seconds between failed
    attempts. ``missing_ok``: a resource the server does not serve (CRD not installed) counts as
    an empty, synced list, re-checked every ``backoff`` cap. ``field_selector`` narrows list and
    watch (e.g. ``metadata.name=demo``). ``fatal``: error classes that end :meth:`run` by raising
    instead of being retried (none by default: a service keeps trying). ``max_silence``: see the
    module docstring (None: an open watch counts as contact).
    """

    def __init__(
        self,
        kube: Kube,
        resource: Resource,
        *,
        namespace: str | None = None,
        on_list: OnList,
        on_event: OnEvent,
        clock: Callable[[], float] = time.monotonic,
        watch_timeout: float = 240.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        missing_ok: bool = False,
        field_selector: str = "",
        fatal: tuple[type[BaseException], ...] = (),
        max_silence: float | None = None,
    ):
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.on_list = on_list
        self.on_event = on_event
        self.clock = clock
        self.watch_timeout = watch_timeout
        self.backoff = backoff
        self.missing_ok = missing_ok
        self.field_selector = field_selector
        self.fatal = fatal
        self.max_silence = max_silence
        #: True once the first list has been handed to ``on_list``; never goes back to False.
        self.synced = False
        #: Lists made (the first one included) and watches opened: for logs, metrics and tests.
        self.lists = 0
        self.watches = 0
        #: Watches closed because they were silent for ``max_silence`` (and reopened).
        self.silent_watches = 0
        #: True while a watch request is out (or a missing resource is waiting for its re-check):
        #: a :class:`Liveness` answer then counts as contact for this informer too.
        self._watching = False
        #: Cuts the open watch (set while one is open), and whether a cut was asked for.
        self._cut: Callable[[], None] | None = None
        self._reopening = False
        self._last_contact: float | None = None
        self._resource_version = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def scope(self) -> str:
        return f"{self.resource.qualified} in {self.namespace or 'all namespaces'}"

    def age(self, now: float | None = None) -> float:
        """Seconds since the API server last answered (inf before any answer); with ``max_silence``
        None, 0 while a watch is open."""
        if self._watching and self.max_silence is None:
            return 0.0
        last = self._last_contact
        if last is None:
            return float("inf")
        return max(0.0, (self.clock() if now is None else now) - last)

    def reopen(self) -> None:
        """Cut the open watch so that it is opened again from our resourceVersion (no relist).

        Called by :class:`Liveness` when the API server answers again after an outage: a watch whose
        connection died silently during it would otherwise look healthy and stay blind.
        """
        self._reopening = True
        cut = self._cut
        if cut is not None:
            cut()

    def vouch(self, at: float) -> None:
        """The API server answered a request sent at ``at``: no longer contact (issue 9).

        An answered ``/version`` proves the server is there, not that this watch still delivers:
        a stalled watch with a live server must age and fail closed. Kept so :class:`Liveness`
        and callers need not change; the age counts fresh data only.
        """

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Informer:
        """Run :meth:`run` in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name=f"informer-{self.resource.plural}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> None:
        """Ask the loop to end; it does at the next event, error or watch timeout (the thread is a daemon)."""
        self._stop.set()
        if self._thread is not None and timeout:
            self._thread.join(timeout)

    def run(self) -> None:
        """List and watch until :meth:`stop`; raises only the ``fatal`` errors, retries the rest."""
        delay = self.backoff[0]
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()
                delay = self.backoff[0]  # a watch that opened and ended normally: go again at once
            except self.fatal:
                raise
            except _Relist as e:
                log.info("relisting %s: %s", self.scope, e)
                need_list = True
            except _Silent as e:
                # Silent past max_silence (quiet, or cut off with the socket still open): relist, for
                # fresh data and not only a new socket (a watch reopened from our resourceVersion can
                # stay as blind as the old one). Cut by reopen(): watch again from our resourceVersion.
                self.silent_watches += 1
                if e.relist:
                    need_list = True
                    log.debug("the watch of %s was silent for %gs: relisting", self.scope, self.max_silence)
            except errors.Unreachable as e:
                log.warning("cannot watch %s (retrying in %.1fs): %s", self.scope, delay, e)
                self._stop.wait(delay * (1 + random.random() / 5))
                delay = min(delay * 2, self.backoff[1])
            except errors.GateError as e:
                # Forbidden, Unauthorized, an unexpected answer: keep trying, relist to be safe.
                log.error("cannot list or watch %s (retrying in %.1fs): %s", self.scope, delay, e)
                need_list = True
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            except Exception:  # a bug in a callback must not end the informer silently
                log.exception("informer for %s failed; relisting", self.scope)
                need_list = True
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                self._watching = False  # NB: except-blocks above run first; _watch clears it itself

    # -- steps ---------------------------------------------------------------------------------
    def _list(self) -> None:
        try:
            raw = self.kube.request(
                "GET", self.resource.path(self.namespace), query=self._selector(), resource=self.resource
            )
        except errors.CrdMissing:
            if not self.missing_ok:
                raise
            self._contact()
            self.on_list([])
            self.synced = True
            log.warning("%s is not served (CRD not installed?): treated as empty", self.scope)
            self._watching = True  # NB: nothing to watch; the probe's answers keep it fresh meanwhile
            self._stop.wait(self.backoff[1])
            raise _Relist("checking again whether the resource is served") from None
        items = list(raw.get("items") or ())
        self._resource_version = str((raw.get("metadata") or {}).get("resourceVersion") or "")
        self.lists += 1
        self.on_list(items)
        self._contact()  # NB: after the callback: a copy that could not take the list is not fresh
        if not self.synced:
            log.info("synced %s: %d objects", self.scope, len(items))
        self.synced = True

    def _watch(self) -> None:
        timeout = int(self.watch_timeout * (1 + random.random() / 5))
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout),
            *self._selector(),
        ]
        if self._resource_version:
            query.append(("resourceVersion", self._resource_version))
        silence = self.max_silence
        read_timeout = timeout + 15.0 if silence is None else silence
        self._reopening = False
        stream = self.kube.stream(
            self.resource.path(self.namespace),
            query=query,
            timeout=(min(5.0, read_timeout), read_timeout),
            on_open=self._opened,
        )
        # NB: the request goes out on the first next(), which returns only with the first event; a
        # watch being opened counts as open (a refused connection fails at once, a slow one within
        # the connect timeout), so a quiet, healthy watch does not look like a lost API server.
        self._watching = True
        try:
            try:
                first = next(stream, None)
            except BaseException:
                self._watching, self._cut = False, None  # NB: a later reopen() must not cut a dead watch
                raise
        except errors.Expired as e:  # 410 Gone: our resourceVersion is older than the server keeps
            raise _Relist(f"the watch was refused: {e}") from e
        except errors.Unreachable as e:
            if self._reopening or (silence is not None and _read_timed_out(e)):
                raise _Silent(relist=not self._reopening) from e
            raise  # run() backs off
        # NB: any other GateError (forbidden...) goes on: run() backs off (or raises a fatal one)
        self.watches += 1
        try:
            if first is not None:
                self._handle(first)
            for event in stream:
                if self._stop.is_set():
                    return
                self._handle(event)
        except errors.Unreachable as e:
            if self._reopening or (silence is not None and _read_timed_out(e)):
                raise _Silent(relist=not self._reopening) from e
            raise
        finally:
            self._watching = False
            self._cut = None
            if silence is None:
                self._contact()  # the CLI's followers: the server ended the watch itself, it answered
            stream.close()

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code in (410, 500) or obj.get("reason") in ("Expired", "Gone"):
                raise _Relist(f"the watch expired ({code} {obj.get('reason', '')}: {obj.get('message', '')})")
            raise _Relist(f"the watch sent an error: {obj.get('message') or obj}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in (ADDED, MODIFIED, DELETED):
            self.on_event(kind, obj)  # NB: a callback that raises leaves rv and age as they were: relist
        if rv:
            self._resource_version = str(rv)
        if self.max_silence is not None:
            self._contact()  # fresh data arrived and was taken (a bookmark counts: what a quiet watch sends)

    def _opened(self, cut: Callable[[], None]) -> None:
        self._cut = cut
        if self._reopening:  # asked for before the watch was open: cut it now
            cut()

    def _selector(self) -> list[tuple[str, Any]]:
        return [("fieldSelector", self.field_selector)] if self.field_selector else []

    def _contact(self) -> None:
        self._last_contact = self.clock()


class Liveness:
    """Asks the API server a cheap question (``GET /version``) every ``interval`` seconds, each with
    its own ``timeout``; every answer vouches for the open watches of ``informers`` (:meth:`Informer.vouch`).

    A quiet watch sends nothing for minutes; this is what tells "quiet" from "cut off with the socket
    still open". Any HTTP answer counts (even 403: the server is there); no answer, 429 or 5xx does
    not. One request per ``interval`` for the whole process, whatever the number of informers.
    """

    PATH = "/version"

    def __init__(
        self,
        kube: Kube,
        informers: list[Informer],
        *,
        interval: float,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], Any] | None = None,
    ):
        self.kube = kube
        self.informers = informers
        self.interval = interval
        self.timeout = timeout
        self.clock = clock
        #: Probes answered in a row, and not answered in a row.
        self.answered = 0
        self.failed = 0
        self._stop = threading.Event()
        #: How run() waits between probes (a fake clock's in tests); returns early on stop().
        self._wait = wait if wait is not None else self._stop.wait
        self._thread: threading.Thread | None = None

    def probe(self) -> bool:
        """One probe; True (and the open watches vouched for) when the API server answered."""
        sent = self.clock()
        try:
            self.kube.request("GET", self.PATH, timeout=self.timeout)
        except errors.Unreachable as e:
            if not self.failed or self.answered:  # NB: once per outage, not every interval
                log.warning("the API server did not answer the liveness probe: %s", e)
            self.failed += 1
            self.answered = 0
            return False
        except errors.GateError:
            pass  # it answered, with a refusal: still contact
        if self.failed:
            log.info("the API server answers the liveness probe again: reopening the watches")
            self.failed = 0
            # NB: a watch whose connection died silently during the outage would look healthy now
            # (we vouch for open watches); reopen them all from their resourceVersions.
            for informer in self.informers:
                informer.reopen()
        self.answered += 1
        for informer in self.informers:
            informer.vouch(sent)
        return True

    def run(self) -> None:
        while not self._stop.is_set():
            started = self.clock()
            try:
                self.probe()
            except Exception:  # a bug must not end the probe silently (the cache would age out)
                log.exception("liveness probe failed")
            self._wait(max(0.0, self.interval - (self.clock() - started)))

    def start(self) -> Liveness:
        self._thread = threading.Thread(target=self.run, name="api-liveness", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.0) -> None:
        self._stop.set()
        if self._thread is not None and timeout:
            self._thread.join(timeout)


class _Relist(Exception):
    """The watch cannot go on from our resourceVersion: list again."""


class _Silent(Exception):
    """The watch was cut: silent for ``max_silence`` seconds (``relist``: list again), or by :meth:`Informer.reopen`."""

    def __init__(self, relist: bool = True):
        super().__init__()
        self.relist = relist


def _read_timed_out(error: BaseException) -> bool:
    """Whether a transport error is a read timeout (silence), not a refused or broken connection."""
    # NB: both transports chain the original error (urllib3's may sit in a MaxRetryError's reason).
    seen: Any = error
    for _ in range(8):
        if seen is None:
            return False
        name = type(seen).__name__
        if name == "ConnectTimeoutError" or "handshake" in str(seen):
            return False  # no connection (a partition refuses even the TLS handshake): back off
        if name == "ReadTimeoutError" or isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or getattr(seen, "reason", None) or seen.__context__
    return False


#: What ends a follow instead of being retried: nothing to follow, or not allowed to.
FOLLOW_FATAL: tuple[type[BaseException], ...] = (errors.CrdMissing, errors.Forbidden, errors.Unauthorized)


def follow_object(
    kube: Kube,
    resource: Resource,
    namespace: str,
    name: str,
    on_change: Callable[[dict[str, Any] | None], None],
    *,
    watch_timeout: float = 60.0,
    backoff: tuple[float, float] = (0.1, 1.0),
    fatal: tuple[type[BaseException], ...] = FOLLOW_FATAL,
) -> Informer:
    """An (unstarted) Informer on one object: ``on_change(obj)`` with the object now and after each
    change, ``on_change(None)`` while it does not exist; repeats are not reported.

    Call ``run()`` in a thread of your own to receive the ``fatal`` errors, or ``start()``.
    """
    last: list[Any] = [object()]

    def report(current: dict[str, Any] | None) -> None:
        if current != last[0]:
            last[0] = current
            on_change(current)

    def on_list(items: list[dict[str, Any]]) -> None:
        report(next((i for i in items if (i.get("metadata") or {}).get("name") == name), None))

    def on_event(kind: str, obj: dict[str, Any]) -> None:
        if (obj.get("metadata") or {}).get("name") == name:
            report(None if kind == DELETED else obj)

    return Informer(
        kube,
        resource,
        namespace=namespace,
        on_list=on_list,
        on_event=on_event,
        watch_timeout=watch_timeout,
        backoff=backoff,
        field_selector=f"metadata.name={name}",
        fatal=fatal,
    )
