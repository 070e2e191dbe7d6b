"""The one way to open an API connection, as kubectl would with the same flags.

:func:`connect` reads the kubeconfig with :mod:`canarygate.kube.kubeconfig` (kubectl's merge rules
and overrides) or the pod's service account, and returns a :class:`Connection` whose
:class:`~canarygate.kube.client.Kube` talks through one of two transports
(:class:`canarygate.kube.transport.Transport`):

* ``"kubernetes"``: the official client's ``ApiClient`` (:mod:`canarygate.kube.official`), fed
  the merged kubeconfig as a plain dict (``KubeConfigLoader``: tokens, certificates, exec and
  auth-provider plugins, refreshed on expiry), or ``load_incluster_config``. Long-running services use it.
* ``"light"``: :mod:`canarygate.kube.light` on the standard library, ~190 ms faster to start (the
  CLI's default); a kubeconfig it cannot serve (auth-provider, https proxies) falls back to the
  official client, which sends Impersonate-User/-Uid itself but cannot send impersonated groups.

Both keep kubectl's transport rules (:func:`canarygate.kube.kubeconfig.resolve` refuses
credentials over plain http and a CA with insecure-skip-tls-verify; proxies are Go's
ProxyFromEnvironment); no error shows a credential.

Every configuration problem is a :class:`canarygate.errors.ConfigError` that says what to do.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from canarygate import durations, errors
from canarygate.kube import kubeconfig
from canarygate.kube.client import Kube
from canarygate.kube.kubeconfig import Overrides
from canarygate.kube.transport import Transport

if TYPE_CHECKING:
    from canarygate.kube.light import LightTransport
    from canarygate.kube.official import OfficialTransport

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

#: Transports: the official ``kubernetes`` client, or the light one (falling back to the official).
OFFICIAL = "kubernetes"
LIGHT = "light"


@dataclass(frozen=True)
class Settings:
    """kubectl's connection flags; None means "as the kubeconfig says"."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    #: --server, --token, --as... (:class:`canarygate.kube.kubeconfig.Overrides`).
    overrides: Overrides = field(default_factory=Overrides)
    #: kubectl's --request-timeout text, or seconds.
    request_timeout: str | float | None = None
    in_cluster: bool = False
    #: OFFICIAL or LIGHT. In-cluster connections always use the official client.
    transport: str = OFFICIAL


@dataclass(frozen=True)
class Connection:
    kube: Kube
    namespace: str
    context: str
    #: The kubeconfig's user name: the fallback identity when SelfSubjectReview is not allowed.
    user: str
    server: str
    #: The transport actually used (OFFICIAL after a light fallback).
    transport: str = OFFICIAL

    def close(self) -> None:
        """Close the connection's sockets (:meth:`Kube.close`); ``with connect(...) as conn:`` does it."""
        self.kube.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_timeout(value: str | float | None) -> float | None:
    """kubectl's --request-timeout: ``0`` means none, a bare number is seconds, else a duration like 1m30s."""
    if isinstance(value, (int, float)):
        return float(value) or None
    if value is None or value in ("", "0"):
        return None
    try:
        return durations.parse_flag(value) or None
    except ValueError:
        raise errors.ConfigError(
            f"invalid --request-timeout {value!r}: use a number of seconds or a duration such as 5s or 1m"
        ) from None


def connect(settings: Settings = Settings()) -> Connection:
    """Open a connection as kubectl would with the same flags; ConfigError says what is wrong.

    Nothing is sent to the API server here (the light transport may run an exec plugin).
    """
    if settings.transport not in (OFFICIAL, LIGHT):
        raise ValueError(f"unknown transport {settings.transport!r}")
    timeout = parse_timeout(settings.request_timeout)
    if settings.in_cluster:
        return _in_cluster(settings, timeout)
    resolved = kubeconfig.resolve(
        kubeconfig=settings.kubeconfig,
        context=settings.context,
        cluster=settings.cluster,
        user=settings.user,
        namespace=settings.namespace,
        overrides=settings.overrides,
    )
    found: Transport | None = _light(resolved) if settings.transport == LIGHT else None
    transport = LIGHT if found is not None else OFFICIAL
    if found is None:
        found = _official(resolved)
    return Connection(
        Kube(found, timeout=timeout),
        resolved.namespace,
        resolved.context_name,
        resolved.user_name,
        found.host,
        transport,
    )


