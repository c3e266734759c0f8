"""The node's package database, read as files: which package installed a binary, its exact version, and the
fixes its changelog names. Nothing is run (no dpkg, no rpm, no apt).

Debian and Ubuntu: ``/var/lib/dpkg/info/<package>[:<arch>].list`` lists every file of a package,
``<package>.md5sums`` their checksums (relative paths), ``/var/lib/dpkg/status`` each package's installed
version, and ``/usr/share/doc/<package>/changelog.Debian.gz`` names, per package revision, the CVEs it fixed.
RPM distributions keep the same in the rpmdb, read by :mod:`probes.readers.host.rpmdb`.

A Debian package unpacked without installing it (``dpkg-deb -R PKG.deb DIR``: the files under DIR and the
package's own ``DIR/DEBIAN/control`` and ``md5sums``) describes its files the same way, with the changelog under
DIR: a binary run from such a tree whose checksum the package's md5sums records is that package's build.
"""

from __future__ import annotations

import gzip
import hashlib
import mmap
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

DPKG_INFO = "/var/lib/dpkg/info"
DPKG_STATUS = "/var/lib/dpkg/status"
DEBIAN_CHANGELOG = "/usr/share/doc/{package}/changelog.Debian.gz"
_MERGED = ("/bin/", "/sbin/", "/lib/", "/lib64/")


def _local(host_root: Path, path: str) -> Path:
    return host_root / path.lstrip("/")


def aliases(path: str) -> list[str]:
    """A host path and its merged-/usr twin (``/bin/x`` ↔ ``/usr/bin/x``): dpkg records whichever it shipped."""
    names = [path]
    if path.startswith(_MERGED):
        names.append("/usr" + path)
    elif path.startswith("/usr") and path[4:].startswith(_MERGED):
        names.append(path[4:])
    return names


@dataclass(frozen=True)
class InstalledPackage:
    """The package a file belongs to, as the package database records it."""

    manager: str  # "dpkg" or "rpm"
    name: str
    version: str
    listed_in: str  # host path of the record naming the file
    database: str  # host path of the record giving the version
    file: str  # the path as the package lists it
    checksum: str = ""  # "matches", "differs" or "" (not recorded)
    #: Where the package's files are: "/" when installed, the tree's host path when unpacked there.
    prefix: str = "/"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "manager": self.manager,
            "package": self.name,
            "version": self.version,
            "file_listed_in": self.listed_in,
            "version_from": self.database,
            "checksum": self.checksum or None,
            **({"unpacked_in": self.prefix} if self.prefix != "/" else {}),
        }


# -- dpkg ---------------------------------------------------------------------------------------------------


