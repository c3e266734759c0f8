"""A read-only reader of bbolt (BoltDB) files: containerd's meta.db and the snapshotters' metadata.db.

The file is opened read-only and never locked (bbolt itself would take a shared ``flock``, which a
running containerd's exclusive lock refuses), so it can be read under a live containerd or from a copy.
Every page is checked as it is read: its header must carry its own id, stay below the file's
high-water mark and inside the file, and a tree must not revisit a page. Anything else raises
:class:`BoltError` naming the file and the page.

Format (bbolt v1.3, native little-endian): a 16-byte page header ``id u64, flags u16, count u16,
overflow u32``; pages 0 and 1 are metas (magic, version, page size, root bucket, freelist, high-water
pgid, txid, FNV-1a checksum); branch elements ``pos u32, ksize u32, pgid u64``; leaf elements
``flags u32, pos u32, ksize u32, vsize u32`` with ``pos`` relative to the element itself. A bucket
value is ``root pgid u64, sequence u64`` followed, when root is 0, by an inline page.
"""

from __future__ import annotations

import bisect
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from probes.errors import NodedocError

MAGIC = 0xED0CDAED
VERSION = 2
PAGE_HEADER = struct.Struct("<QHHI")
META = struct.Struct("<IIIIQQQQQQ")
BRANCH_ELEMENT = struct.Struct("<IIQ")
LEAF_ELEMENT = struct.Struct("<IIII")
BUCKET_HEADER = struct.Struct("<QQ")
ELEMENT_SIZE = 16

BRANCH, LEAF, META_PAGE, FREELIST = 0x01, 0x02, 0x04, 0x10
BUCKET_LEAF_FLAG = 0x01
NO_FREELIST = 0xFFFFFFFFFFFFFFFF
MAX_DEPTH = 64
#: Page sizes to try for the second meta when the first one is unreadable.
PAGE_SIZE_GUESSES = (4096, 8192, 16384, 32768, 65536, 2048, 1024)
#: A file up to this size is read whole when opened, in one read instead of two per page visited (a lookup
#: visits every page from its bucket's root down; each read lets another thread take the GIL). Larger ones
#: are read page by page: a whole copy is that much more peak memory (a 500-pod node's meta.db is 25 MB,
#: and the troubleshooter may hold two at once), and alone it reads no faster.
READ_WHOLE = 8 << 20


class BoltError(NodedocError):
    """A bolt file is unreadable: truncated, not bolt, bad checksum, or a corrupt or looping tree."""

    def __init__(self, file: str, page: int | None, problem: str) -> None:
        self.file = file
        self.page = page
        self.problem = problem
        where = f"{file}: page {page}" if page is not None else file
        super().__init__(f"bolt file {where}: {problem}")


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@dataclass(frozen=True)
class Meta:
    """The meta page in force: the valid one with the higher transaction id."""

    page: int
    page_size: int
    root: int
    sequence: int
    freelist: int
    high_water: int
    txid: int


@dataclass(frozen=True)
class _Page:
    pgid: int
    flags: int
    count: int
    overflow: int
    data: bytes  # the whole span (header included), or the inline page image


