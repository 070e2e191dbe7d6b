"""Notifications against local recording servers: the real slack_sdk WebClient pointed at a Slack
stand-in on 127.0.0.1 (chat.postMessage, chat.update), and a generic JSON webhook.

What a person in the channel would see is read back from the recorder: one top message per rollout,
updated in place, and one thread reply per later happening."""

from __future__ import annotations

import logging
import time

import pytest
from helpers.recorders import SLACK_TOKEN as TOKEN
from notify_helpers import KEY, Bench
from sidecar_helpers import live_change, make_gate

from canarygate.diagnosis import recommended_command
from gate_sidecar.notify.config import NotifyConfig
from gate_sidecar.notify.delivery import Delivery, DeliveryQueue
from gate_sidecar.notify.notifier import SLACK_CHANNEL_ANNOTATION, WEBHOOKS_ANNOTATION
from gate_sidecar.notify.sinks import Retry, SlackSink, WebhookSink, retry_after
from sandbox.recorders import WebhookRecorder

pytestmark = pytest.mark.timeout(60)


def slack_config(slack, **kw) -> NotifyConfig:
    return NotifyConfig(slack_token=TOKEN, slack_channel="#releases", slack_api_url=slack.base_url, **kw)


@pytest.fixture
def bench_factory():
    made = []

    def make(config, **kw):
        bench = Bench(config, **kw).start()
        made.append(bench)
        return bench

    yield make
    for bench in made:
        bench.stop()


def test_hold_open_promote_is_one_thread(slack, bench_factory):
    bench = bench_factory(slack_config(slack))
    bench.hold()
    bench.settle()
    [top] = slack.messages("#releases")
    command = recommended_command("confirm-promotion", "demo", "demo-ns")
    assert command == "kubectl gate promote demo -n demo-ns"
    assert "confirm-promotion" in top.text and "demo-ns/demo" in top.text
    assert f"`{command}`" in top.text
    assert "declared closed in spec (`confirm-promotion: closed`, from Git)" in top.text  # who set it
    assert "since 2026-11-22T10:02:00Z" in top.text  # since when (the first hold)

    opened = live_change("confirm-promotion", "opened", scope="step", by="alice@example.com")
    bench.update_gate(annotations={opened.key: opened.encode()})
    bench.settle()
    [top] = slack.messages("#releases")  # still one message in the channel
    assert [r.text for r in top.replies] == [
        ":arrow_forward: Gate *confirm-promotion* opened by alice@example.com at 2026-11-22T10:01:00Z, scope step"
    ]
    assert top.edits == 1 and "opened by alice@example.com" in top.text and command not in top.text

    bench.update_canary(phase="Succeeded", promoted="True", since="2026-11-22T10:05:00Z")
    bench.settle()
    [top] = slack.messages("#releases")
    assert len(top.replies) == 2 and "promoted at 2026-11-22T10:05:00Z" in top.replies[1].text
    assert top.edits == 2 and "promoted" in top.text
    assert bench.counted("slack", "sent") == 3
    # every call carried the bot token, as the real client sends it
    assert {r.headers["Authorization"] for r in slack.requests} == {f"Bearer {TOKEN}"}


def test_restart_reads_the_record_and_resends_nothing(slack, bench_factory):
    first = bench_factory(slack_config(slack))
    first.hold()
    first.settle()
    record = first.writer.status(KEY)["notifications"]
    assert record["sent"] and record["slack"][0]["ts"] == slack.messages("#releases")[0].ts
    first.stop()
    before = len(slack.requests)

    # the restarted sidecar finds its record in the CanaryGate's status (as the writer wrote it)
    second = Bench(slack_config(slack), gate=dict(first.gate_raw, status={"notifications": record}))
    second.start()
    try:
        second.hold()  # the restarted writer announces the same hold again
        second.settle()
        assert len(slack.requests) == before  # nothing resent

        opened = live_change("confirm-promotion", "opened", by="bob")
        second.update_gate(annotations={opened.key: opened.encode()})
        second.settle()
        [top] = slack.messages("#releases")  # the same thread, not a new one
        assert [r.text.split(" at ")[0] for r in top.replies] == [
            ":arrow_forward: Gate *confirm-promotion* opened by bob"
        ]
    finally:
        second.stop()


