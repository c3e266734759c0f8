"""Snapshot integrity: the layer comparison on real tar/gzip files, and the seed-002 scenario on the lab."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from probes.builtin.snapshots import SnapshotsProbe
from probes.node import NodeContext
from probes.readers.disk.containerd_store import ContainerdDisk
from probes.readers.disk.layer_verify import (
    BlobCorrupt,
    BlobMissing,
    CompressionUnsupported,
    list_dir,
    verify_layer,
    zstd_available,
)
from probes.readers.disk.mounts import parse_mounts
from tui.cli import main


def _layer(entries: list[tuple[str, str, bytes | str, int]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mode = mode
            if kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(data)
                tf.addfile(ti)
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, str(data)
                tf.addfile(ti)
            else:
                assert isinstance(data, bytes)
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


LAYER = [
    ("etc", "dir", b"", 0o755),
    ("etc/hostname", "file", b"node\n", 0o644),
    ("etc/.wh.motd", "file", b"", 0o644),
    ("bin", "dir", b"", 0o755),
    ("bin/pause", "file", b"\x7fELF" + b"x" * 3000, 0o755),
    ("bin/sleep", "sym", "pause", 0o777),
    ("bin/wait", "hard", "bin/pause", 0o755),
    ("usr/lib/deep/file.so", "file", b"so" * 100, 0o644),  # parents only implied
]


def _unpack(raw: bytes, fs: Path) -> None:
    """Unpack like containerd's overlay applier: whiteouts become 0/0 character devices."""
    fs.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        for m in tf.getmembers():
            base = os.path.basename(m.name)
            if base.startswith(".wh."):
                os.mknod(fs / os.path.dirname(m.name) / base[4:], 0o600 | 0o020000, 0)
                continue
            tf.extract(m, fs, filter="fully_trusted")


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, Path, str]:
    raw = _layer(LAYER)
    blob = tmp_path / "blob"
    blob.write_bytes(gzip.compress(raw))
    _unpack(raw, tmp_path / "fs")
    import hashlib

    return blob, tmp_path / "fs", "sha256:" + hashlib.sha256(blob.read_bytes()).hexdigest()


def _rm(p: Path) -> None:
    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


DAMAGE = [
    pytest.param(lambda fs: _rm(fs / "bin/pause"), "missing", "/bin/pause", id="file-deleted"),
    pytest.param(
        lambda fs: _rm(fs / "usr/lib"), "missing", "/usr/lib missing (and 2 below it)", id="dir-deleted"
    ),
    pytest.param(lambda fs: (fs / "etc/extra").write_text("x"), "extra", "/etc/extra", id="file-added"),
    pytest.param(lambda fs: os.chmod(fs / "bin/pause", 0o644), "changed", "/bin/pause: mode", id="mode"),
    pytest.param(
        lambda fs: (fs / "etc/hostname").write_text("other-node\n"),
        "changed",
        "/etc/hostname: size",
        id="size",
    ),
    pytest.param(
        lambda fs: ((fs / "bin/sleep").unlink(), (fs / "bin/sleep").symlink_to("/bin/true")),
        "changed",
        "/bin/sleep: link",
        id="symlink-target",
    ),
    pytest.param(
        lambda fs: ((fs / "etc/motd").unlink(), (fs / "etc/motd").write_text("hi")),
        "changed",
        "/etc/motd: type whiteout",
        id="whiteout-replaced",
    ),
]


@pytest.mark.root
def test_intact_snapshot_matches_its_layer(snapshot) -> None:
    blob, fs, digest = snapshot
    check = verify_layer(blob, fs, digest=digest)
    assert check.ok, check.to_dict()
    assert check.compression == "gzip" and check.entries == 11


@pytest.mark.root
@pytest.mark.parametrize(("damage", "bucket", "text"), DAMAGE)
def test_damage_is_found(snapshot, damage, bucket: str, text: str) -> None:
    blob, fs, digest = snapshot
    damage(fs)
    check = verify_layer(blob, fs, digest=digest)
    found = [d.describe() for d in getattr(check, bucket)]
    assert any(f.startswith(text) for f in found), found
    assert not check.ok


