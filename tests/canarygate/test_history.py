"""The audit history's rules (canarygate.history): what is recorded, to which rollout, how a change
ended, and the bounds.

Covers: a rollout's phases recorded once each (weight steps are not entries; a new revision analysed
in place is); a gate change made between rollouts belongs to the next rollout; a one-step approval
that went away while its rollout ran is "used", a rollout-scoped change gone after the end "expired",
a change replaced by another of its gate "replaced", a sticky one taken away "removed"; a rollback's
cause recorded once; observing the same cluster twice adds nothing (replicas converge); the record
stays within N rollouts, M entries and its byte bound, counting what it dropped; an unreadable or
newer record starts over.
"""

from __future__ import annotations

import json

from canarygate import history
from canarygate.annotations import LiveChange, RolloutMark
from canarygate.model import parse_canary

T0 = "2026-11-22T09:00:00Z"


def canary(phase, *, since=T0, weight=0, promoted="Unknown", applied="", at="2026-11-22T09:00:05Z"):
    return parse_canary(
        {
            "metadata": {"name": "demo", "namespace": "demo-ns"},
            "spec": {"analysis": {"threshold": 2, "maxWeight": 40, "stepWeight": 10}},
            "status": {
                "phase": phase,
                "canaryWeight": weight,
                "lastAppliedSpec": applied,
                "lastTransitionTime": at,
                "conditions": [{"type": "Promoted", "status": promoted, "reason": phase, "lastTransitionTime": since}],
            },
        }
    )


def change(gate="confirm-promotion", state="opened", *, scope="rollout", by="alice", reason="CAB-1", at="10:00"):
    return LiveChange(
        gate=gate,
        state=state,
        scope=scope,
        by=by,
        at=f"2026-11-22T{at}:00Z",
        reason=reason,
        rollout=RolloutMark(active=True, since=T0),
    )


def what(record):
    out = []
    for e in record["entries"]:
        if e["kind"] == "phase":
            out.append((e["rollout"], e["phase"]))
        elif e["kind"] == "gate":
            out.append((e["rollout"], e["gate"], e.get("state") or e["how"]))
        else:
            out.append((e["rollout"], "failure", e["message"]))
    return out


def run(steps):
    """Fold (canary, live or None) observations into an empty record, as the sidecar does."""
    record = history.empty()
    for i, (c, live) in enumerate(steps):
        now = f"2026-11-22T11:00:{i:02d}Z"
        record = history.observe_canary(record, c, now)
        if live is not None:
            record = history.observe_gate(record, {x.gate: x for x in live}, c, now)
    return record


def test_a_rollout_is_its_phases_once_each_and_the_changes_made_in_it():
    step = change(scope="step")
    record = run(
        [
            (canary("Succeeded", since="2026-11-21T00:00:00Z", promoted="True"), []),
            (canary("Waiting"), []),
            (canary("Progressing", weight=10), [step]),
            (canary("Progressing", weight=20), [step]),  # a traffic step: no entry
            (canary("WaitingPromotion", weight=0), []),  # the approval was answered and removed
            (canary("Promoting"), []),
            (canary("Succeeded", since="2026-11-22T09:10:00Z", promoted="True"), []),
        ]
    )
    assert what(record) == [
        (1, "Succeeded"),
        (2, "Waiting"),
        (2, "Progressing"),
        (2, "confirm-promotion", "opened"),
        (2, "WaitingPromotion"),
        (2, "confirm-promotion", "used"),
        (2, "Promoting"),
        (2, "Succeeded"),
    ]
    opened = next(e for e in record["entries"] if e.get("action") == "set")
    assert (opened["by"], opened["reason"], opened["scope"], opened["at"]) == (
        "alice",
        "CAB-1",
        "step",
        "2026-11-22T10:00:00Z",
    )


def test_a_change_between_rollouts_belongs_to_the_next_and_expires_with_it():
    sticky = change("confirm-rollout", "closed", scope="sticky", by="bob")
    between = change("confirm-traffic-increase", "opened")
    record = run(
        [
            (canary("Succeeded", promoted="True"), [sticky, between]),
            (canary("Progressing", since="2026-11-22T10:00:00Z"), [sticky, between]),
            (canary("Failed", since="2026-11-22T10:05:00Z", promoted="False"), [sticky]),
            (canary("Failed", since="2026-11-22T10:05:00Z", promoted="False"), []),
        ]
    )
    assert what(record) == [
        (1, "Succeeded"),
        (2, "confirm-rollout", "closed"),
        (2, "confirm-traffic-increase", "opened"),
        (2, "Progressing"),
        (2, "Failed"),
        (2, "confirm-traffic-increase", "expired"),
        (2, "confirm-rollout", "removed"),
    ]