class DpkgDatabase:
    """One host root's dpkg database, read once however many files are looked up in it: every package's
    file list (``info/*.list``, in name order) and the status file. Read when first asked, under a lock, so
    probes that look up binaries at the same time read it once. Files checked against it are hashed once
    too (:meth:`md5`)."""

    def __init__(self, host_root: Path) -> None:
        self.host_root = host_root
        self._lock = threading.Lock()
        self._digest_lock = threading.Lock()
        self._digests: dict[str, tuple[tuple[int, int, int, int], str | None, threading.Lock]] = {}
        self._lists: list[tuple[str, bytes]] | None = None
        self._status: str | None = None
        self._status_read = False
        self._versions: dict[str, str | None] = {}

    def installed_version(self, package: str) -> str | None:
        """The installed version of ``package`` in the status file (None when not installed)."""
        status = self.status()
        with self._lock:
            if package not in self._versions:
                self._versions[package] = _installed_version(status, package)
            return self._versions[package]

    @property
    def exists(self) -> bool:
        """Whether the host root has a dpkg status file."""
        return _local(self.host_root, DPKG_STATUS).is_file()

    def md5(self, path: Path) -> str | None:
        """:func:`file_digest` (md5) of a file, computed once while the file stays as it was (same inode,
        size and modification time, before and after the read): a second caller gets the first answer,
        waiting for it while it is read. None when the file cannot be read."""
        key = str(path)
        with self._digest_lock:
            entry = self._digests.get(key)
            lock = entry[2] if entry else threading.Lock()
            if entry is None:
                self._digests[key] = ((-1, -1, -1, -1), None, lock)
        with lock:
            before = _identity(path)
            with self._digest_lock:
                known, digest, _lock = self._digests[key]
            if before is not None and known == before:
                return digest
            digest = file_digest(path, "md5")
            if before is not None and _identity(path) == before:
                with self._digest_lock:
                    self._digests[key] = (before, digest, lock)
            return digest

    def lists(self) -> list[tuple[str, bytes]]:
        """(file name, bytes) of every readable ``*.list``, sorted by name; [] without a database. Kept as
        bytes: most are only searched for a path, and only the one that holds it is decoded."""
        with self._lock:
            if self._lists is None:
                self._lists = []
                info = str(_local(self.host_root, DPKG_INFO))
                try:
                    names = sorted(n for n in os.listdir(info) if n.endswith(".list"))
                except OSError:
                    names = []
                for name in names:
                    try:
                        with open(f"{info}/{name}", "rb") as listing:
                            self._lists.append((name, listing.read()))
                    except OSError:
                        continue
            return self._lists

    def status(self) -> str | None:
        """The text of ``/var/lib/dpkg/status``, None when it cannot be read."""
        with self._lock:
            if not self._status_read:
                try:
                    self._status = _local(self.host_root, DPKG_STATUS).read_text(
                        encoding="utf-8", errors="replace"
                    )
                except OSError:
                    self._status = None
                self._status_read = True
            return self._status


def dpkg_owner(
    host_root: Path, paths: list[str], database: DpkgDatabase | None = None
) -> InstalledPackage | None:
    """The installed dpkg package that lists one of ``paths`` (host paths), with its version and whether the
    file on disk still has the checksum the package shipped. None without a dpkg database or owner."""
    database = database or DpkgDatabase(host_root)
    wanted = {alias for p in paths for alias in aliases(p)}
    # A line equal to a path holds it, so a list that does not is passed over. An ASCII path is in the
    # decoded text exactly when its bytes are in the file (decoding never joins an ASCII byte to others).
    ascii_only = all(alias.isascii() for alias in wanted)
    needles = [alias.encode() for alias in wanted]
    # Every alias ends with the same bytes (at least the file's name): a list without them is passed over
    # after one search of it instead of one per alias.
    common = _common_ending(needles)
    for name, data in database.lists():
        if ascii_only and (common not in data or not any(needle in data for needle in needles)):
            continue
        text = data.decode("utf-8", errors="replace")
        if not any(alias in text for alias in wanted):
            continue
        hit = next((line for line in text.splitlines() if line in wanted), None)
        if hit is None:
            continue
        package = name[: -len(".list")]
        version = database.installed_version(package.split(":")[0])
        if version is None:
            continue  # listed, but not installed (removed, config files left)
        info = _local(host_root, DPKG_INFO)
        return InstalledPackage(
            manager="dpkg",
            name=package.split(":")[0],
            version=version,
            listed_in=f"{DPKG_INFO}/{name}",
            database=DPKG_STATUS,
            file=hit,
            checksum=_dpkg_checksum(host_root, info / f"{package}.md5sums", hit, paths, database),
        )
    return None


def _common_ending(texts: list[bytes]) -> bytes:
    """The longest ending all of ``texts`` share (b"" for none)."""
    if not texts:
        return b""
    shortest = min(texts, key=len)
    size = len(shortest)
    while size and not all(t.endswith(shortest[len(shortest) - size :]) for t in texts):
        size -= 1
    return shortest[len(shortest) - size :]


def dpkg_version(host_root: Path, package: str) -> str | None:
    """The installed version of a package in /var/lib/dpkg/status (None when not installed)."""
    return _installed_version(DpkgDatabase(host_root).status(), package)


