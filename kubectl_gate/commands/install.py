"""``kubectl gate install``: the CRD and sidecar manifests, ready for ``| kubectl apply -f -``."""

from __future__ import annotations

import click

from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import offline_options

DEFAULT_NAMESPACE = "canary-gate"
#: Kinds that live in the sidecar's namespace (the others are cluster-scoped).
NAMESPACED = {
    "ServiceAccount",
    "Deployment",
    "Service",
    "NetworkPolicy",
    "ConfigMap",
    "Role",
    "RoleBinding",
    "PodDisruptionBudget",
}


def install_manifests(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    image: str | None = None,
    flagger_namespace: str | None = None,
    crd: bool = True,
    sidecar: bool = True,
) -> list[dict]:
    """The manifests of deploy/sidecar's kustomization (shipped in :mod:`kubectl_gate.data`), set up as
    kustomize would for ``namespace``."""
    import yaml

    from kubectl_gate import data

    docs = []
    for path in data.manifest_paths():
        is_crd = path.startswith("deploy/crd/")
        if (is_crd and not crd) or (not is_crd and not sidecar):
            continue
        for doc in yaml.safe_load_all(data.read(path)):
            if not doc:
                continue
            kind = doc["kind"]
            meta = doc.setdefault("metadata", {})
            if not is_crd:
                meta.setdefault("labels", {})["app.kubernetes.io/part-of"] = "canary-gate"
            if kind == "Namespace":
                meta["name"] = namespace
            elif kind in NAMESPACED:
                meta["namespace"] = namespace
            if kind in ("ClusterRoleBinding", "RoleBinding"):
                for subject in doc.get("subjects") or ():
                    if subject.get("kind") == "ServiceAccount":
                        subject["namespace"] = namespace
            if kind == "Deployment" and image:
                for container in doc["spec"]["template"]["spec"]["containers"]:
                    container["image"] = image
            if kind == "NetworkPolicy" and flagger_namespace:
                for rule in doc["spec"].get("ingress") or ():
                    for peer in rule.get("from") or ():
                        labels = (peer.get("namespaceSelector") or {}).get("matchLabels")
                        if labels is not None and "kubernetes.io/metadata.name" in labels:
                            labels["kubernetes.io/metadata.name"] = flagger_namespace
            docs.append(doc)
    return docs


@click.command("install")
@click.option("--namespace", "-n", default=DEFAULT_NAMESPACE, show_default=True, help="Namespace of the sidecar.")
@click.option("--image", metavar="IMAGE", help="The sidecar image (default: the release's).")
@click.option(
    "--flagger-namespace",
    metavar="NS",
    help="Flagger's namespace, admitted by the NetworkPolicy (default: flagger-system).",
)
@click.option("--crd-only", is_flag=True, help="Only the CanaryGate CRD.")
@click.option("--no-crd", is_flag=True, help="Everything but the CRD.")
@offline_options
@pass_gate_ctx
def install_command(
    gctx: GateContext, namespace: str, image: str | None, flagger_namespace: str | None, crd_only: bool, no_crd: bool
) -> None:
    """Print the manifests that install the CanaryGate CRD and the gate sidecar (namespace,
    service account, least-privilege RBAC, Deployment, Service, NetworkPolicy). Nothing is sent:
    pipe them to kubectl.

    \b
    Examples:
      kubectl gate install | kubectl apply -f -
      kubectl gate install --namespace gates --flagger-namespace flagger | kubectl apply -f -
    """
    import yaml

    if crd_only and no_crd:
        raise click.UsageError("--crd-only and --no-crd exclude each other")
    docs = install_manifests(
        namespace=namespace, image=image, flagger_namespace=flagger_namespace, crd=not no_crd, sidecar=not crd_only
    )
    gctx.out(yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True).rstrip("\n"))
    if not crd_only:
        gctx.err(
            f"Flagger reaches the sidecar at http://canary-gate-sidecar.{namespace}: render Canaries with "
            f"kubectl gate apply --endpoint http://canary-gate-sidecar.{namespace}"
        )
