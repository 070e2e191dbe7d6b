"""Static checks of the sidecar image's Dockerfile and .dockerignore (no Docker engine here).

Covers:
- the Dockerfile is multi-stage: a builder stage builds wheels, the final stage installs them;
- every stage's base is python:3.11.x-slim pinned by a sha256 digest (ARG defaults resolved);
  the final stage installs no compilers or build packages (gcc, build-essential, apt-get
  install ...) and copies no source tree;
- every pip install or download of a dependency uses --require-hashes with the lock files, which
  pin every distribution with at least one sha256 and satisfy pyproject's specifiers (the
  dependencies plus the sidecar extra, and [build-system]); only our own wheel goes in --no-deps;
- the OCI labels source, version and revision come from build arguments that `make image` and
  the release workflow pass (version from canarygate/__init__.py, revision the commit);
- USER in the final stage is a numeric non-root UID (and GID), 65532, created in that stage;
- PYTHONDONTWRITEBYTECODE=1 is set in the final stage; WORKDIR and HOME are under /tmp;
- ENTRYPOINT is the exec form ["gate-sidecar"] and that command is a [project.scripts] entry;
- every path the builder COPYs exists in the repository and survives .dockerignore, which
  keeps .git, .venv, tests and the sandbox out of the build context.
"""

from __future__ import annotations

import fnmatch
import json
import pathlib
import re
import shlex
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3?-dev|libc6-dev)\b")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line = pending + line
        pending = ""
        if line:
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    assert not pending, "dangling line continuation"
    return result


def stages(text: str) -> tuple[dict[str, str], list[dict]]:
    """Global ARG defaults and the stages: {base, name, body: [(INSTR, args)]}."""
    args: dict[str, str] = {}
    result: list[dict] = []
    for instr, rest in instructions(text):
        if instr == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], parts[0])
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append({"base": base, "name": name, "body": []})
        elif not result:
            assert instr == "ARG", f"{instr} before the first FROM"
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            result[-1]["body"].append((instr, rest))
    return args, result


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[dict]]:
    return stages(DOCKERFILE.read_text())


def test_parser_on_a_known_input() -> None:
    _, st = stages("ARG IMG=python:3.11-slim\nFROM ${IMG} AS a\nRUN echo a \\\n  b\nFROM a\nUSER 1:1\n")
    assert [s["base"] for s in st] == ["python:3.11-slim", "a"]
    assert st[0]["body"] == [("RUN", "echo a b")]
    assert BUILD_TOOLS.search("apt-get install -y build-essential") and not BUILD_TOOLS.search("pip wheel .")


def test_multi_stage_builder_then_slim_runtime(parsed) -> None:
    _, st = parsed
    assert len(st) >= 2, "multi-stage: a builder and a runtime stage"
    builder, final = st[0], st[-1]
    assert builder["name"] == "builder"
    assert any(i == "RUN" and "pip wheel" in a for i, a in builder["body"]), "builder builds wheels"
    for stage in st:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?@sha256:[0-9a-f]{64}", stage["base"]), stage["base"]
    runs = " ".join(a for i, a in final["body"] if i == "RUN")
    assert "from=builder" in runs or any(i == "COPY" and "--from=builder" in a for i, a in final["body"])


def test_final_stage_has_no_build_tools_and_no_source(parsed) -> None:
    _, st = parsed
    final = st[-1]
    for instr, rest in final["body"]:
        if instr == "RUN":
            assert not BUILD_TOOLS.search(rest), f"build tool in the runtime stage: {rest}"
            assert "apt-get install" not in rest and "apk add" not in rest, rest
        if instr in ("COPY", "ADD"):
            assert "--from=builder" in rest, f"the runtime stage copies from the build context: {rest}"
    assert not any(i == "RUN" and "pip wheel" in a for i, a in final["body"]), "building in the runtime stage"


def test_final_stage_runs_as_numeric_non_root(parsed) -> None:
    _, st = parsed
    users = [rest for instr, rest in st[-1]["body"] if instr == "USER"]
    assert users, "no USER in the final stage"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) == 65532, users[-1]
    assert not gid or (gid.isdigit() and int(gid) != 0), users[-1]
    runs = " ".join(a for i, a in st[-1]["body"] if i == "RUN")
    assert "--uid 65532" in runs, "the user should exist in /etc/passwd"


def test_read_only_friendly_environment(parsed) -> None:
    _, st = parsed
    env = " ".join(a for i, a in st[-1]["body"] if i == "ENV")
    assert re.search(r"\bPYTHONDONTWRITEBYTECODE=1\b", env)
    assert re.search(r"\bHOME=/tmp\b", env)
    workdirs = [a for i, a in st[-1]["body"] if i == "WORKDIR"]
    assert workdirs and workdirs[-1].startswith("/tmp")


