"""The real app in a real terminal (tmux) against the lab: press p, read the screen, find every pod."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from tmux import capture, start


@pytest.mark.every_runtime
@pytest.mark.lab
def test_pods_on_a_real_terminal(lab) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    session = f"nodedoc-test-{os.getpid()}"
    command = (
        f"env -u COLUMNS -u LINES {sys.executable} -m tui.cli --endpoint {lab.endpoint} --containerd-root {lab.root} "
        f"--containerd-state {lab.state}"
    )
    start(session, command, 120, 40)
    try:
        deadline = time.monotonic() + 15
        while "● connected" not in capture(session) or "RuntimeReady" not in capture(session):
            assert time.monotonic() < deadline, f"the dashboard never connected:\n{capture(session)}"
            time.sleep(0.2)
        subprocess.run(["tmux", "send-keys", "-t", session, "p"], check=True)
        wanted = [p.name for p in lab.pods] + [p.ip for p in lab.pods]
        deadline = time.monotonic() + 10
        while not all(w in capture(session) for w in wanted):
            assert time.monotonic() < deadline, (
                f"missing {[w for w in wanted if w not in capture(session)]}:\n{capture(session)}"
            )
            time.sleep(0.2)
        assert "Traceback" not in capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
