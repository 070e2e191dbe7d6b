"""The Argo CD customizations of deploy/argocd/argocd-cm.yaml, run on Lua 5.1 as Argo CD runs them.

We test these aspects:

* the ConfigMap: built from the Lua sources, its keys named as Argo CD's settings parse them
  (resource.customizations.<type>.<group>_<kind>) for the CRD's group and kind, every action defined;
* the environment is Argo CD's (no string or math library, a safe os): a script needing more fails here;
* health: for CanaryGates in every state (no status, each phase, a holding gate, a failed rollout,
  a status written from an event carrying the phase before Waiting), the status and message;
* discovery: which actions are enabled in each state; a disabled action changes no gate's effective state;
* each action, in every state it is enabled in: the merge patch Argo CD would send touches only gate
  annotations; each annotation parses with canarygate.annotations into the intended live change, is
  byte for byte what LiveChange.encode() writes (the sidecar's conditional writes compare it), and
  names "argocd"; the gates changed are the ones the CLI's promote, promote --full, pause, resume
  and abort pick; the change holds for the rollout under way and ends with it (canarygate.rollouts);
* refusals: an action with nothing to act on fails with a message, changing nothing.
"""

from __future__ import annotations

import itertools
import time

import argocd_cm
import argocd_lua
import pytest
import states
import yaml

from canarygate import gates, rollouts, verbs
from canarygate.annotations import PREFIX, SCOPE_ROLLOUT, SCOPE_STEP, RolloutMark, parse_live_changes
from canarygate.model import parse_canary, parse_canarygate
from canarygate.resolution import LIVE, resolve_gates
from kubectl_gate.views import build_view

SCRIPTS = argocd_cm.scripts()
STATES = states.states()
BY_NAME = {s.name: s for s in STATES}
PAUSE_GATES = (gates.CONFIRM_TRAFFIC_INCREASE, gates.CONFIRM_PROMOTION)


def ids(state: states.State) -> str:
    return state.name


def run_action(action: str, live: dict) -> tuple[dict, dict]:
    """The patch Argo CD sends for ``action`` on ``live``, and the object once the API server applied it."""
    patch = argocd_lua.action_patch(SCRIPTS[action], live)
    return patch, argocd_lua.apply_merge_patch(live, patch)


def effective(gate_raw: dict, canary_raw: dict | None) -> dict[str, tuple[bool, bool]]:
    canary = parse_canary(canary_raw) if canary_raw else None
    return {name: (d.opened, d.known) for name, d in resolve_gates(parse_canarygate(gate_raw), canary=canary).items()}


# -- the ConfigMap ---------------------------------------------------------------------------------------
def test_the_configmap_is_built_from_the_lua_sources():
    assert argocd_cm.CONFIGMAP.read_text() == argocd_cm.build(), (
        "deploy/argocd/argocd-cm.yaml is stale: run python tests/argocd/argocd_cm.py"
    )


