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


def why_unreachable(gctx: GateContext, error: Exception, namespace: str, service: str) -> str:
    """Why the proxied call failed, in words that say what to do.

    Through the proxy, kube-apiserver answers a missing Service reached by port name as it answers
    one without ready endpoints (503 "no endpoints available"): one GET of the Service, made only
    after such a failure, tells the two apart. Any other failure (RBAC, the backend's own answer) is
    reported as it came.
    """
    from canarygate import errors
    from canarygate.kube.resources import SERVICES

    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    if not isinstance(error, errors.NotFound) and "no endpoints available" not in first:
        return first
    try:
        gctx.kube.request("GET", SERVICES.path(namespace, service), resource=SERVICES, name=service)
    except errors.NotFound:
        return (
            f"no Service {service} in namespace {namespace}: install the sidecar with "
            "kubectl gate install | kubectl apply -f -, or name its namespace with --sidecar-namespace"
        )
    except errors.GateError:
        return first  # e.g. no 'get' on services: the proxy's answer is all there is
    return (
        f"the Service {namespace}/{service} has no ready endpoints: the sidecar pods are not ready "
        f"(kubectl get pods -n {namespace} -l app.kubernetes.io/name=canary-gate-sidecar)"
    )


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
        except errors.GateError as e:
            note = "sidecar: not reachable (" + why_unreachable(gctx, e, sidecar_namespace, sidecar_service) + ")"
    if output in ("json", "yaml"):
        gctx.out(printing.dump(data, output))
    else:
        gctx.out(f"kubectl-gate: {data['client']['version']}")
        if "sidecar" in data:
            sidecar = data["sidecar"]
            gctx.out(f"gate-sidecar: {sidecar.get('version', '?')} ({sidecar_namespace}/{sidecar_service})")
    if note:
        gctx.err(note)
