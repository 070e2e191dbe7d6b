"""The sidecar's settings: command-line flags, each also read from ``GATE_SIDECAR_<FLAG>``.

Parsing helpers are pure; :mod:`gate_sidecar.__main__` declares the flags (their ``--help`` is the
reference) and builds a :class:`Config`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

from canarygate.rendering import DEFAULT_ENDPOINT
from gate_sidecar.notify.config import NotifyConfig

ENV_PREFIX = "GATE_SIDECAR"
#: The Go original's variable for the endpoint; read when neither --endpoint nor its GATE_SIDECAR_ENDPOINT is set.
LEGACY_ENDPOINT_ENV = "CANARY_GATE_ENDPOINT"
DEFAULT_LISTEN = "0.0.0.0:8080"
#: How long the API server may be out of reach before progress gates answer 503 (seconds).
DEFAULT_FAIL_CLOSED_AFTER = 10.0


@dataclass(frozen=True)
class Config:
    host: str
    port: int
    #: None: every namespace.
    namespaces: tuple[str, ...] | None
    kubeconfig: str | None
    context: str | None
    in_cluster: bool
    fail_closed_after: float
    log_format: str
    log_level: str
    threads: int
    status_interval: float
    shutdown_timeout: float
    #: Create/update the Canary of every CanaryGate (gate_sidecar.reconcile).
    reconcile: bool = False
    #: Where Flagger reaches this sidecar: the rendered webhooks' base URL.
    endpoint: str = DEFAULT_ENDPOINT
    #: (host, port) of the probe port (/healthz, /readyz, /metrics only); None: no probe port.
    probe_listen: tuple[str, int] | None = None
    #: Seconds a request may take to arrive whole from its first byte (slowloris).
    read_timeout: float = 5.0
    #: Seconds a connection with no request under way stays open.
    idle_timeout: float = 30.0
    #: Connections in all, and per source address (see gate_sidecar.server).
    max_connections: int = 512
    max_connections_per_peer: int = 64
    #: With reconcile: (namespace, name) of the Lease only whose holder reconciles (gate_sidecar.leader);
    #: None: no election (this process reconciles alone). How long a Lease lasts unrenewed.
    lease: tuple[str, str] | None = None
    lease_seconds: float = 15.0
    #: Slack and webhook notifications (gate_sidecar.notify); off without a token or a webhook.
    notify: NotifyConfig = field(default_factory=NotifyConfig)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` (all interfaces) or ``[IPv6]:PORT``; ValueError says what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (for example 127.0.0.1:8080 or :8080)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def parse_optional_listen(value: str | None) -> tuple[str, int] | None:
    """As :func:`parse_listen`, but empty (or ``off``) means none."""
    value = (value or "").strip()
    return None if value.lower() in ("", "off", "none") else parse_listen(value)


def parse_namespaces(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list; empty (or ``*``) means every namespace (None)."""
    names = tuple(sorted({n.strip() for n in (value or "").split(",") if n.strip()}))
    if not names or "*" in names:
        return None
    return names


def resolve_endpoint(value: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``--endpoint`` (or GATE_SIDECAR_ENDPOINT), else $CANARY_GATE_ENDPOINT, else the default.

    ValueError when it is not an http(s) URL with a host.
    """
    environ = os.environ if environ is None else environ
    url = (value or "").strip() or environ.get(LEGACY_ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
        raise ValueError(f"{url!r} is not an http(s) URL (for example http://canary-gate-sidecar.canary-gate)")
    return url.rstrip("/")


def in_cluster_by_default(kubeconfig: str | None) -> bool:
    """Use the pod's service account when no kubeconfig is given and we run in a pod."""
    return not kubeconfig and not os.environ.get("KUBECONFIG") and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        body = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, ensure_ascii=False)


def configure_logging(log_format: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Waitress logs every queue backlog at WARNING; keep it, but not the urllib3 retry chatter.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    # NB: waitress logs "Task queue depth is N" at WARNING whenever all its threads are busy: under a
    # burst that is one line per request; the latency histogram shows queuing better.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