def test_a_change_replaced_by_another_of_its_gate_and_a_new_revision_analysed_in_place():
    first, second = change(by="alice"), change(state="closed", by="bob", at="10:02")
    record = run(
        [
            (canary("Progressing", applied="aaa"), [first]),
            (canary("Progressing", applied="bbb"), [second]),
        ]
    )
    assert what(record) == [
        (1, "Progressing"),
        (1, "confirm-promotion", "opened"),
        (1, "Progressing"),
        (1, "confirm-promotion", "replaced"),
        (1, "confirm-promotion", "closed"),
    ]
    assert record["entries"][0]["revision"] != record["entries"][2]["revision"]


def test_the_rollback_cause_is_recorded_once_in_its_rollout():
    failure = {
        "message": "Rolling back demo.demo-ns failed checks threshold reached 2",
        "check": "Halt ...",
        "time": "t",
    }
    record = history.empty()
    for _ in range(3):
        record = history.observe_canary(record, canary("Failed", promoted="False"), "now")
        record = history.observe_gate(record, {}, canary("Failed", promoted="False"), "now", failure=failure)
    assert what(record) == [(1, "Failed"), (1, "failure", failure["message"])]


def test_observing_the_same_cluster_again_adds_nothing():
    c, live = canary("Progressing"), {"confirm-promotion": change()}
    once = history.observe_gate(history.observe_canary(history.empty(), c, "a"), live, c, "a")
    twice = history.observe_gate(history.observe_canary(once, c, "b"), live, c, "b")
    assert twice == once and len(once["entries"]) == 2


def test_the_record_keeps_the_last_rollouts_entries_and_bytes():
    record = history.empty()
    for n in range(1, 16):
        for i in range(5):
            record["entries"].append({"rollout": n, "at": "t", "kind": "phase", "phase": f"P{i}", "note": "x" * 50})
    kept = history.bound(record, max_rollouts=10, max_entries=1000, max_bytes=10**6)
    assert {e["rollout"] for e in kept["entries"]} == set(range(6, 16)) and kept["dropped"] == 25
    kept = history.bound(record, max_rollouts=10, max_entries=12, max_bytes=10**6)
    assert len(kept["entries"]) == 12 and kept["entries"][-1] == record["entries"][-1] and kept["dropped"] == 63
    kept = history.bound(record, max_bytes=2000)
    assert history.size(kept) <= 2000 and kept["entries"][-1] == record["entries"][-1]
    assert kept["dropped"] + len(kept["entries"]) == 75


def test_long_texts_are_cut_and_the_default_bound_holds_a_busy_gate():
    long = change(reason="r" * 5000, by="b" * 300)
    record = history.observe_gate(history.empty(), {long.gate: long}, None, "now")
    entry = record["entries"][0]
    assert len(entry["reason"]) == history.MAX_TEXT and entry["reason"].endswith("…")
    for n in range(300):
        c = change(reason="x" * 200, at=f"{10 + n // 60:02d}:{n % 60:02d}")
        record = history.bound(history.observe_gate(record, {c.gate: c}, None, "now"))
    assert history.size(record) <= history.MAX_BYTES and len(record["entries"]) <= history.MAX_ENTRIES
    assert len(json.dumps(record)) > history.MAX_BYTES // 2  # the bound is used, not left empty


def test_an_unreadable_or_newer_record_starts_over_counting_what_it_had():
    assert history.parse(None) == history.empty()
    assert history.parse({"version": 2, "entries": [{}, {}]}) == {**history.empty(), "dropped": 2}
    assert history.parse({"version": 1, "entries": [{"rollout": "x"}, {"rollout": 1, "kind": "phase"}]})["dropped"] == 1


def test_group_by_rollout_and_the_last_n():
    record = run([(canary("Waiting"), []), (canary("Succeeded", since="t2", promoted="True"), [])])
    record = history.observe_canary(record, canary("Progressing", since="t3"), "now")
    groups = history.group(record)
    assert [(g.number, g.result, g.started) for g in groups] == [(1, "Succeeded", T0), (2, "Progressing", "t3")]
    assert [g.number for g in history.group(record, last=1)] == [2]


def test_an_older_view_folded_into_a_newer_record_adds_nothing_and_ends_nothing():
    """Two replicas: one wrote the record from a newer view; the other folds its older one into it."""
    approval, later = change(scope="step"), change("rollback", by="carol", at="10:05")
    newer = history.empty()
    for c, live in [
        (canary("WaitingPromotion"), {approval.gate: approval}),
        (canary("WaitingPromotion"), {approval.gate: approval, later.gate: later}),
        (canary("Promoting"), {later.gate: later}),
    ]:
        newer = history.observe_gate(history.observe_canary(newer, c, "now"), live, c, "now")
    old_canary, old_live = canary("Progressing"), {approval.gate: approval}  # before both
    folded = history.observe_canary(newer, old_canary, "now")
    folded = history.observe_gate(folded, old_live, old_canary, "now", final=False)
    assert folded == newer  # no Progressing again, the approval not set again, "later" not ended
    assert (
        history.observe_canary(newer, canary("Succeeded", since="2026-11-22T08:00:00Z", promoted="True"), "x") == newer
    )
