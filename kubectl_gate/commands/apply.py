"""``kubectl gate apply -f`` and ``kubectl gate render -f``: CanaryGates and the Canaries they render.

Every document is read, checked against the CanaryGate CRD's schema (:mod:`kubectl_gate.validation`),
rendered and checked against Flagger's Canary CRD before anything is sent, so a bad file changes
nothing. A write the API server still refuses part-way is reported with what was and was not applied.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

import click

from canarygate import errors, rendering
from canarygate.model import API_VERSION, KIND, parse_canarygate
from kubectl_gate import printing, validation
from kubectl_gate.context import GateContext, pass_gate_ctx
from kubectl_gate.options import kube_options, offline_options, output_option

ENDPOINT_HELP = (
    f"Where Flagger reaches the gate sidecar (default: $KUBECTL_GATE_ENDPOINT, else {rendering.DEFAULT_ENDPOINT})."
)


@dataclass(frozen=True)
class Rendered:
    source: str
    gate: dict[str, Any]
    canary: dict[str, Any]


#: What ``-f DIR`` reads, as kubectl does; other files in the folder are not manifests.
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def read_documents(paths: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """(source, document) for every YAML/JSON document in the files, folders (recursive) and ``-``.

    A source names the file and, in a file of several documents, the document's index (from 1).
    InvalidGate naming the file (and document) when a file cannot be read, is not UTF-8, is not
    YAML, or holds a document that is not a Kubernetes object (a mapping).
    """
    import yaml

    sources: list[tuple[str, str]] = []
    for path in paths:
        if path == "-":
            sources.append(("<stdin>", sys.stdin.read()))
        elif os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for file in sorted(files):
                    if file.endswith(MANIFEST_SUFFIXES):
                        sources.append((os.path.join(root, file), _read(os.path.join(root, file))))
        else:
            sources.append((path, _read(path)))
    documents = []
    for source, text in sources:
        try:
            docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        except yaml.YAMLError as e:
            raise errors.InvalidGate(f"{source}: not valid YAML: {e}") from None
        for index, doc in enumerate(docs, 1):
            where = f"{source} (document {index})" if len(docs) > 1 else source
            if not isinstance(doc, dict):
                raise errors.InvalidGate(
                    f"{where}: the document is {_what(doc)}, not a Kubernetes object "
                    "(a mapping with apiVersion, kind, metadata and spec); nothing was applied"
                )
            if doc.get("kind") == "List":
                items = doc.get("items") or []
                if not isinstance(items, list):
                    raise errors.InvalidGate(
                        f"{where}: items of a List must be a list, not {_what(items)}; nothing was applied"
                    )
                for number, item in enumerate(items):
                    if not isinstance(item, dict):
                        raise errors.InvalidGate(
                            f"{where}: items[{number}] is {_what(item)}, not a Kubernetes object; nothing was applied"
                        )
                    documents.append((f"{where} items[{number}]", item))
            elif doc:
                documents.append((where, doc))
    return documents


def _what(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return type(value).__name__


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise errors.InvalidGate(f"cannot read {path}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise errors.InvalidGate(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): "
            "save it as UTF-8; nothing was applied"
        ) from None


def render_documents(gctx: GateContext, paths: tuple[str, ...], *, namespace: str, endpoint: str) -> list[Rendered]:
    """Render every CanaryGate found; InvalidGate listing every problem when any document is bad."""
    documents = read_documents(paths)
    rendered, problems = [], []
    for source, doc in documents:
        if doc.get("kind") != KIND or not str(doc.get("apiVersion", "")).startswith("piggysec.com/"):
            gctx.err(f"skipped {source}: {doc.get('kind', 'a document without kind')} is not a CanaryGate")
            continue
        if doc.get("apiVersion") != API_VERSION:
            problems.append(f"{source}: apiVersion {doc.get('apiVersion')} is not {API_VERSION}")
            continue
        shape = validation.problems(doc)
        if shape:
            meta_name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
            label = f"CanaryGate {meta_name}" if isinstance(meta_name, str) and meta_name else "CanaryGate"
            problems.extend(f"{source}: {label}: {problem}" for problem in shape)
            continue
        doc = dict(doc)
        doc["metadata"] = dict(doc.get("metadata") or {})
        doc["metadata"].setdefault("namespace", namespace)
        name = doc["metadata"].get("name")
        if not name:
            problems.append(f"{source}: a CanaryGate without metadata.name")
            continue
        try:
            gate = parse_canarygate(doc)
            canary = rendering.render_canary(gate, endpoint=endpoint)
        except errors.InvalidGate as e:
            problems.append(f"{source}: {e}")
            continue
        except (AttributeError, TypeError, ValueError, KeyError) as e:  # NB: a shape the CRD schema allows
            problems.append(f"{source}: CanaryGate {name}: a field has the wrong type ({type(e).__name__}: {e})")
            continue
        for hook_name, hook_type in rendering.shared_hook_types(gate):
            gctx.err(
                f"warning: {source}: CanaryGate {gate.ref}: your webhook {hook_name!r} is of type {hook_type}, "
                f"which Canary Gate renders too: Flagger goes on only when both pass, so it can hold the "
                f"rollout while the gate is opened, and kubectl gate promote cannot open it"
            )
        for problem in rendering.check_canary(canary):
            problems.append(f"{source}: CanaryGate {gate.ref}: the rendered Canary is invalid for Flagger: {problem}")
        rendered.append(Rendered(source, doc, canary))
    if problems:
        checked = [
            str((doc.get("metadata") or {}).get("name"))
            for _, doc in documents
            if isinstance(doc.get("metadata"), dict) and doc.get("kind") == KIND
        ]
        listed = f" (none of the CanaryGates {', '.join(checked)})" if len(checked) > 1 else ""
        raise errors.InvalidGate(f"nothing was applied{listed}:\n  " + "\n  ".join(problems))
    if not rendered:
        raise errors.InvalidGate(f"no CanaryGate found in {', '.join(paths)}")
    return rendered


class PartlyApplied(errors.GateError):
    """A write failed after others succeeded: the message names what was applied and what was not."""


def apply_documents(gctx: GateContext, items: list[Rendered], *, dry_run: str | None) -> list[tuple[str, str, dict]]:
    """Create or update each CanaryGate and its Canary; (qualified name, outcome, object) per write.

    A failed write raises the error itself when nothing was written yet, else PartlyApplied listing
    the objects applied, the one that failed and those not attempted.
    """
    from canarygate.kube import canaries, canarygates

    results: list[tuple[str, str, dict]] = []
    planned = [
        (
            f"canarygate.piggysec.com/{item.gate['metadata']['name']}",
            f"canary.flagger.app/{item.canary['metadata']['name']}",
            item,
        )
        for item in items
    ]
    server_dry = dry_run == "server"
    suffix = " (server dry run)" if server_dry else ""
    for index, (gate_ref, canary_ref, item) in enumerate(planned):
        if dry_run == "client":
            results.append((gate_ref, "configured (dry run)", item.gate))
            results.append((canary_ref, "configured (dry run)", item.canary))
            continue
        for ref, write, obj in (
            (gate_ref, canarygates.apply_gate, item.gate),
            (canary_ref, canaries.apply_canary, item.canary),
        ):
            try:
                outcome, written = write(gctx.kube, obj, dry_run=server_dry)
            except errors.GateError as e:
                if not results:
                    raise
                later = [
                    r
                    for _, _, it in planned[index + 1 :]
                    for r in (
                        f"canarygate.piggysec.com/{it.gate['metadata']['name']}",
                        f"canary.flagger.app/{it.canary['metadata']['name']}",
                    )
                ]
                rest = ([canary_ref] if ref == gate_ref else []) + later
                lines = [
                    f"{ref} failed: {e}",
                    "applied: " + ", ".join(f"{r} ({o})" for r, o, _ in results),
                    "not applied: " + (", ".join([ref, *rest])),
                ]
                raise PartlyApplied("the file was applied in part:\n  " + "\n  ".join(lines)) from e
            results.append((ref, outcome + suffix, written))
    return results


def _endpoint(endpoint: str | None) -> str:
    return endpoint or os.environ.get("KUBECTL_GATE_ENDPOINT") or rendering.DEFAULT_ENDPOINT


#: ``-f/--filename PATH``, as kubectl apply reads it (apply and render).
filename_option = click.option(
    "--filename",
    "-f",
    "paths",
    multiple=True,
    required=True,
    metavar="PATH",
    help="A file, a folder (its *.yaml, *.yml and *.json files, recursively) or - for stdin; repeatable.",
)


@click.command("apply")
@filename_option
@click.option(
    "--dry-run",
    type=click.Choice(["none", "client", "server"]),
    default="none",
    help="client: check and render only; server: the API server checks without saving.",
)
@click.option("--endpoint", metavar="URL", help=ENDPOINT_HELP)
@output_option("json", "yaml", "name")
@kube_options
@pass_gate_ctx
def apply_command(
    gctx: GateContext, paths: tuple[str, ...], dry_run: str, endpoint: str | None, output: str | None
) -> None:
    """Create or update the CanaryGates in the files, and the Flagger Canary each one renders:
    spec.flagger plus one webhook per gate and an event webhook, pointing at the sidecar. Your own
    webhooks are kept in their order; gate webhooks of an earlier render are replaced. Everything
    is checked against Flagger's CRD before anything is sent. Live gate changes are kept.

    \b
    Examples:
      kubectl gate apply -f canarygate.yaml
      kubectl gate apply -f gates/ --dry-run=server
    """
    namespace = _safe_ns(gctx) if dry_run == "client" else gctx.ns
    items = render_documents(gctx, paths, namespace=namespace, endpoint=_endpoint(endpoint))
    results = apply_documents(gctx, items, dry_run=None if dry_run == "none" else dry_run)
    if output in ("json", "yaml"):
        data = {"apiVersion": "v1", "kind": "List", "items": [obj for _, _, obj in results]}
        gctx.out(printing.dump(data, output))
    elif output == "name":
        gctx.out("\n".join(ref for ref, _, _ in results))
    else:
        gctx.out("\n".join(f"{ref} {outcome}" for ref, outcome, _ in results))


def _safe_ns(gctx: GateContext) -> str:
    try:
        return gctx.ns
    except errors.ConfigError:
        return "default"


@click.command("render")
@filename_option
@click.option("--endpoint", metavar="URL", help=ENDPOINT_HELP)
@click.option(
    "--namespace",
    "-n",
    "namespace",
    metavar="NS",
    default=None,
    help="Namespace of CanaryGates that do not name one (default: default).",
)
@output_option("yaml", "json")
@offline_options
@pass_gate_ctx
def render_command(
    gctx: GateContext, paths: tuple[str, ...], endpoint: str | None, namespace: str | None, output: str | None
) -> None:
    """Print the Flagger Canary each CanaryGate in the files renders, checked against Flagger's CRD,
    for GitOps repositories. Reads no cluster.

    \b
    Example:
      kubectl gate render -f canarygate.yaml > canary.yaml
    """
    items = render_documents(gctx, paths, namespace=namespace or "default", endpoint=_endpoint(endpoint))
    canaries = [item.canary for item in items]
    if output == "json":
        data = canaries[0] if len(canaries) == 1 else {"apiVersion": "v1", "kind": "List", "items": canaries}
        gctx.out(printing.dump(data, "json"))
    else:
        import yaml

        gctx.out(yaml.safe_dump_all(canaries, sort_keys=False, explicit_start=True).rstrip("\n"))
