"""Compare an unpacked overlayfs snapshot (``snapshots/N/fs``) with the layer blob it came from.

The blob (gzip, zstd when a zstd module is importable, or plain tar) is streamed in fixed-size chunks:
memory holds a few chunks and one small record per path, never the layer's data. gzip is inflated by
ISA-L (``isal``) when it is installed, zlib otherwise; both hashes run on another core while the next
chunk inflates (:class:`_BackgroundHashes`). Its sha256 is checked
against the blob's digest and the uncompressed stream's against the layer's diff_id, so a truncated or
corrupt blob is reported as such (:class:`BlobCorrupt`), never as a damaged snapshot.

OCI whiteouts are read the way containerd's overlay unpacker writes them: ``.wh.NAME`` becomes a
character device 0/0 named NAME, ``.wh..wh..opq`` becomes the ``trusted.overlay.opaque=y`` xattr on its
directory. Hard links are regular files; directories a tar only implies are created by the unpacker.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading
import time
import types
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

from probes.errors import NodedocError

inflate_lib: types.ModuleType
try:  # ISA-L's inflate: the zlib API, several times zlib's speed on x86-64 and arm64
    from isal import isal_zlib

    inflate_lib = isal_zlib
except ImportError:  # pragma: no cover - isal is a dependency; the standard library still works
    inflate_lib = zlib

INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, inflate_lib.error)

CHUNK = 1 << 20
OUT_CHUNK = 4 << 20
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

Progress = Callable[[int, int], None]


class LayerError(NodedocError):
    """A layer could not be verified."""


class BlobMissing(LayerError):
    """The layer blob is not in the content store (garbage-collected or discarded after unpack)."""


class BlobCorrupt(LayerError):
    """The layer blob is truncated, not a valid archive, or does not match its digest."""


class CompressionUnsupported(LayerError):
    """The blob's compression needs a module that is not installed (zstd)."""


class SnapshotDirMissing(LayerError):
    """The snapshot's fs directory does not exist."""


class VerifyCancelled(LayerError):
    """Verification was cancelled by the caller."""


@dataclass(frozen=True)
class Entry:
    """What is (or should be) at a path: type, permission bits, size and symlink target."""

    type: str  # file, dir, symlink, char, block, fifo, socket, whiteout
    mode: int | None = None  # None: not compared (implied directory, whiteout, symlink)
    size: int | None = None  # regular files only
    link: str | None = None  # symlink target
    opaque: bool = False  # directory made opaque by the layer
    #: The name this path has in the layer's tar (``./pause`` or ``pause``), "" on disk: what ``tar -x`` matches.
    member: str = field(default="", compare=False)


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


# -- streaming the blob ----------------------------------------------------------------------------


def zstd_available() -> str | None:
    """The name of an importable zstd module, or None."""
    for name in ("compression.zstd", "zstandard"):
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    return None


class _BackgroundHashes:
    """sha256 hashes fed on one worker thread, so hashing overlaps inflating (both release the GIL).

    ``update(h, data)`` queues a chunk for hash ``h`` (chunks of one hash stay in order); at most
    ``depth`` chunks wait, so memory stays flat; ``hexdigests()`` waits for the queue to drain.
    """

    def __init__(self, depth: int = 4) -> None:
        self.hashes: list[Any] = []
        self._queue: queue.Queue[tuple[int, bytes] | None] = queue.Queue(depth)
        self._thread = threading.Thread(target=self._work, name="layer-hash", daemon=True)
        self._thread.start()

    def new(self) -> int:
        self.hashes.append(hashlib.sha256())
        return len(self.hashes) - 1

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            self.hashes[item[0]].update(item[1])

    def update(self, which: int, data: bytes) -> None:
        if data:
            self._queue.put((which, data))

    def close(self) -> None:
        """Stop the worker once it has hashed what is queued (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def hexdigests(self) -> list[str]:
        self.close()
        return [h.hexdigest() for h in self.hashes]


class _Feed:
    """One hash of a :class:`_BackgroundHashes`, with a hash object's ``update``."""

    def __init__(self, hashes: _BackgroundHashes) -> None:
        self.hashes, self.which = hashes, hashes.new()

    def update(self, data: bytes) -> None:
        self.hashes.update(self.which, data)


class ContentHashes:
    """sha256 of every regular file's bytes in the layer's tar, by member name (``--deep``)."""

    def __init__(self) -> None:
        self.by_member: dict[str, Any] = {}

    def start(self, member: str) -> Callable[[bytes], None]:
        digest = hashlib.sha256()
        self.by_member[member] = digest  # a later member of the same name replaces it, as tar -x does
        return digest.update

    def digests(self) -> dict[str, str]:
        return {member: digest.hexdigest() for member, digest in self.by_member.items()}