def _light(resolved: kubeconfig.Resolved) -> LightTransport | None:
    """A LightTransport, or None when the kubeconfig needs the official client (light.Unsupported).

    NB: a credential that cannot be loaded, or an exec plugin that fails, is a ConfigError here: the
    official client would log the plugin's failure and carry on without credentials.
    """
    from canarygate.kube import light

    try:
        return light.LightTransport(light.endpoint(resolved))
    except light.Unsupported:
        return None


def _official(resolved: kubeconfig.Resolved) -> OfficialTransport:
    """The official client for ``resolved`` as a Transport, with what it lacks of kubectl's rules added: the proxy
    from the environment (it reads none), and an exec plugin that gave no credential is an error."""
    from kubernetes import client, config  # deferred: the light transport never imports it
    from kubernetes.config.config_exception import ConfigException

    from canarygate.kube import light
    from canarygate.kube.client import scrub
    from canarygate.kube.official import OfficialTransport

    configuration = client.Configuration()
    secrets = [str(resolved.user.get(k) or "") for k in ("token", "password")]
    memory: list[int] = []
    logged = _Held()
    root = logging.getLogger()
    root.addFilter(logged)  # NB: the official client logs a failing plugin's output (tokens too) and goes on
    try:
        loader = config.kube_config.KubeConfigLoader(
            config_dict=_in_memory(resolved, memory, _exec_as_data(resolved)), active_context=resolved.context_name
        )
        loader.load_and_set(configuration)
    except (ConfigException, OSError, ValueError) as e:
        raise errors.ConfigError(f"cannot use the kubeconfig: {scrub(str(e), secrets)}") from None
    finally:
        root.removeFilter(logged)
    spec = resolved.user.get("exec")
    has_credential = configuration.api_key.get("BearerToken") or configuration.cert_file
    if isinstance(spec, dict) and not has_credential and not resolved.user.get("token"):
        why = scrub("; ".join(logged.messages), secrets)[-800:]
        raise errors.ConfigError(
            f'the exec credential plugin "{spec.get("command")}" of user "{resolved.user_name}" '
            f"gave no credential{f' ({why})' if why else ''}: refusing to go on without one"
        )
    for message in logged.messages:  # anything else it logged, scrubbed
        print(f"warning: {scrub(message, secrets)}", file=sys.stderr)
    _go_proxy(configuration, str(resolved.cluster.get("proxy-url") or ""))
    if light.impersonation_repeated(resolved.user):  # NB: its headers are a dict: one value per header
        raise errors.ConfigError(
            "impersonating groups or user-extra (--as-group, as-groups) needs the light "
            "transport: unset KUBECTL_GATE_CLIENT"
        )
    api: Any = client.ApiClient(configuration)
    for name, value in light.impersonation_headers(resolved.user).items():  # NB: KubeConfigLoader ignores `as`
        api.set_default_header(name, value)
    for fd in memory:
        weakref.finalize(api, os.close, fd)
    return OfficialTransport(api, secrets=tuple(x for x in secrets if x))  # NB: basic auth's password


def _go_proxy(configuration: Any, proxy_url: str = "") -> None:
    """The kubeconfig's proxy-url (for every host, NO_PROXY or not), else the proxy Go's
    ProxyFromEnvironment picks (as kubectl and client-go), in place of the one the official client
    reads from the environment by Python's rules (lower case first, ALL_PROXY, loopback proxied, its
    own NO_PROXY matching)."""
    from canarygate.kube import light

    found = proxy_url or light.proxy_for(configuration.host)
    if found and found.lower().startswith("socks"):
        import importlib.util

        if importlib.util.find_spec("socks") is None:
            from canarygate.kube.client import scrub

            raise errors.ConfigError(
                f"the official client needs PySocks for the SOCKS proxy {scrub(found)} "
                "(pip install PySocks); the light transport (the CLI's default) needs nothing"
            )
    if found and found.lower().startswith("socks5://"):
        found = "socks5h" + found[len("socks5") :]  # NB: as Go's SOCKS5 dialer, the proxy resolves the host
    configuration.proxy = found
    configuration.no_proxy = None
    configuration.proxy_headers = (light.proxy_headers_for(found) or None) if found else None


