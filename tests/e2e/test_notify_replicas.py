"""End to end: two sidecar replicas with notifications post each thing once.

Both replicas watch the same CanaryGates and see the same changes; only the holder of the Lease
``canary-gate-notifier`` (deploy/sidecar/notify's Role, bound in the test's namespace) sends. The
leader here is the replica Flagger does *not* call, so the hold reaches it only through the other
replica's ``status.calls``: the case of Flagger's connection sticking to one replica.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from helpers.recorders import SLACK_TOKEN as TOKEN

from canarygate import errors
from gate_sidecar.leader import LEASES
from gate_sidecar.notify.notifier import NOTIFY_LEASE

pytestmark = pytest.mark.e2e

NOTIFY = Path(__file__).resolve().parents[2] / "deploy" / "sidecar" / "notify"


@pytest.fixture
def flags(apiserver, namespace, slack, hook, monkeypatch):
    """The component's Lease Role, unchanged, bound in the test's namespace; the replicas' flags."""
    for name in ("role.yaml", "rolebinding.yaml"):
        doc = yaml.safe_load((NOTIFY / name).read_text())
        doc["metadata"]["namespace"] = namespace
        apiserver.apply(doc)
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    return (
        "--slack-channel",
        "#releases",
        "--slack-api-url",
        slack.base_url,
        "--notify-webhook",
        f"default={hook.url}",
        "--lease",
        f"{namespace}/unused",
        "--lease-seconds",
        "4",
    )


def lease_holder(kube, namespace) -> str:
    try:
        lease = kube.request("GET", LEASES.path(namespace, NOTIFY_LEASE))
    except errors.NotFound:
        return ""
    return (lease.get("spec") or {}).get("holderIdentity") or ""


@pytest.fixture
def leader(make_sidecar, flags, kube, namespace, wait_until):
    """The replica that notifies, started first and holding the Lease before the other starts."""
    process = make_sidecar(*flags)
    wait_until(lambda: lease_holder(kube, namespace), timeout=20, what="the notifier Lease")
    return process


@pytest.fixture
def sidecar(leader, make_sidecar, flags):
    """The replica Flagger calls (this module's ``rollouts`` use it): it does not lead."""
    return make_sidecar(*flags)


def test_two_replicas_post_each_thing_once(rollouts, leader, sidecar, slack, hook, kube, namespace, wait_until):
    holder = lease_holder(kube, namespace)
    analysis = {"interval": "10s", "threshold": 1000, "maxWeight": 40, "stepWeight": 20, "stepWeightPromotion": 100}
    rollouts.create(confirm_promotion="closed", analysis=analysis)
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    top = wait_until(lambda: slack.messages("#releases"), what="the hold in Slack")[0]
    assert f"To go on: `kubectl gate promote demo -n {namespace}`" in top.text
    rollouts.set_gate("confirm-promotion", "opened")
    rollouts.wait_phase("demo", "Succeeded")
    wait_until(lambda: len(slack.messages("#releases")[0].replies) >= 2, what="the thread's replies")
    time.sleep(1.5)  # a second replica posting too would have done so by now
    [top] = slack.messages("#releases")
    assert len(top.replies) == 2 and top.edits == 2
    assert [b["kind"] for b in hook.bodies()] == ["held", "opened", "promoted"]
    assert lease_holder(kube, namespace) == holder  # the first replica led throughout
    assert "notifications" in (rollouts.gate().get("status") or {})
