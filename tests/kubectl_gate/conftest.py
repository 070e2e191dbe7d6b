"""Fixtures for the kubectl gate tests: ``invoke`` (CliRunner on the real CLI, an injected clock,
the sandbox kubeconfig when a test asks for ``kube``), a fixed ``NOW``."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from helpers.cli import NOW

from kubectl_gate.cli import cli
from kubectl_gate.context import GateContext


@pytest.fixture
def clock():
    return lambda: NOW


@pytest.fixture
def invoke(clock, monkeypatch):
    """Run ``kubectl gate ARGS`` in-process; the result has .stdout, .stderr and .exit_code."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)

    def run(args, *, input=None, env=None, obj=None):  # noqa: A002 - CliRunner.invoke's keyword
        runner = CliRunner()
        return runner.invoke(
            cli, list(args), input=input, env=env, obj=obj or GateContext(clock=clock), prog_name="kubectl gate"
        )

    return run


@pytest.fixture
def kube(invoke, kubeconfig, crds, namespace):
    """``invoke`` bound to the sandbox: --kubeconfig and -n NAMESPACE added to every call."""

    def run(*args, input=None, env=None, obj=None, ns=True):  # noqa: A002 - CliRunner.invoke's keyword
        extra = ["--kubeconfig", kubeconfig] + (["-n", namespace] if ns else [])
        return invoke([*args, *extra], input=input, env=env, obj=obj)

    run.namespace = namespace
    run.kubeconfig = kubeconfig
    return run
