"""The CanaryGate and the parts of a Flagger Canary the gates depend on, parsed from raw dicts.

Parsing is lenient where Kubernetes already validated (the CRD schema) and strict where a wrong
value would open a gate by mistake: an unknown declared state raises :class:`InvalidGate`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canarygate import errors, gates
from canarygate.annotations import LiveChange, parse_live_changes

GROUP = "piggysec.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "CanaryGate"

#: Canary phases in which a rollout is under way (docs/flagger-contract.md#status-fields).
#: Initializing is not a rollout.
ACTIVE_PHASES = frozenset({"Waiting", "Progressing", "WaitingPromotion", "Promoting", "Finalising"})
#: Phases that end a rollout.
END_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class Target:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class CanaryGate:
    """One CanaryGate: declared states (spec), live changes (annotations) and the Canary it drives."""

    name: str
    namespace: str
    target: Target
    declared: Mapping[str, str]
    live: Mapping[str, LiveChange]
    flagger: Mapping[str, Any]
    resource_version: str = ""
    uid: str = ""
    generation: int = 0
    annotations: Mapping[str, str] = field(default_factory=dict)
    status: Mapping[str, Any] = field(default_factory=dict)
    #: Gates whose live-state annotation cannot be read (gate -> what is wrong): their state is unknown.
    invalid: Mapping[str, str] = field(default_factory=dict)
    #: Every live-state annotation that could not be used, as messages for people.
    problems: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PromotedCondition:
    status: str  # True, False or Unknown
    reason: str  # the phase that set it
    last_transition_time: str


@dataclass(frozen=True)
class Canary:
    """The Flagger Canary fields the gates read (status and analysis: docs/flagger-contract.md#status-fields)."""

    name: str
    namespace: str
    phase: str = ""
    canary_weight: int = 0
    failed_checks: int = 0
    iterations: int = 0
    last_applied_spec: str = ""
    tracked_configs: Mapping[str, str] = field(default_factory=dict)
    last_promoted_spec: str = ""
    last_transition_time: str = ""
    promoted: PromotedCondition | None = None
    max_weight: int = 100
    step_weight: int = 0
    step_weights: tuple[int, ...] = ()
    threshold: int = 1
    interval: str = ""
    webhooks: tuple[Mapping[str, Any], ...] = ()
    suspended: bool = False
    skip_analysis: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def active(self) -> bool:
        """True while a rollout is under way (Waiting through Finalising)."""
        return self.phase in ACTIVE_PHASES

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_canarygate(raw: Mapping[str, Any]) -> CanaryGate:
    """Build a :class:`CanaryGate` from the API object; raise InvalidGate for a state we cannot read."""
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    declared = {}
    for gate in gates.GATES:
        if gate in spec and spec[gate] is not None:
            try:
                declared[gate] = gates.normalize_state(str(spec[gate]))
            except ValueError as e:
                raise errors.InvalidGate(f"CanaryGate {namespace}/{name}: spec.{gate}: {e}") from None
    target_raw = spec.get("target") or {}
    target = Target(
        namespace=target_raw.get("namespace") or namespace,
        name=target_raw.get("name") or name,
    )
    annotations = dict(meta.get("annotations") or {})
    live, invalid, problems = parse_live_changes(annotations)
    return CanaryGate(
        name=name,
        namespace=namespace,
        target=target,
        declared=declared,
        live=live,
        flagger=spec.get("flagger") or {},
        resource_version=meta.get("resourceVersion", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        annotations=annotations,
        status=raw.get("status") or {},
        invalid=invalid,
        problems=tuple(problems),
        raw=raw,
    )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_canary(raw: Mapping[str, Any]) -> Canary:
    """Build a :class:`Canary` view from a Flagger Canary object (missing fields take Flagger's defaults)."""
    meta = raw.get("metadata") or {}
    spec = raw.get("spec") or {}
    status = raw.get("status") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    step_weights = tuple(_int(w, 0) for w in analysis.get("stepWeights") or ())
    max_weight = _int(analysis.get("maxWeight"), 0)
    if step_weights:  # NB: Flagger caps maxWeight at the last step weight (docs/flagger-contract.md#status-fields).
        max_weight = min(100, step_weights[-1])
    elif max_weight <= 0:
        max_weight = 100
    promoted = None
    for cond in status.get("conditions") or ():
        if cond.get("type") == "Promoted":
            promoted = PromotedCondition(
                status=cond.get("status", ""),
                reason=cond.get("reason", ""),
                last_transition_time=cond.get("lastTransitionTime", ""),
            )
    threshold = _int(analysis.get("threshold"), 1)
    return Canary(
        name=meta.get("name", ""),
        namespace=meta.get("namespace", ""),
        phase=status.get("phase", "") or "",
        canary_weight=_int(status.get("canaryWeight"), 0),
        failed_checks=_int(status.get("failedChecks"), 0),
        iterations=_int(status.get("iterations"), 0),
        last_applied_spec=status.get("lastAppliedSpec", "") or "",
        tracked_configs=dict(status.get("trackedConfigs") or {}),
        last_promoted_spec=status.get("lastPromotedSpec", "") or "",
        last_transition_time=status.get("lastTransitionTime", "") or "",
        promoted=promoted,
        max_weight=max_weight,
        step_weight=_int(analysis.get("stepWeight"), 0),
        step_weights=step_weights,
        threshold=threshold if threshold > 0 else 1,
        interval=str(analysis.get("interval", "") or ""),
        webhooks=tuple(analysis.get("webhooks") or ()),
        suspended=bool(spec.get("suspend")),
        skip_analysis=bool(spec.get("skipAnalysis")),
        raw=raw,
    )
