"""``kubectl gate dashboard``: the CanaryGates in a local web page, with buttons that run the commands."""

from __future__ import annotations

import click

from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import all_namespaces_option, kube_options, selector_option

DEFAULT_PORT = 3200


@click.command("dashboard")
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "--address",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Loopback address to listen on (127.0.0.1, ::1 or localhost; nothing else is accepted).",
)
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening it in the browser.")
@selector_option()
@all_namespaces_option
@kube_options
@pass_gate_ctx
def dashboard_command(gctx: GateContext, port: int, address: str, no_browser: bool, selector: str | None) -> None:
    """Serve a web page on this machine that shows the CanaryGates of the namespace (every
    namespace with -A) as 'kubectl gate list' and 'show' do: phase, weight, the gate holding the
    rollout, every gate's state with who set it and why, updated as 'list --watch' polls (every 2 s).
    Its buttons (open, close, promote, pause, resume, abort) ask for a reason, show the exact
    'kubectl gate' command, and run that command with your kubeconfig's credentials: the same RBAC,
    the same audit trail, the same refusals as in the terminal.

    The page listens on the loopback address only and needs the random token in the URL printed
    here (a new one on every start); Ctrl-C stops it.

    \b
    Examples:
      kubectl gate dashboard
      kubectl gate dashboard -A --port 8080
      kubectl gate dashboard -n shop --no-browser
    """
    from kubectl_gate.dashboard import guard, server, snapshot

    if not guard.is_loopback(address):
        raise click.BadParameter(
            f"{address} is not a loopback address: the dashboard acts with your credentials and listens "
            "on this machine only (127.0.0.1, ::1 or localhost)",
            param_hint="--address",
        )
    poller = snapshot.Poller(gctx, selector)
    first = poller.first()  # NB: a cluster that cannot be listed fails here, as 'kubectl gate list' would
    if first["error"]:
        gctx.err(f"warning: {first['error']}; the page says so until the API server answers")
    try:
        httpd = server.Dashboard(gctx, poller, address=address, port=port)
    except OSError as e:
        raise click.ClickException(f"cannot listen on {address}:{port}: {e.strerror or e}") from None
    poller.start(on_error=lambda e: gctx.err(f"warning: dashboard poll failed: {e}"))
    gctx.err(f"Canary Gate dashboard for {poller.current()[1]['scope']} at {httpd.url}")
    gctx.err("Press Ctrl-C to stop.")
    if not no_browser:
        _open_browser(gctx, httpd.url)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
        httpd.server_close()
        gctx.kube.close()


def _open_browser(gctx: GateContext, url: str) -> None:
    """Open ``url`` in a thread: without a display, webbrowser may run a console browser that blocks."""
    import threading
    import webbrowser

    def run() -> None:
        if not webbrowser.open(url):
            gctx.err("(no browser found: open the URL above)")

    threading.Thread(target=run, name="dashboard-browser", daemon=True).start()