def _installed_version(status: str | None, package: str) -> str | None:
    if status is None:
        return None
    for stanza in status.split("\n\n"):
        if package not in stanza:  # its Package field cannot be the name
            continue
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith(" ")
        )
        if fields.get("Package", "").strip() != package:
            continue
        if "installed" not in fields.get("Status", "").split()[-1:]:
            continue
        return fields.get("Version", "").strip() or None
    return None


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _dpkg_checksum(
    host_root: Path, md5sums: Path, listed: str, paths: list[str], database: DpkgDatabase | None = None
) -> str:
    try:
        lines = md5sums.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    relative = listed.lstrip("/")
    recorded = next((line.split(None, 1)[0] for line in lines if line.endswith("  " + relative)), None)
    if recorded is None:
        return ""
    target = _local(host_root, paths[-1])
    digest = database.md5(target) if database is not None else file_digest(target, "md5")
    if digest is None:
        return ""
    return "matches" if digest == recorded else "differs"


#: How much of a file is read and hashed at a time. Reading and hashing release the GIL; between two blocks
#: the thread needs it back, which can take a switch interval (5 ms) while probes run Python: large blocks
#: keep a binary's hashing on its own core rather than waiting its turn every megabyte.
DIGEST_BLOCK = 8 << 20
#: How many files are hashed at once, each with a DIGEST_BLOCK buffer: one core is left to the probes'
#: Python, and memory stays a few blocks whatever the number of binaries asked for together.
_HASHING = threading.BoundedSemaphore(max(1, min(4, (os.cpu_count() or 2) - 1)))


def file_digest(path: Path, algorithm: str) -> str | None:
    """The hex digest of a regular file's bytes, None when it cannot be read or is not a regular file (a FIFO
    would block, a device never end); several files hash on several cores at once (up to one core fewer
    than the machine has, at most four)."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with open(fd, "rb", buffering=0) as handle, _HASHING:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            # One buffer per file, filled again and again (reading into it and hashing it both release the
            # GIL): a new block per read held two blocks at once and faulted fresh pages in every time, so
            # four binaries hashed at once (the troubleshooter's probes) cost 60 MB of peak memory. The
            # buffer is an anonymous mapping, whose pages the kernel zeroes as the first read fills them,
            # not a bytearray, which is zeroed first with the GIL held.
            size = min(DIGEST_BLOCK, info.st_size) or DIGEST_BLOCK  # a file said to be empty may still grow
            with mmap.mmap(-1, size) as buffer:
                with memoryview(buffer) as view:
                    while count := handle.readinto(view):
                        digest.update(view[:count])
    except OSError:
        return None
    return digest.hexdigest()


def unpacked_deb_owner(host_root: Path, paths: list[str]) -> InstalledPackage | None:
    """The unpacked Debian package (``dpkg-deb -R``) one of ``paths`` belongs to: the nearest directory above it
    with ``DEBIAN/control`` and ``DEBIAN/md5sums`` whose md5sums lists it, when those two files are nobody's
    and their directory are root's alone (not group- or world-writable: whoever could write them could name
    any version and changelog). None when there is no such tree."""
    for path in paths:
        parts = Path(path).parts
        for cut in range(len(parts) - 1, 1, -1):  # "/" itself is the installed case, dpkg's database
            prefix = "/" + "/".join(parts[1:cut])
            control, md5sums = f"{prefix}/DEBIAN/control", f"{prefix}/DEBIAN/md5sums"
            if not all(_roots_own(_local(host_root, f)) for f in (f"{prefix}/DEBIAN", control, md5sums)):
                continue
            listed = "/".join(parts[cut:])
            try:
                fields = _control_fields(
                    _local(host_root, control).read_text(encoding="utf-8", errors="replace")
                )
                lines = _local(host_root, md5sums).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            if not any(line.endswith("  " + listed) for line in lines) or not fields.get("Version"):
                continue
            return InstalledPackage(
                manager="dpkg",
                name=fields.get("Package", ""),
                version=fields["Version"],
                listed_in=md5sums,
                database=control,
                file="/" + listed,
                checksum=_dpkg_checksum(host_root, _local(host_root, md5sums), "/" + listed, [path]),
                prefix=prefix,
            )
    return None


def _roots_own(path: Path) -> bool:
    """A file or directory (not a symlink) only root can change: root's, and not group- or world-writable."""
    try:
        info = path.lstat()
    except OSError:
        return False
    kind = stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)
    return kind and info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _control_fields(text: str) -> dict[str, str]:
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in text.splitlines() if line[:1].strip())
        if value
    }


