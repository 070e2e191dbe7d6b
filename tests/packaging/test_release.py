"""packaging/release.py on fake binaries, and the krew manifests and Homebrew formula it fills.

Covers:
- a small validator of krew's manifest rules (UX-AND-PACKAGING.md §3.2: validate.go, the
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
- the filled krew manifest names only the onefile archives and passes the validator, including
  a simulated krew install of every platform from the real archives (bin present, LICENSE
  present, paths stay inside);
- the checked-in krew/gate.yaml and the krew-release-bot template .krew.yaml (rendered the way
  the bot does) pass the static rules;
- the filled Homebrew formula points at the onedir archives: every url and sha256 replaced,
  Homebrew's desc/sha256/version rules, nested on_os/on_arch blocks, the tree into libexec with
  bin/kubectl-gate linked to it, the shim, the canary-gate symlink and the `test do` block;
- errors: a missing binary, a missing LICENSE or a bad version fail with a clear message;
- packaging/ has no __init__.py (it would shadow the `packaging` library on sys.path).
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import posixpath
import re
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

# --- a validator of krew's rules (§3.2) ------------------------------------------------------

SUPPORTED = {
    "windows": {"386", "amd64", "arm64"},
    "linux": {"386", "amd64", "arm", "arm64", "ppc64le"},
    "darwin": {"386", "amd64", "arm64"},
}
WINDOWS_RESERVED = {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
KREW_SEMVER = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
LICENSE_NAMES = re.compile(r"^(license(\.txt|\.md)?|licenses.*|copying.*)$", re.IGNORECASE)


def validate_krew(path: pathlib.Path, doc: dict, archives: dict[str, pathlib.Path] | None = None) -> list[str]:
    """Problems krew would report; with archives (uri -> local file), also simulates the install."""
    errors: list[str] = []
    if path.suffix != ".yaml":
        errors.append("file extension must be .yaml")
    if doc.get("apiVersion") != "krew.googlecontainertools.github.com/v1alpha2":
        errors.append("bad apiVersion")
    if doc.get("kind") != "Plugin":
        errors.append("kind must be Plugin")
    name = (doc.get("metadata") or {}).get("name", "")
    if not re.fullmatch(r"[\w-]+", name) or name.lower() in WINDOWS_RESERVED:
        errors.append(f"invalid plugin name {name!r}")
    if name != path.stem:
        errors.append(f"metadata.name {name!r} must equal the file name {path.stem!r}")
    spec = doc.get("spec") or {}
    short = spec.get("shortDescription") or ""
    if not short or "\n" in short or "\r" in short:
        errors.append("shortDescription must be one non-empty line")
    if len(short) > 50:
        errors.append(f"shortDescription longer than 50 characters ({len(short)})")
    if any(len(line) > 80 for line in (spec.get("description") or "").splitlines()):
        errors.append("description not wrapped at 80 columns")
    if not re.match(r"^https?://", spec.get("homepage") or ""):
        errors.append("homepage must be an http(s) URL")
    if not KREW_SEMVER.match(str(spec.get("version") or "")):
        errors.append(f"version {spec.get('version')!r} is not semver with a leading v")
    platforms = spec.get("platforms") or []
    if not platforms:
        errors.append("no platforms")
    seen: set[tuple[str, str]] = set()
    for i, p in enumerate(platforms):
        where = f"platforms[{i}]"
        for key in ("uri", "sha256", "bin"):
            if not p.get(key):
                errors.append(f"{where}: {key} missing")
        if not re.fullmatch(r"[a-f0-9]{64}", str(p.get("sha256", ""))):
            errors.append(f"{where}: sha256 must be 64 lowercase hex characters")
        if "files" in p:
            files = p["files"] or []
            if not files or any(not f.get("from") or not f.get("to") for f in files):
                errors.append(f"{where}: files must be non-empty, each with from and to")
            if any(posixpath.normpath(f.get("to", "")) != f.get("to") and f.get("to") != "." for f in files):
                errors.append(f"{where}: files[].to must be a clean path")
        selector = p.get("selector") or {}
        labels = selector.get("matchLabels") or {}
        if not selector or set(selector) - {"matchLabels"} or not labels or set(labels) - {"os", "arch"}:
            errors.append(f"{where}: selector must be non-empty and use only os and arch labels")
        os_, arch = labels.get("os"), labels.get("arch")
        if arch not in SUPPORTED.get(os_, set()):
            errors.append(f"{where}: {os_}/{arch} is not a supported platform")
        if (os_, arch) in seen:
            errors.append(f"{where}: another platform already selects {os_}/{arch}")
        seen.add((os_, arch))
        if os_ == "windows" and not str(p.get("bin", "")).endswith(".exe"):
            errors.append(f"{where}: windows bin must be an .exe")
        if archives is not None:
            errors += [f"{where}: {e}" for e in simulate_install(p, archives.get(p.get("uri")))]
    return errors


def extract(archive: pathlib.Path) -> tuple[dict[str, bytes], list[str]]:
    """krew's extractors: gzip or zip by content; tar members must be regular files or dirs."""
    data = archive.read_bytes()
    files: dict[str, bytes] = {}
    errors: list[str] = []
    if data[:2] == b"\x1f\x8b":
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar.getmembers():
                if m.isdir():
                    continue
                if not m.isreg():
                    errors.append(f"unable to handle file type of {m.name}")
                    continue
                files[m.name] = tar.extractfile(m).read()
    elif data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    files[info.filename] = zf.read(info)
    else:
        errors.append("not a gzip or zip archive")
    for name in files:
        if name.startswith("/") or ".." in pathlib.PurePosixPath(name).parts:
            errors.append(f"archive member escapes the install directory: {name}")
    return files, errors