def test_a_429_is_retried_after_its_retry_after(slack, bench_factory):
    slack.fail(429, headers={"Retry-After": "1"}, body={"ok": False, "error": "ratelimited"})
    bench = bench_factory(slack_config(slack))
    bench.hold()
    bench.settle()
    first, second = slack.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 0.95  # honoured, though the backoff alone would be 0.05 s
    assert len(slack.messages("#releases")) == 1
    assert bench.counted("slack", "retry") == 1 and bench.counted("slack", "sent") == 1


def test_500s_and_an_outage_are_retried_with_backoff(slack, bench_factory):
    slack.fail(500, body=b"<html>oops</html>", times=2)
    bench = bench_factory(slack_config(slack))
    bench.hold()
    bench.settle()
    assert [r.status for r in slack.requests] == [500, 500, 200]
    assert bench.counted("slack", "retry") == 2

    slack.down()
    opened = live_change("confirm-promotion", "opened")
    bench.update_gate(annotations={opened.key: opened.encode()})
    deadline = time.monotonic() + 5
    while bench.counted("slack", "retry") < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bench.counted("slack", "retry") >= 4  # refused connections, retried
    slack.up()
    bench.settle()
    [top] = slack.messages("#releases")
    assert len(top.replies) == 1 and top.edits == 1


def test_a_slow_webhook_is_retried_and_receivers_can_dedupe_by_id(hook, bench_factory):
    config = NotifyConfig(webhooks={"default": hook.url + "/hooks/x"}, timeout=0.3)
    hook.slow(1.0)  # longer than the timeout: the sidecar gives up on it, the receiver still gets it
    bench = bench_factory(config)
    bench.hold()
    bench.settle()
    hook.wait_for(2)
    a, b = hook.bodies()
    assert a == b  # the same notice twice: same id, same thread
    assert a["kind"] == "held" and a["gate"] == "confirm-promotion" and a["canary"] == "demo-ns/demo"
    assert a["command"] == "kubectl gate promote demo -n demo-ns" and a["source"] == "declared"
    assert a["thread"] == "demo-ns/demo@2026-11-22T10:00:00Z" and len(a["id"]) == 12
    assert bench.counted("webhook:default", "retry") == 1


def test_a_webhook_failing_for_good_is_dropped_with_a_metric_and_a_log_line(hook, bench_factory, caplog):
    hook.fail(503, times=100)
    bench = bench_factory(NotifyConfig(webhooks={"default": hook.url}, max_attempts=3))
    with caplog.at_level(logging.INFO, logger="gate_sidecar"):
        bench.hold()
        bench.settle()
    assert len(hook.requests) == 3
    assert bench.counted("webhook:default", "dropped_retries") == 1
    assert "notification dropped after 3 attempts: held webhook:default for CanaryGate demo-ns/demo" in caplog.text


def test_a_refusal_is_not_retried(hook, bench_factory):
    hook.fail(400)
    bench = bench_factory(NotifyConfig(webhooks={"default": hook.url}))
    bench.hold()
    bench.settle()
    assert len(hook.requests) == 1 and bench.counted("webhook:default", "dropped_refused") == 1


def test_the_queue_is_bounded_and_counts_what_it_drops(caplog):
    from gate_sidecar.metrics import Metrics

    metrics = Metrics()
    queue = DeliveryQueue(lambda d: None, maxsize=2, metrics=metrics)  # not started: nothing leaves
    notice = type("N", (), {"kind": "held"})()
    with caplog.at_level(logging.WARNING, logger="gate_sidecar"):
        results = [queue.put(Delivery(key=KEY, receiver="slack", notice=notice)) for _ in range(3)]
    assert results == [True, True, False] and len(queue) == 2
    sample = metrics.registry.get_sample_value(
        "canarygate_sidecar_notifications_total", {"receiver": "slack", "result": "dropped_queue_full"}
    )
    assert sample == 1
    assert metrics.registry.get_sample_value("canarygate_sidecar_notifications_queued") == 2
    assert "notification dropped: 2 already wait (queue full)" in caplog.text