def test_entrypoint_is_the_sidecar_console_script(parsed) -> None:
    _, st = parsed
    entrypoints = [a for i, a in st[-1]["body"] if i == "ENTRYPOINT"]
    assert entrypoints, "no ENTRYPOINT"
    assert json.loads(entrypoints[-1]) == ["gate-sidecar"], "exec form, so signals reach the process"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "gate-sidecar" in scripts


def dockerignore_excludes(rel: str) -> bool:
    """Docker's rule: the last matching pattern wins; '!' re-includes."""
    excluded = False
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.rstrip("/")
        candidates = [rel] + [str(p) for p in pathlib.PurePosixPath(rel).parents if str(p) != "."]
        pat = pattern[3:] if pattern.startswith("**/") else pattern
        for c in candidates:
            name = pathlib.PurePosixPath(c).name
            if fnmatch.fnmatch(c, pattern) or (pattern.startswith("**/") and fnmatch.fnmatch(name, pat)):
                excluded = not negate
                break
    return excluded


def test_builder_copies_exist_and_survive_dockerignore(parsed) -> None:
    _, st = parsed
    copies = [a for i, a in st[0]["body"] if i == "COPY"]
    assert copies
    for rest in copies:
        sources = shlex.split(rest)[:-1]
        for src in sources:
            assert (ROOT / src).exists(), f"COPY source missing from the repository: {src}"
            assert not dockerignore_excludes(src), f".dockerignore excludes {src}"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert not dockerignore_excludes(pyproject["project"]["readme"]), "the build needs the readme file"


@pytest.mark.parametrize("path", [".git", ".venv", "tests", "sandbox", "dist", "kubectl_gate/__pycache__/x.pyc"])
def test_dockerignore_keeps_junk_out_of_the_context(path: str) -> None:
    assert dockerignore_excludes(path)


def test_every_dependency_install_is_by_hash(parsed) -> None:
    _, st = parsed
    runs = [a for stage in st for i, a in stage["body"] if i == "RUN"]
    pip_steps = [
        step.strip() for run in runs for step in run.split("&&") if "pip install" in step or "pip download" in step
    ]
    assert pip_steps
    for step in pip_steps:
        if "uninstall" in step:
            continue
        assert "--require-hashes" in step or ("--no-deps" in step and "canary_gate-" in step), step
    assert any("pip wheel --no-deps --no-build-isolation" in r for r in runs), "our wheel: pinned backend only"


def read_lock(path: pathlib.Path) -> dict[str, tuple[str, list[str]]]:
    pins: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        spec, *hashes = line.split()
        name, _, version = spec.partition("==")
        pins[name] = (version, [h.removeprefix("--hash=sha256:") for h in hashes])
    return pins


@pytest.mark.parametrize(
    "lock, key", [("requirements-image.txt", "runtime"), ("requirements-image-build.txt", "build")]
)
def test_lock_files_pin_everything_pyproject_asks_for(lock: str, key: str) -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = read_lock(ROOT / "packaging" / lock)
    assert pins
    for name, (version, hashes) in pins.items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name) and version, name
        assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), name
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    if key == "runtime":
        wanted = project["project"]["dependencies"] + project["project"]["optional-dependencies"]["sidecar"]
    else:
        wanted = project["build-system"]["requires"]
    for spec in wanted:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pins, f"{name} is not in {lock}: run packaging/lock_image_requirements.py"
        assert req.specifier.contains(pins[name][0]), f"{name}=={pins[name][0]} does not satisfy {spec}"


def test_oci_labels_from_build_arguments(parsed) -> None:
    _, st = parsed
    final = st[-1]
    args = {a.split("=")[0] for i, a in final["body"] if i == "ARG"}
    assert {"VERSION", "REVISION", "SOURCE"} <= args
    labels = " ".join(a for i, a in final["body"] if i == "LABEL")
    for key, arg in (("source", "SOURCE"), ("version", "VERSION"), ("revision", "REVISION")):
        assert f'org.opencontainers.image.{key}="${{{arg}}}"' in labels
    makefile = (ROOT / "Makefile").read_text()
    image_rule = makefile.split("\nimage:", 1)[1].split("\n\n", 1)[0]
    assert "--build-arg VERSION=$(VERSION)" in image_rule and "--build-arg REVISION=$(REVISION)" in image_rule
    assert "VERSION := $(shell sed -n" in makefile and "canarygate/__init__.py" in makefile
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert '--build-arg VERSION="$version" --build-arg REVISION="$GITHUB_SHA"' in workflow
