"""packaging/release.py on fake binaries, and the krew manifests and Homebrew formula it fills.

Covers:
- a small validator of krew's manifest rules (docs/packaging.md#krew: validate.go, the
  validate-krew-manifest CI tool and the install-time checks, plus the 50-character
  shortDescription and 80-column description review rules), itself tested on bad manifests;
- release.py produces one onefile archive per platform (tar.gz, zip for windows) with a matching
  .sha256 file and a checksums.txt; archives hold only regular files (binary 0755, LICENSE,
  the completion shim), the binary bytes unchanged; the output is byte-for-byte reproducible;
- and one onedir archive per linux/darwin platform (kubectl-gate_v<ver>_<os>_<arch>_onedir.tar.gz):
  the tree at the top (kubectl-gate, _internal/...), LICENSE and the shim, regular files and
  directories only, a directory before its contents, modes kept, a symlink inside the tree
  replaced by a copy of its target (file or directory); in checksums.txt with a .sha256 file;
  a symlink out of the tree, a dangling one, or a missing onedir build fails the release clearly;
- the filled krew manifest names the linux onedir and the darwin/windows onefile archives and
  passes the validator, including a simulated krew install of every platform from the real
  archives (bin present, LICENSE present, paths stay inside);
- the checked-in krew/gate.yaml passes the static rules (.krew.yaml, rendered the way
  krew-release-bot does, is checked in test_krew_manifest.py);
- the filled Homebrew formula points at the onedir archives: every url and sha256 replaced,
  Homebrew's desc/sha256/version rules, nested on_os/on_arch blocks, the tree into libexec with
  bin/kubectl-gate linked to it, the shim, completions for bash, zsh and fish, no canary-gate
  link (the Go original's cask owns that name) and a `test do` block whose CanaryGate the real
  CLI renders;
- release.py refuses an executable whose ELF/Mach-O/PE header does not match the OS and CPU in
  its name, reports the glibc floor of each linux tree and enforces --max-glibc, takes its
  version from canarygate/__init__.py and refuses another, and packages a subset of platforms
  (--platforms: the krew manifest keeps those, no formula); krew gets linux onedir archives
  (a linux tree with a symlink is refused) and the caveats are pinned to the tag;
- errors: a missing binary, a missing LICENSE or a bad version fail with a clear message;
- packaging/ has no __init__.py (it would shadow the `packaging` library on sys.path).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import posixpath
import re
import struct
import subprocess
import sys
import tarfile
import zipfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
RELEASE = ROOT / "packaging" / "release.py"
FORMULA = ROOT / "packaging" / "homebrew" / "canary-gate.rb"
PLATFORMS = [("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")]

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from krew_rules import extract, simulate_install, unknown_fields, validate_krew  # noqa: E402

# --- fixtures -------------------------------------------------------------------------------


ONEDIR_PLATFORMS = [p for p in PLATFORMS if p[0] != "windows"]
ELF_MACHINE = {"amd64": 62, "arm64": 183}
MACHO_CPU = {"amd64": 0x01000007, "arm64": 0x0100000C}
PE_MACHINE = {"amd64": 0x8664, "arm64": 0xAA64}


def elf(arch: str, glibc: list[str] = ()) -> bytes:
    """A minimal 64-bit little-endian ELF; with glibc, a .gnu.version_r needing those versions."""
    names = [b"libc.so.6", *(v.encode() for v in glibc)]
    dynstr = b"\0" + b"".join(n + b"\0" for n in names)
    offsets = [dynstr.index(b"\0" + n + b"\0") + 1 for n in names]
    verneed = struct.pack("<HHIII", 1, len(glibc), offsets[0], 16, 0) + b"".join(
        struct.pack("<IHHII", 0, 0, 2 + i, offsets[1 + i], 16 if i + 1 < len(glibc) else 0) for i in range(len(glibc))
    )
    body_at = 64
    shoff = body_at + len(dynstr) + len(verneed)
    sections = [
        struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, body_at, len(dynstr), 0, 0, 1, 0),
        struct.pack(
            "<IIQQQQIIQQ", 0, 0x6FFFFFFE, 0, 0, body_at + len(dynstr), len(verneed), 1, 1 if glibc else 0, 8, 0
        ),
    ]
    header = (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + struct.pack("<HHIQQQIHHHHHH", 3, ELF_MACHINE[arch], 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 0)
    )
    return header + dynstr + verneed + b"".join(sections)


def executable(os_: str, arch: str) -> bytes:
    """The first bytes of a real executable for os_/arch: ELF, Mach-O or PE."""
    if os_ == "linux":
        return elf(arch)
    if os_ == "darwin":
        return struct.pack("<IIIIIII", 0xFEEDFACF, MACHO_CPU[arch], 0, 2, 0, 0, 0) + b"\0" * 4
    return b"MZ" + b"\0" * 0x3A + struct.pack("<I", 0x40) + b"PE\0\0" + struct.pack("<H", PE_MACHINE[arch])


def fake_onedir(tree: pathlib.Path, os_: str, arch: str) -> dict[str, bytes]:
    """A PyInstaller-like onedir tree; on darwin with the symlinks PyInstaller 6 makes there."""
    files = {
        "kubectl-gate": executable(os_, arch)
        + f"fake onedir kubectl-gate for {os_}/{arch}\n".encode()
        + bytes(range(256)),
        "_internal/base_library.zip": b"PK fake",
        "_internal/lib-dynload/_ssl.so": f"fake _ssl for {os_}/{arch}".encode(),
        "_internal/Python.framework/Versions/3.11/Python": b"fake libpython",
        "_internal/certifi/cacert.pem": b"fake pem",
    }
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
        (tree / name).chmod(0o755 if name.endswith((".so", "kubectl-gate", "Python")) else 0o644)
    if os_ == "darwin":
        (tree / "_internal" / "Python").symlink_to("Python.framework/Versions/3.11/Python")
        (tree / "_internal" / "Python.framework" / "Versions" / "Current").symlink_to("3.11")
        files["_internal/Python"] = files["_internal/Python.framework/Versions/3.11/Python"]
        files["_internal/Python.framework/Versions/Current/Python"] = files["_internal/Python"]
    return files


def fake_binaries(folder: pathlib.Path) -> dict[tuple[str, str], bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for os_, arch in PLATFORMS:
        data = executable(os_, arch) + f"fake kubectl-gate for {os_}/{arch}\n".encode() + bytes(range(256))
        name = f"kubectl-gate-{os_}-{arch}" + (".exe" if os_ == "windows" else "")
        (folder / name).write_bytes(data)
        contents[(os_, arch)] = data
        if os_ != "windows":
            contents[(os_, arch, "onedir")] = fake_onedir(folder / f"kubectl-gate-{os_}-{arch}-onedir", os_, arch)
    return contents


def run_release(
    tmp_path: pathlib.Path, *extra: str, out: str = "out", version: str | None = "0.3.1", source: str = "0.3.1"
):
    """release.py with the project's version source faked as `source` (canarygate/__init__.py's form)."""
    init = tmp_path / "version_source.py"
    init.write_text(f'"""docstring"""\n\n__version__ = "{source}"\n')
    return subprocess.run(
        [
            sys.executable,
            str(RELEASE),
            *(["--version", version] if version else []),
            "--binaries",
            str(tmp_path / "bins"),
            "--version-source",
            str(init),
            "--license",
            str(tmp_path / "LICENSE"),
            "--out",
            str(tmp_path / out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture()
def released(tmp_path: pathlib.Path):
    contents = fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("Apache License, Version 2.0 (fake)\n")
    result = run_release(tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path / "out", contents


# --- the validator can fail ----------------------------------------------------------------


def good_manifest() -> dict:
    return yaml.safe_load((ROOT / "krew" / "gate.yaml").read_text())


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["spec"].update(version="0.1.0"), "leading v"),
        (lambda d: d["spec"]["platforms"][0].update(sha256="A" * 64), "lowercase"),
        (lambda d: d["spec"]["platforms"].append(d["spec"]["platforms"][0]), "already selects"),
        (lambda d: d["spec"].update(shortDescription="x" * 51), "50 characters"),
        (lambda d: d["metadata"].update(name="other"), "must equal the file name"),
        (lambda d: d["spec"]["platforms"][0]["selector"]["matchLabels"].update(arch="mips"), "not a supported"),
        (lambda d: d["spec"]["platforms"][4].update(bin="kubectl-gate"), ".exe"),
        (lambda d: d["spec"]["platforms"][0].update(files=[]), "files must be non-empty"),
        (lambda d: d["spec"]["platforms"][0]["selector"]["matchLabels"].update(distro="x"), "only os and arch"),
    ],
)
def test_validator_rejects_bad_manifests(mutate, expected: str) -> None:
    doc = good_manifest()
    assert validate_krew(ROOT / "krew" / "gate.yaml", doc) == []
    mutate(doc)
    assert any(expected in e for e in validate_krew(ROOT / "krew" / "gate.yaml", doc))


def test_install_simulation_rejects_symlinks_and_missing_license(tmp_path: pathlib.Path) -> None:
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("kubectl-gate")
        info.type, info.linkname = tarfile.SYMTYPE, "real"
        tar.addfile(info)
    platform = {
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "bin": "kubectl-gate",
        "files": [{"from": "kubectl-gate", "to": "."}],
    }
    errors = simulate_install(platform, archive)
    assert any("unable to handle file type" in e for e in errors)
    assert any("cannot be found" in e for e in errors)
    assert any("LICENSE" in e for e in errors)


# --- release.py ------------------------------------------------------------------------------


def test_archives_checksums_and_contents(released) -> None:
    out, contents = released
    checksums = {}
    for line in (out / "checksums.txt").read_text().splitlines():
        digest, name = line.split("  ")
        checksums[name] = digest
    assert len(checksums) == len(PLATFORMS) + len(ONEDIR_PLATFORMS)
    for os_, arch in PLATFORMS:
        ext = "zip" if os_ == "windows" else "tar.gz"
        name = f"kubectl-gate_v0.3.1_{os_}_{arch}.{ext}"
        path = out / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert (out / f"{name}.sha256").read_text() == f"{digest}  {name}\n"
        assert checksums[name] == digest
        files, errors = extract(path)
        assert errors == []
        exe = "kubectl-gate.exe" if os_ == "windows" else "kubectl-gate"
        expected = {exe, "LICENSE"} | (set() if os_ == "windows" else {"kubectl_complete-gate"})
        assert set(files) == expected
        assert files[exe] == contents[(os_, arch)]
        if os_ == "windows":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    assert (info.external_attr >> 16) & 0o170000 == 0o100000, "regular files only"
        else:
            with tarfile.open(path) as tar:
                members = {m.name: m for m in tar.getmembers()}
                assert all(m.isreg() for m in members.values()), "regular files only (krew rejects symlinks)"
                assert members["kubectl-gate"].mode == 0o755 and members["LICENSE"].mode == 0o644
                assert b'exec kubectl-gate __complete "$@"' in files["kubectl_complete-gate"]


def test_onedir_archives_hold_the_tree_as_regular_files(released) -> None:
    out, contents = released
    checksums = dict(reversed(line.split("  ")) for line in (out / "checksums.txt").read_text().splitlines())
    assert not (out / "kubectl-gate_v0.3.1_windows_amd64_onedir.tar.gz").exists(), "windows: krew's onefile only"
    for os_, arch in ONEDIR_PLATFORMS:
        name = f"kubectl-gate_v0.3.1_{os_}_{arch}_onedir.tar.gz"
        path = out / name
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert (out / f"{name}.sha256").read_text() == f"{digest}  {name}\n"
        assert checksums[name] == digest
        files, errors = extract(path)  # krew's extractor: would report any symlink
        assert errors == []
        tree = contents[(os_, arch, "onedir")]
        assert set(files) == set(tree) | {"LICENSE", "kubectl_complete-gate"}
        for member, data in tree.items():
            assert files[member] == data, member
        with tarfile.open(path) as tar:
            members = tar.getmembers()
        assert all(m.isreg() or m.isdir() for m in members), "regular files and directories only"
        names = [m.name for m in members]
        for m in members:
            parent = posixpath.dirname(m.name)
            if parent:
                assert parent in names and names.index(parent) < names.index(m.name), m.name
            assert m.uid == m.gid == 0 and m.mtime == members[0].mtime
        by_name = {m.name: m for m in members}
        assert by_name["kubectl-gate"].mode == 0o755 and by_name["_internal/lib-dynload/_ssl.so"].mode == 0o755
        assert by_name["LICENSE"].mode == 0o644 and by_name["_internal/base_library.zip"].mode == 0o644
        assert by_name["_internal"].isdir() and by_name["_internal"].mode == 0o755
        if os_ == "darwin":  # the symlinks became copies of their targets
            assert by_name["_internal/Python"].isreg()
            assert by_name["_internal/Python.framework/Versions/Current"].isdir()
        assert b'exec kubectl-gate __complete "$@"' in files["kubectl_complete-gate"]


def test_onedir_archive_unpacks_with_tar_to_a_runnable_layout(released, tmp_path: pathlib.Path) -> None:
    out, _ = released
    dest = tmp_path / "unpacked"
    dest.mkdir()
    subprocess.run(
        ["tar", "-xzf", str(out / "kubectl-gate_v0.3.1_darwin_arm64_onedir.tar.gz"), "-C", str(dest)], check=True
    )
    assert sorted(p.name for p in dest.iterdir()) == ["LICENSE", "_internal", "kubectl-gate", "kubectl_complete-gate"]
    assert not [p for p in dest.rglob("*") if p.is_symlink()]
    assert os.access(dest / "kubectl-gate", os.X_OK)


@pytest.mark.parametrize(
    "make_link, message",
    [
        (lambda tree: (tree / "_internal" / "libssl.so").symlink_to("/etc/passwd"), "points outside the onedir tree"),
        (
            lambda tree: (tree / "_internal" / "escape").symlink_to("../../../elsewhere"),
            "points outside the onedir tree",
        ),
        (lambda tree: (tree / "_internal" / "gone.so").symlink_to("missing.so"), "is dangling or a loop"),
        (lambda tree: (tree / "_internal" / "loop").symlink_to("."), "directory loop"),
    ],
    ids=["absolute-outside", "relative-outside", "dangling", "loop"],
)
def test_onedir_symlink_that_cannot_be_dereferenced_fails_the_release(
    tmp_path: pathlib.Path, make_link, message: str
) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "elsewhere").write_text("outside")
    (tmp_path / "LICENSE").write_text("x")
    make_link(tmp_path / "bins" / "kubectl-gate-darwin-arm64-onedir")
    result = run_release(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "kubectl-gate-darwin-arm64-onedir" in result.stderr and message in result.stderr
    assert "regular files only" in result.stderr or message == "directory loop"
    assert not (tmp_path / "out" / "gate.yaml").exists()


def test_missing_onedir_build_fails_clearly(tmp_path: pathlib.Path) -> None:
    import shutil

    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    shutil.rmtree(tmp_path / "bins" / "kubectl-gate-darwin-amd64-onedir")
    result = run_release(tmp_path)
    assert result.returncode == 1
    assert "missing onedir build for darwin/amd64" in result.stderr and "--mode onedir" in result.stderr
    (tmp_path / "bins" / "kubectl-gate-darwin-amd64-onedir").mkdir()
    result = run_release(tmp_path)
    assert result.returncode == 1 and "has no executable kubectl-gate" in result.stderr


def test_filled_krew_manifest_is_valid_and_installs_every_platform(released) -> None:
    out, _ = released
    doc = yaml.safe_load((out / "gate.yaml").read_text())
    assert doc["spec"]["version"] == "v0.3.1"
    base = "https://github.com/canary-gate/canary-gate/releases/download/v0.3.1/"
    uris = {
        (p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"]): p["uri"]
        for p in doc["spec"]["platforms"]
    }
    assert uris == {
        ("linux", "amd64"): base + "kubectl-gate_v0.3.1_linux_amd64_onedir.tar.gz",
        ("linux", "arm64"): base + "kubectl-gate_v0.3.1_linux_arm64_onedir.tar.gz",
        ("darwin", "amd64"): base + "kubectl-gate_v0.3.1_darwin_amd64.tar.gz",
        ("darwin", "arm64"): base + "kubectl-gate_v0.3.1_darwin_arm64.tar.gz",
        ("windows", "amd64"): base + "kubectl-gate_v0.3.1_windows_amd64.zip",
    }, "krew: onedir on linux, onefile on darwin and windows"
    archives = {base + p.name: p for p in out.iterdir() if p.name.endswith((".tar.gz", ".zip"))}
    assert validate_krew(out / "gate.yaml", doc, archives) == []
    assert unknown_fields(doc) == []
    caveats = doc["spec"]["caveats"]
    assert "deploy/sidecar?ref=v0.3.1'" in caveats and "v0.1.0" not in caveats, "caveats pinned to the tag"


def test_release_is_reproducible(released, tmp_path: pathlib.Path) -> None:
    out, _ = released
    again = run_release(tmp_path, out="again")
    assert again.returncode == 0, again.stderr
    for path in out.iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name


def test_filled_formula(released) -> None:
    out, _ = released
    text = (out / "canary-gate.rb").read_text()
    assert "0" * 64 not in text and "v0.1.0" not in text
    for os_, arch in PLATFORMS:
        if os_ == "windows":
            continue
        name = f"kubectl-gate_v0.3.1_{os_}_{arch}_onedir.tar.gz"
        digest = (out / f"{name}.sha256").read_text().split()[0]
        block = re.search(rf'url "[^"]*/download/v0\.3\.1/{re.escape(name)}"\n\s+sha256 "([0-9a-f]{{64}})"', text)
        assert block and block.group(1) == digest, name
    check_formula_rules(text)
    # each url sits in the right on_<os> / on_<arch> block
    for os_block, os_ in (("on_macos", "darwin"), ("on_linux", "linux")):
        section = text.split(f"  {os_block} do\n", 1)[1].split("\n  end\n", 1)[0]
        for arch_block, arch in (("on_arm", "arm64"), ("on_intel", "amd64")):
            sub = section.split(f"{arch_block} do\n", 1)[1].split("end\n", 1)[0]
            assert f"_{os_}_{arch}_onedir.tar.gz" in sub


def check_formula_rules(text: str) -> None:
    """Homebrew's audit and style rules that apply to this formula (docs/packaging.md#homebrew)."""
    assert re.search(r"^class CanaryGate < Formula$", text, re.M), "class name must match canary-gate.rb"
    desc = re.search(r'^  desc "([^"]*)"$', text, re.M).group(1)
    assert len(desc) <= 80 and desc[0].isupper() and not desc.endswith(".")
    assert not re.match(r"(?i)(a|an|the|canary-gate)\b", desc) and "command line" not in desc
    homepage = re.search(r'^  homepage "(https://[^"]+)"$', text, re.M).group(1)
    assert not homepage.endswith(".git")
    assert re.search(r'^  license "Apache-2.0"$', text, re.M)
    assert not re.search(r'^\s*version "v', text, re.M), "no leading v in version"
    for digest in re.findall(r'sha256 "([^"]*)"', text):
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
    order = [
        text.index(k)
        for k in (
            "  desc ",
            "  homepage ",
            "  license ",
            "  livecheck do",
            "  on_macos do",
            "  on_linux do",
            "  def install",
            "  test do",
        )
    ]
    assert order == sorted(order), "FormulaAudit/ComponentsOrder"
    top_level = re.findall(r"^  (on_\w+) do$", text, re.M)
    assert top_level == ["on_macos", "on_linux"], "url only inside nested on_os/on_arch blocks"
    assert "@@" not in text
    for url in re.findall(r'url "([^"]*)"', text):
        assert url.endswith("_onedir.tar.gz"), "Homebrew installs the onedir build"
    install = text.split("  def install\n", 1)[1].split("\n  end\n", 1)[0]
    # the whole tree into libexec (the executable needs _internal/ beside it), linked from bin
    # (docs/packaging.md#homebrew)
    assert 'libexec.install "kubectl-gate", "_internal"' in install
    assert 'bin.install_symlink libexec/"kubectl-gate"' in install
    assert 'bin.install "kubectl-gate"' not in install
    assert 'bin.install "kubectl_complete-gate"' in install
    assert '"canary-gate"' not in install, "the Go original's cask owns the canary-gate command"
    assert (
        'generate_completions_from_executable(bin/"kubectl-gate", "completion", shells: [:bash, :zsh, :fish])'
    ) in install
    test = text.split("  test do\n", 1)[1]
    assert 'shell_output("#{bin}/kubectl-gate version --client")' in test and "assert_match" in test
    assert 'shell_output("#{bin}/kubectl-gate render -f #{testpath}/gate.yaml")' in test, "a real command"
    assert 'assert_match "kind: Canary", canary' in test


