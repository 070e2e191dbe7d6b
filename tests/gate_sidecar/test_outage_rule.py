"""The outage rule (canarygate.hooks.OUTAGE_RULE), through the test client over a hand-filled cache.

While the state is unknown (API silent past the bound, an unreadable annotation): a check hook
(rollout, pre-rollout) answers 200 when the Canary sends both confirm gates to this sidecar, and the
confirm gates answer 503, so Flagger neither fails a check nor takes a step; without those confirm
hooks the check answers 503 (no traffic on a guess); rollback never signals.
"""

from __future__ import annotations

import pytest
from sidecar_helpers import call, make_canary, make_gate
from werkzeug.test import Client

from canarygate import rendering
from canarygate.annotations import annotation_key
from canarygate.model import parse_canarygate
from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache, StaticHealth


def rendered_canary(gate_raw, *, only=None):
    canary = make_canary()
    hooks = rendering.gate_webhooks(parse_canarygate(gate_raw), endpoint="http://sidecar")
    if only is not None:
        hooks = [h for h in hooks if h["type"] in only]
    canary["spec"]["analysis"]["webhooks"] = hooks
    return canary


def client_for(gate_raw, canary_raw, *, seconds=0.0) -> Client:
    cache = GateCache(health=[StaticHealth(seconds=seconds)], fail_closed_after=10)
    cache.fill(gates=[gate_raw], canaries=[canary_raw])
    return Client(create_app(cache=cache))


META = {"gate_name": "demo", "gate_namespace": "demo-ns"}


def body(**kw):
    return {"name": "demo", "namespace": "demo-ns", "phase": "Progressing", "checksum": "x", "metadata": META}


def test_api_silent_guarded_check_passes_and_confirm_gates_wait():
    gate = make_gate()
    client = client_for(gate, rendered_canary(gate), seconds=30)  # silent for 30 s > 10 s
    for check in ("rollout", "pre-rollout"):
        status, answer = call(client, check, body())
        assert status == 200, answer
        assert answer["state"] == "unknown" and "not failing this check" in answer["message"]
    for confirm in ("confirm-traffic-increase", "confirm-promotion", "confirm-rollout"):
        assert call(client, confirm, body())[0] == 503
    assert call(client, "rollback", body())[0] == 503


def test_api_silent_unguarded_check_fails_closed():
    gate = make_gate()
    canary = rendered_canary(gate, only={"rollout", "pre-rollout", "confirm-promotion"})
    client = client_for(gate, canary, seconds=30)
    assert call(client, "rollout", body())[0] == 503


@pytest.mark.parametrize(
    ("analysis", "unguarded"),
    [
        ({"iterations": 4, "match": [{"headers": {"x-canary": {"exact": "insider"}}}]}, {"pre-rollout"}),
        ({"iterations": 4}, set()),
        ({"iterations": 4, "mirror": True}, {"pre-rollout"}),
        ({"maxWeight": 40, "stepWeight": 10, "mirror": True}, {"rollout"}),
        ({"maxWeight": 40, "stepWeight": 10}, set()),
    ],
    ids=["ab-testing", "blue-green", "blue-green-mirror", "canary-mirror", "canary"],
)
def test_api_silent_a_check_passes_only_where_a_confirm_gate_holds_the_step_after_it(analysis, unguarded):
    # A/B's first iteration (after pre-rollout) routes the matched traffic to the canary, a mirror
    # starts or ends, with no confirm gate between: there the check fails closed. Later iterations
    # only count (runAB, runBlueGreen), so their checks pass.
    gate = make_gate()
    canary = rendered_canary(gate)
    canary["spec"]["analysis"].update(analysis)
    client = client_for(gate, canary, seconds=30)
    for check in ("rollout", "pre-rollout"):
        status, answer = call(client, check, body())
        assert status == (503 if check in unguarded else 200), (check, answer)
    assert call(client, "confirm-promotion", body())[0] == 503


def test_unreadable_check_gate_holds_the_confirm_gates_and_does_not_fail_the_check():
    gate = make_gate()
    gate["metadata"]["annotations"][annotation_key("rollout")] = "{not json"
    client = client_for(gate, rendered_canary(gate))
    status, answer = call(client, "rollout", body())
    assert status == 200 and answer["source"] == "invalid"
    status, answer = call(client, "confirm-traffic-increase", body())
    assert status == 503 and "check gate rollout cannot be read" in answer["problem"]
    assert call(client, "confirm-promotion", body())[0] == 503
    assert call(client, "rollback", body())[0] == 403  # known: closed by default


