"""What each hook's answer does in Flagger v1.44: the one table the sidecar, the CLI and the docs follow.

Read from Flagger's source (tag v1.44.0). ``callWebhook`` (pkg/controller/webhook.go) counts 200-202 as
success and every other outcome as an error: 403, 503 and a timeout or refused connection all come
back as the same ``err``; 503 and transport errors are only retried first (``retries``, backoff).
What the error means is decided by the caller, per hook type (pkg/controller/scheduler_hooks.go and
scheduler.go):

* ``runConfirmRolloutHooks`` (from ``checkCanaryStatus``): error -> phase Waiting, the canary stays at
  zero replicas; success -> ``ScaleFromZero`` and Progressing.
* ``runPreRolloutHooks`` (``advanceCanary``, every tick while canaryWeight and iterations are 0):
  error -> ``SetStatusFailedChecks(+1)``.
* ``runAnalysis`` (``advanceCanary``, every later tick, Progressing and WaitingPromotion): a rollout
  hook's error -> ``SetStatusFailedChecks(+1)``. At ``failedChecks >= threshold`` ``advanceCanary``
  calls ``rollback`` on the next tick.
* ``runConfirmTrafficIncreaseHooks``: error -> no weight step this tick (the checks keep running).
* ``runConfirmPromotionHooks`` (``runCanary``, ``runAB``, ``runBlueGreen``): error -> WaitingPromotion,
  no promotion. Blue/green asks it on two consecutive ticks: the first routes all traffic to the
  canary, the second promotes.
* ``runPostRolloutHooks``: error -> a Warning event only.
* ``runRollbackHooks`` (Progressing, Waiting, WaitingPromotion): success -> ``rollback``; error -> none.

What the step after a passed check is depends on the strategy (``Canary.DeploymentStrategy``,
pkg/apis/flagger/v1beta1/canary.go: A/B with ``match`` and ``iterations``, blue/green with
``iterations`` only, else canary), and decides whether a confirm gate holds it (:func:`holds_next_step`):

* canary (``runCanary``): every weight step asks confirm-traffic-increase first and promotion asks
  confirm-promotion; except with ``analysis.mirror``: the tick after the mirror step skips
  confirm-traffic-increase ("run hook only if traffic is not mirrored") and shifts the first weight.
* A/B (``runAB``): no confirm-traffic-increase at all. The first iteration, on the tick pre-rollout
  passes (weight and iterations 0), routes the matched traffic to the canary; the later ones only count
  (``SetRoutes`` to the same routes, ``iterations + 1``); promotion asks confirm-promotion.
* blue/green (``runBlueGreen``): iterations only count, the canary gets no traffic, except that with
  ``analysis.mirror`` the first one starts mirroring; then confirm-promotion twice (all traffic to the
  canary, then promotion).

So an iteration that advances while the state is unknown raises no traffic, promotes nothing and rolls
nothing back (no failed check), except A/B's first iteration and a mirror's start or end: those follow
pre-rollout (A/B, blue/green with mirror) or rollout (canary with mirror) with no confirm gate between,
and there the check answers 503 during an outage (a failed check, as for a Canary without our hooks).

No hook at all is called while the primary or the canary is not ready (``IsPrimaryReady`` and
``IsCanaryReady`` return before, pkg/canary/deployment_ready.go); a canary stuck past its progress
deadline is rolled back by ``advanceCanary`` without any hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from canarygate import gates

GO_ON = "go on"
WAIT = "wait"
FAILED_CHECK = "failed check"
ROLL_BACK = "roll back"
NOTHING = "nothing"

#: The answers the table has a column for: what the sidecar sends, and what it may fail to send.
ANSWERS = ("200-202", "403", "503", "timeout")


@dataclass(frozen=True)
class HookRule:
    """What Flagger does with one hook's answer."""

    hook: str
    on_success: str  # GO_ON, ROLL_BACK or NOTHING
    on_failure: str  # WAIT, FAILED_CHECK or NOTHING: any answer but 200-202 (403, 503, timeout)
    when: str  # when Flagger calls it
    success_text: str
    failure_text: str
    source: str  # the Flagger functions this is read from

    def effect(self, answer: str) -> str:
        """The effect of ``answer`` (one of :data:`ANSWERS`, or an HTTP status as text)."""
        return self.on_success if answer in ("200-202", "200", "201", "202") else self.on_failure

    @property
    def is_check(self) -> bool:
        """A failed answer counts as a failed check: closing this gate leads to a rollback."""
        return self.on_failure == FAILED_CHECK


