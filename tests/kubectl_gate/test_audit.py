"""kubectl_gate.audit: the Event a command records after a change, and the warning when it cannot."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from types import SimpleNamespace

from canarygate import errors
from canarygate.kube import events
from canarygate.model import CanaryGate, parse_canarygate
from kubectl_gate import audit
from kubectl_gate.context import GateContext

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _context() -> GateContext:
    kube = object()
    return GateContext(connector=lambda settings: SimpleNamespace(kube=kube), clock=lambda: NOW, stderr=io.StringIO())


def _gate() -> CanaryGate:
    return parse_canarygate({"metadata": {"name": "demo", "namespace": "shop"}, "spec": {"target": {"name": "demo"}}})


def test_the_users_reason_follows_the_message(monkeypatch):
    recorded = []
    monkeypatch.setattr(events, "record_event", lambda kube, gate, **fields: recorded.append(fields))
    gctx = _context()
    audit.record(gctx, _gate(), reason="Retried", message="alice retried", why="flaky test", done="the retry is made")
    audit.record(gctx, _gate(), reason="Retried", message="alice retried", done="the retry is made")
    assert [r["message"] for r in recorded] == ["alice retried: flaky test", "alice retried"]
    assert recorded[0]["now"] == "2026-11-22T10:00:00Z" and recorded[0]["type"] == events.NORMAL
    assert gctx.stderr.getvalue() == ""


def test_an_event_that_cannot_be_recorded_is_a_warning_naming_what_was_done(monkeypatch):
    def refuse(kube, gate, **fields):
        raise errors.Forbidden('events is forbidden: User "alice" cannot create resource "events"')

    monkeypatch.setattr(events, "record_event", refuse)
    gctx = _context()
    audit.record(gctx, _gate(), reason="AnalysisSkipped", message="m", done="the analysis is skipped")
    assert gctx.stderr.getvalue() == (
        "warning: the analysis is skipped, but its Event could not be recorded: "
        'events is forbidden: User "alice" cannot create resource "events"\n'
    )
