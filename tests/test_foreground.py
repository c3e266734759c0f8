"""The foreground gate (tui/session.py's Foreground): layer verification behind the screens pauses while
the troubleshooter handles a key, never longer than BUSY_LIMIT_S after it, and finds exactly what it
finds without pausing (on the real lab)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from tui_snapshot import recorded_app

from probes.node import NodeContext
from probes.readers.disk.catalog import VerifyResult
from probes.registry import run_probes, select
from tui.session import BUSY_LIMIT_S, Foreground, NodeSession


def test_pause_waits_until_the_key_is_done() -> None:
    gate = Foreground()
    gate.pause()  # nothing pending: returns at once (a hang here fails the test by its timeout)
    gate.busy()
    done_at: list[float] = []

    def finish() -> None:
        done_at.append(time.monotonic())
        gate.done()

    threading.Timer(0.1, finish).start()
    gate.pause()
    returned = time.monotonic()
    assert done_at and done_at[0] <= returned


def test_pause_gives_up_after_the_limit() -> None:
    gate = Foreground()
    gate.busy()  # and never done: a key whose paint never came round
    started = time.monotonic()
    gate.pause()
    assert time.monotonic() - started >= BUSY_LIMIT_S * 0.9
    again = time.monotonic()
    gate.pause()  # the limit is per key, not per pause
    assert time.monotonic() - again < BUSY_LIMIT_S * 0.9


def test_a_key_marks_the_app_busy_until_it_is_painted() -> None:
    async def run() -> None:
        app = recorded_app("healthy")
        gate = app.session.foreground
        marked: list[bool] = []
        busy = gate.busy
        gate.busy = lambda: (busy(), marked.append(True))[0]  # type: ignore[method-assign]
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await pilot.press("p")
            await pilot.pause()
            assert marked, "the key did not mark the app busy"
            assert gate._done.is_set(), "still busy after the pods screen was painted"

    asyncio.run(run())


def found(result: VerifyResult) -> dict[str, object]:
    """What a verification found (not how long it took)."""
    data = result.to_dict()
    if data["check"]:
        data["check"].pop("seconds")
    return data


@pytest.mark.lab
def test_verification_paused_finds_the_same(lab) -> None:
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    session = NodeSession(node)
    pauses = []
    session.foreground.pause = lambda: pauses.append(1)  # type: ignore[method-assign]
    paused = session.verify(None)
    assert pauses, "verification never called the pause"
    plain = [VerifyResult.of(v) for v in node.fresh().containerd_disk().verify_many()]
    assert [found(r) for r in paused] == [found(r) for r in plain]

    pauses.clear()
    probed = session.probe_results(only=["snapshots"])
    assert pauses, "the snapshots probe's verification never called the pause"
    alone = run_probes(node.fresh(), select(["snapshots"]))
    assert probed[0].status == alone[0].status
    assert [f.to_dict() for f in probed[0].findings] == [f.to_dict() for f in alone[0].findings]
