"""The PyInstaller build of kubectl-gate: spec options, the environment runtime hook, the build.

Covers:
- the spec (parsed, not run) builds, by --mode (default onefile, for krew), either one onefile
  EXE named kubectl-gate with the binaries and datas inside, or (onedir, for Homebrew and
  install.sh) an EXE without them plus a COLLECT named kubectl-gate; both with upx off, strip on
  except Windows, from the same Analysis: optimize at most 1 (Click help comes from docstrings),
  the runtime hook wired in, the unused modules excluded (tkinter, unittest, google, aiohttp,
  kubernetes.aio, the sidecar and the sandbox) and pydoc NOT excluded (kubernetes.watch needs it);
- rthook_env.py, run as a frozen app would: LD_LIBRARY_PATH is restored from
  LD_LIBRARY_PATH_ORIG or removed, so a child process (an exec credential plugin) gets the
  user's value; when not frozen it changes nothing;
- packaging/build_binary.py really builds both, side by side (about 55 s on 2 cores; each build
  gets its own PyInstaller cache), and each runs: `--help`, `version --client`, and `render` of
  the seed CanaryGate (the Flagger CRD it validates against must be inside the binary); the
  onedir tree has no symlinks (Linux) and also runs through a symlink, as Homebrew and install.sh
  call it; --release-name puts both where packaging/release.py looks.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest
from helpers.binaries import build_onefile_and_onedir

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


def test_spec_builds_onefile_by_default_or_onedir(spec) -> None:
    onefile, onedir = calls(spec, "EXE")
    assert '_options.add_argument("--mode", choices=["onefile", "onedir"], default="onefile")' in SPEC.read_text()
    branch = next(n for n in spec.body if isinstance(n, ast.If) and "MODE" in ast.unparse(n.test))
    assert ast.unparse(branch.test) == "MODE == 'onefile'"
    assert onefile in list(ast.walk(branch.body[0])) and onedir in [c for n in branch.orelse for c in ast.walk(n)]
    strip = next(n for n in spec.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "STRIP")
    assert ast.unparse(strip.value) == "sys.platform != 'win32'"
    for exe in (onefile, onedir):
        kw = kwargs(exe)
        assert ast.literal_eval(kw["name"]) == "kubectl-gate"
        assert ast.literal_eval(kw["upx"]) is False
        assert ast.unparse(kw["strip"]) == "STRIP"
        assert ast.literal_eval(kw["console"]) is True
    names = [ast.unparse(a) for a in onefile.args]
    assert "a.binaries" in names and "a.datas" in names, "onefile: binaries and datas go into the EXE"
    names = [ast.unparse(a) for a in onedir.args]
    assert "a.binaries" not in names and ast.literal_eval(kwargs(onedir)["exclude_binaries"]) is True
    (collect,) = calls(spec, "COLLECT")
    assert [ast.unparse(a) for a in collect.args] == ["exe", "a.binaries", "a.datas"]
    kw = kwargs(collect)
    assert ast.literal_eval(kw["name"]) == "kubectl-gate" and ast.literal_eval(kw["upx"]) is False
    assert ast.unparse(kw["strip"]) == "STRIP"


def test_spec_analysis_options(spec) -> None:
    (analysis,) = calls(spec, "Analysis")
    kw = kwargs(analysis)
    assert ast.literal_eval(kw["optimize"]) <= 1
    assert "rthook_env.py" in ast.unparse(kw["runtime_hooks"])
    assert (SPEC.parent / "kubectl_gate_main.py").is_file()
    assert "kubectl_gate_main.py" in ast.unparse(analysis.args[0])
    assign = next(n for n in spec.body if isinstance(n, ast.Assign) and n.targets[0].id == "EXCLUDES")
    excludes = set(ast.literal_eval(assign.value))
    assert {
        "tkinter",
        "unittest",
        "doctest",
        "google",
        "aiohttp",
        "kubernetes.aio",
        "gate_sidecar",
        "sandbox",
    } <= excludes
    assert "pydoc" not in excludes, "kubernetes/watch/watch.py imports pydoc"
    assert 'collect_submodules("kubectl_gate")' in SPEC.read_text(), "lazily loaded commands must be bundled"


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
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def smoke(binary: pathlib.Path) -> None:
    out = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "gate" in out.stdout, out.stderr
    version = subprocess.run([str(binary), "version", "--client"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "0.1.0" in version.stdout, version.stdout + version.stderr
    rendered = subprocess.run(
        [str(binary), "render", "-f", str(ROOT / "tests" / "data" / "seed-demo.yaml"), "-n", "gates"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "kind: Canary" in rendered.stdout and "/confirm-promotion" in rendered.stdout


@pytest.mark.slow
@pytest.mark.timeout(900)  # two PyInstaller builds: about a minute idle, several on a loaded 2-core machine
def test_build_binary_builds_runnable_onefile_and_onedir(tmp_path: pathlib.Path) -> None:
    build_onefile_and_onedir(tmp_path / "dist", tmp_path / "work", tmp_path, timeout=600)

    onefile = tmp_path / "dist" / "kubectl-gate"
    assert onefile.is_file() and os.access(onefile, os.X_OK)
    smoke(onefile)

    tree = tmp_path / "dist" / "onedir" / "kubectl-gate"
    onedir = tree / "kubectl-gate"
    assert onedir.is_file() and os.access(onedir, os.X_OK) and (tree / "_internal").is_dir()
    assert [p for p in tree.rglob("*") if p.is_symlink()] == [], "Linux onedir: no symlinks to dereference"
    smoke(onedir)
    link = tmp_path / "bin" / "kubectl-gate"  # as bin/kubectl-gate -> libexec/kubectl-gate (Homebrew, install.sh)
    link.parent.mkdir()
    link.symlink_to(onedir)
    version = subprocess.run([str(link), "version", "--client"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "0.1.0" in version.stdout, version.stderr

    released = sorted(p.name for p in (tmp_path / "dist" / "bin").iterdir())
    assert len(released) == 2 and released[0].startswith("kubectl-gate-linux-")
    assert released[1] == released[0] + "-onedir" and (tmp_path / "dist" / "bin" / released[1] / "_internal").is_dir()
