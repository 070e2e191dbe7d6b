"""The one kubeconfig reader, with kubectl's rules (no ``kubernetes`` import: completion uses it too).

* Which files: ``--kubeconfig`` is one file and no merge; else ``KUBECONFIG`` (an ``os.pathsep``
  list, missing files skipped); else ``~/.kube/config``.
* Merge: the first file to set a value wins: ``current-context`` and each named cluster, context
  and user. Two entries of one name in one file: the file is refused, as kubectl refuses it. (The
  Python client's ``KubeConfigMerger`` lets the *last* file set current-context.)
* Paths inside a file (certificate-authority, client-certificate, client-key, tokenFile, an exec
  command with a path separator) are made absolute against that file's directory, so the merged
  result is a plain dict any consumer can use without knowing where entries came from.
* Overrides: ``--context``, ``--cluster``, ``--user``, ``-n`` as kubectl applies them, and the
  flags that override fields of the cluster and user in use (:class:`Overrides`: ``--server``,
  ``--token``, ``--as``...); with ``--server``, no kubeconfig file is needed, as with kubectl.
* What kubectl refuses of the cluster and user in use is refused (in its words), and credentials
  never go over plain http (kubectl drops them silently; we say so). ``~`` in a file's paths is not
  expanded, as in kubectl. No message shows a secret field's value or a YAML line's text.

Every problem is a :class:`canarygate.errors.ConfigError` that says what to do.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from canarygate import errors

SECTIONS = ("clusters", "contexts", "users")

#: The typed fields of each entry, as client-go decodes them (``clientcmd/api/v1``, YAML turned into
#: JSON, then Go's ``encoding/json``): kubectl refuses a file whose field has another type
#: (``insecure-skip-tls-verify: "false"`` is a string, not false; ``token: 12345`` a number), and so do
#: we, rather than read a string's truthiness. Go decodes ``null`` as "leave the zero value": a null or
#: missing field is "" / false / empty, a null item of a list of strings is "" (``as-groups: [a, null]``
#: is ``["a", ""]``), a null env item is ``{name: "", value: ""}``; kubectl accepts all these, and
#: :func:`load` hands them on in that decoded form. Fields not listed are passed on unchecked.
_BOOL, _STR, _STRS, _MAP = "a boolean (true or false, unquoted)", "a string", "a list of strings", "a mapping"
_EXTRA = "a mapping of lists of strings"
_ENV = "a list of {name, value} (strings)"
_FIELDS: dict[str, dict[str, str]] = {
    "clusters": {
        "server": _STR,
        "tls-server-name": _STR,
        "insecure-skip-tls-verify": _BOOL,
        "certificate-authority": _STR,
        "certificate-authority-data": _STR,
        "proxy-url": _STR,
        "disable-compression": _BOOL,
        "extensions": "a list",
    },
    "contexts": {"cluster": _STR, "user": _STR, "namespace": _STR, "extensions": "a list"},
    "users": {
        "client-certificate": _STR,
        "client-certificate-data": _STR,
        "client-key": _STR,
        "client-key-data": _STR,
        "token": _STR,
        "tokenFile": _STR,
        "as": _STR,
        "as-uid": _STR,
        "as-groups": _STRS,
        "as-user-extra": _EXTRA,
        "username": _STR,
        "password": _STR,
        "auth-provider": _MAP,
        "exec": _MAP,
        "extensions": "a list",
    },
}
_EXEC_FIELDS = {
    "command": _STR,
    "args": _STRS,
    "apiVersion": _STR,
    "installHint": _STR,
    "provideClusterInfo": _BOOL,
    "interactiveMode": _STR,
    "env": _ENV,
}
#: Fields whose value is never shown in a message.
SECRET_FIELDS = frozenset({"token", "password", "client-key-data", "client-certificate-data"})
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
            # NB: not str(e): PyYAML quotes the offending line, which may hold a token
            raise errors.ConfigError(f"the kubeconfig {path} is not valid YAML: {_yaml_problem(e)}") from None
        if not isinstance(data, dict):
            raise errors.ConfigError(f"the kubeconfig {path} is not a kubeconfig (expected a mapping)")
        found = True
        if data.get("current-context") is not None and not isinstance(data["current-context"], str):
            raise errors.ConfigError(
                f"the kubeconfig {path}: current-context must be a string, not {_kind(data['current-context'])}"
            )
        base = os.path.dirname(os.path.abspath(full))
        if data.get("current-context") and not merged["current-context"]:
            merged["current-context"] = str(data["current-context"])
        for section in SECTIONS:
            inner = section[:-1]
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise errors.ConfigError(f"the kubeconfig {path}: {section} must be a list, not {_kind(entries)}")
            here: set[str | None] = set()
            for entry in entries:
                _check_entry(path, section, entry)
                name = entry.get("name") if isinstance(entry, dict) else None
                if name in here:
                    # NB: kubectl refuses the file too, printing every entry, tokens included; we do not
                    raise errors.ConfigError(
                        f'the kubeconfig {path}: two {section} are named "{name}" (kubectl refuses this file too)'
                    )
                here.add(name)
                if not name or name in seen[section]:
                    continue
                seen[section].add(name)
                body = _decoded(section, dict(entry.get(inner) or {}))
                merged[section].append({"name": name, inner: _absolute(section, body, base)})
    if not found:
        raise errors.ConfigError(
            f"no kubeconfig found at {os.pathsep.join(files)}: pass --kubeconfig, set KUBECONFIG, "
            "or run inside a cluster"
        )
    return merged


def _yaml_problem(e: Exception) -> str:
    """What PyYAML found and where (line and column), without the text of the line, as kubectl says it."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or "cannot parse it"
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else str(problem)


