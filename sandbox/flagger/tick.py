"""One tick of Flagger's scheduler, as a pure function (``docs/flagger-contract.md#one-tick``).

:func:`advance` is Flagger's ``advanceCanary`` (``pkg/controller/scheduler.go``, v1.44.0)
re-told in Python: given a Canary object (the API's JSON), what the simulator knows of its
target, the current traffic routes and a webhook caller, it runs one tick and returns a
:class:`sandbox.flagger.records.Tick`: the status as the API would hold it afterwards, every
status write in order, the Kubernetes events Flagger would record (with the phase and checksum
its event payload carries), every webhook call made (in order, event hooks included,
interleaved as Flagger interleaves them), the new routes, and the workload actions (create the
primary, scale, promote) for the controller to carry out.

This module is the tick's order: initialisation, whether to advance, readiness, a new revision,
skip analysis, the rollback hooks, promotion and finalising, the failed-checks threshold, the
analysis, then the strategy's step. The pieces it calls: :mod:`sandbox.flagger.checks` (which
webhooks run when and how their answers count), :mod:`sandbox.flagger.strategies` (canary,
blue/green, A/B and mirroring steps, the promotion's traffic shift) and
:mod:`sandbox.flagger.context` (status writes, events, webhook calls and the two status copies).

The only I/O goes through the injected callables: ``hooks(webhook, payload) -> HookResult``
(see :mod:`sandbox.flagger.webhooks`), ``metrics(canary) -> MetricFailure | None`` and an
optional ``on_status(status)`` called after each status write, at the point in the tick where
Flagger writes it, so that a webhook server reading the Canary during a later hook of the
same tick sees what it would see with Flagger (``on_event(event)`` likewise for events, before
the event webhooks are called, and ``on_action(action)`` for workload actions).

Readiness is read through ``readiness(which)`` at each of Flagger's checks (the controller
reads the Deployment's status, :mod:`sandbox.flagger.readiness`), else taken from the
:class:`TargetWorkload`. While the primary or the canary is not ready the tick ends before any
hook (rollback included); only the warning's event webhooks are called. Simulated parts (the
sandbox runs no pods and no mesh): routes are a :class:`Routes` value the controller keeps;
metric checks come from ``metrics``, by default
:func:`sandbox.flagger.metrics.simulated_metrics` (fail while the Canary carries the annotation
``sandbox.flagger.app/metrics: fail``). What still differs from Flagger is listed in
:mod:`sandbox.flagger`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sandbox.apiserver.status import not_found_message  # NB: the text Flagger gets from the API server
from sandbox.flagger import checks, strategies
from sandbox.flagger.context import TickContext, TickIO
from sandbox.flagger.metrics import MetricFailure, simulated_metrics
from sandbox.flagger.readiness import READY
from sandbox.flagger.records import (
    CANARY_ONLY,
    PRIMARY_ONLY,
    TOTAL_WEIGHT,
    Event,
    HookCaller,
    ReadinessReader,
    Routes,
    TargetWorkload,
    Tick,
)
from sandbox.flagger.status import (
    FAILED,
    FINALISING,
    INITIALIZED,
    INITIALIZING,
    PROGRESSING,
    PROMOTING,
    SUCCEEDED,
    WAITING,
    WAITING_PROMOTION,
)


def advance(
    canary: Mapping[str, Any],
    target: TargetWorkload | None,
    now: datetime,
    hooks: HookCaller,
    metrics: Callable[[Mapping[str, Any]], MetricFailure | None] = simulated_metrics,
    *,
    routes: Routes = PRIMARY_ONLY,
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
    io = TickIO(hooks, metrics, on_status, on_event, on_action, readiness)
    ctx = TickContext(canary, target, now, routes, mesh_provider, event_webhook, io)
    _advance(ctx)
    return ctx.tick


def _advance(ctx: TickContext) -> None:
    """``advanceCanary``, step by step in Flagger's order."""
    if ctx.spec.get("suspend"):
        ctx.info("skipping canary run as object is suspended")
        return
    phase = ctx.phase
    if ctx.target is None:
        ctx.warn(
            f"{ctx.kind.lower()} {ctx.target_who} get query error: "
            + not_found_message(f"{ctx.kind.lower()}s.apps", ctx.target_name)
        )
        return
    if not ctx.skip and phase in ("", INITIALIZING):
        ctx.info("all the metrics providers are available!")
    # canaryController.Initialize: create the primary, wait for it while initialising
    ctx.act("initialize")
    if phase in ("", INITIALIZING) and not ctx.skip:
        primary = ctx.readiness("primary")
        if not primary.ready:
            ctx.warn(ctx.primary_error(primary))
            if not primary.retriable:
                rollback(ctx)
            return
    if phase in ("", INITIALIZING):
        ctx.act("scale-to-zero")
        # setPhaseInitialized
        ctx.mem["phase"] = INITIALIZED
        ctx.sync_status(INITIALIZED)
        ctx.mem["lastAppliedSpec"] = ctx.server.get("lastAppliedSpec")
        ctx.mem["trackedConfigs"] = copy.deepcopy(ctx.server.get("trackedConfigs"))
        ctx.info(f"Initialization done! {ctx.who}")

    if not should_advance(ctx):
        return

    primary = READY if ctx.skip else ctx.readiness("primary")
    if not primary.ready:
        ctx.warn(ctx.primary_error(primary))
        if not primary.retriable:
            if ctx.phase in (PROMOTING, FINALISING):
                handle_failed_promotion(ctx, ctx.primary_error(primary))
            else:
                rollback(ctx)
        return

    routes = ctx.tick.routes

    if not check_canary_status(ctx):
        return

    if ctx.phase in (PROGRESSING, WAITING_PROMOTION) and target_changed(ctx):
        ctx.info(f"New revision detected! Restarting analysis for {ctx.target_who}")
        ctx.tick.routes = PRIMARY_ONLY
        ctx.sync_status(PROGRESSING)
        return

    canary = ctx.readiness("canary")
    if not canary.ready:
        # no hook at all this tick (rollback included), only the warning's event webhooks
        ctx.warn(
            canary.message
            if not canary.wrapped
            else f"canary {ctx.kind.lower()} {ctx.target_who} not ready: {ctx.readiness_text(canary, ctx.target_name)}"
        )
        if not canary.retriable:
            rollback(ctx)
        return

    if ctx.skip:
        skip_analysis(ctx)
        return

    if ctx.phase in (PROGRESSING, WAITING, WAITING_PROMOTION) and checks.rollback_requested(ctx):
        ctx.warn(f"Rolling back {ctx.who} manual webhook invoked")
        rollback(ctx)
        return

    if ctx.phase == PROMOTING:
        strategies.promotion_traffic_shift(ctx, routes)
        return

    if ctx.phase == FINALISING:
        ctx.act("scale-to-zero")
        ctx.set_status_phase(SUCCEEDED)
        checks.post_rollout(ctx, SUCCEEDED, event_phase=SUCCEEDED)
        ctx.info(f"Promotion completed! Scaling down {ctx.target_who}", phase=SUCCEEDED)
        return

    if ctx.phase in (PROGRESSING, WAITING_PROMOTION) and ctx.counter("failedChecks") >= ctx.threshold:
        rollback(ctx)
        return

    if routes.canary == 0 and ctx.counter("iterations") == 0 and not (ctx.analysis.get("mirror") and routes.mirrored):
        ctx.info(f"Starting canary analysis for {ctx.target_who}")
        if not checks.pre_rollout(ctx):
            ctx.set_field("failedChecks", ctx.counter("failedChecks") + 1)
            return
    elif not checks.run_analysis(ctx):
        ctx.set_field("failedChecks", ctx.counter("failedChecks") + 1)
        return

    strategies.advance_traffic(ctx, routes)


