"""The ``services/proxy`` subresource: ``/api/v1/namespaces/{ns}/services/{id}/proxy/{path}``.

What kube-apiserver does (pkg/registry/core/service/proxy.go, the Service storage's
``ResourceLocation``, apimachinery's ``proxy.UpgradeAwareHandler`` and proxy ``Transport``), and
what of it is kept here:

* ``{id}`` is ``name``, ``name:port`` or ``scheme:name:port`` (scheme ``http`` or ``https``);
  anything else is 400 ``invalid service request "ID"``.
* A port *number* is looked up in the Service's ``spec.ports`` and replaced by that port's name:
  a missing Service is 404 ``services "NAME" not found``, a number no port has is 503
  ``no service port N found for service "NAME"``.
* Then the endpoints (kube-apiserver 1.37 reads the Service's EndpointSlices): a missing Service
  reached by port *name* (or with no port) is 503 ``no endpoints available for service "NAME"``,
  as is a Service with no endpoint; a port name that no port of the Service has is 503
  ``no endpoints available for service "ID"`` (read from the 1.3x source, not checked on a real
  cluster: that needs a reachable endpoint). With no port in ``{id}`` only an unnamed port
  matches (so a Service whose one port is named needs ``name:portname``).
* GET or HEAD with nothing after ``/proxy`` is answered 301 to the same path with ``/`` added.
* The request is forwarded with its method, its body, its query string as sent, and the path
  after ``/proxy`` (cleaned as Go's ``path.Join`` does, trailing slash kept); its headers go along
  minus the hop-by-hop ones and minus ``Authorization`` (kube-apiserver's authentication filter
  removes it), plus ``X-Forwarded-For``/``-Uri``/``-Host``/``-Proto``.
* The upstream's status, headers (minus hop-by-hop) and body come back as they are; a
  ``Location`` on the upstream pointing at itself is rewritten under the proxy path. An upstream
  that cannot be reached (refused, reset, timed out) is 503 ``error trying to reach service: ...``
  with Go's wording of the dial error.

Sandbox-only, because the sandbox runs no pods and keeps no Endpoints: where a Service's traffic
goes is declared on the Service by the test, with the annotation

    sandbox.apiserver/endpoint: http://127.0.0.1:PORT          (every port of the Service)
    sandbox.apiserver/endpoint.PORTNAME: http://127.0.0.1:PORT (that named port; wins)

A Service without one behaves as one whose Endpoints have no address (503), with or without a
selector. The annotation's scheme is used when ``{id}`` names none (kube-apiserver would say
``http``); only loopback hosts are forwarded to. Not done: protocol upgrades (exec, websockets,
SPDY), rewriting links inside text/html answers, streaming (the upstream's answer is read whole,
then sent), and the deprecated
``/api/v1/proxy/namespaces/...`` paths.
"""

from __future__ import annotations

import http.client
import ipaddress
import posixpath
import socket
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from werkzeug.wrappers import Request, Response

from sandbox.apiserver import status

ENDPOINT_ANNOTATION = "sandbox.apiserver/endpoint"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
UPSTREAM_TIMEOUT = 30.0
# NB: what a path segment may hold unescaped (RFC 3986 pchar), as Go's URL.EscapedPath keeps it.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"

GetService = Callable[[str, str], "dict | None"]


class _Passthrough(Response):
    default_mimetype = None  # NB: no Content-Type invented when the upstream sent none


def split_scheme_name_port(service_id: str) -> tuple[str, str, str]:
    """``(scheme, name, port)`` of ``name``, ``name:port`` or ``scheme:name:port``; 400 otherwise."""
    parts = service_id.split(":")
    scheme, port = "", ""
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        name, port = parts
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        name = ""
    if not name or scheme not in ("", "http", "https"):
        raise status.bad_request(f"invalid service request {_go_quote(service_id)}")
    return scheme, name, port