_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def file_sha256(path: Path) -> str | None:
    """sha256 of a regular file's bytes, None when it is not one (a symlink, FIFO or device is never
    read: O_NOFOLLOW refuses a symlink, O_NONBLOCK keeps a FIFO from blocking, fstat must say regular)."""
    try:
        fd = os.open(path, _FILE_FLAGS)
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
    """path -> sha256 of each regular file of a scanned snapshot (unreadable ones left out)."""
    out = {}
    for path, entry in entries.items():
        if entry.type == "file":
            digest = file_sha256(fs_dir / path)
            if digest is not None:
                out[path] = digest
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


class _BlobReader:
    """Reads the blob in chunks: hashes it, reports progress, honours cancel."""

    def __init__(
        self,
        f: BinaryIO,
        name: str,
        total: int,
        progress: Progress | None,
        cancel: threading.Event | Callable[[], bool] | None,
        sha: Any = None,
    ) -> None:
        self.f, self.name, self.total = f, name, total
        self.progress, self.cancel = progress, cancel
        self.sha = sha if sha is not None else hashlib.sha256()
        self.done = 0
        self._pending = b""

    def peek(self) -> bytes:
        """The first chunk, which the next read returns again."""
        if not self._pending:
            self._pending = self.read()
        return self._pending

    def _cancelled(self) -> bool:
        if self.cancel is None:
            return False
        return self.cancel.is_set() if isinstance(self.cancel, threading.Event) else bool(self.cancel())

    def read(self, n: int = CHUNK) -> bytes:
        if self._pending:
            out, self._pending = self._pending, b""
            return out
        if self._cancelled():
            raise VerifyCancelled(f"verification of {self.name} cancelled")
        data = self.f.read(n)
        self.sha.update(data)
        self.done += len(data)
        if self.progress is not None and data:
            self.progress(self.done, self.total)
        return data


def _gunzip(src: _BlobReader) -> Iterator[bytes]:
    d: Any = inflate_lib.decompressobj(31)
    while True:
        data = src.read()
        if not data:
            if d is not None and not d.eof:
                raise BlobCorrupt(f"layer blob {src.name} is truncated: gzip stream ends at byte {src.done}")
            return
        while data:
            if d is None:
                if not data.strip(b"\0"):
                    break  # zero padding after the last member
                if not data.startswith(GZIP_MAGIC[: len(data)]):  # ISA-L waits for more before it says so
                    raise BlobCorrupt(
                        f"layer blob {src.name} is corrupt near byte {src.done}: bytes after the gzip "
                        "stream are not another gzip member"
                    )
                d = inflate_lib.decompressobj(31)  # another gzip member
            try:
                out = d.decompress(data, OUT_CHUNK)
            except INFLATE_ERRORS as exc:
                raise BlobCorrupt(f"layer blob {src.name} is corrupt near byte {src.done}: {exc}") from exc
            if out:
                yield out
            if d.eof:
                data, d = d.unused_data, None
            else:
                data = d.unconsumed_tail


def _unzstd(src: _BlobReader) -> Iterator[bytes]:
    module = zstd_available()
    if module is None:
        raise CompressionUnsupported(
            f"layer blob {src.name} is zstd-compressed and no zstd module is installed "
            "(pip install zstandard, or Python ≥ 3.14) — cannot verify it"
        )
    if module == "zstandard":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, src), read_across_frames=True, read_size=CHUNK
        )
        while True:
            try:
                out = reader.read(OUT_CHUNK)
            except zstandard.ZstdError as exc:
                raise BlobCorrupt(f"layer blob {src.name} is corrupt near byte {src.done}: {exc}") from exc
            if not out:
                return
            yield out
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]

    with zstd.ZstdFile(src) as zf:  # pragma: no cover - Python 3.14
        while True:
            try:
                out = zf.read(OUT_CHUNK)
            except (zstd.ZstdError, EOFError) as exc:
                raise BlobCorrupt(f"layer blob {src.name} is corrupt near byte {src.done}: {exc}") from exc
            if not out:
                return
            yield out


def _plain(src: _BlobReader) -> Iterator[bytes]:
    while data := src.read():
        yield data