def _kind(value: Any, secret: bool = False) -> str:
    if secret and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return "a number" if isinstance(value, (int, float)) else "a string"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _is_str(value: Any) -> bool:
    return value is None or isinstance(value, str)  # NB: Go leaves a string at "" for null


def _fits(value: Any, expected: str) -> bool:
    """Whether client-go decodes ``value`` into a field of type ``expected`` (null always: zero value)."""
    if value is None:
        return True
    if expected == _BOOL:
        return isinstance(value, bool)
    if expected == _STR:
        return isinstance(value, str)
    if expected == _STRS:
        return isinstance(value, list) and all(_is_str(v) for v in value)
    if expected == _MAP:
        return isinstance(value, dict)
    if expected == _EXTRA:
        return isinstance(value, dict) and all(_fits(v, _STRS) for v in value.values())
    if expected == _ENV:
        return isinstance(value, list) and all(
            v is None or (isinstance(v, dict) and _is_str(v.get("name")) and _is_str(v.get("value"))) for v in value
        )
    return isinstance(value, list)


def _strings(value: Any) -> Any:
    """A list of strings as Go decodes it: null items are ""."""
    return ["" if v is None else v for v in value] if isinstance(value, list) else value


def _decoded(section: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` (already checked) with the list items client-go fills in: null items "", env name/value ""."""
    if section != "users":
        return body
    if isinstance(body.get("as-groups"), list):
        body["as-groups"] = _strings(body["as-groups"])
    if isinstance(body.get("as-user-extra"), dict):
        body["as-user-extra"] = {k: _strings(v) for k, v in body["as-user-extra"].items()}
    spec = body.get("exec")
    if isinstance(spec, dict):
        spec = dict(spec)
        if isinstance(spec.get("args"), list):
            spec["args"] = _strings(spec["args"])
        if isinstance(spec.get("env"), list):
            spec["env"] = [
                {**(item or {}), "name": (item or {}).get("name") or "", "value": (item or {}).get("value") or ""}
                for item in spec["env"]
            ]
        body["exec"] = spec
    return body


def _check_entry(path: str, section: str, entry: Any) -> None:
    """ConfigError naming the file, the entry and the field when a typed field has the wrong type."""
    inner = section[:-1]
    if not isinstance(entry, dict):
        raise errors.ConfigError(
            f"the kubeconfig {path}: each of {section} must be a mapping, not {_kind(entry, secret=section == 'users')}"
        )
    name = entry.get("name")
    if not isinstance(name, (str, type(None))):
        raise errors.ConfigError(f"the kubeconfig {path}: a {inner} name must be a string, not {_kind(name)}")
    body = entry.get(inner)
    where = f'the kubeconfig {path}, {inner} "{name}"'
    if body is None:
        return
    if not isinstance(body, dict):
        raise errors.ConfigError(f"{where}: {inner} must be a mapping, not {_kind(body, secret=section == 'users')}")
    checks = [(key, body[key], expected) for key, expected in _FIELDS[section].items() if key in body]
    if section == "users" and isinstance(body.get("exec"), dict):
        checks += [
            (f"exec.{key}", body["exec"][key], expected)
            for key, expected in _EXEC_FIELDS.items()
            if key in body["exec"]
        ]
    for key, value, expected in checks:
        if not _fits(value, expected):
            # NB: only type mismatches get here: client-go's decoding refuses each of them, whole file.
            # NB: a user's values are never shown (a token or an env secret typed in the wrong place)
            shown = _described(value, expected, secret=section == "users" or key in SECRET_FIELDS)
            raise errors.ConfigError(
                f"{where}: field {key} must be {expected}, not {shown} (kubectl refuses this file too)"
            )


def _described(value: Any, expected: str, secret: bool = False) -> str:
    """``value`` as the user should find it: for a list or mapping, its first wrong item."""
    if isinstance(value, list) and expected in (_STRS, _ENV):
        for i, item in enumerate(value, 1):
            if expected == _STRS and not _is_str(item):
                return f"a list whose item {i} is {_kind(item, secret)}"
            if expected == _ENV and not (item is None or isinstance(item, dict)):
                return f"a list whose item {i} is {_kind(item, secret)}"
            if expected == _ENV:
                for part in ("name", "value"):
                    if not _is_str(item.get(part)):
                        return f"a list whose item {i} has {part} {_kind(item[part], secret)}"
    if isinstance(value, dict) and expected == _EXTRA:
        for k, v in value.items():
            if not _fits(v, _STRS):
                return f"a mapping whose {k!r} is {_described(v, _STRS, secret)}"
    return _kind(value, secret)


def _absolute(section: str, body: dict[str, Any], base: str) -> dict[str, Any]:
    for key in _PATH_KEYS.get(section, ()):
        if body.get(key):
            path = str(body[key])  # NB: no ~ expansion: kubectl reads "~/ca.pem" as relative to the file
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
class Overrides:
    """kubectl's flags that override fields of the cluster and user in use; None/empty: unchanged.

    As client-go's ConfigOverrides: a file flag replaces the field and drops its ``*-data``;
    ``--insecure-skip-tls-verify`` drops the CA; ``--token`` replaces the token (and tokenFile);
    ``--as``/``--as-group``/``--as-uid`` are the user's ``as``/``as-groups``/``as-uid``.
    """

    server: str | None = None
    certificate_authority: str | None = None
    insecure_skip_tls_verify: bool = False
    tls_server_name: str | None = None
    token: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    impersonate_uid: str | None = None

    def apply(self, cluster: dict[str, Any], user: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        cluster, user = dict(cluster), dict(user)
        for key, value in (("server", self.server), ("tls-server-name", self.tls_server_name)):
            if value:
                cluster[key] = value
        if self.certificate_authority:
            cluster["certificate-authority"] = os.path.abspath(self.certificate_authority)
            cluster.pop("certificate-authority-data", None)
        if self.insecure_skip_tls_verify:
            cluster["insecure-skip-tls-verify"] = True
            cluster.pop("certificate-authority", None)
            cluster.pop("certificate-authority-data", None)
        if self.token:
            user["token"] = self.token
            user.pop("tokenFile", None)
        for key, value in (("client-certificate", self.client_certificate), ("client-key", self.client_key)):
            if value:
                user[key] = os.path.abspath(value)
                user.pop(key + "-data", None)
        if self.impersonate:
            user["as"] = self.impersonate
        if self.impersonate_groups:
            user["as-groups"] = list(self.impersonate_groups)
        if self.impersonate_uid:
            user["as-uid"] = self.impersonate_uid
        return cluster, user


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
    overrides: Overrides | None = None,
) -> Resolved:
    """Read the kubeconfig and pick the context, cluster and user the way kubectl would.

    ConfigError when there is no current context (and no ``--server``), or a named context, cluster
    or user is not in the kubeconfig (the message lists the ones that are).
    """
    overrides = overrides or Overrides()
    try:
        merged = load(paths(kubeconfig))
    except errors.ConfigError as e:
        if not (overrides.server and not kubeconfig and str(e).startswith("no kubeconfig found")):
            raise
        merged = {"current-context": "", "clusters": [], "contexts": [], "users": []}
    by_name = {s: {e["name"]: e[s[:-1]] for e in merged[s]} for s in SECTIONS}
    context_name = context or merged["current-context"]
    if not context_name and overrides.server and not (cluster or user):
        # NB: kubectl --server URL --token T needs no kubeconfig: an empty context, cluster and user
        by_name["clusters"][""], by_name["users"][""] = {}, {}
        by_name["contexts"][""] = {"cluster": "", "user": ""}
        merged = {
            **merged,
            "clusters": [*merged["clusters"], {"name": "", "cluster": {}}],
            "users": [*merged["users"], {"name": "", "user": {}}],
        }
    elif not context_name:
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
    used_cluster, used_user = overrides.apply(by_name["clusters"][cluster_name], by_name["users"].get(user_name) or {})
    _check_usable(cluster_name, used_cluster, user_name, used_user)
    config = {
        **merged,
        "current-context": context_name,
        "contexts": [c for c in merged["contexts"] if c["name"] != context_name]
        + [{"name": context_name, "context": ctx}],
        "clusters": [c for c in merged["clusters"] if c["name"] != cluster_name]
        + [{"name": cluster_name, "cluster": used_cluster}],
        "users": [u for u in merged["users"] if u["name"] != user_name] + [{"name": user_name, "user": used_user}],
    }
    return Resolved(
        context_name=context_name,
        context=ctx,
        cluster_name=cluster_name,
        cluster=used_cluster,
        user_name=user_name,
        user=used_user,
        namespace=namespace or ctx.get("namespace") or "default",
        config=config,
    )


def scheme(server: str) -> str:
    """The server URL's scheme as Go's url.Parse reads it (any case is the same); "http" when it has none."""
    head, sep, _ = server.partition("://")
    return head.lower() if sep else "http"


def credentials(user: dict[str, Any]) -> list[str]:
    """The kinds of credentials ``user`` carries (empty: anonymous)."""
    kinds = [
        ("token", ("token", "tokenFile")),
        ("basic auth", ("username", "password")),
        ("client certificate", ("client-certificate", "client-certificate-data", "client-key", "client-key-data")),
        ("exec plugin", ("exec",)),
        ("auth-provider", ("auth-provider",)),
    ]
    return [kind for kind, keys in kinds if any(user.get(k) for k in keys)]


def _check_usable(cluster_name: str, cluster: dict[str, Any], name: str, user: dict[str, Any]) -> None:
    """What kubectl checks of the cluster and user it is about to use, beyond types (client-go's
    ``validateClusterInfo``/``validateAuthInfo`` and its transport), in kubectl's words; and that no
    credential goes over plain http. Files are not opened here (the transports read them).

    Only the user in use: kubectl reads a file with an unnamed env variable in some other user's exec
    plugin, and uses the other users.
    """
    server = str(cluster.get("server") or "")
    if not server:  # NB: kubectl would try localhost:8080
        raise errors.ConfigError(f'the kubeconfig\'s cluster "{cluster_name}" has no server')
    sent = credentials(user)
    if sent and scheme(server) != "https":
        # NB: kubectl silently sends nothing over http (client-go merges credentials only for https);
        # an anonymous gate change would be refused or misattributed, so say it instead.
        raise errors.ConfigError(
            f'refusing to send the credentials of user "{name}" ({", ".join(sent)}) over plain http to '
            f'{server} (cluster "{cluster_name}"): kubectl never sends credentials over http '
            "either. Use the cluster's https:// address."
        )
    proxy = str(cluster.get("proxy-url") or "")
    proxy_scheme = proxy.partition("://")[0].lower() if "://" in proxy else ""
    if proxy and proxy_scheme not in ("http", "https", "socks5"):
        shown = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1<redacted>@", proxy)  # NB: kubectl prints the password
        why = (
            f'unsupported scheme "{proxy_scheme}", must be http, https, or socks5'
            if proxy_scheme
            else f"could not parse: {shown}"
        )
        raise errors.ConfigError(
            f'invalid \'proxy-url\' "{shown}" for cluster "{cluster_name}": {why} (kubectl refuses this too)'
        )
    if cluster.get("insecure-skip-tls-verify") is True and (
        cluster.get("certificate-authority") or cluster.get("certificate-authority-data")
    ):
        raise errors.ConfigError(
            f'the kubeconfig\'s cluster "{cluster_name}" has both a certificate-authority and '
            "insecure-skip-tls-verify: true (kubectl refuses this too: specifying a root certificates file with "
            "the insecure flag is not allowed). Remove one of them."
        )
    if cluster.get("certificate-authority") and cluster.get("certificate-authority-data"):
        raise errors.ConfigError(
            f'the kubeconfig\'s cluster "{cluster_name}" cannot be used (kubectl refuses it too: '
            f"certificate-authority-data and certificate-authority are both specified for {cluster_name}. "
            "certificate-authority-data will override.)"
        )
    problems = []
    if user.get("client-certificate") or user.get("client-certificate-data"):
        if user.get("client-certificate") and user.get("client-certificate-data"):
            problems.append(
                f"client-cert-data and client-cert are both specified for {name}. client-cert-data will override."
            )
        if user.get("client-key") and user.get("client-key-data"):
            problems.append(
                f"client-key-data and client-key are both specified for {name}; client-key-data will override"
            )
        if not (user.get("client-key") or user.get("client-key-data")):
            problems.append(
                f"client-key-data or client-key must be specified for {name} to use the clientCert "
                "authentication method."
            )
    methods = (["token"] if user.get("token") else []) + (
        ["basicAuth"] if user.get("username") or user.get("password") else []
    )
    spec = user.get("exec")
    if isinstance(spec, dict):
        if user.get("auth-provider"):
            problems.append(f"authProvider cannot be provided in combination with an exec plugin for {name}")
        if not spec.get("command"):
            problems.append(f"command must be specified for {name} to use exec authentication plugin")
        if not spec.get("apiVersion"):
            problems.append(f"apiVersion must be specified for {name} to use exec authentication plugin")
        if any(not item["name"] for item in spec.get("env") or ()):
            problems.append(f"env variable name must be specified for {name} to use exec authentication plugin")
        mode = spec.get("interactiveMode") or _DEFAULT_MODE.get(str(spec.get("apiVersion") or ""), "")
        if not mode:
            problems.append(f"interactiveMode must be specified for {name} to use exec authentication plugin")
        elif mode not in ("Never", "IfAvailable", "Always"):
            problems.append(f"invalid interactiveMode for {name}: {mode!r}".replace("'", '"'))
    if len(methods) > 1:
        problems.append(
            f"more than one authentication method found for {name}; found [{' '.join(methods)}], only one is allowed"
        )
    if (user.get("as-uid") or user.get("as-groups") or user.get("as-user-extra")) and not user.get("as"):
        problems.append(f"requesting uid, groups or user-extra for {name} without impersonating a user")
    if problems:
        raise errors.ConfigError(
            f'the kubeconfig\'s user "{name}" cannot be used (kubectl refuses this user too: '
            + "; ".join(problems)
            + ")"
        )


#: client-go's defaults for an exec plugin's interactiveMode: only the older API versions have one.
_DEFAULT_MODE = {
    "client.authentication.k8s.io/v1beta1": "IfAvailable",
    "client.authentication.k8s.io/v1alpha1": "IfAvailable",
}


def _unknown(kind: str, name: str, known: dict[str, Any], where: str = "") -> errors.ConfigError:
    listed = ", ".join(sorted(known)) or "none"
    return errors.ConfigError(f'{kind} "{name}"{where} not found in the kubeconfig ({kind}s: {listed})')
