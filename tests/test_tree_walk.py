"""Snapshot trees are written by image authors and containers: browsing and verifying them never follows
a symlink out, never opens a FIFO, socket or device, bounds depth and size, and keeps odd names."""

from __future__ import annotations

import io
import os
import signal
import socket
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.readers.disk import layer_verify
from probes.readers.disk.layer_verify import (
    PACE_EVERY,
    PathThroughSymlink,
    TreeTooLarge,
    list_dir,
    scan_tree,
    verify_layer,
)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Opening a FIFO blocks: fail after 20 s instead of hanging the suite."""

    def stop(*_: object) -> None:
        raise TimeoutError("the walker blocked (did it open a FIFO?)")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def hostile_tree(tmp_path: Path) -> Path:
    """A snapshot fs as a hostile image could leave it."""
    fs = tmp_path / "fs"
    (fs / "etc").mkdir(parents=True)
    (fs / "etc" / "hostname").write_text("box\n")
    os.symlink("/", fs / "escape")
    os.symlink("/etc", fs / "etc-host")
    os.symlink("../../../../..", fs / "etc" / "up")
    os.symlink("loop", fs / "loop")
    os.symlink("b", fs / "a")
    os.symlink("a", fs / "b")
    os.mkfifo(fs / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(fs / "sock"))
    sock.close()
    os.mknod(fs / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    with open(os.path.join(os.fsencode(fs), b"caf\xe9"), "w") as f:
        f.write("latin-1 name\n")
    return fs


def test_listing_shows_links_and_specials_without_opening_or_following(hostile_tree: Path) -> None:
    entries = {e.name: e for e in list_dir(hostile_tree, "/")}
    assert entries["escape"].type == "symlink" and entries["escape"].link == "/"
    assert {entries[n].type for n in ("pipe", "sock", "null")} == {"fifo", "socket", "char"}
    assert entries["loop"].type == "symlink"
    assert "caf\udce9" in entries  # the byte kept (shown as \xe9 by the display)
    assert [e.name for e in list_dir(hostile_tree, "/etc")] == ["hostname", "up"]


@pytest.mark.parametrize(
    "path", ["/escape", "/escape/etc", "/etc-host", "/etc/up", "/loop", "/a", "/pipe", "/.."]
)
def test_browsing_refuses_a_path_through_a_symlink_or_special(hostile_tree: Path, path: str) -> None:
    with pytest.raises(PathThroughSymlink) as err:
        list_dir(hostile_tree, path)
    assert "does not" in str(err.value)
    if path != "/..":
        assert path.split("/")[1] in str(err.value)


def test_browsing_a_missing_path_is_empty(hostile_tree: Path) -> None:
    assert list_dir(hostile_tree, "/nope/deeper") == []


def test_scan_never_leaves_the_tree(hostile_tree: Path) -> None:
    seen = scan_tree(hostile_tree)
    assert set(seen) == {
        "etc",
        "etc/hostname",
        "etc/up",
        "escape",
        "etc-host",
        "loop",
        "a",
        "b",
        "pipe",
        "sock",
        "null",
        "caf\udce9",
    }
    assert seen["escape"].link == "/" and seen["pipe"].type == "fifo"


def test_verify_compares_specials_and_links_without_touching_them(hostile_tree: Path, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, link in (
            ("escape", tarfile.SYMTYPE, "/"),
            ("pipe", tarfile.FIFOTYPE, ""),
            ("etc", tarfile.DIRTYPE, ""),
        ):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
            tar.addfile(info)
    blob = tmp_path / "blob"
    blob.write_bytes(buf.getvalue())
    check = verify_layer(blob, hostile_tree)
    assert not check.missing and not check.changed  # the link and the FIFO match what the layer says
    assert {d.path for d in check.extra} >= {"/sock", "/null", "/caf\udce9"}


def test_deep_tree_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    fs = tmp_path / "fs"
    deep = os.fsencode(fs)
    os.makedirs(deep)
    fd = os.open(deep, os.O_RDONLY)
    try:
        for _ in range(layer_verify.MAX_TREE_DEPTH + 5):  # relative, so no path grows past PATH_MAX
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
    with pytest.raises(TreeTooLarge, match=f"more than {layer_verify.MAX_TREE_DEPTH} directories deep"):
        scan_tree(fs)
    blob = tmp_path / "blob"
    blob.write_bytes(b"\0" * 1024)
    with pytest.raises(TreeTooLarge):
        verify_layer(blob, fs)


def test_too_many_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = tmp_path / "fs"
    fs.mkdir()
    for i in range(30):
        (fs / f"f{i:02}").write_text("")
    monkeypatch.setattr(layer_verify, "MAX_TREE_ENTRIES", 20)
    monkeypatch.setattr(layer_verify, "MAX_LISTED_ENTRIES", 10)
    with pytest.raises(TreeTooLarge, match="more than 20 entries"):
        scan_tree(fs)
    listed = list_dir(fs, "/")
    assert len(listed) == 11 and listed[-1].type == "truncated" and "20 more entries" in listed[-1].name


def test_the_walk_calls_its_pace_and_finds_the_same(tmp_path: Path) -> None:
    """The troubleshooter's pause reaches the tree walk every PACE_EVERY entries; waiting changes nothing found."""
    for d in range(3):
        (tmp_path / f"d{d}").mkdir()
        for i in range(700):
            (tmp_path / f"d{d}" / f"f{i}").write_bytes(b"x" * (i % 7))
    calls = []
    paced = scan_tree(tmp_path, pace=lambda: calls.append(1))
    assert paced == scan_tree(tmp_path)
    assert len(paced) == 3 + 3 * 700
    assert len(calls) == len(paced) // PACE_EVERY
