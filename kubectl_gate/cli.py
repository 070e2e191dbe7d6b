"""The ``kubectl gate`` root command: lazy command loading, error mapping, entry points.

Command modules are imported only when their command runs, so ``--help``, ``version --client``,
``completion`` and ``__complete`` stay fast and never import the ``kubernetes`` client.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from typing import Any

import click

from kubectl_gate import exitcodes
from kubectl_gate.context import GateContext
from kubectl_gate.options import all_namespaces_option, kube_options

#: name -> (module, attribute, one-line help). The one-liners live here so that the root's help
#: lists every command without importing any of them.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "list": ("kubectl_gate.commands.list", "list_command", "List CanaryGates: target, phase, weight, holding gate"),
    "show": ("kubectl_gate.commands.show", "show_command", "Show every gate of a CanaryGate and its Canary (--watch)"),
    "open": ("kubectl_gate.commands.change", "open_command", "Open a gate (for this rollout, or --sticky)"),
    "close": ("kubectl_gate.commands.change", "close_command", "Close a gate (for this rollout, or --sticky)"),
    "pause": ("kubectl_gate.commands.pause", "pause_command", "Hold the rollout at its next step, failing no check"),
    "resume": (
        "kubectl_gate.commands.pause",
        "resume_command",
        "Undo pause: the confirm gates back to their declared state",
    ),
    "promote": (
        "kubectl_gate.commands.promote",
        "promote_command",
        "Let the rollout past the gate holding it (--full: all)",
    ),
    "abort": ("kubectl_gate.commands.abort", "abort_command", "End the rollout by a rollback (open its rollback gate)"),
    "retry": (
        "kubectl_gate.commands.retry",
        "retry_command",
        "Start a failed rollout again (a new revision of its target)",
    ),
    "skip-analysis": (
        "kubectl_gate.commands.skip",
        "skip_command",
        "Emergency: Flagger promotes now, skipping its analysis",
    ),
    "history": (
        "kubectl_gate.commands.history",
        "history_command",
        "Who changed which gate, when, why; what each rollout did",
    ),
    "wait": (
        "kubectl_gate.commands.wait",
        "wait_command",
        "Wait until promoted, failed, waiting or held at a gate (CI)",
    ),
    "apply": (
        "kubectl_gate.commands.apply",
        "apply_command",
        "Create or update CanaryGates and their Flagger Canaries",
    ),
    "render": (
        "kubectl_gate.commands.apply",
        "render_command",
        "Print the Flagger Canary a CanaryGate renders (GitOps)",
    ),
    "explain": ("kubectl_gate.commands.explain", "explain_command", "How the gates work: the diagram and each gate"),
    "install": (
        "kubectl_gate.commands.install",
        "install_command",
        "Print the CRD and sidecar manifests for kubectl apply",
    ),
    "dashboard": (
        "kubectl_gate.commands.dashboard",
        "dashboard_command",
        "A local web page: the CanaryGates, live, with buttons that run these commands",
    ),
    "version": ("kubectl_gate.commands.version", "version_command", "Client version, and the sidecar's when reachable"),
    "completion": (
        "kubectl_gate.commands.completion",
        "completion_command",
        "Shell completion script (bash, zsh, fish, powershell)",
    ),
}
ALIASES = {"status": "show", "get": "show", "ls": "list"}
HIDDEN = {"__complete": ("kubectl_gate.completing", "complete_command", "")}

HELP = f"""Manual approval gates for Flagger canary releases.

\b
Gates, in the order Flagger meets them:
  confirm-rollout, pre-rollout, rollout, confirm-traffic-increase,
  confirm-promotion, post-rollout, rollback
Run 'kubectl gate explain' for what each one does.

\b
Examples:
  kubectl gate list -A
  kubectl gate show demo -n demo-ns --watch
  kubectl gate promote demo -n demo-ns
  kubectl gate close confirm-promotion demo --reason "CAB-123 freeze"
  kubectl gate wait demo --for promoted --timeout 30m

