"""The foreground gate (tui/session.py's Foreground): layer verification and every probe's next read behind
the screens pause while the troubleshooter handles a key (and SETTLE_S after its paint), never longer than
BUSY_LIMIT_S after it, and find exactly what they find without pausing (on the real lab); the threads
behind the screens run at a lower priority, the screen's own never."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from tui_snapshot import recorded_app

from probes.node import NodeContext
from probes.readers.disk.catalog import VerifyResult
from probes.registry import run_probes, select
from tui.session import BACKGROUND_NICE, BUSY_LIMIT_S, SETTLE_S, Foreground, NodeSession, in_background


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
    assert done_at and done_at[0] + SETTLE_S * 0.9 <= returned < done_at[0] + BUSY_LIMIT_S / 2
    assert not gate.is_busy()


def test_the_paint_after_an_earlier_key_does_not_end_a_later_keys_wait() -> None:
    gate = Foreground()
    first = gate.busy()
    second = gate.busy()  # the next key, before the first one was painted
    gate.done(first)
    time.sleep(SETTLE_S * 2)
    assert gate.is_busy(), "the first key's paint released the reads while the second key was handled"
    gate.done(second)
    assert gate.is_busy(), "done() released the reads at once: a later paint of the key is not waited for"
    started = time.monotonic()
    gate.pause()
    assert time.monotonic() - started < BUSY_LIMIT_S / 2


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
            await asyncio.sleep(SETTLE_S * 1.5)
            assert not gate.is_busy(), "still busy after the pods screen was painted"
            await pilot.hover("#pod-table")  # a mouse moving changes nothing: nothing waits for it
            assert not gate.is_busy()
            await pilot.click("#pod-table")
            assert marked[-1] and len(marked) >= 2, "a click did not mark the app busy"

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

    # Called from a worker (Textual's are pooled threads): the verification's own thread is lowered, the
    # caller's is left as it was for whatever it runs next.
    seen: list[tuple[int, int]] = []

    def worker() -> None:
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        session.verify(None)
        seen.append((before, os.getpriority(os.PRIO_PROCESS, tid)))

    caller = threading.Thread(target=worker)
    caller.start()
    caller.join()
    assert seen and seen[0][0] == seen[0][1]

    pauses.clear()
    probed = session.probe_results(only=["snapshots"])
    assert pauses, "the snapshots probe's verification never called the pause"
    alone = run_probes(node.fresh(), select(["snapshots"]))
    assert probed[0].status == alone[0].status
    assert [f.to_dict() for f in probed[0].findings] == [f.to_dict() for f in alone[0].findings]


def test_a_probe_waits_for_the_key_before_each_new_read() -> None:
    gate = Foreground()
    node = NodeContext(options={"pace": gate.pause})
    reads: list[float] = []
    gate.busy()
    threading.Timer(0.1, gate.done).start()
    started = time.monotonic()
    node._once("a read", lambda: reads.append(time.monotonic()) or 1)
    assert reads and reads[0] - started >= 0.1, "the read did not wait for the key's paint"
    gate.busy()  # a value already read is handed out at once, busy or not
    again = time.monotonic()
    assert node._once("a read", lambda: 2) == 1
    assert time.monotonic() - again < BUSY_LIMIT_S / 2


def test_threads_behind_the_screens_run_at_a_lower_priority() -> None:
    seen: dict[str, int] = {}

    def background() -> None:
        in_background()
        tid = threading.get_native_id()
        seen["probe"] = os.getpriority(os.PRIO_PROCESS, tid)
        child = threading.Thread(target=lambda: seen.update(child=os.getpriority(os.PRIO_PROCESS, 0)))
        child.start()  # a thread it starts (a blob's reader, inflater) inherits it
        child.join()

    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=background)
    thread.start()
    thread.join()
    assert seen["probe"] >= max(main, BACKGROUND_NICE)
    assert seen["child"] >= max(main, BACKGROUND_NICE)
    in_background()  # on the main thread: the screen's own, never lowered
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


def test_the_layer_verification_waits_for_the_runs_other_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the troubleshooter's probe run, the snapshots probe's verification starts once the other probes
    are done (it is called before any blob is read); each probe's thread runs at the lower priority."""
    from probes import registry
    from probes.api import Probe

    events: list[tuple[str, float]] = []

    class Slow(Probe):
        id, title, description = "slow", "slow", "takes a while"

        def run(self, node: NodeContext) -> list:
            time.sleep(0.3)
            events.append(("slow done", time.monotonic()))
            return []

    class Verifier(Probe):
        id, title, description = "snapshots", "snapshots", "verifies"

        def run(self, node: NodeContext) -> list:
            events.append(("nice", float(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))))
            node.options["before_verifying"]()
            events.append(("verifying", time.monotonic()))
            return []

    refs = [registry.ProbeRef("slow", cls=Slow), registry.ProbeRef("snapshots", cls=Verifier)]
    monkeypatch.setattr(registry, "select", lambda ids=None: refs)
    results = NodeSession(NodeContext()).probe_results()
    assert [r.status.value for r in results] == ["ok", "ok"]
    at = dict(events)
    assert at["verifying"] >= at["slow done"], "the verification started beside the other probe"
    assert at["nice"] >= BACKGROUND_NICE
