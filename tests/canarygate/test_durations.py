"""canarygate.durations: Go and kubectl durations read, ages written, as the tools a user knows do."""

from __future__ import annotations

import pytest

from canarygate import calls, durations, errors


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("1h2m3.5s", 3723.5),
        ("+3m", 180.0),
        ("-2s", -2.0),
        ("250us", 0.00025),
    ],
)
def test_go_durations_read_as_time_parse_duration(text, seconds):
    assert durations.parse_go(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
        ("10", 'time: missing unit in duration "10"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("\u0663s", 'time: invalid duration "\u0663s"'),  # an Arabic-Indic three: Go reads ASCII digits only
    ],
)
def test_not_a_go_duration_says_so_as_go_does(text, message):
    with pytest.raises(ValueError, match=message):
        durations.parse_go(text)


@pytest.mark.parametrize(("text", "seconds"), [("90", 90.0), ("2.5", 2.5), (" 5m ", 300.0), ("0", 0.0)])
def test_kubectl_flags_take_bare_seconds_too(text, seconds):
    assert durations.parse_flag(text) == seconds


@pytest.mark.parametrize("text", ["-5s", "5 m", "soon", ""])
def test_kubectl_flags_refuse_what_is_no_wait(text):
    with pytest.raises(ValueError):
        durations.parse_flag(text)


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        (-5, "0s"),
        (0, "0s"),
        (119.9, "119s"),
        (120, "2m"),
        (7199, "119m"),
        (7200, "2h"),
        (172799, "47h"),
        (172800, "2d"),
        (86400 * 729, "729d"),
        (86400 * 730, "2y"),
    ],
)
def test_ages_as_kubectl_get_shows_them(seconds, age):
    assert durations.short_age(seconds) == age


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("2m", 120.0), ("", 60.0), ("0s", 60.0), ("fast", 60.0)])
def test_analysis_interval_falls_back_to_flaggers_minute(text, seconds):
    assert calls.interval_seconds(text) == seconds


def test_not_found_message_names_kind_name_and_namespace():
    assert errors.not_found_message("CanaryGate", "demo", "shop") == 'CanaryGate "demo" not found in namespace "shop"'
    assert errors.not_found_message("canaries.flagger.app", "demo") == 'canaries.flagger.app "demo" not found'
