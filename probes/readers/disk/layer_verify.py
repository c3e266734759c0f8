"""Compare an unpacked overlayfs snapshot (``snapshots/N/fs``) with the layer blob it came from.

The blob (gzip, zstd when a zstd module is importable, or plain tar) is streamed by
:mod:`probes.readers.disk.layer_stream`: read, inflated and parsed on several cores, with a few MiB in
memory and one small record per path, never the layer's data. Its sha256 is checked against the blob's
digest and the uncompressed stream's against the layer's diff_id, so a truncated or corrupt blob is
reported as such (:class:`BlobCorrupt`), never as a damaged snapshot. The snapshot's tree is scanned on a
thread of its own meanwhile.

OCI whiteouts are read the way containerd's overlay unpacker writes them: ``.wh.NAME`` becomes a
character device 0/0 named NAME, ``.wh..wh..opq`` becomes the ``trusted.overlay.opaque=y`` xattr on its
directory. Hard links are regular files; directories a tar only implies are created by the unpacker.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

# The names imported "as" themselves are this module's too: callers import them from here.
from probes.readers.disk.layer_stream import BlobCorrupt as BlobCorrupt
from probes.readers.disk.layer_stream import CompressionUnsupported as CompressionUnsupported
from probes.readers.disk.layer_stream import (
    ContentHashes,
    LayerError,
    LayerStream,
    Member,
    TarStream,
    iter_tar,
)
from probes.readers.disk.layer_stream import Progress as Progress
from probes.readers.disk.layer_stream import VerifyCancelled as VerifyCancelled
from probes.readers.disk.layer_stream import inflate_lib as inflate_lib
from probes.readers.disk.layer_stream import zstd_available as zstd_available

CHUNK = 1 << 20  # a snapshot's file is read in blocks this big (deep)
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


class BlobMissing(LayerError):
    """The layer blob is not in the content store (garbage-collected or discarded after unpack)."""


class SnapshotDirMissing(LayerError):
    """The snapshot's fs directory does not exist."""


class Entry(NamedTuple):
    """What is (or should be) at a path: type, permission bits, size and symlink target.

    A named tuple, not a dataclass: one is made per path of the layer and of the snapshot (a frozen
    dataclass takes four times as long to make, on the core that also hashes). :func:`compare` compares
    the fields one by one, never two entries whole.
    """

    type: str  # file, dir, symlink, char, block, fifo, socket, whiteout
    mode: int | None = None  # None: not compared (implied directory, whiteout, symlink)
    size: int | None = None  # regular files only
    link: str | None = None  # symlink target
    opaque: bool = False  # directory made opaque by the layer
    #: The name this path has in the layer's tar (``./pause`` or ``pause``), "" on disk: what ``tar -x`` matches.
    member: str = ""


@dataclass(frozen=True)
class Difference:
    path: str  # absolute inside the snapshot: "/pause"
    problem: str  # missing, extra, type, mode, size, link, opaque, content (deep only)
    expected: str = ""
    actual: str = ""
    below: int = 0  # missing/extra directory: how many paths under it are missing/extra too
    member: str = ""  # its name in the layer's tar ("" for a path the layer does not have)

    def describe(self) -> str:
        if self.problem in ("missing", "extra"):
            more = f" (and {self.below} below it)" if self.below else ""
            return f"{self.path} {self.problem}{more}"
        return f"{self.path}: {self.problem} {self.expected} in the layer, {self.actual} on disk"


@dataclass
class LayerCheck:
    """The result of comparing one snapshot with its layer."""

    blob: str
    fs_dir: str
    compression: str = ""
    entries: int = 0  # paths the layer defines
    blob_bytes: int = 0
    tar_bytes: int = 0
    seconds: float = 0.0
    missing: list[Difference] = field(default_factory=list)
    changed: list[Difference] = field(default_factory=list)
    extra: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.changed or self.extra)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blob": self.blob,
            "fs_dir": self.fs_dir,
            "compression": self.compression,
            "entries": self.entries,
            "blob_bytes": self.blob_bytes,
            "tar_bytes": self.tar_bytes,
            "seconds": round(self.seconds, 3),
            "missing": [d.describe() for d in self.missing],
            "changed": [d.describe() for d in self.changed],
            "extra": [d.describe() for d in self.extra],
        }


# -- the snapshot's bytes (deep) --------------------------------------------------------------------


