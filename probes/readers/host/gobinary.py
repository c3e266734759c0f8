"""What a Go program says about itself without being run: its build information and the version linked in.

containerd, its shims, ctr, runc and the kubelet are Go programs. Since Go 1.18 the linker writes a
``.go.buildinfo`` section that starts with the 14-byte magic ``\\xff Go buildinf:``, then one byte of pointer
size and one of flags (bit 0 big-endian, bit 1 strings inline); with inline strings, at offset 32 follow the Go
version and the module information, each prefixed by its length as an unsigned varint. Older binaries hold,
at offset 16, two pointers to Go string headers (address, length) instead. The module information is lines of
``path``, ``mod``, ``dep``, ``=>`` and ``build KEY=VALUE`` fields between two 16-byte sentinels.

Release builds usually set the version with ``-ldflags -X <pkg>.Version=...``: Go records those flags among the
build settings unless ``-trimpath`` was used (Debian's builds use it). The linker writes such ``-X`` strings
as separate NUL-padded symbols beside ``runtime.buildVersion``, so in the read-only data they stand alone,
while string literals from the source are packed together with no separator (containerd's default
``2.1.9+unknown`` is glued to its neighbours). Finding the version among the strings is a heuristic, and the
result says so.

Nothing here executes the file: it is opened, read and closed.
"""

from __future__ import annotations

import mmap
import re
import shlex
import struct
from dataclasses import dataclass, field
from pathlib import Path

from probes.errors import NodedocError
from probes.versions import GIT_DESCRIBE, Version, parse, try_parse

MAGIC = b"\xff Go buildinf:"
_SENTINEL_LEN = 16
#: ``-X`` variables that hold a program's version: containerd's ``version.Version``, runc's ``main.version``,
#: the kubelet's ``version.gitVersion``.
_VERSION_VARS = ("version.version", "main.version", "version.gitversion")
_REVISION_VARS = ("version.revision", "main.gitcommit", "version.gitcommit")
#: A version as a linker-written ``-X`` string holds it: the whole of a string that stands alone between NUL
#: bytes. Every such string holds a dot, digits and a dot, which are rare in read-only data, so those are
#: found first (a search that can skip ahead) and only the NUL-delimited string around each is tested.
_STANDALONE = re.compile(rb"v?\d+\.\d+\.\d+[0-9A-Za-z.~+\-]*")
_DOTTED = re.compile(rb"\.\d+\.")
#: containerd's source default when the build did not set one (``1.6.20+unknown``, ``2.1.9+unknown``): the
#: literal ``+unknown`` is found first, then the version that ends where it starts (not part of a longer
#: number: nothing from ``0-9.`` before it).
_UNKNOWN = b"+unknown"
_SOURCE_DEFAULT = re.compile(rb"(?<![0-9.])(\d+\.\d+\.\d+(?:-(?:rc|beta|alpha)\.\d+)?)\Z")
#: Every byte ``_SOURCE_DEFAULT``'s version can hold.
_SOURCE_DEFAULT_BYTES = b"0123456789.-rcbetalph"


class NotAGoBinary(NodedocError):
    """The file is not an ELF Go program nodedoc can read (a script, a wrapper, another language)."""


