"""The live view's pure parts: the frame (snapshot, keys, now, width -> lines), the key map, the
workload facts and the next-check estimate. What a person reads, as text."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers.cli import NOW

from canarygate.model import parse_canary, parse_canarygate
from kubectl_gate import live
from kubectl_gate.live_loop import split_keys
from kubectl_gate.views import build_view

T = "%Y-%m-%dT%H:%M:%SZ"


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime(T)


def view(phase="WaitingPromotion", *, weight=0, calls=None, transition_ago=25.0, declared="closed", status=None):
    gate = parse_canarygate(
        {
            "metadata": {"name": "demo", "namespace": "demo-ns"},
            "spec": {"confirm-promotion": declared, "target": {"namespace": "demo-ns", "name": "demo"}},
            "status": {"calls": calls or {}, **(status or {})},
        }
    )
    canary = parse_canary(
        {
            "metadata": {"name": "demo", "namespace": "demo-ns"},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "demo"},
                "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 40, "stepWeight": 10},
            },
            "status": {
                "phase": phase,
                "canaryWeight": weight,
                "failedChecks": 0,
                "lastTransitionTime": stamp(transition_ago),
                "conditions": [{"type": "Promoted", "status": "Unknown", "lastTransitionTime": "2026-11-22T09:50:00Z"}],
            },
        }
    )
    return build_view(gate, canary, now=NOW)


def deployment(image: str, ready: int, replicas: int | None = 2) -> dict:
    spec = {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"spec": spec, "status": {"readyReplicas": ready}}


WORKLOADS = (
    live.workload(deployment("podinfo:2", 1), role="canary", name="demo"),
    live.workload(deployment("podinfo:1", 2), role="primary", name="demo-primary"),
)
CALLS = {
    "confirm-promotion": {"at": stamp(3), "answer": 403, "canary": "demo-ns/demo"},
    "rollout": {"at": stamp(3), "answer": 200, "canary": "demo-ns/demo"},
}


def snapshot(**kw) -> live.Snapshot:
    base = {"view": view(calls=CALLS), "workloads": WORKLOADS, "read_at": NOW - timedelta(seconds=2)}
    return live.Snapshot(**{**base, **kw})


def test_the_frame_says_what_is_being_approved():
    lines = live.frame(snapshot(), live.Keys(), NOW, 100)
    text = "\n".join(lines)
    assert lines[0] == "updated 2s ago · canarygate/demo -n demo-ns"
    # NB: Flagger's status reads 0 at WaitingPromotion; the canary holds the max weight
    assert "Canary    demo  ◷ WaitingPromotion" in lines
    assert "Weight    40/40  failed checks 0/2  (at max weight; status.canaryWeight reads 0)" in lines
    assert "Held at   confirm-promotion (declared): press p, or kubectl gate promote demo -n demo-ns" in lines
    assert "canary   demo          1/2    podinfo:2" in text
    assert "primary  demo-primary  2/2    podinfo:1" in text
    assert any(
        line.startswith("confirm-promotion") and "◷ closed, holding" in line and "403  3s ago" in line for line in lines
    )
    assert any(line.startswith("rollout ") and "200  3s ago" in line for line in lines)
    # the last call 3 s ago is later than the transition 25 s ago: due at +10 s from that call
    assert "Next check  in 7s (every 10s)" in lines
    assert lines[-1] == live.KEYS_LINE


def test_ages_move_with_now_alone():
    snap = snapshot()
    later = live.frame(snap, live.Keys(), NOW + timedelta(seconds=5), 100)
    assert later[0].startswith("updated 7s ago ·")
    assert any("403  8s ago" in line for line in later)
    assert "Next check  in 2s (every 10s)" in later


def test_an_outage_keeps_the_last_state_and_says_reconnecting():
    snap = snapshot(error="cannot reach the API server at https://127.0.0.1:6443", failing_since=NOW)
    lines = live.frame(snap, live.Keys(), NOW + timedelta(seconds=10), 200)
    assert lines[0] == (
        "reconnecting… last update 12s ago · canarygate/demo -n demo-ns · "
        "cannot reach the API server at https://127.0.0.1:6443"
    )
    assert "Weight    40/40  failed checks 0/2  (at max weight; status.canaryWeight reads 0)" in lines


def test_before_the_first_answer_and_after_a_deletion():
    first = live.frame(live.Snapshot(), live.Keys(), NOW, 80, options=live.Options(name="demo", namespace="ns"))
    assert first[0] == "connecting… · canarygate/demo -n ns"
    gone = live.frame(snapshot(deleted=True), live.Keys(), NOW, 80)
    assert gone[0] == "deleted · canarygate/demo -n demo-ns"


@pytest.mark.parametrize("width", [60, 40, 12])
def test_every_line_fits_the_width_cut_with_an_ellipsis(width):
    lines = live.frame(snapshot(), live.Keys(), NOW, width)
    assert all(live.cells(line) <= width for line in lines)
    assert any(line.endswith("…") and live.cells(line) == width for line in lines)
    wide = live.frame(snapshot(), live.Keys(), NOW, 300)
    assert len(lines) == len(wide)  # cut, never wrapped onto more lines


def test_a_narrow_gate_table_drops_reason_by_and_source_before_the_last_call():
    full = live.frame(snapshot(), live.Keys(), NOW, 100)
    assert "GATE                      STATE              LAST CALL    SOURCE    BY  REASON" in full
    narrow = live.frame(snapshot(), live.Keys(), NOW, 60)
    assert "GATE                      STATE              LAST CALL" in narrow
    assert "confirm-promotion         ◷ closed, holding  403  3s ago" in narrow


def test_fit_counts_wide_characters_and_drops_control_characters():
    assert live.fit("ab\tc\x1b[2J", 80) == "ab c [2J"
    assert live.fit("审批审批", 5) == "审批…"
    assert live.cells(live.fit("审批审批", 5)) == 5
    assert live.fit("short", 5) == "short"


def test_a_short_terminal_keeps_the_key_line_and_the_prompt():
    keys = live.Keys(mode=live.REASON, verb="promote", text="CAB")
    lines = live.frame(snapshot(), keys, NOW, 100, height=8)
    assert len(lines) == 8
    assert lines[-2] == live.KEYS_LINE
    assert lines[-1] == "reason (Enter sends, Esc cancels): CAB_"


def test_ascii_terminals_get_ascii_icons():
    lines = live.frame(snapshot(), live.Keys(), NOW, 100, options=live.Options(unicode=False))
    assert "Canary    demo  ~ WaitingPromotion" in lines
    assert all(line.isascii() for line in lines if not line.startswith("updated"))


def test_no_rollout_and_no_canary():
    done = live.frame(snapshot(view=view("Succeeded", declared="closed")), live.Keys(), NOW, 100)
    assert "Held at   - (no rollout in progress)" in done
    gate = parse_canarygate({"metadata": {"name": "demo", "namespace": "ns"}, "spec": {}})
    none = live.frame(live.Snapshot(view=build_view(gate, None), read_at=NOW), live.Keys(), NOW, 120)
    assert "Canary    ns/demo: no Flagger Canary (kubectl gate apply -f <canarygate.yaml> creates it)" in none


def test_a_failed_rollout_says_why():
    failure = {"message": "Rolling back demo.demo-ns failed checks threshold reached 2", "check": "rollout"}
    lines = live.frame(snapshot(view=view("Failed", status={"failure": failure})), live.Keys(), NOW, 120)
    assert "Canary    demo  ✖ Failed" in lines
    assert (
        "Rolled back  Rolling back demo.demo-ns failed checks threshold reached 2 (last failed check: rollout)" in lines
    )


def test_a_gate_whose_state_cannot_be_read_is_named():
    gate = parse_canarygate(
        {
            "metadata": {"name": "demo", "namespace": "ns", "annotations": {"gate.piggysec.com/rollout": "{oops"}},
            "spec": {},
        }
    )
    lines = live.frame(live.Snapshot(view=build_view(gate, None), read_at=NOW), live.Keys(), NOW, 200)
    assert any(line.startswith("Problem   gate rollout: state unknown (the sidecar answers 503): ") for line in lines)
    assert any(line.startswith("rollout") and "⚠ unknown" in line for line in lines)


def test_a_gate_filter_shows_that_gate_only():
    lines = live.frame(snapshot(), live.Keys(), NOW, 100, options=live.Options(gate_filter="rollback"))
    rows = [line for line in lines if line.split() and line.split()[0] in live.gate_names.GATES]
    assert [r.split()[0] for r in rows] == ["rollback"]


# -- keys -----------------------------------------------------------------------------------------


def typed(keys: live.Keys, *presses: str, warn=None):
    action = None
    for key in presses:
        keys, action = live.press(keys, key, warn=warn)
    return keys, action


def test_promote_needs_y_then_a_reason_then_enter():
    keys, action = typed(live.Keys(), "p")
    assert action is None and keys.mode == live.CONFIRM
    frame = live.frame(snapshot(), keys, NOW, 100)
    assert frame[-1] == "promote canarygate/demo (opens confirm-promotion)? [y/N]"
    keys, action = typed(keys, "y", "C", "A", "B", "X", live.BACKSPACE, "-", "1")
    assert action is None and keys.mode == live.REASON and keys.text == "CAB-1"
    keys, action = typed(keys, live.ENTER)
    assert action == live.Action("promote", "", "CAB-1")
    assert live.frame(snapshot(), keys, NOW, 100)[-1] == "promote…"
    keys = live.done(keys, "canarygate/demo promoted: confirm-promotion opened for this promotion")
    assert live.frame(snapshot(), keys, NOW, 100)[-1] == (
        "canarygate/demo promoted: confirm-promotion opened for this promotion"
    )


@pytest.mark.parametrize("answer", ["n", "N", live.ENTER, "x", live.ESC])
def test_anything_but_y_cancels(answer):
    keys, action = typed(live.Keys(), "a", answer)
    assert action is None and keys.mode == live.NORMAL and keys.message == "abort: cancelled"


def test_esc_at_the_reason_cancels():
    keys, action = typed(live.Keys(), "a", "y", "o", "k", live.ESC)
    assert action is None and keys.message == "abort: cancelled"


def test_open_asks_which_gate():
    keys, _ = typed(live.Keys(), "o")
    lines = live.frame(snapshot(), keys, NOW, 100)
    assert "open which gate of canarygate/demo? (1-7, anything else cancels)" in lines
    assert "  5 confirm-promotion (closed)" in lines
    keys, action = typed(keys, "5", "y", "o", "k", live.ENTER)
    assert action == live.Action("open", "confirm-promotion", "ok")
    keys, action = typed(live.Keys(), "o", "9")
    assert action is None and keys.message == "open: cancelled"


def test_closing_a_check_gate_says_so_on_the_confirmation_line():
    warn = live.close_warnings(view("Progressing", weight=10), lambda v, g: f"closing {g} is not a pause\nmore")
    keys, _ = typed(live.Keys(), "c", "3", warn=warn)
    lines = live.frame(snapshot(), keys, NOW, 100)
    assert lines[-2:] == ["closing rollout is not a pause", "close rollout canarygate/demo? [y/N]"]


def test_q_quits_and_help_toggles():
    assert typed(live.Keys(), "q")[1] == live.Action("quit")
    keys, _ = typed(live.Keys(), "?")
    lines = live.frame(snapshot(), keys, NOW, 120)
    assert live.HELP_LINES[0] in lines and live.KEYS_LINE not in lines
    assert not typed(keys, "?")[0].help
    # q inside a prompt is text, not quit
    keys, action = typed(live.Keys(), "p", "y", "q")
    assert action is None and keys.text == "q"


def test_keys_from_the_terminal_drop_escape_sequences():
    assert split_keys("p\x1b[Ay\x1bOB\r") == ["p", "y", "\r"]
    assert split_keys("\x1b") == ["\x1b"]


# -- facts ----------------------------------------------------------------------------------------


def test_workload_facts():
    assert live.workload(None, role="primary", name="demo-primary") == live.Workload(
        "primary", "demo-primary", exists=False
    )
    two = {
        "spec": {"template": {"spec": {"containers": [{"image": "a:1"}, {"image": "sidecar:2"}]}}},
        "status": {},
    }
    assert live.workload(two, role="canary", name="demo") == live.Workload(
        "canary", "demo", images=("a:1", "sidecar:2"), ready=0, desired=1
    )


def test_next_check_rolls_forward_by_whole_intervals():
    v = view(transition_ago=35.0)
    assert live.next_check(v, NOW) == NOW + timedelta(seconds=5)
    assert live.next_check(view(transition_ago=0.0), NOW) == NOW + timedelta(seconds=10)


# -- the terminal ---------------------------------------------------------------------------------


def test_the_terminal_is_restored_when_the_view_fails():
    import os
    import pty
    import select
    import termios

    from kubectl_gate.live_loop import ENTER_SCREEN, LEAVE_SCREEN, Screen

    master, slave = pty.openpty()
    try:
        before = termios.tcgetattr(slave)
        with (
            os.fdopen(os.dup(slave), "w") as out,
            pytest.raises(RuntimeError),
            Screen(out, slave, color=False) as screen,
        ):
            assert not termios.tcgetattr(slave)[3] & termios.ICANON  # keys arrive one by one
            screen.draw(["updated 1s ago", "x" * 20], 20, alarm=False)
            raise RuntimeError("boom")
        assert termios.tcgetattr(slave) == before
        written = b""
        while select.select([master], [], [], 0.2)[0]:
            written += os.read(master, 4096)
        written = written.decode()
        assert written.startswith(ENTER_SCREEN) and written.endswith(LEAVE_SCREEN)
        # a short line is erased to its end; a full-width one is not (that would erase its last cell)
        # NB: the pty's output processing turns \n into \r\n
        assert "\x1b[Hupdated 1s ago\x1b[K\r\r\n" + "x" * 20 + "\x1b[J" in written
    finally:
        os.close(master)
        os.close(slave)
