"""The tick's checks: which of a Canary's webhooks run when, and how their answers count.

Flagger v1.44.0 ``pkg/controller/scheduler_hooks.go`` (and ``runAnalysis`` of
``scheduler.go``); the HTTP call itself is :mod:`sandbox.flagger.webhooks`. Each function runs
the Canary's hooks of one type in spec order, stops at the first that says no, and returns
whether the tick may go on. The payload phase is the one Flagger sends (``Progressing`` for
most, the Canary's own phase for confirm-rollout and rollback). The events recorded are
Flagger's, word for word. Where each is called: :mod:`sandbox.flagger.tick` and
:mod:`sandbox.flagger.strategies`.
"""

from __future__ import annotations

from sandbox.flagger.context import TickContext
from sandbox.flagger.status import PROGRESSING, WAITING, WAITING_PROMOTION


def confirm_traffic_increase(ctx: TickContext) -> bool:
    """Before each canary weight step (not while mirroring): a no halts the step."""
    for hook in ctx.hooks_of("confirm-traffic-increase"):
        if not ctx.call(hook, PROGRESSING).ok:
            ctx.warn(f"Halt {ctx.who} advancement waiting for traffic increase approval {hook.get('name')}")
            return False
        ctx.info(f"Confirm-traffic-increase check {hook.get('name')} passed")
    return True


def confirm_rollout(ctx: TickContext) -> bool:
    """Before a new revision starts: a no sets (and keeps) ``Waiting``; warned once, on entry."""
    for hook in ctx.hooks_of("confirm-rollout"):
        if not ctx.call(hook, ctx.phase).ok:
            if ctx.phase != WAITING:
                ctx.set_status_phase(WAITING)
                ctx.warn(f"Halt {ctx.who} advancement waiting for approval {hook.get('name')}")
            return False
        ctx.info(f"Confirm-rollout check {hook.get('name')} passed")
    return True


def confirm_promotion(ctx: TickContext) -> bool:
    """Before promotion: a no sets ``WaitingPromotion`` (then keeps iterations at
    ``analysis.iterations - 1`` each tick it stays closed)."""
    for hook in ctx.hooks_of("confirm-promotion"):
        if not ctx.call(hook, PROGRESSING).ok:
            if ctx.phase != WAITING_PROMOTION:
                ctx.set_status_phase(WAITING_PROMOTION)
                ctx.warn(f"Halt {ctx.who} advancement waiting for promotion approval {hook.get('name')}")
            else:
                ctx.set_field("iterations", ctx.iterations - 1)
            return False
        ctx.info(f"Confirm-promotion check {hook.get('name')} passed")
    return True


def pre_rollout(ctx: TickContext) -> bool:
    """At the start of the analysis: a no is a failed check (the caller counts it)."""
    return _all_pass(ctx, "pre-rollout", "pre-rollout check", passed="Pre-rollout check")


def post_rollout(ctx: TickContext, phase: str, *, event_phase: str | None = None) -> bool:
    """After promotion or rollback, with the final phase: a no is only warned of."""
    obj = ctx.canary_as(event_phase)
    for hook in ctx.hooks_of("post-rollout"):
        result = ctx.call(hook, phase, obj)
        if not result.ok:
            ctx.warn(f"Post-rollout hook {hook.get('name')} failed {result.error}", phase=event_phase)
            return False
        ctx.info(f"Post-rollout check {hook.get('name')} passed", phase=event_phase)
    return True


def rollback_requested(ctx: TickContext) -> bool:
    """The rollback hooks, inverted: a *yes* (2xx) asks for a rollback, a no lets the tick go on."""
    for hook in ctx.hooks_of("rollback"):
        if not ctx.call(hook, ctx.phase).ok:
            ctx.info(f"Rollback hook {hook.get('name')} not signaling a rollback")
        else:
            ctx.warn(f"Rollback check {hook.get('name')} passed")
            return True
    return False


def run_analysis(ctx: TickContext) -> bool:
    """``runAnalysis``: the rollout webhooks, then the metric checks; a failure is a failed check."""
    if not _all_pass(ctx, "rollout", "external check"):
        return False
    failure = ctx.io.metrics(ctx.canary)
    if failure is not None:
        ctx.event(failure.type, failure.message)
        return False
    return True


def _all_pass(ctx: TickContext, hook_type: str, halt_as: str, *, passed: str = "") -> bool:
    """The hooks of ``hook_type``, phase ``Progressing``, until one fails: then the warning
    "Halt <canary> advancement <halt_as> <hook> failed <error>". ``passed`` names the check in
    the event recorded after each hook that passed (none when empty)."""
    for hook in ctx.hooks_of(hook_type):
        result = ctx.call(hook, PROGRESSING)
        if not result.ok:
            ctx.warn(f"Halt {ctx.who} advancement {halt_as} {hook.get('name')} failed {result.error}")
            return False
        if passed:
            ctx.info(f"{passed} {hook.get('name')} passed")
    return True