def resolve(get_service: GetService, namespace: str, service_id: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` to send ``service_id``'s traffic to, or the ApiError kube answers."""
    scheme, name, port = split_scheme_name_port(service_id)
    if port.lstrip("+-").isdigit():
        service = get_service(namespace, name)
        if service is None:
            raise status.not_found("services", "", name)
        number = int(port)
        match = next((p for p in _ports(service) if _int(p.get("port")) == number), None)
        if match is None:
            raise status.ApiError(503, f"no service port {number} found for service {_go_quote(name)}")
        port = match.get("name") or ""
    service = get_service(namespace, name)
    if service is None:
        raise status.ApiError(503, f"no endpoints available for service {_go_quote(name)}")
    annotations = (service.get("metadata") or {}).get("annotations") or {}
    declared = (annotations.get(f"{ENDPOINT_ANNOTATION}.{port}") if port else None) or annotations.get(
        ENDPOINT_ANNOTATION
    )
    if not declared:
        raise status.ApiError(503, f"no endpoints available for service {_go_quote(name)}")
    if port not in {p.get("name") or "" for p in _ports(service)}:
        raise status.ApiError(503, f"no endpoints available for service {_go_quote(service_id)}")
    url = urlsplit(declared.strip())
    try:
        host, upstream_port = url.hostname, url.port
    except ValueError:
        host = upstream_port = None
    if url.scheme not in ("http", "https") or not host:
        raise unreachable(f"the {ENDPOINT_ANNOTATION} annotation {declared!r} is not an http(s) URL")
    if not _loopback(host):
        raise unreachable(f"the sandbox forwards only to loopback, not to {host}")
    chosen = scheme or url.scheme
    return chosen, host, upstream_port or (443 if chosen == "https" else 80)


def serve(request: Request, get_service: GetService, namespace: str, service_id: str) -> Response:
    """Answer one proxied request (already authenticated and authorized)."""
    if request.method not in METHODS:
        raise status.ApiError(
            405, "the server does not allow this method on the requested resource", reason="MethodNotAllowed"
        )
    # NB: /api/v1/namespaces/{ns}/services/{id}/proxy[/{path}]: split by segment, not by text
    parts = request.path.lstrip("/").split("/")
    prefix, rest = "/" + "/".join(parts[:7]), "/".join(parts[7:])
    scheme, host, port = resolve(get_service, namespace, service_id)
    path = _join(rest)
    if request.path.endswith("/") and not path.endswith("/"):
        path += "/"
    if not path and request.method in ("GET", "HEAD"):
        query = request.query_string.decode("latin-1")
        return _Passthrough(status=301, headers={"Location": request.path + "/" + ("?" + query if query else "")})
    target = quote(path or "/", safe=_PATH_SAFE)
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    headers = _forward_headers(request, f"{host}:{port}")
    body: bytes | None = request.get_data()
    if not body and request.method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        body = None
    try:
        code, reason, upstream_headers, data = _round_trip(scheme, host, port, request.method, target, headers, body)
    except (OSError, http.client.HTTPException) as e:
        raise unreachable(_go_dial_error(e, host, port)) from None
    out = _Passthrough(data, status=code)
    out.status = f"{code} {reason}".strip()
    drop = HOP_BY_HOP | _connection_tokens(upstream_headers) | {"content-length"}
    for k, v in upstream_headers:
        if k.lower() in drop:
            continue
        if k.lower() == "location":
            v = _rewrite_location(v, request, prefix, host, port)
        out.headers.add(k, v)
    if request.method == "HEAD":  # NB: the body's length is the upstream's, not that of the empty body here
        length = next((v for k, v in upstream_headers if k.lower() == "content-length"), None)
        out.headers.pop("Content-Length", None)
        if length is not None:
            out.headers["Content-Length"] = length
    return out


def unreachable(why: str) -> status.ApiError:
    return status.ApiError(503, f"error trying to reach service: {why}")


# -- forwarding ------------------------------------------------------------------------------------
def _round_trip(
    scheme: str, host: str, port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes | None
) -> tuple[int, str, list[tuple[str, str]], bytes]:
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # NB: kube-apiserver's proxy transport does not verify either
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=UPSTREAM_TIMEOUT, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=UPSTREAM_TIMEOUT)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = b"" if method == "HEAD" else response.read()
        return response.status, response.reason, response.getheaders(), data
    finally:
        conn.close()


def _forward_headers(request: Request, host: str) -> list[tuple[str, str]]:
    incoming = list(request.headers.items())
    drop = HOP_BY_HOP | _connection_tokens(incoming) | {"host", "authorization", "content-length", "x-forwarded-for"}
    out = [(k, v) for k, v in incoming if k.lower() not in drop and not (k.lower() == "content-type" and not v)]
    out.append(("Host", host))
    forwarded_for, client = request.headers.get("X-Forwarded-For"), request.remote_addr or ""
    out.append(("X-Forwarded-For", f"{forwarded_for}, {client}" if forwarded_for else client))
    uri = quote(request.path, safe=_PATH_SAFE)
    out += [("X-Forwarded-Uri", uri), ("X-Forwarded-Host", request.host), ("X-Forwarded-Proto", "https")]
    return out


def _connection_tokens(headers: list[tuple[str, str]]) -> set[str]:
    return {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",") if t.strip()}


def _rewrite_location(location: str, request: Request, prefix: str, host: str, port: int) -> str:
    """Point an upstream redirect at itself back through the proxy, as kube's proxy Transport does."""
    url = urlsplit(location)
    if url.netloc and url.netloc not in (f"{host}:{port}", host, request.host):
        return location
    if not url.path.startswith("/"):
        return location
    if url.path.startswith(prefix):
        path = url.path
    else:
        path = posixpath.normpath(prefix + url.path) + ("/" if url.path.endswith("/") else "")
    out = f"https://{request.host}{path}"
    if url.query:
        out += "?" + url.query
    if url.fragment:
        out += "#" + url.fragment
    return out


def _join(rest: str) -> str:
    """The upstream path: the request's path after ``/proxy``, cleaned like Go's path.Join."""
    rest = rest.strip("/")
    if not rest:
        return ""
    return posixpath.normpath("/" + rest).replace("//", "/")


def _go_dial_error(e: BaseException, host: str, port: int) -> str:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {address}: connect: connection refused"
    if isinstance(e, (socket.timeout, TimeoutError)):
        return f"dial tcp {address}: i/o timeout"
    if isinstance(e, ConnectionResetError):
        return f"read tcp {address}: read: connection reset by peer"
    if isinstance(e, http.client.RemoteDisconnected):
        return "EOF"
    return f"dial tcp {address}: {e}"


# -- helpers ----------------------------------------------------------------------------------------
def _ports(service: dict) -> list[dict]:
    return [p for p in ((service.get("spec") or {}).get("ports") or []) if isinstance(p, dict)]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _go_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
