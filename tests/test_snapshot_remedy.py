"""The restore command nodedoc prints for a damaged snapshot, run with the real GNU tar on a layer built
here: it restores exactly the damaged paths (members named ``./x`` or ``x``), and it is refused, saying
why, where tar could write outside the snapshot or cannot recreate what is missing."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from probes.knowledge.remedies.snapshots import crictl, restore_from_blob, unsafe_path
from probes.readers.disk.layer_verify import verify_layer

FILES = {"etc/app.conf": (b"port=80\n", 0o640), "usr/bin/app": (b"\x7fELF-not-really\n", 0o755)}


def build_layer(tmp: Path, prefix: str) -> tuple[Path, Path]:
    """A gzip layer blob (members named with ``prefix``) and the snapshot fs unpacked from it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("etc", "usr", "usr/bin"):
            info = tarfile.TarInfo(prefix + d)
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 0, 0
            tar.addfile(info)
        for name, (data, mode) in FILES.items():
            info = tarfile.TarInfo(prefix + name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo(prefix + "etc/.wh.old.conf")
        tar.addfile(info, io.BytesIO(b""))
    blob = tmp / "blob"
    blob.write_bytes(gzip.compress(raw.getvalue()))
    fs = tmp / "snapshots" / "7" / "fs"
    fs.mkdir(parents=True)
    with tarfile.open(blob) as tar:
        tar.extractall(fs, filter="fully_trusted")
    (fs / "etc" / ".wh.old.conf").unlink()
    os.mknod(fs / "etc" / "old.conf", 0o600 | 0o020000, 0)  # the unpacker's whiteout: char 0/0
    return blob, fs


@pytest.mark.root
@pytest.mark.parametrize("prefix", ["./", ""], ids=["dot-slash", "bare"])
def test_restore_puts_back_exactly_the_damaged_paths(tmp_path: Path, prefix: str) -> None:
    if shutil.which("tar") is None:
        pytest.fail("GNU tar is needed (apt-get install tar)")
    blob, fs = build_layer(tmp_path, prefix)
    assert verify_layer(blob, fs).ok
    shutil.rmtree(fs / "usr")  # a whole directory gone
    (fs / "etc" / "app.conf").write_bytes(b"changed!\n")  # a file changed
    (fs / "etc" / "stray").write_text("never in the layer")
    check = verify_layer(blob, fs)
    assert {d.path for d in check.missing} == {"/usr"} and {d.path for d in check.changed} == {
        "/etc/app.conf"
    }
    remedy = restore_from_blob(check, 7)
    assert remedy.command and not remedy.disrupts_pods and remedy.proven

    subprocess.run(["sh", "-c", remedy.command], check=True, timeout=60)

    assert verify_layer(blob, fs).ok
    st = os.stat(fs / "etc" / "app.conf")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1000, 1000, 0o640)
    assert (fs / "usr" / "bin" / "app").read_bytes() == FILES["usr/bin/app"][0]


@pytest.mark.root
def test_restore_is_refused_through_a_symlinked_directory(tmp_path: Path) -> None:
    blob, fs = build_layer(tmp_path, "./")
    outside = tmp_path / "host-etc"
    outside.mkdir()
    shutil.rmtree(fs / "etc")
    (fs / "etc").symlink_to(outside)
    check = verify_layer(blob, fs)
    remedy = restore_from_blob(check, 7)
    assert remedy.command is None
    assert "refused" in remedy.text and f"{fs / 'etc'} is a symlink (to {outside})" in remedy.text
    assert not any(outside.iterdir())


@pytest.mark.root
def test_restore_is_refused_for_a_lost_whiteout(tmp_path: Path) -> None:
    blob, fs = build_layer(tmp_path, "")
    (fs / "etc" / "old.conf").unlink()
    remedy = restore_from_blob(verify_layer(blob, fs), 7)
    assert remedy.command is None and "whiteout" in remedy.text


def test_unsafe_path_names_a_file_where_a_directory_should_be(tmp_path: Path) -> None:
    (tmp_path / "usr").write_text("")
    assert "not a directory" in unsafe_path(tmp_path, "/usr/bin/app")
    assert unsafe_path(tmp_path, "/opt/new/file") == ""


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        pytest.param("unix:///run/containerd/containerd.sock", "crictl", id="default"),
        pytest.param(
            "unix:///tmp/lab x/c.sock", "crictl --runtime-endpoint 'unix:///tmp/lab x/c.sock'", id="quoted"
        ),
    ],
)
def test_crictl_names_the_endpoint_only_when_it_is_not_the_default(endpoint: str, expected: str) -> None:
    assert crictl(endpoint) == expected
