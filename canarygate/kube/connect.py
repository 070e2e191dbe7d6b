"""Build an API connection the way kubectl does: kubeconfig (``KUBECONFIG`` may list several files),
context, cluster and user overrides, namespace from the context, or the in-cluster service account.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from canarygate import errors
from canarygate.kube.client import Kube

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class Settings:
    """kubectl's connection flags; None means "as the kubeconfig says"."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    request_timeout: str | None = None
    in_cluster: bool = False


@dataclass(frozen=True)
class Connection:
    kube: Kube
    namespace: str
    context: str
    #: The kubeconfig's user name: the fallback identity when SelfSubjectReview is not allowed.
    user: str
    server: str


def parse_timeout(value: str | None) -> float | None:
    """kubectl's --request-timeout: ``0`` means none, a bare number is seconds, else a duration like 1m30s."""
    if value is None or value in ("", "0"):
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise errors.ConfigError(
            f"invalid --request-timeout {value!r}: use a number of seconds or a duration such as 5s or 1m"
        )
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def connect(settings: Settings = Settings()) -> Connection:
    """Open a connection as kubectl would with the same flags; ConfigError says what is wrong."""
    from kubernetes import client, config  # deferred: the fast paths never import the client
    from kubernetes.config.config_exception import ConfigException

    timeout = parse_timeout(settings.request_timeout)
    configuration = client.Configuration()
    try:
        if settings.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
            namespace = settings.namespace or _in_cluster_namespace()
            return Connection(
                Kube(client.ApiClient(configuration), timeout=timeout),
                namespace,
                "in-cluster",
                "",
                configuration.host,
            )
        paths = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        merged = config.kube_config.KubeConfigMerger(paths).config
        if merged is None:
            raise errors.ConfigError(
                f"no kubeconfig found at {paths}: pass --kubeconfig, set KUBECONFIG, or run inside a cluster"
            )
        data = _plain(merged)
        context_name = settings.context or data.get("current-context")
        entries = {_plain(c).get("name"): _plain(c) for c in data.get("contexts") or ()}
        if not context_name:
            raise errors.ConfigError("the kubeconfig has no current context: pass --context")
        if context_name not in entries:
            known = ", ".join(sorted(str(n) for n in entries)) or "none"
            raise errors.ConfigError(f'context "{context_name}" not found in the kubeconfig (contexts: {known})')
        context = dict(_plain(entries[context_name].get("context") or {}))
        if settings.cluster:
            context["cluster"] = settings.cluster
        if settings.user:
            context["user"] = settings.user
        # NB: the merged config keeps each entry's file path, which relative certificate paths need;
        # overrides go into the entry in place.
        entries[context_name]["context"] = context
        loader = config.kube_config.KubeConfigLoader(config_dict=merged, active_context=context_name)
        loader.load_and_set(configuration)
    except ConfigException as e:
        raise errors.ConfigError(f"cannot use the kubeconfig: {e}") from e
    except OSError as e:
        raise errors.ConfigError(f"cannot read the kubeconfig: {e}") from e
    namespace = settings.namespace or context.get("namespace") or "default"
    return Connection(
        Kube(client.ApiClient(configuration), timeout=timeout),
        namespace,
        context_name,
        context.get("user", ""),
        configuration.host,
    )


def _plain(node):
    """The dict or list inside a kubeconfig ConfigNode (the merger wraps entries in them)."""
    return getattr(node, "value", node)


def _in_cluster_namespace() -> str:
    try:
        with open(IN_CLUSTER_NAMESPACE_FILE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"