_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def file_sha256(name: str | Path, dir_fd: int | None = None) -> str | None:
    """sha256 of a regular file's bytes, None when it is not one (a symlink, FIFO or device is never
    read: O_NOFOLLOW refuses a symlink, O_NONBLOCK keeps a FIFO from blocking, fstat must say regular)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        digest = hashlib.sha256()
        while block := os.read(fd, CHUNK):
            digest.update(block)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(fd)


def hash_files(fs_dir: Path, entries: dict[str, Entry]) -> dict[str, str]:
    """path -> sha256 of each regular file of a scanned snapshot (unreadable ones left out).

    Each file is opened relative to its directory's descriptor, and each directory below the root
    without following a symlink (:func:`open_below`): a directory swapped for a symlink is not followed.
    """
    out: dict[str, str] = {}
    root_fd = open_tree(fs_dir)
    parent_fd, parent_rel = os.dup(root_fd), ""
    try:
        for path, entry in entries.items():
            if entry.type != "file":
                continue
            parent, _, name = path.rpartition("/")
            if parent != parent_rel:
                os.close(parent_fd)
                parent_fd, parent_rel = -1, parent
                try:
                    parent_fd = open_below(root_fd, parent, fs_dir) if parent else os.dup(root_fd)
                except (OSError, LayerError):
                    continue
            if parent_fd < 0:
                continue
            digest = file_sha256(name, parent_fd)
            if digest is not None:
                out[path] = digest
    finally:
        if parent_fd >= 0:
            os.close(parent_fd)
        os.close(root_fd)
    return out


def compare_contents(
    expected: dict[str, Entry], tar_digests: dict[str, str], disk_digests: dict[str, str], check: LayerCheck
) -> None:
    """A ``content`` difference for each file whose bytes differ from its tar member's. Files already
    found changed (type, size) or not on disk are not reported twice; a hard link has no bytes of its own
    in the tar (its target's are checked)."""
    flagged = {d.path for d in check.changed}
    for path, want in expected.items():
        if want.type != "file" or f"/{path}" in flagged:
            continue
        tar_digest = tar_digests.get(want.member)
        disk_digest = disk_digests.get(path)
        if tar_digest and disk_digest and tar_digest != disk_digest:
            check.changed.append(
                Difference(
                    f"/{path}",
                    "content",
                    f"sha256 {tar_digest[:12]}",
                    f"sha256 {disk_digest[:12]}",
                    member=want.member,
                )
            )
    check.changed.sort(key=lambda d: d.path)


# -- what the layer defines -----------------------------------------------------------------------


def _clean(name: str) -> str:
    """The path without empty or ``.`` components (``./etc//x/`` → ``etc/x``)."""
    if name.startswith("./"):
        name = name[2:]
    if (  # already clean (nearly every member): no component is empty or "."
        name
        and name != "."
        and not name.startswith(("/", "./"))
        and not name.endswith(("/", "/."))
        and "//" not in name
        and "/./" not in name
    ):
        return name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def expected_entries(members: Iterator[Member]) -> dict[str, Entry]:
    """What the unpacker leaves on disk for a layer's members: path (no leading /) → Entry."""
    out: dict[str, Entry] = {}
    for raw, kind, mode, size, link in members:
        path = _clean(raw)
        if not path:
            continue
        if len(out) > MAX_TREE_ENTRIES:
            raise TreeTooLarge(f"the layer has more than {MAX_TREE_ENTRIES} entries: not verified")
        lead = "./" if raw.startswith("./") else ""
        name = raw.rstrip("/") or raw
        parent, _, base = path.rpartition("/")
        if parent and parent not in out:
            _imply_parents(out, parent, lead)
        if base.startswith(WHITEOUT) and base == OPAQUE:
            old = out.get(parent)
            out[parent] = (
                Entry(
                    "dir", old.mode if old else None, opaque=True, member=old.member if old else lead + parent
                )
                if parent
                else Entry("dir")
            )
            continue
        if base.startswith(WHITEOUT):  # ".wh.NAME": NAME deleted
            out[f"{parent}/{base[4:]}" if parent else base[4:]] = Entry("whiteout", member=name)
            continue
        if kind == "hardlink":
            target = out.get(_clean(link))
            out[path] = Entry(
                "file", target.mode if target else None, target.size if target else None, member=name
            )
        elif kind == "symlink":
            out[path] = Entry("symlink", link=link, member=name)
        elif kind == "file":
            out[path] = Entry("file", mode, size, member=name)
        elif kind == "dir":
            old = out.get(path)
            out[path] = Entry("dir", mode, opaque=bool(old and old.opaque), member=name)
        else:
            out[path] = Entry(kind, mode, member=name)
    out.pop("", None)
    return out


def _imply_parents(out: dict[str, Entry], parent: str, lead: str = "") -> None:
    while parent and parent not in out:
        out[parent] = Entry("dir", member=lead + parent)
        parent = parent.rpartition("/")[0]


# -- the snapshot on disk ------------------------------------------------------------------------


def _entry_from_stat(name: str, st: os.stat_result, dir_fd: int | None = None) -> Entry:
    m = st.st_mode
    if stat.S_ISREG(m):
        return Entry("file", stat.S_IMODE(m), st.st_size)
    if stat.S_ISDIR(m):
        return Entry("dir", stat.S_IMODE(m))
    if stat.S_ISLNK(m):
        try:
            return Entry("symlink", link=os.readlink(name, dir_fd=dir_fd))
        except OSError:
            return Entry("symlink", link="?")
    if stat.S_ISCHR(m):
        if st.st_rdev == 0:
            return Entry("whiteout")
        return Entry("char", stat.S_IMODE(m))
    if stat.S_ISBLK(m):
        return Entry("block", stat.S_IMODE(m))
    if stat.S_ISFIFO(m):
        return Entry("fifo", stat.S_IMODE(m))
    return Entry("socket", stat.S_IMODE(m))


# -- walking a tree someone else wrote ---------------------------------------------------------------
#
# A snapshot's files come from an image layer pulled from a registry or from a container's writable
# layer: a symlink may point anywhere on the host, a directory may be replaced by a symlink while we
# walk, a FIFO would block whoever opens it, a name need not be UTF-8, and a tree may be built to be
# huge or deep. So every directory is opened relative to its parent's descriptor with O_NOFOLLOW and
# O_DIRECTORY (a symlink or a FIFO is refused by the kernel, never followed or opened), entries are
# lstat'ed through the directory's descriptor, names stay bytes-faithful (surrogateescape), and depth
# and entry counts are bounded.

#: Deeper than any real image (Linux paths stop at 4096 bytes); bounds the descriptors open at once.
MAX_TREE_DEPTH = 256
#: More entries than this in one layer or snapshot is not verified (memory stays near 200 MiB).
MAX_TREE_ENTRIES = 1_000_000
#: The file browser lists this many entries of one directory, then says how many it left out.
MAX_LISTED_ENTRIES = 5_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class TreeTooLarge(LayerError):
    """A layer or snapshot tree deeper or larger than nodedoc walks."""


class PathThroughSymlink(LayerError):
    """A browsed path runs through a symlink (or a non-directory): nodedoc does not follow it."""


def open_tree(fs_dir: Path) -> int:
    """A descriptor of the snapshot's root directory (itself never a symlink)."""
    return os.open(fs_dir, _DIR_FLAGS)


def open_below(root_fd: int, rel: str, fs_dir: Path) -> int:
    """A descriptor of ``rel`` under ``root_fd``, each component opened without following a symlink.

    Raises :class:`PathThroughSymlink` naming the component that is a symlink or not a directory,
    FileNotFoundError when a component does not exist.
    """
    fd = os.dup(root_fd)
    done = ""
    try:
        for part in (p for p in rel.split("/") if p not in ("", ".")):
            if part == "..":
                raise PathThroughSymlink(f"{rel!r}: '..' leaves the snapshot; nodedoc does not go there")
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                what = _describe_at(fd, part)
                raise PathThroughSymlink(
                    f"{done}/{part} in {fs_dir} is {what}: nodedoc does not follow it out of the snapshot"
                ) from None
            os.close(fd)
            fd, done = child, f"{done}/{part}"
        return fd
    except BaseException:
        os.close(fd)
        raise


def _describe_at(dir_fd: int, name: str) -> str:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return "not a directory"
    entry = _entry_from_stat(name, st, dir_fd)
    return f"a symlink to {entry.link!r}" if entry.type == "symlink" else f"a {entry.type}, not a directory"


#: How many entries the tree walk takes between two calls of its ``pace`` (the troubleshooter's pause).
PACE_EVERY = 512


def scan_tree(fs_dir: Path, pace: Callable[[], object] | None = None) -> dict[str, Entry]:
    """Every path under ``fs_dir`` (relative, no leading /) → Entry; never follows a symlink or opens
    anything but directories. Raises :class:`TreeTooLarge` past MAX_TREE_DEPTH or MAX_TREE_ENTRIES.
    ``pace`` is called every PACE_EVERY entries (it may wait; what it returns is ignored)."""
    out: dict[str, Entry] = {}
    try:
        root_fd = open_tree(fs_dir)
    except OSError:
        return out
    stack: list[tuple[str, int, Iterator[os.DirEntry[str]]]] = [("", root_fd, os.scandir(root_fd))]
    try:
        while stack:
            rel, fd, it = stack[-1]
            de = next(it, None)
            if de is None:
                it.close()  # type: ignore[attr-defined]
                os.close(fd)
                stack.pop()
                continue
            p = f"{rel}/{de.name}" if rel else de.name
            try:
                st = de.stat(follow_symlinks=False)
            except OSError:
                continue
            out[p] = _entry_from_stat(de.name, st, fd)
            if pace is not None and len(out) % PACE_EVERY == 0:
                pace()
            if len(out) > MAX_TREE_ENTRIES:
                raise TreeTooLarge(f"{fs_dir} holds more than {MAX_TREE_ENTRIES} entries: not verified")
            if not stat.S_ISDIR(st.st_mode):
                continue
            if len(stack) >= MAX_TREE_DEPTH:
                raise TreeTooLarge(
                    f"{fs_dir}/{p} is more than {MAX_TREE_DEPTH} directories deep: not verified"
                )
            try:
                child = os.open(de.name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue  # replaced by a symlink or removed since it was listed
            stack.append((p, child, os.scandir(child)))
    finally:
        for _rel, fd, it in stack:
            it.close()  # type: ignore[attr-defined]
            os.close(fd)
    return out


def is_opaque(path: Path) -> bool | None:
    """Whether a directory carries overlayfs' opaque marker; None when xattrs cannot be read here."""
    unreadable = False
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as exc:
            if exc.errno not in (61, 95):  # ENODATA, ENOTSUP
                unreadable = True
    return None if unreadable else False


@dataclass(frozen=True)
class FileEntry:
    """One directory entry of a snapshot, for browsing."""

    name: str
    path: str  # "/etc/hostname"
    type: str
    mode: int | None
    size: int | None
    link: str | None


def list_dir(fs_dir: Path, rel: str = "/") -> list[FileEntry]:
    """The entries of one directory of a snapshot's fs, sorted by name; [] when it does not exist.

    Never follows a symlink (:class:`PathThroughSymlink` when ``rel`` runs through one) and lists at
    most MAX_LISTED_ENTRIES, then one entry of type ``truncated`` saying how many were left out.
    """
    clean = _clean(rel)
    try:
        root_fd = open_tree(fs_dir)
    except OSError:
        return []
    out: list[FileEntry] = []
    left_out = 0
    try:
        fd = open_below(root_fd, clean, fs_dir)
    except (FileNotFoundError, NotADirectoryError):
        return []
    finally:
        os.close(root_fd)
    try:
        with os.scandir(fd) as it:
            for de in it:
                if len(out) >= MAX_LISTED_ENTRIES:
                    left_out += 1
                    continue
                try:
                    e = _entry_from_stat(de.name, de.stat(follow_symlinks=False), fd)
                except OSError:
                    continue
                path = f"/{clean}/{de.name}" if clean else f"/{de.name}"
                out.append(FileEntry(de.name, path, e.type, e.mode, e.size, e.link))
    finally:
        os.close(fd)
    out.sort(key=lambda f: f.name)
    if left_out:
        note = f"… {left_out} more entries not listed (the browser shows {MAX_LISTED_ENTRIES})"
        out.append(FileEntry(note, "", "truncated", None, None, None))
    return out


# -- comparing -----------------------------------------------------------------------------------


def compare(expected: dict[str, Entry], actual: dict[str, Entry], fs_dir: Path | None = None) -> LayerCheck:
    """Differences between what a layer defines and what the snapshot holds."""
    check = LayerCheck(blob="", fs_dir=str(fs_dir or ""), entries=len(expected))
    missing: list[str] = []
    for path, want in expected.items():
        have = actual.get(path)
        if have is None:
            missing.append(path)
            continue
        m = want.member
        if want.type != have.type:
            check.changed.append(Difference(f"/{path}", "type", want.type, have.type, member=m))
            continue
        if want.mode is not None and have.mode is not None and want.mode != have.mode:
            check.changed.append(
                Difference(f"/{path}", "mode", f"{want.mode:04o}", f"{have.mode:04o}", member=m)
            )
        if want.type == "file" and want.size is not None and want.size != have.size:
            check.changed.append(Difference(f"/{path}", "size", str(want.size), str(have.size), member=m))
        if want.type == "symlink" and want.link != have.link:
            check.changed.append(
                Difference(f"/{path}", "link", f"-> {want.link}", f"-> {have.link}", member=m)
            )
        if want.opaque and fs_dir is not None and is_opaque(fs_dir / path) is False:
            check.changed.append(Difference(f"/{path}", "opaque", "opaque", "not opaque", member=m))
    extra = [p for p in actual if p not in expected]
    check.missing = _collapse(missing, "missing", expected)
    check.extra = _collapse(extra, "extra")
    check.changed.sort(key=lambda d: d.path)
    return check


def _collapse(paths: list[str], problem: str, entries: dict[str, Entry] | None = None) -> list[Difference]:
    """Group paths under their top-most listed ancestor (with its tar member name when ``entries`` has it)."""
    tops: dict[str, int] = {}
    for p in sorted(paths):
        parent = p
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if parent in tops:
                tops[parent] += 1
                break
        else:
            tops[p] = 0
    entries = entries or {}
    return [
        Difference(
            f"/{p}",
            problem,
            expected=entries[p].type if p in entries else "",
            below=n,
            member=entries[p].member if p in entries else "",
        )
        for p, n in tops.items()
    ]


def verify_layer(
    blob: Path,
    fs_dir: Path,
    *,
    digest: str | None = None,
    diff_id: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | Callable[[], bool] | None = None,
    deep: bool = False,
) -> LayerCheck:
    """Stream ``blob`` and compare it with ``fs_dir``; ``deep`` compares every regular file's bytes too.

    Raises :class:`BlobMissing` (cannot verify), :class:`BlobCorrupt` (truncated, undecodable or not
    matching ``digest``/``diff_id``), :class:`CompressionUnsupported` or :class:`VerifyCancelled`.
    The snapshot's tree is scanned in a thread while the blob streams.
    """
    start = time.monotonic()
    if not fs_dir.is_dir():
        raise SnapshotDirMissing(f"snapshot directory {fs_dir} does not exist")
    try:
        f = open(blob, "rb")  # noqa: SIM115 - closed in finally
    except FileNotFoundError as exc:
        raise BlobMissing(f"layer blob {blob} is not in the content store") from exc
    except OSError as exc:
        raise LayerError(f"cannot read layer blob {blob}: {exc.strerror}") from exc
    scanned: dict[str, Entry] = {}
    on_disk: dict[str, str] = {}
    scan_error: list[LayerError] = []

    # A callable ``cancel`` (the troubleshooter's pause, which waits while a key is handled) also paces the
    # walk of the snapshot's tree, the other Python-heavy thread; an Event has nothing to call.
    pace = None if cancel is None or isinstance(cancel, threading.Event) else cancel

    def scan() -> None:
        try:
            scanned.update(scan_tree(fs_dir, pace))
            if deep:  # the snapshot's bytes are read here while the blob streams on the other threads
                on_disk.update(hash_files(fs_dir, scanned))
        except LayerError as exc:
            scan_error.append(exc)

    scanner = threading.Thread(target=scan, name="scan-snapshot", daemon=True)
    contents = ContentHashes() if deep else None
    check_blob = bool(digest and digest.startswith("sha256:"))
    check_tar = bool(diff_id and diff_id.startswith("sha256:"))
    scanner.start()
    try:
        stream = LayerStream(
            f,
            str(blob),
            os.fstat(f.fileno()).st_size,
            hash_blob=check_blob,
            hash_tar=check_tar,
            progress=progress,
            cancel=cancel,
        )
        try:
            expected = expected_entries(iter_tar(TarStream(stream.pieces(), str(blob)), contents))
            stream.drain()
        finally:
            stream.close()
    finally:
        f.close()
        scanner.join()
    if check_blob and stream.blob_digest() != digest:
        raise BlobCorrupt(f"layer blob {blob} is corrupt: its sha256 is {stream.blob_digest()}, not {digest}")
    if check_tar and stream.tar_digest() != diff_id:
        raise BlobCorrupt(
            f"layer blob {blob} is corrupt: its uncompressed sha256 is {stream.tar_digest()}, "
            f"not the diff_id {diff_id}"
        )
    if scan_error:
        raise scan_error[0]
    check = compare(expected, scanned, fs_dir)
    if contents is not None:
        compare_contents(expected, contents.digests(), on_disk, check)
    check.blob, check.compression = str(blob), stream.compression
    check.blob_bytes, check.tar_bytes = stream.blob_bytes, stream.tar_bytes
    check.seconds = time.monotonic() - start
    return check