class _TarReader:
    """Reads tar headers out of a stream of chunks, skipping file data without keeping it."""

    def __init__(self, chunks: Iterator[bytes], name: str, hasher: Any) -> None:
        self.chunks, self.name, self.hasher = chunks, name, hasher
        self.buf = b""
        self.pos = 0
        self.total = 0

    def _more(self) -> bool:
        for chunk in self.chunks:
            self.hasher.update(chunk)
            self.total += len(chunk)
            self.buf = self.buf[self.pos :] + chunk if self.pos < len(self.buf) else chunk
            self.pos = 0
            return True
        return False

    def read(self, n: int) -> bytes | None:
        while len(self.buf) - self.pos < n:
            if not self._more():
                return None
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def skip(self, n: int) -> bool:
        while n > 0:
            avail = len(self.buf) - self.pos
            if avail >= n:
                self.pos += n
                return True
            n -= avail
            self.pos = len(self.buf)
            if not self._more():
                return False
        return True

    def feed(self, n: int, padded: int, sink: Callable[[bytes], None]) -> bool:
        """Pass the next ``n`` bytes to ``sink`` in pieces, then skip to ``padded``; False when truncated."""
        left = n
        while left > 0:
            avail = len(self.buf) - self.pos
            if avail == 0:
                if not self._more():
                    return False
                continue
            take = min(avail, left)
            sink(self.buf[self.pos : self.pos + take])
            self.pos += take
            left -= take
        return self.skip(padded - n)

    def drain(self) -> None:
        self.pos = len(self.buf)
        while self._more():
            self.pos = len(self.buf)