@dataclass(frozen=True)
class GoBuildInfo:
    """The Go build information of one binary."""

    go_version: str
    main_package: str = ""
    module: str = ""
    module_version: str = ""
    settings: dict[str, str] = field(default_factory=dict)

    def ldflags_vars(self) -> dict[str, str]:
        """The ``-X name=value`` assignments in the recorded ``-ldflags`` (empty when none were recorded)."""
        flags = self.settings.get("-ldflags", "")
        try:
            words = shlex.split(flags)
        except ValueError:
            words = flags.split()
        found: dict[str, str] = {}
        for n, word in enumerate(words):
            assignment = ""
            if word.lstrip("-") == "X" and n + 1 < len(words):
                assignment = words[n + 1]
            elif word.lstrip("-").startswith("X="):
                assignment = word.lstrip("-")[2:]
            name, sep, value = assignment.partition("=")
            if sep:
                found[name] = value
        return found

    def stamped(self, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
        """The first ``-X`` variable whose name ends with one of ``suffixes`` (case-insensitive), as
        (name, value)."""
        for name, value in self.ldflags_vars().items():
            if value and name.lower().endswith(suffixes):
                return name, value
        return None

    def to_dict(self) -> dict[str, object]:
        return {
            "go": self.go_version,
            "path": self.main_package or None,
            "module": f"{self.module} {self.module_version}".strip() or None,
            "settings": dict(self.settings),
        }


@dataclass(frozen=True)
class LinkedVersion:
    """A version found by reading a binary, where it came from, and the build it names when it shows one."""

    version: Version
    source: str
    revision: str = ""
    heuristic: bool = False


@dataclass(frozen=True)
class GoBinary:
    """What reading one Go binary told: its build information and the version linked into it."""

    build: GoBuildInfo | None
    linked: LinkedVersion | None
    candidates: tuple[str, ...] = ()
    problem: str = ""


# -- ELF ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Section:
    name: str
    addr: int
    offset: int
    size: int


def _sections(data: mmap.mmap) -> tuple[str, list[_Section]]:
    """The ELF byte order ('<' or '>') and section headers; NotAGoBinary when the file is not ELF."""
    if data[:4] != b"\x7fELF":
        raise NotAGoBinary("not an ELF executable")
    bits, order = data[4], "<" if data[5] == 1 else ">"
    if bits == 2:
        shoff, shentsize, shnum, shstrndx = (
            struct.unpack_from(order + "Q", data, 0x28)[0],
            *struct.unpack_from(order + "HHH", data, 0x3A),
        )
        layout = order + "IIQQQQIIQQ"
    elif bits == 1:
        shoff, shentsize, shnum, shstrndx = (
            struct.unpack_from(order + "I", data, 0x20)[0],
            *struct.unpack_from(order + "HHH", data, 0x2E),
        )
        layout = order + "IIIIIIIIII"
    else:
        raise NotAGoBinary(f"unknown ELF class {bits}")
    raw = []
    for n in range(shnum):
        start = shoff + n * shentsize
        if start + struct.calcsize(layout) > len(data):
            raise NotAGoBinary("truncated ELF section table")
        name, _type, _flags, addr, offset, size, *_ = struct.unpack_from(layout, data, start)
        raw.append((name, addr, offset, size))
    if not raw or shstrndx >= len(raw):
        return order, []
    names_at = raw[shstrndx][2]
    sections = []
    for name, addr, offset, size in raw:
        end = data.find(b"\x00", names_at + name)
        sections.append(_Section(data[names_at + name : end].decode("ascii", "replace"), addr, offset, size))
    return order, sections


def _at_address(sections: list[_Section], addr: int) -> int | None:
    for s in sections:
        if s.addr and s.addr <= addr < s.addr + s.size and s.name != ".bss":
            return s.offset + addr - s.addr
    return None


# -- build info ---------------------------------------------------------------------------------------------


def _uvarint(data: bytes | mmap.mmap, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise NotAGoBinary("malformed varint in the Go build information")


def _go_unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return bytes(value[1:-1], "utf-8").decode("unicode_escape")
    return value


def parse_modinfo(go_version: str, modinfo: str) -> GoBuildInfo:
    """Parse the module information text (sentinels included or not)."""
    if len(modinfo) >= 2 * _SENTINEL_LEN + 1 and modinfo[-_SENTINEL_LEN - 1] == "\n":
        modinfo = modinfo[_SENTINEL_LEN:-_SENTINEL_LEN]
    main_package = module = module_version = ""
    settings: dict[str, str] = {}
    for line in modinfo.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "path":
            main_package = rest
        elif kind == "mod":
            parts = rest.split("\t")
            module, module_version = parts[0], parts[1] if len(parts) > 1 else ""
        elif kind == "build":
            key, _, value = rest.partition("=")
            settings[_go_unquote(key)] = _go_unquote(value)
    return GoBuildInfo(go_version, main_package, module, module_version, settings)


def _read_go_string(data: mmap.mmap, sections: list[_Section], order: str, ptr: int, ptr_size: int) -> str:
    fmt = order + ("Q" if ptr_size == 8 else "I")
    header = _at_address(sections, ptr)
    if header is None:
        return ""
    addr, length = struct.unpack_from(fmt * 2, data, header)
    where = _at_address(sections, addr)
    if where is None or length > 1 << 20:
        return ""
    return bytes(data[where : where + length]).decode("utf-8", "replace")


def _build_info(data: mmap.mmap, sections: list[_Section], order: str) -> GoBuildInfo | None:
    section = next((s for s in sections if s.name == ".go.buildinfo"), None)
    start = section.offset if section else data.find(MAGIC)
    if start < 0 or data[start : start + len(MAGIC)] != MAGIC:
        return None
    ptr_size, flags = data[start + 14], data[start + 15]
    if flags & 2:
        length, pos = _uvarint(data, start + 32)
        go_version = bytes(data[pos : pos + length]).decode("utf-8", "replace")
        length, pos = _uvarint(data, pos + length)
        modinfo = bytes(data[pos : pos + length]).decode("utf-8", "replace")
    else:
        order = ">" if flags & 1 else "<"
        fmt = order + ("Q" if ptr_size == 8 else "I")
        version_ptr, modinfo_ptr = struct.unpack_from(fmt * 2, data, start + 16)
        go_version = _read_go_string(data, sections, order, version_ptr, ptr_size)
        modinfo = _read_go_string(data, sections, order, modinfo_ptr, ptr_size)
    return parse_modinfo(go_version, modinfo)


# -- the version linked in --------------------------------------------------------------------------------


def _standalone_versions(data: mmap.mmap, sections: list[_Section]) -> list[str]:
    regions = [s for s in sections if s.name in (".rodata", ".noptrdata", ".data.rel.ro")] or [
        _Section("file", 0, 0, len(data))
    ]
    found: list[str] = []
    for region in regions:
        end = min(region.offset + region.size, len(data))
        start = min(region.offset, end)
        pos = start
        while True:
            hit = _DOTTED.search(data, pos, end)
            if hit is None:
                break
            # The string around the hit, delimited by NULs inside the region (a string at either edge of
            # the region is not known to stand alone).
            after = data.find(b"\x00", hit.end(), end)
            if after < 0:
                break
            before = data.rfind(b"\x00", start, hit.start())
            if before >= 0:
                piece = data[before + 1 : after]
                if _STANDALONE.fullmatch(piece):
                    text = piece.decode("ascii")
                    if text not in found and try_parse(text) is not None:
                        found.append(text)
            pos = after
    return found


def _source_defaults(data: mmap.mmap) -> set[str]:
    """The versions written as ``<version>+unknown`` anywhere in the file."""
    found: set[str] = set()
    at = data.find(_UNKNOWN)
    while at >= 0:
        match = _SOURCE_DEFAULT.search(data[_run_start(data, at) : at])
        if match:
            found.add(match.group(1).decode())
        at = data.find(_UNKNOWN, at + len(_UNKNOWN))
    return found


def _run_start(data: mmap.mmap, end: int) -> int:
    """Where the run of bytes a source default's version can hold, ending at ``end``, starts."""
    size = 64
    while True:
        start = max(0, end - size)
        kept = len(data[start:end].rstrip(_SOURCE_DEFAULT_BYTES))
        if kept or start == 0:
            return start + kept
        size *= 4


def _pick(candidates: list[str]) -> tuple[str, str] | None:
    """(version, revision) from standalone strings: one upstream number (Debian stamps the version and, as the
    revision, the package version that starts with it), else a version and a longer build string extending it.
    None when the strings name different versions."""
    parsed = {c: try_parse(c) for c in candidates}
    keys = {v.key() for v in parsed.values() if v}
    if len(keys) == 1:
        ordered = sorted(candidates, key=len)
        version = ordered[0]
        extending = [
            c
            for c in ordered[1:]
            if c.lstrip("v").startswith(version.lstrip("v")) and not _git_describe(c, version)
        ]
        return version, extending[-1] if extending else ""
    for short in candidates:
        for long in candidates:
            if (
                long != short
                and long.lstrip("v").startswith(short.lstrip("v"))
                and not _git_describe(long, short)
            ):
                return short, long
    return None


def _git_describe(long: str, short: str) -> bool:
    return bool(GIT_DESCRIBE.match(long.lstrip("v")[len(short.lstrip("v")) :]))


def _linked_version(
    build: GoBuildInfo | None, data: mmap.mmap, sections: list[_Section]
) -> tuple[LinkedVersion | None, tuple[str, ...], str]:
    if build is not None:
        stamped = build.stamped(_VERSION_VARS)
        version = try_parse(stamped[1]) if stamped else None
        if stamped and version:
            revision = build.stamped(_REVISION_VARS)
            return (
                LinkedVersion(
                    version,
                    f"Go build info: -ldflags -X {stamped[0]}={stamped[1]}",
                    revision[1] if revision else "",
                ),
                (),
                "",
            )
        module = try_parse(build.module_version) if build.module_version not in ("", "(devel)") else None
        if module:
            return (
                LinkedVersion(module, f"Go build info: main module {build.module} {build.module_version}"),
                (),
                "",
            )
    candidates = _standalone_versions(data, sections)
    picked = _pick(candidates)
    if picked:
        return (
            LinkedVersion(parse(picked[0]), "version string linked into the binary", picked[1], True),
            tuple(candidates),
            "",
        )
    defaults = _source_defaults(data)
    if len(defaults) == 1 and not candidates:
        text = defaults.pop()
        return (
            LinkedVersion(
                parse(text), f"version in the source ({text}+unknown: the build set none)", "", True
            ),
            (),
            "",
        )
    if candidates:
        return None, tuple(candidates), f"several version strings in the binary: {', '.join(candidates[:6])}"
    return None, (), "no version string in the binary"


def read_go_binary(path: Path) -> GoBinary:
    """Read a Go binary's build information and linked-in version (OSError, NotAGoBinary)."""
    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            raise NotAGoBinary("empty file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            order, sections = _sections(data)
            build = _build_info(data, sections, order)
            if build is None:
                raise NotAGoBinary("no Go build information (not a Go program)")
            linked, candidates, problem = _linked_version(build, data, sections)
            return GoBinary(build=build, linked=linked, candidates=candidates, problem=problem)