def test_checked_in_formula_follows_the_rules() -> None:
    check_formula_rules(FORMULA.read_text())


def test_the_formula_test_block_passes_with_the_real_cli(tmp_path: pathlib.Path) -> None:
    text = FORMULA.read_text()
    heredoc = re.search(r'\(testpath/"gate.yaml"\).write <<~YAML\n(.*?)\n    YAML\n', text, re.S).group(1)
    lines = heredoc.splitlines()
    strip = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    (tmp_path / "gate.yaml").write_text("\n".join(line[strip:] for line in lines) + "\n")
    cli = pathlib.Path(sys.executable).parent / "kubectl-gate"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    out = subprocess.run(
        [str(cli), "render", "-f", str(tmp_path / "gate.yaml")], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    for expected in re.findall(r'assert_match "([^"]+)", canary', text):
        assert expected in out.stdout, expected


def test_checked_in_krew_manifest_follows_the_static_rules() -> None:
    path = ROOT / "krew" / "gate.yaml"
    assert validate_krew(path, yaml.safe_load(path.read_text())) == []


# --- errors ----------------------------------------------------------------------------------


def test_missing_binary_fails_clearly(tmp_path: pathlib.Path) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    (tmp_path / "bins" / "kubectl-gate-darwin-arm64").unlink()
    result = run_release(tmp_path)
    assert result.returncode == 1
    assert "missing binary for darwin/arm64" in result.stderr
    assert not (tmp_path / "out" / "gate.yaml").exists()


def test_missing_license_and_bad_version_fail(tmp_path: pathlib.Path) -> None:
    fake_binaries(tmp_path / "bins")
    result = run_release(tmp_path)
    assert result.returncode == 1 and "no licence file" in result.stderr
    (tmp_path / "LICENSE").write_text("x")
    result = run_release(tmp_path, version="1.2")
    assert result.returncode == 1 and "not a semantic version" in result.stderr


def test_packaging_folder_is_not_a_python_package() -> None:
    assert not (ROOT / "packaging" / "__init__.py").exists()


# --- what the binaries are, the glibc floor, the version, a partial release ----------------


@pytest.mark.parametrize(
    "name, data, message",
    [
        (
            "kubectl-gate-linux-arm64",
            lambda: executable("linux", "amd64"),
            "linux/amd64 executable, but its name says linux/arm64",
        ),
        (
            "kubectl-gate-linux-amd64",
            lambda: executable("darwin", "amd64"),
            "darwin/amd64 executable, but its name says linux/amd64",
        ),
        (
            "kubectl-gate-darwin-arm64",
            lambda: executable("darwin", "amd64"),
            "darwin/amd64 executable, but its name says darwin/arm64",
        ),
        ("kubectl-gate-windows-amd64.exe", lambda: executable("windows", "arm64"), "windows/arm64 executable"),
        ("kubectl-gate-darwin-amd64", lambda: b"#!/bin/sh\necho not a binary\n", "not an ELF, Mach-O or PE executable"),
        (
            "kubectl-gate-linux-amd64-onedir/kubectl-gate",
            lambda: executable("linux", "arm64"),
            "linux/arm64 executable, but its name says linux/amd64",
        ),
    ],
    ids=["elf-arch", "macho-named-linux", "macho-arch", "pe-arch", "script", "onedir-exe"],
)
def test_a_binary_whose_header_does_not_match_its_name_is_refused(tmp_path, name, data, message) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    (tmp_path / "bins" / name).write_bytes(data() + b"payload")
    result = run_release(tmp_path)
    assert result.returncode == 1, result.stdout
    assert (message in result.stderr and "wrong runner" in result.stderr) or "not an ELF" in result.stderr
    assert not (tmp_path / "out" / "gate.yaml").exists()


def test_a_universal_macho_is_accepted_when_it_holds_the_arch(tmp_path) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    fat = (
        struct.pack(">II", 0xCAFEBABE, 2)
        + struct.pack(">IIIII", MACHO_CPU["amd64"], 3, 0, 0, 0)
        + struct.pack(">IIIII", MACHO_CPU["arm64"], 0, 0, 0, 0)
    )
    (tmp_path / "bins" / "kubectl-gate-darwin-arm64").write_bytes(fat + b"payload")
    assert run_release(tmp_path).returncode == 0


def test_glibc_floor_is_reported_and_enforced(tmp_path) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    lib = tmp_path / "bins" / "kubectl-gate-linux-amd64-onedir" / "_internal" / "libpython3.11.so.1.0"
    lib.write_bytes(elf("amd64", ["GLIBC_2.17", "GLIBC_2.34", "GLIBC_2.2.5"]))
    result = run_release(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "linux/amd64: needs glibc >= 2.34 (newest: libpython3.11.so.1.0)" in result.stdout
    assert "linux/arm64: needs no versioned glibc symbol" in result.stdout
    result = run_release(tmp_path, "--max-glibc", "2.28")
    assert result.returncode == 1
    assert "linux/amd64 needs glibc 2.34" in result.stderr and "above --max-glibc 2.28" in result.stderr
    lib.write_bytes(elf("amd64", ["GLIBC_2.28", "GLIBC_2.17"]))
    result = run_release(tmp_path, "--max-glibc", "2.28")
    assert result.returncode == 0, result.stderr
    assert "needs glibc >= 2.28" in result.stdout


def test_glibc_floor_reader_agrees_with_objdump() -> None:
    import shutil

    sys.path.insert(0, str(ROOT / "packaging"))
    import binfmt

    objdump = shutil.which("objdump")
    target = pathlib.Path(sys.executable).resolve()
    if not objdump or binfmt.identify(target.read_bytes()[:64])[0] != "linux":
        pytest.skip("needs objdump and a Linux ELF interpreter")
    dump = subprocess.run([objdump, "-T", str(target)], capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(x) for x in v.split(".")[:2]) for v in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", dump)}
    assert binfmt.glibc_floor(target.read_bytes()) == max(versions)


def test_a_linux_onedir_tree_with_a_symlink_is_refused_for_krew(tmp_path) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    internal = tmp_path / "bins" / "kubectl-gate-linux-amd64-onedir" / "_internal"
    (internal / "libssl.so").symlink_to("lib-dynload/_ssl.so")  # inside the tree: fine for Homebrew, not krew
    result = run_release(tmp_path)
    assert result.returncode == 1
    assert "holds symlinks (_internal/libssl.so)" in result.stderr and "krew" in result.stderr


def test_version_defaults_to_the_source_and_a_different_one_is_refused(tmp_path) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    result = run_release(tmp_path, version=None, source="0.4.0")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "kubectl-gate_v0.4.0_linux_amd64.tar.gz").is_file()
    assert yaml.safe_load((tmp_path / "out" / "gate.yaml").read_text())["spec"]["version"] == "v0.4.0"
    result = run_release(tmp_path, out="other", version="v0.5.0", source="0.4.0")
    assert result.returncode == 1
    assert "version v0.5.0 is not the project's version 0.4.0" in result.stderr and "CHANGES.md" in result.stderr
    assert run_release(tmp_path, out="same", version="v0.4.0", source="0.4.0").returncode == 0


def test_the_real_version_source_is_read(tmp_path) -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    import release

    import canarygate

    assert release.project_version() == canarygate.__version__


def test_a_partial_release_for_one_platform(tmp_path) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "LICENSE").write_text("x")
    result = run_release(tmp_path, "--platforms", "linux/amd64")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "checksums.txt",
            "gate.yaml",
            "kubectl-gate_v0.3.1_linux_amd64.tar.gz",
            "kubectl-gate_v0.3.1_linux_amd64.tar.gz.sha256",
            "kubectl-gate_v0.3.1_linux_amd64_onedir.tar.gz",
            "kubectl-gate_v0.3.1_linux_amd64_onedir.tar.gz.sha256",
        ]
    )
    assert "no Homebrew formula: it needs the onedir builds of" in result.stdout
    doc = yaml.safe_load((out / "gate.yaml").read_text())
    (platform,) = doc["spec"]["platforms"]
    assert platform["selector"]["matchLabels"] == {"os": "linux", "arch": "amd64"}
    archive = out / "kubectl-gate_v0.3.1_linux_amd64_onedir.tar.gz"
    assert validate_krew(out / "gate.yaml", doc, {platform["uri"]: archive}) == []
    result = run_release(tmp_path, "--platforms", "linux/mips")
    assert result.returncode == 1 and "unknown platform" in result.stderr