# -- one promotion, however many calls it takes ----------------------------------------------------------
def test_a_promotion_step_passes_every_call_of_that_promotion_and_no_later_one():
    from sidecar_helpers import RecordingWriter, live_change

    step = live_change("confirm-promotion", "opened", scope="step")
    gate = make_gate(confirm_promotion="closed", live=[step])
    writer = RecordingWriter()
    cache = GateCache(health=[StaticHealth()])
    cache.fill(gates=[gate], canaries=[make_canary(phase="WaitingPromotion")])
    client = Client(create_app(cache=cache, writer=writer))
    # Blue/green asks on two consecutive ticks (all traffic to the canary, then promotion): both pass.
    assert call(client, "confirm-promotion", body())[0] == 200
    assert call(client, "confirm-promotion", body())[0] == 200
    assert not [c for c in writer.calls if c[0] == "consume"]
    cache.apply_canary_event("MODIFIED", make_canary(phase="Promoting"))
    status, answer = call(client, "confirm-promotion", body())
    assert status == 403 and answer["source"] == "declared"


# -- an approval names the revision its approver saw ------------------------------------------------------
class RevisionWriter:
    """A writer whose read of the target returns ``revision`` (None: it cannot be read)."""

    def __init__(self, revision):
        self.revision, self.reads, self.reviews = revision, 0, 0

    def target_revision(self, canary):
        self.reads += 1
        return self.revision

    def review(self, kind, key):
        self.reviews += 1

    def __getattr__(self, name):  # every other writer request is accepted and ignored
        return lambda *a, **k: None


APPROVED_CONFIGS = (("configmap/app", "0123456789abcdef"), ("secret/db", "fedcba9876543210"))


def approval_client(template_now, configs_now=None, approved_configs=APPROVED_CONFIGS):
    from canarygate.annotations import LiveChange, RolloutMark
    from canarygate.rollouts import Revision

    configs_now = dict(APPROVED_CONFIGS) if configs_now is None else configs_now
    change = LiveChange(
        gate="confirm-rollout",
        state="opened",
        scope="rollout",
        by="alice",
        at="2026-11-22T10:01:00Z",
        rollout=RolloutMark(
            active=True, since="2026-11-22T10:00:00Z", template="aaaaaaaaaaaa", configs=approved_configs
        ),
    )
    cache = GateCache(health=[StaticHealth()])
    cache.fill(gates=[make_gate(confirm_rollout="closed", live=[change])], canaries=[make_canary(phase="Waiting")])
    writer = RevisionWriter(None if template_now is None else Revision(template_now, configs_now))
    return Client(create_app(cache=cache, writer=writer)), writer


def test_an_approval_passes_the_revision_it_names_and_no_other():
    client, writer = approval_client("aaaaaaaaaaaa")
    assert call(client, "confirm-rollout", body())[0] == 200
    client, writer = approval_client("bbbbbbbbbbbb")  # a newer template deployed before Flagger's check
    status, answer = call(client, "confirm-rollout", body())
    assert status == 403 and answer["source"] == "declared"
    assert "was for another revision of the target" in answer["message"] and "approve again" in answer["message"]
    client, writer = approval_client(None)  # cannot tell: wait
    assert call(client, "confirm-rollout", body())[0] == 503
    assert writer.reads == 1
    assert call(client, "rollout", body())[0] == 200  # no approval in play: no read
    assert writer.reads == 1


def test_a_config_only_change_is_a_revision_nobody_approved():
    changed = {**dict(APPROVED_CONFIGS), "secret/db": "1111111111111111"}
    client, _ = approval_client("aaaaaaaaaaaa", configs_now=changed)  # same template, a Secret changed
    status, answer = call(client, "confirm-rollout", body())
    assert status == 403 and answer["source"] == "declared"
    assert "secret/db changed since" in answer["message"] and "approve again" in answer["message"]
    added = {**dict(APPROVED_CONFIGS), "configmap/extra": "2222222222222222"}
    client, _ = approval_client("aaaaaaaaaaaa", configs_now=added)  # now tracked, not when approved
    assert call(client, "confirm-rollout", body())[0] == 403
    # A config the sidecar may not read cannot be compared: said, not guessed either way.
    unread = {**dict(APPROVED_CONFIGS), "secret/db": "forbidden"}
    client, _ = approval_client("aaaaaaaaaaaa", configs_now=unread)
    status, answer = call(client, "confirm-rollout", body())
    assert status == 200 and "changes of secret/db cannot be told" in answer["message"]


def test_an_approval_whose_configs_are_not_recorded_yet_waits_and_asks_for_its_binding():
    client, writer = approval_client("aaaaaaaaaaaa", approved_configs=None)
    status, answer = call(client, "confirm-rollout", body())
    assert status == 503 and "not yet bound to the ConfigMaps and Secrets" in answer["message"]
    assert writer.reviews == 1
