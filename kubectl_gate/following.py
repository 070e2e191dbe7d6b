"""Follow a CanaryGate and its Canary together: one informer thread each
(:func:`canarygate.kube.informers.follow_object`), changes merged in order."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from canarygate.kube import informers
from canarygate.kube.resources import CANARIES, CANARYGATES
from canarygate.model import Canary, CanaryGate, parse_canary, parse_canarygate
from kubectl_gate.context import GateContext

_END = object()


class Follower:
    """The latest CanaryGate and Canary, updated from watches; iterate :meth:`changes` for updates."""

    def __init__(self, gctx: GateContext, name: str, namespace: str | None = None):
        self.kube = gctx.kube
        self.namespace = namespace or gctx.ns
        self.name = name
        self.gate_raw: dict[str, Any] | None = None
        self.canary_raw: dict[str, Any] | None = None
        self._seen = {"gate": False, "canary": False}
        self._queue: queue.Queue = queue.Queue()
        self._informers: list[informers.Informer] = []
        self._target: tuple[str, str] | None = None

    @property
    def gate(self) -> CanaryGate | None:
        return parse_canarygate(self.gate_raw) if self.gate_raw is not None else None

    @property
    def canary(self) -> Canary | None:
        return parse_canary(self.canary_raw) if self.canary_raw is not None else None

    def _run(self, key: str, where: tuple[str, str], informer: informers.Informer) -> None:
        from canarygate import errors

        try:
            informer.run()
        except errors.CrdMissing as e:
            # NB: no Flagger CRD means no Canary, which is a state to show, not an error.
            self._queue.put((key, where, None) if key == "canary" else ("error", where, e))
        except BaseException as e:  # noqa: BLE001 - handed to the reader, who raises it in the main thread
            self._queue.put(("error", where, e))

    def _start(self, key: str, resource, namespace: str, name: str) -> None:
        where = (namespace, name)
        informer = informers.follow_object(
            self.kube, resource, namespace, name, lambda obj: self._queue.put((key, where, obj))
        )
        self._informers.append(informer)
        threading.Thread(target=self._run, args=(key, where, informer), daemon=True).start()

    def changes(self, *, deadline: float | None = None) -> Iterator[str]:
        """Yield "gate" or "canary" after each change, once both have been read; stops at ``deadline``."""
        self._start("gate", CANARYGATES, self.namespace, self.name)
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    key, where, obj = self._queue.get(timeout=timeout)
                except queue.Empty:
                    return
                if key == "error":
                    raise obj
                if key == "gate":
                    self.gate_raw = obj
                    gate = self.gate
                    if gate is not None:
                        target = (gate.target.namespace, gate.target.name)
                        if target != self._target:
                            self._target = target
                            self.canary_raw = None
                            self._seen["canary"] = False
                            self._start("canary", CANARIES, *target)
                    elif self._target is None:
                        self._seen["canary"] = True  # no gate, no target: nothing to wait for
                else:
                    if where != self._target:
                        continue  # no target yet, or the Canary of an earlier target
                    self.canary_raw = obj
                self._seen[key] = True
                if all(self._seen.values()):
                    yield key
        finally:
            for informer in self._informers:
                informer.stop()
