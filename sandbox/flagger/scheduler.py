"""One tick of Flagger's scheduler, as a pure function (``docs/flagger-contract.md#one-tick``).

:func:`advance` is Flagger's ``advanceCanary`` (``pkg/controller/scheduler.go``) re-told in
Python: given a Canary object (the API's JSON), what the simulator knows of its target, the
current traffic routes and a webhook caller, it runs one tick and returns a :class:`Tick`:
the status as the API would hold it afterwards, every status write in order, the Kubernetes
events Flagger would record (with the phase and checksum its event payload carries), every
webhook call made (in order, event hooks included, interleaved as Flagger interleaves them),
the new routes, and the workload actions (create the primary, scale, promote) for the
controller to carry out.

The only I/O goes through the injected callables: ``hooks(webhook, payload) -> HookResult``
(see :mod:`sandbox.flagger.webhooks`), ``metrics(canary) -> MetricFailure | None`` and an
optional ``on_status(status)`` called after each status write, at the point in the tick where
Flagger writes it, so that a webhook server reading the Canary during a later hook of the
same tick sees what it would see with Flagger (``on_event(event)`` likewise for events, before
the event webhooks are called, and ``on_action(action)`` for workload actions).

Two copies of the status are kept, as in Flagger: ``mem`` is the Canary object the tick holds
(its phase and checksum go into payloads and events) and ``server`` is what the API holds.
Status writes change ``server`` only; ``mem`` is refreshed where Flagger re-fetches the Canary
(confirm-rollout) or copies fields back (initialisation).

Readiness is read through ``readiness(which)`` at each of Flagger's checks (the controller
reads the Deployment's status, :mod:`sandbox.flagger.readiness`), else taken from ``Target``.
While the primary or the canary is not ready the tick ends before any hook (rollback included);
only the warning's event webhooks are called. Simulated parts (the sandbox runs no pods and no
mesh): routes are a :class:`Routes` value the controller keeps; metric checks come from
``metrics``, by default :func:`simulated_metrics` (fail while the Canary carries the annotation
``sandbox.flagger.app/metrics: fail``). What still differs from Flagger is listed in
:mod:`sandbox.flagger`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.flagger import checksum as checksums
from sandbox.flagger import webhooks
from sandbox.flagger.readiness import READY, Readiness
from sandbox.flagger.webhooks import HookResult

# Phases (CRD enum plus "").
INITIALIZING = "Initializing"
INITIALIZED = "Initialized"
WAITING = "Waiting"
PROGRESSING = "Progressing"
WAITING_PROMOTION = "WaitingPromotion"
PROMOTING = "Promoting"
FINALISING = "Finalising"
SUCCEEDED = "Succeeded"
FAILED = "Failed"

NORMAL = "Normal"
WARNING = "Warning"
#: Flagger records every event with this reason.
REASON = "Synced"
TOTAL_WEIGHT = 100

METRICS_ANNOTATION = "sandbox.flagger.app/metrics"

HookCaller = Callable[[Mapping[str, Any], Mapping[str, Any]], HookResult]
#: ``readiness("primary" | "canary")``: the workload's readiness, read when Flagger reads it.
ReadinessReader = Callable[[str], Readiness]

#: What ``isDeploymentReady`` says of a Deployment just created or scaled up from zero.
NOT_READY = Readiness(False, True, "waiting for rollout to finish: 0 out of 1 new replicas have been updated")


@dataclass(frozen=True)
class Target:
    """What the scheduler needs from the target workload, read by the controller."""

    template_hash: str
    tracked_configs: Mapping[str, str] = field(default_factory=dict)
    primary: Readiness = READY
    canary: Readiness = READY


@dataclass(frozen=True)
class Routes:
    """The (simulated) mesh routes: weights and whether traffic is mirrored."""

    primary: int = TOTAL_WEIGHT
    canary: int = 0
    mirrored: bool = False


@dataclass(frozen=True)
class MetricFailure:
    type: str
    message: str


@dataclass(frozen=True)
class Event:
    """A Kubernetes event Flagger records for the Canary.

    ``phase`` and ``checksum`` are those of the object Flagger passes to the recorder: what
    its event webhooks receive (not always the Canary's phase after the tick).
    """

    type: str
    message: str
    phase: str
    checksum: str
    reason: str = REASON


@dataclass(frozen=True)
class Call:
    """One webhook call: the hook's type and name, the payload's phase and checksum."""

    hook: str
    name: str
    url: str
    phase: str
    checksum: str
    ok: bool
    error: str = ""
    message: str = ""  # eventMessage, for event hooks


@dataclass
class Tick:
    status: dict[str, Any]
    routes: Routes
    events: list[Event] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    status_writes: list[dict[str, Any]] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def phase(self) -> str:
        return self.status.get("phase", "")

    def messages(self) -> list[str]:
        return [e.message for e in self.events]


# --- helpers shared with the controller --------------------------------------------------


def rfc3339(now: datetime) -> str:
    """Kubernetes' ``metav1.Time`` form: UTC, seconds, ``Z``."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def analysis_of(canary: Mapping[str, Any]) -> dict[str, Any] | None:
    """``GetAnalysis()``: ``spec.analysis``, else the deprecated ``spec.canaryAnalysis``."""
    spec = canary.get("spec") or {}
    return spec.get("analysis") or spec.get("canaryAnalysis")


def analysis_interval(canary: Mapping[str, Any]) -> float:
    """``GetAnalysisInterval()`` in seconds: default 60 s, at least 10 s."""
    analysis = analysis_of(canary) or {}
    text = analysis.get("interval") or ""
    if not text:
        return 60.0
    try:
        seconds = webhooks.parse_go_duration(text)
    except ValueError:
        return 60.0
    return max(seconds, 10.0)


def promoted_condition(
    conditions: list[Mapping[str, Any]] | None, phase: str, kind: str, now: datetime
) -> list[dict[str, Any]] | None:
    """``MakeStatusConditions``: the new ``Promoted`` condition list, or None when unchanged.

    Unchanged when status and reason are equal; ``lastTransitionTime`` is kept when only
    the reason changes.
    """
    status, message = {
        INITIALIZING: ("Unknown", f"New {kind} detected, starting initialization."),
        INITIALIZED: ("True", f"{kind} initialization completed."),
        WAITING: ("Unknown", "Waiting for approval."),
        WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
        PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
        PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
        FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
        SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
        FAILED: ("False", f"Canary analysis failed, {kind} scaled to zero."),
    }.get(phase, ("Unknown", f"New {kind} detected, starting initialization."))
    current = next((c for c in conditions or [] if c.get("type") == "Promoted"), None)
    stamp = rfc3339(now)
    new = {
        "type": "Promoted",
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": phase,
        "message": message,
    }
    if current and current.get("status") == status and current.get("reason") == phase:
        return None
    if current and current.get("status") == status and current.get("lastTransitionTime"):
        new["lastTransitionTime"] = current["lastTransitionTime"]
    return [new]


def initializing_status(canary: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """What Flagger's ``syncHandler`` writes for a Canary without conditions, else None."""
    status = copy.deepcopy(canary.get("status") or {})
    if status.get("conditions"):
        return None
    kind = ((canary.get("spec") or {}).get("targetRef") or {}).get("kind", "Deployment")
    status.update(
        phase=INITIALIZING,
        lastTransitionTime=rfc3339(now),
        conditions=promoted_condition(None, INITIALIZING, kind, now),
    )
    for key in ("failedChecks", "canaryWeight", "iterations"):
        status.setdefault(key, 0)
    return status


def simulated_metrics(canary: Mapping[str, Any]) -> MetricFailure | None:
    """The sandbox's metric checks: all pass unless the Canary is annotated
    ``sandbox.flagger.app/metrics: fail``. The failure names the first of
    ``analysis.metrics`` in Flagger's words (a ``request-success-rate`` of 0 % below 99 %
    when the Canary lists no metrics)."""
    annotations = (canary.get("metadata") or {}).get("annotations") or {}
    if (annotations.get(METRICS_ANNOTATION) or "").strip().lower() != "fail":
        return None
    meta = canary.get("metadata") or {}
    who = f"{meta.get('name')}.{meta.get('namespace')}"
    metrics = (analysis_of(canary) or {}).get("metrics") or [{"name": "request-success-rate", "threshold": 99}]
    metric = metrics[0]
    name = metric.get("name", "")
    rng = metric.get("thresholdRange") or {}
    if name == "request-success-rate":
        bound = rng.get("min", metric.get("threshold", 99))
        return MetricFailure(WARNING, f"Halt {who} advancement success rate 0.00% < {_go_num(bound)}%")
    if name == "request-duration":
        bound = rng.get("max", metric.get("threshold", 500))
        return MetricFailure(
            WARNING, f"Halt {who} advancement request duration {_go_ms(float(bound) * 2)} > {_go_ms(bound)}"
        )
    if rng.get("max") is not None:
        bound = float(rng["max"])
        return MetricFailure(WARNING, f"Halt {who} advancement {name} {bound + 1:.2f} > {_go_num(bound)}")
    if rng.get("min") is not None:
        bound = float(rng["min"])
        return MetricFailure(WARNING, f"Halt {who} advancement {name} {bound - 1:.2f} < {_go_num(bound)}")
    bound = float(metric.get("threshold", 0))
    return MetricFailure(WARNING, f"Halt {who} advancement {name} {bound + 1:.2f} > {_go_num(bound)}")


def _go_num(value: Any) -> str:
    """Go's ``%v`` of a float64 for the usual thresholds (``99``, ``0.5``)."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _go_ms(milliseconds: Any) -> str:
    """Go's ``time.Duration`` text for a whole number of milliseconds (``500ms``, ``1.5s``)."""
    ms = float(milliseconds)
    if ms < 1000:
        return f"{_go_num(ms)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{_go_num(seconds)}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{_go_num(rest)}s"


# --- the tick ------------------------------------------------------------------------------


def advance(
    canary: Mapping[str, Any],
    target: Target | None,
    now: datetime,
    hooks: HookCaller,
    metrics: Callable[[Mapping[str, Any]], MetricFailure | None] = simulated_metrics,
    *,
    routes: Routes = Routes(),
    mesh_provider: str = "",
    event_webhook: str | None = None,
    on_status: Callable[[dict[str, Any]], None] | None = None,
    on_event: Callable[[Event], None] | None = None,
    on_action: Callable[[str], None] | None = None,
    readiness: ReadinessReader | None = None,
) -> Tick:
    """Run one ``advanceCanary`` tick for ``canary``; see the module docstring.

    ``readiness`` reads the primary's or the canary's readiness at the moment Flagger reads it
    (after the tick's workload actions so far); without it, ``target.primary``/``target.canary``.

    ``target`` None means the target workload does not exist. ``mesh_provider`` is Flagger's
    global ``-mesh-provider`` (``spec.provider`` overrides it; ``kubernetes`` forces
    blue/green). ``event_webhook`` is the global ``-event-webhook`` URL.
    """
    run = _Run(
        canary,
        target,
        now,
        hooks,
        metrics,
        routes,
        mesh_provider,
        event_webhook,
        on_status,
        on_event,
        on_action,
        readiness,
    )
    run.advance()
    return run.tick


class _Run:
    def __init__(
        self,
        canary,
        target,
        now,
        hooks,
        metrics,
        routes,
        mesh_provider,
        event_webhook,
        on_status,
        on_event,
        on_action,
        readiness=None,
    ):
        self.canary = copy.deepcopy(dict(canary))
        meta = self.canary.get("metadata") or {}
        self.name = meta.get("name", "")
        self.namespace = meta.get("namespace", "")
        self.spec = self.canary.get("spec") or {}
        ref = self.spec.get("targetRef") or {}
        self.target_name = ref.get("name", "")
        self.kind = ref.get("kind", "Deployment")
        self.analysis = copy.deepcopy(analysis_of(self.canary) or {})
        self.skip = analysis_of(self.canary) is None or bool(self.spec.get("skipAnalysis"))
        self.target = target
        self.now = now
        self.hooks = hooks
        self.metrics = metrics
        self.provider = self.spec.get("provider") or mesh_provider
        self.event_webhook = event_webhook
        self.on_status = on_status
        self.on_event = on_event
        self.on_action = on_action
        self.read_readiness = readiness
        self.server: dict[str, Any] = copy.deepcopy(self.canary.get("status") or {})
        self.mem: dict[str, Any] = copy.deepcopy(self.server)
        self.tick = Tick(status=self.server, routes=routes)

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

    def _int(self, source: Mapping[str, Any], key: str) -> int:
        return int(source.get(key) or 0)

    @property
    def threshold(self) -> int:
        value = self._int(self.analysis, "threshold")
        return value if value > 0 else 1

    @property
    def iterations(self) -> int:
        return self._int(self.analysis, "iterations")

    def max_weight(self) -> int:
        steps = self.analysis.get("stepWeights") or []
        if steps:
            return min(TOTAL_WEIGHT, int(steps[-1]))
        if self._int(self.analysis, "maxWeight") > 0:
            return self._int(self.analysis, "maxWeight")
        return TOTAL_WEIGHT

    def next_step_weight(self, canary_weight: int) -> int:
        steps = [int(s) for s in self.analysis.get("stepWeights") or []]
        step = self._int(self.analysis, "stepWeight")
        if step > 0 or not steps:
            return step
        max_step = TOTAL_WEIGHT - canary_weight
        if max_step == 0:
            return 1
        if canary_weight == 0:
            return min(max_step, steps[0])
        for i in range(len(steps) - 1):
            if steps[i] == canary_weight:
                return min(max_step, steps[i + 1] - canary_weight)
        return max_step

    def act(self, *actions: str) -> None:
        """A workload action (``initialize``, ``scale-to-zero``, ``scale-from-zero``,
        ``promote``), carried out by ``on_action`` at this point of the tick."""
        for action in actions:
            self.tick.actions.append(action)
            if self.on_action is not None:
                self.on_action(action)

    # -- status writes -----------------------------------------------------------------
    def _write(self, status: dict[str, Any]) -> None:
        status["lastTransitionTime"] = rfc3339(self.now)
        self.server.clear()
        self.server.update(status)
        snapshot = copy.deepcopy(status)
        self.tick.status_writes.append(snapshot)
        if self.on_status is not None:
            self.on_status(copy.deepcopy(snapshot))

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

    def _set_field(self, key: str, value: int) -> None:
        status = copy.deepcopy(self.server)
        status[key] = value
        self._write(status)

    # -- events and hooks ----------------------------------------------------------------
    def _object(self, phase: str | None) -> dict[str, Any]:
        obj = self.mem if phase is None else {**self.mem, "phase": phase}
        return obj

    def event(self, type_: str, message: str, *, phase: str | None = None) -> None:
        """``recordEvent*``: the Kubernetes event, then the event webhooks, synchronously."""
        obj = self._object(phase)
        obj_phase = obj.get("phase") or ""
        checksum = checksums.canary_checksum(obj)
        recorded = Event(type_, message, obj_phase, checksum)
        self.tick.events.append(recorded)
        if self.on_event is not None:
            self.on_event(recorded)
        event_hooks = [w for w in self.analysis.get("webhooks") or [] if webhooks.hook_type(w) == "event"]
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
            result = self.hooks(hook, payload)
            self.tick.calls.append(
                Call(
                    "event",
                    hook.get("name", ""),
                    hook.get("url", ""),
                    obj_phase,
                    checksum,
                    result.ok,
                    result.error,
                    message,
                )
            )

    def info(self, message: str, **kwargs: Any) -> None:
        self.event(NORMAL, message, **kwargs)

    def warn(self, message: str, **kwargs: Any) -> None:
        self.event(WARNING, message, **kwargs)

    def _hooks_of(self, hook_type: str) -> list[Mapping[str, Any]]:
        return [w for w in self.analysis.get("webhooks") or [] if webhooks.hook_type(w) == hook_type]

    def call(self, hook: Mapping[str, Any], phase: str, obj: Mapping[str, Any] | None = None) -> HookResult:
        """``CallWebhook``: payload phase as given, checksum of the tick's Canary."""
        checksum = checksums.canary_checksum(self.mem if obj is None else obj)
        payload = webhooks.hook_payload(
            name=self.name, namespace=self.namespace, phase=phase, checksum=checksum, metadata=hook.get("metadata")
        )
        result = self.hooks(hook, payload)
        self.tick.calls.append(
            Call(
                webhooks.hook_type(hook),
                hook.get("name", ""),
                hook.get("url", ""),
                phase,
                checksum,
                result.ok,
                result.error,
            )
        )
        return result

    # -- scheduler_hooks.go ------------------------------------------------------------------
    def confirm_traffic_increase(self) -> bool:
        for hook in self._hooks_of("confirm-traffic-increase"):
            if not self.call(hook, PROGRESSING).ok:
                self.warn(f"Halt {self.who} advancement waiting for traffic increase approval {hook.get('name')}")
                return False
            self.info(f"Confirm-traffic-increase check {hook.get('name')} passed")
        return True

    def confirm_rollout(self) -> bool:
        for hook in self._hooks_of("confirm-rollout"):
            if not self.call(hook, self.phase).ok:
                if self.phase != WAITING:
                    self.set_status_phase(WAITING)
                    self.warn(f"Halt {self.who} advancement waiting for approval {hook.get('name')}")
                return False
            self.info(f"Confirm-rollout check {hook.get('name')} passed")
        return True

    def confirm_promotion(self) -> bool:
        for hook in self._hooks_of("confirm-promotion"):
            if not self.call(hook, PROGRESSING).ok:
                if self.phase != WAITING_PROMOTION:
                    self.set_status_phase(WAITING_PROMOTION)
                    self.warn(f"Halt {self.who} advancement waiting for promotion approval {hook.get('name')}")
                else:
                    self._set_field("iterations", self.iterations - 1)
                return False
            self.info(f"Confirm-promotion check {hook.get('name')} passed")
        return True

    def pre_rollout(self) -> bool:
        for hook in self._hooks_of("pre-rollout"):
            result = self.call(hook, PROGRESSING)
            if not result.ok:
                self.warn(f"Halt {self.who} advancement pre-rollout check {hook.get('name')} failed {result.error}")
                return False
            self.info(f"Pre-rollout check {hook.get('name')} passed")
        return True

    def post_rollout(self, phase: str, *, event_phase: str | None = None) -> bool:
        obj = self._object(event_phase)
        for hook in self._hooks_of("post-rollout"):
            result = self.call(hook, phase, obj)
            if not result.ok:
                self.warn(f"Post-rollout hook {hook.get('name')} failed {result.error}", phase=event_phase)
                return False
            self.info(f"Post-rollout check {hook.get('name')} passed", phase=event_phase)
        return True

    def rollback_hooks(self) -> bool:
        for hook in self._hooks_of("rollback"):
            if not self.call(hook, self.phase).ok:
                self.info(f"Rollback hook {hook.get('name')} not signaling a rollback")
            else:
                self.warn(f"Rollback check {hook.get('name')} passed")
                return True
        return False

    # -- scheduler.go ------------------------------------------------------------------------
    def advance(self) -> None:
        if self.spec.get("suspend"):
            self.info("skipping canary run as object is suspended")
            return
        phase = self.phase
        if self.target is None:
            self.warn(
                f"{self.kind.lower()} {self.target_who} get query error: "
                f'{self.kind.lower()}s.apps "{self.target_name}" not found'
            )
            return
        if not self.skip and phase in ("", INITIALIZING):
            self.info("all the metrics providers are available!")
        # canaryController.Initialize: create the primary, wait for it while initialising
        self.act("initialize")
        if phase in ("", INITIALIZING) and not self.skip:
            primary = self.readiness("primary")
            if not primary.ready:
                self.warn(self._primary_error(primary))
                if not primary.retriable:
                    self.rollback()
                return
        if phase in ("", INITIALIZING):
            self.act("scale-to-zero")
            # setPhaseInitialized
            self.mem["phase"] = INITIALIZED
            self.sync_status(INITIALIZED)
            self.mem["lastAppliedSpec"] = self.server.get("lastAppliedSpec")
            self.mem["trackedConfigs"] = copy.deepcopy(self.server.get("trackedConfigs"))
            self.info(f"Initialization done! {self.who}")

        if not self.should_advance():
            return
        max_weight = self.max_weight()

        primary = READY if self.skip else self.readiness("primary")
        if not primary.ready:
            self.warn(self._primary_error(primary))
            if not primary.retriable:
                if self.phase in (PROMOTING, FINALISING):
                    self.handle_failed_promotion(self._primary_error(primary))
                else:
                    self.rollback()
            return

        routes = self.tick.routes
        primary_weight, canary_weight, mirrored = routes.primary, routes.canary, routes.mirrored

        if not self.check_canary_status():
            return

        if self.phase in (PROGRESSING, WAITING_PROMOTION) and self.target_changed():
            self.info(f"New revision detected! Restarting analysis for {self.target_who}")
            self.tick.routes = Routes(TOTAL_WEIGHT, 0, False)
            self.sync_status(PROGRESSING)
            return

        canary = self.readiness("canary")
        if not canary.ready:
            # no hook at all this tick (rollback included), only the warning's event webhooks
            self.warn(
                canary.message
                if not canary.wrapped
                else f"canary {self.kind.lower()} {self.target_who} not ready: "
                f"{self._readiness_text(canary, self.target_name)}"
            )
            if not canary.retriable:
                self.rollback()
            return

        if self.skip:
            self.skip_analysis()
            return

        if self.phase in (PROGRESSING, WAITING, WAITING_PROMOTION) and self.rollback_hooks():
            self.warn(f"Rolling back {self.who} manual webhook invoked")
            self.rollback()
            return

        if self.phase == PROMOTING:
            self.promotion_traffic_shift(canary_weight, primary_weight)
            return

        if self.phase == FINALISING:
            self.act("scale-to-zero")
            self.set_status_phase(SUCCEEDED)
            self.post_rollout(SUCCEEDED, event_phase=SUCCEEDED)
            self.info(f"Promotion completed! Scaling down {self.target_who}", phase=SUCCEEDED)
            return

        if self.phase in (PROGRESSING, WAITING_PROMOTION) and self._int(self.mem, "failedChecks") >= self.threshold:
            self.rollback()
            return

        if (
            canary_weight == 0
            and self._int(self.mem, "iterations") == 0
            and not (self.analysis.get("mirror") and mirrored)
        ):
            self.info(f"Starting canary analysis for {self.target_who}")
            if not self.pre_rollout():
                self._set_field("failedChecks", self._int(self.mem, "failedChecks") + 1)
                return
        elif not self.run_analysis():
            self._set_field("failedChecks", self._int(self.mem, "failedChecks") + 1)
            return

        if self.provider == "kubernetes":
            if self.analysis.get("match"):
                self.warn("A/B testing is not supported when using the kubernetes provider")
                self.analysis["match"] = None
            if self.iterations < 1:
                self.warn("Progressive traffic is not supported when using the kubernetes provider")
                self.warn("Setting canaryAnalysis.iterations: 10")
                self.analysis["iterations"] = 10

        if self.analysis.get("match") and self.iterations > 0:
            self.run_ab()
            return
        if self.iterations > 0:
            self.run_blue_green(mirrored)
            return

        if self.next_step_weight(canary_weight) > 0:
            gated = not mirrored and self.phase not in (PROMOTING, WAITING_PROMOTION, FINALISING)
            if gated and not self.confirm_traffic_increase():
                return
            self.run_canary(mirrored, canary_weight, primary_weight, max_weight)

    def _readiness_text(self, readiness: Readiness, workload: str) -> str:
        if not readiness.message and not readiness.retriable:
            return f'deployment "{workload}" exceeded its progress deadline'
        return readiness.message

    def readiness(self, which: str) -> Readiness:
        """``IsPrimaryReady``/``IsCanaryReady``, read now."""
        assert self.target is not None
        if self.read_readiness is not None:
            return self.read_readiness(which)
        return self.target.primary if which == "primary" else self.target.canary

    def _primary_error(self, readiness: Readiness) -> str:
        if not readiness.wrapped:
            return readiness.message
        return f"{self.primary_name}.{self.namespace} not ready: {self._readiness_text(readiness, self.primary_name)}"

    def target_changed(self) -> bool:
        """``HasTargetChanged`` or ``HaveDependenciesChanged`` against the tick's Canary."""
        assert self.target is not None
        last_applied = self.mem.get("lastAppliedSpec") or ""
        new_hash = self.target.template_hash
        if not last_applied:
            return True
        if self.mem.get("lastPromotedSpec") != new_hash and last_applied != new_hash:
            return True
        configs = dict(self.target.tracked_configs)
        tracked = self.mem.get("trackedConfigs")
        if not configs and tracked is None:
            return False
        if configs and tracked is None:
            return True
        return configs != dict(tracked)

    def should_advance(self) -> bool:
        if self.phase in (PROGRESSING, WAITING, WAITING_PROMOTION, PROMOTING, FINALISING):
            return True
        if self.phase == FAILED:
            # NB: Flagger re-syncs a Failed canary's status every tick (refreshes lastAppliedSpec)
            self.sync_status(
                FAILED,
                canary_weight=self._int(self.mem, "canaryWeight"),
                failed_checks=self._int(self.mem, "failedChecks"),
                iterations=self._int(self.mem, "iterations"),
            )
        return self.target_changed()

    def check_canary_status(self) -> bool:
        if self.phase in (PROGRESSING, WAITING_PROMOTION, PROMOTING, FINALISING):
            return True
        self.mem = copy.deepcopy(self.server)  # Flagger re-fetches the canary here
        if not self.confirm_rollout():
            return False
        self.info(f"New revision detected! Scaling up {self.target_who}", phase=PROGRESSING)
        self.act("scale-from-zero")
        self.sync_status(PROGRESSING)
        return False

    def skip_analysis(self) -> None:
        self.tick.routes = Routes(TOTAL_WEIGHT, 0, False)
        self.info(f"Copying {self.target_who} template spec to {self.primary_name}.{self.namespace}")
        self.act("promote", "scale-to-zero")
        self.set_status_phase(SUCCEEDED)
        self.post_rollout(SUCCEEDED, event_phase=SUCCEEDED)
        self.info(f"Promotion completed! Canary analysis was skipped for {self.target_who}", phase=SUCCEEDED)

    def run_analysis(self) -> bool:
        for hook in self._hooks_of("rollout"):
            result = self.call(hook, PROGRESSING)
            if not result.ok:
                self.warn(f"Halt {self.who} advancement external check {hook.get('name')} failed {result.error}")
                return False
        failure = self.metrics(self.canary)
        if failure is not None:
            self.event(failure.type, failure.message)
            return False
        return True

    def promote(self) -> None:
        self.info(f"Copying {self.target_who} template spec to {self.primary_name}.{self.namespace}")
        self.act("promote")
        self.set_status_phase(PROMOTING)

    def run_canary(self, mirrored: bool, canary_weight: int, primary_weight: int, max_weight: int) -> None:
        if canary_weight < max_weight:
            step = self.next_step_weight(canary_weight)
            if self.analysis.get("mirror") and canary_weight == 0:
                if not mirrored:
                    mirrored, primary_weight, canary_weight = True, TOTAL_WEIGHT, 0
                else:
                    mirrored = False
                    primary_weight, canary_weight = TOTAL_WEIGHT - step, step
            else:
                primary_weight = max(0, primary_weight - step)
                canary_weight = min(TOTAL_WEIGHT, canary_weight + step)
            self.tick.routes = Routes(primary_weight, canary_weight, mirrored)
            self._set_field("canaryWeight", canary_weight)
            self.info(f"Advance {self.who} canary weight {canary_weight}")
            return
        if not self.confirm_promotion():
            return
        self.promote()

    def run_ab(self) -> None:
        done = self._int(self.mem, "iterations")
        if self.iterations > done:
            self.tick.routes = Routes(0, TOTAL_WEIGHT, False)
            self._set_field("iterations", done + 1)
            self.info(f"Advance {self.who} canary iteration {done + 1}/{self.iterations}")
            return
        if not self.confirm_promotion():
            return
        if self.iterations == done:
            self.promote()

    def run_blue_green(self, mirrored: bool) -> None:
        done = self._int(self.mem, "iterations")
        if self.iterations > done:
            if self.provider != "kubernetes" and self.analysis.get("mirror") and not mirrored:
                self.tick.routes = Routes(TOTAL_WEIGHT, 0, True)
            self._set_field("iterations", done + 1)
            self.info(f"Advance {self.who} canary iteration {done + 1}/{self.iterations}")
            return
        if not self.confirm_promotion():
            return
        if self.iterations == done:
            if self.provider != "kubernetes":
                if self.analysis.get("mirror"):
                    self.info("Stop traffic mirroring and route all traffic to canary")
                else:
                    self.info("Routing all traffic to canary")
                self.tick.routes = Routes(0, TOTAL_WEIGHT, False)
            self._set_field("iterations", done + 1)
            return
        if self.iterations < done:
            self.promote()

    def promotion_traffic_shift(self, canary_weight: int, primary_weight: int) -> None:
        if self.provider == "kubernetes":
            self.set_status_phase(FINALISING)
            return
        step = int((self.spec.get("analysis") or {}).get("stepWeightPromotion") or 0)
        if step == 0:
            self.info("Routing all traffic to primary")
            self.tick.routes = Routes(TOTAL_WEIGHT, 0, False)
            self.set_status_phase(FINALISING)
            return
        if canary_weight > 0:
            primary_weight = min(TOTAL_WEIGHT, primary_weight + step)
            canary_weight = max(0, canary_weight - step)
            self.tick.routes = Routes(primary_weight, canary_weight, False)
            self.info(f"Advance {self.who} primary weight {primary_weight}")
            if primary_weight == TOTAL_WEIGHT:
                self.set_status_phase(FINALISING)
            else:
                self._set_field("canaryWeight", canary_weight)

    def rollback(self) -> None:
        if self._int(self.mem, "failedChecks") >= self.threshold:
            self.warn(f"Rolling back {self.who} failed checks threshold reached {self._int(self.mem, 'failedChecks')}")
        self.tick.routes = Routes(TOTAL_WEIGHT, 0, False)
        self.warn(f"Canary failed! Scaling down {self.who}", phase=FAILED)
        self.act("scale-to-zero")
        self.sync_status(FAILED)
        self.post_rollout(FAILED)

    def handle_failed_promotion(self, error: str) -> None:
        self.warn(f"Promotion of {self.target_who} failed, primary not ready: {error}")
        self.tick.routes = Routes(0, TOTAL_WEIGHT, False)
        self.sync_status(FAILED, canary_weight=TOTAL_WEIGHT)
        self.post_rollout(FAILED)


__all__ = [
    "READY",
    "Call",
    "Event",
    "MetricFailure",
    "Readiness",
    "Routes",
    "Target",
    "Tick",
    "advance",
    "analysis_interval",
    "analysis_of",
    "initializing_status",
    "promoted_condition",
    "rfc3339",
    "simulated_metrics",
]
