"""Helpers and fixtures of the Argo CD tests.

Helpers, imported by name: ``argocd_lua`` (Argo CD's Lua VM on lupa, and how it applies an action),
``argocd_cm`` (the ConfigMap's build) and ``states`` (CanaryGates in every state).

Fixtures: the end-to-end ones of tests/e2e (the sidecar process, the Flagger simulator, ``rollouts``),
for the rollouts driven through the Argo CD actions on the sandbox.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # NB: the tests import the helpers by name

import e2e.conftest as _e2e

# NB: tests/e2e's fixtures, whatever they are now: pytest collects the fixtures a conftest holds. Its
# hooks (pytest_*) stay in tests/e2e.
globals().update(
    {name: value for name, value in vars(_e2e).items() if type(value).__name__ == "FixtureFunctionDefinition"}
)