BLOB_DAMAGE = [
    pytest.param(lambda b: b[: len(b) // 2], BlobCorrupt, "truncated", id="truncated"),
    pytest.param(
        lambda b: b[:20] + bytes(x ^ 0xFF for x in b[20:40]) + b[40:],
        BlobCorrupt,
        "corrupt",
        id="flipped-bytes",
    ),
    pytest.param(lambda b: b + b"garbage", BlobCorrupt, "corrupt", id="trailing-garbage"),
]


@pytest.mark.parametrize(("mangle", "error", "word"), BLOB_DAMAGE)
def test_damaged_blob_is_reported_as_the_blob(snapshot, mangle, error, word: str) -> None:
    blob, fs, digest = snapshot
    blob.write_bytes(mangle(blob.read_bytes()))
    with pytest.raises(error) as err:
        verify_layer(blob, fs, digest=digest)
    assert str(blob) in str(err.value) and word in str(err.value)


def test_missing_blob_cannot_be_verified(snapshot) -> None:
    blob, fs, digest = snapshot
    blob.unlink()
    with pytest.raises(BlobMissing, match="not in the content store"):
        verify_layer(blob, fs, digest=digest)


def test_uncompressed_layer_and_progress_and_cancel(snapshot, tmp_path: Path) -> None:
    import threading

    blob, fs, _digest = snapshot
    plain = tmp_path / "plain"
    plain.write_bytes(gzip.decompress(blob.read_bytes()))
    seen: list[tuple[int, int]] = []
    check = verify_layer(plain, fs, progress=lambda d, t: seen.append((d, t)))
    assert check.compression == "none" and seen[-1] == (plain.stat().st_size,) * 2
    stop = threading.Event()
    stop.set()
    with pytest.raises(Exception, match="cancelled"):
        verify_layer(plain, fs, cancel=stop)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd program to make a zstd blob")
def test_zstd_blob(snapshot, tmp_path: Path) -> None:
    blob, fs, _digest = snapshot
    raw = tmp_path / "raw.tar"
    raw.write_bytes(gzip.decompress(blob.read_bytes()))
    subprocess.run(["zstd", "-q", "-f", str(raw), "-o", str(tmp_path / "blob.zst")], check=True)
    if zstd_available():
        assert verify_layer(tmp_path / "blob.zst", fs).compression == "zstd"
    else:
        with pytest.raises(CompressionUnsupported, match="no zstd module"):
            verify_layer(tmp_path / "blob.zst", fs)


MOUNT_LINES = [
    pytest.param(
        "overlay /s/io.containerd.runtime.v2.task/k8s.io/abc/rootfs overlay rw,lowerdir=/r/io.containerd.snapshotter"
        ".v1.overlayfs/snapshots/3/fs:/r/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs,upperdir=/r/io."
        "containerd.snapshotter.v1.overlayfs/snapshots/7/fs,workdir=/r/io.containerd.snapshotter.v1.overlayfs/"
        "snapshots/7/work 0 0",
        (3, 1),
        7,
        "abc",
        id="absolute",
    ),
    pytest.param(
        "overlay /x\\040y overlay rw,lowerdir=12/fs:4/fs,upperdir=13/fs,workdir=13/work 0 0",
        (12, 4),
        13,
        "",
        id="relative-escaped",
    ),
]


@pytest.mark.parametrize(("line", "lowers", "upper", "cid"), MOUNT_LINES)
def test_parse_overlay_mounts(line: str, lowers, upper, cid) -> None:
    (m,) = parse_mounts(line + "\nproc /proc proc rw 0 0\n")
    assert (m.lower_ids, m.upper_id, m.container_id) == (lowers, upper, cid)


def test_probes_stay_free_of_textual() -> None:
    code = (
        "import sys, probes.builtin.snapshots, probes.readers.disk.containerd_store, probes.readers.disk.layer_verify, probes.readers.disk.mounts; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- the lab -------------------------------------------------------------------------------------


def _pause_snapshot(disk: ContainerdDisk, image: str):
    (info,) = [s for s in disk.snapshots() if s.kind == "committed" and image in s.image_names]
    return info


def _run_probe(node: NodeContext):
    out = SnapshotsProbe().run(node)
    return out.findings, out.facts


@pytest.mark.every_runtime
@pytest.mark.lab
def test_lab_snapshots_join_images_containers_and_mounts(lab) -> None:
    disk = ContainerdDisk(lab.root, Path("/proc"))
    pause = _pause_snapshot(disk, lab.image)
    sandboxes = {p.id for p in lab.pods}
    assert sandboxes <= {c.id for c in pause.users}
    mounted = {m.container_id for m in pause.mounts}
    assert sandboxes <= mounted
    assert [f.path for f in disk.list_files(pause)] == ["/pause"]
    assert list_dir(pause.fs_dir, "/nope") == []
    for pod in lab.pods:
        own = disk.snapshot(pod.id)
        assert own.kind == "active" and own.parent_id == pause.id and [c.id for c in own.owners] == [pod.id]


@pytest.mark.every_runtime
@pytest.mark.lab
def test_seed_002_missing_pause_found_live_and_post_mortem(lab, tmp_path: Path) -> None:
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    findings, facts = _run_probe(node)
    assert [f.id for f in findings] == ["snapshot.ok"], [f.summary for f in findings]

    disk = ContainerdDisk(lab.root)
    pause = _pause_snapshot(disk, lab.image)
    target = pause.fs_dir / "pause"
    assert str(target).startswith(str(lab.dir))
    aside = lab.dir / "pause.aside"
    os.rename(target, aside)
    try:
        node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
        findings, _ = _run_probe(node)
        missing = [f for f in findings if f.id == "snapshot.files-missing"]
        assert len(missing) == 1, [f.summary for f in findings]
        f = missing[0]
        assert f.severity == "critical"
        assert f.subject["snapshot_id"] == pause.id and f.subject["image"] == lab.image
        assert f.subject["layer_digest"] == pause.layers[0].layer.blob.digest
        assert f.evidence["missing"] == ["/pause missing"]
        restore = f.remediation[0].command or ""
        assert (
            restore.startswith("tar -x") and f"-C {pause.fs_dir} " in restore and restore.endswith(" pause")
        )

        copy = tmp_path / "root"
        subprocess.run(["cp", "-a", str(lab.root), str(copy)], check=False, capture_output=True)
        post = NodeContext(containerd_root=copy)
        findings, _ = _run_probe(post)
        (f,) = [f for f in findings if f.id == "snapshot.files-missing"]
        assert f.subject["snapshot_id"] == pause.id and f.evidence["missing"] == ["/pause missing"]

        rc = main(["snapshots", "--containerd-root", str(copy), "-o", "json", "--verify", str(pause.id)])
        assert rc == 1
    finally:
        os.rename(aside, target)
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    findings, _ = _run_probe(node)
    assert [f.id for f in findings] == ["snapshot.ok"]


@pytest.mark.every_runtime
@pytest.mark.lab
def test_orphans_and_missing_blob_on_a_copy(lab, tmp_path: Path) -> None:
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(lab.root), str(copy)], check=False, capture_output=True)
    disk = ContainerdDisk(copy)
    pause = _pause_snapshot(disk, lab.image)
    (copy / "io.containerd.snapshotter.v1.overlayfs/snapshots/9999/fs").mkdir(parents=True)
    disk.content.blob_path(pause.layers[0].layer.blob.digest).unlink()
    findings, _ = _run_probe(NodeContext(containerd_root=copy))
    ids = {f.id: f for f in findings}
    assert ids["snapshot.orphan"].evidence["ids"] == [9999]
    assert ids["snapshot.unverifiable"].subject["snapshot_id"] == pause.id
    assert "not in the content store" in ids["snapshot.unverifiable"].summary


@pytest.mark.every_runtime
@pytest.mark.lab
def test_snapshots_command_outputs(lab, capsys) -> None:
    assert main(["snapshots", "--containerd-root", str(lab.root), "-o", "json", "--verify"]) == 0
    doc = json.loads(capsys.readouterr().out)
    statuses = {s["id"]: (s["verify"] or {}).get("status") for s in doc["snapshots"]}
    assert "ok" in statuses.values() and "damaged" not in statuses.values()
    assert main(["snapshots", "--containerd-root", str(lab.root), "-o", "tree"]) == 0
    tree = capsys.readouterr().out
    assert f"{lab.image} #0" in tree and "└─" in tree
    assert main(["snapshots", "--containerd-root", str(lab.root), "--verify", "no-such-snapshot"]) == 3
