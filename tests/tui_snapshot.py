"""Screen snapshots for nodedoc: SVGs in <repo>/snapshots/<test module>/, drawn from recorded node data.

conftest.py imports ``snapshot_dir`` (autouse: every snap_compare writes under snapshots/) and ``compare``
(memray's pattern: one fixture that injects a recording, fixes the clock, turns off cursor blink and
animations, waits for workers and sets the terminal size).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot
from recorded_session import RecordedSession
from syrupy.location import PyTestLocation
from textual.worker import WorkerFailed

from tui.app import NodedocApp

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIZE = (100, 30)


class RepoSVGImageExtension(pytest_textual_snapshot.SVGImageExtension):
    """pytest-textual-snapshot's SVG extension, storing under the repository's top-level snapshots/."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(REPO / "snapshots" / Path(test_location.filepath).stem)


@pytest.fixture(autouse=True)
def snapshot_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", RepoSVGImageExtension)
    yield


def recorded_app(state: str, **kw: Any) -> NodedocApp:
    """The app on a recording (tests/fixtures/session-<state>.json), no heartbeat, clock fixed."""
    return NodedocApp(RecordedSession.load(FIXTURES / f"session-{state}.json", **kw), heartbeat=0)


async def settle(pilot: Any) -> None:
    """Let every worker finish and its messages land."""
    for _ in range(3):
        with contextlib.suppress(WorkerFailed):  # a failed worker is the app's to show, not the test's
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()


@pytest.fixture
def compare(snap_compare: Callable[..., bool]) -> Callable[..., bool]:
    def run(
        state: str,
        press: Iterable[str] = (),
        size: tuple[int, int] = SIZE,
        then: Callable[[Any], Awaitable[None]] | None = None,
    ) -> bool:
        app = recorded_app(state)

        async def before(pilot: Any) -> None:
            pilot.app.animation_level = "none"
            await settle(pilot)
            for key in press:
                await pilot.press(key)
                await settle(pilot)
            if then is not None:
                await then(pilot)
                await settle(pilot)
            for widget in pilot.app.screen.query("Input"):
                widget.cursor_blink = False
            await pilot.pause()

        return snap_compare(app, terminal_size=size, run_before=before)

    return run
