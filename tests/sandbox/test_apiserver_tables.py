"""Table rendering helpers of the emulator: times and ages as kubectl shows them.

Covers: RFC 3339 times with ``Z``, an offset, or fractional seconds are read (the typed Python
client sends ``+00:00``); unreadable times show ``<unknown>``; ages follow apimachinery's
HumanDuration.
"""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox.apiserver import tables

NOW = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "stamp",
    ["2026-11-22T09:59:30Z", "2026-11-22T09:59:30+00:00", "2026-11-22T09:59:29.5Z", "2026-11-22T11:59:30+02:00"],
)
def test_age_reads_rfc3339_variants(stamp):
    assert tables.age(stamp, NOW) == "30s"


@pytest.mark.parametrize("stamp", ["", None, "yesterday"])
def test_unreadable_time_is_unknown(stamp):
    assert tables.age(stamp, NOW) == "<unknown>"


@pytest.mark.parametrize("seconds,text", [(59, "59s"), (125, "2m5s"), (3600 * 3, "3h"), (86400 * 3, "3d")])
def test_human_duration(seconds, text):
    assert tables.human_duration(seconds) == text
