"""Contract: the service proxy, ``/api/v1/namespaces/{ns}/services/{id}/proxy/{path}``.

Covers, through the official client, raw HTTPS and real kubectl: forwarding of method, path,
query, body and headers (minus Authorization and hop-by-hop ones) to the endpoint a Service
declares with the sandbox annotation, and the upstream's status, headers and body coming back;
the ``name``, ``name:port`` (number or name) and ``scheme:name:port`` forms; a per-port endpoint;
the 301 to ``proxy/`` when no path is given; kube-apiserver's Status answers for a missing Service
(404 by port number, 503 "no endpoints" by port name or none), no endpoint, an unknown port and an
unreachable upstream (503), an invalid id (400); RBAC
on ``services/proxy`` with the verb from the method. The answers without a backend run on both
tiers; the tests that need one declare it with the sandbox-only endpoint annotation and skip on
the real tier (see NO_LOOPBACK).
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import urllib.error
import urllib.request
import uuid

import kubernetes
import pytest
from helpers.rbac import wait_allowed
from helpers.tiers import emulator_only, real_tier
from kubernetes.client import ApiException

ENDPOINT = "sandbox.apiserver/endpoint"
NO_LOOPBACK = (
    "needs a reachable backend: kube-apiserver refuses to proxy to loopback addresses (IsProxyableIP; "
    "EndpointSlices refuse 127.0.0.1 too) and servers in tests listen only on 127.0.0.1"
)


@pytest.fixture
def backend(apiserver):
    """Marks a test that needs a backend the proxy can reach."""
    emulator_only(apiserver, NO_LOOPBACK)


def mint(apiserver, user: str) -> str:
    """A bearer token for ``user`` (no groups) that this tier accepts."""
    if real_tier(apiserver):
        return apiserver.token(user)
    token = f"tok-{uuid.uuid4().hex}"
    apiserver.add_token(token, user)
    return token


@pytest.fixture
def client_of(apiserver, tmp_path):
    """``client_of(token)`` → an ApiClient authenticated with that bearer token."""
    clients = []

    def make(token: str) -> kubernetes.client.ApiClient:
        path = apiserver.write_kubeconfig(tmp_path / f"user-{len(clients)}.yaml", token=token)
        clients.append(kubernetes.config.new_client_from_config(config_file=str(path)))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


class Upstream:
    """A loopback HTTP server that answers every request with a JSON echo of it (or ``reply``)."""

    def __init__(self, name: str = "echo"):
        self.name = name
        self.requests: list[dict] = []
        self.reply: tuple[int, list[tuple[str, str]], bytes] | None = None
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen = {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": self.rfile.read(length).decode() if length else "",
                    "upstream": upstream.name,
                }
                upstream.requests.append(seen)
                code, headers, body = upstream.reply or (
                    200,
                    [("Content-Type", "application/json")],
                    json.dumps(seen).encode(),
                )
                self.send_response(code)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def upstream():
    servers: list[Upstream] = []

    def make(name: str = "echo") -> Upstream:
        servers.append(Upstream(name))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def echo(upstream) -> Upstream:
    return upstream()


@pytest.fixture
def core(api_client) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


def make_service(
    core, namespace: str, name: str = "gate", *, annotations: dict | None = None, ports: list[dict] | None = None
) -> None:
    ports = ports if ports is not None else [{"name": "http", "port": 80, "targetPort": 8080}]
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"selector": {"app": name}, "ports": ports},
        },
    )


@pytest.fixture
def raw(apiserver):
    """``raw(method, path, token=None, body=None, headers=None)`` → (status, headers, body bytes), no redirects."""
    context = ssl.create_default_context(cadata=apiserver.ca_pem.decode())

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args):
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), NoRedirect)

    def send(
        method: str, path: str, *, token: str | None = None, body: bytes | None = None, headers: dict | None = None
    ):
        request = urllib.request.Request(
            apiserver.url + path,
            method=method,
            data=body,
            headers={"Authorization": f"Bearer {token or apiserver.admin_token}", **(headers or {})},
        )
        try:
            with opener.open(request, timeout=10) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    return send


def proxy_path(namespace: str, service_id: str, path: str = "") -> str:
    return f"/api/v1/namespaces/{namespace}/services/{service_id}/proxy{path}"


def status_of(body: bytes) -> tuple[int, str, str]:
    s = json.loads(body)
    assert (s["kind"], s["apiVersion"], s["status"]) == ("Status", "v1", "Failure")
    return s["code"], s["reason"], s["message"]


# -- forwarding ----------------------------------------------------------------------------------------
def test_official_client_get_is_forwarded(core, namespace, echo, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    resp = core.connect_get_namespaced_service_proxy_with_path("gate:80", namespace, "version", _preload_content=False)
    assert resp.status == 200
    seen = json.loads(resp.data)
    assert (seen["method"], seen["path"], seen["upstream"]) == ("GET", "/version", "echo")
    assert "Authorization" not in seen["headers"]  # NB: the apiserver's authn filter drops it
    assert seen["headers"]["X-Forwarded-Uri"] == proxy_path(namespace, "gate:80", "/version")
    assert seen["headers"]["X-Forwarded-Proto"] == "https"


@pytest.mark.parametrize("service_id", ["gate:80", "gate:http", "http:gate:80", "http:gate:http"])
def test_port_by_number_or_name_and_scheme(core, namespace, echo, raw, service_id, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    code, _, body = raw("GET", proxy_path(namespace, service_id, "/version"))
    assert code == 200, body
    assert json.loads(body)["path"] == "/version"


def test_method_path_query_body_and_headers_forwarded(core, namespace, echo, raw, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    code, _, body = raw(
        "POST",
        proxy_path(namespace, "gate:http", "/hooks/a/../b/?x=1&y=%2F"),
        body=b'{"k":"v"}',
        headers={"Content-Type": "application/json", "X-Custom": "yes", "Proxy-Authorization": "Basic eDp5"},
    )
    assert code == 200, body
    seen = json.loads(body)
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/hooks/b/?x=1&y=%2F", '{"k":"v"}')
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["X-Custom"] == "yes"
    assert "Proxy-Authorization" not in seen["headers"]  # hop-by-hop
    for method in ("PUT", "PATCH", "DELETE"):
        code, _, body = raw(
            method,
            proxy_path(namespace, "gate:http", "/thing"),
            body=b"{}",
            headers={"Content-Type": "application/json"},
        )
        assert (code, json.loads(body)["method"]) == (200, method)


def test_upstream_status_headers_and_body_come_back(core, namespace, echo, raw, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    echo.reply = (
        418,
        [("Content-Type", "text/plain"), ("X-Teapot", "short"), ("Keep-Alive", "timeout=5")],
        b"I'm a teapot\n",
    )
    code, headers, body = raw("GET", proxy_path(namespace, "gate:80", "/brew"))
    assert (code, body) == (418, b"I'm a teapot\n")
    assert headers["Content-Type"] == "text/plain"
    assert headers["X-Teapot"] == "short"
    assert headers["Keep-Alive"] is None
    code, headers, body = raw("HEAD", proxy_path(namespace, "gate:80", "/brew"))
    assert (code, body, headers["Content-Length"]) == (418, b"", str(len(b"I'm a teapot\n")))


def test_upstream_redirect_to_itself_is_rewritten_under_the_proxy(core, namespace, echo, raw, apiserver, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    echo.reply = (302, [("Location", "/login?next=%2F")], b"")
    code, headers, _ = raw("GET", proxy_path(namespace, "gate:80", "/"))
    assert code == 302
    assert headers["Location"] == apiserver.url + proxy_path(namespace, "gate:80", "/login?next=%2F")
    echo.reply = (302, [("Location", "https://example.invalid/x")], b"")
    assert raw("GET", proxy_path(namespace, "gate:80", "/"))[1]["Location"] == "https://example.invalid/x"


def test_no_path_redirects_to_slash(core, namespace, echo, raw, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    code, headers, _ = raw("GET", proxy_path(namespace, "gate:80") + "?a=b")
    assert (code, headers["Location"]) == (301, proxy_path(namespace, "gate:80", "/?a=b"))
    assert echo.requests == []
    code, _, body = raw("GET", proxy_path(namespace, "gate:80", "/"))
    assert (code, json.loads(body)["path"]) == (200, "/")


def test_per_port_endpoint_annotation(core, namespace, upstream, raw, backend):
    web, metrics = upstream("web"), upstream("metrics")
    make_service(
        core,
        namespace,
        annotations={ENDPOINT: web.url, f"{ENDPOINT}.metrics": metrics.url},
        ports=[{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}],
    )
    assert json.loads(raw("GET", proxy_path(namespace, "gate:80", "/"))[2])["upstream"] == "web"
    assert json.loads(raw("GET", proxy_path(namespace, "gate:9090", "/"))[2])["upstream"] == "metrics"
    assert json.loads(raw("GET", proxy_path(namespace, "gate:metrics", "/"))[2])["upstream"] == "metrics"


def test_name_alone_reaches_only_an_unnamed_port(core, namespace, echo, raw, backend):
    make_service(core, namespace, "named", annotations={ENDPOINT: echo.url})
    make_service(core, namespace, "unnamed", annotations={ENDPOINT: echo.url}, ports=[{"port": 80}])
    assert raw("GET", proxy_path(namespace, "unnamed", "/v"))[0] == 200
    _, _, body = raw("GET", proxy_path(namespace, "named", "/v"))
    assert status_of(body) == (503, "ServiceUnavailable", 'no endpoints available for service "named"')


# -- errors, as kube-apiserver says them --------------------------------------------------------------------
@pytest.mark.parametrize("service_id", ["nope:80", "http:nope:80"])
def test_missing_service_by_port_number_is_404(core, namespace, service_id):
    with pytest.raises(ApiException) as e:  # NB: a port number is looked up in the Service
        core.connect_get_namespaced_service_proxy_with_path(service_id, namespace, "version")
    assert e.value.status == 404
    assert status_of(e.value.body.encode() if isinstance(e.value.body, str) else e.value.body) == (
        404,
        "NotFound",
        'services "nope" not found',
    )


@pytest.mark.parametrize("service_id", ["nope", "nope:http", "http:nope:http"])
def test_missing_service_by_port_name_is_503_no_endpoints(namespace, raw, service_id):
    # NB: by port name (or none) kube-apiserver goes straight to the endpoints, and finds none
    assert status_of(raw("GET", proxy_path(namespace, service_id, "/version"))[2]) == (
        503,
        "ServiceUnavailable",
        'no endpoints available for service "nope"',
    )


@pytest.mark.parametrize("service_id", ["gate", "gate:80", "gate:http", "http:gate:80", "gate:grpc"])
def test_no_endpoint_is_503(core, namespace, raw, service_id):
    make_service(core, namespace)
    assert status_of(raw("GET", proxy_path(namespace, service_id, "/version"))[2]) == (
        503,
        "ServiceUnavailable",
        'no endpoints available for service "gate"',
    )
    with pytest.raises(ApiException) as e:
        core.connect_get_namespaced_service_proxy_with_path("gate:80", namespace, "version")
    assert e.value.status == 503


def test_unknown_port_number_is_503(core, namespace, raw):
    make_service(core, namespace)
    assert status_of(raw("GET", proxy_path(namespace, "gate:81", "/"))[2]) == (
        503,
        "ServiceUnavailable",
        'no service port 81 found for service "gate"',
    )


def test_unknown_port_name_with_endpoints_is_503(core, namespace, echo, raw, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    assert status_of(raw("GET", proxy_path(namespace, "gate:grpc", "/"))[2]) == (
        503,
        "ServiceUnavailable",
        'no endpoints available for service "gate:grpc"',
    )


def test_unreachable_upstream_is_503(core, namespace, upstream, raw, backend):
    gone = upstream()
    url = gone.url
    gone.close()
    make_service(core, namespace, annotations={ENDPOINT: url})
    code, reason, message = status_of(raw("GET", proxy_path(namespace, "gate:80", "/version"))[2])
    assert (code, reason) == (503, "ServiceUnavailable")
    assert message == f"error trying to reach service: dial tcp {url[len('http://') :]}: connect: connection refused"


def test_invalid_service_id_is_400(namespace, raw):
    assert status_of(raw("GET", proxy_path(namespace, "ftp:gate:80", "/"))[2]) == (
        400,
        "BadRequest",
        'invalid service request "ftp:gate:80"',
    )


def test_non_loopback_endpoint_is_refused(apiserver, core, namespace, raw):
    emulator_only(apiserver, "tests the emulator's endpoint annotation (kube-apiserver reads EndpointSlices)")
    make_service(core, namespace, annotations={ENDPOINT: "http://192.0.2.1:80"})
    code, reason, message = status_of(raw("GET", proxy_path(namespace, "gate:80", "/"))[2])
    assert (code, reason) == (503, "ServiceUnavailable")
    assert message.startswith("error trying to reach service: ")


# -- RBAC ---------------------------------------------------------------------------------------------------
def test_rbac_on_services_proxy(api_client, apiserver, client_of, core, namespace, raw):
    make_service(core, namespace)  # NB: no endpoints: a 503 past authorization, on both tiers
    user = f"viewer-{namespace}"
    token = mint(apiserver, user)
    path = proxy_path(namespace, "gate:80", "/version")
    code, _, body = raw("GET", path, token=token)
    assert status_of(body) == (
        403,
        "Forbidden",
        f'services "gate:80" is forbidden: User "{user}" cannot get '
        f'resource "services/proxy" in API group "" in the namespace '
        f'"{namespace}"',
    )
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "proxy-get"},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "proxy-get"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "proxy-get"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    wait_allowed(client_of(token), namespace=namespace, verb="get", resource="services")
    assert raw("GET", path, token=token)[0] == 403  # a grant on services is none on services/proxy
    rbac.patch_namespaced_role(
        "proxy-get",
        namespace,
        {
            "rules": [
                {"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list"]},
                {"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]},
            ]
        },
    )
    wait_allowed(client_of(token), namespace=namespace, verb="get", resource="services", subresource="proxy")
    code, _, body = raw("GET", path, token=token)
    assert status_of(body) == (503, "ServiceUnavailable", 'no endpoints available for service "gate"')
    assert raw("HEAD", path, token=token)[0] == 503  # HEAD is "get" too
    # the verb comes from the method: a POST is "create", which the role does not grant
    code, _, body = raw("POST", path, token=token, body=b"{}")
    assert (code, json.loads(body)["message"].split(" cannot ")[1]) == (
        403,
        f'create resource "services/proxy" in API group "" in the namespace "{namespace}"',
    )


def test_rbac_granted_proxy_reaches_the_backend(api_client, apiserver, client_of, core, namespace, echo, raw, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    user = f"viewer-{namespace}"
    token = mint(apiserver, user)
    path = proxy_path(namespace, "gate:80", "/version")
    assert raw("GET", path, token=token)[0] == 403
    assert echo.requests == []
    rbac = kubernetes.client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "proxy-get"},
            "rules": [{"apiGroups": [""], "resources": ["services/proxy"], "verbs": ["get"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "proxy-get"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "proxy-get"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    wait_allowed(client_of(token), namespace=namespace, verb="get", resource="services", subresource="proxy")
    code, _, body = raw("GET", path, token=token)
    assert (code, json.loads(body)["path"]) == (200, "/version")


# -- real kubectl ---------------------------------------------------------------------------------------------
@pytest.mark.kubectl
def test_kubectl_get_raw(kubectl, core, namespace, echo, backend):
    make_service(core, namespace, annotations={ENDPOINT: echo.url})
    out = kubectl("get", "--raw", proxy_path(namespace, "gate:80", "/version"))
    assert json.loads(out.stdout)["path"] == "/version"
    out = kubectl("get", "--raw", proxy_path(namespace, "gate:http", "/healthz?verbose=1"))
    assert json.loads(out.stdout)["path"] == "/healthz?verbose=1"


@pytest.mark.kubectl
def test_kubectl_get_raw_errors(kubectl, core, namespace):
    make_service(core, namespace)
    out = kubectl("get", "--raw", proxy_path(namespace, "gate:80", "/version"), check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == ('Error from server (ServiceUnavailable): no endpoints available for service "gate"')
    out = kubectl("get", "--raw", proxy_path(namespace, "missing:80", "/version"), check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == 'Error from server (NotFound): services "missing" not found'