def test_put_never_waits_for_a_receiver(hook, bench_factory):
    """The hold hook runs on the webhook path: it must return at once while a receiver hangs."""
    hook.slow(2.0, times=5)
    bench = bench_factory(NotifyConfig(webhooks={"default": hook.url}, timeout=1.5))
    started = time.perf_counter()
    bench.hold()
    opened = live_change("confirm-promotion", "opened")
    bench.update_gate(annotations={opened.key: opened.encode()})
    assert time.perf_counter() - started < 0.1


def test_the_token_is_never_logged_nor_in_errors(slack, bench_factory, caplog):
    """slack_sdk logs requests at DEBUG; every outcome's log and error names no token."""
    wrong = "xoxb-9999-WRONGTOKENVALUE"
    caplog.set_level(logging.DEBUG)
    bench = bench_factory(NotifyConfig(slack_token=wrong, slack_channel="#releases", slack_api_url=slack.base_url))
    bench.hold()  # invalid_auth: refused
    bench.settle()
    assert bench.counted("slack", "dropped_refused") == 1
    good = bench_factory(slack_config(slack))
    slack.fail(429, headers={"Retry-After": "0"})
    slack.fail(500)
    good.hold()
    good.settle()
    sink = SlackSink(TOKEN, base_url=slack.base_url, timeout=1)
    slack.down()
    with pytest.raises(Retry) as refused:
        sink.post("#releases", "x")
    slack.up()
    assert good.counted("slack", "retry") == 2 and good.counted("slack", "sent") == 1
    assert "'Authorization': '(redacted)'" in caplog.text  # slack_sdk's debug lines were captured
    for secret in (TOKEN, wrong, "SECRETSECRET", "WRONGTOKEN"):
        assert secret not in caplog.text
        assert secret not in str(refused.value)
        assert secret not in repr(good.notifier.config) and secret not in repr(bench.notifier.config)


def test_a_webhook_url_is_never_logged(hook, caplog):
    secret_url = hook.url + "/services/T000/B000/XXXXSECRETXXXX"
    sink = WebhookSink("teams", secret_url, timeout=0.5)
    hook.down()
    with pytest.raises(Retry) as e:
        sink.post({"text": "x"})
    hook.up()
    assert "XXXXSECRET" not in str(e.value) and "XXXXSECRET" not in repr(sink)
    assert str(e.value) == "webhook teams: connection refused"


def test_routing_by_annotation(slack, hook):
    """A CanaryGate picks its channel and webhooks; ``none`` turns a receiver off; unknown names warn."""
    other = WebhookRecorder().start()
    try:
        config = NotifyConfig(
            slack_token=TOKEN,
            slack_channel="#releases",
            slack_api_url=slack.base_url,
            webhooks={"default": hook.url, "pager": other.url},
        )
        gate = make_gate(confirm_promotion="closed")
        gate["metadata"]["annotations"] = {SLACK_CHANNEL_ANNOTATION: "#shop", WEBHOOKS_ANNOTATION: "pager,nosuch"}
        bench = Bench(config, gate=gate).start()
        try:
            bench.hold()
            bench.settle()
            assert len(slack.messages("#shop")) == 1 and slack.messages("#releases") == []
            assert len(other.bodies()) == 1 and hook.bodies() == []
            bench.update_gate(annotations={SLACK_CHANNEL_ANNOTATION: "none", WEBHOOKS_ANNOTATION: "none"})
            closed = live_change("rollout", "closed")
            bench.update_gate(annotations={closed.key: closed.encode()})
            bench.settle()
            assert len(slack.requests) == 1 and len(other.requests) == 1
        finally:
            bench.stop()
    finally:
        other.stop()


