"""Reach a Service through the API server's proxy (``services/NAME:PORT/proxy``), with the caller's
credentials: how ``kubectl gate version`` asks the sidecar for its version."""

from __future__ import annotations

import json
from urllib.parse import quote
from typing import Any

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import SERVICES


def service_get(kube: Kube, namespace: str, service: str, port: str, path: str, *, timeout: float = 5.0) -> Any:
    """GET ``path`` on ``service:port`` through the proxy; the decoded JSON, or the text when not JSON."""
    # NB: the ":" between service and port stays literal, as client-go sends it.
    proxy = SERVICES.path(namespace, service) + f":{quote(port, safe='')}/proxy/" + path.lstrip("/")
    # NB: the proxy answers with the backend's own body, which need not be JSON.
    response = kube._send("GET", proxy, timeout=timeout)
    data = response.read()
    if not 200 <= response.status < 300:
        from canarygate.kube.client import translate

        raise translate(response.status, data, resource=SERVICES, name=service, method="GET")
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace").strip()
    except Exception as e:  # pragma: no cover - decode failures
        raise errors.Unreachable(f"unreadable answer from {service}: {e}") from e