RULES: dict[str, HookRule] = {
    rule.hook: rule
    for rule in (
        HookRule(
            gates.CONFIRM_ROLLOUT,
            GO_ON,
            WAIT,
            "every tick while a new revision is Waiting",
            "the rollout starts: the canary is scaled up (Progressing)",
            "wait in Waiting; the canary stays at zero replicas",
            "checkCanaryStatus, runConfirmRolloutHooks",
        ),
        HookRule(
            gates.PRE_ROLLOUT,
            GO_ON,
            FAILED_CHECK,
            "every tick while the canary's weight and iterations are 0",
            "go on to the first traffic step",
            "failedChecks + 1; at the threshold Flagger rolls back",
            "advanceCanary, runPreRolloutHooks",
        ),
        HookRule(
            gates.ROLLOUT,
            GO_ON,
            FAILED_CHECK,
            "every later tick of the analysis, WaitingPromotion included",
            "the check passes (metrics are checked next)",
            "failedChecks + 1; at the threshold Flagger rolls back",
            "advanceCanary, runAnalysis",
        ),
        HookRule(
            gates.CONFIRM_TRAFFIC_INCREASE,
            GO_ON,
            WAIT,
            "before each traffic step, once the checks passed",
            "the next traffic step",
            "wait at this weight; the checks keep running",
            "advanceCanary, runConfirmTrafficIncreaseHooks",
        ),
        HookRule(
            gates.CONFIRM_PROMOTION,
            GO_ON,
            WAIT,
            "at max weight (canary), after the iterations (A/B, blue/green: two consecutive ticks)",
            "promotion (blue/green: all traffic to the canary, then promotion on the next tick)",
            "wait in WaitingPromotion; the checks keep running",
            "runCanary, runAB, runBlueGreen, runConfirmPromotionHooks",
        ),
        HookRule(
            gates.POST_ROLLOUT,
            NOTHING,
            NOTHING,
            "once, after promotion or rollback",
            "reported",
            "a Warning event; the release is already done",
            "runPostRolloutHooks",
        ),
        HookRule(
            gates.ROLLBACK,
            ROLL_BACK,
            NOTHING,
            "every tick in Progressing, Waiting and WaitingPromotion, once canary and primary are ready",
            "roll back now",
            "no rollback",
            "advanceCanary, runRollbackHooks",
        ),
    )
}

#: Gates whose failed answer is a failed check (closing one rolls the release back at the threshold).
CHECK_GATES = tuple(g for g in gates.GATES if RULES[g].is_check)
#: Gates whose failed answer holds the next step without failing anything: what ``pause`` closes.
PAUSE_GATES = (gates.CONFIRM_TRAFFIC_INCREASE, gates.CONFIRM_PROMOTION)

READINESS_NOTE = (
    "Flagger calls no hook (rollback included) while the primary or the canary Deployment is not ready "
    "(IsPrimaryReady, IsCanaryReady in pkg/canary/deployment_ready.go); a canary still not ready after "
    "its progress deadline is rolled back without any hook."
)
RETRY_NOTE = (
    "403, 503 and a timeout are the same error to Flagger (callWebhook: anything but 200-202); "
    "503 and timeouts are retried first, as many times as the webhook's retries."
)

