"""What an executable is, read from its header: ELF, Mach-O (thin or fat) or PE, and its CPU.

    identify(data) -> (os, {arch, ...})   e.g. ("linux", {"amd64"}), ("darwin", {"amd64", "arm64"})
    check(path, os_, arch)                raises FormatError unless the file is that OS and CPU
    glibc_floor(data) -> (2, 28) | None   the newest GLIBC_x.y symbol version an ELF file needs

packaging/release.py refuses a binary whose header does not match its name, so a job that
uploads the wrong build (an x86_64 binary from an arm64 runner under emulation, a Mach-O named
linux) cannot publish it. ELF carries no reliable OS (EI_OSABI is 0 on Linux), so ELF means linux
here. Standard library only: release.py runs on a bare CI runner.
"""

from __future__ import annotations

import pathlib
import re
import struct

ELF_MACHINES = {62: "amd64", 183: "arm64", 3: "386", 40: "arm"}
MACHO_CPUS = {0x01000007: "amd64", 0x0100000C: "arm64", 7: "386"}
PE_MACHINES = {0x8664: "amd64", 0xAA64: "arm64", 0x14C: "386"}
SHT_GNU_VERNEED = 0x6FFFFFFE
GLIBC = re.compile(rb"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")


class FormatError(Exception):
    pass


def identify(data: bytes) -> tuple[str, set[str]]:
    """(os, archs) from the first bytes of an executable; raises FormatError if it is none of them."""
    if data[:4] == b"\x7fELF":
        if len(data) < 20:
            raise FormatError("truncated ELF header")
        endian = "<" if data[5] == 1 else ">"
        (machine,) = struct.unpack_from(endian + "H", data, 18)
        return "linux", {ELF_MACHINES.get(machine, f"elf-machine-{machine}")}
    if len(data) >= 8 and data[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):  # thin, little-endian
        (cpu,) = struct.unpack_from("<I", data, 4)
        return "darwin", {MACHO_CPUS.get(cpu, f"macho-cpu-{cpu:#x}")}
    if data[:4] == b"\xca\xfe\xba\xbe" and len(data) >= 8:  # fat (universal): big-endian table
        (count,) = struct.unpack_from(">I", data, 4)
        if not 0 < count < 20:  # 0xcafebabe is also a Java class file's magic
            raise FormatError("not a Mach-O universal binary")
        cpus = {struct.unpack_from(">I", data, 8 + 20 * i)[0] for i in range(count)}
        return "darwin", {MACHO_CPUS.get(c, f"macho-cpu-{c:#x}") for c in cpus}
    if data[:2] == b"MZ" and len(data) >= 0x40:
        (offset,) = struct.unpack_from("<I", data, 0x3C)
        if data[offset : offset + 4] != b"PE\0\0":
            raise FormatError("MZ header without a PE signature")
        (machine,) = struct.unpack_from("<H", data, offset + 4)
        return "windows", {PE_MACHINES.get(machine, f"pe-machine-{machine:#x}")}
    raise FormatError(f"not an ELF, Mach-O or PE executable (starts with {data[:4].hex()})")


def check(path: pathlib.Path, os_: str, arch: str) -> None:
    """Raises FormatError unless `path` is an executable for os_/arch (a fat Mach-O must hold arch)."""
    with path.open("rb") as f:
        head = f.read(4096)
    if head[:2] == b"MZ" and len(head) >= 0x40:  # the PE header may sit past the first 4 KiB
        (offset,) = struct.unpack_from("<I", head, 0x3C)
        with path.open("rb") as f:
            head = f.read(max(4096, offset + 8))
    try:
        found_os, archs = identify(head)
    except FormatError as exc:
        raise FormatError(f"{path.name}: {exc}") from None
    if found_os != os_ or arch not in archs:
        raise FormatError(
            f"{path.name} is a {found_os}/{'+'.join(sorted(archs))} executable, "
            f"but its name says {os_}/{arch}: it was built on the wrong runner"
        )


def glibc_floor(data: bytes) -> tuple[int, int] | None:
    """The newest GLIBC_x.y version a 64-bit little-endian ELF file needs (its .gnu.version_r)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    best = None
    for _name, kind, _flags, _addr, offset, _size, link, info, _align, _entsize in sections:
        if kind != SHT_GNU_VERNEED:
            continue
        strtab = sections[link][4]
        entry = offset
        for _ in range(info):  # sh_info: the number of Verneed entries
            _ver, count, _file, aux, following = struct.unpack_from("<HHIII", data, entry)
            at = entry + aux
            for _ in range(count):
                _hash, _flags2, _other, name, after = struct.unpack_from("<IHHII", data, at)
                text = data[strtab + name : data.index(b"\0", strtab + name)]
                match = GLIBC.match(text)
                if match:
                    version = (int(match.group(1)), int(match.group(2)))
                    best = version if best is None or version > best else best
                at += after
            entry += following
    return best


def tree_glibc_floor(paths: list[pathlib.Path]) -> tuple[tuple[int, int] | None, str]:
    """The newest glibc any of these ELF files needs, and which file needs it."""
    best, which = None, ""
    for path in paths:
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as f:
            if f.read(4) != b"\x7fELF":
                continue
        floor = glibc_floor(path.read_bytes())
        if floor and (best is None or floor > best):
            best, which = floor, str(path)
    return best, which
