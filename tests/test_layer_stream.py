"""The streaming layer reader (probes/readers/disk/layer_stream.py) against the one it replaced.

tests/layer_verify_previous.py is the reader as it was before (one thread parsing 4 MiB chunks, hashes on a
queue). On the same blobs — the fuzzer's hostile tars, GNU and PAX long names and links, ustar prefixes, hard
links, whiteouts, opaque directories, sparse and unknown members, multi-member and zero-padded gzip, zstd,
truncations anywhere — the new reader must find the same entries, reach the same verdict, raise the same
error and compute the same digests, with ISA-L and with the standard library's zlib alike. Only the byte
offsets in error messages differ (they now say where the bad header starts).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fuzzing
import layer_verify_previous as previous
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.errors import NodedocError
from probes.readers.disk import layer_stream
from probes.readers.disk import layer_verify as current

_BYTE = re.compile(r"(near|at) byte \d+")
_SLOW = settings(
    max_examples=max(20, settings.default.max_examples // 2),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


def _error(exc: NodedocError) -> tuple[str, str]:
    return type(exc).__name__, _BYTE.sub("byte N", str(exc))


def _entries(module: Any, tar: bytes, pieces: list[int] | None = None) -> object:
    """The entries a reader finds in ``tar`` (member names included), or the error it raises."""
    try:
        if module is previous:
            members = previous.iter_tar(previous._TarReader(iter([tar]), "t", hashlib.sha256()))
        else:
            members = layer_stream.iter_tar(layer_stream.TarStream(_split(tar, pieces or []), "t"))
        found = module.expected_entries(members)
    except NodedocError as exc:
        return _error(exc)
    return {p: (e.type, e.mode, e.size, e.link, e.opaque, e.member) for p, e in found.items()}


def _split(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    at = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        yield data[at:cut]
        at = cut
    yield data[at:]


def _verdict(module: Any, blob: Path, fs: Path, **kwargs: Any) -> object:
    try:
        check = module.verify_layer(blob, fs, **kwargs)
    except NodedocError as exc:
        return _error(exc)
    out = check.to_dict()
    out.pop("seconds")
    out["differences"] = [
        (d.path, d.problem, d.expected, d.actual, d.below, d.member)
        for d in check.missing + check.changed + check.extra
    ]
    return out


@pytest.fixture(params=["isal", "zlib"])
def inflate(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each comparison runs with ISA-L and with the standard library's zlib (the fallback), both readers
    with the same one (their messages quote the library's)."""
    if request.param == "zlib":
        monkeypatch.setattr(layer_stream, "_igzip", None)
        monkeypatch.setattr(layer_stream, "inflate_lib", zlib)
        monkeypatch.setattr(previous, "inflate_lib", zlib)  # both readers inflate with zlib then
    return str(request.param)


# -- tars the fuzzer does not make on its own ---------------------------------------------------------------

NAMES = ["etc/passwd", "./usr/bin/tool", "a/b/c/d", "dir/", "x" * 150, "p/" * 60 + "long", "caf\udce9"]


@st.composite
def shaped_tar(draw: st.DrawFn) -> bytes:
    """Members tarfile writes in each format: ustar prefixes, GNU and PAX long names and links, hard
    links to earlier files, whiteouts, opaque markers, devices, sparse-typed and unknown members."""
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    buf = io.BytesIO()
    written: list[str] = []
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(1, 8))):
            name = draw(st.one_of(st.sampled_from(NAMES), st.sampled_from(fuzzing.HOSTILE_NAMES)))
            base = draw(st.sampled_from(["", ".wh.gone", ".wh..wh..opq", "f"]))
            name = f"{name.rstrip('/')}/{base}" if base else name
            info = tarfile.TarInfo(name.replace("\x00", "0") or "empty")
            info.type = draw(
                st.sampled_from(
                    [
                        tarfile.REGTYPE,
                        tarfile.AREGTYPE,
                        tarfile.CONTTYPE,
                        tarfile.DIRTYPE,
                        tarfile.SYMTYPE,
                        tarfile.LNKTYPE,
                        tarfile.CHRTYPE,
                        tarfile.BLKTYPE,
                        tarfile.FIFOTYPE,
                        tarfile.GNUTYPE_SPARSE,
                        b"Z",
                    ]
                )
            )
            info.mode = draw(st.sampled_from([0o644, 0o755, 0o4755, 0o1777, 0o000]))
            info.linkname = draw(st.sampled_from(written or ["target"]))  # a hard link to an earlier member
            if draw(st.booleans()):
                info.linkname = "l" * 120  # longer than the header's field: a long link record
            data = b"d" * draw(st.integers(0, 1500)) if info.type in (tarfile.REGTYPE, b"Z") else b""
            info.size = len(data)
            try:
                tar.addfile(info, io.BytesIO(data))
            except (ValueError, UnicodeError):
                continue  # ustar cannot hold this name
            written.append(info.name)
    return buf.getvalue()


