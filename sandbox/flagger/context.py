"""One tick's hold on one Canary: what it read, what it has written, and how it writes.

:class:`TickContext` is the state Flagger's ``advanceCanary`` carries through a tick, and the
primitives every step of it uses (:mod:`sandbox.flagger.tick`, :mod:`sandbox.flagger.hooks`,
:mod:`sandbox.flagger.strategies`), each writing at the point of the tick where Flagger does:

* **status writes** (``SyncStatus``, ``SetStatusPhase``, single fields), each passed to
  ``io.on_status``;
* **events** (``recordEvent*``): the Kubernetes event (``io.on_event``), then the event webhooks;
* **webhook calls** (``CallWebhook``) with Flagger's payload;
* **workload actions** (``io.on_action``);
* **readiness** of the primary and the canary, read when asked (``io.readiness``, else the
  :class:`TargetWorkload`'s).

Two copies of the status are kept, as in Flagger: ``mem`` is the Canary object the tick holds
(its phase and checksum go into payloads and events) and ``server`` is what the API holds.
Status writes change ``server`` only; ``mem`` is refreshed where Flagger re-fetches the Canary
(confirm-rollout) or copies fields back (initialisation). Everything done is recorded in
``tick`` (:class:`sandbox.flagger.records.Tick`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.flagger import checksum as checksums
from sandbox.flagger import records, webhooks
from sandbox.flagger.analysis import analysis_of
from sandbox.flagger.metrics import MetricFailure
from sandbox.flagger.readiness import Readiness
from sandbox.flagger.status import (
    INITIALIZED,
    PROGRESSING,
    PROMOTING,
    SUCCEEDED,
    WAITING,
    WAITING_PROMOTION,
    promoted_condition,
    rfc3339,
)
from sandbox.flagger.webhooks import HookResult


@dataclass(frozen=True)
class TickIO:
    """The tick's only I/O, injected: the webhook caller, the metric checks, the readiness
    reader, and the observers told of each status write, event and workload action."""

    hooks: records.HookCaller
    metrics: Callable[[Mapping[str, Any]], MetricFailure | None]
    on_status: Callable[[dict[str, Any]], None] | None = None
    on_event: Callable[[records.Event], None] | None = None
    on_action: Callable[[str], None] | None = None
    readiness: records.ReadinessReader | None = None


def int_field(source: Mapping[str, Any], key: str) -> int:
    """A counter of the spec or the status: absent or null is 0."""
    return int(source.get(key) or 0)


class TickContext:
    def __init__(
        self,
        canary: Mapping[str, Any],
        target: records.TargetWorkload | None,
        now: datetime,
        routes: records.Routes,
        provider: str,
        event_webhook: str | None,
        io: TickIO,
    ) -> None:
        """``provider`` is the global ``-mesh-provider`` (``spec.provider`` overrides it here)."""
        self.canary = copy.deepcopy(dict(canary))
        meta = self.canary.get("metadata") or {}
        self.name = meta.get("name", "")
        self.namespace = meta.get("namespace", "")
        self.spec = self.canary.get("spec") or {}
        ref = self.spec.get("targetRef") or {}
        self.target_name = ref.get("name", "")
        self.kind = ref.get("kind", "Deployment")
        #: The tick's own copy: the kubernetes provider's fallbacks change it for this tick only.
        self.analysis = copy.deepcopy(analysis_of(self.canary) or {})
        self.skip = analysis_of(self.canary) is None or bool(self.spec.get("skipAnalysis"))
        self.target = target
        self.now = now
        self.io = io
        self.provider = self.spec.get("provider") or provider
        self.event_webhook = event_webhook
        self.server: dict[str, Any] = copy.deepcopy(self.canary.get("status") or {})
        self.mem: dict[str, Any] = copy.deepcopy(self.server)
        self.tick = records.Tick(status=self.server, routes=routes)

    # -- small readers -----------------------------------------------------------------
    @property
    def phase(self) -> str:
        return self.mem.get("phase") or ""

    @property
    def who(self) -> str:
        return f"{self.name}.{self.namespace}"

    @property
    def target_who(self) -> str:
        return f"{self.target_name}.{self.namespace}"

    @property
    def primary_name(self) -> str:
        return f"{self.target_name}-primary"

    def counter(self, key: str) -> int:
        """``failedChecks``, ``iterations`` or ``canaryWeight`` of the tick's Canary (``mem``)."""
        return int_field(self.mem, key)

    @property
    def threshold(self) -> int:
        value = int_field(self.analysis, "threshold")
        return value if value > 0 else 1

    @property
    def iterations(self) -> int:
        return int_field(self.analysis, "iterations")

    def act(self, *actions: str) -> None:
        """A workload action (``initialize``, ``scale-to-zero``, ``scale-from-zero``,
        ``promote``), carried out by ``on_action`` at this point of the tick."""
        for action in actions:
            self.tick.actions.append(action)
            if self.io.on_action is not None:
                self.io.on_action(action)

    # -- readiness ---------------------------------------------------------------------
    def readiness(self, which: str) -> Readiness:
        """``IsPrimaryReady``/``IsCanaryReady``, read now."""
        assert self.target is not None
        if self.io.readiness is not None:
            return self.io.readiness(which)
        return self.target.primary if which == "primary" else self.target.canary

    def readiness_text(self, readiness: Readiness, workload: str) -> str:
        if not readiness.message and not readiness.retriable:
            return f'deployment "{workload}" exceeded its progress deadline'
        return readiness.message

    def primary_error(self, readiness: Readiness) -> str:
        if not readiness.wrapped:
            return readiness.message
        return f"{self.primary_name}.{self.namespace} not ready: {self.readiness_text(readiness, self.primary_name)}"

    # -- status writes -----------------------------------------------------------------
    def _write(self, status: dict[str, Any]) -> None:
        status["lastTransitionTime"] = rfc3339(self.now)
        self.server.clear()
        self.server.update(status)
        snapshot = copy.deepcopy(status)
        self.tick.status_writes.append(snapshot)
        if self.io.on_status is not None:
            self.io.on_status(copy.deepcopy(snapshot))

    def _set_conditions(self, status: dict[str, Any], base: Mapping[str, Any], phase: str) -> None:
        conditions = promoted_condition(base.get("conditions"), phase, self.kind, self.now)
        if conditions is not None:
            status["conditions"] = conditions

    def sync_status(self, phase: str, *, canary_weight: int = 0, failed_checks: int = 0, iterations: int = 0) -> None:
        """``SyncStatus``: phase, counters, and the target's current hash and configs."""
        assert self.target is not None
        status = copy.deepcopy(self.server)
        status.update(
            phase=phase,
            canaryWeight=canary_weight,
            failedChecks=failed_checks,
            iterations=iterations,
            lastAppliedSpec=self.target.template_hash,
            trackedConfigs=dict(self.target.tracked_configs),
        )
        if phase == INITIALIZED:
            status["lastPromotedSpec"] = self.target.template_hash
        self._set_conditions(status, self.server, phase)
        self._write(status)

    def set_status_phase(self, phase: str) -> None:
        """``SetStatusPhase``: zeroes weight and iterations outside Progressing, Waiting
        and Promoting; WaitingPromotion sets iterations to ``analysis.iterations - 1``."""
        status = copy.deepcopy(self.server)
        status["phase"] = phase
        if phase not in (PROGRESSING, WAITING, PROMOTING):
            status["canaryWeight"] = 0
            status["iterations"] = 0
            if phase == WAITING_PROMOTION:
                status["iterations"] = self.iterations - 1
        if phase in (INITIALIZED, SUCCEEDED):
            status["lastPromotedSpec"] = status.get("lastAppliedSpec", "")
        self._set_conditions(status, status, phase)
        self._write(status)

    def set_field(self, key: str, value: int) -> None:
        """One counter of the status (``SetStatusWeight``, ``SetStatusIterations``,
        ``SetStatusFailedChecks``)."""
        status = copy.deepcopy(self.server)
        status[key] = value
        self._write(status)

    # -- events and webhook calls --------------------------------------------------------
    def canary_as(self, phase: str | None) -> dict[str, Any]:
        return self.mem if phase is None else {**self.mem, "phase": phase}

    def event(self, type_: str, message: str, *, phase: str | None = None) -> None:
        """``recordEvent*``: the Kubernetes event, then the event webhooks, synchronously.

        ``phase`` is the phase of the object Flagger hands the recorder when it is not the
        tick's Canary as held (``mem``)."""
        obj = self.canary_as(phase)
        obj_phase = obj.get("phase") or ""
        checksum = checksums.canary_checksum(obj)
        recorded = records.Event(type_, message, obj_phase, checksum)
        self.tick.events.append(recorded)
        if self.io.on_event is not None:
            self.io.on_event(recorded)
        event_hooks = self.hooks_of("event")
        if not event_hooks and self.event_webhook:
            event_hooks = [{"name": "events", "type": "event", "url": self.event_webhook, "timeout": "10s"}]
        for hook in event_hooks:
            payload = webhooks.event_payload(
                name=self.name,
                namespace=self.namespace,
                phase=obj_phase,
                checksum=checksum,
                message=message,
                event_type=type_,
                now=self.now,
                metadata=hook.get("metadata"),
            )
            self._record_call(hook, "event", obj_phase, checksum, self.io.hooks(hook, payload), message)

    def info(self, message: str, *, phase: str | None = None) -> None:
        self.event(records.NORMAL, message, phase=phase)

    def warn(self, message: str, *, phase: str | None = None) -> None:
        self.event(records.WARNING, message, phase=phase)

    def hooks_of(self, hook_type: str) -> list[Mapping[str, Any]]:
        """The Canary's webhooks of one type, in spec order."""
        return [w for w in self.analysis.get("webhooks") or [] if webhooks.hook_type(w) == hook_type]

    def call(self, hook: Mapping[str, Any], phase: str, obj: Mapping[str, Any] | None = None) -> HookResult:
        """``CallWebhook``: payload phase as given, checksum of the tick's Canary (or ``obj``)."""
        checksum = checksums.canary_checksum(self.mem if obj is None else obj)
        payload = webhooks.hook_payload(
            name=self.name, namespace=self.namespace, phase=phase, checksum=checksum, metadata=hook.get("metadata")
        )
        result = self.io.hooks(hook, payload)
        self._record_call(hook, webhooks.hook_type(hook), phase, checksum, result)
        return result

    def _record_call(
        self, hook: Mapping[str, Any], hook_type: str, phase: str, checksum: str, result: HookResult, message: str = ""
    ) -> None:
        self.tick.calls.append(
            records.Call(
                hook_type, hook.get("name", ""), hook.get("url", ""), phase, checksum, result.ok, result.error, message
            )
        )