class _Held(logging.Filter):
    """Holds back what is logged to the root logger (the official client's ``logging.error``)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.messages.append(record.getMessage())
        return False


_DATA_KEYS = {"clusters": ("certificate-authority",), "users": ("client-certificate", "client-key")}


def _memfd() -> bool:
    return hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd")


def _exec_as_data(resolved: kubeconfig.Resolved) -> dict[str, Any]:
    """The kubeconfig with the in-use user's exec plugin run by our reader when it answers with a
    client certificate: its cert and key become ``client-*-data`` (then memory files, :func:`_in_memory`)
    and the ``exec`` entry goes. The official client would write them to temporary files that
    outlive a signal (and never refreshes a certificate anyway). A plugin that answers with a token
    only stays for the official client, which runs it again and refreshes the token on expiry.
    Unchanged without an exec plugin, or where memfd does not exist. A failing plugin is a
    ConfigError naming it (:func:`canarygate.kube.light._exec_credential`).
    """
    from canarygate.kube import light

    spec = resolved.user.get("exec")
    if not isinstance(spec, dict) or not _memfd():
        return resolved.config
    token, cert, key = light._exec_credential(spec, resolved.user_name)
    if not cert:
        return resolved.config
    users = []
    for entry in resolved.config.get("users") or ():
        if entry.get("name") == resolved.user_name:
            body = {k: v for k, v in (entry.get("user") or {}).items() if k != "exec"}
            body["client-certificate-data"] = base64.b64encode(cert).decode()
            body["client-key-data"] = base64.b64encode(key).decode()
            if token:
                body["token"] = token
            entry = {**entry, "user": body}
        users.append(entry)
    return {**resolved.config, "users": users}


def _in_memory(resolved: kubeconfig.Resolved, fds: list[int], source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The kubeconfig for the official client with the in-use cluster's and user's ``*-data`` turned
    into anonymous memory files (``/proc/self/fd/N`` of a memfd): the official client writes inline
    data to temporary files that outlive a SIGTERM; a memfd never reaches a disk and dies with the
    process. The fds stay open as long as the client (urllib3 reads the files on each new connection).
    ``source`` (default: the resolved kubeconfig) is the dict to convert; unchanged where memfd does not exist.
    """
    source = resolved.config if source is None else source
    if not _memfd():
        return source
    config = dict(source)
    for section, keys in _DATA_KEYS.items():
        name = resolved.cluster_name if section == "clusters" else resolved.user_name
        entries = []
        for entry in config.get(section) or ():
            inner = section[:-1]
            body = dict(entry.get(inner) or {})
            if entry.get("name") == name:
                for key in keys:
                    if body.get(key + "-data"):
                        try:
                            data = base64.b64decode(body.pop(key + "-data"))
                        except ValueError:
                            raise errors.ConfigError(f"{key}-data is not base64") from None
                        fd = os.memfd_create("kubectl-gate-credential", os.MFD_CLOEXEC)
                        fds.append(fd)
                        os.write(fd, data)
                        body[key] = f"/proc/self/fd/{fd}"
            entries.append({**entry, inner: body})
        config[section] = entries
    return config


def _in_cluster(settings: Settings, timeout: float | None) -> Connection:
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    from canarygate.kube.official import OfficialTransport

    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except ConfigException as e:
        raise errors.ConfigError(f"cannot use the in-cluster config: {e}") from e
    except OSError as e:
        raise errors.ConfigError(f"cannot read the in-cluster config: {e}") from e
    _go_proxy(configuration)
    namespace = settings.namespace or _in_cluster_namespace()
    return Connection(
        Kube(OfficialTransport(client.ApiClient(configuration)), timeout=timeout),
        namespace,
        "in-cluster",
        "",
        configuration.host,
    )


def _in_cluster_namespace() -> str:
    try:
        with open(IN_CLUSTER_NAMESPACE_FILE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"