# -- Debian version order (dpkg's algorithm) -----------------------------------------------------------------


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def _split_debian(version: str) -> tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch or 0), upstream, revision


def compare_debian(a: str, b: str) -> int:
    """Compare two Debian package versions as dpkg does: -1, 0 or 1 (``~`` sorts before everything)."""
    ea, ua, ra = _split_debian(a)
    eb, ub, rb = _split_debian(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


# -- changelogs ---------------------------------------------------------------------------------------------

_ENTRY = re.compile(r"^(?P<package>[a-z0-9][a-z0-9+.\-]*) \((?P<version>[^)\s]+)\) [^;]*;", re.MULTILINE)


@dataclass(frozen=True)
class ChangelogEntry:
    version: str
    text: str


@dataclass(frozen=True)
class Changelog:
    """A package's changelog as the node holds it, newest entry first."""

    path: str
    entries: tuple[ChangelogEntry, ...]
    #: RPM keeps only the installed build's own changelog, so every entry is carried by it.
    all_installed: bool = False

    def up_to(self, installed: str) -> list[ChangelogEntry]:
        """The entries of the installed revision and every older one (what the installed package carries)."""
        if self.all_installed:
            return list(self.entries)
        return [e for e in self.entries if compare_debian(e.version, installed) <= 0]

    def naming(self, names: tuple[str, ...], installed: str) -> tuple[ChangelogEntry, str] | None:
        """The newest entry at or below ``installed`` that names one of ``names``, with the line naming it."""
        patterns = [re.compile(rf"(?<![\w-]){re.escape(n)}(?![\w-])", re.IGNORECASE) for n in names]
        for entry in self.up_to(installed):
            # A line that names one names it in the whole entry too (a line break is no word character), so
            # an entry that names none is passed over without looking at each of its lines.
            if not any(p.search(entry.text) for p in patterns):
                continue
            for line in entry.text.splitlines():
                if any(p.search(line) for p in patterns):
                    return entry, line.strip(" *+-\t")
        return None


@dataclass(frozen=True)
class PackageRecord:
    """What the node's package database says about a component's package, to look for backported fixes in."""

    name: str
    version: str
    changelog: Changelog | None
    changelog_path: str
    manager: str = "dpkg"
    #: "/" when the package manager installed it; an unpacked package's tree otherwise.
    prefix: str = "/"


def debian_changelog(host_root: Path, package: str, prefix: str = "/") -> Changelog | None:
    """``/usr/share/doc/<package>/changelog.Debian.gz`` (under ``prefix``, an unpacked package's tree) parsed
    into entries; None when absent or unreadable."""
    host_path = changelog_path(package, prefix)
    try:
        text = gzip.decompress(_local(host_root, host_path).read_bytes()).decode("utf-8", "replace")
    except (OSError, EOFError, gzip.BadGzipFile):
        return None
    return parse_debian_changelog(host_path, text)


def changelog_path(package: str, prefix: str = "/") -> str:
    """The host path of a Debian package's changelog, installed (``prefix`` "/") or unpacked under ``prefix``."""
    return prefix.rstrip("/") + DEBIAN_CHANGELOG.format(package=package)


def parse_debian_changelog(path: str, text: str) -> Changelog:
    heads = list(_ENTRY.finditer(text))
    entries = []
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
        entries.append(ChangelogEntry(head["version"], text[head.end() : end]))
    return Changelog(path=path, entries=tuple(entries))
