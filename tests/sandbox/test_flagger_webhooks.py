"""Flagger simulator, webhook caller (docs/flagger-contract.md#the-call, #event-hooks).

Covers:
- the request: POST, Content-Type/User-Agent headers, the exact compact body in Go's field
  order, metadata omitted when empty and sorted when set, HTML escaping, Basic auth from
  the URL;
- the event payload: eventMessage/eventType/timestamp that hook metadata cannot override;
- success only on 200/201/202, the body as error text otherwise;
- retries: 500 then 202 succeeds (Flagger's TestCallWebhook_Retries), 1 s * 2^i back-off
  scaled by the time-scale factor, Retry-After on 503, 501 and 4xx not retried,
  "giving up after N attempt(s)" without the body;
- timeouts: per attempt, Go duration strings, unparsable values fail without a request,
  "" and 1-character values defaulting to 10 s for non-event hooks only;
- redirects (302 turns into a GET without body, 307 re-POSTs) and connection errors.
"""

import json
import socket
from datetime import UTC

import pytest

from sandbox.flagger import webhooks
from sandbox.flagger.testing import HookRecorder, Response

PAYLOAD = webhooks.hook_payload(
    name="podinfo", namespace="default", phase="Progressing", checksum="85d557f47b", metadata={"key1": "val1"}
)


@pytest.fixture
def hooks():
    with HookRecorder() as recorder:
        yield recorder


@pytest.fixture
def sleeps():
    return []


def call(url, payload=PAYLOAD, sleeps=None, **kwargs):
    sink = sleeps if sleeps is not None else []
    return webhooks.call_webhook(url, payload, sleep=sink.append, **kwargs)


def test_request_shape_like_flagger(hooks):
    result = call(hooks.url + "/testing?x=1", timeout="10s")
    assert result == webhooks.HookResult(ok=True, status=200, attempts=1)
    [req] = hooks.calls()
    assert (req.method, req.path) == ("POST", "/testing?x=1")
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"] == "Go-http-client/1.1"
    assert req.body == (
        b'{"name":"podinfo","namespace":"default","phase":"Progressing",'
        b'"checksum":"85d557f47b","metadata":{"key1":"val1"}}'
    )


def test_body_encoding_rules():
    bare = webhooks.hook_payload(name="a", namespace="b", phase="", checksum="c", metadata={})
    assert webhooks.encode_payload(bare) == b'{"name":"a","namespace":"b","phase":"","checksum":"c"}'
    fancy = webhooks.hook_payload(
        name="a", namespace="b", phase="Waiting", checksum="c", metadata={"z": "<x&y>", "a": "é"}
    )
    assert (
        webhooks.encode_payload(fancy)
        == (
            '{"name":"a","namespace":"b","phase":"Waiting","checksum":"c",'
            '"metadata":{"a":"é","z":"\\u003cx\\u0026y\\u003e"}}'
        ).encode()
    )


def test_event_payload_keys_win_over_metadata():
    from datetime import datetime

    now = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    payload = webhooks.event_payload(
        name="podinfo",
        namespace="default",
        phase="Progressing",
        checksum="x",
        message="Starting canary analysis for podinfo.default",
        event_type="Normal",
        now=now,
        metadata={"eventType": "spoofed", "team": "a"},
    )
    assert payload["metadata"] == {
        "eventMessage": "Starting canary analysis for podinfo.default",
        "eventType": "Normal",
        "timestamp": str(int(now.timestamp() * 1000)),
        "team": "a",
    }
    assert payload["metadata"]["timestamp"].endswith("123")


@pytest.mark.parametrize(
    "status,ok",
    [
        (200, True),
        (201, True),
        (202, True),
        (203, False),
        (204, False),
        (206, False),
        (304, False),
        (400, False),
        (403, False),
        (404, False),
        (409, False),
    ],
)
def test_success_only_on_200_to_202(hooks, status, ok):
    hooks.respond("/gate", status, "" if status in (204, 304) else "gate closed")
    result = call(hooks.url + "/gate")
    assert result.ok is ok
    assert result.status == status
    if not ok and status not in (204, 304):
        assert result.error == "gate closed"
    assert len(hooks.calls()) == 1


def test_retries_then_success(hooks, sleeps):
    hooks.respond("/r", [Response(500, "boom"), Response(202, "")])
    result = call(hooks.url + "/r", retries=1, sleeps=sleeps, time_scale=0.01)
    assert result == webhooks.HookResult(ok=True, status=202, attempts=2)
    assert sleeps == [pytest.approx(0.01)]


