"""The live view of ``kubectl gate show NAME --watch``: pure parts only.

* :func:`frame`: (snapshot, keys state, now, width, height) -> the screen's lines, each at most
  ``width`` columns (longer ones end in an ellipsis; nothing wraps).
* :func:`press`: (keys state, key) -> (new keys state, the action to run, if any): the key map,
  with its confirmation line (y/N) and reason prompt before anything acts.
* :func:`workload`, :func:`next_check`: the facts shown beside the gates, from API objects.

The terminal loop (:mod:`kubectl_gate.live_loop`) reads the API, the keys and the clock; nothing
here does I/O, so every screen can be tested as text.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from canarygate import durations, hooks
from canarygate import gates as gate_names
from canarygate.calls import Call, interval_seconds, last_call
from canarygate.diagnosis import effective_weight, recommended_command
from canarygate.times import parse_time
from kubectl_gate.views import GateView, not_ready_text

ELLIPSIS = "…"
KEYS_LINE = "p promote · a abort · o open · c close · ? help · q quit"
HELP_LINES = (
    "p  promote: open the gate holding the rollout for one step (kubectl gate promote)",
    "a  abort: roll the rollout back on Flagger's next check (kubectl gate abort)",
    "o  open a gate for this rollout; c  close one (kubectl gate open|close GATE)",
    "each asks y/N, then a reason (recorded in the annotation and the Event); Esc cancels",
    "q or Ctrl-C quits; ? hides this help",
)
#: The verbs a key runs, and the words of their confirmation line.
VERBS = {"p": "promote", "a": "abort", "o": "open", "c": "close"}


# -- what is shown --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A Deployment a Canary drives, as the view shows it."""

    role: str  # "canary" (the target, the new revision) or "primary" (what serves now)
    name: str
    images: tuple[str, ...] = ()
    ready: int = 0
    desired: int = 0
    exists: bool = True


def workload(deployment: Mapping[str, Any] | None, *, role: str, name: str) -> Workload:
    """Images and ready/desired replicas of a Deployment (None: it does not exist)."""
    if deployment is None:
        return Workload(role, name, exists=False)
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or ()
    images = tuple(str(c.get("image", "")) for c in containers if isinstance(c, Mapping))
    desired = spec.get("replicas")
    return Workload(
        role,
        name,
        images=images,
        ready=_int(status.get("readyReplicas")),
        desired=1 if desired is None else _int(desired),  # NB: Kubernetes' default for spec.replicas
    )


def workload_names(view: GateView) -> list[tuple[str, str]]:
    """(role, Deployment name) of the canary and the primary; empty when the Canary targets no Deployment."""
    if view.canary is None:
        return []
    ref = (view.canary.raw.get("spec") or {}).get("targetRef") or {}
    if ref.get("kind", "Deployment") != "Deployment" or not ref.get("name"):
        return []
    return [("canary", ref["name"]), ("primary", f"{ref['name']}-primary")]


@dataclass(frozen=True)
class Snapshot:
    """What the loop last read, and how reading goes.

    ``read_at`` is when the API last answered (None before the first answer); ``error`` the last
    failure to read, cleared by the next success; ``failing_since`` when failures started."""

    view: GateView | None = None
    workloads: tuple[Workload, ...] = ()
    read_at: datetime | None = None
    error: str = ""
    failing_since: datetime | None = None
    deleted: bool = False


def next_check(view: GateView, now: datetime) -> datetime | None:
    """When Flagger's next check of the Canary is due: its last transition or the sidecar's last
    recorded call for it, whichever is later, plus whole analysis intervals past ``now``.

    An estimate: Flagger ticks every interval from its own start, and the sidecar records a call's
    time only when the answer changes or once a minute (canarygate.calls)."""
    canary = view.canary
    if canary is None:
        return None
    interval = interval_seconds(canary.interval)
    moments = [parse_time(canary.last_transition_time)]
    recorded = last_call(view.calls, canary.ref)
    if recorded is not None:
        moments.append(recorded.at)
    known = [m for m in moments if m is not None]
    if not known:
        return None
    base = max(known)
    steps = max(1, math.ceil((now - base).total_seconds() / interval))
    return base + timedelta(seconds=steps * interval)


# -- keys -----------------------------------------------------------------------------------------

NORMAL, CHOOSE, CONFIRM, REASON, BUSY = "normal", "choose", "confirm", "reason", "busy"
ESC, ENTER, BACKSPACE, CTRL_U = "\x1b", "\r", "\x7f", "\x15"


