"""``kubectl gate dashboard`` over plain HTTP: the session token, Host, Origin and Sec-Fetch-Site
checks, POST-only actions without CORS, and that an action runs the CLI's own command (the change
it makes on the sandbox API is the same as the terminal's).

The server runs in-process on 127.0.0.1 against the sandbox API; requests are sent with
http.client so that every header (Host included) is the test's.
"""

from __future__ import annotations

import http.client
import json

import pytest
import yaml

from canarygate import errors
from canarygate.annotations import PREFIX
from canarygate.kube.canarygates import CANARYGATES
from kubectl_gate.context import GateContext
from kubectl_gate.dashboard import guard, server, snapshot

MANIFEST = """\
apiVersion: piggysec.com/v1alpha1
kind: CanaryGate
metadata:
  name: demo
spec:
  confirm-promotion: closed
  target: {{namespace: {ns}, name: demo}}
  flagger:
    targetRef: {{apiVersion: apps/v1, kind: Deployment, name: demo}}
    service: {{port: 8080}}
    analysis: {{interval: 10s, threshold: 2, maxWeight: 40, stepWeight: 10}}
"""


class Client:
    """Requests to the dashboard with exactly the headers given (a browser's defaults: none)."""

    def __init__(self, dash: server.Dashboard):
        self.dash = dash
        self.host = f"127.0.0.1:{dash.port}"
        self.origin = f"http://{self.host}"

    def send(self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.dash.port, timeout=10)
        try:
            headers = {"Host": self.host, **(headers or {})}
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if value is not None:
                    conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    @property
    def cookie(self) -> str:
        return f"{guard.cookie_name(self.dash.port)}={self.dash.token}"

    def action(self, request: dict, *, path: str = "/api/run", **overrides):
        """A POST as the page makes it (cookie, token header, Origin, JSON); ``overrides`` replace headers."""
        headers = {
            "Cookie": self.cookie,
            guard.TOKEN_HEADER: self.dash.token,
            "Origin": self.origin,
            "Content-Type": "application/json",
        }
        headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
        status, response_headers, raw = self.send("POST", path, headers, json.dumps(request).encode())
        return status, response_headers, json.loads(raw or b"{}")


@pytest.fixture
def contexts():
    """GateContexts for the test; their API connections closed after it."""
    made: list[GateContext] = []

    def make(**settings) -> GateContext:
        made.append(GateContext(**settings))
        return made[-1]

    yield make
    for gctx in made:
        if gctx._connection is not None:
            gctx.kube.close()


@pytest.fixture
def ns(namespace, crds) -> str:
    return namespace


def create_gate(gctx: GateContext, ns: str) -> None:
    gctx.kube.request("POST", CANARYGATES.path(ns), body=yaml.safe_load(MANIFEST.format(ns=ns)))


@pytest.fixture
def dashboard(ns, kubeconfig, contexts):
    """A CanaryGate ``demo`` in the test's namespace, and a dashboard on it (in-process, port 0)."""
    gctx = contexts(kubeconfig=kubeconfig, namespace=ns)
    create_gate(gctx, ns)
    poller = snapshot.Poller(gctx, None)
    poller.first()
    dash = server.Dashboard(gctx, poller, port=0)
    dash.serve_in_thread()
    yield Client(dash)
    dash.close()


def annotation(kube_client, namespace: str, gate: str) -> dict | None:
    obj = kube_client.request("GET", CANARYGATES.path(namespace, "demo"))
    raw = (obj["metadata"].get("annotations") or {}).get(PREFIX + gate)
    return json.loads(raw) if raw else None


OPEN = {"verb": "open", "gate": "confirm-promotion", "name": "demo", "reason": "CAB-7"}


def test_an_action_runs_the_clis_command_and_shows_it(dashboard, ns, kubeconfig):
    dash = dashboard.dash
    status, _, body = dashboard.action({**OPEN, "namespace": ns})
    assert status == 200, body
    assert body["command"] == (
        f"kubectl gate open confirm-promotion demo -n {ns} --reason=CAB-7 --kubeconfig {kubeconfig}"
    )
    assert body["exitCode"] == 0
    assert body["stdout"] == "gate confirm-promotion of canarygate/demo opened for the next rollout\n"
    change = annotation(dash.gctx.kube, ns, "confirm-promotion")
    assert (change["state"], change["by"], change["reason"]) == ("opened", "admin", "CAB-7")
    # the page's next snapshot already shows it, in show's words
    shown = dash.poller.current()[1]["items"][0]
    row = next(g for g in shown["gates"] if g["gate"] == "confirm-promotion")
    assert (row["state"], row["source"], row["setBy"], row["reason"]) == ("opened", "live", "admin", "CAB-7")


