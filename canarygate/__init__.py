"""Canary Gate's domain core: the CanaryGate model, gate resolution, rendering, Kubernetes access.

Pure apart from :mod:`canarygate.kube`, the one package that talks to the Kubernetes API.
"""

__version__ = "0.1.0"