@st.composite
def any_tar(draw: st.DrawFn) -> bytes:
    members = draw(st.lists(st.one_of(fuzzing.raw_member(), fuzzing.tarfile_member()), max_size=5))
    tar = draw(st.one_of(shaped_tar(), st.just(b"".join(members) + b"\0" * 1024)))
    cut = draw(st.none() | st.integers(0, len(tar)))
    return tar[:cut] if cut is not None else tar


def _gzip_members(tar: bytes, cuts: list[int], padding: bytes) -> bytes:
    """``tar`` as several gzip members (as pigz or a concatenating registry writes them), then padding."""
    return b"".join(gzip.compress(part, compresslevel=1) for part in _split(tar, cuts)) + padding


@st.composite
def any_blob(draw: st.DrawFn) -> bytes:
    tar = draw(any_tar())
    kind = draw(st.sampled_from(["fuzzer", "gzip-members", "zstd-frames", "plain"]))
    if kind == "fuzzer":
        return draw(fuzzing.layer_blob())
    if kind == "gzip-members":
        cuts = draw(st.lists(st.integers(0, len(tar)), max_size=3))
        padding = draw(st.sampled_from([b"", b"\0" * 100, b"\0" * 7 + b"junk", b"\0\0" + gzip.compress(b"")]))
        blob = _gzip_members(tar, cuts, padding)
    elif kind == "zstd-frames":
        blob = b"".join(zstandard.ZstdCompressor(level=1).compress(p) for p in _split(tar, [len(tar) // 2]))
    else:
        blob = tar
    cut = draw(st.none() | st.integers(0, len(blob)))
    return blob[:cut] if cut is not None else blob


# -- the comparisons ----------------------------------------------------------------------------------------


@_SLOW
@given(any_tar(), st.lists(st.integers(0, 1 << 20), max_size=6))
def test_same_entries_as_before_on_any_tar(tar: bytes, cuts: list[int]) -> None:
    """However the tar stream is cut into pieces, the entries (or the error) are the old reader's."""
    assert _entries(current, tar, cuts) == _entries(previous, tar)


@pytest.mark.parametrize("piece", [1, 511, 512, 513, 4096, 65_537])
def test_pieces_of_any_size_parse_alike(piece: int) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(40):
            info = tarfile.TarInfo(f"dir/{'n' * (i * 7)}{i}")
            data = bytes([i]) * (i * 97)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    cuts = list(range(piece, len(raw), piece))
    assert _entries(current, raw, cuts) == _entries(current, raw) == _entries(previous, raw)
    assert len(_entries(current, raw, cuts)) == 41  # type: ignore[arg-type]


#: Errors of the compressed stream itself (as opposed to the tar inside it).
_DECODER = ("is corrupt near byte", "gzip stream ends", "not another gzip member")


def _alike(new: object, old: object) -> bool:
    """The same verdict. Where the compressed stream itself is broken, the old reader (4 MiB per inflate
    call) and the new one (512 KiB) may meet the bad tar header before the bad deflate data or after it:
    both must call the blob corrupt, whichever of the two they name."""
    if isinstance(new, tuple) and isinstance(old, tuple) and any(d in new[1] + old[1] for d in _DECODER):
        return new[0] == old[0] == "BlobCorrupt"
    return new == old


def _blob_verdicts(blob: bytes, digests: tuple[bool, bool | None]) -> tuple[object, object]:
    scratch = Path(tempfile.mkdtemp(prefix="nd-stream-"))
    try:
        path, fs = scratch / "blob", scratch / "fs"
        path.write_bytes(blob)
        fs.mkdir()
        (fs / "etc").mkdir()
        (fs / "etc" / "passwd").write_bytes(b"root:x:0:0\n")
        right_digest, right_diff_id = digests
        wrong = "sha256:" + "0" * 64
        kwargs = {
            "digest": "sha256:" + hashlib.sha256(blob).hexdigest() if right_digest else wrong,
            # a diff_id that never matches: the error carries the tar's sha256, so both readers' must agree
            "diff_id": None if right_diff_id is None else wrong,
        }
        return _verdict(current, path, fs, **kwargs), _verdict(previous, path, fs, **kwargs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@_SLOW
@given(any_blob(), st.tuples(st.booleans(), st.none() | st.booleans()))
def test_same_verdict_as_before_on_any_blob(
    inflate: str, blob: bytes, digests: tuple[bool, bool | None]
) -> None:
    """Hostile, truncated and odd blobs: the same differences or the same error (digest and diff_id
    mismatches name the sha256 each reader computed, so the digests are compared too)."""
    new, old = _blob_verdicts(blob, digests)
    assert _alike(new, old), (new, old)


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(lambda t: _gzip_members(t, [700, 3000], b""), id="three-gzip-members"),
        pytest.param(lambda t: _gzip_members(t, [], b"\0" * 4096), id="zero-padding-after-gzip"),
        pytest.param(
            lambda t: _gzip_members(t, [], b"\0" * 64 + gzip.compress(b"\0" * 1024)),
            id="zero-padding-then-a-member-in-one-block",
        ),
        pytest.param(lambda t: _gzip_members(t, [], b"\0\0garbage"), id="garbage-after-gzip"),
        pytest.param(lambda t: gzip.compress(t)[:-6], id="gzip-trailer-cut"),
        pytest.param(lambda t: gzip.compress(t)[:-4] + b"\xff\xff\xff\xff", id="gzip-size-wrong"),
        pytest.param(lambda t: t[: len(t) - 1024], id="tar-without-end-blocks"),
        pytest.param(lambda t: t[:700], id="tar-cut-in-a-file"),
        pytest.param(lambda t: t[:1030], id="tar-cut-in-a-header"),
        pytest.param(lambda t: zstandard.ZstdCompressor().compress(t)[:-3], id="zstd-cut"),
    ],
)
def test_same_verdict_on_the_blobs_that_go_wrong(inflate: str, blob: Any) -> None:
    raw = _realistic_tar()
    for digests in ((True, None), (True, True), (False, None)):
        new, old = _blob_verdicts(blob(raw), digests)
        assert new == old


def test_a_gzip_member_spanning_many_read_blocks_is_judged_alike(inflate: str, tmp_path: Path) -> None:
    """Several MiB of layer in two gzip members with zero padding between them: the padding is judged
    on the rest of the blob's block, as before, though the inflater slices the blocks finer."""
    raw = _realistic_tar(big=3 << 20)
    first = gzip.compress(raw[: len(raw) // 2], compresslevel=1)
    blob = first + b"\0" * 10 + gzip.compress(raw[len(raw) // 2 :], compresslevel=1)
    new, old = _blob_verdicts(blob, (True, True))
    assert new == old and new[0] == "BlobCorrupt"  # type: ignore[index]


def _realistic_tar(big: int = 0) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info, io.BytesIO(data))

        add("etc", tarfile.DIRTYPE)
        add("etc/passwd", data=b"root:x:0:0\n")
        add("etc/hard", tarfile.LNKTYPE, link="etc/passwd")
        add("etc/" + "long" * 40, data=b"x" * 900)
        add("etc/sym", tarfile.SYMTYPE, link="l" * 140)
        add("var/.wh..wh..opq")
        add("var/.wh.gone")
        add("big", data=bytes(range(256)) * (big // 256))
    return buf.getvalue()


def test_same_deep_verdict_as_before(inflate: str, tmp_path: Path) -> None:
    """--deep on a tree with a file whose bytes changed and one that became a FIFO."""
    raw = _realistic_tar(big=2 << 20)
    fs = tmp_path / "fs"
    fs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(fs, filter="fully_trusted")
    (fs / "big").write_bytes(b"\1" + (fs / "big").read_bytes()[1:])
    (fs / "etc/passwd").unlink()
    os.mkfifo(fs / "etc/passwd")
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(raw, compresslevel=1))
    digest = "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    new = _verdict(current, blob, fs, digest=digest, diff_id=diff_id, deep=True)
    assert new == _verdict(previous, blob, fs, digest=digest, diff_id=diff_id, deep=True)
    assert {d[:2] for d in new["differences"]} >= {("/big", "content"), ("/etc/passwd", "type")}  # type: ignore[index]


def test_progress_and_cancel_on_the_callers_thread(tmp_path: Path) -> None:
    """Progress reaches the blob's size on the thread that called verify_layer; a cancel there stops it."""
    import threading

    raw = _realistic_tar(big=5 << 20)
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(raw, compresslevel=1))
    fs = tmp_path / "fs"
    fs.mkdir()
    seen: list[tuple[int, int, str]] = []
    current.verify_layer(blob, fs, progress=lambda d, t: seen.append((d, t, threading.current_thread().name)))
    assert seen[-1][:2] == (blob.stat().st_size, blob.stat().st_size)
    assert {name for *_, name in seen} == {threading.current_thread().name}
    assert [d for d, *_ in seen] == sorted(d for d, *_ in seen)
    calls = []
    with pytest.raises(current.VerifyCancelled):
        current.verify_layer(blob, fs, cancel=lambda: calls.append(1) or len(calls) > 2)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("layer-")]  # stages ended with it


def test_without_isal_and_zstandard_the_standard_library_verifies(tmp_path: Path) -> None:
    """The fallback: with neither extra importable, gzip is inflated by zlib with the same verdict and zstd
    is unverifiable (not an error of the tool)."""
    raw = _realistic_tar(big=1 << 20)
    fs = tmp_path / "fs"
    fs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(fs, filter="fully_trusted")
    (fs / "etc/passwd").write_bytes(b"changed")
    gz, zst = tmp_path / "layer.tar.gz", tmp_path / "layer.tar.zst"
    gz.write_bytes(gzip.compress(raw))
    zst.write_bytes(zstandard.ZstdCompressor().compress(raw))
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    script = f"""
import sys
sys.modules["isal"] = sys.modules["zstandard"] = sys.modules["compression"] = None
from pathlib import Path
from probes.readers.disk import layer_stream
from probes.readers.disk.layer_verify import CompressionUnsupported, verify_layer
assert layer_stream.inflate_lib.__name__ == "zlib" and layer_stream._igzip is None
check = verify_layer(Path({str(gz)!r}), Path({str(fs)!r}), diff_id={diff_id!r})
print(check.compression, [d.describe() for d in check.changed])
try:
    verify_layer(Path({str(zst)!r}), Path({str(fs)!r}))
except CompressionUnsupported as exc:
    print("zstd:", type(exc).__name__)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    with_extras = current.verify_layer(gz, fs, diff_id=diff_id)
    assert out.splitlines() == [
        f"gzip {[d.describe() for d in with_extras.changed]}",
        "zstd: CompressionUnsupported",
    ]
    assert with_extras.changed  # the change is found either way


@pytest.mark.every_runtime
@pytest.mark.lab
def test_same_verdicts_as_before_on_the_labs_layers(lab, tmp_path: Path) -> None:
    """Every committed snapshot of the lab node (layers containerd itself pulled and unpacked), intact and
    then damaged (a byte flipped, a mode changed), shallow and deep: the same verdict as the old reader."""
    from probes.readers.disk.containerd_store import ContainerdDisk

    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(lab.root), str(copy)], check=False, capture_output=True)
    disk = ContainerdDisk(copy)
    committed = [i for i in disk.snapshots() if i.kind == "committed" and i.layers]
    assert committed

    def compare_all() -> list[object]:
        verdicts = []
        for info in committed:
            ref = info.layers[0]
            blob = disk.content.blob_path(ref.layer.blob.digest)
            for deep in (False, True):
                kwargs = {"digest": ref.layer.blob.digest, "diff_id": ref.layer.diff_id, "deep": deep}
                new = _verdict(current, blob, info.fs_dir, **kwargs)
                assert new == _verdict(previous, blob, info.fs_dir, **kwargs)
                verdicts.append(new)
        return verdicts

    assert all(isinstance(v, dict) and not v["differences"] for v in compare_all())
    files = [p for i in committed for p in sorted(i.fs_dir.rglob("*")) if p.is_file() and not p.is_symlink()]
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0xFF
    files[0].write_bytes(bytes(data))
    assert _problems(compare_all()) == {"content"}  # same size, same mode: only --deep sees it
    files[0].chmod(0o600)
    assert _problems(compare_all()) == {"mode"}  # a changed file's bytes are not reported twice


def _problems(verdicts: list[object]) -> set[str]:
    return {d[1] for v in verdicts if isinstance(v, dict) for d in v["differences"]}
