"""krew's manifest rules and install, as tests check them, and krew-release-bot's template rendering.

- validate_krew: krew v0.4.3's validation (internal/index/validation/validate.go, run by
  `install --manifest`), the stricter validate-krew-manifest tool (file name, supported platforms,
  no overlapping selectors, a LICENSE in the archive) and krew-index's review rules (a
  shortDescription of at most 50 characters, a description wrapped at 80 columns); plus the field
  names krew's types know, since krew's decoder is not strict and would ignore a misspelt key;
- extract / simulate_install: krew's extractors (tar.gz or zip by content, regular files and
  directories only) and its file operations (`from` a direct path or a glob, `to` a clean path);
- render_like_krew_release_bot: rajatjindal/krew-release-bot's RenderTemplate (pkg/source/
  template.go), re-expressed: Go text/template actions over the file with .TagName, and its two
  functions: addURIAndSha URL TAG renders URL as a template, downloads it and returns
  "uri: URL\n    sha256: HEX" (the second line at a fixed 4-space indent), and indent N V first
  turns that "    sha256:" back into "sha256:", then pads every line after the first by N spaces
  and trims the result (the action's own column gives the first line its indent).
"""

from __future__ import annotations

import hashlib
import io
import pathlib
import posixpath
import re
import tarfile
import zipfile
from collections.abc import Callable

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
    """krew's install of one platform from `archive` into an empty directory (in memory)."""
    if archive is None:
        return ["no archive for this uri"]
    if hashlib.sha256(archive.read_bytes()).hexdigest() != platform.get("sha256"):
        return ["sha256 does not match the archive"]
    files, errors = extract(archive)
    installed: dict[str, bytes] = {}
    for op in platform.get("files") or [{"from": "*", "to": "."}]:
        source, to = posixpath.normpath(op["from"]), op["to"]
        if source in files or any(n.startswith(source + "/") for n in files):  # a direct move: file or dir
            target = posixpath.basename(source) if to == "." else to
            for name, data in files.items():
                if name == source or name.startswith(source + "/"):
                    installed[posixpath.normpath(target + name[len(source) :])] = data
            continue
        tops = {n.split("/", 1)[0] for n in files}  # a glob over the archive's top level
        matched = [top for top in tops if pathlib.PurePosixPath(top).match(source)]
        if not matched:
            errors.append(f"no files in the plugin archive matched the glob pattern={op['from']}")
        for top in matched:
            for name, data in files.items():
                if name == top or name.startswith(top + "/"):
                    installed[posixpath.normpath(posixpath.join(to, name))] = data
    bin_ = posixpath.normpath(platform.get("bin", ""))
    if bin_.startswith("..") or bin_.startswith("/"):
        errors.append("bin is outside the install directory")
    if bin_ not in installed:
        errors.append(f"source binary {bin_} cannot be found in extracted archive")
    if not any(LICENSE_NAMES.match(posixpath.basename(n)) for n in installed):
        errors.append("no LICENSE file after install")
    return errors


# krew's types (pkg/index/types.go): what its decoder reads. It is not strict, so anything else is
# silently dropped: a misspelt `sha265` would leave the platform without its checksum.
KNOWN_FIELDS = {
    (): {"apiVersion", "kind", "metadata", "spec"},
    ("spec",): {"version", "shortDescription", "description", "caveats", "homepage", "platforms"},
    ("platform",): {"uri", "sha256", "selector", "files", "bin"},
    ("file",): {"from", "to"},
}


def unknown_fields(doc: dict) -> list[str]:
    found = [f"unknown field {k}" for k in set(doc) - KNOWN_FIELDS[()]]
    spec = doc.get("spec") or {}
    found += [f"unknown field spec.{k}" for k in set(spec) - KNOWN_FIELDS[("spec",)]]
    for i, platform in enumerate(spec.get("platforms") or []):
        found += [f"unknown field platforms[{i}].{k}" for k in set(platform) - KNOWN_FIELDS[("platform",)]]
        for j, op in enumerate(platform.get("files") or []):
            found += [f"unknown field platforms[{i}].files[{j}].{k}" for k in set(op) - KNOWN_FIELDS[("file",)]]
    return sorted(found)


# --- krew-release-bot's template rendering ----------------------------------------------------

_ACTION = re.compile(r'\{\{(-\s)?((?:"(?:[^"\\]|\\.)*"|[^"}]|\}(?!\}))*?)(\s-)?\}\}', re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\||\.[A-Za-z_]\w*|[A-Za-z_]\w*|\d+)')


class TemplateError(Exception):
    pass


def _tokens(text: str) -> list[str]:
    out, pos = [], 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if not match:
            raise TemplateError(f"unexpected {text[pos:]!r} in action")
        out.append(match.group(1))
        pos = match.end()
    return out


def _value(token: str, data: dict):
    if token.startswith('"'):
        import json

        return json.loads(token)  # Go and JSON agree on the escapes a URL can hold
    if token.startswith("."):
        if token[1:] not in data:
            raise TemplateError(f"can't evaluate field {token[1:]}")
        return data[token[1:]]
    if token.isdigit():
        return int(token)
    raise TemplateError(f"unexpected {token!r} as an argument")


def render_like_krew_release_bot(template: str, tag: str, sha_of: Callable[[str], str]) -> str:
    """The bot's RenderTemplate with values {TagName: tag}; sha_of(url) plays its download."""

    def add_uri_and_sha(url: str, tag_name: str) -> str:
        uri = render_actions(url, {"TagName": tag_name})
        return f"uri: {uri}\n    sha256: {sha_of(uri)}"

    def indent(spaces: int, value: str) -> str:
        value = value.replace("    sha256:", "sha256:")
        pad = " " * spaces
        return (pad + value.replace("\n", "\n" + pad)).strip(" \t\r\n")

    funcs = {"addURIAndSha": add_uri_and_sha, "indent": indent}

    def render_actions(text: str, data: dict) -> str:
        def action(match: re.Match) -> str:
            commands, current = [], []
            for token in _tokens(match.group(2)):
                if token == "|":
                    commands.append(current)
                    current = []
                else:
                    current.append(token)
            commands.append(current)
            result, piped = None, False
            for command in commands:
                if not command:
                    raise TemplateError("missing command in pipeline")
                name, args = command[0], [_value(a, data) for a in command[1:]]
                if piped:
                    args.append(result)
                if name.startswith((".", '"')) or name.isdigit():  # an operand, not a function
                    if args:
                        raise TemplateError(f"{name} is not a function but has arguments")
                    result = _value(name, data)
                elif name in funcs:
                    result = funcs[name](*args)
                else:
                    raise TemplateError(f'function "{name}" not defined')
                piped = True
            return str(result)

        out, pos = [], 0
        for match in _ACTION.finditer(text):
            before = text[pos : match.start()]
            out.append(before.rstrip(" \t\r\n") if match.group(1) else before)
            out.append(action(match))
            pos = match.end()
            if match.group(3):
                rest = text[pos:]
                pos += len(rest) - len(rest.lstrip(" \t\r\n"))
        out.append(text[pos:])
        rendered = "".join(out)
        if "{{" in rendered:
            raise TemplateError(f"unparsed action left: {rendered[rendered.index('{{') :][:60]!r}")
        return rendered

    return render_actions(template, {"TagName": tag})