#: The outage rule (README "How a gate decides"): what the sidecar answers when it cannot know a state.
OUTAGE_RULE = (
    "When the sidecar cannot know a gate's state (cache not synced, API server unreachable or silent, "
    "an unreadable live annotation), confirm-rollout, confirm-traffic-increase and confirm-promotion "
    "answer 503 (wait), rollback answers 503 (no rollback) and post-rollout 503 (only reported). "
    "rollout and pre-rollout answer 200 when the Canary's confirm-traffic-increase and confirm-promotion "
    "hooks both call this sidecar for this CanaryGate and its strategy asks one of them before the step "
    "that follows the check, so the check does not fail and the confirm gates, answering 503 while the "
    "state is unknown, hold that step; A/B and blue/green iterations that follow only count (no traffic "
    "change, no promotion). Otherwise nothing of ours guards the next step (a hand-written Canary; A/B's "
    "pre-rollout, after which the first iteration routes the matched traffic to the canary; blue/green's "
    "pre-rollout with mirror, after which mirroring starts; a mirroring canary's rollout, after which the "
    "first weight step skips confirm-traffic-increase) "
    "and they answer 503 (a failed check), so an unknown state never raises traffic: an outage then costs "
    "one failed check per interval, and a rollback only if it outlasts the threshold."
)


def sidecar_answers(hook: str) -> str:
    """What the sidecar answers ``hook``, for each effective state, in words."""
    if hook == gates.ROLLBACK:
        return "opened 200 (roll back now), closed 403, unknown 503 (no rollback)"
    unknown = (
        "unknown 200 when our confirm gates guard the next step, else 503" if RULES[hook].is_check else "unknown 503"
    )
    return f"opened 200, closed 403, {unknown}"


def table_rows(gate: str | None = None) -> list[list[str]]:
    """The table's rows (hook, one effect per answer, what that means), for one gate or all."""
    names = [gate] if gate else list(gates.GATES)
    rows = []
    for name in names:
        rule = RULES[name]
        rows.append([name, *(rule.effect(answer) for answer in ANSWERS)])
    return rows


def markdown_table() -> str:
    """The README's table (the README embeds exactly this text; a test checks they agree)."""
    lines = [
        "| hook | called | 200-202 | 403 | 503 | timeout | in Flagger v1.44 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in gates.GATES:
        rule = RULES[name]
        effects = " | ".join(rule.effect(answer) for answer in ANSWERS)
        lines.append(f"| `{name}` | {rule.when} | {effects} | `{rule.source.replace(', ', '`, `')}` |")
    return "\n".join(lines)


def guarded(covered: dict[str, bool] | None) -> bool:
    """True when the Canary sends both pause gates to us: they guard the step after a check."""
    return bool(covered) and all((covered or {}).get(g, False) for g in PAUSE_GATES)


def strategy(analysis: Mapping[str, Any]) -> str:
    """Flagger's ``DeploymentStrategy``: ``ab-testing`` (``match`` and ``iterations``), ``blue-green``
    (``iterations``) or ``canary``."""
    try:
        iterations = int(analysis.get("iterations") or 0)
    except (TypeError, ValueError):
        iterations = 0
    if iterations > 0:
        return "ab-testing" if analysis.get("match") else "blue-green"
    return "canary"


def holds_next_step(hook: str, analysis: Mapping[str, Any]) -> bool:
    """Whether, once the check ``hook`` passes, Flagger asks a confirm gate before it changes traffic
    or promotes (see the strategies above): what lets a check pass while the state is unknown."""
    mirror = bool(analysis.get("mirror"))
    kind = strategy(analysis)
    if kind == "ab-testing":
        return hook != gates.PRE_ROLLOUT  # runAB's first iteration routes the matched traffic
    if kind == "blue-green":
        return not (mirror and hook == gates.PRE_ROLLOUT)  # runBlueGreen's first iteration starts mirroring
    # runCanary: on the tick after the mirror step (rollout hooks, weight 0) the first weight step asks no
    # confirm gate; the cache cannot tell that tick from the others reliably during an outage.
    return not (mirror and hook == gates.ROLLOUT)


def unknown_status(hook: str, *, guarded_by_us: bool) -> int:
    """What the sidecar answers ``hook`` while its state is unknown (see :data:`OUTAGE_RULE`)."""
    if RULES[hook].is_check and guarded_by_us:
        return 200
    return 503
