"""End to end: rollouts on the Flagger simulator, driven only through the Argo CD customizations.

Argo CD is stood in for by what it does with them: it reads the live CanaryGate, runs health.lua and
discovery.lua on it, runs an action's Lua and sends the merge patch of live -> returned object
(``argocd_lua``). The real gate sidecar answers Flagger and writes the status the scripts read.

We test these aspects: the health Argo CD shows at each stage of a real rollout (Suspended at a gate,
Progressing, Healthy after promotion, Degraded after an abort); that each action lets Flagger do what
it says (promote one step, promote-full, pause holding a traffic step, resume, abort while Waiting
with no traffic to the canary); that the sidecar uses up and ends the changes the actions wrote (so
its conditional writes accept their encoding) and the next release is held as declared.
"""

from __future__ import annotations

import argocd_cm
import argocd_lua
import pytest

from canarygate.kube.client import MERGE_PATCH
from canarygate.kube.resources import CANARYGATES

pytestmark = pytest.mark.e2e

SCRIPTS = argocd_cm.scripts()
PREFIX = "gate.piggysec.com/"


class ArgoCD:
    """What Argo CD does with the customizations, against the sandbox's CanaryGate ``demo``."""

    def __init__(self, rollouts, wait_until):
        self.rollouts = rollouts
        self.wait_until = wait_until

    def health(self) -> dict:
        return argocd_lua.health(SCRIPTS["health"], self.rollouts.gate())

    def enabled(self) -> set[str]:
        offered = argocd_lua.discovery(SCRIPTS["discovery"], self.rollouts.gate())
        return {name for name, fields in offered.items() if not fields.get("disabled")}

    def run(self, action: str) -> dict:
        live = self.rollouts.gate()
        patch = argocd_lua.action_patch(SCRIPTS[action], live)
        assert patch, f"{action} changed nothing"
        ns = self.rollouts.namespace
        return self.rollouts.kube.request("PATCH", CANARYGATES.path(ns, "demo"), body=patch, content_type=MERGE_PATCH)

    def wait_health(self, status: str, part: str = "") -> dict:
        return self.wait_until(
            lambda: (h := self.health())["status"] == status and part in h["message"] and h,
            timeout=20,
            what=f"health {status} ({part})",
        )

    def wait_enabled(self, action: str) -> None:
        self.wait_until(lambda: action in self.enabled(), timeout=20, what=f"action {action} enabled")

    def live_changes(self) -> set[str]:
        annotations = self.rollouts.gate()["metadata"].get("annotations") or {}
        return {k[len(PREFIX) :] for k in annotations if k.startswith(PREFIX)}


@pytest.fixture
def argocd(rollouts, wait_until) -> ArgoCD:
    return ArgoCD(rollouts, wait_until)


def test_promote_one_step_then_promote_full(rollouts, argocd, wait_until):
    rollouts.create(confirm_rollout="closed", confirm_promotion="closed")
    assert argocd.health()["status"] == "Healthy"
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Waiting")
    argocd.wait_health("Suspended", "Gate confirm-rollout holds")
    argocd.wait_enabled("promote")
    argocd.run("promote")
    rollouts.wait_phase("demo", "WaitingPromotion")
    # The one-step approval was used by Flagger's call and removed by the sidecar.
    wait_until(lambda: "confirm-rollout" not in argocd.live_changes(), what="the step approval to be used up")
    argocd.wait_health("Suspended", "Gate confirm-promotion holds")
    argocd.wait_enabled("promote-full")
    argocd.run("promote-full")
    rollouts.wait_phase("demo", "Succeeded")
    argocd.wait_health("Healthy", "phase Succeeded")
    # Opened for that rollout only: the change ends with it, and the next release is held again.
    wait_until(lambda: not argocd.live_changes(), what="the live changes to end with the rollout")
    rollouts.new_revision(version="3")
    rollouts.wait_phase("demo", "Waiting")
    argocd.wait_health("Suspended", "Gate confirm-rollout holds")


def test_pause_holds_a_traffic_step_and_resume_lets_it_on(rollouts, argocd, wait_until):
    rollouts.create(confirm_rollout="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Waiting")
    argocd.wait_enabled("pause")
    argocd.run("pause")
    argocd.run("promote")
    rollouts.wait_phase("demo", "Progressing")
    held = rollouts.wait_more_ticks(4)
    assert {t.routes.canary for t in held[1:]} == {0}  # no traffic step while paused
    argocd.wait_health("Suspended", "Run the resume action")
    argocd.wait_enabled("resume")
    argocd.run("resume")
    rollouts.wait_phase("demo", "Succeeded")
    assert not argocd.live_changes() - {"confirm-rollout"}


def test_abort_while_waiting_rolls_back_with_no_traffic(rollouts, argocd, wait_until):
    rollouts.create(confirm_rollout="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Waiting")
    argocd.wait_enabled("abort")
    argocd.run("abort")
    rollouts.wait_phase("demo", "Failed")
    assert all(t.routes.canary == 0 for t in rollouts.ticks())
    argocd.wait_health("Degraded", "failed and was rolled back")
    wait_until(lambda: not argocd.live_changes(), what="the abort's changes to end with the rollout")
    assert not argocd.enabled() & {"abort", "pause", "promote"}
