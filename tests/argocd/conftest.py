"""Helpers of the Argo CD tests: ``argocd_lua`` (Argo CD's Lua VM on lupa), ``argocd_cm`` (the
ConfigMap's build) and ``states`` (CanaryGates in every state), imported by name."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # NB: the tests import the helpers by name
