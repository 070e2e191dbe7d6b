"""The deployment strategies' step rules: canary (weights, mirroring first), blue/green
(iterations, mirrored or not), A/B testing (iterations with all matched traffic to the canary),
and the promotion's traffic shift back to the primary.

Flagger v1.44.0 ``pkg/controller/scheduler.go`` (``runCanary``, ``runBlueGreen``, ``runAB``,
``runPromotionTrafficShift``) with the step weights of ``pkg/apis/flagger/v1beta1/canary.go``.
:func:`advance_traffic` is the strategy choice at the end of ``advanceCanary``, reached only when
the tick's checks passed (:mod:`sandbox.flagger.tick`). Routes are the simulator's
:class:`sandbox.flagger.records.Routes`; each step writes them to ``ctx.tick.routes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.flagger import checks
from sandbox.flagger.context import TickContext, int_field
from sandbox.flagger.records import CANARY_ONLY, PRIMARY_ONLY, TOTAL_WEIGHT, Routes
from sandbox.flagger.status import FINALISING, PROMOTING, WAITING_PROMOTION

KUBERNETES = "kubernetes"


def max_weight(analysis: Mapping[str, Any]) -> int:
    """``GetMaxWeight``: the last of ``stepWeights``, else ``maxWeight``, else 100."""
    steps = analysis.get("stepWeights") or []
    if steps:
        return min(TOTAL_WEIGHT, int(steps[-1]))
    if int_field(analysis, "maxWeight") > 0:
        return int_field(analysis, "maxWeight")
    return TOTAL_WEIGHT


def next_step_weight(analysis: Mapping[str, Any], canary_weight: int) -> int:
    """``GetStepWeight``/``GetStepWeights``: how much the canary's weight grows next (0: no
    weight steps, so not a canary strategy)."""
    steps = [int(s) for s in analysis.get("stepWeights") or []]
    step = int_field(analysis, "stepWeight")
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


def advance_traffic(ctx: TickContext, routes: Routes) -> None:
    """Pick the strategy and take its step: A/B when ``match`` and ``iterations`` are set,
    blue/green when ``iterations`` is, else canary when there is a weight step. The
    ``kubernetes`` provider (no mesh) forces blue/green with 10 iterations, for this tick."""
    if ctx.provider == KUBERNETES:
        if ctx.analysis.get("match"):
            ctx.warn("A/B testing is not supported when using the kubernetes provider")
            ctx.analysis["match"] = None
        if ctx.iterations < 1:
            ctx.warn("Progressive traffic is not supported when using the kubernetes provider")
            ctx.warn("Setting canaryAnalysis.iterations: 10")
            ctx.analysis["iterations"] = 10

    if ctx.analysis.get("match") and ctx.iterations > 0:
        run_ab(ctx)
        return
    if ctx.iterations > 0:
        run_blue_green(ctx, routes.mirrored)
        return

    if next_step_weight(ctx.analysis, routes.canary) > 0:
        gated = not routes.mirrored and ctx.phase not in (PROMOTING, WAITING_PROMOTION, FINALISING)
        if gated and not checks.confirm_traffic_increase(ctx):
            return
        run_canary(ctx, routes)


def promote(ctx: TickContext) -> None:
    """Copy the canary's template into the primary and enter ``Promoting``."""
    ctx.info(f"Copying {ctx.target_who} template spec to {ctx.primary_name}.{ctx.namespace}")
    ctx.act("promote")
    ctx.set_status_phase(PROMOTING)


def run_canary(ctx: TickContext, routes: Routes) -> None:
    """``runCanary``: one weight step up to the max weight (with ``mirror``, a mirrored tick at
    weight 0 first), then promotion once confirm-promotion agrees."""
    primary_weight, canary_weight, mirrored = routes.primary, routes.canary, routes.mirrored
    if canary_weight < max_weight(ctx.analysis):
        step = next_step_weight(ctx.analysis, canary_weight)
        if ctx.analysis.get("mirror") and canary_weight == 0:
            if not mirrored:
                mirrored, primary_weight, canary_weight = True, TOTAL_WEIGHT, 0
            else:
                mirrored = False
                primary_weight, canary_weight = TOTAL_WEIGHT - step, step
        else:
            primary_weight = max(0, primary_weight - step)
            canary_weight = min(TOTAL_WEIGHT, canary_weight + step)
        ctx.tick.routes = Routes(primary_weight, canary_weight, mirrored)
        ctx.set_field("canaryWeight", canary_weight)
        ctx.info(f"Advance {ctx.who} canary weight {canary_weight}")
        return
    if not checks.confirm_promotion(ctx):
        return
    promote(ctx)


def run_ab(ctx: TickContext) -> None:
    """``runAB``: all (matched) traffic to the canary for ``iterations`` ticks, then promotion."""
    done = ctx.counter("iterations")
    if ctx.iterations > done:
        ctx.tick.routes = CANARY_ONLY
        _count_iteration(ctx, done)
        return
    if not checks.confirm_promotion(ctx):
        return
    if ctx.iterations == done:
        promote(ctx)


def run_blue_green(ctx: TickContext, mirrored: bool) -> None:
    """``runBlueGreen``: ``iterations`` ticks (traffic mirrored with ``mirror``), one more tick
    with all traffic on the canary, then promotion."""
    done = ctx.counter("iterations")
    if ctx.iterations > done:
        if ctx.provider != KUBERNETES and ctx.analysis.get("mirror") and not mirrored:
            ctx.tick.routes = Routes(TOTAL_WEIGHT, 0, True)
        _count_iteration(ctx, done)
        return
    if not checks.confirm_promotion(ctx):
        return
    if ctx.iterations == done:
        if ctx.provider != KUBERNETES:
            if ctx.analysis.get("mirror"):
                ctx.info("Stop traffic mirroring and route all traffic to canary")
            else:
                ctx.info("Routing all traffic to canary")
            ctx.tick.routes = CANARY_ONLY
        ctx.set_field("iterations", done + 1)
        return
    if ctx.iterations < done:
        promote(ctx)


def _count_iteration(ctx: TickContext, done: int) -> None:
    """One more analysis iteration of A/B or blue/green, written and announced."""
    ctx.set_field("iterations", done + 1)
    ctx.info(f"Advance {ctx.who} canary iteration {done + 1}/{ctx.iterations}")


def promotion_traffic_shift(ctx: TickContext, routes: Routes) -> None:
    """``runPromotionTrafficShift``: back to the primary at once, or by
    ``stepWeightPromotion`` a tick; ``Finalising`` once it holds all traffic."""
    if ctx.provider == KUBERNETES:
        ctx.set_status_phase(FINALISING)
        return
    step = int((ctx.spec.get("analysis") or {}).get("stepWeightPromotion") or 0)
    if step == 0:
        ctx.info("Routing all traffic to primary")
        ctx.tick.routes = PRIMARY_ONLY
        ctx.set_status_phase(FINALISING)
        return
    primary_weight, canary_weight = routes.primary, routes.canary
    if canary_weight > 0:
        primary_weight = min(TOTAL_WEIGHT, primary_weight + step)
        canary_weight = max(0, canary_weight - step)
        ctx.tick.routes = Routes(primary_weight, canary_weight, False)
        ctx.info(f"Advance {ctx.who} primary weight {primary_weight}")
        if primary_weight == TOTAL_WEIGHT:
            ctx.set_status_phase(FINALISING)
        else:
            ctx.set_field("canaryWeight", canary_weight)
