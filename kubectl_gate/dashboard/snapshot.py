"""What the dashboard shows: ``kubectl gate list``'s views, in the words ``list`` and ``show`` print,
polled as ``list --watch`` polls them.

Nothing is decided here: each cell comes from :mod:`kubectl_gate.views` or :mod:`kubectl_gate.printing`
(``-o json``'s :func:`view_to_dict` rides along as ``data``), so the page and the CLI cannot disagree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from canarygate import diagnosis, hooks
from kubectl_gate import printing
from kubectl_gate.commands.list import WATCH_INTERVAL, list_views
from kubectl_gate.context import GateContext, rfc3339
from kubectl_gate.dashboard import actions
from kubectl_gate.views import GateView, closed_text, view_to_dict

#: Plain words: no colour, no icons (a table cell off a terminal).
PLAIN = printing.Style(color=False, unicode=True, icons=False)


def item(view: GateView, now) -> dict[str, Any]:
    """One CanaryGate's card."""
    gate = view.gate
    phase = view.canary.phase if view.canary is not None else ""
    return {
        "key": f"{gate.namespace}/{gate.name}",
        "namespace": gate.namespace,
        "name": gate.name,
        "target": f"{gate.target.namespace}/{gate.target.name}",
        "phase": printing.phase_text(view, PLAIN),
        "phaseKind": printing.PHASE_KIND.get(phase, "unknown") if view.canary is not None else "unknown",
        "weight": view.weight,
        "held": printing.held_text(view),
        "closed": closed_text(view),
        "next": diagnosis.recommended_command(view.holding, gate.name, gate.namespace) if view.holding else "",
        "gates": [
            {
                "gate": d.gate,
                "state": printing.gate_state_text(d, view.holding, PLAIN, view),
                "source": d.source,
                "setBy": d.set_by,
                "age": printing.age(d.set_at, now) if d.set_at else "",
                "scope": d.scope,
                "reason": d.reason,
            }
            for d in view.decisions.values()
        ],
        "data": view_to_dict(view),
    }


def build(gctx: GateContext, views: list[GateView], *, error: str = "") -> dict[str, Any]:
    now = gctx.now()
    return {
        "scope": "all namespaces" if gctx.all_namespaces else f"namespace {gctx.ns}",
        "allNamespaces": gctx.all_namespaces,
        "context": gctx.connection.context,
        "server": gctx.connection.server,
        "user": _user(gctx),
        "updated": rfc3339(now),
        "error": error,
        "checkGates": sorted(hooks.CHECK_GATES),
        "verbs": actions.describe(),
        "items": [item(v, now) for v in views],
    }


def _user(gctx: GateContext) -> str:
    """Who the API server says we are; empty while it cannot be reached (asked again next time)."""
    from canarygate import errors

    try:
        return gctx.username()
    except errors.Unreachable:
        return ""


class Poller:
    """Lists every WATCH_INTERVAL seconds (two LIST requests, as ``list --watch``) in a thread and
    keeps the newest snapshot; :meth:`wait_newer` lets a stream sleep until there is one.

    ``lock`` serialises every use of the shared GateContext (polls, actions, ``show``).
    """

    def __init__(self, gctx: GateContext, selector: str | None, *, interval: float = WATCH_INTERVAL):
        self.gctx, self.selector, self.interval = gctx, selector, interval
        self.lock = threading.RLock()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._snapshot: dict[str, Any] = {}
        self._serial = 0
        self._thread: threading.Thread | None = None

    def poll(self) -> dict[str, Any]:
        """One listing; an outage keeps the last items and says "reconnecting…" (as list --watch)."""
        from canarygate import errors

        with self.lock:
            try:
                views = list_views(self.gctx, self.selector)
                snapshot = build(self.gctx, views)
            except errors.Unreachable as e:
                snapshot = self._failed(f"reconnecting… ({e})")
            except errors.GateError as e:
                from kubectl_gate.cli import to_failure

                snapshot = self._failed(to_failure(e).format_message())
        self._publish(snapshot)
        return snapshot

    def _failed(self, message: str) -> dict[str, Any]:
        """The last snapshot (or an empty one) saying what is wrong."""
        return dict(self._snapshot or build(self.gctx, []), error=message)

    def first(self) -> dict[str, Any]:
        """The first listing. Any error is raised (the command fails as ``list`` would), but for an
        API server that cannot be reached now (down, 429, 5xx): the page then says so and the poller
        retries, as ``list --watch`` does once started."""
        from canarygate import errors

        with self.lock:
            try:
                snapshot = build(self.gctx, list_views(self.gctx, self.selector))
            except errors.UntrustedServer:
                raise
            except errors.Unreachable as e:
                snapshot = self._failed(f"reconnecting… ({e})")
        self._publish(snapshot)
        return snapshot

    def _publish(self, snapshot: dict[str, Any]) -> None:
        with self._changed:
            self._snapshot = snapshot
            self._serial += 1
            self._changed.notify_all()

    def current(self) -> tuple[int, dict[str, Any]]:
        with self._changed:
            return self._serial, self._snapshot

    def wait_newer(self, serial: int, timeout: float) -> tuple[int, dict[str, Any]]:
        """The snapshot after ``serial``, or the same one after ``timeout`` seconds (a heartbeat)."""
        with self._changed:
            self._changed.wait_for(lambda: self._serial != serial or self._stop.is_set(), timeout=timeout)
            return self._serial, self._snapshot

    def shown(self) -> set[tuple[str, str]]:
        """(namespace, name) of the CanaryGates shown: the only ones the dashboard acts on."""
        return {(i["namespace"], i["name"]) for i in self.current()[1].get("items") or ()}

    def start(self, on_error: Callable[[Exception], None] | None = None) -> None:
        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    self.poll()
                except Exception as e:  # noqa: BLE001 - the page says so; the next poll tries again
                    if on_error is not None:
                        on_error(e)

        self._thread = threading.Thread(target=loop, name="dashboard-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()
