"""Which tier a test runs on: the sandbox (emulator + simulator) or the real cluster."""

from __future__ import annotations

import os

import pytest

REAL = bool(os.environ.get("GATE_E2E_KUBECONFIG"))
# Real Flagger ticks every 10 s at least; the simulator 33x faster (time scale 0.03). Waits that are
# safety nets on the sandbox are stretched by this on the real tier; they end as soon as their
# condition holds. The sandbox's waits are generous (20 s is 66 simulated ticks), so 12x leaves every
# wait at least 20 real ticks while bounding how long a failing test takes.
SLOWDOWN = 12.0 if REAL else 1.0


def real_tier(apiserver=None) -> bool:
    return getattr(apiserver, "real", False) if apiserver is not None else REAL


def emulator_only(apiserver, why: str) -> None:
    """Skip on the real tier, saying why: a limit of the test bench, never a difference of the emulator."""
    if real_tier(apiserver):
        pytest.skip(f"real tier: {why}")
