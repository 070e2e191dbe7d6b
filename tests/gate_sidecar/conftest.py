"""Fixtures for the sidecar's unit tests: a cache filled from dicts, the app over it, no API.

* ``cache``: a synced :class:`GateCache` (fill it with ``cache.fill(gates=[...], canaries=[...])``).
* ``writer``: a recording writer (what the hot path asked to be written).
* ``client``: a werkzeug test client over the app.
* ``slack`` / ``hook``: the Slack and webhook recorders (helpers.recorders).

Builders for raw objects and calls are in ``sidecar_helpers``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import recorders
from werkzeug.test import Client

sys.path.insert(0, str(Path(__file__).parent))  # NB: the tests import sidecar_helpers by name
from sidecar_helpers import RecordingWriter

from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache, StaticHealth

#: The notification tests' Slack and webhook recorders (one copy, in helpers.recorders).
slack, hook = recorders.slack, recorders.hook


@pytest.fixture
def cache() -> GateCache:
    return GateCache(health=[StaticHealth(synced=True)], fail_closed_after=10.0)


@pytest.fixture
def writer() -> RecordingWriter:
    return RecordingWriter()


@pytest.fixture
def app(cache, writer):
    return create_app(cache=cache, writer=writer)


@pytest.fixture
def client(app) -> Client:
    return Client(app)
