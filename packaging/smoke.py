#!/usr/bin/env python3
"""Smoke-test frozen kubectl-gate binaries as a user runs them; each CI job runs it on its own build.

    python packaging/smoke.py [--sandbox] BINARY [BINARY ...]

For each BINARY (a onefile executable, or the kubectl-gate inside an onedir tree, or a link to it):
- `version --client` prints the project's version (canarygate/__init__.py), so a stale build or
  stale package metadata cannot ship;
- `--help` lists the commands; `completion bash|zsh|fish` prints a script for kubectl-gate;
- `render -f` of a CanaryGate prints its Flagger Canary (the bundled Flagger CRD is inside);
- with --sandbox, against the sandbox Kubernetes API emulator (this repository's sandbox/, run
  in this process on 127.0.0.1): `apply -f` the CanaryGate, then `list -A` and `show` find it,
  and `list -A` again through the official kubernetes client (a kubeconfig with `as:`).
  The emulator needs the test extra (pip install -e '.[test]').

Prints one line per check and exits 1 on the first failure, with the command's output.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))
from release import project_version  # noqa: E402

sys.path.insert(0, str(ROOT))
from sandbox.harness import canarygate_yaml, prepare  # noqa: E402 (the repository's root on the path first)

GATE = canarygate_yaml("smoke", "smoke")


class SmokeError(Exception):
    pass


def run(binary: pathlib.Path, *args: str, env: dict[str, str], expect: list[str]) -> str:
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, env=env, timeout=120)
    text = out.stdout + out.stderr
    if out.returncode != 0 or any(e not in out.stdout for e in expect):
        raise SmokeError(f"`kubectl-gate {' '.join(args)}` (exit {out.returncode}) should print {expect}:\n{text}")
    print(f"smoke: {binary}: kubectl-gate {' '.join(args)}: ok")
    return out.stdout


def offline_checks(binary: pathlib.Path, work: pathlib.Path, env: dict[str, str]) -> None:
    version = project_version()
    run(binary, "version", "--client", env=env, expect=[version])
    run(binary, "--help", env=env, expect=["open", "close", "promote", "show"])
    for shell in ("bash", "zsh", "fish"):
        run(binary, "completion", shell, env=env, expect=["kubectl-gate", "__complete"])
    gate = work / "gate.yaml"
    gate.write_text(GATE)
    run(binary, "render", "-f", str(gate), env=env, expect=["kind: Canary", "/confirm-promotion"])


def sandbox_checks(binaries: list[pathlib.Path], work: pathlib.Path, env: dict[str, str]) -> None:
    import yaml

    from sandbox.apiserver import ApiServer

    with ApiServer() as server:
        config = prepare(server, "smoke", work / "kubeconfig")
        cluster_env = {**env, "KUBECONFIG": str(config)}
        gate = work / "gate.yaml"
        gate.write_text(GATE)
        run(binaries[0], "apply", "-f", str(gate), env=cluster_env, expect=["smoke"])
        # Impersonation (`as:`) is what only the official kubernetes client does: that path must
        # work in a frozen build too (nothing it imports left out of the bundle).
        official = work / "kubeconfig-official"
        doc = yaml.safe_load(config.read_text())
        doc["users"][0]["user"]["as"] = "admin"
        official.write_text(yaml.safe_dump(doc))
        for binary in binaries:
            run(binary, "list", "-A", env=cluster_env, expect=["smoke"])
            run(
                binary,
                "show",
                "smoke",
                "-n",
                "smoke",
                "-o",
                "json",
                env=cluster_env,
                expect=['"confirm-promotion"', '"closed"'],
            )
            run(binary, "list", "-A", env={**cluster_env, "KUBECONFIG": str(official)}, expect=["smoke"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", action="store_true", help="also run commands against the sandbox API")
    parser.add_argument("binaries", nargs="+", type=pathlib.Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        # No user configuration leaks in: a private HOME, no KUBECONFIG unless the sandbox gives one.
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
        env.update(HOME=str(work), USERPROFILE=str(work), KUBECONFIG=str(work / "no-kubeconfig"), NO_COLOR="1")
        try:
            for binary in args.binaries:
                if not binary.is_file():
                    raise SmokeError(f"no binary at {binary}")
                offline_checks(binary, work, env)
            if args.sandbox:
                sandbox_checks(args.binaries, work, env)
        except (SmokeError, subprocess.TimeoutExpired) as exc:
            print(f"smoke: FAILED: {exc}", file=sys.stderr)
            return 1
    print(f"smoke: {len(args.binaries)} binar{'y' if len(args.binaries) == 1 else 'ies'} passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
