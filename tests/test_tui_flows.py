"""The troubleshooter's main flows driven with Textual's Pilot: on the real lab node where the flow reads
the node, on a recording where it needs a state the lab cannot hold for a test (a hung runc init)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from recorded_session import RecordedSession
from rich.console import Console
from textual.widgets import DataTable, ProgressBar, Static
from textual.worker import WorkerFailed
from tui_snapshot import FIXTURES, recorded_app

from probes.node import NodeContext
from screens.findings import FindingsScreen
from screens.pod_detail import PodDetailScreen
from screens.pods import PodsScreen
from screens.snapshots import SnapshotsScreen
from tui.app import NodedocApp
from tui.lab.record import ReplayServer, load_recording
from tui.session import NodeSession


def sync(test):
    """Run an async test body on its own event loop (the suite has no asyncio plugin)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


async def until(pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        with contextlib.suppress(WorkerFailed):
            await pilot.pause(0.05)


def text_of(app, selector: str) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, file=io.StringIO(), record=True, color_system=None)
    console.print(app.screen.query_one(selector, Static).content)
    return console.export_text()


def lab_app(lab, heartbeat: float = 0) -> NodedocApp:
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    return NodedocApp(NodeSession(node), heartbeat=heartbeat)


@pytest.mark.every_runtime
@pytest.mark.lab
@sync
async def test_dashboard_pods_filter_detail_back(lab) -> None:
    app = lab_app(lab)
    async with app.run_test(size=(120, 40)) as pilot:
        version = lab.build.upstream_version
        await until(pilot, lambda: version in text_of(app, "#runtime-panel"), what="runtime on the dashboard")
        await until(pilot, lambda: app.runtime_state == "connected", what="the node bar")
        await pilot.press("p")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == len(lab.pods), what="the lab's pods in the table")
        victim = lab.pods[1]
        await pilot.press("slash", *victim.name)
        await until(pilot, lambda: table.row_count == 1, what="the filter")
        assert str(table.get_row_at(0)[1]) == victim.name
        await pilot.press("enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, PodDetailScreen))
        assert app.screen.view.id == victim.id
        assert app.screen.view.pid and app.screen.view.netns_path  # read on opening: the list has no pids
        await until(pilot, lambda: "VERDICT" in text_of(app, "#pod-network"), what="the network comparison")
        assert victim.ip in text_of(app, "#pod-network") and "MISSING" not in text_of(app, "#pod-network")
        await pilot.press("escape")
        assert isinstance(app.screen, PodsScreen)
        assert table.row_count == 1  # the filter is kept on the way back


@sync
async def test_findings_detail_and_copy() -> None:
    app = recorded_app("blocked-init")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f")
        screen = app.screen
        assert isinstance(screen, FindingsScreen)
        await until(pilot, lambda: screen.selected is not None, what="a selected finding")
        assert screen.selected.id == "runc.init-blocked"
        detail = text_of(app, "#finding-detail")
        assert "Evidence" in detail and "anon_pipe_write" in detail
        await pilot.press("c")
        assert f"kill -9 {screen.selected.subject['pid']}" in app.clipboard


@pytest.mark.every_runtime
@pytest.mark.lab
@sync
async def test_verify_with_progress(lab) -> None:
    app = lab_app(lab)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, SnapshotsScreen)
        await until(pilot, lambda: bool(screen.catalog.snapshots), what="the snapshot catalog")
        committed = [s.id for s in screen.catalog.snapshots if s.kind == "committed"]
        seen: list[tuple[int, int]] = []
        original = screen._progress
        screen._progress = lambda done, total: (seen.append((done, total)), original(done, total))  # type: ignore[method-assign]
        await pilot.press("V")
        await until(pilot, lambda: not screen.verifying, what="the verification to end")
        assert sorted(screen.verified) == sorted(committed)
        assert {r.status for r in screen.verified.values()} == {"ok"}
        assert seen and seen[-1][0] == seen[-1][1] > 0  # the bar reached the blobs' total size
        bar = screen.query_one(ProgressBar)
        assert bar.progress == bar.total
        assert screen.query_one("#verify-bar").has_class("-hidden")  # hidden again once done


@sync
async def test_verify_cancelled() -> None:
    session = RecordedSession.load(FIXTURES / "session-damaged-snapshot.json", latency=0.5)
    app = NodedocApp(session, heartbeat=0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        screen = app.screen
        await until(pilot, lambda: bool(screen.catalog.snapshots), what="the snapshot catalog")
        await pilot.press("V")
        await pilot.press("c")
        await until(pilot, lambda: not screen.verifying, what="the cancel")
        assert screen.verified == {}
        assert screen.query_one("#verify-bar").has_class("-hidden")


@sync
async def test_runtime_lost_and_regained(tmp_path: Path) -> None:
    recording = load_recording(FIXTURES / "lab-recording.json")
    sock = tmp_path / "cri.sock"
    server = ReplayServer(recording, sock).__enter__()
    app = NodedocApp(NodeSession(NodeContext(endpoint=f"unix://{sock}", timeout=1.0)), heartbeat=0.2)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app.runtime_state == "connected", what="connected")
            server.__exit__(None, None, None)
            sock.unlink(missing_ok=True)
            await until(pilot, lambda: app.runtime_state == "unreachable", what="unreachable")
            assert app.runtime_error
            assert "UNREACHABLE" in text_of(app, "#node-bar")
            assert not app.screen.query_one("#unreachable-panel").has_class("-hidden")
            server = ReplayServer(recording, sock).__enter__()
            await until(pilot, lambda: app.runtime_state == "connected", what="reconnected")
            assert app.screen.query_one("#unreachable-panel").has_class("-hidden")
            await pilot.press("p")
            table = app.screen.query_one(DataTable)
            await until(pilot, lambda: table.row_count == 3, what="pods after reconnecting")
    finally:
        server.__exit__(None, None, None)
