"""nodedoc as a user gets it: the wheel built from this tree, installed into a fresh venv (no source tree,
no system site-packages), and every ``nodedoc demo --fault`` opened in a real terminal (tmux). Each shows
its fault's finding on the dashboard, quits with q, and leaves no lab behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_or_fail
from tmux import capture, start, wait_for

from tui.commands.demo import FAULTS
from tui.lab import Lab

REPO = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.lab, pytest.mark.root]

#: What each fault's finding says on the dashboard (the finding titles the probes write).
SHOWS = {
    "missing-pause": "Files missing from localhost/pause:lab",
    "netns-ip": "no longer has its IP",
    "runc-init": "hung on a pipe",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``nodedoc`` from a wheel of this tree in a fresh venv; the venv's bin directory."""
    missing = Lab.missing_requirements()
    if missing:
        skip_or_fail("the demo cannot start a lab here: missing " + "; ".join(missing))
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = work.glob("nodedoc-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True, capture_output=True, timeout=600
    )
    # It runs the installed copy, not this tree's.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import tui; print(tui.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where
    yield venv / "bin"


def labs_running_in(directory: Path) -> list[int]:
    """containerd processes started with a config inside ``directory``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                args = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if args and args[0].endswith(b"containerd") and any(str(directory).encode() in a for a in args):
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize(
    ("fault", "containerd"),
    [*((f, None) for f in FAULTS), ("netns-ip", "2")],
    ids=[*FAULTS, "netns-ip-containerd-2"],
)
def test_demo_fault_from_the_installed_wheel(installed: Path, fault: str, containerd: str | None) -> None:
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed (apt-get install tmux)")
    directory = Path(f"/tmp/ndwheel-{fault}-{os.getpid()}")
    session = f"nodedoc-wheel-{fault}-{os.getpid()}"
    command = f"{installed / 'nodedoc'} demo --fault {fault} --dir {directory}"
    if containerd:
        command += f" --containerd {containerd}"
    # runc init counts as hung after 0.3 s instead of the default; `cd /`: nothing from this tree. A tmux
    # session started from pytest can carry COLUMNS=80 LINES=24, which the App would take over the pane's size.
    shell = f"cd / && env -u COLUMNS -u LINES NODEDOC_RUNC_INIT_THRESHOLD=0.3 {command}; echo demo-exited-$?; sleep 600"
    start(session, shell, 200, 50)
    try:
        wait_for(session, "● connected", 120, "the dashboard")
        if containerd:
            wait_for(session, "containerd 2.", 30, "containerd 2.x in the node bar")
        wait_for(session, SHOWS[fault], 60, f"the {fault} finding")
        assert "Traceback" not in capture(session) and "internal error" not in capture(session)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        wait_for(session, "demo-exited-0", 60, "the demo's exit")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if directory.exists():  # the demo failed to clean up: do it, then fail below
            Lab.down(directory, log=lambda *_: None)
    assert not directory.exists()
    assert labs_running_in(directory) == []
