"""Kubeconfigs for the transport tests: one cluster ``k``, one user ``u``, one context ``c`` using them."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml


def single(
    cluster: dict[str, Any],
    user: dict[str, Any],
    *,
    namespace: str | None = None,
    extra_clusters: tuple[dict[str, Any], ...] = (),
    extra_users: tuple[dict[str, Any], ...] = (),
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The kubeconfig document; ``context`` replaces the context's own fields (cluster k, user u)."""
    fields = context or {"cluster": "k", "user": "u", **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "clusters": [{"name": "k", "cluster": cluster}, *extra_clusters],
        "users": [{"name": "u", "user": user}, *extra_users],
        "contexts": [{"name": "c", "context": fields}],
    }


def write(path: pathlib.Path, cluster: dict[str, Any], user: dict[str, Any], **options: Any) -> str:
    """:func:`single` written as YAML at ``path``; returns the path as a string."""
    path.write_text(yaml.safe_dump(single(cluster, user, **options)))
    return str(path)