def test_retry_backoff_and_giving_up_hides_body(hooks, sleeps):
    hooks.respond("/r", 500, "secret body")
    result = call(hooks.url + "/r", retries=3, sleeps=sleeps, time_scale=0.5)
    assert not result.ok
    assert result.attempts == 4
    assert result.error == f"POST {hooks.url}/r giving up after 4 attempt(s)"
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(hooks.calls()) == 4
    assert len({r.body for r in hooks.calls()}) == 1


def test_backoff_cap_and_retry_after():
    assert [webhooks.backoff(i, 500, {}) for i in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert webhooks.backoff(0, 503, {"Retry-After": "45"}) == 45
    assert webhooks.backoff(0, 429, {"Retry-After": "2"}) == 2
    assert webhooks.backoff(0, 500, {"Retry-After": "45"}) == 1


def test_retry_after_on_503(hooks, sleeps):
    hooks.respond("/r", [Response(503, "", headers={"Retry-After": "2"}), Response(200)])
    assert call(hooks.url + "/r", retries=1, sleeps=sleeps, time_scale=0.1).ok
    assert sleeps == [pytest.approx(0.2)]


@pytest.mark.parametrize("status", [501, 400, 403])
def test_not_retried(hooks, sleeps, status):
    hooks.respond("/r", status, "nope")
    result = call(hooks.url + "/r", retries=3, sleeps=sleeps)
    assert (result.ok, result.error, result.attempts, sleeps) == (False, "nope", 1, [])


def test_timeout_per_attempt(hooks):
    hooks.respond("/slow", Response(200, delay=0.6))
    result = call(hooks.url + "/slow", timeout="200ms")
    assert not result.ok
    assert "giving up after 1 attempt(s)" in result.error
    assert "Client.Timeout exceeded" in result.error


def test_unparsable_timeout_fails_without_request(hooks):
    result = call(hooks.url + "/x", timeout="10sec")
    assert not result.ok
    assert result.error == 'time: unknown unit "sec" in duration "10sec"'
    assert hooks.calls() == []


def test_short_timeout_defaults_only_for_non_event_hooks(hooks):
    caller = webhooks.WebhookCaller()
    assert caller({"name": "r", "type": "rollout", "url": hooks.url + "/r", "timeout": "5"}, PAYLOAD).ok
    event = caller({"name": "e", "type": "event", "url": hooks.url + "/e", "timeout": "5"}, PAYLOAD)
    assert event.error == 'time: missing unit in duration "5"'
    assert hooks.sequence() == ["r"]


@pytest.mark.parametrize(
    "text,seconds", [("10s", 10), ("1m30s", 90), ("500ms", 0.5), ("0s", 0), ("0", 0), ("1.5h", 5400), ("2m", 120)]
)
def test_parse_go_duration(text, seconds):
    assert webhooks.parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "10", "abc", "1x"])
def test_parse_go_duration_errors(text):
    with pytest.raises(ValueError, match=r"^time: "):
        webhooks.parse_go_duration(text)


def test_redirects(hooks):
    hooks.respond("/moved", 302, "", headers={"Location": "/target"})
    hooks.respond("/temp", 307, "", headers={"Location": "/target"})
    assert call(hooks.url + "/moved").ok
    assert call(hooks.url + "/temp").ok
    methods = [(r.method, r.path, bool(r.body)) for r in hooks.calls()]
    assert methods == [
        ("POST", "/moved", True),
        ("GET", "/target", False),
        ("POST", "/temp", True),
        ("POST", "/target", True),
    ]


def test_redirect_without_location_fails(hooks):
    hooks.respond("/multi", 300, "choose")
    assert call(hooks.url + "/multi") == webhooks.HookResult(ok=False, status=300, error="choose", attempts=1)


def test_connection_refused_is_retried_then_given_up(sleeps):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = call(f"http://127.0.0.1:{port}/x", retries=1, sleeps=sleeps, time_scale=0)
    assert not result.ok
    assert result.error.startswith(f"POST http://127.0.0.1:{port}/x giving up after 2 attempt(s): ")
    assert "connection refused" in result.error
    assert sleeps == [0]


def test_basic_auth_from_url(hooks):
    url = hooks.url.replace("http://", "http://user:pa55@") + "/auth"
    assert call(url).ok
    [req] = hooks.calls()
    assert req.headers["Authorization"] == "Basic dXNlcjpwYTU1"
    assert json.loads(req.body)["name"] == "podinfo"
