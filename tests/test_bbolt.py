"""The bbolt reader against real containerd databases: agreement with ctr, typed errors, mutation fuzzing."""

from __future__ import annotations

import random
import struct
import subprocess
from pathlib import Path

import pytest

from probes.readers.disk.bbolt import BoltError, BoltFile, fnv1a64
from probes.readers.disk.containerd_store import MetaDb, OverlayDb, meta_db_path, overlay_db_path


def _ctr(lab, *args: str) -> str:
    return subprocess.run(
        ["ctr", "-a", str(lab.socket), "-n", "k8s.io", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout


@pytest.fixture(scope="module")
def meta_bytes(lab) -> bytes:
    return meta_db_path(lab.root).read_bytes()


@pytest.mark.every_runtime
@pytest.mark.lab
def test_overlay_db_agrees_with_ctr_snapshots_ls(lab) -> None:
    rows = [line.split() for line in _ctr(lab, "snapshots", "ls").splitlines()[1:] if line.strip()]
    from_ctr = {(r[0], r[1] if len(r) == 3 else "", r[-1].lower()) for r in rows}
    with MetaDb(meta_db_path(lab.root)) as meta, OverlayDb(overlay_db_path(lab.root)) as overlay:
        backend = {r.key: r for r in overlay.snapshots()}
        by_name = {m.name: m.key for m in meta.snapshots("k8s.io")}
        ours = set()
        for m in meta.snapshots("k8s.io"):
            rec = backend[m.name]
            parent = by_name.get(rec.parent, "") if rec.parent else ""
            ours.add((m.key, parent, rec.kind))
    assert ours == from_ctr
    assert len(ours) >= 4  # the pause layer, 3 sandboxes, their containers


@pytest.mark.every_runtime
@pytest.mark.lab
def test_meta_db_agrees_with_ctr_images_ls(lab) -> None:
    rows = [line.split() for line in _ctr(lab, "images", "ls").splitlines()[1:] if line.strip()]
    from_ctr = {(r[0], r[1], r[2]) for r in rows}
    with MetaDb(meta_db_path(lab.root)) as meta:
        ours = {(i.name, i.target.media_type, i.target.digest) for i in meta.images("k8s.io")}
        assert meta.schema_version is not None
        assert "k8s.io" in meta.namespaces()
    assert ours == from_ctr
    assert any(name == lab.image for name, _t, _d in ours)


@pytest.mark.every_runtime
@pytest.mark.lab
def test_containers_and_sandboxes_match_cri(lab) -> None:
    client = lab.client()
    sandboxes = {s.id for s in client.list_pod_sandboxes()}
    containers = {c.id for c in client.list_containers()}
    with MetaDb(meta_db_path(lab.root)) as meta:
        records = meta.containers("k8s.io")
    assert {r.id for r in records if r.kind == "sandbox"} == sandboxes
    assert {r.id for r in records if r.kind == "container"} == containers
    for r in records:
        assert r.snapshot_key == r.id and r.snapshotter == "overlayfs"
        if r.kind == "container":
            assert r.sandbox_id in sandboxes


@pytest.mark.every_runtime
@pytest.mark.lab
def test_file_is_read_without_a_lock_while_containerd_holds_it(lab) -> None:
    with BoltFile(meta_db_path(lab.root)) as bolt:
        assert bolt.bucket("v1", "k8s.io", "images") is not None
        assert bolt.meta.page_size in (4096, 8192, 16384, 65536)
        assert all(2 <= p < bolt.meta.high_water for p in bolt.freelist())


def _set_meta(data: bytearray, page_size: int, offset_in_meta: int, fmt: str, value: int, fix: bool) -> None:
    for page in (0, 1):
        base = page * page_size + 16
        struct.pack_into(fmt, data, base + offset_in_meta, value)
        if fix:
            struct.pack_into("<Q", data, base + 56, fnv1a64(bytes(data[base : base + 56])))


def _bad_root_page(data: bytearray, page_size: int) -> None:
    _set_meta(data, page_size, 16, "<Q", 1, fix=True)  # root bucket on a meta page


def _self_loop(data: bytearray, page_size: int) -> None:
    """Point the root's first sub-bucket at the root's own page."""
    for root in {struct.unpack_from("<Q", data, p * page_size + 32)[0] for p in (0, 1)}:
        at = root * page_size
        _flags, pos, ksize, _vsize = struct.unpack_from("<IIII", data, at + 16)
        value_at = at + 16 + pos + ksize
        struct.pack_into("<Q", data, value_at, root)


CASES = [
    pytest.param(lambda d, ps: d[: ps // 2], "truncated", id="truncated-inside-meta"),
    pytest.param(lambda d, ps: d[: len(d) // 2], "truncated", id="truncated-half"),
    pytest.param(lambda d, ps: _set_meta(d, ps, 0, "<I", 0xDEADBEEF, fix=True), "bad magic", id="bad-magic"),
    pytest.param(lambda d, ps: _set_meta(d, ps, 48, "<Q", 7, fix=False), "checksum", id="bad-checksum"),
    pytest.param(_bad_root_page, "outside", id="root-on-meta-page"),
    pytest.param(_self_loop, "loop", id="bucket-loop"),
]


@pytest.mark.lab
@pytest.mark.parametrize(("mutate", "words"), CASES)
def test_damaged_files_raise_typed_errors_naming_file_and_page(
    meta_bytes: bytes, tmp_path: Path, mutate, words: str
) -> None:
    data = bytearray(meta_bytes)
    page_size = struct.unpack_from("<I", data, 16 + 8)[0]
    result = mutate(data, page_size)
    data = bytearray(result) if result is not None else data
    path = tmp_path / "meta.db"
    path.write_bytes(bytes(data))
    with pytest.raises(BoltError) as err:
        with MetaDb(path) as meta:
            meta.images()
            meta.containers()
            list(meta.bolt.root.walk())
    assert str(path) in str(err.value)
    assert words in str(err.value)


@pytest.mark.lab
def test_a_file_read_page_by_page_reads_as_one_read_whole(lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small bolt file is read in one read when opened; a large one page by page: the same records."""
    from probes.readers.disk import bbolt

    def everything(path: Path) -> list[object]:
        with MetaDb(path) as meta:
            records: list[object] = [meta.namespaces(), meta.images(), meta.containers(), meta.snapshots()]
            records += [meta.content(), meta.leases(), meta.sandboxes(), list(meta.bolt.root.walk())]
            return records

    whole = everything(meta_db_path(lab.root))
    monkeypatch.setattr(bbolt, "READ_WHOLE", 0)
    with MetaDb(meta_db_path(lab.root)) as meta:
        assert meta.bolt._data is None  # really read page by page
    assert everything(meta_db_path(lab.root)) == whole
    assert len(whole[2]) >= 3  # the sandboxes' containers at least


@pytest.mark.lab
def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(BoltError, match="does not exist"):
        MetaDb(tmp_path / "nope.db")


def _read_everything(data: bytes) -> int:
    bolt = BoltFile.from_bytes(data, "fuzz.db")
    meta = MetaDb(bolt)
    n = len(meta.images()) + len(meta.containers()) + len(meta.snapshots()) + len(meta.content())
    n += len(meta.leases()) + len(meta.sandboxes())
    n += sum(1 for _ in bolt.root.walk())
    return n


@pytest.mark.lab
def test_fuzz_mutated_meta_db_returns_data_or_bolt_error(meta_bytes: bytes) -> None:
    rng = random.Random(20240602)
    assert _read_everything(meta_bytes) > 20
    outcomes = {"data": 0, "error": 0}
    for _ in range(2000):
        data = bytearray(meta_bytes)
        how = rng.random()
        if how < 0.1:
            data = data[: rng.randrange(len(data))]
        else:
            for _flip in range(rng.randint(1, 8)):
                # Mostly inside data pages (the metas are checksummed), sometimes anywhere.
                at = rng.randrange(len(data)) if rng.random() < 0.2 else rng.randrange(8192, len(data))
                data[at] = rng.randrange(256)
        try:
            _read_everything(bytes(data))
            outcomes["data"] += 1
        except BoltError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["data"] > 0