def simulate_install(platform: dict, archive: pathlib.Path | None) -> list[str]:
    if archive is None:
        return ["no archive for this uri"]
    if hashlib.sha256(archive.read_bytes()).hexdigest() != platform.get("sha256"):
        return ["sha256 does not match the archive"]
    files, errors = extract(archive)
    installed: dict[str, bytes] = {}
    for op in platform.get("files") or [{"from": "*", "to": "."}]:
        for name, data in files.items():
            if pathlib.PurePosixPath(name).match(op["from"]) or name == op["from"]:
                installed[posixpath.normpath(posixpath.join(op["to"], posixpath.basename(name)))] = data
    bin_ = posixpath.normpath(platform.get("bin", ""))
    if bin_.startswith("..") or bin_.startswith("/"):
        errors.append("bin is outside the install directory")
    if bin_ not in installed:
        errors.append(f"source binary {bin_} cannot be found in extracted archive")
    if not any(LICENSE_NAMES.match(posixpath.basename(n)) for n in installed):
        errors.append("no LICENSE file after install")
    return errors


# --- fixtures -------------------------------------------------------------------------------


ONEDIR_PLATFORMS = [p for p in PLATFORMS if p[0] != "windows"]


def fake_onedir(tree: pathlib.Path, os_: str, arch: str) -> dict[str, bytes]:
    """A PyInstaller-like onedir tree; on darwin with the symlinks PyInstaller 6 makes there."""
    files = {
        "kubectl-gate": f"fake onedir kubectl-gate for {os_}/{arch}\n".encode() + bytes(range(256)),
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
        data = f"fake kubectl-gate for {os_}/{arch}\n".encode() + bytes(range(256))
        name = f"kubectl-gate-{os_}-{arch}" + (".exe" if os_ == "windows" else "")
        (folder / name).write_bytes(data)
        contents[(os_, arch)] = data
        if os_ != "windows":
            contents[(os_, arch, "onedir")] = fake_onedir(folder / f"kubectl-gate-{os_}-{arch}-onedir", os_, arch)
    return contents


def run_release(tmp_path: pathlib.Path, *extra: str, out: str = "out", version: str = "0.3.1"):
    return subprocess.run(
        [sys.executable, str(RELEASE), "--version", version, "--binaries", str(tmp_path / "bins"),
         "--license", str(tmp_path / "LICENSE"), "--out", str(tmp_path / out), *extra],
        capture_output=True, text=True, timeout=60,
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
    platform = {"sha256": hashlib.sha256(archive.read_bytes()).hexdigest(), "bin": "kubectl-gate",
                "files": [{"from": "kubectl-gate", "to": "."}]}
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
    subprocess.run(["tar", "-xzf", str(out / "kubectl-gate_v0.3.1_darwin_arm64_onedir.tar.gz"), "-C", str(dest)],
                   check=True)
    assert sorted(p.name for p in dest.iterdir()) == ["LICENSE", "_internal", "kubectl-gate", "kubectl_complete-gate"]
    assert not [p for p in dest.rglob("*") if p.is_symlink()]
    assert os.access(dest / "kubectl-gate", os.X_OK)


@pytest.mark.parametrize(
    "make_link, message",
    [
        (lambda tree: (tree / "_internal" / "libssl.so").symlink_to("/etc/passwd"), "points outside the onedir tree"),
        (lambda tree: (tree / "_internal" / "escape").symlink_to("../../../elsewhere"),
         "points outside the onedir tree"),
        (lambda tree: (tree / "_internal" / "gone.so").symlink_to("missing.so"), "is dangling or a loop"),
        (lambda tree: (tree / "_internal" / "loop").symlink_to("."), "directory loop"),
    ],
    ids=["absolute-outside", "relative-outside", "dangling", "loop"],
)
def test_onedir_symlink_that_cannot_be_dereferenced_fails_the_release(tmp_path: pathlib.Path, make_link,
                                                                      message: str) -> None:
    fake_binaries(tmp_path / "bins")
    (tmp_path / "elsewhere").write_text("outside")
    (tmp_path / "LICENSE").write_text("x")
    make_link(tmp_path / "bins" / "kubectl-gate-linux-arm64-onedir")
    result = run_release(tmp_path)
    assert result.returncode == 1, result.stdout
    assert "kubectl-gate-linux-arm64-onedir" in result.stderr and message in result.stderr
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
    archives = {base + p.name: p for p in out.iterdir()
                if p.name.endswith((".tar.gz", ".zip")) and not p.name.endswith("_onedir.tar.gz")}
    assert not any("onedir" in p["uri"] for p in doc["spec"]["platforms"]), "krew installs the onefile"
    assert {p["uri"] for p in doc["spec"]["platforms"]} == set(archives)
    assert validate_krew(out / "gate.yaml", doc, archives) == []


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
    """Homebrew's audit and style rules that apply to this formula (§4.3-4.4)."""
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
    order = [text.index(k) for k in ("  desc ", "  homepage ", "  license ", "  livecheck do", "  on_macos do",
                                     "  on_linux do", "  def install", "  test do")]
    assert order == sorted(order), "FormulaAudit/ComponentsOrder"
    top_level = re.findall(r"^  (on_\w+) do$", text, re.M)
    assert top_level == ["on_macos", "on_linux"], "url only inside nested on_os/on_arch blocks"
    assert "@@" not in text
    for url in re.findall(r'url "([^"]*)"', text):
        assert url.endswith("_onedir.tar.gz"), "Homebrew installs the onedir build"
    install = text.split("  def install\n", 1)[1].split("\n  end\n", 1)[0]
    # the whole tree into libexec (the executable needs _internal/ beside it), linked from bin (§4.5)
    assert 'libexec.install "kubectl-gate", "_internal"' in install
    assert 'bin.install_symlink libexec/"kubectl-gate"' in install
    assert 'bin.install "kubectl-gate"' not in install
    assert 'bin.install "kubectl_complete-gate"' in install
    assert 'bin.install_symlink "kubectl-gate" => "canary-gate"' in install
    test = text.split("  test do\n", 1)[1]
    assert 'shell_output("#{bin}/kubectl-gate version --client")' in test and "assert_match" in test


def test_checked_in_formula_follows_the_rules() -> None:
    check_formula_rules(FORMULA.read_text())


def test_checked_in_krew_manifest_follows_the_static_rules() -> None:
    path = ROOT / "krew" / "gate.yaml"
    assert validate_krew(path, yaml.safe_load(path.read_text())) == []


def render_krew_release_bot(template: str, tag: str) -> str:
    """What krew-release-bot's `template` command does, with a dummy sha256 for addURIAndSha."""

    def add_uri_and_sha(m: re.Match) -> str:
        indent, url = m.group(1), m.group(2).replace("{{ .TagName }}", tag)
        return f"{indent}uri: {url}\n{indent}sha256: {'ab' * 32}"

    text = re.sub(r'^( *)\{\{ ?addURIAndSha "([^"]+)" \.TagName ?\}\}', add_uri_and_sha, template, flags=re.M)
    return text.replace("{{ .TagName }}", tag)


def test_krew_release_bot_template_renders_to_a_valid_manifest(tmp_path: pathlib.Path) -> None:
    rendered = render_krew_release_bot((ROOT / ".krew.yaml").read_text(), "v1.2.3")
    assert "{{" not in rendered
    path = tmp_path / "gate.yaml"
    doc = yaml.safe_load(rendered)
    assert validate_krew(path, doc) == []
    checked_in = good_manifest()
    assert {(p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"], p["bin"])
            for p in doc["spec"]["platforms"]} == {
        (p["selector"]["matchLabels"]["os"], p["selector"]["matchLabels"]["arch"], p["bin"])
        for p in checked_in["spec"]["platforms"]}
    for p in doc["spec"]["platforms"]:
        labels = p["selector"]["matchLabels"]
        assert p["uri"].endswith(f"/download/v1.2.3/kubectl-gate_v1.2.3_{labels['os']}_{labels['arch']}."
                                 + ("zip" if labels["os"] == "windows" else "tar.gz"))


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
