"""Open a connection as kubectl does, working around two problems of ``canarygate.kube.connect``.

1. ``connect()`` reads ``KubeConfigMerger(...).config.value``, whose list entries are
   ``ConfigNode`` objects, and calls ``.get`` on them: AttributeError for every kubeconfig.
2. The Python client's merger lets the *last* file of ``KUBECONFIG`` set ``current-context``;
   kubectl lets the *first* file that sets a value win (also for clusters, users, contexts).

This module merges the files itself (kubectl's rules; relative paths made absolute against the
file that holds them), applies --context/--cluster/--user/-n, and hands one plain dict to the
official ``KubeConfigLoader`` (tokens, certificates, exec credential plugins), returning the
core's :class:`~canarygate.kube.connect.Connection`. Reported to the core's owner; when
``connect()`` is fixed, callers can switch back.
"""

from __future__ import annotations

import os
from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.connect import Connection, Settings, connect, parse_timeout

_PATH_KEYS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}


def kubeconfig_paths(settings: Settings) -> list[str]:
    if settings.kubeconfig:
        return [settings.kubeconfig]  # NB: kubectl reads only this file, no merge
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return ["~/.kube/config"]


def merge_kubeconfigs(paths: list[str]) -> dict[str, Any]:
    """kubectl's merge: the first file to set a key or a named entry wins."""
    import yaml

    merged: dict[str, Any] = {"clusters": [], "contexts": [], "users": []}
    seen: dict[str, set[str]] = {"clusters": set(), "contexts": set(), "users": set()}
    found = False
    for path in paths:
        full = os.path.expanduser(path)
        try:
            with open(full) as f:
                data = yaml.safe_load(f) or {}
        except FileNotFoundError:
            continue
        except OSError as e:
            raise errors.ConfigError(f"cannot read the kubeconfig {path}: {e.strerror}") from e
        except yaml.YAMLError as e:
            raise errors.ConfigError(f"the kubeconfig {path} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise errors.ConfigError(f"the kubeconfig {path} is not a kubeconfig")
        found = True
        base = os.path.dirname(os.path.abspath(full))
        if data.get("current-context") and "current-context" not in merged:
            merged["current-context"] = data["current-context"]
        for section in ("clusters", "contexts", "users"):
            inner = section[:-1]
            for entry in data.get(section) or ():
                name = (entry or {}).get("name")
                if not name or name in seen[section]:
                    continue
                seen[section].add(name)
                body = dict(entry.get(inner) or {})
                for key in _PATH_KEYS.get(section, ()):
                    if body.get(key) and not os.path.isabs(os.path.expanduser(body[key])):
                        body[key] = os.path.join(base, body[key])
                if section == "users" and isinstance(body.get("exec"), dict):
                    command = body["exec"].get("command") or ""
                    if os.sep in command and not os.path.isabs(command):
                        body["exec"] = {**body["exec"], "command": os.path.join(base, command)}
                merged[section].append({"name": name, inner: body})
    if not found:
        raise errors.ConfigError(
            f"no kubeconfig found at {os.pathsep.join(paths)}: pass --kubeconfig, set KUBECONFIG, or run inside a cluster"
        )
    return merged


def open_connection(settings: Settings = Settings()) -> Connection:
    """A connection as kubectl would open it with the same flags; ConfigError says what is wrong."""
    if settings.in_cluster:
        return connect(settings)
    if os.environ.get("KUBECTL_GATE_CLIENT", "fast") != "kubernetes":
        fast = _fast_connection(settings)
        if fast is not None:
            return fast
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    timeout = parse_timeout(settings.request_timeout)
    raw = merge_kubeconfigs(kubeconfig_paths(settings))
    context_name = settings.context or raw.get("current-context")
    contexts = {c["name"]: c["context"] for c in raw["contexts"]}
    if not context_name:
        raise errors.ConfigError("the kubeconfig has no current context: pass --context")
    if context_name not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise errors.ConfigError(f'context "{context_name}" not found in the kubeconfig (contexts: {known})')
    context = dict(contexts[context_name])
    clusters = {c["name"] for c in raw["clusters"]}
    users = {u["name"] for u in raw["users"]}
    if settings.cluster:
        if settings.cluster not in clusters:
            raise errors.ConfigError(
                f'cluster "{settings.cluster}" not found in the kubeconfig (clusters: {", ".join(sorted(clusters)) or "none"})'
            )
        context["cluster"] = settings.cluster
    if settings.user:
        if settings.user not in users:
            raise errors.ConfigError(
                f'user "{settings.user}" not found in the kubeconfig (users: {", ".join(sorted(users)) or "none"})'
            )
        context["user"] = settings.user
    raw["contexts"] = [c for c in raw["contexts"] if c["name"] != context_name] + [
        {"name": context_name, "context": context}
    ]
    raw["current-context"] = context_name
    configuration = client.Configuration()
    try:
        loader = config.kube_config.KubeConfigLoader(config_dict=raw, active_context=context_name)
        loader.load_and_set(configuration)
    except ConfigException as e:
        raise errors.ConfigError(f"cannot use the kubeconfig: {e}") from e
    except OSError as e:
        raise errors.ConfigError(f"cannot use the kubeconfig: {e}") from e
    namespace = settings.namespace or context.get("namespace") or "default"
    return Connection(
        Kube(client.ApiClient(configuration), timeout=timeout),
        namespace,
        context_name,
        context.get("user", ""),
        configuration.host,
    )


def _fast_connection(settings: Settings) -> Connection | None:
    """The standard-library client (:mod:`canarygate.kube.fastclient`) when the kubeconfig allows it.

    Only when the context resolves cleanly: every error message comes from the official path.
    """
    from canarygate.kube import fastclient

    try:
        raw = merge_kubeconfigs(kubeconfig_paths(settings))
    except errors.ConfigError:
        return None
    context_name = settings.context or raw.get("current-context")
    if not context_name or context_name not in {c["name"] for c in raw["contexts"]}:
        return None
    if settings.cluster and settings.cluster not in {c["name"] for c in raw["clusters"]}:
        return None
    if settings.user and settings.user not in {u["name"] for u in raw["users"]}:
        return None
    made = fastclient.api_client(kubeconfig=settings.kubeconfig, context=settings.context, cluster=settings.cluster,
                                 user=settings.user, namespace=settings.namespace)
    if made is None:
        return None
    api, where = made
    return Connection(Kube(api, timeout=parse_timeout(settings.request_timeout)), where.namespace, where.context,
                      where.user, where.server)