def test_the_configmap_keys_name_the_canarygate_kind_as_argocd_parses_them():
    cm = yaml.safe_load(argocd_cm.CONFIGMAP.read_text())
    crd = yaml.safe_load((argocd_cm.ROOT / "deploy" / "crd" / "canarygate.yaml").read_text())
    assert (cm["kind"], cm["metadata"]["name"], cm["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    group_kinds = set()
    for key in cm["data"]:
        # util/settings: SplitN(key, ".", 4) -> resource, customizations, <type>, <group>_<kind>
        prefix, customizations, kind_of, group_kind = key.split(".", 3)
        assert (prefix, customizations) == ("resource", "customizations") and kind_of in ("health", "actions")
        group, kind = group_kind.split("_")
        group_kinds.add(f"{group}/{kind}")
    assert group_kinds == {f"{crd['spec']['group']}/{crd['spec']['names']['kind']}"}
    actions = yaml.safe_load(cm["data"][argocd_cm.ACTIONS_KEY])
    assert [d["name"] for d in actions["definitions"]] == list(argocd_cm.ACTIONS)
    assert actions["discovery.lua"] == SCRIPTS["discovery"]
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {a: SCRIPTS[a] for a in argocd_cm.ACTIONS}
    assert cm["data"][argocd_cm.HEALTH_KEY] == SCRIPTS["health"]
    assert "mergeBuiltinActions" not in actions


def test_discovery_offers_every_defined_action_and_no_other():
    offered = argocd_lua.discovery(SCRIPTS["discovery"], BY_NAME["waiting at confirm-rollout"].gate)
    assert set(offered) == set(argocd_cm.ACTIONS)
    assert all(fields.get("displayName") and fields.get("iconClass") for fields in offered.values())


# -- the environment -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "script",
    [
        'return string.format("%d", 1)',
        'return ("abc"):sub(1, 1)',
        "return math.floor(1.5)",
        'return io.open("/etc/passwd")',
        'return os.getenv("HOME")',
        'return require("string")',
    ],
)
def test_the_harness_refuses_what_argocd_does_not_provide(script):
    with pytest.raises(argocd_lua.LuaFailure):
        argocd_lua.run(script, {})


def test_the_harness_provides_what_argocd_does():
    assert argocd_lua.run('return os.date("!%Y") .. table.concat({"a", "b"}, ",") .. #obj.x', {"x": [1, 2]}) == (
        time.strftime("%Y", time.gmtime()) + "a,b2"
    )
    assert argocd_lua.run('return require("os").time() > 0', {}) is True


def test_closed_gates_are_read_for_every_list_the_sidecar_can_write():
    script = SCRIPTS["discovery"].split("local view = rollout_view()")[0] + "return closed_gates(obj.text)"
    for size in range(len(gates.GATES) + 1):
        for subset in itertools.combinations(gates.GATES, size):
            found = argocd_lua.run(script, {"text": ",".join(subset)})
            assert set(found or {}) == set(subset) and all(v is True for v in (found or {}).values())
    for odd in ("rollout,confirm-rollout", "confirm-rollout,", "nonsense", " rollout"):
        assert argocd_lua.run(script, {"text": odd}) is None


# -- health ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", STATES, ids=ids)
def test_health(state):
    result = argocd_lua.health(SCRIPTS["health"], state.gate)
    assert result["status"] == state.health
    assert state.message in result["message"]


def test_a_held_rollout_says_how_to_let_it_on():
    message = argocd_lua.health(SCRIPTS["health"], BY_NAME["waiting for promotion"].gate)["message"]
    assert message.endswith("Run the promote action, or: kubectl gate promote demo -n demo-ns")
    paused = argocd_lua.health(SCRIPTS["health"], BY_NAME["paused"].gate)["message"]
    assert paused.endswith("Run the resume action, or: kubectl gate resume demo -n demo-ns")


@pytest.mark.parametrize(
    "status",
    [
        {"phase": 5, "holding": {"a": 1}, "closedGates": ["rollout"], "canaryWeight": "x", "lastEvent": "y"},
        {"phase": None, "target": 3},
        {"lastEvent": {}},
        "not an object",
        {"holding": "no-such-gate"},
    ],
)
def test_health_and_actions_survive_a_status_of_the_wrong_shape(status):
    gate = states.canarygate()
    gate["status"] = status
    assert argocd_lua.health(SCRIPTS["health"], gate)["status"] == "Healthy"
    offered = argocd_lua.discovery(SCRIPTS["discovery"], gate)
    assert not any(not fields.get("disabled") for fields in offered.values())
    for action in argocd_cm.ACTIONS:
        with pytest.raises(argocd_lua.LuaFailure):
            argocd_lua.action_patch(SCRIPTS[action], gate)


# -- discovery -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", STATES, ids=ids)
def test_discovery_enables_what_can_act(state):
    offered = argocd_lua.discovery(SCRIPTS["discovery"], state.gate)
    assert {name for name, fields in offered.items() if not fields.get("disabled")} == state.enabled


@pytest.mark.parametrize("state", STATES, ids=ids)
def test_a_disabled_action_changes_no_gate(state):
    before = effective(state.gate, state.canary)
    for action in set(argocd_cm.ACTIONS) - state.enabled:
        try:
            _, after = run_action(action, state.gate)
        except argocd_lua.LuaFailure:
            continue
        assert effective(after, state.canary) == before, action


# -- actions ---------------------------------------------------------------------------------------------
def enabled(action: str) -> list[states.State]:
    return [s for s in STATES if action in s.enabled]


def written(before: dict, patch: dict, after: dict) -> dict:
    """The live changes the patch wrote, checked for what every action must write."""
    assert set(patch) == {"metadata"} and set(patch["metadata"]) == {"annotations"}, patch
    assert all(key.startswith(PREFIX) for key in patch["metadata"]["annotations"])
    values = {k: v for k, v in patch["metadata"]["annotations"].items() if v is not None}
    live, invalid, problems = parse_live_changes(values)
    assert not invalid and not problems
    for change in live.values():
        assert change.encode() == values[change.key]  # the sidecar's JSON-patch tests compare this
        assert change.by == "argocd"
        assert change.rollout == RolloutMark(active=False, since="")
    # The rest of the object is as it was.
    assert {k: v for k, v in after.items() if k != "metadata"} == {k: v for k, v in before.items() if k != "metadata"}
    return live


def check_bound_to_this_rollout(change, canary_raw: dict) -> None:
    """The sidecar binds the change to the rollout under way; it ends when that rollout ends."""
    canary = parse_canary(canary_raw)
    assert rollouts.in_force(change, canary)
    bound = rollouts.binding_for(change, canary)
    assert bound is not None and bound.rollout == rollouts.mark_of(canary)
    ended = parse_canary(states.canary("Succeeded", since="2026-11-22T11:00:00Z"))
    assert not rollouts.in_force(bound, ended) and not rollouts.in_force(change, ended)


@pytest.mark.parametrize("state", enabled("promote"), ids=ids)
def test_promote_opens_the_holding_gate_for_one_step(state):
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch, after = run_action("promote", state.gate)
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    live = written(state.gate, patch, after)
    plan = verbs.promote(parse_canarygate(state.gate), parse_canary(state.canary))
    assert [c.gate for c in plan.changes] == list(live)
    (expected,) = live
    change = live[expected]
    assert (change.state, change.scope, change.reason) == (gates.OPENED, SCOPE_STEP, "Argo CD action promote")
    assert start <= change.at <= end
    decision = resolve_gates(parse_canarygate(after), canary=parse_canary(state.canary))[expected]
    assert decision.opened and decision.source == LIVE
    check_bound_to_this_rollout(change, state.canary)


@pytest.mark.parametrize("state", enabled("promote-full"), ids=ids)
def test_promote_full_opens_every_closed_progress_gate_for_this_rollout(state):
    patch, after = run_action("promote-full", state.gate)
    live = written(state.gate, patch, after)
    view = build_view(parse_canarygate(state.gate), parse_canary(state.canary))
    assert sorted(live, key=gates.GATES.index) == [g for g in gates.PROGRESS_GATES if not view.decisions[g].opened]
    assert {(c.state, c.scope) for c in live.values()} == {(gates.OPENED, SCOPE_ROLLOUT)}
    decisions = resolve_gates(parse_canarygate(after), canary=parse_canary(state.canary))
    assert all(decisions[g].opened for g in gates.PROGRESS_GATES)
    for change in live.values():
        check_bound_to_this_rollout(change, state.canary)


@pytest.mark.parametrize("state", enabled("pause"), ids=ids)
def test_pause_closes_the_confirm_gates_for_this_rollout(state):
    patch, after = run_action("pause", state.gate)
    live = written(state.gate, patch, after)
    assert set(live) == set(PAUSE_GATES)
    assert {(c.state, c.scope, c.reason) for c in live.values()} == {
        (gates.CLOSED, SCOPE_ROLLOUT, "Argo CD action pause")
    }
    decisions = resolve_gates(parse_canarygate(after), canary=parse_canary(state.canary))
    assert not any(decisions[g].opened for g in PAUSE_GATES)
    # The checks still pass: nothing is closed that Flagger counts as a failed check.
    assert decisions[gates.ROLLOUT].opened and decisions[gates.PRE_ROLLOUT].opened
    for change in live.values():
        check_bound_to_this_rollout(change, state.canary)


@pytest.mark.parametrize("state", enabled("resume"), ids=ids)
def test_resume_removes_the_live_closures_of_the_confirm_gates(state):
    patch, after = run_action("resume", state.gate)
    written(state.gate, patch, after)
    view = build_view(parse_canarygate(state.gate), parse_canary(state.canary))
    expected = [g for g in PAUSE_GATES if view.decisions[g].source == LIVE and not view.decisions[g].opened]
    assert patch["metadata"]["annotations"] == {PREFIX + g: None for g in expected}
    decisions = resolve_gates(parse_canarygate(after), canary=parse_canary(state.canary))
    assert all(decisions[g].source != LIVE for g in expected)


def test_pause_then_resume_gives_the_declared_gates_back():
    state = BY_NAME["progressing"]
    _, paused = run_action("pause", state.gate)
    # The sidecar writes status from Flagger's next event: the rollout is now held.
    paused["status"] = states.sidecar_status(paused, state.canary)
    assert argocd_lua.health(SCRIPTS["health"], paused)["status"] == "Suspended"
    offered = argocd_lua.discovery(SCRIPTS["discovery"], paused)
    assert not offered["resume"].get("disabled") and offered["pause"]["disabled"]
    _, resumed = run_action("resume", paused)
    assert effective(resumed, state.canary) == effective(state.gate, state.canary)
    assert not any(k.startswith(PREFIX) for k in resumed["metadata"].get("annotations", {}))


@pytest.mark.parametrize("state", enabled("abort"), ids=ids)
def test_abort_opens_the_rollback_gate_and_while_waiting_confirm_rollout_for_one_step(state):
    patch, after = run_action("abort", state.gate)
    live = written(state.gate, patch, after)
    rollback = live[gates.ROLLBACK]
    assert (rollback.state, rollback.scope) == (gates.OPENED, SCOPE_ROLLOUT)
    waiting = parse_canary(state.canary).phase == "Waiting"  # what kubectl gate abort reads
    assert set(live) == ({gates.ROLLBACK, gates.CONFIRM_ROLLOUT} if waiting else {gates.ROLLBACK})
    if waiting:
        confirm = live[gates.CONFIRM_ROLLOUT]
        assert (confirm.state, confirm.scope) == (gates.OPENED, SCOPE_STEP)
    decisions = resolve_gates(parse_canarygate(after), canary=parse_canary(state.canary))
    assert decisions[gates.ROLLBACK].opened  # Flagger rolls back on its next check
    check_bound_to_this_rollout(rollback, state.canary)


# -- refusals --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "state", "message"),
    [
        (
            "promote",
            "progressing",
            "no gate holds the rollout of this CanaryGate (phase Progressing): nothing to promote",
        ),
        ("promote", "no status", "(no phase reported): nothing to promote"),
        ("promote-full", "succeeded", "no rollout in progress (phase Succeeded): nothing to promote"),
        ("promote-full", "progressing", "no progress gate of this CanaryGate is closed"),
        ("pause", "failed", "no rollout in progress (phase Failed): nothing to pause"),
        ("pause", "promoting", "the Canary is Promoting: a promotion under way cannot be paused"),
        ("resume", "waiting for promotion", "nothing to resume"),
        ("abort", "initialized", "no rollout in progress (phase Initialized): nothing to abort"),
        ("abort", "finalising", "the Canary is Finalising: abort cannot stop a promotion under way"),
    ],
)
def test_an_action_with_nothing_to_act_on_says_why(action, state, message):
    with pytest.raises(argocd_lua.LuaFailure) as failure:
        argocd_lua.action_patch(SCRIPTS[action], BY_NAME[state].gate)
    assert message in str(failure.value)
    assert "script:" not in str(failure.value)  # no Lua position in what the user reads
