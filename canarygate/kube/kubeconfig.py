"""The one kubeconfig reader, with kubectl's rules (no ``kubernetes`` import: completion uses it too).

* Which files: ``--kubeconfig`` is one file and no merge; else ``KUBECONFIG`` (an ``os.pathsep``
  list, missing files skipped); else ``~/.kube/config``.
* Merge: the first file to set a value wins: ``current-context`` and each named cluster, context
  and user. (The Python client's ``KubeConfigMerger`` lets the *last* file set current-context.)
* Paths inside a file (certificate-authority, client-certificate, client-key, tokenFile, an exec
  command with a path separator) are made absolute against that file's directory, so the merged
  result is a plain dict any consumer can use without knowing where entries came from.
* Overrides: ``--context``, ``--cluster``, ``--user``, ``-n`` as kubectl applies them.

Every problem is a :class:`canarygate.errors.ConfigError` that says what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from canarygate import errors

SECTIONS = ("clusters", "contexts", "users")
_PATH_KEYS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}


def paths(explicit: str | None = None) -> list[str]:
    """The files to read: ``explicit`` alone, else the KUBECONFIG list, else ~/.kube/config."""
    if explicit:
        return [explicit]  # NB: kubectl reads only this file, no merge
    env = os.environ.get("KUBECONFIG")
    if env:
        found = [p for p in env.split(os.pathsep) if p]
        if found:
            return found
    return ["~/.kube/config"]


def load(files: list[str]) -> dict[str, Any]:
    """Merge ``files`` as kubectl does: ``{"current-context", "clusters", "contexts", "users"}``.

    Entries are ``{"name": ..., "cluster"|"context"|"user": {...}}`` with absolute paths. Missing
    files are skipped; ConfigError when none exists or one cannot be read or parsed.
    """
    import yaml

    merged: dict[str, Any] = {"current-context": "", "clusters": [], "contexts": [], "users": []}
    seen: dict[str, set[str]] = {s: set() for s in SECTIONS}
    found = False
    for path in files:
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
            raise errors.ConfigError(f"the kubeconfig {path} is not a kubeconfig (expected a mapping)")
        found = True
        base = os.path.dirname(os.path.abspath(full))
        if data.get("current-context") and not merged["current-context"]:
            merged["current-context"] = str(data["current-context"])
        for section in SECTIONS:
            inner = section[:-1]
            for entry in data.get(section) or ():
                name = entry.get("name") if isinstance(entry, dict) else None
                if not name or name in seen[section]:
                    continue
                seen[section].add(name)
                merged[section].append({"name": name, inner: _absolute(section, dict(entry.get(inner) or {}), base)})
    if not found:
        raise errors.ConfigError(
            f"no kubeconfig found at {os.pathsep.join(files)}: pass --kubeconfig, set KUBECONFIG, "
            "or run inside a cluster"
        )
    return merged


def _absolute(section: str, body: dict[str, Any], base: str) -> dict[str, Any]:
    for key in _PATH_KEYS.get(section, ()):
        if body.get(key):
            path = os.path.expanduser(str(body[key]))
            body[key] = path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))
    if section == "users" and isinstance(body.get("exec"), dict):
        command = str(body["exec"].get("command") or "")
        if os.sep in command and not os.path.isabs(command):
            body["exec"] = {**body["exec"], "command": os.path.normpath(os.path.join(base, command))}
    return body


def names(explicit: str | None, section: str) -> list[str]:
    """Sorted names of the merged kubeconfig's ``section`` (contexts, clusters or users)."""
    return sorted(e["name"] for e in load(paths(explicit))[section])


@dataclass(frozen=True)
class Resolved:
    """One context resolved with the overrides: what a transport needs to connect."""

    context_name: str
    context: dict[str, Any]
    cluster_name: str
    cluster: dict[str, Any]
    #: "" when the context names no user (anonymous), as kubectl allows.
    user_name: str
    user: dict[str, Any]
    namespace: str
    #: The merged kubeconfig with the overridden context as current: for the official KubeConfigLoader.
    config: dict[str, Any] = field(repr=False, default_factory=dict)


def resolve(
    *,
    kubeconfig: str | None = None,
    context: str | None = None,
    cluster: str | None = None,
    user: str | None = None,
    namespace: str | None = None,
) -> Resolved:
    """Read the kubeconfig and pick the context, cluster and user the way kubectl would.

    ConfigError when there is no current context, or a named context, cluster or user is not in
    the kubeconfig (the message lists the ones that are).
    """
    merged = load(paths(kubeconfig))
    by_name = {s: {e["name"]: e[s[:-1]] for e in merged[s]} for s in SECTIONS}
    context_name = context or merged["current-context"]
    if not context_name:
        raise errors.ConfigError("the kubeconfig has no current context: pass --context")
    if context_name not in by_name["contexts"]:
        raise _unknown("context", context_name, by_name["contexts"])
    ctx = dict(by_name["contexts"][context_name])
    if cluster:
        if cluster not in by_name["clusters"]:
            raise _unknown("cluster", cluster, by_name["clusters"])
        ctx["cluster"] = cluster
    if user:
        if user not in by_name["users"]:
            raise _unknown("user", user, by_name["users"])
        ctx["user"] = user
    cluster_name = str(ctx.get("cluster") or "")
    if cluster_name not in by_name["clusters"]:
        raise _unknown("cluster", cluster_name, by_name["clusters"], f' (named by context "{context_name}")')
    user_name = str(ctx.get("user") or "")
    config = {
        **merged,
        "current-context": context_name,
        "contexts": [c for c in merged["contexts"] if c["name"] != context_name]
        + [{"name": context_name, "context": ctx}],
    }
    return Resolved(
        context_name=context_name,
        context=ctx,
        cluster_name=cluster_name,
        cluster=dict(by_name["clusters"][cluster_name]),
        user_name=user_name,
        user=dict(by_name["users"].get(user_name) or {}),
        namespace=namespace or ctx.get("namespace") or "default",
        config=config,
    )


def _unknown(kind: str, name: str, known: dict[str, Any], where: str = "") -> errors.ConfigError:
    listed = ", ".join(sorted(known)) or "none"
    return errors.ConfigError(f'{kind} "{name}"{where} not found in the kubeconfig ({kind}s: {listed})')
