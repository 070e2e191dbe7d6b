"""Errors the core raises. Each message says what happened and, where it can, what to do.

The Kubernetes access layer translates API failures into these at its boundary, so neither face
ever sees a client exception.
"""

from __future__ import annotations


class GateError(Exception):
    """Base of every error the core raises."""


class InvalidGate(GateError):
    """A CanaryGate, a gate name, a state or an input file that cannot be used as it is."""


def not_found_message(kind: str, name: str, namespace: str = "") -> str:
    """What a missing object is called everywhere: ``CanaryGate "demo" not found in namespace "shop"``
    (the API server's own ``canaries.flagger.app "demo" not found`` when there is no namespace to add)."""
    message = f'{kind} "{name}" not found'
    return f'{message} in namespace "{namespace}"' if namespace else message


class NotFound(GateError):
    """The object asked for does not exist."""

    def __init__(self, message: str, *, kind: str = "", name: str = "", namespace: str = ""):
        super().__init__(message)
        self.kind, self.name, self.namespace = kind, name, namespace


class CrdMissing(NotFound):
    """The API server does not serve the resource: its CRD is not installed."""


class Conflict(GateError):
    """The object changed under us more times than we retry, or already exists."""


class Expired(GateError):
    """410 Gone: the resourceVersion asked for is older than the server keeps; list again."""


class Forbidden(GateError):
    """RBAC refused the request; the message names the user and the verb."""


class Unauthorized(GateError):
    """The API server did not accept our credentials."""


class Unreachable(GateError):
    """The API server could not be reached, or answered with a server error."""


class UntrustedServer(Unreachable):
    """The API server's TLS certificate is not trusted: the kubeconfig names no CA (or the wrong one)
    for it. An Unreachable too, so callers that retry or report outages still catch it."""


class Invalid(GateError):
    """The API server rejected an object as invalid (422), with its field causes."""


class ConfigError(GateError):
    """The kubeconfig (or in-cluster config) cannot be used: missing file, context, or credentials."""
