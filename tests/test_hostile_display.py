"""Strings planted on the real lab by a hostile pod and image reach no terminal or report unescaped.

The lab's containerd takes all of these as they are: an image tagged with an escape sequence, a pod and
a container whose names hold one, labels and annotations with an OSC title sequence and a bidi override,
an env value that asks the terminal to write the clipboard (OSC 52), and files in a committed layer
snapshot and a container's writable snapshot named with ESC, BEL, a bidi override, a newline, Rich markup
and bytes that are not UTF-8. Every output format and every screen must show them as visible escapes;
JSON must keep them exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.widgets import DataTable, Tree

from probes.readers.cri import cri_pb2 as pb
from probes.readers.disk.containerd_store import ContainerdDisk
from screens.findings import FindingsScreen
from screens.pod_detail import PodDetailScreen
from screens.snapshots import SnapshotsScreen
from tui.lab.image import IMAGE_NAME

HOSTILE_IMAGE = "localhost/evil\x1b[31mred:lab"
POD_NAME = "evil\x1b[31mRED"
CONTAINER_NAME = "app\x1b[2J[reverse]FAKE-OK"
LABEL_VALUE = "\x1b]0;owned\x07"
ANNOTATION_VALUE = "gnp\u202eexe.sh"
ENV_VALUE = "\x1b]52;c;ZXZpbA==\x07"
#: File names planted in both snapshots (bytes: one is not UTF-8).
FILE_NAMES = [
    b"esc\x1b[31mRED",
    "bidi\u202etxt.exe".encode(),
    b"bell\x07ring",
    b"new\nline",
    b"[reverse]FAKE-OK",
    b"latin\xe9",
]
#: How each shows, escaped.
SHOWN = [
    "esc\\x1b[31mRED",
    "bidi\\u202etxt.exe",
    "bell\\x07ring",
    "new\\nline",
    "[reverse]FAKE-OK",
    "latin\\xe9",
    "evil\\x1b[31mRED",
]
#: Nothing a terminal would act on: C0 (but newline and tab), DEL, C1, bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@dataclass
class Planted:
    lab: object
    sandbox_id: str
    container_id: str
    committed_fs: Path
    active_fs: Path


def _ctr(lab, *args: str) -> None:
    subprocess.run(["ctr", "-a", str(lab.socket), "-n", "k8s.io", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def planted(lab) -> Iterator[Planted]:
    _ctr(lab, "images", "tag", IMAGE_NAME, HOSTILE_IMAGE)
    with lab.client(timeout=60) as client:
        config = lab.sandbox_config(POD_NAME, "hostile-uid")
        config.labels["hostile"] = LABEL_VALUE
        config.annotations["bidi"] = ANNOTATION_VALUE
        (lab.dir / "logs" / POD_NAME).mkdir(parents=True, exist_ok=True)
        sandbox_id = client.run_pod_sandbox(config)
        cconfig = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=CONTAINER_NAME, attempt=0),
            image=pb.ImageSpec(
                image=IMAGE_NAME
            ),  # CRI resolves only a well-formed name; the tag shows in snapshots
            envs=[pb.KeyValue(key="HOSTILE", value=ENV_VALUE.encode())],
            log_path="app.log",
            linux=pb.LinuxContainerConfig(),
        )
        container_id = client.create_container(sandbox_id, cconfig, config)
        client.start_container(container_id)
    disk = ContainerdDisk(lab.root, None)
    active = next(s for s in disk.snapshots() if s.key.endswith("/" + container_id))
    committed = disk.snapshot(active.parent_id)
    made: list[bytes] = []
    for fs in (committed.fs_dir, active.fs_dir):
        for name in FILE_NAMES:
            path = os.path.join(os.fsencode(fs), name)
            Path(os.fsdecode(path)).write_text("planted\n")
            made.append(path)
    os.symlink("/", active.fs_dir / "escape")  # browsing must not follow it to the host's root
    os.mkfifo(active.fs_dir / "fifo")  # nor open it (that would block)
    made += [os.fsencode(active.fs_dir / "escape"), os.fsencode(active.fs_dir / "fifo")]
    try:
        yield Planted(lab, sandbox_id, container_id, committed.fs_dir, active.fs_dir)
    finally:
        for path in made:
            with contextlib.suppress(OSError):
                os.unlink(path)
        with lab.client(timeout=60) as client:
            client.stop_pod_sandbox(sandbox_id)
            client.remove_pod_sandbox(sandbox_id)
        _ctr(lab, "images", "rm", HOSTILE_IMAGE)


def nodedoc(lab, *args: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            *args,
            "--endpoint",
            lab.endpoint,
            "--containerd-root",
            str(lab.root),
            "--containerd-state",
            str(lab.state),
        ],
        capture_output=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode in (0, 1, 2, 4), done.stderr.decode(errors="replace")[-2000:]
    return done.stdout.decode("utf-8")


def assert_inert(text: str, expected: list[str], where: str) -> None:
    raw = RAW.search(text)
    assert raw is None, (
        f"{where}: raw {raw.group()!r} at …{text[max(0, raw.start() - 40) : raw.end() + 40]!r}"
    )
    text = text.replace("\\\\", "\\")  # evidence lists are JSON in Markdown: their backslashes doubled
    for shown in expected:
        assert shown in text, f"{where}: {shown!r} not shown"


@pytest.mark.lab
@pytest.mark.parametrize("fmt", ["text", "md"])
def test_check_shows_planted_names_escaped(planted: Planted, fmt: str) -> None:
    out = nodedoc(planted.lab, "check", "--probe", "snapshots", "--format", fmt)
    assert_inert(
        out, SHOWN[:6] if fmt == "md" else ["localhost/evil\\x1b[31mred:lab"], f"check --format {fmt}"
    )


@pytest.mark.lab
def test_check_json_keeps_names_exact(planted: Planted) -> None:
    doc = json.loads(nodedoc(planted.lab, "check", "--probe", "snapshots", "--format", "json"))
    changed = [
        p for f in doc["findings"] if f["id"] == "snapshot.files-changed" for p in f["evidence"]["changed"]
    ]
    assert any("esc\x1b[31mRED" in p for p in changed)  # exact, as the node has it
    assert any("bidi\u202etxt.exe" in p for p in changed)


@pytest.mark.lab
@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_shows_planted_strings_escaped(planted: Planted, fmt: str) -> None:
    out = nodedoc(planted.lab, "report", "--format", fmt, "--no-redact", "--probe", "snapshots")
    text = html.unescape(out) if fmt == "html" else out
    env_shown = "\\x1b]52;c;ZXZpbA==\\x07"
    container_shown = "app\\x1b[2J[reverse]FAKE-OK"
    assert_inert(text, [*SHOWN, env_shown, container_shown], f"report --format {fmt}")
    if fmt == "html":
        assert "<reverse>" not in out and "&lt;" not in "[reverse]"  # markup stays text


@pytest.mark.lab
def test_pods_and_snapshots_commands(planted: Planted) -> None:
    assert_inert(nodedoc(planted.lab, "pods", "-o", "wide"), ["evil\\x1b[31mRED"], "pods")
    out = nodedoc(planted.lab, "snapshots", "--verify")
    assert_inert(out, ["localhost/evil\\x1b[31mred:lab", *SHOWN[:6]], "snapshots --verify")
    assert_inert(nodedoc(planted.lab, "snapshots", "-o", "tree"), ["evil\\x1b[31mred"], "snapshots tree")


# -- the troubleshooter --------------------------------------------------------------------------------


def screen_text(app) -> str:
    """Everything the screen shows, as text (from the SVG screenshot Textual renders of it)."""
    svg = app.export_screenshot()
    body = re.sub(r"<style.*?</style>", "", svg, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", body)).replace("\xa0", " ")


@pytest.mark.lab
def test_tui_screens_show_planted_strings_escaped(planted: Planted) -> None:
    asyncio.run(_drive_tui(planted))


async def _drive_tui(planted: Planted) -> None:
    from test_tui_flows import lab_app, text_of, until

    lab = planted.lab
    app = lab_app(lab)
    async with app.run_test(size=(200, 60)) as pilot:
        await until(pilot, lambda: app.session.last_results, timeout=120, what="probe results")
        await pilot.pause(0.2)
        assert_inert(screen_text(app), [], "dashboard")
        await pilot.press("p")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count >= len(lab.pods) + 1, what="pods")
        await pilot.pause(0.2)
        assert_inert(screen_text(app), ["evil\\x1b[31mRED"], "pods screen")
        row = table.get_row(planted.sandbox_id)
        assert row[1].plain == "evil\\x1b[31mRED"
        table.move_cursor(row=table.get_row_index(planted.sandbox_id))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PodDetailScreen), what="pod detail")
        containers = app.screen.query_one("#pod-containers", DataTable)
        await until(pilot, lambda: containers.row_count == 1 and "app" in str(containers.get_row_at(0)[0]))
        await until(pilot, lambda: "Shim" in screen_text(app) and "reading" not in text_of(app, "#pod-procs"))
        assert_inert(screen_text(app), ["evil\\x1b[31mRED", "app\\x1b[2J[reverse]FAKE-OK"], "pod detail")
        assert containers.get_row_at(0)[0].plain == "app\\x1b[2J[reverse]FAKE-OK"  # markup kept literal
        verbose = text_of(app, "#pod-verbose-json")
        assert "\\u001b]0;owned\\u0007" in verbose and "\\u202e" in verbose and not RAW.search(verbose)

        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, SnapshotsScreen)
        await until(pilot, lambda: bool(screen.catalog.snapshots), what="the snapshot catalog")
        active_id = _snapshot_id(planted.active_fs)
        tree = screen.query_one(Tree)
        await pilot.pause(0.3)
        leaf = next(n for n in _tree_nodes(tree.root) if n.data == active_id)
        tree.move_cursor(leaf)  # as the operator would: highlight the container's snapshot
        files = screen.query_one("#snap-files", DataTable)
        await until(
            pilot,
            lambda: f"#{active_id}:/" in str(files.border_title) and files.row_count >= len(FILE_NAMES),
            what="the container's files",
        )
        names = {files.get_row_at(i)[1].plain for i in range(files.row_count)}
        assert set(SHOWN[:6]) <= names, names
        assert "escape" in names and "fifo" in names  # listed (as a link and a FIFO), not entered or opened
        screen._select(active_id, "/escape")  # as if a path led through the link
        await until(pilot, lambda: any("symlink" in n.message for n in app._notifications), what="refusal")
        assert "/escape" in next(n.message for n in app._notifications if "symlink" in n.message)
        shown_now = {str(files.get_row_at(i)[1]) for i in range(files.row_count)}
        assert not shown_now & {"usr/", "var/", "work/"} and ":/escape" not in str(files.border_title)
        screen._select(active_id)
        assert_inert(screen_text(app), ["evil\\x1b[31mred"], "snapshots screen")

        await pilot.press("f")
        findings = app.screen
        assert isinstance(findings, FindingsScreen)
        await until(pilot, lambda: findings.selected is not None, what="a finding")
        changed = next(
            f for r in app.session.last_results for f in r.findings if f.id == "snapshot.files-changed"
        )
        findings._select(changed)
        await pilot.pause(0.2)
        detail = text_of(app, "#finding-detail")
        assert_inert(detail, SHOWN[:6], "finding detail")
        await pilot.press("c")
        assert app.clipboard and not RAW.search(app.clipboard)
        if "evil" in app.clipboard:
            assert "evil\\x1b[31mred" in app.clipboard

        await pilot.press("x")
        await pilot.pause(0.5)
        assert_inert(screen_text(app), [], "processes screen")
        app.notify(f"could not read {POD_NAME}", title=LABEL_VALUE)
        await pilot.pause(0.2)
        shown = [f"{n.title} {n.message}" for n in app._notifications]  # what the toasts show
        assert_inert(
            " ".join(shown), ["could not read evil\\x1b[31mRED", "\\x1b]0;owned\\x07"], "notification"
        )


def _tree_nodes(node):
    yield node
    for child in node.children:
        yield from _tree_nodes(child)


def _snapshot_id(fs_dir: Path) -> int:
    return int(fs_dir.parent.name)
