"""Kubernetes access: the only package that imports the ``kubernetes`` client.

Everything here speaks plain dicts and the core's dataclasses, and raises :mod:`canarygate.errors`.
"""