{exitcodes.HELP}
"""


class GateFailure(click.ClickException):
    """An error from the core, shown as one clear message with its exit code (no traceback)."""

    def __init__(self, message: str, exit_code: int = exitcodes.ERROR):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # NB: click reads it from the instance too

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=file is None)


class GateGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd_name = ALIASES.get(cmd_name, cmd_name)
        entry = COMMANDS.get(cmd_name) or HIDDEN.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        return getattr(module, entry[1])

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, cmd, rest = super().resolve_command(ctx, args)
        return (cmd.name if cmd else name), cmd, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, short) for name, (_, _, short) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
        with formatter.section("Aliases"):
            formatter.write_dl([("status", "show (as in the Go canary-gate CLI)"), ("ls", "list")])

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise click.exceptions.Exit(exitcodes.INTERRUPTED) from None
        except BrokenPipeError:
            raise click.exceptions.Exit(exitcodes.OK) from None
        except Exception as e:
            raise to_failure(e) from e


def to_failure(e: Exception) -> click.ClickException:
    """A clear message for every error; anything unexpected is an 'internal error', never a trace."""
    from canarygate import errors

    if os.environ.get("KUBECTL_GATE_DEBUG"):
        raise e
    if isinstance(e, errors.CrdMissing):
        what = e.kind or "a resource"
        if what.startswith("canarygates"):
            return GateFailure(
                "the CanaryGate CRD (canarygates.piggysec.com) is not installed in this cluster.\n"
                "Install it (and the sidecar) with:  kubectl gate install | kubectl apply -f -"
            )
        return GateFailure(str(e))
    if isinstance(e, errors.Forbidden):
        return GateFailure(
            f"forbidden: {e}\nAsk a cluster admin for a Role that allows it (kubectl auth can-i to check)."
        )
    if isinstance(e, errors.UntrustedServer):
        return GateFailure(str(e))
    if isinstance(e, errors.Unreachable) and "CERTIFICATE_VERIFY_FAILED" in str(e):
        # NB: the official client's (urllib3's) form of an untrusted certificate: the same advice
        from canarygate.kube import light

        found = re.search(r"at (\S+?): ", str(e))
        detail = re.search(r"certificate verify failed: ([^()'\"]+)", str(e))
        return GateFailure(
            str(
                light.untrusted(
                    found.group(1) if found else "",
                    ("certificate verify failed: " + detail.group(1).strip())
                    if detail
                    else "certificate verify failed",
                )
            )
        )
    if isinstance(e, errors.Unreachable):
        return GateFailure(f"{e}\nCheck the context (--context) and that the cluster is up.")
    if isinstance(e, errors.GateError):
        return GateFailure(str(e))
    return GateFailure(f"internal error: {type(e).__name__}: {e} (set KUBECTL_GATE_DEBUG=1 for the trace)")


@click.group(
    cls=GateGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(
    package_name="canary-gate",
    prog_name="kubectl-gate",
    message="%(prog)s: %(version)s",
    help="Print the client version and exit (the sidecar's too: kubectl gate version).",
)
@kube_options
@all_namespaces_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    ctx.call_on_close(ctx.ensure_object(GateContext).close)  # NB: no socket left for the garbage collector


def prog_name() -> str:
    """``kubectl gate`` when run as a kubectl plugin (argv[0] kubectl-gate), as krew recommends."""
    base = os.path.basename(sys.argv[0] or "")
    return "kubectl gate" if base.startswith("kubectl-gate") else (base or "kubectl gate")


def _sanitize_environment() -> None:
    # NB: a PyInstaller binary sets LD_LIBRARY_PATH for itself; exec credential plugins
    # (aws, gke-gcloud-auth-plugin, kubelogin) must not inherit it.
    if getattr(sys, "frozen", False):
        for var in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"):
            orig = os.environ.get(var + "_ORIG")
            if orig is not None:
                os.environ[var] = orig
            else:
                os.environ.pop(var, None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kubectl-gate``: exit codes per :mod:`kubectl_gate.exitcodes`."""
    _sanitize_environment()
    from kubectl_gate import interrupts

    interrupts.install()  # NB: Ctrl-C ends the command even when it lands just before a blocking read
    try:
        code = cli.main(args=argv, prog_name=prog_name(), standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = e.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        code = exitcodes.INTERRUPTED
    except KeyboardInterrupt:
        code = exitcodes.INTERRUPTED
    code = code if isinstance(code, int) else exitcodes.OK
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)


def complete_main() -> None:
    """Entry point of ``kubectl_complete-gate``, which kubectl (>= 1.26) runs to complete plugin args."""
    from kubectl_gate import completing

    sys.exit(completing.run(sys.argv[1:]))
