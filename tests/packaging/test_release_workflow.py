"""The one version and where it is stamped; the release workflow's shape (it cannot run here).

Covers:
- canarygate.__version__ is the wheel's version (pyproject reads it), has a CHANGES.md entry, and is
  the image tag in the sidecar manifests and in `kubectl gate install`'s output;
- .github/workflows/release.yml: a job per platform on a native runner (linux amd64/arm64 in the
  AlmaLinux 8 container, whose glibc is the floor install.sh checks; darwin on Intel and Apple
  silicon runners; windows), each building, smoke-testing and uploading; a final job that needs
  them all, assembles the release with the same glibc limit, runs the real krew and Homebrew, and
  publishes only on a v* tag; every `make` target and script it names exists.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
from importlib import metadata

import yaml

import canarygate

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def workflow() -> dict:
    doc = yaml.safe_load(WORKFLOW.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) + " " + str(s.get("uses", "")) for s in job["steps"])


def test_the_version_has_one_source() -> None:
    assert metadata.version("canary-gate") == canarygate.__version__
    assert re.search(rf"^## {re.escape(canarygate.__version__)} \(", (ROOT / "CHANGES.md").read_text(), re.M)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = {attr = "canarygate.__version__"}' in pyproject


def test_the_image_tag_in_the_manifests_is_the_version(tmp_path: pathlib.Path) -> None:
    image = f"ghcr.io/canary-gate/gate-sidecar:{canarygate.__version__}"
    for path in (
        ROOT / "deploy" / "sidecar" / "deployment.yaml",
        ROOT / "deploy" / "flagger-pod" / "flagger-deployment-patch.yaml",
    ):
        assert re.findall(r"image: (\S+)", path.read_text()) == [image], path
    out = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "kubectl-gate"), "install"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert re.findall(r"image: (\S+)", out.stdout) == [image]


def test_a_native_build_job_per_platform() -> None:
    jobs = workflow()["jobs"]
    linux, darwin, windows = jobs["linux"], jobs["darwin"], jobs["windows"]
    assert linux["container"] == "almalinux:8", "glibc 2.28: the manylinux_2_28 base"
    assert {(m["arch"], m["runner"]) for m in linux["strategy"]["matrix"]["include"]} == {
        ("amd64", "ubuntu-24.04"),
        ("arm64", "ubuntu-24.04-arm"),
    }
    assert {m["arch"] for m in darwin["strategy"]["matrix"]["include"]} == {"amd64", "arm64"}
    runners = {m["arch"]: m["runner"] for m in darwin["strategy"]["matrix"]["include"]}
    assert runners["amd64"].endswith("-intel") and not runners["arm64"].endswith("-intel")
    assert windows["runs-on"].startswith("windows-")
    for name, job in (("linux", linux), ("darwin", darwin), ("windows", windows)):
        text = steps_text(job)
        assert "make binary" in text or "build_binary.py --mode onefile --release-name" in text, name
        assert "smoke" in text, f"{name}: smoke test"
        assert "actions/upload-artifact" in text, name
        assert "--platforms" in text or "PLATFORMS=" in text, f"{name}: header check of its own build"
    assert "--sandbox" not in steps_text(windows) and "make smoke-binary" in steps_text(linux)
    floor = re.search(r'^GLIBC_FLOOR="([\d.]+)"$', (ROOT / "install.sh").read_text(), re.M).group(1)
    assert workflow()["env"]["MAX_GLIBC"] == floor
    assert "MAX_GLIBC=${{ env.MAX_GLIBC }}" in steps_text(linux)


def test_the_release_job_assembles_checks_and_publishes_only_on_a_tag() -> None:
    doc = workflow()
    assert doc["on"]["push"] == {"tags": ["v*"]}
    release = doc["jobs"]["release"]
    assert set(release["needs"]) == {"linux", "darwin", "windows"}
    text = steps_text(release)
    for expected in (
        "make release-artifacts MAX_GLIBC=",
        "test_krew_real.py",
        "validate-krew-manifest",
        "krew@v0.4.3",
        "brew test",
        "brew audit --strict",
        "make python-dist",
        "twine check",
        "docker buildx build",
        "gh release create",
        "checksums.txt",
    ):
        assert expected in text, expected
    for step in release["steps"]:
        publishes = (
            any(k in str(step.get("run", "")) for k in ("gh release create",))
            or "pypi-publish" in str(step.get("uses", ""))
            or "login-action" in str(step.get("uses", ""))
        )
        if publishes:
            assert step.get("if") == "startsWith(github.ref, 'refs/tags/v')", step
    assert doc["permissions"] == {"contents": "read"}


def test_every_make_target_and_script_the_workflow_names_exists() -> None:
    text = WORKFLOW.read_text()
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w./-]+):", makefile, re.M))
    for target in set(re.findall(r"^\s*(?:run:\s*)?make ([\w./-]+)", text, re.M)):
        assert target in targets, f"make {target}"
    for script in set(re.findall(r"\b((?:packaging|tests/packaging)/[\w/.-]+\.py)\b", text)):
        assert (ROOT / script).is_file(), script
