"""packaging/smoke.py passes a working kubectl-gate and fails a broken one; the CLI needs no sidecar extra.

Covers:
- smoke.py --sandbox on the virtualenv's kubectl-gate (through a wrapper script, as a frozen binary
  would be called): every check passes against the sandbox API;
- smoke.py fails, naming the command, for a binary that prints another version, and for one whose
  completion fails;
- `pip install canary-gate` without the `sidecar` extra: with werkzeug, waitress and
  prometheus_client made unimportable, every kubectl_gate module imports, and `--help`,
  `version --client`, `render`, `install` and `completion` work.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import canarygate

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = ROOT / "packaging" / "smoke.py"


def script(path: pathlib.Path, body: str) -> pathlib.Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def smoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SMOKE), *args], capture_output=True, text=True, timeout=300)


def test_smoke_passes_a_working_binary_against_the_sandbox(tmp_path: pathlib.Path) -> None:
    wrapper = script(tmp_path / "kubectl-gate", f'exec {pathlib.Path(sys.executable).parent / "kubectl-gate"} "$@"\n')
    result = smoke("--sandbox", str(wrapper))
    assert result.returncode == 0, result.stdout + result.stderr
    for check in (
        "version --client: ok",
        "completion fish: ok",
        "render -f",
        "apply -f",
        "list -A: ok",
        "show smoke -n smoke -o json: ok",
    ):
        assert check in result.stdout, check


def test_smoke_fails_a_binary_with_another_version(tmp_path: pathlib.Path) -> None:
    stale = script(tmp_path / "kubectl-gate", 'echo "kubectl-gate: 0.0.0+unknown"\n')
    result = smoke(str(stale))
    assert result.returncode == 1
    assert "`kubectl-gate version --client` (exit 0) should print" in result.stderr
    assert f"'{canarygate.__version__}'" in result.stderr


def test_smoke_fails_a_binary_whose_completion_fails(tmp_path: pathlib.Path) -> None:
    real = pathlib.Path(sys.executable).parent / "kubectl-gate"
    broken = script(tmp_path / "kubectl-gate", f'[ "$1" = completion ] && exit 2\nexec {real} "$@"\n')
    result = smoke(str(broken))
    assert result.returncode == 1 and "`kubectl-gate completion bash` (exit 2)" in result.stderr


BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"werkzeug", "waitress", "prometheus_client"}:
            raise ModuleNotFoundError(f"No module named {name!r} (the sidecar extra is not installed)")
sys.meta_path.insert(0, Block())
"""


def without_sidecar_extra(code: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )


def test_every_cli_module_imports_without_the_sidecar_extra(tmp_path: pathlib.Path) -> None:
    result = without_sidecar_extra(
        "import pkgutil, importlib, kubectl_gate, canarygate\n"
        "names = [m.name for p in (kubectl_gate, canarygate)\n"
        "         for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.')]\n"
        "for n in names: importlib.import_module(n)\n"
        "print('imported', len(names), flush=True)\n"
        "import werkzeug\n",
        tmp_path,
    )
    count = result.stdout.split()
    assert count[:1] == ["imported"] and int(count[1]) > 20, result.stderr  # every module, none needed the extra
    assert "the sidecar extra is not installed" in result.stderr, "and the blocker does block"


def test_cli_commands_work_without_the_sidecar_extra(tmp_path: pathlib.Path) -> None:
    gate = ROOT / "tests" / "data" / "seed-demo.yaml"
    for args, expected in (
        (["--help"], "promote"),
        (["version", "--client"], canarygate.__version__),
        (["render", "-f", str(gate), "-n", "gates"], "kind: Canary"),
        (["install"], "kind: CustomResourceDefinition"),
        (["completion", "zsh"], "compdef"),
    ):
        result = without_sidecar_extra(
            "import sys\nfrom kubectl_gate.cli import main\n"
            f"sys.argv = ['kubectl-gate', *{args!r}]\nsys.exit(main())\n",
            tmp_path,
        )
        assert result.returncode == 0, f"{args}: {result.stderr}"
        assert expected in result.stdout, args
