"""Kube over the transport seam (canarygate.kube.transport): any Transport will do; an HTTP answer
keeps its status (translated), no answer is Unreachable, and neither shows a secret; a watch is
closed however it ends. The light transport's watch releases its socket on close, also when the
server answered ``Connection: close``; Kube.log prints kubectl -v=6 lines on both transports.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canarygate import errors
from canarygate.kube import connect, light
from canarygate.kube.client import Kube
from canarygate.kube.kubeconfig import Resolved
from canarygate.kube.transport import Answer, Unanswered

SECRET = "s3cr3t-t0ken-value"


class Watch:
    def __init__(self, status: int, lines: list[bytes], then: BaseException | None = None) -> None:
        self.status, self._lines, self._then = status, lines, then
        self.closed = self.was_cut = False

    def read(self) -> bytes:
        return json.dumps({"kind": "Status", "message": f"token {SECRET} is gone"}).encode()

    def lines(self) -> Iterator[bytes]:
        yield from self._lines
        if self._then is not None:
            raise self._then

    def cut(self) -> None:
        self.was_cut = True

    def close(self) -> None:
        self.closed = True


class Scripted:
    """A Transport that answers from a script."""

    host = "https://api.test:6443"
    secrets = (SECRET,)

    def __init__(self, answer: Answer | BaseException | None = None, watch: Watch | None = None) -> None:
        self.answer, self.watch = answer, watch
        self.sent: list[tuple] = []

    def send(self, method, path, query, headers, body, timeout) -> Answer:
        self.sent.append((method, path, list(query), dict(headers), body, timeout))
        if isinstance(self.answer, BaseException):
            raise self.answer
        assert self.answer is not None
        return self.answer

    def stream(self, path, query, headers, timeout) -> Watch:
        assert self.watch is not None
        self.sent.append(("WATCH", path, list(query), dict(headers), None, timeout))
        return self.watch

    def close(self) -> None:
        pass


def test_no_answer_is_unreachable_naming_the_server_without_the_secret():
    kube = Kube(Scripted(Unanswered(f"proxy refused Authorization: Bearer {SECRET}")))
    with pytest.raises(errors.Unreachable) as caught:
        kube.request("GET", "/api/v1/namespaces")
    assert str(caught.value).startswith("cannot reach the API server at https://api.test:6443: proxy refused")
    assert SECRET not in str(caught.value)


def test_an_answer_keeps_its_status_and_is_scrubbed():
    status = {"kind": "Status", "message": f"token {SECRET} may not list pods"}
    kube = Kube(Scripted(Answer(403, json.dumps(status).encode())))
    with pytest.raises(errors.Forbidden) as caught:
        kube.request("GET", "/api/v1/pods")
    assert "may not list pods" in str(caught.value) and SECRET not in str(caught.value)
    kube = Kube(Scripted(Answer(503, b"overloaded")))
    with pytest.raises(errors.Unreachable, match="the API server answered 503: overloaded"):
        kube.request("GET", "/api/v1/pods")
    assert Kube(Scripted(Answer(502, b"from the backend"))).request_raw("GET", "/x") == (502, b"from the backend")


def test_the_request_sent_and_the_default_timeout():
    transport = Scripted(Answer(200, b'{"ok": true}'))
    kube = Kube(transport, timeout=7.0)
    assert kube.request("PATCH", "/p", query=[("dryRun", "All")], body={"a": 1}, content_type="x/y") == {"ok": True}
    kube.request("GET", "/p", timeout=(1.0, 2.0))
    assert transport.sent == [
        ("PATCH", "/p", [("dryRun", "All")], {"Accept": "application/json", "Content-Type": "x/y"}, {"a": 1}, 7.0),
        ("GET", "/p", [], {"Accept": "application/json"}, None, (1.0, 2.0)),
    ]


def test_a_watch_takes_the_default_timeout():
    transport = Scripted(watch=Watch(200, []))
    assert list(Kube(transport, timeout=7.0).stream("/w", query=[("watch", "1")])) == []
    assert transport.sent == [("WATCH", "/w", [("watch", "1")], {"Accept": "application/json"}, None, 7.0)]


def test_the_official_adapter_keeps_the_status_of_an_answer_it_raised():
    """The official client raises some answers (a 429 its retries gave up on) as ApiException:
    the adapter hands them back as answers; an ApiException without a status is no answer."""
    from types import SimpleNamespace

    from kubernetes.client.exceptions import ApiException

    from canarygate.kube.official import OfficialTransport

    class Raising:
        """The two ApiClient methods the adapter calls, raising what the official client raises."""

        configuration = SimpleNamespace(host="https://api.test", api_key={"BearerToken": f"Bearer {SECRET}"})

        def __init__(self, error: ApiException) -> None:
            self.error = error

        def param_serialize(self, **_):
            return ("GET", "https://api.test/x", {}, None, [])

        def call_api(self, *_, **__):
            raise self.error

    busy = Kube(OfficialTransport(Raising(ApiException(status=429, reason="Too Many Requests"))))
    with pytest.raises(errors.Unreachable, match="the API server answered 429"):
        busy.request("GET", "/x")
    refused = Raising(ApiException(status=0, reason=f"SSLError\nCERTIFICATE_VERIFY_FAILED, Bearer {SECRET}"))
    with pytest.raises(errors.Unreachable) as caught:
        Kube(OfficialTransport(refused)).request("GET", "/x")
    assert str(caught.value).startswith("cannot reach the API server at https://api.test: SSLError")
    assert SECRET not in str(caught.value)


def test_a_watch_is_closed_however_it_ends():
    fine = Watch(200, [b'{"type": "ADDED"}', b'{"type": "DELETED"}'])
    cuts = []
    assert [e["type"] for e in Kube(Scripted(watch=fine)).stream("/w", on_open=cuts.append)] == ["ADDED", "DELETED"]
    assert fine.closed and len(cuts) == 1
    cuts[0]()
    assert fine.was_cut

    refused = Watch(410, [])
    with pytest.raises(errors.Expired):
        list(Kube(Scripted(watch=refused)).stream("/w"))
    assert refused.closed

    broken = Watch(200, [b'{"type": "ADDED"}'], Unanswered(f"reset, Bearer {SECRET}"))
    with pytest.raises(errors.Unreachable, match="the watch stream broke: reset") as caught:
        list(Kube(Scripted(watch=broken)).stream("/w"))
    assert broken.closed and SECRET not in str(caught.value)

    torn = Watch(200, [b'{"type": "ADD'])
    with pytest.raises(errors.Unreachable, match="the watch stream was cut mid-event"):
        list(Kube(Scripted(watch=torn)).stream("/w"))
    assert torn.closed

    left = Watch(200, [b'{"type": "ADDED"}', b'{"type": "ADDED"}'])
    events = Kube(Scripted(watch=left)).stream("/w")
    next(events)
    events.close()  # the caller stops reading
    assert left.closed


class _ClosingWatch(BaseHTTPRequestHandler):
    """Answers every GET with two watch events, "Connection: close" and no length (HTTP/1.0)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b'{"type": "ADDED", "object": {}}\n{"type": "MODIFIED", "object": {}}\n')

    def log_message(self, *args) -> None:
        pass