@dataclass(frozen=True)
class Keys:
    """The key map's state: which prompt is open, what it is about, the text typed so far, the last
    action's outcome (``message``) and whether the help is shown."""

    mode: str = NORMAL
    verb: str = ""
    gate: str = ""
    text: str = ""
    #: Said on the confirmation line before "[y/N]" (e.g. that closing a check gate fails checks).
    warning: str = ""
    message: str = ""
    help: bool = False


@dataclass(frozen=True)
class Action:
    """What a confirmed key asks for: ``verb`` (promote, abort, open, close, quit), the gate for
    open/close, the reason typed."""

    verb: str
    gate: str = ""
    reason: str = ""


def press(keys: Keys, key: str, *, warn: Mapping[tuple[str, str], str] | None = None) -> tuple[Keys, Action | None]:
    """The next state after ``key``, and the action to run now (None: nothing yet).

    ``warn`` maps (verb, gate) to a warning said on the confirmation line (a close that fails checks).
    Nothing acts without "y" on the confirmation line and Enter on the reason line; Esc cancels
    either, as does anything but y/Y at the confirmation."""
    warn = warn or {}
    if keys.mode == BUSY:
        return keys, None
    if keys.mode == NORMAL:
        if key in ("q", "Q"):
            return keys, Action("quit")
        if key == "?":
            return replace(keys, help=not keys.help), None
        if key in ("p", "a"):
            verb = VERBS[key]
            return Keys(CONFIRM, verb=verb, warning=warn.get((verb, ""), ""), help=keys.help), None
        if key in ("o", "c"):
            return Keys(CHOOSE, verb=VERBS[key], help=keys.help), None
        if key == ESC:
            return replace(keys, message=""), None
        return keys, None
    if keys.mode == CHOOSE:
        if key.isdigit() and 1 <= int(key) <= len(gate_names.GATES):
            gate = gate_names.GATES[int(key) - 1]
            return replace(keys, mode=CONFIRM, gate=gate, warning=warn.get((keys.verb, gate), "")), None
        return Keys(message=f"{keys.verb}: cancelled", help=keys.help), None
    if keys.mode == CONFIRM:
        if key in ("y", "Y"):
            return replace(keys, mode=REASON, text=""), None
        return Keys(message=f"{keys.verb}: cancelled", help=keys.help), None
    # REASON
    if key == ESC:
        return Keys(message=f"{keys.verb}: cancelled", help=keys.help), None
    if key in (ENTER, "\n"):
        action = Action(keys.verb, keys.gate, keys.text.strip())
        return replace(keys, mode=BUSY, message=""), action
    if key in (BACKSPACE, "\b"):
        return replace(keys, text=keys.text[:-1]), None
    if key == CTRL_U:
        return replace(keys, text=""), None
    if key.isprintable():
        return replace(keys, text=keys.text + key), None
    return keys, None


def done(keys: Keys, message: str) -> Keys:
    """Back to normal after an action, its outcome shown."""
    return Keys(message=message, help=keys.help)


# -- the frame ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How to draw: Unicode icons or ASCII, which gate only (``show all|GATE``)."""

    unicode: bool = True
    gate_filter: str | None = None
    name: str = ""
    namespace: str = ""


@dataclass
class _Lines:
    width: int
    lines: list[str] = field(default_factory=list)

    def add(self, text: str = "") -> None:
        for line in text.split("\n"):
            self.lines.append(fit(line, self.width))


def frame(
    snap: Snapshot,
    keys: Keys,
    now: datetime,
    width: int,
    height: int | None = None,
    options: Options = Options(),
) -> list[str]:
    """The screen: header, the rollout, its workloads, the gates, the last event, the key line and the
    prompt. Every line fits ``width``; with ``height``, the body's end is cut so the key line and prompt stay."""
    out = _Lines(max(1, width))
    out.add(header(snap, now, options))
    view = snap.view
    if view is None:
        out.add("")
        out.add("waiting for the first answer from the API server…" if not snap.error else f"cannot read: {snap.error}")
    else:
        body(out, view, snap, now, options)
    tail = _Lines(out.width)
    tail.add("─" * out.width if options.unicode else "-" * out.width)
    if keys.help:
        for line in HELP_LINES:
            tail.add(line)
    else:
        tail.add(KEYS_LINE if options.unicode else KEYS_LINE.replace("·", "|"))
    for line in prompt(keys, view):
        tail.add(line)
    lines = out.lines
    if height is not None and len(lines) + len(tail.lines) > height:
        keep = max(1, height - len(tail.lines))
        lines = lines[:keep]
    return (lines + tail.lines)[: height if height is not None else None]


