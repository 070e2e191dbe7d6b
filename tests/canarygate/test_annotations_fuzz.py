"""Property-based tests of the live-state annotation decoder (issue 9: bad data is contained).

For any input, :func:`annotations.decode` returns a LiveChange or raises ValueError (never another
exception), and :func:`annotations.parse_live_changes` never raises: a value it cannot read makes
that gate invalid (unknown), and leaves the other gates' values as they decode alone.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canarygate import annotations, gates
from canarygate.annotations import LiveChange, RolloutMark

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(["state", "scope", "by", "at", "reason", "rollout", "active", "since", "revision"])
BODIES = st.dictionaries(
    FIELDS, JSON | st.sampled_from(["opened", "closed", "open", "step", "sticky", "rollout"]), max_size=7
)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(gate, value):
    try:
        return annotations.decode(gate, value)
    except ValueError as e:
        return e


@SETTINGS
@given(st.text(max_size=200) | st.binary(max_size=50).map(lambda b: b.decode("latin-1")))
def test_any_text_decodes_or_is_a_value_error(value):
    result = outcome("confirm-rollout", value)
    assert isinstance(result, (LiveChange, ValueError))


@SETTINGS
@given(BODIES)
def test_any_json_object_decodes_to_a_known_state_or_is_a_value_error(body):
    result = outcome("confirm-promotion", json.dumps(body))
    assert isinstance(result, (LiveChange, ValueError))
    if isinstance(result, LiveChange):
        assert result.state in (gates.OPENED, gates.CLOSED)
        assert result.scope in annotations.SCOPES
        assert all(isinstance(v, str) for v in (result.by, result.at, result.reason))
        assert len(result.encode().encode()) <= annotations.MAX_VALUE  # what we read, we can write back
        result.encode().encode("utf-8")  # and answer with


@SETTINGS
@given(
    st.sampled_from(gates.GATES),
    st.sampled_from(["opened", "closed"]),
    st.sampled_from(annotations.SCOPES),
    st.text(max_size=40),
    st.text(max_size=40),
    st.booleans(),
    st.text(max_size=30),
)
def test_what_the_cli_encodes_decodes_to_itself(gate, state, scope, by, reason, active, since):
    by, reason, since = (t.encode("utf-8", "replace").decode() for t in (by, reason, since))
    change = LiveChange(
        gate,
        state,
        scope,
        by,
        "2026-11-22T10:00:00Z",
        reason,
        RolloutMark(active=active, since=since) if scope != "sticky" else RolloutMark(),
    )
    assert annotations.decode(gate, change.encode()) == change


@SETTINGS
@given(st.integers(min_value=1, max_value=20_000), st.sampled_from(["[", '{"a":', '{"state":"opened","by":[']))
def test_nesting_at_any_depth_is_contained(depth, opener):
    closer = {"[": "]", '{"a":': "}", '{"state":"opened","by":[': "]"}[opener]
    value = opener * depth + "1" + closer * depth + ("}" if opener.startswith('{"state"') else "")
    result = outcome("rollout", value)
    assert isinstance(result, (LiveChange, ValueError))


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from([annotations.PREFIX + g for g in gates.GATES] + [annotations.PREFIX + "x", "other"]),
        st.text(max_size=60) | BODIES.map(json.dumps) | st.just("[" * 5000),
        max_size=8,
    )
)
def test_parse_live_changes_never_raises_and_keeps_each_gate_to_itself(values):
    live, invalid, problems = annotations.parse_live_changes(values)
    for key, value in values.items():
        gate = key[len(annotations.PREFIX) :] if key.startswith(annotations.PREFIX) else None
        if gate not in gates.GATES:
            assert gate not in live and gate not in invalid
            continue
        alone = outcome(gate, value)
        if isinstance(alone, LiveChange):
            assert live[gate] == alone and gate not in invalid
        else:
            assert gate in invalid and gate not in live and any(gate in p for p in problems)


def test_the_bounds():
    big = json.dumps({"state": "opened", "reason": "r" * annotations.MAX_VALUE})
    assert "KiB" in str(outcome("rollout", big))
    deep = "[" * 10_000 + "]" * 10_000
    assert str(outcome("rollout", deep)) == "nested too deep"
    assert "not a string" in str(outcome("rollout", {"state": "opened"}))
    assert "not valid Unicode" in str(outcome("rollout", '{"state":"opened","by":"\\udc80"}'))