def target_changed(ctx: TickContext) -> bool:
    """``HasTargetChanged`` or ``HaveDependenciesChanged`` against the tick's Canary."""
    assert ctx.target is not None
    last_applied = ctx.mem.get("lastAppliedSpec") or ""
    new_hash = ctx.target.template_hash
    if not last_applied:
        return True
    if ctx.mem.get("lastPromotedSpec") != new_hash and last_applied != new_hash:
        return True
    configs = dict(ctx.target.tracked_configs)
    tracked = ctx.mem.get("trackedConfigs")
    if tracked is None:
        return bool(configs)
    return configs != dict(tracked)


def should_advance(ctx: TickContext) -> bool:
    """``shouldAdvance``: a rollout under way, or a new revision of the target."""
    if ctx.phase in (PROGRESSING, WAITING, WAITING_PROMOTION, PROMOTING, FINALISING):
        return True
    if ctx.phase == FAILED:
        # NB: Flagger re-syncs a Failed canary's status every tick (refreshes lastAppliedSpec)
        ctx.sync_status(
            FAILED,
            canary_weight=ctx.counter("canaryWeight"),
            failed_checks=ctx.counter("failedChecks"),
            iterations=ctx.counter("iterations"),
        )
    return target_changed(ctx)


def check_canary_status(ctx: TickContext) -> bool:
    """``checkCanaryStatus``: True to go on with a rollout under way; else a new revision
    starts (once confirm-rollout agrees) and the tick ends."""
    if ctx.phase in (PROGRESSING, WAITING_PROMOTION, PROMOTING, FINALISING):
        return True
    ctx.mem = copy.deepcopy(ctx.server)  # Flagger re-fetches the canary here
    if not checks.confirm_rollout(ctx):
        return False
    ctx.info(f"New revision detected! Scaling up {ctx.target_who}", phase=PROGRESSING)
    ctx.act("scale-from-zero")
    ctx.sync_status(PROGRESSING)
    return False


def skip_analysis(ctx: TickContext) -> None:
    """``shouldSkipAnalysis``: promote at once, straight to ``Succeeded``."""
    ctx.tick.routes = PRIMARY_ONLY
    ctx.info(f"Copying {ctx.target_who} template spec to {ctx.primary_name}.{ctx.namespace}")
    ctx.act("promote", "scale-to-zero")
    ctx.set_status_phase(SUCCEEDED)
    checks.post_rollout(ctx, SUCCEEDED, event_phase=SUCCEEDED)
    ctx.info(f"Promotion completed! Canary analysis was skipped for {ctx.target_who}", phase=SUCCEEDED)


def rollback(ctx: TickContext) -> None:
    """``rollback``: all traffic to the primary, the canary scaled to zero, ``Failed``."""
    if ctx.counter("failedChecks") >= ctx.threshold:
        ctx.warn(f"Rolling back {ctx.who} failed checks threshold reached {ctx.counter('failedChecks')}")
    ctx.tick.routes = PRIMARY_ONLY
    ctx.warn(f"Canary failed! Scaling down {ctx.who}", phase=FAILED)
    ctx.act("scale-to-zero")
    ctx.sync_status(FAILED)
    checks.post_rollout(ctx, FAILED)


def handle_failed_promotion(ctx: TickContext, error: str) -> None:
    """The primary fails its progress deadline while promoting: ``Failed``, traffic on the canary."""
    ctx.warn(f"Promotion of {ctx.target_who} failed, primary not ready: {error}")
    ctx.tick.routes = CANARY_ONLY
    ctx.sync_status(FAILED, canary_weight=TOTAL_WEIGHT)
    checks.post_rollout(ctx, FAILED)
