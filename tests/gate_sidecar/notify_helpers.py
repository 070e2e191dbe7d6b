"""A notifier over a hand-filled cache, the real slack_sdk WebClient pointed at a local recorder."""

from __future__ import annotations

import time
from typing import Any

from sidecar_helpers import PROMOTED_AT, make_canary, make_gate

from canarygate.resolution import resolve_gate
from canarygate.times import parse_time
from gate_sidecar.cache import GateCache, StaticHealth
from gate_sidecar.metrics import Metrics
from gate_sidecar.notify.config import NotifyConfig
from gate_sidecar.notify.notifier import Notifier

KEY = ("demo-ns", "demo")
#: The notifier's wall clock: two minutes into the rollout of sidecar_helpers' Canaries.
NOW = parse_time(PROMOTED_AT).timestamp() + 120


class StatusWriter:
    """The writer's notification hooks: the status parts it would merge, and what it was asked to refresh."""

    def __init__(self):
        self.status_parts: list = []
        self.hold_listeners: list = []
        self.refreshed: list = []

    def refresh_status(self, key) -> None:
        self.refreshed.append(key)

    def status(self, key) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for part in self.status_parts:
            merged.update(part(key))
        return merged


class Bench:
    """A cache with one CanaryGate and its Canary, a notifier over it, and helpers to move them."""

    def __init__(self, config: NotifyConfig, *, gate: dict | None = None, canary: dict | None = None, **kwargs):
        self.cache = GateCache(health=[StaticHealth(synced=True)])
        self.gate_raw = gate or make_gate(confirm_promotion="closed")
        self.canary_raw = canary or make_canary(phase="WaitingPromotion", weight=0)
        self.cache.fill(gates=[self.gate_raw], canaries=[self.canary_raw])
        self.writer = StatusWriter()
        self.metrics = Metrics()
        kwargs.setdefault("base_delay", 0.05)
        kwargs.setdefault("max_delay", 0.2)
        self.notifier = Notifier(
            config, self.cache, writer=self.writer, metrics=self.metrics, wallclock=lambda: NOW, **kwargs
        )
        self.rv = 1

    def start(self) -> Bench:
        self.notifier.sweep()
        self.notifier.queue.start()
        return self

    def stop(self) -> None:
        self.notifier.stop(1.0)

    def hold(self, hook: str = "confirm-promotion") -> None:
        """What the writer does on the first answer that holds the rollout at ``hook``."""
        entry = self.cache.entry(KEY)
        canary = self.cache.canary(*KEY)
        decision = resolve_gate(entry.gate, hook, canary=canary)
        for listener in self.writer.hold_listeners:
            listener(KEY, hook, decision, canary)

    def update_gate(self, *, annotations: dict[str, str] | None = None, status: dict | None = None) -> None:
        self.rv += 1
        meta = self.gate_raw["metadata"]
        meta["resourceVersion"] = str(self.rv)
        if annotations is not None:
            meta["annotations"] = {**meta.get("annotations", {}), **annotations}
        if status is not None:
            self.gate_raw["status"] = status
        self.cache.apply_gate_event("MODIFIED", self.gate_raw)

    def update_canary(self, **kwargs) -> None:
        self.canary_raw = make_canary(**kwargs)
        self.cache.apply_canary_event("MODIFIED", self.canary_raw)

    def settle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.notifier.queue.idle():
            if time.monotonic() > deadline:
                raise TimeoutError("notifications still queued")
            time.sleep(0.01)

    def counted(self, receiver: str, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "canarygate_sidecar_notifications_total", {"receiver": receiver, "result": result}
        )
        return value or 0.0