def _open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd")
def test_a_light_watch_closed_releases_its_socket_after_connection_close():
    """With "Connection: close" http.client hands the socket to the response: closing only the
    connection would leave it open (until the garbage collector came by) when the watch is closed
    before its end."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClosingWatch)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        resolved = Resolved("c", {}, "c", {"server": f"http://127.0.0.1:{server.server_port}"}, "u", {}, "default")
        transport = light.LightTransport(light.endpoint(resolved))
        before = _open_files()
        watches = []
        for _ in range(3):
            watch = transport.stream("/api/v1/pods", [("watch", "1")], {}, 5.0)
            assert json.loads(next(watch.lines()))["type"] == "ADDED"
            watch.close()  # before the end: as a watch cut or left by its reader
            watches.append(watch)  # NB: kept referenced: what is released must be by close()
        deadline = time.monotonic() + 3
        while _open_files() > before and time.monotonic() < deadline:
            time.sleep(0.02)  # the server's side closes in its own thread
        assert _open_files() <= before
    finally:
        server.shutdown()
        server.server_close()


class _QuietClosingWatch(BaseHTTPRequestHandler):
    """One watch event, "Connection: close", then silence until the test ends (``released`` is set)."""

    released = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b'{"type": "ADDED", "object": {}}\n')
        self.wfile.flush()
        self.released.wait(60)

    def log_message(self, *args) -> None:
        pass


def test_a_light_watch_answered_connection_close_can_still_be_cut():
    """http.client hands the socket to the response on "Connection: close": the cut must still reach
    it, or a silent watch could not be reopened until its read timeout."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QuietClosingWatch)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        resolved = Resolved("c", {}, "c", {"server": f"http://127.0.0.1:{server.server_port}"}, "u", {}, "default")
        watch = light.LightTransport(light.endpoint(resolved)).stream("/api/v1/pods", [("watch", "1")], {}, 60.0)
        lines = watch.lines()
        assert json.loads(next(lines))["type"] == "ADDED"
        ended: list[object] = []

        def read() -> None:
            try:
                ended.append(next(lines, "ended"))
            except Unanswered as e:
                ended.append(e)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.2)  # the reader is blocked on the silent socket
        watch.cut()
        reader.join(20)  # NB: the server stays silent for 60 s: only the cut ends the read before that
        assert ended, "cut() did not end the read of a watch answered with Connection: close"
        watch.close()
    finally:
        _QuietClosingWatch.released.set()
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("transport", [connect.OFFICIAL, connect.LIGHT])
def test_kube_log_prints_kubectl_v6_lines(kubeconfig, apiserver, transport):
    with connect.connect(connect.Settings(kubeconfig=kubeconfig, transport=transport)) as conn:
        lines: list[str] = []
        conn.kube.log = lines.append
        conn.kube.request("GET", "/api/v1/namespaces/default")
        with pytest.raises(errors.NotFound):
            conn.kube.request("GET", "/api/v1/namespaces/absent", query=[("pretty", "true")])
    assert [line.rsplit(" in ", 1)[0] for line in lines] == [
        f"GET {apiserver.url}/api/v1/namespaces/default 200",
        f"GET {apiserver.url}/api/v1/namespaces/absent?pretty=true 404",
    ]
    assert all(line.endswith(" milliseconds") for line in lines)


@pytest.mark.parametrize("transport", [connect.OFFICIAL, connect.LIGHT])
def test_cutting_a_watch_that_already_broke_does_nothing(kubeconfig, apiserver, transport):
    """The cut handed to on_open may come late, from a liveness probe after the outage that broke
    the watch: it must not raise (the probe would fail every time after)."""
    with connect.connect(connect.Settings(kubeconfig=kubeconfig, transport=transport)) as conn:
        version = conn.kube.request("GET", "/api/v1/namespaces")["metadata"]["resourceVersion"]
        cuts: list = []
        ended: list[BaseException] = []
        events = conn.kube.stream(
            "/api/v1/namespaces", query=[("watch", "1"), ("resourceVersion", version)], on_open=cuts.append
        )

        def read() -> None:
            try:
                next(events)
            except BaseException as e:  # noqa: BLE001 - checked below
                ended.append(e)

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + 10
        while not cuts and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cuts, "the watch did not open"
        apiserver.faults.down = True
        try:
            reader.join(10)
        finally:
            apiserver.faults.down = False
        assert len(ended) == 1 and isinstance(ended[0], errors.Unreachable)
        cuts[0]()  # after the stream broke and was closed
        cuts[0]()