def test_with_all_namespaces_an_action_runs_in_the_canarygates_namespace(dashboard, ns, kubeconfig, contexts):
    gctx = contexts(kubeconfig=kubeconfig, all_namespaces=True)
    poller = snapshot.Poller(gctx, None)
    first = poller.first()
    assert first["scope"] == "all namespaces" and (ns, "demo") in poller.shown()
    dash = server.Dashboard(gctx, poller, port=0)
    dash.serve_in_thread()
    try:
        status, _, body = Client(dash).action({**OPEN, "namespace": ns})
    finally:
        dash.close()
    assert (status, body["exitCode"], body["stderr"]) == (200, 0, "")
    assert body["command"].startswith(f"kubectl gate open confirm-promotion demo -n {ns} ")
    assert annotation(gctx.kube, ns, "confirm-promotion")["reason"] == "CAB-7"


def test_an_api_server_not_answering_at_start_is_shown_and_retried(ns, kubeconfig, apiserver, contexts):
    gctx = contexts(kubeconfig=kubeconfig, namespace=ns)
    create_gate(gctx, ns)
    poller = snapshot.Poller(gctx, None)
    apiserver.faults.fail(status=429, times=1, path_prefix=CANARYGATES.path(ns))
    first = poller.first()
    assert first["error"].startswith("reconnecting… (the API server answered 429") and first["items"] == []
    again = poller.poll()
    assert (again["error"], [i["name"] for i in again["items"]]) == ("", ["demo"])


def test_any_other_error_at_start_fails_as_list_does(ns, kubeconfig, apiserver, contexts):
    poller = snapshot.Poller(contexts(kubeconfig=kubeconfig, namespace=ns), None)
    apiserver.faults.fail(status=403, times=1, path_prefix=CANARYGATES.path(ns))
    with pytest.raises(errors.Forbidden):
        poller.first()


def test_the_command_is_shown_before_running_and_a_reason_is_required(dashboard, ns, kubeconfig):
    request = {"verb": "promote", "name": "demo", "namespace": ns, "full": True}
    status, _, body = dashboard.action(request, path="/api/command")
    assert status == 200
    assert body == {"command": f"kubectl gate promote demo -n {ns} --full --kubeconfig {kubeconfig}"}
    status, _, body = dashboard.action(request)
    assert status == 400 and "reason is required" in body["error"]


def test_the_clis_refusals_come_back_as_the_terminal_shows_them(dashboard, ns):
    status, _, body = dashboard.action({"verb": "abort", "name": "demo", "namespace": ns, "reason": "x"})
    assert status == 200 and body["exitCode"] == 1
    assert body["stderr"].startswith(f"error: Canary {ns}/demo has no rollout in progress")
    assert annotation(dashboard.dash.gctx.kube, ns, "rollback") is None


def test_the_url_token_becomes_an_httponly_strict_cookie_and_leaves_the_address(dashboard):
    dash = dashboard.dash
    status, headers, _ = dashboard.send("GET", f"/?token={dash.token}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{guard.cookie_name(dash.port)}={dash.token};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    status, _, page = dashboard.send("GET", "/", {"Cookie": dashboard.cookie})
    assert status == 200 and b'<meta name="gate-token"' in page


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/", {}),  # no token at all
        ("/?token=not-the-token", {}),
        ("/api/state", {}),
        ("/api/state", {"Cookie": "gate-dashboard-1=whatever"}),
        ("/api/events", {}),
    ],
)
def test_without_the_session_token_nothing_is_served(dashboard, path, headers):
    status, _, body = dashboard.send("GET", path, headers)
    assert status == 403
    assert b"demo" not in body


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "192.168.1.10:{port}"])
def test_another_host_header_is_refused_against_dns_rebinding(dashboard, host):
    dash = dashboard.dash
    status, _, body = dashboard.send(
        "GET", "/api/state", {"Host": host.format(port=dash.port), "Cookie": dashboard.cookie}
    )
    assert status == 421 and b"demo" not in body


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}"])
def test_the_loopback_names_are_this_dashboard(dashboard, host):
    status, _, body = dashboard.send(
        "GET", "/api/state", {"Host": host.format(port=dashboard.dash.port), "Cookie": dashboard.cookie}
    )
    assert status == 200 and json.loads(body)["items"][0]["name"] == "demo"