def test_first_sight_does_not_replay_old_changes_but_reports_recent_ones(hook):
    old = live_change("confirm-rollout", "closed", scope="sticky")
    old = type(old)(**{**old.__dict__, "at": "2026-10-01T00:00:00Z"})
    recent = live_change("confirm-promotion", "opened")
    gate = make_gate()
    gate["metadata"]["annotations"] = {old.key: old.encode(), recent.key: recent.encode()}
    bench = Bench(NotifyConfig(webhooks={"default": hook.url}), gate=gate).start()
    try:
        bench.settle()
        assert [(b["kind"], b["gate"]) for b in hook.bodies()] == [("opened", "confirm-promotion")]
    finally:
        bench.stop()


def test_an_abort_ends_the_thread_as_aborted(hook, bench_factory):
    bench = bench_factory(NotifyConfig(webhooks={"default": hook.url}))
    bench.hold()
    abort = live_change("rollback", "opened", by="carol")
    bench.update_gate(annotations={abort.key: abort.encode()})
    bench.update_canary(phase="Failed", promoted="False", since="2026-11-22T10:06:00Z")
    bench.settle()
    kinds = [(b["kind"], b["by"]) for b in hook.bodies()]
    assert kinds == [("held", ""), ("opened", "carol"), ("aborted", "carol")]
    assert len({b["thread"] for b in hook.bodies()}) == 1


def test_a_rollback_without_abort_says_rolled_back(hook, bench_factory):
    bench = bench_factory(NotifyConfig(webhooks={"default": hook.url}))
    bench.update_canary(phase="Failed", promoted="False", since="2026-11-22T10:06:00Z")
    bench.settle()
    [body] = hook.bodies()
    assert body["kind"] == "rolled-back" and "rolled back at 2026-11-22T10:06:00Z" in body["text"]


def test_not_leading_sends_nothing(hook):
    bench = Bench(NotifyConfig(webhooks={"default": hook.url}), leading=lambda: False).start()
    try:
        bench.hold()
        bench.settle()
        assert hook.requests == [] and bench.writer.status(KEY) == {}
    finally:
        bench.stop()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0", 0.0), ("86400", 300.0), ("soon", None), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
)
def test_retry_after_header(value, seconds):
    assert retry_after(value) == seconds


def _config_from(args, env, monkeypatch):
    """The Config ``gate-sidecar ARGS`` builds with ``env`` (serve replaced: nothing starts)."""
    from click.testing import CliRunner

    import gate_sidecar.__main__ as entry

    seen = []
    monkeypatch.setattr(entry, "serve", lambda config: seen.append(config) or 0)
    monkeypatch.setattr(entry.cfg, "configure_logging", lambda *a: None)
    clean = {
        k: None for k in ("SLACK_TOKEN", "SLACK_CHANNEL", "GATE_SIDECAR_SLACK_TOKEN", "GATE_SIDECAR_SLACK_CHANNEL")
    }
    result = CliRunner().invoke(entry.main, args, env={**clean, **env})
    return result, (seen[0] if seen else None)


def test_the_go_originals_flags_and_variables(monkeypatch):
    result, config = _config_from([], {"SLACK_TOKEN": TOKEN, "SLACK_CHANNEL": "#go"}, monkeypatch)
    assert result.exit_code == 0, result.output
    assert config.notify.slack_token == TOKEN and config.notify.slack_channel == "#go"
    assert TOKEN not in repr(config)  # the Config (and its NotifyConfig) never shows the token
    _, config = _config_from(
        ["--slack-channel", "#flag"], {"SLACK_TOKEN": "a", "GATE_SIDECAR_SLACK_TOKEN": "b"}, monkeypatch
    )
    assert config.notify.slack_token == "b" and config.notify.slack_channel == "#flag"
    _, config = _config_from([], {"GATE_SIDECAR_NOTIFY_WEBHOOK": "default=http://a/x pager=https://b/y"}, monkeypatch)
    assert dict(config.notify.webhooks) == {"default": "http://a/x", "pager": "https://b/y"}
    _, config = _config_from([], {}, monkeypatch)
    assert not config.notify.enabled


