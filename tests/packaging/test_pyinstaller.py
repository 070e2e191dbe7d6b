"""The PyInstaller build of kubectl-gate: spec options, the environment runtime hook, the build.

Covers:
- the spec (parsed, not run) builds one onefile EXE named kubectl-gate (no COLLECT), with
  upx off, strip on except Windows, optimize at most 1 (Click help comes from docstrings),
  the runtime hook wired in, the unused modules excluded (tkinter, unittest, google, aiohttp,
  kubernetes.aio, the sidecar and the sandbox) and pydoc NOT excluded (kubernetes.watch needs it);
- rthook_env.py, run as a frozen app would: LD_LIBRARY_PATH is restored from
  LD_LIBRARY_PATH_ORIG or removed, so a child process (an exec credential plugin) gets the
  user's value; when not frozen it changes nothing;
- packaging/build_binary.py really builds the binary (about 40 s) and it runs: `--help`,
  `version --client`, and `render` of the seed CanaryGate (the Flagger CRD it validates against
  must be inside the binary).
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "pyinstaller" / "kubectl-gate.spec"
HOOK = ROOT / "packaging" / "pyinstaller" / "rthook_env.py"


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def kwargs(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords}


@pytest.fixture(scope="module")
def spec() -> ast.Module:
    return ast.parse(SPEC.read_text())


def test_spec_builds_one_onefile_exe(spec) -> None:
    (exe,) = calls(spec, "EXE")
    assert calls(spec, "COLLECT") == [], "COLLECT means onedir; krew needs onefile (no symlinks)"
    kw = kwargs(exe)
    assert ast.literal_eval(kw["name"]) == "kubectl-gate"
    assert ast.literal_eval(kw["upx"]) is False
    assert ast.unparse(kw["strip"]) == "sys.platform != 'win32'"
    assert ast.literal_eval(kw["console"]) is True
    names = [ast.unparse(a) for a in exe.args]
    assert "a.binaries" in names and "a.datas" in names, "onefile: binaries and datas go into the EXE"


def test_spec_analysis_options(spec) -> None:
    (analysis,) = calls(spec, "Analysis")
    kw = kwargs(analysis)
    assert ast.literal_eval(kw["optimize"]) <= 1
    assert "rthook_env.py" in ast.unparse(kw["runtime_hooks"])
    assert (SPEC.parent / "kubectl_gate_main.py").is_file()
    assert "kubectl_gate_main.py" in ast.unparse(analysis.args[0])
    assign = next(n for n in spec.body if isinstance(n, ast.Assign) and n.targets[0].id == "EXCLUDES")
    excludes = set(ast.literal_eval(assign.value))
    assert {"tkinter", "unittest", "doctest", "google", "aiohttp", "kubernetes.aio", "gate_sidecar", "sandbox"} <= excludes
    assert "pydoc" not in excludes, "kubernetes/watch/watch.py imports pydoc"
    assert "collect_submodules(\"kubectl_gate\")" in SPEC.read_text(), "lazily loaded commands must be bundled"


def test_entry_script_calls_the_console_script_target() -> None:
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["kubectl-gate"].split(":")
    text = (SPEC.parent / "kubectl_gate_main.py").read_text()
    assert f"from {module} import {func}" in text and f"sys.exit({func}())" in text


PROBE = """
import os, runpy, subprocess, sys
if {frozen}:
    sys.frozen = True
runpy.run_path({hook!r}, run_name="pyi_rth_env")
child = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get('LD_LIBRARY_PATH', '<unset>'))"],
                       capture_output=True, text=True, env=None)
print(os.environ.get("LD_LIBRARY_PATH", "<unset>"), child.stdout.strip())
"""


@pytest.mark.parametrize(
    "frozen, env, expected",
    [
        (True, {"LD_LIBRARY_PATH": "/tmp/_MEI123", "LD_LIBRARY_PATH_ORIG": "/opt/lib"}, "/opt/lib /opt/lib"),
        (True, {"LD_LIBRARY_PATH": "/tmp/_MEI123"}, "<unset> <unset>"),
        (False, {"LD_LIBRARY_PATH": "/tmp/_MEI123"}, "/tmp/_MEI123 /tmp/_MEI123"),
    ],
    ids=["restores-original", "removes-bundle-path", "not-frozen-untouched"],
)
def test_runtime_hook_sanitises_library_path(frozen: bool, env: dict, expected: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LD_LIBRARY_PATH", "DYLD_", "LIBPATH"))}
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(frozen=frozen, hook=str(HOOK))],
        env={**base, **env}, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_build_binary_builds_a_runnable_kubectl_gate(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "build_binary.py"), "--dist", str(tmp_path / "dist"),
         "--work", str(tmp_path / "work"), "--no-smoke", "--release-name"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    binary = tmp_path / "dist" / "kubectl-gate"
    assert binary.is_file() and os.access(binary, os.X_OK)
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "gate" in out.stdout
    version = subprocess.run([str(binary), "version", "--client"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "0.1.0" in version.stdout, version.stdout + version.stderr
    rendered = subprocess.run([str(binary), "render", "-f", str(ROOT / "tests" / "data" / "seed-demo.yaml"),
                               "-n", "gates"], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Canary" in rendered.stdout and "/confirm-promotion" in rendered.stdout
    assert list((tmp_path / "dist" / "bin").iterdir())[0].name.startswith("kubectl-gate-linux-")