class BoltFile:
    """An open bolt file. Use as a context manager, or call :meth:`close`.

    ``BoltFile(path)`` reads a file of up to :data:`READ_WHOLE` bytes whole when it opens it (what it reads
    is the file as it was then), a larger one with ``pread`` page by page; :meth:`from_bytes` reads an
    in-memory image (used for fuzzing and for files already copied).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = str(path)
        self._data: bytes | None = None
        self._fd: int | None = None
        try:
            kind = os.stat(self.name).st_mode
            if not stat.S_ISREG(kind):
                # A directory opens but cannot be read; a FIFO would block the open itself.
                what = "a directory" if stat.S_ISDIR(kind) else "not a regular file"
                raise BoltError(self.name, None, f"is {what}, not a bolt file")
            self._fd = os.open(self.name, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            self._size = os.fstat(self._fd).st_size
            if self._size <= READ_WHOLE:
                self._data = _read_all(self._fd, self._size)
                self._size = len(self._data)  # what was there to read (a file cut short since is as read)
                os.close(self._fd)
                self._fd = None
        except OSError as exc:
            self.close()
            raise BoltError(self.name, None, f"cannot open: {exc.strerror}") from exc
        try:
            self.meta = self._read_meta()
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<memory>") -> BoltFile:
        self = cls.__new__(cls)
        self.name = name
        self._fd = None
        self._data = bytes(data)
        self._size = len(data)
        self.meta = self._read_meta()
        return self

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> BoltFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def root(self) -> Bucket:
        """The root bucket: its keys are the top-level buckets."""
        return Bucket(self, self.meta.root, None, self.meta.sequence, "")

    def bucket(self, *path: bytes | str) -> Bucket | None:
        """The bucket at ``path`` from the root (``bucket("v1", "k8s.io")``), None when any part is absent."""
        b: Bucket | None = self.root
        for part in path:
            if b is None:
                return None
            b = b.bucket(part)
        return b

    # -- pages ----------------------------------------------------------------------------------

    def _read(self, offset: int, size: int, page: int | None, what: str) -> bytes:
        if offset + size > self._size:
            raise BoltError(
                self.name, page, f"truncated: {what} ends at byte {offset + size}, file has {self._size}"
            )
        if self._data is not None:
            return self._data[offset : offset + size]
        assert self._fd is not None, "bolt file is closed"
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise BoltError(self.name, page, f"truncated: short read at byte {offset}")
        return data

    def _read_meta(self) -> Meta:
        if self._size < PAGE_HEADER.size + META.size:
            raise BoltError(self.name, 0, f"truncated: {self._size} bytes is too short for a bolt file")
        problems: list[str] = []
        metas: list[Meta] = []
        first = self._parse_meta(0, 0, problems)
        if first is not None:
            metas.append(first)
        sizes = [first.page_size] if first is not None else list(PAGE_SIZE_GUESSES)
        for size in sizes:
            if size + PAGE_HEADER.size + META.size > self._size:
                continue
            second = self._parse_meta(1, size, problems if first is not None else [])
            if second is not None:
                metas.append(second)
                break
        if not metas:
            raise BoltError(self.name, 0, "; ".join(problems) or "no valid meta page")
        meta = max(metas, key=lambda m: m.txid)
        if meta.high_water * meta.page_size > self._size:
            raise BoltError(
                self.name,
                meta.page,
                f"truncated: meta says {meta.high_water} pages of {meta.page_size} bytes, file has {self._size} bytes",
            )
        if not 2 <= meta.root < meta.high_water:
            raise BoltError(self.name, meta.page, f"root bucket page {meta.root} is outside the file's pages")
        return meta

    def _parse_meta(self, pgid: int, offset: int, problems: list[str]) -> Meta | None:
        raw = self._read(offset, PAGE_HEADER.size + META.size, pgid, "meta page")
        _id, flags, _count, _overflow = PAGE_HEADER.unpack_from(raw)
        body = raw[PAGE_HEADER.size :]
        magic, version, page_size, _flags, root, seq, freelist, high, txid, checksum = META.unpack_from(body)
        if magic != MAGIC:
            problems.append(f"meta page {pgid}: bad magic {magic:#010x}, not a bolt file")
            return None
        if version != VERSION:
            problems.append(f"meta page {pgid}: unsupported version {version}")
            return None
        if fnv1a64(body[:56]) != checksum:
            problems.append(f"meta page {pgid}: checksum mismatch")
            return None
        if not flags & META_PAGE:
            problems.append(f"meta page {pgid}: flags {flags:#x} are not a meta page's")
            return None
        if page_size < 512 or page_size & (page_size - 1):
            problems.append(f"meta page {pgid}: page size {page_size} is not a power of two")
            return None
        return Meta(pgid, page_size, root, seq, freelist, high, txid)

    def page(self, pgid: int) -> _Page:
        """Read page ``pgid`` with its overflow pages, checking its header."""
        meta = self.meta
        if pgid < 2 or pgid >= meta.high_water:
            raise BoltError(self.name, pgid, f"page id outside the file's pages 2..{meta.high_water - 1}")
        offset = pgid * meta.page_size
        head = self._read(offset, PAGE_HEADER.size, pgid, "page header")
        hid, flags, count, overflow = PAGE_HEADER.unpack(head)
        if hid != pgid:
            raise BoltError(
                self.name, pgid, f"page header carries id {hid}: the tree points at a stale or corrupt page"
            )
        if pgid + overflow >= meta.high_water:
            raise BoltError(self.name, pgid, f"{overflow} overflow pages run past the high-water mark")
        data = self._read(
            offset, (overflow + 1) * meta.page_size, pgid, f"page with {overflow} overflow pages"
        )
        return _Page(pgid, flags, count, overflow, data)

    def freelist(self) -> list[int]:
        """The free page ids (empty when the file does not sync its freelist)."""
        if self.meta.freelist == NO_FREELIST:
            return []
        p = self.page(self.meta.freelist)
        if not p.flags & FREELIST:
            raise BoltError(self.name, p.pgid, f"freelist page has flags {p.flags:#x}")
        count, start = p.count, PAGE_HEADER.size
        if count == 0xFFFF:
            if len(p.data) < start + 8:
                raise BoltError(self.name, p.pgid, "freelist count overflows the page")
            (count,) = struct.unpack_from("<Q", p.data, start)
            start += 8
        if start + count * 8 > len(p.data):
            raise BoltError(self.name, p.pgid, f"freelist of {count} ids overflows the page")
        return list(struct.unpack_from(f"<{count}Q", p.data, start))


def _read_all(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes from the start of ``fd``: fewer when the file ends sooner."""
    chunks, got = [], 0
    while got < size:
        chunk = os.pread(fd, size - got, got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _elements(bolt: BoltFile, page: _Page, where: int) -> list[tuple[int, bytes, bytes | int]]:
    """Decode a branch or leaf page: (flags, key, value or child pgid) in order."""
    data, n = page.data, page.count
    if PAGE_HEADER.size + n * ELEMENT_SIZE > len(data):
        raise BoltError(bolt.name, where, f"{n} elements overflow the page")
    out: list[tuple[int, bytes, bytes | int]] = []
    if page.flags & BRANCH:
        if n == 0:
            raise BoltError(bolt.name, where, "empty branch page")
        for i in range(n):
            at = PAGE_HEADER.size + i * ELEMENT_SIZE
            pos, ksize, child = BRANCH_ELEMENT.unpack_from(data, at)
            start = at + pos
            if start + ksize > len(data):
                raise BoltError(bolt.name, where, f"branch element {i} key runs past the page")
            out.append((0, data[start : start + ksize], child))
    elif page.flags & LEAF:
        for i in range(n):
            at = PAGE_HEADER.size + i * ELEMENT_SIZE
            flags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(data, at)
            start = at + pos
            if start + ksize + vsize > len(data):
                raise BoltError(bolt.name, where, f"leaf element {i} runs past the page")
            out.append((flags, data[start : start + ksize], data[start + ksize : start + ksize + vsize]))
    else:
        raise BoltError(bolt.name, where, f"expected a branch or leaf page, found flags {page.flags:#x}")
    return out


def _key(k: bytes | str) -> bytes:
    return k.encode() if isinstance(k, str) else k


class Bucket:
    """A bucket: sorted keys, each holding a value (bytes) or a nested bucket."""

    def __init__(
        self,
        bolt: BoltFile,
        root: int,
        inline: bytes | None,
        sequence: int,
        path: str,
        ancestors: frozenset[int] = frozenset(),
    ) -> None:
        self._bolt = bolt
        self._root = root
        self._inline = inline
        self.sequence = sequence
        self.path = path
        self._ancestors = ancestors
        #: Each page of this bucket read and decoded once: by page id (0: the inline page). Lookups in one
        #: bucket start from its root page every time.
        self._pages: dict[int, _Page] = {}
        self._decoded: dict[int, tuple[list[tuple[int, bytes, bytes | int]], list[bytes]]] = {}

    def __repr__(self) -> str:
        return f"Bucket({self.path or '/'!r}, root={self._root}, sequence={self.sequence})"

    def _where(self, pgid: int | None = None) -> int:
        return pgid if pgid is not None else self._root

    def _page(self, pgid: int) -> _Page:
        page = self._pages.get(pgid)
        if page is None:
            page = self._pages[pgid] = self._bolt.page(pgid)
        return page

    def _root_page(self) -> _Page:
        if self._inline is not None:
            if len(self._inline) < PAGE_HEADER.size:
                raise BoltError(
                    self._bolt.name, None, f"inline bucket {self.path!r} is shorter than a page header"
                )
            _id, flags, count, overflow = PAGE_HEADER.unpack_from(self._inline)
            if not flags & LEAF:
                raise BoltError(self._bolt.name, None, f"inline bucket {self.path!r} is not a leaf page")
            return _Page(0, flags, count, overflow, self._inline)
        return self._page(self._root)

    def _where_of(self, page: _Page) -> int:
        return page.pgid if self._inline is None else self._root

    def _decode(self, page: _Page) -> tuple[list[tuple[int, bytes, bytes | int]], list[bytes]]:
        """The page's elements and their keys, decoded the first time this bucket reads the page."""
        known = self._decoded.get(page.pgid)
        if known is None:
            elements = _elements(self._bolt, page, self._where_of(page))
            known = self._decoded[page.pgid] = (elements, [e[1] for e in elements])
        return known

    def raw_items(self) -> Iterator[tuple[bytes, int, bytes]]:
        """(key, leaf flags, raw value) in key order, walking the tree once."""
        seen: set[int] = set()
        stack: list[tuple[_Page, int]] = [(self._root_page(), 0)]
        while stack:
            page, depth = stack.pop()
            if self._inline is None:
                if page.pgid in seen:
                    raise BoltError(
                        self._bolt.name, page.pgid, f"bucket {self.path!r} visits this page twice (a loop)"
                    )
                seen.add(page.pgid)
            if depth > MAX_DEPTH:
                raise BoltError(
                    self._bolt.name, page.pgid, f"bucket {self.path!r} is deeper than {MAX_DEPTH} levels"
                )
            elements = self._decode(page)[0]
            if page.flags & BRANCH:
                for _flags, _k, child in reversed(elements):
                    assert isinstance(child, int)
                    stack.append((self._page(child), depth + 1))
            else:
                for flags, key, value in elements:
                    assert isinstance(value, bytes)
                    yield key, flags, value

    def _lookup(self, key: bytes) -> tuple[int, bytes] | None:
        page = self._root_page()
        for _ in range(MAX_DEPTH + 1):
            elements, keys = self._decode(page)
            if page.flags & BRANCH:
                i = bisect.bisect_right(keys, key) - 1
                child = elements[max(i, 0)][2]
                assert isinstance(child, int)
                nxt = self._page(child)
                if nxt.pgid == page.pgid:
                    raise BoltError(
                        self._bolt.name, page.pgid, "branch element points at its own page (a loop)"
                    )
                page = nxt
                continue
            i = bisect.bisect_left(keys, key)
            if i < len(elements) and keys[i] == key:
                value = elements[i][2]
                assert isinstance(value, bytes)
                return elements[i][0], value
            return None
        raise BoltError(self._bolt.name, page.pgid, f"bucket {self.path!r} is deeper than {MAX_DEPTH} levels")

    def _child(self, key: bytes, value: bytes) -> Bucket:
        name = f"{self.path}/{key.decode(errors='replace')}"
        if len(value) < BUCKET_HEADER.size:
            raise BoltError(
                self._bolt.name, self._root or None, f"bucket value {name!r} is shorter than its header"
            )
        root, seq = BUCKET_HEADER.unpack_from(value)
        inline = value[BUCKET_HEADER.size :] if root == 0 else None
        ancestors = self._ancestors | {self._root} if self._inline is None else self._ancestors
        if root and root in ancestors:
            raise BoltError(self._bolt.name, root, f"bucket {name!r} is its own ancestor (a loop)")
        if len(ancestors) > MAX_DEPTH:
            raise BoltError(self._bolt.name, root or None, f"buckets nest deeper than {MAX_DEPTH} levels")
        return Bucket(self._bolt, root, inline, seq, name, ancestors)

    def get(self, key: bytes | str) -> bytes | None:
        """The value at ``key``; None when absent or when ``key`` is a nested bucket."""
        hit = self._lookup(_key(key))
        if hit is None or hit[0] & BUCKET_LEAF_FLAG:
            return None
        return hit[1]

    def bucket(self, key: bytes | str) -> Bucket | None:
        """The nested bucket at ``key``; None when absent or a plain value."""
        k = _key(key)
        hit = self._lookup(k)
        if hit is None or not hit[0] & BUCKET_LEAF_FLAG:
            return None
        return self._child(k, hit[1])

    def items(self) -> Iterator[tuple[bytes, bytes | Bucket]]:
        """(key, value) pairs in key order; a nested bucket's value is a :class:`Bucket`."""
        for key, flags, value in self.raw_items():
            yield key, (self._child(key, value) if flags & BUCKET_LEAF_FLAG else value)

    def key_list(self) -> list[bytes]:
        return [k for k, _f, _v in self.raw_items()]

    def values(self) -> dict[bytes, bytes]:
        """The plain values of this bucket (nested buckets left out)."""
        return {k: v for k, f, v in self.raw_items() if not f & BUCKET_LEAF_FLAG}

    def buckets(self) -> Iterator[tuple[bytes, Bucket]]:
        """The nested buckets, in key order."""
        for key, flags, value in self.raw_items():
            if flags & BUCKET_LEAF_FLAG:
                yield key, self._child(key, value)

    def walk(self) -> Iterator[tuple[str, bytes, bytes | None]]:
        """Every key under this bucket, depth first: (bucket path, key, value or None for a bucket)."""
        for key, value in self.items():
            if isinstance(value, Bucket):
                yield self.path, key, None
                yield from value.walk()
            else:
                yield self.path, key, value


def open_bolt(path: str | os.PathLike[str]) -> BoltFile:
    """Open a bolt file read-only; :class:`BoltError` when it is missing or not bolt."""
    p = Path(path)
    if not p.exists():
        raise BoltError(str(p), None, "does not exist")
    return BoltFile(p)
