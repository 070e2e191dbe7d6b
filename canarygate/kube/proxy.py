"""Reach a Service through the API server's proxy (``services/NAME:PORT/proxy``), with the caller's
credentials: how ``kubectl gate version`` asks the sidecar for its version."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from canarygate import errors
from canarygate.kube.client import Kube, translate
from canarygate.kube.resources import SERVICES

#: A bound for one proxied call when the connection has no --request-timeout of its own.
DEFAULT_TIMEOUT = 5.0


def service_get(kube: Kube, namespace: str, service: str, port: str, path: str, *, timeout: float | None = None) -> Any:
    """GET ``path`` on ``service:port`` through the proxy; the decoded JSON, or the text when not JSON.

    The API server's own refusals (no such Service, no endpoints, RBAC) come as Status objects and
    are translated as for any request; any other failing answer is the backend's own, reported as
    such (Unreachable naming the Service and what it answered).
    """
    # NB: the ":" between service and port stays literal, as client-go sends it.
    proxy = SERVICES.path(namespace, service) + f":{quote(port, safe='')}/proxy/" + path.lstrip("/")
    limit = timeout if timeout is not None else (kube.timeout or DEFAULT_TIMEOUT)
    status, data = kube.request_raw("GET", proxy, timeout=limit)
    if not 200 <= status < 300:
        if _is_status(data):
            raise translate(status, data, resource=SERVICES, name=service, method="GET")
        text = data.decode("utf-8", "replace").strip()[:200]
        raise errors.Unreachable(f"{namespace}/{service} answered {status}" + (f": {text}" if text else ""))
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace").strip()


def _is_status(data: bytes) -> bool:
    """True for a Kubernetes Status body: the API server speaking, not the backend."""
    try:
        body = json.loads(data)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("kind") == "Status"
