"""The layer reader as it was before the streaming rewrite (b8969a6), kept verbatim as the oracle that
tests/test_layer_stream.py compares the new one with on the same inputs. Not used by nodedoc."""

# ruff: noqa

from __future__ import annotations

import errno
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
from typing import Any, BinaryIO

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

        # _BlobReader has the read() stream_reader calls; zstandard's stubs ask for a full IO[bytes].
        reader = zstandard.ZstdDecompressor().stream_reader(
            src,  # type: ignore[arg-type]
            read_across_frames=True,
            read_size=CHUNK,
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


#: Larger than any long name or PAX record set a real layer has; more means a corrupt or hostile tar.
MAX_EXTENDED_HEADER = 1024 * 1024


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
        if size < 0:  # base-256 can say so; reading "back" would loop over the same header forever
            raise BlobCorrupt(
                f"layer blob {tar.name}: tar header near byte {tar.total} has negative size {size}"
            )
        padded = (size + 511) & ~511
        if typeflag in (b"x", b"g", b"L", b"K"):
            if size > MAX_EXTENDED_HEADER:
                raise BlobCorrupt(
                    f"layer blob {tar.name}: a {size}-byte tar extended header near byte {tar.total} "
                    f"(more than {MAX_EXTENDED_HEADER} bytes: not a name or PAX record)"
                )
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
            if size < 0:
                raise BlobCorrupt(f"layer blob {tar.name}: PAX size {size} of {name!r} is negative")
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
        if len(out) > MAX_TREE_ENTRIES:
            raise TreeTooLarge(f"the layer has more than {MAX_TREE_ENTRIES} entries: not verified")
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


def scan_tree(fs_dir: Path) -> dict[str, Entry]:
    """Every path under ``fs_dir`` (relative, no leading /) → Entry; never follows a symlink or opens
    anything but directories. Raises :class:`TreeTooLarge` past MAX_TREE_DEPTH or MAX_TREE_ENTRIES."""
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

    def scan() -> None:
        try:
            scanned.update(scan_tree(fs_dir))
            if deep:  # the snapshot's bytes are read here while the blob inflates on the caller's thread
                on_disk.update(hash_files(fs_dir, scanned))
        except LayerError as exc:
            scan_error.append(exc)

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
    if scan_error:
        raise scan_error[0]
    check = compare(expected, scanned, fs_dir)
    if contents is not None:
        compare_contents(expected, contents.digests(), on_disk, check)
    check.blob, check.compression = str(blob), compression
    check.blob_bytes, check.tar_bytes = src.done, tar.total
    check.seconds = time.monotonic() - start
    return check
