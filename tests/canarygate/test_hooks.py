"""The answer table (canarygate.hooks): one copy, the README and `explain` print it, and it says what
Flagger v1.44 does (checks fail on any non-2xx, confirm gates wait, rollback rolls back on success)."""

from __future__ import annotations

import pathlib

from canarygate import gates, hooks

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_holds_the_table_verbatim():
    assert hooks.markdown_table() in README.read_text()


def test_check_gates_fail_checks_and_confirm_gates_wait():
    assert hooks.CHECK_GATES == (gates.PRE_ROLLOUT, gates.ROLLOUT)
    for answer in ("403", "503", "timeout"):
        assert hooks.RULES[gates.ROLLOUT].effect(answer) == hooks.FAILED_CHECK
        assert hooks.RULES[gates.CONFIRM_PROMOTION].effect(answer) == hooks.WAIT
        assert hooks.RULES[gates.ROLLBACK].effect(answer) == hooks.NOTHING
    assert hooks.RULES[gates.ROLLBACK].effect("200") == hooks.ROLL_BACK


def test_unknown_state_never_fails_a_guarded_check_and_never_passes_a_confirm_gate():
    for hook in gates.GATES:
        guarded = hooks.unknown_status(hook, guarded_by_us=True)
        alone = hooks.unknown_status(hook, guarded_by_us=False)
        effect = hooks.RULES[hook].effect(str(guarded))
        assert effect not in (hooks.FAILED_CHECK, hooks.ROLL_BACK), hook
        if hook not in hooks.CHECK_GATES:
            assert guarded == alone == 503, hook
    assert hooks.unknown_status(gates.ROLLOUT, guarded_by_us=False) == 503


def test_guarded_needs_both_confirm_gates():
    assert hooks.guarded({gates.CONFIRM_TRAFFIC_INCREASE: True, gates.CONFIRM_PROMOTION: True})
    assert not hooks.guarded({gates.CONFIRM_TRAFFIC_INCREASE: True, gates.CONFIRM_PROMOTION: False})
    assert not hooks.guarded(None)