@pytest.mark.parametrize(
    "overrides, status, why",
    [
        ({"Origin": "http://evil.example"}, 403, "Origin"),
        ({"Origin": "http://127.0.0.1:1"}, 403, "Origin"),
        ({"Origin": "null"}, 403, "Origin"),
        ({"Origin": None}, 403, "Origin"),
        ({"X_Gate_Token": None}, 403, guard.TOKEN_HEADER),
        ({"X_Gate_Token": "guess"}, 403, guard.TOKEN_HEADER),
        ({"Cookie": None}, 403, "session token"),
        ({"Sec_Fetch_Site": "cross-site"}, 403, "another site"),
        ({"Sec_Fetch_Site": "same-site"}, 403, "another site"),  # another port of 127.0.0.1 is same-site
        ({"Content_Type": "text/plain"}, 415, "application/json"),  # what a cross-site form can send
        ({"Content_Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ],
)
def test_a_cross_site_action_is_refused_and_changes_nothing(dashboard, ns, overrides, status, why):
    got, _, body = dashboard.action({**OPEN, "namespace": ns}, **overrides)
    assert (got, why in body["error"]) == (status, True), body
    assert annotation(dashboard.dash.gctx.kube, ns, "confirm-promotion") is None


def test_actions_are_post_only_and_no_response_allows_cors(dashboard, ns):
    query = f"?verb=open&gate=confirm-promotion&name=demo&namespace={ns}&reason=x"
    status, headers, _ = dashboard.send("GET", "/api/run" + query, {"Cookie": dashboard.cookie})
    assert status == 404
    status, preflight, _ = dashboard.send(
        "OPTIONS",
        "/api/run",
        {
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-gate-token",
        },
    )
    assert status == 405
    _, state, _ = dashboard.send("GET", "/api/state", {"Cookie": dashboard.cookie})
    _, ran, _ = dashboard.action({**OPEN, "namespace": ns})
    for response in (headers, preflight, state, ran):
        assert not [h for h in response if h.lower().startswith("access-control-")]
    assert "frame-ancestors 'none'" in state["Content-Security-Policy"]
    assert annotation(dashboard.dash.gctx.kube, ns, "confirm-promotion")["reason"] == "CAB-7"


def test_only_the_canarygates_shown_can_be_acted_on(dashboard, ns):
    status, _, body = dashboard.action({**OPEN, "namespace": "kube-system"})
    assert status == 404 and "not shown here" in body["error"]
    status, _, body = dashboard.action({**OPEN, "namespace": ns, "verb": "apply"})
    assert status == 400 and "unknown action" in body["error"]
    status, _, body = dashboard.action({**OPEN, "namespace": ns, "gate": "everything"})
    assert status == 400 and "invalid gate" in body["error"]


def test_the_event_stream_sends_the_snapshot(dashboard):
    conn = http.client.HTTPConnection("127.0.0.1", dashboard.dash.port, timeout=10)
    try:
        conn.request("GET", "/api/events", headers={"Cookie": dashboard.cookie})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/event-stream")
        lines = [response.fp.readline() for _ in range(3)]
    finally:
        conn.close()
    assert lines[:2] == [b"retry: 2000\n", b"\n"]
    data = json.loads(lines[2].removeprefix(b"data: "))
    assert [(i["name"], i["closed"]) for i in data["items"]] == [("demo", "confirm-promotion")]


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_only_a_loopback_address_is_accepted(invoke, address):
    result = invoke(["dashboard", "--address", address, "--no-browser"])
    assert result.exit_code == 2
    assert f"{address} is not a loopback address" in result.stderr


def test_help_says_what_it_does(invoke):
    result = invoke(["dashboard", "--help"])
    assert result.exit_code == 0
    for text in ("--port", "--address", "--no-browser", "-A, --all-namespaces", "--kubeconfig", "--as USER"):
        assert text in result.stdout
    assert "loopback" in result.stdout
