"""The RPM database, read as a file: which package installed a binary, its version, its checksum, and the
changelog that names the fixes it carries. Nothing is run (no rpm).

RPM 4.16 and later keep the database in SQLite (``rpmdb.sqlite``: Fedora 33+, RHEL 9, Amazon Linux 2023), under
``/var/lib/rpm`` or ``/usr/lib/sysimage/rpm``. Its ``Packages`` table holds one header blob per package:
big-endian index count and data length, then 16-byte index entries (tag, type, offset, count) and the data
they point into. Older Berkeley DB (``Packages``: RHEL 7/8) and SUSE's ndb (``Packages.db``) databases are
recognised but not read; the evidence says so. SQLite is opened read-only and immutable, so nothing on the
node is written, not even a lock.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from probes.readers.host.packages import Changelog, ChangelogEntry, InstalledPackage, aliases, file_digest

DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
SQLITE = "rpmdb.sqlite"
UNREAD_FORMATS = {"Packages": "Berkeley DB", "Packages.db": "ndb"}

_NAME, _VERSION, _RELEASE, _EPOCH = 1000, 1001, 1002, 1003
_FILEDIGESTS, _CHANGELOGNAME, _CHANGELOGTEXT = 1035, 1081, 1082
_DIRINDEXES, _BASENAMES, _DIRNAMES, _DIGESTALGO = 1116, 1117, 1118, 5011
_STRING, _STRING_ARRAY, _I18NSTRING, _INT32 = 6, 8, 9, 4
_ALGORITHMS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512"}


class RpmHeader:
    """One package header: tags looked up on demand."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        count, size = struct.unpack_from(">ii", blob, 0)
        if count < 0 or size < 0 or 8 + 16 * count + size > len(blob):
            raise ValueError("malformed RPM header")
        self.data_at = 8 + 16 * count
        self.entries = {}
        for n in range(count):
            tag, kind, offset, items = struct.unpack_from(">iiii", blob, 8 + 16 * n)
            self.entries[tag] = (kind, offset, items)

    def strings(self, tag: int) -> list[str]:
        if tag not in self.entries:
            return []
        kind, offset, items = self.entries[tag]
        if kind not in (_STRING, _STRING_ARRAY, _I18NSTRING):
            return []
        pos, found = self.data_at + offset, []
        for _ in range(items if kind != _STRING else 1):
            end = self.blob.index(b"\x00", pos)
            found.append(self.blob[pos:end].decode("utf-8", "replace"))
            pos = end + 1
        return found

    def string(self, tag: int) -> str:
        values = self.strings(tag)
        return values[0] if values else ""

    def ints(self, tag: int) -> list[int]:
        if tag not in self.entries or self.entries[tag][0] != _INT32:
            return []
        _kind, offset, items = self.entries[tag]
        return list(struct.unpack_from(f">{items}i", self.blob, self.data_at + offset))

    @property
    def evr(self) -> str:
        epoch = self.ints(_EPOCH)
        prefix = f"{epoch[0]}:" if epoch and epoch[0] else ""
        return f"{prefix}{self.string(_VERSION)}-{self.string(_RELEASE)}"

    def files(self) -> list[str]:
        dirs, bases, index = self.strings(_DIRNAMES), self.strings(_BASENAMES), self.ints(_DIRINDEXES)
        return [dirs[i] + base for i, base in zip(index, bases) if 0 <= i < len(dirs)]


@dataclass(frozen=True)
class RpmDatabase:
    """Where the node's RPM database is and whether nodedoc can read it."""

    path: str  # host path
    readable: bool
    format: str


def find_database(host_root: Path) -> RpmDatabase | None:
    for directory in DIRS:
        here = host_root / directory.lstrip("/")
        if (here / SQLITE).is_file():
            return RpmDatabase(f"{directory}/{SQLITE}", True, "sqlite")
        for name, kind in UNREAD_FORMATS.items():
            if (here / name).is_file():
                return RpmDatabase(f"{directory}/{name}", False, kind)
    return None


def _headers(host_root: Path, database: RpmDatabase) -> list[RpmHeader]:
    import sqlite3  # only a node with an rpmdb needs it: most are dpkg's

    local = host_root / database.path.lstrip("/")
    try:
        connection = sqlite3.connect(f"file:{local}?mode=ro&immutable=1", uri=True)
    except sqlite3.Error:
        return []
    try:
        rows = connection.execute("SELECT blob FROM Packages").fetchall()
    except sqlite3.Error:
        return []
    finally:
        connection.close()
    headers = []
    for (blob,) in rows:
        try:
            headers.append(RpmHeader(bytes(blob)))
        except (ValueError, struct.error):
            continue
    return headers


def rpm_owner(host_root: Path, paths: list[str]) -> InstalledPackage | None:
    """The RPM package that lists one of ``paths``, with its version and the file's checksum verdict."""
    database = find_database(host_root)
    if database is None or not database.readable:
        return None
    wanted = {alias for p in paths for alias in aliases(p)}
    for header in _headers(host_root, database):
        files = header.files()
        hit = next((f for f in files if f in wanted), None)
        if hit is None:
            continue
        return InstalledPackage(
            manager="rpm",
            name=header.string(_NAME),
            version=header.evr,
            listed_in=database.path,
            database=database.path,
            file=hit,
            checksum=_checksum(host_root, header, files.index(hit), paths[-1]),
        )
    return None


def _checksum(host_root: Path, header: RpmHeader, index: int, path: str) -> str:
    digests = header.strings(_FILEDIGESTS)
    algorithm = _ALGORITHMS.get((header.ints(_DIGESTALGO) or [1])[0])
    if index >= len(digests) or not digests[index] or algorithm is None:
        return ""
    digest = file_digest(host_root / path.lstrip("/"), algorithm)
    if digest is None:
        return ""
    return "matches" if digest == digests[index] else "differs"


def rpm_changelog(host_root: Path, package: str) -> Changelog | None:
    """The installed package's changelog from its header; every entry belongs to the installed build."""
    database = find_database(host_root)
    if database is None or not database.readable:
        return None
    for header in _headers(host_root, database):
        if header.string(_NAME) != package:
            continue
        names, texts = header.strings(_CHANGELOGNAME), header.strings(_CHANGELOGTEXT)
        entries = tuple(
            ChangelogEntry(name.rsplit(" - ", 1)[-1] if " - " in name else header.evr, text)
            for name, text in zip(names, texts)
        )
        return Changelog(path=f"{database.path} ({package} changelog)", entries=entries, all_installed=True)
    return None
