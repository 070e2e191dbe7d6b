"""``kubectl gate history NAME``: who changed which gate, when and why, and what each rollout did.

Read from the CanaryGate's ``status.history``, which the gate sidecar keeps (canarygate.history,
docs/history.md): one GET, no Events (they expire after an hour).
"""

from __future__ import annotations

from typing import Any

import click

from canarygate import history
from kubectl_gate import lookup, printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, name_options, output_option, pick_name

#: Rollouts shown unless --rollouts says otherwise.
DEFAULT_ROLLOUTS = 3

#: How a live change ended, in words.
ENDED = {
    history.USED: "used (a one-step approval, answered)",
    history.EXPIRED: "ended with its rollout",
    history.REPLACED: "replaced by a newer change",
    history.REMOVED: "removed (resume, or by hand: the API server's audit log says who)",
}


def history_object(name: str, namespace: str, record: dict[str, Any], last: int | None) -> dict[str, Any]:
    """The GateHistory object ``-o json|yaml`` prints (docs/output-schema.md)."""
    groups = history.group(record, last)
    return printing.as_object(
        printing.HISTORY_KIND,
        name,
        namespace,
        {
            "dropped": int(record.get("dropped") or 0),
            "rollouts": [
                {"rollout": g.number, "result": g.result, "started": g.started, "entries": g.entries} for g in groups
            ],
        },
    )


def entry_row(entry: dict[str, Any]) -> list[str]:
    """ROLLOUT, TIME, WHAT, GATE, BY, DETAIL of one entry."""
    kind = entry.get("kind")
    number, at = str(entry.get("rollout", "")), str(entry.get("at", ""))
    if kind == "phase":
        detail = f"weight {entry.get('weight', 0)}, failed checks {entry.get('failedChecks', 0)}"
        if entry.get("revision"):
            detail += f", revision {entry['revision']}"
        return [number, at, str(entry.get("phase", "")), "-", "flagger", detail]
    if kind == "failure":
        detail = str(entry.get("message", ""))
        if entry.get("check"):
            detail += f" (last failed check: {entry['check']})"
        return [number, at, "rollback", "-", "flagger", detail]
    gate = str(entry.get("gate", ""))
    if entry.get("action") == "set":
        detail = f"scope {entry.get('scope', '')}" + (f": {entry['reason']}" if entry.get("reason") else "")
        return [number, at, str(entry.get("state", "")), gate, str(entry.get("by") or "-"), detail]
    how = str(entry.get("how", ""))
    by = "gate-sidecar" if how in (history.USED, history.EXPIRED) else "-"
    return [number, at, "ended", gate, by, ENDED.get(how, how)]


def history_table(obj: dict[str, Any], *, no_headers: bool = False) -> str:
    rows = [entry_row(e) for r in obj["rollouts"] for e in r["entries"]]
    return printing._table(["ROLLOUT", "TIME", "WHAT", "GATE", "BY", "DETAIL"], rows, no_headers=no_headers)


@click.command("history")
@click.argument("name", required=False, metavar="NAME")
@name_options
@click.option(
    "--rollouts",
    "last",
    type=click.IntRange(min=0),
    default=DEFAULT_ROLLOUTS,
    show_default=True,
    metavar="N",
    help=f"The last N rollouts (0: all the record holds, at most {history.MAX_ROLLOUTS}).",
)
@click.option("--no-headers", is_flag=True, help="Print the table without its header line.")
@output_option("json", "yaml", templates=True)
@kube_options
@pass_gate_ctx
def history_command(
    gctx: GateContext, name: str | None, deployment: str | None, last: int, no_headers: bool, output: str | None
) -> None:
    """Who changed which gate of CanaryGate NAME, when and why, and what each rollout did (its
    phases, the rollback cause), for the last N rollouts, oldest first.

    The gate sidecar records this in the CanaryGate's status.history as it sees each change and
    phase (bounded: the last 10 rollouts, 200 entries, 32 KiB), so it outlives the Events, which
    expire after an hour. A change made between rollouts belongs to the next one. Only the
    sidecar's service account (and cluster admins) may write status; the "by" of every change is
    the requester, as the live-changes admission policy enforces.

    \b
    Examples:
      kubectl gate history demo -n demo-ns
      kubectl gate history demo --rollouts 10 -o json
    """
    from kubectl_gate import templates

    name = pick_name(name, deployment)
    gate = lookup.get_gate(gctx, name)
    record = history.parse(gate.status.get("history"))
    obj = history_object(gate.name, gate.namespace, record, last or None)
    if output in ("json", "yaml"):
        gctx.out(printing.dump(obj, output))
        return
    if templates.is_template(output):
        gctx.out(templates.render(output, obj))
        return
    if not record["entries"]:
        gctx.err(
            f"No history recorded for canarygate/{gate.name} yet: the gate sidecar records changes and phases "
            "as it sees them (kubectl gate version shows whether it runs)."
        )
        return
    gctx.out(history_table(obj, no_headers=no_headers))
    if record.get("dropped"):
        gctx.err(f"note: {record['dropped']} older entries were dropped to keep the record within its bounds")
