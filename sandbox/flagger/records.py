"""What one tick reads and what it returns: the target workload, the routes, the events, the
webhook calls and the :class:`Tick` itself (``docs/flagger-contract.md#one-tick``).

Plain values, so that the controller, the tests and the real-Flagger tier
(:mod:`sandbox.cluster.flagger`) can speak of a tick without running one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.flagger.readiness import READY, Readiness
from sandbox.flagger.webhooks import HookResult

NORMAL = "Normal"
WARNING = "Warning"
#: Flagger records every event with this reason.
REASON = "Synced"
TOTAL_WEIGHT = 100

#: ``hooks(webhook, payload)``: calls one webhook of the Canary (:mod:`sandbox.flagger.webhooks`).
HookCaller = Callable[[Mapping[str, Any], Mapping[str, Any]], HookResult]
#: ``readiness("primary" | "canary")``: the workload's readiness, read when Flagger reads it.
ReadinessReader = Callable[[str], Readiness]


@dataclass(frozen=True)
class TargetWorkload:
    """The Canary's target workload as the controller read it for this tick: its pod template's
    hash (``lastAppliedSpec``), its tracked configs, and the readiness used without a reader."""

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


#: All traffic to the primary (a Canary at rest, after a rollback or a new revision).
PRIMARY_ONLY = Routes()
#: All traffic to the canary (A/B iterations, the end of blue/green, a failed promotion).
CANARY_ONLY = Routes(0, TOTAL_WEIGHT, False)


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
    """One tick's outcome: the status the API holds after it, and all it did, in order."""

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
