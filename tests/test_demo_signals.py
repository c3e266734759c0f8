"""``nodedoc demo --fault runc-init`` ended by a signal puts back what it changed on the machine.

The fault lowers the machine-wide fs.pipe-user-pages-soft while the demo runs. Closing the demo's terminal
(tmux kill-session: SIGHUP) or asking it to stop (SIGTERM) must end it as q does: the limit back to what
it was, the stand-in runc init gone, the lab taken down. Needs root, gcc, tmux and the lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_or_fail
from fixtures.pipe_hog import SOFT_LIMIT, soft_limit_held
from test_wheel_demo import labs_running_in
from tmux import capture, start, wait_for

from tui.lab import Lab
from tui.lab.pipe_hog import SOFT_LIMIT_LOCK

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.lab, pytest.mark.root]


def limit_now() -> str:
    """The limit as it stands while nobody who changes it holds it (the demo holds it while it runs)."""
    with soft_limit_held():
        return SOFT_LIMIT.read_text().strip()


def demo_pid(directory: Path) -> int | None:
    """The demo's own process: the Python running ``demo ... --dir DIRECTORY``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                args = (entry / "cmdline").read_bytes().split(b"\0")
                if b"demo" in args and str(directory).encode() in args and b"tui.cli" in args:
                    return int(entry.name)
    return None


def descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                children = {int(c) for c in (task / "children").read_text().split()}
                todo += children - found
                found |= children
    return found


@contextlib.contextmanager
def demo_in_tmux(directory: Path, session: str) -> Iterator[int]:
    """The runc-init demo from this tree in a tmux pane, its dashboard showing the hung init; its pid."""
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed (apt-get install tmux)")
    if shutil.which("gcc") is None:
        skip_or_fail("gcc is needed to build the stand-in runc init")
    missing = Lab.missing_requirements()
    if missing:
        skip_or_fail("the demo cannot start a lab here: missing " + "; ".join(missing))
    # As tests/test_wheel_demo.py: COLUMNS/LINES from pytest would override the pane's size.
    shell = (
        f"cd / && env -u COLUMNS -u LINES PYTHONPATH={REPO} NODEDOC_RUNC_INIT_THRESHOLD=0.3 "
        f"python3 -m tui.cli demo --fault runc-init --dir {directory}; echo demo-exited-$?; sleep 600"
    )
    start(session, shell, 200, 50)
    try:
        wait_for(session, "hung on a pipe", 180, "the runc-init finding")
        pid = demo_pid(directory)
        assert pid is not None, capture(session)
        yield pid
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if directory.exists():  # the demo did not clean up: do it here, the test fails below
            Lab.down(directory, log=lambda *_: None)


def gone(pid: int, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def its_own(pids: set[int]) -> dict[int, str]:
    """Of the demo's descendants, what it started and must stop: containerd and the stand-in runc (and its
    init), by executable; the shims containerd starts are the lab's to stop, and go as it goes down."""
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            exe = os.readlink(f"/proc/{pid}/exe")
            if exe.endswith("/containerd") or "/nodedoc-hog-" in exe:
                found[pid] = exe
    return found


def still_running(started: dict[int, str], timeout: float = 15) -> dict[int, str]:
    """Those of ``started`` still running (the same pid with the same executable) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p: e for p, e in started.items() if its_own({p}).get(p) == e}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.mark.parametrize("how", ["sighup-terminal-closed", "sigterm"])
def test_signal_ends_the_runc_init_demo_and_restores_the_pipe_limit(how: str) -> None:
    original = limit_now()
    directory = Path(f"/tmp/ndsig-{how[:6]}-{os.getpid()}")
    session = f"nodedoc-signal-{how}-{os.getpid()}"
    restored = None
    try:
        with demo_in_tmux(directory, session) as pid:
            lowered = SOFT_LIMIT.read_text().strip()  # the demo holds the limit: nobody else changes it now
            assert int(lowered) < int(original), (lowered, original)
            started = its_own(descendants(pid))
            assert any(e.endswith("/containerd") for e in started.values()), started
            assert any("/nodedoc-hog-" in e for e in started.values()), started
            if how == "sigterm":
                os.kill(pid, signal.SIGTERM)
                wait_for(session, "demo-exited-143", 90, "the demo's exit on SIGTERM")
                assert "Traceback" not in capture(session), capture(session)
            else:
                subprocess.run(["tmux", "kill-session", "-t", session], check=True)
            assert gone(pid), f"the demo (pid {pid}) is still running after {how}"
            restored = limit_now()
            assert still_running(started) == {}, "the demo left these running"
        assert restored == original, f"fs.pipe-user-pages-soft left at {restored}, was {original}"
        assert not directory.exists() and labs_running_in(directory) == []
    finally:
        put_back(original)


def put_back(original: str) -> None:
    """Never leave the machine's limit lowered, whatever failed: under the same lock as soft_limit_held(),
    which would write back the value it found."""
    with open(SOFT_LIMIT_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if SOFT_LIMIT.read_text().strip() != original:
            SOFT_LIMIT.write_text(original)