def header(snap: Snapshot, now: datetime, options: Options) -> str:
    """How fresh the screen is (first, so a narrow terminal keeps it), then which CanaryGate."""
    name = options.name or (snap.view.gate.name if snap.view else "")
    namespace = options.namespace or (snap.view.gate.namespace if snap.view else "")
    which = f"canarygate/{name} -n {namespace}"
    if snap.deleted:
        return f"deleted · {which}"
    if snap.error and snap.read_at is not None:
        return f"reconnecting{ELLIPSIS} last update {seconds(now, snap.read_at)}s ago · {which} · {snap.error}"
    if snap.error:
        return f"reconnecting{ELLIPSIS} · {which} · {snap.error}"
    if snap.read_at is None:
        return f"connecting{ELLIPSIS} · {which}"
    return f"updated {seconds(now, snap.read_at)}s ago · {which}"


def body(out: _Lines, view: GateView, snap: Snapshot, now: datetime, options: Options) -> None:
    canary = view.canary
    out.add("")
    if canary is None:
        target = f"{view.gate.target.namespace}/{view.gate.target.name}"
        out.add(f"Canary    {target}: no Flagger Canary (kubectl gate apply -f <canarygate.yaml> creates it)")
    else:
        icon = _icon(options, _phase_kind(canary.phase))
        weight = effective_weight(canary)
        ref = canary.name if canary.namespace == view.gate.namespace else canary.ref
        out.add(f"Canary    {ref}  {icon} {canary.phase or 'Unknown'}")
        held = (
            f"  (at max weight; status.canaryWeight reads {canary.canary_weight})"
            if weight != canary.canary_weight
            else ""
        )
        out.add(
            f"Weight    {weight}/{canary.max_weight}  failed checks {canary.failed_checks}/{canary.threshold}{held}"
        )
        out.add(hold_line(view))
        failure = view.gate.status.get("failure") if canary.phase == "Failed" else None
        if isinstance(failure, Mapping) and failure.get("message"):
            check = f" (last failed check: {failure['check']})" if failure.get("check") else ""
            out.add(f"Rolled back  {failure['message']}{check}")
        for text in not_ready_text(view, now):
            out.add(f"Not ready {text}")
        out.add(check_line(view, now))
    for decision in view.decisions.values():
        if not decision.known:
            out.add(f"Problem   gate {decision.gate}: state unknown (the sidecar answers 503): {decision.problem}")
    if snap.workloads:
        out.add("")
        rows = [["", "DEPLOYMENT", "READY", "IMAGE"]]
        for w in snap.workloads:
            ready = f"{w.ready}/{w.desired}" if w.exists else "-"
            rows.append([w.role, w.name if w.exists else f"{w.name} (missing)", ready, ", ".join(w.images) or "-"])
        for line in columns(rows):
            out.add(line)
    out.add("")
    rows = [["GATE", "STATE", "LAST CALL", "SOURCE", "BY", "REASON"]]
    for decision in view.decisions.values():
        if options.gate_filter and decision.gate != options.gate_filter:
            continue
        rows.append(
            [
                decision.gate,
                state_text(view, decision.gate, options),
                call_text(view.calls.get(decision.gate), now),
                decision.source,
                decision.set_by or "",
                decision.reason or "",
            ]
        )
    for line in narrowed(rows, out.width, keep=3):
        out.add(line)
    event = last_event(view)
    if event:
        out.add("")
        out.add(f"Last event  {event}")


def hold_line(view: GateView) -> str:
    canary = view.canary
    gate = view.gate
    if view.holding:
        return (
            f"Held at   {view.holding} ({view.decisions[view.holding].source}): "
            f"{'press p, or ' if view.holding not in hooks.CHECK_GATES else ''}"
            f"{recommended_command(view.holding, gate.name, gate.namespace)}"
        )
    if view.failing and canary is not None:
        return (
            f"Failing   {view.failing} is closed: each check fails "
            f"({canary.failed_checks}/{canary.threshold}, rollback at {canary.threshold})"
        )
    if view.stuck is not None:
        return f"Held at   {view.stuck.message}"
    if canary is not None and canary.active:
        return "Held at   -" + (" (not by a gate: see Not ready)" if view.not_ready else "")
    return "Held at   - (no rollout in progress)"


def check_line(view: GateView, now: datetime) -> str:
    interval = (view.canary.interval if view.canary is not None else "") or "1m"
    due = next_check(view, now)
    if due is None:
        return f"Next check  unknown (every {interval})"
    return f"Next check  in {seconds(due, now)}s (every {interval})"


