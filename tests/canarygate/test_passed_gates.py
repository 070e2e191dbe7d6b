"""Which gates a rollout has gone past for good (``kubectl gate wait --for gate=G`` ends on them)."""

import pytest

from canarygate import gates
from canarygate.model import Canary
from canarygate.rollouts import passed_gates

EARLY = {gates.CONFIRM_ROLLOUT, gates.PRE_ROLLOUT}
PROMOTING = EARLY | {gates.ROLLOUT, gates.CONFIRM_TRAFFIC_INCREASE, gates.CONFIRM_PROMOTION}


@pytest.mark.parametrize(
    "phase, weight, iterations, passed",
    [
        ("Initialized", 0, 0, set()),
        ("Waiting", 0, 0, set()),
        ("Progressing", 0, 0, {gates.CONFIRM_ROLLOUT}),  # pre-rollout is asked while weight and iterations are 0
        ("Progressing", 10, 0, EARLY),
        ("Progressing", 0, 2, EARLY),  # A/B and blue/green count iterations, weight stays 0
        ("WaitingPromotion", 0, 0, EARLY),  # Flagger zeroes the weight there
        ("Promoting", 50, 0, PROMOTING),
        ("Finalising", 0, 0, PROMOTING),
        ("Succeeded", 0, 0, set()),  # an ended rollout is told by its phase
        ("Failed", 0, 0, set()),
    ],
)
def test_passed_gates(phase, weight, iterations, passed):
    canary = Canary(name="demo", namespace="ns", phase=phase, canary_weight=weight, iterations=iterations)
    assert passed_gates(canary) == passed


def test_post_rollout_and_rollback_are_never_past_while_a_rollout_runs():
    for phase in ("Progressing", "WaitingPromotion", "Promoting", "Finalising"):
        passed = passed_gates(Canary(name="demo", namespace="ns", phase=phase, canary_weight=10))
        assert gates.POST_ROLLOUT not in passed and gates.ROLLBACK not in passed
