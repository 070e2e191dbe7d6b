"""gate-sidecar's address options, parsed by gate_sidecar.config through one click callback.
Covers: --listen, --probe-listen and --endpoint reach the Config parsed (and --probe-listen off
means none); a bad value of each is a usage error (exit 2) naming the option and what is wrong.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import gate_sidecar.__main__ as entry
from gate_sidecar import config as cfg


@pytest.fixture
def run(monkeypatch):
    seen: list[cfg.Config] = []
    monkeypatch.setattr(entry, "serve", lambda config: seen.append(config) or 0)
    monkeypatch.setattr(cfg, "configure_logging", lambda *a: None)
    for name in ("GATE_SIDECAR_LISTEN", "GATE_SIDECAR_PROBE_LISTEN", "GATE_SIDECAR_ENDPOINT", "CANARY_GATE_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str):
        seen.clear()
        result = CliRunner().invoke(entry.main, list(args))
        return result, (seen[0] if seen else None)

    return invoke


def test_addresses_are_parsed(run):
    result, config = run("--listen", ":9090", "--probe-listen", "127.0.0.1:8081", "--endpoint", "http://gate.x:80/")
    assert result.exit_code == 0, result.output
    assert (config.host, config.port) == ("0.0.0.0", 9090) and config.probe_listen == ("127.0.0.1", 8081)
    assert config.endpoint == cfg.resolve_endpoint("http://gate.x:80/")
    _, off = run("--probe-listen", "off")
    assert off.probe_listen is None


@pytest.mark.parametrize(
    "option, value",
    [("--listen", "8080"), ("--probe-listen", "localhost"), ("--listen", "host:99999"), ("--endpoint", "gate:80")],
)
def test_a_bad_address_is_a_usage_error_naming_the_option(run, option, value):
    result, config = run(option, value)
    assert result.exit_code == 2 and config is None
    assert f"Invalid value for '{option}'" in result.output, result.output
