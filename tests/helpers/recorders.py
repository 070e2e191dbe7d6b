"""The Slack and webhook recorders (sandbox.recorders) as pytest fixtures, with the one bot token they
accept: ``slack`` and ``hook`` for the notification tests (the conftests of tests/e2e and
tests/gate_sidecar import them). The token holds the words the tests look for in logs and errors."""

from __future__ import annotations

import pytest

from sandbox.recorders import SlackRecorder, WebhookRecorder

SLACK_TOKEN = "xoxb-1234-5678-SECRETSECRET-TOKENNEVERLOGGED"


@pytest.fixture
def slack():
    """A Slack Web API stand-in on 127.0.0.1 that accepts ``SLACK_TOKEN``."""

    with SlackRecorder(SLACK_TOKEN) as recorder:
        yield recorder


@pytest.fixture
def hook():
    """A webhook receiver on 127.0.0.1 recording what is posted to it."""

    with WebhookRecorder() as recorder:
        yield recorder
