"""``kubectl gate wait NAME --for ...``: block until a rollout reaches a state; exit codes for CI."""

from __future__ import annotations

import time
from dataclasses import dataclass

import click

from canarygate import gates as gate_names
from canarygate.diagnosis import recommended_command
from canarygate.rollouts import passed_gates
from kubectl_gate import exitcodes, lookup
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import DURATION, kube_options, name_options, pick_name
from kubectl_gate.views import GateView, build_view, failing_text

CONDITIONS = ("promoted", "failed", "waiting", "gate=GATE")
#: A CI job waiting on a person must end: long enough for a release window's approval, not for ever.
DEFAULT_TIMEOUT = "30m"


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str


class Condition(click.ParamType):
    name = "CONDITION"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        if text in ("promoted", "failed", "waiting"):
            return text
        if text.startswith("gate="):
            gate = text[len("gate=") :]
            if gate in gate_names.GATES:
                return text
            self.fail(f"unknown gate {gate!r}: the gates are {', '.join(gate_names.GATES)}", param, ctx)
        self.fail(f"{value!r}: use one of {', '.join(CONDITIONS)}", param, ctx)


def evaluate(view: GateView, condition: str, *, count_ended: bool = True) -> Outcome | None:
    """The outcome when ``condition`` is settled by ``view`` (reached, or can no longer be); else None."""
    canary = view.canary
    if canary is None:
        return None
    phase = canary.phase
    if phase == "Failed" and count_ended:
        if condition == "failed":
            return Outcome(exitcodes.OK, f"Canary {canary.ref} failed (rolled back)")
        return Outcome(exitcodes.FAILED, f"Canary {canary.ref} failed: the rollout was rolled back")
    if phase == "Succeeded" and count_ended:
        if condition == "promoted":
            return Outcome(exitcodes.OK, f"Canary {canary.ref} promoted")
        if condition == "failed":
            return Outcome(exitcodes.ERROR, f"Canary {canary.ref} was promoted, not rolled back")
        return Outcome(exitcodes.ERROR, f"Canary {canary.ref} finished (promoted) without waiting at a gate")
    if condition == "waiting" and view.holding:
        return Outcome(exitcodes.OK, f"Canary {canary.ref} is waiting at gate {view.holding}")
    if condition.startswith("gate="):
        gate = condition[len("gate=") :]
        if view.holding == gate:
            return Outcome(exitcodes.OK, f"Canary {canary.ref} is waiting at gate {view.holding}")
        if gate in passed_gates(canary):
            return Outcome(
                exitcodes.ERROR,
                f"Canary {canary.ref} is past gate {gate} in this rollout ({canary.phase}): "
                "Flagger asks it no more until the next revision",
            )
    return None


def progress_line(view: GateView) -> str:
    canary = view.canary
    if canary is None:
        return f"no Flagger Canary {view.gate.target.namespace}/{view.gate.target.name} yet"
    text = f"{canary.phase or 'Unknown'} weight {canary.canary_weight}/{canary.max_weight}"
    if canary.failed_checks:
        text += f", failed checks {canary.failed_checks}/{canary.threshold}"
    if view.holding:
        unknown = " (state unknown: its annotation cannot be read)" if view.holding in view.unknown else ""
        text += (
            f", waiting at closed gate {view.holding}{unknown} "
            f"({recommended_command(view.holding, view.gate.name, view.gate.namespace)})"
        )
    elif view.failing:
        text += f", {failing_text(view)}: closed, every check fails"
    elif view.stuck is not None:
        text += f", {view.stuck.message}"
    return text


def wait_for(
    gctx: GateContext, name: str, condition: str, *, timeout: float = 0, fresh: bool = False, quiet: bool = False
) -> Outcome:
    """Follow the CanaryGate and its Canary until ``condition`` is settled or ``timeout`` (0: never)."""
    from kubectl_gate.following import Follower

    lookup.get_gate(gctx, name)  # not found: exit 1 at once, with close names
    start = time.monotonic()
    deadline = start + timeout if timeout > 0 else None
    follower = Follower(gctx, name)
    last_line = None
    seen_active = not fresh
    for _ in follower.changes(deadline=deadline):
        gate = follower.gate
        if gate is None:
            return Outcome(exitcodes.ERROR, f'CanaryGate "{name}" was deleted')
        view = build_view(gate, follower.canary, now=gctx.now())
        if view.canary is not None and view.canary.active:
            seen_active = True
        line = progress_line(view)
        if line != last_line:  # NB: kept with -q too: the timeout message names the last state seen
            if not quiet:
                gctx.err(f"[{int(time.monotonic() - start)}s] {line}")
            last_line = line
        outcome = evaluate(view, condition, count_ended=seen_active)
        if outcome is not None:
            return outcome
    seen = f": {last_line}" if last_line else ""
    return Outcome(exitcodes.TIMEOUT, f"timed out after {int(timeout)}s waiting for {condition}{seen}")


@click.command("wait")
@click.argument("name", required=False)
@name_options
@click.option(
    "--for",
    "condition",
    type=Condition(),
    required=True,
    metavar="|".join(CONDITIONS),
    help="promoted, failed (rolled back), waiting (at any closed gate), or gate=GATE (held at GATE).",
)
@click.option(
    "--timeout",
    type=DURATION,
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Give up after this long, exit 124 (0: never).",
)
@click.option("--fresh", is_flag=True, help="Ignore an ended rollout found at start; wait for the next rollout to end.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines on stderr.")
@kube_options
@pass_gate_ctx
def wait_command(
    gctx: GateContext,
    name: str | None,
    deployment: str | None,
    condition: str,
    timeout: float,
    fresh: bool,
    quiet: bool,
) -> None:
    """Wait until the rollout of CanaryGate NAME reaches a condition; made for CI. Progress goes to
    stderr. A Canary already Succeeded counts as promoted (use --fresh after a deploy that Flagger
    may not have picked up yet).

    \b
    Exit codes:
      0    the condition was reached
      1    error, CanaryGate not found, or the condition can no longer be reached
           (the rollout is past gate=GATE: Flagger asks it no more until the next revision)
      3    the rollout failed and was rolled back (unless waiting --for failed)
      124  timed out (the message names the closed gate holding the rollout, if one does)

    wait never exits 4: a rollout held at a closed gate is still under way, so wait
    keeps waiting (--for waiting or --for gate=GATE ends there with 0). For a
    one-shot check that exits 4 at a closed gate, use: kubectl gate show NAME --exit-code

    A CI job that waits on a person is bounded by default (30m); --timeout 0 waits for ever.

    \b
    Examples:
      kubectl gate wait demo --for promoted --timeout 2h
      kubectl gate wait demo --for gate=confirm-promotion --timeout 10m && notify-approvers
    """
    name = pick_name(name, deployment)
    outcome = wait_for(gctx, name, condition, timeout=timeout, fresh=fresh, quiet=quiet)
    if outcome.code == exitcodes.OK:
        gctx.out(outcome.message)
    else:
        gctx.err(("error: " if outcome.code == exitcodes.ERROR else "") + outcome.message)
    raise click.exceptions.Exit(outcome.code)
