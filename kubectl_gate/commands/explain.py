"""``kubectl gate explain``: the gate diagram and what each gate does."""

from __future__ import annotations

import click

from kubectl_gate import printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import GATE, offline_options


@click.command("explain")
@click.argument("gate", type=GATE, required=False)
@offline_options
@pass_gate_ctx
def explain_command(gctx: GateContext, gate: str | None) -> None:
    """Show how the gates gate a Flagger release: the diagram, where a gate's state comes from,
    and what each gate does. With GATE, only that gate."""
    gctx.out(printing.explain_text(gate=gate))