def _num(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256
        value = field[0] & 0x3F
        for b in field[1:]:
            value = (value << 8) | b
        return -value if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    return int(text, 8) if text else 0


def _pax(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(data):
        sp = data.find(b" ", i)
        if sp < 0:
            break
        try:
            length = int(data[i:sp])
        except ValueError:
            break
        if length <= 0:
            break
        record = data[sp + 1 : i + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        i += length
    return out


TAR_TYPES = {
    b"0": "file",
    b"\0": "file",
    b"7": "file",
    b"1": "hardlink",
    b"2": "symlink",
    b"3": "char",
    b"4": "block",
    b"5": "dir",
    b"6": "fifo",
}


def _clean(name: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    return "/".join(parts)


def iter_tar(
    tar: _TarReader, contents: ContentHashes | None = None
) -> Iterator[tuple[str, str, int, int, str]]:
    """(path, type, mode, size, link) for each member; raises BlobCorrupt on a bad header.

    With ``contents``, every regular file's bytes are hashed on their way past (``--deep``).
    """
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    zero_blocks = 0
    while True:
        header = tar.read(512)
        if header is None:
            if zero_blocks:
                return
            raise BlobCorrupt(
                f"layer blob {tar.name} is truncated: the tar ends without its end-of-archive blocks"
            )
        if header == b"\0" * 512:
            zero_blocks += 1
            if zero_blocks == 2:
                return
            continue
        zero_blocks = 0
        try:
            checksum = _num(header[148:156])
            size = _num(header[124:136])
            mode = _num(header[100:108])
        except ValueError as exc:
            raise BlobCorrupt(f"layer blob {tar.name}: bad tar header at byte {tar.total}: {exc}") from exc
        if checksum != sum(header[:148]) + 256 + sum(header[156:]):
            raise BlobCorrupt(f"layer blob {tar.name}: tar header checksum mismatch near byte {tar.total}")
        typeflag = header[156:157]
        padded = (size + 511) & ~511
        if typeflag in (b"x", b"g", b"L", b"K"):
            data = tar.read(padded)
            if data is None:
                raise BlobCorrupt(f"layer blob {tar.name} is truncated inside a tar extended header")
            data = data[:size]
            if typeflag == b"x":
                pax.update(_pax(data))
            elif typeflag == b"L":
                long_name = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif typeflag == b"K":
                long_link = data.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            continue
        name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        link = header[157:257].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        if header[257:263] == b"ustar\0" or header[257:263] == b"ustar ":
            prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if prefix and header[257:263] == b"ustar\0":
                name = f"{prefix}/{name}"
        name = pax.get("path", long_name or name)
        link = pax.get("linkpath", long_link or link)
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                pass
            padded = (size + 511) & ~511
        long_name = long_link = None
        pax = {}
        kind = TAR_TYPES.get(typeflag, "file" if typeflag.isdigit() else "other")
        data_size = padded if kind in ("file", "other") else 0
        if contents is not None and kind == "file":
            if not tar.feed(size, padded, contents.start(name)):
                raise BlobCorrupt(f"layer blob {tar.name} is truncated inside {name!r}")
        elif data_size and not tar.skip(data_size):
            raise BlobCorrupt(f"layer blob {tar.name} is truncated inside {name!r}")
        yield name, kind, mode & 0o7777, size, link


def expected_entries(members: Iterator[tuple[str, str, int, int, str]]) -> dict[str, Entry]:
    """What the unpacker leaves on disk for a layer's members: path (no leading /) → Entry."""
    out: dict[str, Entry] = {}
    for raw, kind, mode, size, link in members:
        path = _clean(raw)
        if not path:
            continue
        lead = "./" if raw.startswith("./") else ""
        name = raw.rstrip("/") or raw
        parent, _, base = path.rpartition("/")
        _imply_parents(out, parent, lead)
        if base == OPAQUE:
            old = out.get(parent)
            out[parent] = (
                Entry(
                    "dir", old.mode if old else None, opaque=True, member=old.member if old else lead + parent
                )
                if parent
                else Entry("dir")
            )
            continue
        if base.startswith(WHITEOUT):
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


def _entry_from_stat(path: str, st: os.stat_result) -> Entry:
    m = st.st_mode
    if stat.S_ISREG(m):
        return Entry("file", stat.S_IMODE(m), st.st_size)
    if stat.S_ISDIR(m):
        return Entry("dir", stat.S_IMODE(m))
    if stat.S_ISLNK(m):
        try:
            return Entry("symlink", link=os.readlink(path))
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


def scan_tree(fs_dir: Path) -> dict[str, Entry]:
    """Every path under ``fs_dir`` (relative, no leading /) → Entry, without following symlinks."""
    out: dict[str, Entry] = {}
    stack = [("", str(fs_dir))]
    while stack:
        rel, full = stack.pop()
        try:
            it = os.scandir(full)
        except OSError:
            continue
        with it:
            for de in it:
                p = f"{rel}/{de.name}" if rel else de.name
                try:
                    st = de.stat(follow_symlinks=False)
                except OSError:
                    continue
                out[p] = _entry_from_stat(de.path, st)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((p, de.path))
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
    """The entries of one directory of a snapshot's fs, sorted by name; [] when it does not exist."""
    clean = _clean(rel)
    base = fs_dir / clean if clean else fs_dir
    out = []
    try:
        with os.scandir(base) as it:
            for de in it:
                try:
                    e = _entry_from_stat(de.path, de.stat(follow_symlinks=False))
                except OSError:
                    continue
                out.append(
                    FileEntry(
                        de.name,
                        f"/{clean}/{de.name}" if clean else f"/{de.name}",
                        e.type,
                        e.mode,
                        e.size,
                        e.link,
                    )
                )
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(out, key=lambda f: f.name)


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

    def scan() -> None:
        scanned.update(scan_tree(fs_dir))
        if deep:  # the snapshot's bytes are read here while the blob inflates on the caller's thread
            on_disk.update(hash_files(fs_dir, scanned))

    scanner = threading.Thread(target=scan, name="scan-snapshot", daemon=True)
    contents = ContentHashes() if deep else None
    scanner.start()
    hashes = _BackgroundHashes()
    try:
        total = os.fstat(f.fileno()).st_size
        src = _BlobReader(f, str(blob), total, progress, cancel, _Feed(hashes))
        head = src.peek()
        if head.startswith(GZIP_MAGIC):
            compression, chunks = "gzip", _gunzip(src)
        elif head.startswith(ZSTD_MAGIC):
            compression, chunks = "zstd", _unzstd(src)
        else:
            compression, chunks = "none", _plain(src)
        tar = _TarReader(chunks, str(blob), _Feed(hashes))
        expected = expected_entries(iter_tar(tar, contents))
        tar.drain()
    finally:
        hashes.close()
        f.close()
        scanner.join()
    blob_sha, tar_sha = hashes.hexdigests()
    if digest and digest.startswith("sha256:") and "sha256:" + blob_sha != digest:
        raise BlobCorrupt(f"layer blob {blob} is corrupt: its sha256 is sha256:{blob_sha}, not {digest}")
    if diff_id and diff_id.startswith("sha256:") and "sha256:" + tar_sha != diff_id:
        raise BlobCorrupt(
            f"layer blob {blob} is corrupt: its uncompressed sha256 is sha256:{tar_sha}, "
            f"not the diff_id {diff_id}"
        )
    check = compare(expected, scanned, fs_dir)
    if contents is not None:
        compare_contents(expected, contents.digests(), on_disk, check)
    check.blob, check.compression = str(blob), compression
    check.blob_bytes, check.tar_bytes = src.done, tar.total
    check.seconds = time.monotonic() - start
    return check
