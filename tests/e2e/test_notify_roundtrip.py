"""End to end: a rollout's notifications, from the sidecar process to local Slack and webhook recorders.

The sidecar runs as a process (the Go original's ``SLACK_TOKEN`` in its environment, ``--slack-channel``,
``--slack-api-url`` at a Slack Web API stand-in on 127.0.0.1, ``--notify-webhook``); Flagger (the
simulator, or real Flagger on the real tier) drives a rollout held at confirm-promotion. A person in
the channel sees one message: the hold with the command to run, then in its thread the opening and
the promotion, the top message updated each time. The sidecar restarts while the gate holds and
sends nothing twice.
"""

from __future__ import annotations

import re
import time

import pytest
from helpers.recorders import SLACK_TOKEN as TOKEN

pytestmark = pytest.mark.e2e


@pytest.fixture
def sidecar(make_sidecar, slack, hook, monkeypatch):
    """The sidecar of this module's ``rollouts``: with notifications."""
    monkeypatch.setenv("SLACK_TOKEN", TOKEN)
    return make_sidecar(
        "--slack-channel",
        "#releases",
        "--slack-api-url",
        slack.base_url,
        "--notify-webhook",
        f"default={hook.url}/chatops",
        "--log-level",
        "debug",
    )


def test_hold_open_promote_in_one_thread_across_a_restart(rollouts, sidecar, slack, hook, wait_until):
    ns = rollouts.namespace
    # NB: a high threshold: while the sidecar restarts, Flagger's rollout checks fail (connection refused)
    analysis = {"interval": "10s", "threshold": 1000, "maxWeight": 40, "stepWeight": 20, "stepWeightPromotion": 100}
    rollouts.create(confirm_promotion="closed", analysis=analysis)
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")

    top = wait_until(lambda: slack.messages("#releases"), what="the hold in Slack")[0]
    command = re.search(r"To go on: `([^`]+)`", top.text).group(1)
    assert command == f"kubectl gate promote demo -n {ns}"
    assert "Gate *confirm-promotion* holds the rollout of" in top.text and f"{ns}/demo" in top.text
    event = wait_until(lambda: rollouts.events(reason="GateHolding"), what="the GateHolding Event")[0]
    assert event["message"].endswith(f"To go on: {command}")  # the same command as show and the Event

    def recorded():  # both receivers' sends in status.notifications (one coalesced write may hold one)
        sent = (rollouts.gate().get("status") or {}).get("notifications", {}).get("sent") or []
        return sent if len(sent) >= 2 else None

    record = wait_until(recorded, what="the record of both sends")
    assert sorted(m.split("|")[0] for m in record) == ["slack", "webhook:default"]
    sent_before = (len(slack.requests), len(hook.requests))
    sidecar.restart()
    rollouts.wait_more_ticks(4)  # the new process answers the hold again
    time.sleep(1.0)
    assert (len(slack.requests), len(hook.requests)) == sent_before

    rollouts.set_gate("confirm-promotion", "opened")
    wait_until(lambda: slack.messages("#releases")[0].replies, what="the opening in the thread")
    rollouts.wait_phase("demo", "Succeeded")
    wait_until(lambda: len(slack.messages("#releases")[0].replies) >= 2, what="the promotion in the thread")
    # NB: the reply goes first, then the top message's edit: wait for the edit too
    wait_until(
        lambda: f"{ns}/demo promoted" in slack.messages("#releases")[0].text, what="the top message edited to promoted"
    )

    [top] = slack.messages("#releases")  # one message in the channel, the rest in its thread
    assert [r.text.split(" at ")[0] for r in top.replies] == [
        ":arrow_forward: Gate *confirm-promotion* opened by e2e",
        f":white_check_mark: {ns}/demo promoted",
    ]
    assert top.edits == 2 and "promoted" in top.text
    bodies = wait_until(lambda: hook.bodies() if len(hook.bodies()) >= 3 else None, what="three webhook bodies")
    assert [b["kind"] for b in bodies] == ["held", "opened", "promoted"]
    assert len({b["thread"] for b in bodies}) == 1 and bodies[0]["command"] == command
    assert TOKEN not in sidecar.log() and "TOKENNEVERLOGGED" not in sidecar.log()
    assert "(redacted)" in sidecar.log()  # slack_sdk's debug lines were there, the token redacted
