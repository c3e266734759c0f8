"""Layer blobs in every compression containerd pulls: gzip through ISA-L, zstd through zstandard.

Real archives (tarfile, gzip, zstandard's frames) against a tree unpacked from them; speed is measured in
benchmarks/verify.py, never here.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import zstandard

from probes.readers.disk import layer_verify
from probes.readers.disk.layer_stream import Ahead
from probes.readers.disk.layer_verify import BlobCorrupt, verify_layer

FILES = {f"app/lib/m{i:03d}.py": os.urandom(37 * i + 5) for i in range(60)}


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("app", "app/lib"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
        for name, data in FILES.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = len(data), 0o644
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def unpacked(tmp_path: Path) -> tuple[bytes, Path]:
    raw = _tar()
    fs = tmp_path / "fs"
    fs.mkdir()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        tf.extractall(fs, filter="fully_trusted")
    return raw, fs


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _zstd(raw: bytes, frames: int = 1) -> bytes:
    """``frames`` zstd frames back to back, as a multi-frame (pigz-style) writer makes them."""
    step = -(-len(raw) // frames)
    return b"".join(
        zstandard.ZstdCompressor(level=3, write_content_size=False).compress(raw[i : i + step])
        for i in range(0, len(raw), step)
    )


@pytest.mark.parametrize("frames", [1, 3])
def test_a_zstd_layer_is_verified_not_unverifiable(unpacked, tmp_path: Path, frames: int) -> None:
    raw, fs = unpacked
    blob = tmp_path / "layer.tar.zst"
    blob.write_bytes(_zstd(raw, frames))
    check = verify_layer(blob, fs, digest=_sha(blob.read_bytes()), diff_id=_sha(raw))
    assert (check.compression, check.ok, check.tar_bytes) == ("zstd", True, len(raw))
    assert check.entries == len(FILES) + 2


def test_a_zstd_layer_finds_a_changed_file(unpacked, tmp_path: Path) -> None:
    raw, fs = unpacked
    (fs / "app/lib/m007.py").write_bytes(b"shorter")
    blob = tmp_path / "layer.tar.zst"
    blob.write_bytes(_zstd(raw))
    check = verify_layer(blob, fs)
    assert [d.path for d in check.changed] == ["/app/lib/m007.py"]


def test_a_truncated_zstd_blob_is_corrupt_not_damaged(unpacked, tmp_path: Path) -> None:
    raw, fs = unpacked
    blob = tmp_path / "layer.tar.zst"
    data = _zstd(raw)
    blob.write_bytes(data[: len(data) // 2])
    with pytest.raises(BlobCorrupt):
        verify_layer(blob, fs)


def test_gzip_is_inflated_by_isal_and_its_errors_are_corrupt_blobs(unpacked, tmp_path: Path) -> None:
    assert layer_verify.inflate_lib.__name__ == "isal.isal_zlib"  # the dependency is installed and used
    raw, fs = unpacked
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(gzip.compress(raw[:5000]) + gzip.compress(raw[5000:]))  # two gzip members
    assert verify_layer(blob, fs, diff_id=_sha(raw)).ok
    broken = bytearray(blob.read_bytes())
    broken[len(broken) // 3 : len(broken) // 3 + 64] = b"\xff" * 64
    blob.write_bytes(bytes(broken))
    with pytest.raises(BlobCorrupt):
        verify_layer(blob, fs, diff_id=_sha(raw))


def test_a_stage_hands_on_items_in_order_then_its_error() -> None:
    def source():
        yield from range(50)
        raise BlobCorrupt("cut")

    stage = Ahead(source(), 2, "test-stage")
    got = []
    with pytest.raises(BlobCorrupt, match="cut"):
        for item in stage:
            got.append(item)
    stage.join()
    assert got == list(range(50))


def test_a_stopped_stage_ends_though_nobody_reads_it() -> None:
    """A consumer that gives up (a bad header, a cancel) stops the stages; none stays blocked on its queue."""
    stage = Ahead(iter(range(10**9)), 2, "test-stage")
    assert next(stage) == 0
    stage.stop()
    stage.join()  # returns: the thread saw the stop while waiting for room


def _gzip_blob(raw: bytes, tmp_path: Path) -> Path:
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(gzip.compress(raw))
    return blob


def test_a_same_size_change_is_found_only_with_deep(unpacked, tmp_path: Path) -> None:
    raw, fs = unpacked
    target = fs / "app/lib/m011.py"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size, same mode
    target.write_bytes(bytes(data))
    blob = _gzip_blob(raw, tmp_path)
    assert verify_layer(blob, fs).ok  # the metadata check cannot see it
    deep = verify_layer(blob, fs, deep=True)
    assert [(d.path, d.problem, d.member) for d in deep.changed] == [
        ("/app/lib/m011.py", "content", "app/lib/m011.py")
    ]
    assert "content sha256" in deep.changed[0].describe()


def test_deep_on_an_intact_tree_finds_nothing(unpacked, tmp_path: Path) -> None:
    raw, fs = unpacked
    assert verify_layer(_gzip_blob(raw, tmp_path), fs, deep=True).ok


def test_deep_never_opens_a_fifo_or_follows_a_symlink_out(unpacked, tmp_path: Path) -> None:
    """A file swapped for a FIFO (opening it would block) or a symlink to a host file is a type change;
    deep mode reads neither."""
    raw, fs = unpacked
    (fs / "app/lib/m003.py").unlink()
    os.mkfifo(fs / "app/lib/m003.py")
    (fs / "app/lib/m004.py").unlink()
    (fs / "app/lib/m004.py").symlink_to("/etc/hostname")
    check = verify_layer(_gzip_blob(raw, tmp_path), fs, deep=True)  # returns: the FIFO was not opened
    assert {(d.path, d.problem) for d in check.changed} == {
        ("/app/lib/m003.py", "type"),
        ("/app/lib/m004.py", "type"),
    }
    assert layer_verify.file_sha256(fs / "app/lib/m003.py") is None
    assert layer_verify.file_sha256(fs / "app/lib/m004.py") is None


def test_deep_without_verify_is_one_line_and_exit_3(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--containerd-root", str(tmp_path), "snapshots", "--deep"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1 and "--verify" in proc.stderr
