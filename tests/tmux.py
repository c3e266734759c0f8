"""The real app in a real terminal: a detached tmux session of a given size, read back as text."""

from __future__ import annotations

import subprocess
import time


def start(session: str, command: str, width: int, height: int) -> None:
    """``command`` in a new detached session of ``width`` x ``height`` (resized too: a server already
    running may have sized its first window otherwise). The caller kills the session."""
    size = ["-x", str(width), "-y", str(height)]
    subprocess.run(["tmux", "new-session", "-d", "-s", session, *size, command], check=True)
    subprocess.run(["tmux", "resize-window", "-t", session, *size], capture_output=True)


def capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def wait_for(session: str, text: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while text not in capture(session):
        assert time.monotonic() < deadline, f"{what} never showed:\n{capture(session)}"
        time.sleep(0.3)
