"""``kubectl gate version``: the client's version, and the sidecar's through the API server's
service proxy (as the Go original reached its service), when it can be reached."""

from __future__ import annotations

import click

from kubectl_gate import printing
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, output_option

SIDECAR_NAMESPACE = "canary-gate"
SIDECAR_SERVICE = "canary-gate-sidecar"
SIDECAR_PORT = "http"


def client_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("canary-gate")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def sidecar_version(gctx: GateContext, *, namespace: str, service: str, port: str = SIDECAR_PORT) -> dict:
    """The sidecar's /version answer through the service proxy; raises GateError when unreachable."""
    from canarygate.kube.proxy import service_get

    return service_get(gctx.kube, namespace, service, port, "/version")


@click.command("version")
@click.option("--client", "client_only", is_flag=True, help="Only the client version; no cluster is contacted.")
@click.option("--sidecar-namespace", default=SIDECAR_NAMESPACE, show_default=True, help="Namespace of the sidecar.")
@click.option("--sidecar-service", default=SIDECAR_SERVICE, show_default=True, help="Service of the sidecar.")
@output_option("json", "yaml")
@kube_options
@pass_gate_ctx
def version_command(
    gctx: GateContext, client_only: bool, sidecar_namespace: str, sidecar_service: str, output: str | None
) -> None:
    """Print the client version, and the gate sidecar's when it can be reached through the API
    server's service proxy (needs 'get' on services/proxy in the sidecar's namespace)."""
    data: dict = {"client": {"version": client_version()}}
    note = ""
    if not client_only:
        from canarygate import errors

        try:
            answer = sidecar_version(gctx, namespace=sidecar_namespace, service=sidecar_service)
            data["sidecar"] = answer if isinstance(answer, dict) else {"version": str(answer)}
        except errors.NotFound:
            note = f"sidecar: not reachable (no Service {sidecar_namespace}/{sidecar_service} behind the API proxy)"
        except errors.GateError as e:
            note = f"sidecar: not reachable ({str(e).splitlines()[0]})"
    if output in ("json", "yaml"):
        gctx.out(printing.dump(data, output))
    else:
        gctx.out(f"kubectl-gate: {data['client']['version']}")
        if "sidecar" in data:
            sidecar = data["sidecar"]
            gctx.out(f"gate-sidecar: {sidecar.get('version', '?')} ({sidecar_namespace}/{sidecar_service})")
    if note:
        gctx.err(note)