def test_a_bad_webhook_flag_names_the_webhook_not_its_url(monkeypatch):
    result, config = _config_from(["--notify-webhook", "teams=ftp://host/SECRETPATH"], {}, monkeypatch)
    assert config is None and result.exit_code == 2
    assert "webhook 'teams': the URL is not http(s)" in result.output and "SECRETPATH" not in result.output


def test_a_hold_answered_by_another_replica_is_read_off_the_status(hook, bench_factory):
    """Flagger's connection may stick to the replica that does not notify: its status.calls tell."""
    bench = bench_factory(NotifyConfig(webhooks={"default": hook.url}))
    before_rollout = {"confirm-promotion": {"at": "2026-11-22T09:00:00Z", "answer": 403, "canary": "demo-ns/demo"}}
    bench.update_gate(status={"calls": before_rollout})
    bench.settle()
    assert hook.requests == []  # a 403 of an earlier rollout is no hold of this one
    calls = {"confirm-promotion": {"at": "2026-11-22T10:01:30Z", "answer": 403, "canary": "demo-ns/demo"}}
    bench.update_gate(status={"calls": calls})
    bench.settle()
    [body] = hook.bodies()
    assert body["kind"] == "held" and body["at"] == "2026-11-22T10:01:30Z" and body["source"] == "declared"
    refreshed = len(bench.writer.refreshed)
    for _ in range(5):  # the status written again and again (each second during a rollout)
        bench.update_gate(status={"calls": calls, "notifications": bench.writer.status(KEY)["notifications"]})
    bench.hold()  # and this replica answering it too: the same notice
    bench.settle()
    assert len(hook.requests) == 1
    assert len(bench.writer.refreshed) == refreshed  # nothing new: no status write asked for


def test_taking_over_looks_again_at_what_happened_before(hook):
    """A replica that starts leading (the leader crashed) announces a recent change nobody sent."""
    leads = []
    bench = Bench(NotifyConfig(webhooks={"default": hook.url}), leading=lambda: bool(leads)).start()
    try:
        closed = live_change("confirm-rollout", "closed", by="dave")
        bench.update_gate(annotations={closed.key: closed.encode()})
        bench.settle()
        assert hook.requests == []
        leads.append(True)
        bench.notifier.resync()
        bench.settle()
        assert [(b["kind"], b["by"]) for b in hook.bodies()] == [("closed", "dave")]
    finally:
        bench.stop()


def test_an_update_failing_after_its_reply_does_not_post_the_reply_twice(slack, bench_factory):
    bench = bench_factory(slack_config(slack))
    bench.hold()
    bench.settle()
    slack.fail(500, path="chat.update")
    opened = live_change("confirm-promotion", "opened")
    bench.update_gate(annotations={opened.key: opened.encode()})
    bench.settle()
    [top] = slack.messages("#releases")
    assert len(top.replies) == 1 and top.edits == 1
    assert [r.path.rsplit("/", 1)[1] for r in slack.requests] == [
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.update",
    ]


def test_a_deleted_top_message_starts_a_new_one(slack, bench_factory):
    bench = bench_factory(slack_config(slack))
    bench.hold()
    bench.settle()
    first = slack.messages("#releases")[0].ts
    slack.channels[slack.channel_id("#releases")].clear()  # someone deleted it
    closed = live_change("rollout", "closed", by="erin")
    bench.update_gate(annotations={closed.key: closed.encode()})
    bench.settle()
    [top] = slack.messages("#releases")  # a new top message: where the rollout stands (still held)
    assert "Gate *confirm-promotion* holds the rollout" in top.text and "kubectl gate promote demo" in top.text
    assert [r.text.split(" at ")[0] for r in top.replies] == [":no_entry: Gate *rollout* closed by erin"]
    assert top.edits == 0 and top.ts != first
    assert bench.counted("slack", "sent") == 2 and bench.counted("slack", "dropped_refused") == 0
