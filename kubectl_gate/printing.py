"""Pure renderers: data in, ``str`` out. Colour and Unicode are parameters, time is ``now``.

Tables follow kubectl: upper-case headers, no borders, NAMESPACE first with ``-A``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click
from tabulate import tabulate

from canarygate import durations, gates, hooks, resolution
from canarygate.diagnosis import effective_weight, recommended_command
from canarygate.times import parse_time
from kubectl_gate.views import GateView, closed_text, event_time, failing_text, fix_command, not_ready_text

ICONS = {"ok": "✔", "bad": "✖", "wait": "◷", "run": "◌", "idle": "•", "warn": "⚠", "unknown": "?"}
ASCII_ICONS = {"ok": "+", "bad": "x", "wait": "~", "run": "*", "idle": "-", "warn": "!", "unknown": "?"}
COLORS = {
    "ok": "green",
    "bad": "red",
    "wait": "yellow",
    "run": "bright_blue",
    "idle": None,
    "warn": "red",
    "unknown": "yellow",
}

PHASE_KIND = {
    "Succeeded": "ok",
    "Failed": "bad",
    "Progressing": "run",
    "Promoting": "run",
    "Finalising": "run",
    "Waiting": "wait",
    "WaitingPromotion": "wait",
    "Initializing": "idle",
    "Initialized": "idle",
    "Terminating": "idle",
    "Terminated": "idle",
}


class Style:
    """How text is dressed: colour, Unicode or ASCII icons, and icons at all (``icons=False`` off a
    terminal, so that a table cell is one word and ``awk '{print $3}'`` finds its column)."""

    def __init__(self, *, color: bool = False, unicode: bool = True, icons: bool = True):
        self.color, self.unicode, self.icons = color, unicode, icons

    def icon(self, kind: str, text: str = "") -> str:
        mark = (ICONS if self.unicode else ASCII_ICONS)[kind]
        word = (f"{mark} {text}" if self.icons else text) if text else mark
        if self.color and COLORS[kind]:
            return click.style(word, fg=COLORS[kind])
        return word

    def bold(self, text: str) -> str:
        return click.style(text, bold=True) if self.color else text


#: The default style: no colour, Unicode icons.
PLAIN = Style()


def age(value: str, now: datetime) -> str:
    """kubectl-style age of an RFC 3339 time (:func:`canarygate.durations.short_age`); empty when unknown."""
    moment = parse_time(value)
    return "" if moment is None else durations.short_age((now - moment).total_seconds())


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, no_headers: bool = False) -> str:
    if no_headers:
        text = tabulate(rows, tablefmt="plain", disable_numparse=True) if rows else ""
    else:
        text = tabulate(rows, headers=list(headers), tablefmt="plain", disable_numparse=True)
    return "\n".join(line.rstrip() for line in text.splitlines())


def phase_text(view: GateView, style: Style) -> str:
    if view.canary is None:
        return style.icon("unknown", "no canary")
    phase = view.canary.phase or "Unknown"
    return style.icon(PHASE_KIND.get(phase, "unknown"), phase)


def held_text(view: GateView) -> str:
    """The HELD-AT cell of ``list`` (also the dashboard's): the holding gate, a failing check, or why it is stuck."""
    return view.holding or failing_text(view) or (view.stuck.short if view.stuck else "") or "-"


def list_table(
    views: Sequence[GateView],
    *,
    now: datetime,
    wide: bool = False,
    all_namespaces: bool = False,
    no_headers: bool = False,
    style: Style = PLAIN,
) -> str:
    """The ``kubectl gate list`` table."""
    headers = ["NAME", "TARGET", "PHASE", "WEIGHT", "HELD-AT", "CLOSED"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    if wide:
        headers += ["LIVE", "WEBHOOKS", "AGE"]
    rows = []
    for view in views:
        target = f"{view.gate.target.namespace}/{view.gate.target.name}"
        row = [view.gate.name, target, phase_text(view, style), view.weight, held_text(view), closed_text(view)]
        if all_namespaces:
            row.insert(0, view.gate.namespace)
        if wide:
            live = [d.gate for d in view.decisions.values() if d.source == resolution.LIVE]
            hooks = (
                "-"
                if view.coverage is None
                else ("ok" if not view.missing_hooks else f"missing {len(view.missing_hooks)}")
            )
            created = ((view.gate.raw.get("metadata") or {}).get("creationTimestamp")) or ""
            row += [",".join(live) or "-", hooks, age(created, now) or "-"]
        rows.append(row)
    return _table(headers, rows, no_headers=no_headers)


def gate_state_text(
    decision: resolution.Decision, holding: str | None, style: Style, view: GateView | None = None
) -> str:
    if not decision.known:
        return style.icon("warn", "unknown")
    if decision.gate == gates.ROLLBACK:
        return style.icon("warn", "opened (armed)") if decision.opened else style.icon("idle", "closed")
    if decision.opened:
        return style.icon("ok", "opened")
    if view is not None and decision.gate == view.failing:
        return style.icon("bad", "closed, " + failing_text(view).split(" ", 1)[1])
    if decision.gate == holding:
        return style.icon("wait", "closed, holding")
    return style.icon("bad", "closed")


def show_text(view: GateView, *, now: datetime, style: Style = PLAIN, cli_ns: str = "") -> str:
    """The ``kubectl gate show`` page."""
    gate, canary = view.gate, view.canary
    ns_flag = f" -n {gate.namespace}" if gate.namespace else ""
    lines = [
        f"Name:          {style.bold(gate.name)}",
        f"Namespace:     {gate.namespace}",
        f"Canary:        {gate.target.namespace}/{gate.target.name}",
        f"Phase:         {phase_text(view, style)}",
    ]
    if canary is not None:
        weight = effective_weight(canary)
        lines.append(
            f"Weight:        {weight}/{canary.max_weight}"
            + (
                f" (traffic held at max weight; Flagger's status.canaryWeight reads {canary.canary_weight} in "
                f"WaitingPromotion)"
                if weight != canary.canary_weight
                else ""
            )
        )
        lines.append(f"Failed checks: {canary.failed_checks}/{canary.threshold}")
        for text in not_ready_text(view, now):
            lines.append(f"Not ready:     {style.icon('warn', text)}")
        if view.holding:
            decision = view.decisions[view.holding]
            lines.append(
                f"Held at:       {style.icon('wait', view.holding)} ({decision.source}); "
                f"to go on: {recommended_command(view.holding, gate.name, gate.namespace)}"
            )
        elif view.failing:
            left = max(0, canary.threshold - canary.failed_checks)
            lines.append(
                f"Failing:       {style.icon('bad', failing_text(view))}: closed, so every check Flagger makes "
                f"fails; it rolls back at {canary.threshold} ({left} more); to stop that: "
                f"kubectl gate open {view.failing} {gate.name}{ns_flag} (to hold instead: kubectl gate pause "
                f"{gate.name}{ns_flag})"
            )
        elif view.stuck is not None:
            kind = "ok" if view.stuck.kind == "approved" else "warn"
            lines.append(f"Held at:       {style.icon(kind, view.stuck.message)}")
        elif canary.active:
            lines.append("Held at:       -" + (" (not by a gate: see Not ready)" if view.not_ready else ""))
        failure = gate.status.get("failure") if canary.phase == "Failed" else None
        if isinstance(failure, Mapping) and failure.get("message"):
            cause = str(failure["message"]) + (
                f" (last failed check: {failure['check']})" if failure.get("check") else ""
            )
            lines.append(f"Rolled back:   {style.icon('bad', cause)}")
            aborted = [e for e in view.gate_events if e.get("reason") == "Aborted"]
            if aborted and "manual webhook" in str(failure["message"]):
                lines.append(f"               by kubectl gate abort: {aborted[-1].get('message', '')}")
        if view.calls and canary.active:
            recent = sorted(view.calls.values(), key=lambda c: c.at, reverse=True)[:4]
            lines.append(
                "Sidecar calls: "
                + ", ".join(f"{c.hook} {c.answer} {age(c.at.strftime('%Y-%m-%dT%H:%M:%SZ'), now)} ago" for c in recent)
            )
        event = view.canary_event
        streamed = gate.status.get("lastEvent")
        # NB: Flagger's Kubernetes Events are throttled by client-go's correlator; the event webhook
        # stream the sidecar records is not: the newer of the two is shown.
        if (
            isinstance(streamed, Mapping)
            and streamed.get("message")
            and (event is None or str(streamed.get("time", "")) > event_time(event))
        ):
            when = age(str(streamed.get("time", "")), now)
            lines.append(
                f"Last event:    {streamed.get('message', '')} ({streamed.get('type') or 'Normal'}, "
                f"via the event webhook" + (f", {when} ago)" if when else ")")
            )
        elif event is not None:
            when = age(event_time(event), now)
            lines.append(
                f"Last event:    {event.get('message', '')} ({event.get('type', 'Normal')} {event.get('reason', '')}"
                + (f", {when} ago)" if when else ")")
            )
        missing = view.missing_hooks
        if not missing:
            lines.append(
                f"Webhooks:      {style.icon('ok', 'the Canary names the sidecar for every gate and the event hook')}"
            )
        else:
            lines.append(
                f"Webhooks:      {style.icon('warn', 'not sent to the sidecar: ' + ', '.join(missing))}; "
                f"fix: kubectl gate apply -f <canarygate.yaml>"
            )
    else:
        lines.append(
            f"               no Flagger Canary {gate.target.namespace}/{gate.target.name}: "
            f"create it with kubectl gate apply -f <canarygate.yaml>"
        )
    invalid = [d for d in view.decisions.values() if not d.known]
    for problem in gate.problems:
        if not any(problem == d.problem for d in invalid):
            lines.append(f"Problem:       {style.icon('warn', problem)}")
    for decision in invalid:
        lines.append(f"Problem:       {style.icon('warn', f'gate {decision.gate}: state unknown: {decision.problem}')}")
        lines.append(
            f"               the sidecar answers it 503, which Flagger takes as closed; to fix, "
            f"write a valid annotation: {fix_command(view, decision.gate)}"
        )
    lines.append("")
    rows = []
    for decision in view.decisions.values():
        rows.append(
            [
                decision.gate,
                gate_state_text(decision, view.holding, style, view),
                decision.source,
                decision.set_by or "-" if decision.source == resolution.LIVE else "",
                age(decision.set_at, now) if decision.set_at else "",
                decision.scope,
                decision.reason,
            ]
        )
    lines.append(_table(["GATE", "STATE", "SOURCE", "SET BY", "AGE", "SCOPE", "REASON"], rows))
    if view.gate_events:
        lines.append("")
        lines.append("Recent changes:")
        rows = [
            [age(event_time(e), now) or "-", e.get("reason", ""), e.get("message", "")] for e in view.gate_events[-5:]
        ]
        lines.extend("  " + line for line in _table(["AGE", "REASON", "MESSAGE"], rows, no_headers=True).splitlines())
    return "\n".join(line.rstrip() for line in lines)


def names(views: Sequence[GateView]) -> str:
    return "\n".join(f"canarygate.piggysec.com/{v.gate.name}" for v in views)


def dump(data: Any, fmt: str) -> str:
    """JSON (indented) or YAML text of ``data``."""
    import json

    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")


def dump_line(data: Mapping[str, Any]) -> str:
    """One JSON object on one line (watch streams)."""
    import json

    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


#: The apiVersion of every object ``-o json|yaml`` prints (docs/output-schema.md). Its own group, not
#: the CanaryGate's (piggysec.com): these objects are reports, no API server serves them, and a
#: ``kubectl apply`` of one fails on the unknown kind instead of writing anything. The version
#: changes only when a field is renamed, removed or changes meaning; new fields keep it.
OUTPUT_API_VERSION = "gate.canary-gate.io/v1alpha1"
STATUS_KIND = "GateStatus"
HISTORY_KIND = "GateHistory"


def as_object(kind: str, name: str, namespace: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A kubectl-style object: ``apiVersion``, ``kind``, ``metadata`` (name, namespace), then ``fields``."""
    return {
        "apiVersion": OUTPUT_API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        **fields,
    }


def status_object(view: GateView) -> dict[str, Any]:
    """What ``show -o json|yaml`` prints (and ``list`` for each item): a GateStatus."""
    from kubectl_gate.views import view_to_dict

    data = view_to_dict(view)
    name, namespace = data.pop("name"), data.pop("namespace")
    return as_object(STATUS_KIND, name, namespace, data)


def list_object(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Several objects as kubectl prints them: ``apiVersion: v1``, ``kind: List``, ``items``."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


DIAGRAM = """\
  new revision
       │
       ▼
 ┌─────────────────┐ closed: the canary stays at zero replicas, nothing moves
 │ confirm-rollout │───────────────────────────────────────────────▶ (wait)
 └─────────────────┘
       │ opened
       ▼
 ┌─────────────────┐ closed: counts as a failed check ──▶ too many ──▶ ROLLBACK
 │   pre-rollout   │ every tick until the first traffic step
 └─────────────────┘
       │ opened
       ▼
 ┌─────────────────┐ closed: counts as a failed check ──▶ too many ──▶ ROLLBACK
 │     rollout     │◀────────────────────────────────────┐
 └─────────────────┘  on every analysis step             │
       │ opened, metrics healthy                         │ opened: next
       ▼                                                 │ traffic step
 ┌──────────────────────────┐                            │
 │ confirm-traffic-increase │────────────────────────────┘
 └──────────────────────────┘ closed: hold at this weight, metrics keep running
       │ opened at max weight
       ▼
 ┌───────────────────┐ closed: hold at max weight, metrics keep running
 │ confirm-promotion │───────────────────────────────────────────────▶ (wait)
 └───────────────────┘
       │ opened
       ▼
   PROMOTE: the primary gets the new revision
       │
       ▼
 ┌─────────────────┐ closed: only reported; the release is already done
 │  post-rollout   │
 └─────────────────┘

 ┌─────────────────┐ polled during the analysis and at confirm-promotion
 │    rollback     │ (not while held at confirm-rollout):
 └─────────────────┘ opened = roll back now ─────────────────────────▶ ROLLBACK
                     closed (the default) = carry on"""


EXPLAIN_BODY = """\
Flagger moves a canary release through phases and calls a webhook before each one. Canary Gate
answers those webhooks from the gate states on a CanaryGate resource: an opened gate lets Flagger
go on, a closed one makes it wait (or, for the checks, count a failure). The rollback gate works
the other way round: opened means "roll back now".

Where a gate's state comes from (shown by 'kubectl gate show'):
  declared  spec.<gate> of the CanaryGate: owned by whoever owns the manifest, usually Git
  live      set with 'kubectl gate open|close': an annotation recording who, when and why
  default   every gate opened, except rollback (closed)
The effective state is live if a live change is in force, else declared, else the default.

How long a live change holds (its scope):
  rollout   the default: until the rollout in progress ends (or the next one, if none is running)
  sticky    --sticky: until someone changes it again
  step      'promote' without --full, 'abort' while Waiting: one "go on", then the gate is back
            to what it was; for confirm-promotion, every call of that one promotion (blue/green
            asks twice)

What to run:
  kubectl gate show NAME           where the rollout is and which gate holds it
  kubectl gate promote NAME        let it past the gate holding it now (one step)
  kubectl gate promote NAME --full open every progress gate for the rest of this rollout
  kubectl gate abort NAME          open the rollback gate: Flagger rolls back on its next check;
                                   it cannot stop a promotion already under way. While Waiting
                                   at confirm-rollout it also opens that gate for one step:
                                   Flagger starts the rollout and rolls it back on its next
                                   check; the new revision receives no traffic
  kubectl gate pause NAME          hold the rollout at its next step, failing no check
                                   (closes confirm-traffic-increase and confirm-promotion)
  kubectl gate resume NAME         undo pause
  kubectl gate close GATE NAME     close GATE for this rollout (--sticky: until reopened); closing
                                   rollout or pre-rollout fails checks: Flagger rolls back at the
                                   threshold (refused during a rollout without --yes)"""


def hook_table(gate: str | None = None) -> str:
    """What each hook's answer does in Flagger (canarygate.hooks.RULES), as a table."""
    return _table(["HOOK", *hooks.ANSWERS], hooks.table_rows(gate))


def explain_text(*, gate: str | None = None) -> str:
    """The ``kubectl gate explain`` page: the diagram, the answer table and one paragraph per gate."""
    rows = [[name, gates.DEFAULTS[name], gates.DESCRIPTIONS[name]] for name in gates.GATES]
    if gate is not None:
        rule = hooks.RULES[gate]
        rows = [row for row in rows if row[0] == gate]
        parts = [
            _table(["GATE", "DEFAULT", "WHAT IT DOES"], rows),
            "",
            "What Flagger does with the sidecar's answer:",
            "",
            hook_table(gate),
            "",
            f"  called:      {rule.when}",
            f"  200-202:     {rule.success_text}",
            f"  otherwise:   {rule.failure_text}",
            f"  in Flagger:  {rule.source} (v1.44.0)",
            f"  the sidecar: {hooks.sidecar_answers(gate)}",
        ]
        if rule.is_check:
            parts.append("  to hold the rollout without failing checks: kubectl gate pause NAME")
        return "\n".join(parts)
    parts = [
        "How Canary Gate gates a Flagger release",
        "",
        DIAGRAM,
        "",
        EXPLAIN_BODY,
        "",
        "The gates, in the order Flagger meets them:",
        "",
        _table(["GATE", "DEFAULT", "WHAT IT DOES"], rows),
        "",
        "What Flagger v1.44 does with each answer:",
        "",
        hook_table(),
        "",
        textwrap.fill(hooks.RETRY_NOTE, 100),
        textwrap.fill(hooks.READINESS_NOTE, 100),
        "",
        "When the sidecar cannot know a state:",
        textwrap.fill(hooks.OUTAGE_RULE, 100, initial_indent="  ", subsequent_indent="  "),
    ]
    return "\n".join(parts)