def state_text(view: GateView, gate: str, options: Options) -> str:
    decision = view.decisions[gate]
    if not decision.known:
        return _icon(options, "warn") + " unknown"
    if gate == gate_names.ROLLBACK:
        return _icon(options, "warn") + " opened (armed)" if decision.opened else _icon(options, "idle") + " closed"
    if decision.opened:
        return _icon(options, "ok") + " opened"
    if gate == view.failing and view.canary is not None:
        return f"{_icon(options, 'bad')} closed, failing {view.canary.failed_checks}/{view.canary.threshold}"
    if gate == view.holding:
        return _icon(options, "wait") + " closed, holding"
    return _icon(options, "bad") + " closed"


def call_text(call: Call | None, now: datetime) -> str:
    """``403 4s ago``: what the sidecar last answered Flagger for this hook, and when."""
    if call is None:
        return "-"
    return f"{call.answer} {age(call.at, now):>3} ago"  # NB: aligned, so the columns keep still as ages move


def last_event(view: GateView) -> str:
    """The newer of the event webhook's last event (status.lastEvent) and Flagger's last Kubernetes Event."""
    streamed = view.gate.status.get("lastEvent")
    event = view.canary_event
    kube_time = str((event or {}).get("lastTimestamp") or (event or {}).get("eventTime") or "")
    if isinstance(streamed, Mapping) and streamed.get("message") and str(streamed.get("time", "")) > kube_time:
        return str(streamed["message"])
    if event is not None:
        return str(event.get("message", ""))
    return ""


def prompt(keys: Keys, view: GateView | None) -> list[str]:
    name = view.gate.name if view else ""
    if keys.mode == CHOOSE:
        lines = [f"{keys.verb} which gate of canarygate/{name}? (1-7, anything else cancels)"]
        for i, gate in enumerate(gate_names.GATES, 1):
            state = ""
            if view is not None and gate in view.decisions:
                d = view.decisions[gate]
                state = f" ({d.state if d.known else 'unknown'})"
            lines.append(f"  {i} {gate}{state}")
        return lines
    if keys.mode == CONFIRM:
        what = f"{keys.verb} {keys.gate}" if keys.gate else keys.verb
        opens = f" (opens {view.holding})" if keys.verb == "promote" and view is not None and view.holding else ""
        lines = keys.warning.splitlines() if keys.warning else []
        return [*lines, f"{what} canarygate/{name}{opens}? [y/N]"]
    if keys.mode == REASON:
        return [f"reason (Enter sends, Esc cancels): {keys.text}_"]
    if keys.mode == BUSY:
        return [f"{keys.verb}{ELLIPSIS}"]
    return keys.message.splitlines()[-3:] if keys.message else []


def close_warnings(view: GateView | None, refusal) -> dict[tuple[str, str], str]:
    """The confirmation line's warnings: closing a check gate during a rollout (``refusal`` is the
    close command's own text for it, kubectl_gate.commands.change.check_close_refusal)."""
    if view is None:
        return {}
    out = {}
    for gate in hooks.CHECK_GATES:
        text = refusal(view, gate)
        if text:
            out[("close", gate)] = text.split("\n", 1)[0]
    return out


# -- text helpers ---------------------------------------------------------------------------------


def _icon(options: Options, kind: str) -> str:
    from kubectl_gate.printing import ASCII_ICONS, ICONS

    return (ICONS if options.unicode else ASCII_ICONS)[kind]


def _phase_kind(phase: str) -> str:
    from kubectl_gate.printing import PHASE_KIND

    return PHASE_KIND.get(phase, "unknown")


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def seconds(later: datetime, earlier: datetime) -> int:
    return max(0, int((later - earlier).total_seconds()))


def age(moment: datetime, now: datetime) -> str:
    """kubectl's age: 45s, 12m, 5h, 3d (:func:`canarygate.durations.short_age`)."""
    return durations.short_age((now - moment).total_seconds())


def cells(text: str) -> int:
    """Terminal columns ``text`` takes (wide East Asian characters two, combining marks none)."""
    return sum(_char_cells(c) for c in text)


def _char_cells(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` columns: cut, ending in an ellipsis, when longer; tabs and
    control characters (which would move the cursor) are replaced by spaces."""
    text = "".join(c if c.isprintable() else " " for c in text.rstrip())
    if cells(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = _char_cells(c)
        if used + w > width - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + ELLIPSIS


def narrowed(rows: Sequence[Sequence[str]], width: int, *, keep: int) -> list[str]:
    """:func:`columns`, dropping the last columns (down to ``keep``) while the table is wider than
    ``width``, so what matters most stays readable on a narrow terminal; then cut by the caller."""
    count = len(rows[0])
    while True:
        lines = columns([row[:count] for row in rows])
        if count <= keep or max(cells(line) for line in lines) <= width:
            return lines
        count -= 1


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, trailing blanks dropped."""
    widths = [max(cells(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        parts = [str(v) + " " * (widths[i] - cells(str(v))) for i, v in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return lines
