"""What ``nodedoc lab up`` prints to try the lab and to stop it runs as printed, from a shell, for a lab
directory whose name a shell would split (a space, a quote)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import REPO, skip_or_fail

from tui.lab import Lab

#: The printed lines start with ``nodedoc``: here that is this checkout's.
NODEDOC = f'nodedoc() {{ {sys.executable} -m tui.cli "$@"; }}\n'


def test_the_printed_try_and_stop_lines_run_as_printed() -> None:
    if Lab.missing_requirements():
        skip_or_fail("the lab cannot start here")
    directory = Path(tempfile.mkdtemp(prefix="nd hint '", dir="/tmp"))
    shutil.rmtree(directory)
    cli = [sys.executable, "-m", "tui.cli", "lab"]
    up = subprocess.run(
        [*cli, "up", str(directory), "--pods", "1"], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    try:
        assert up.returncode == 0, up.stderr
        lines = {line.partition(": ")[0]: line.partition(": ")[2] for line in up.stdout.splitlines()}
        tried = subprocess.run(
            ["bash", "-c", NODEDOC + lines["try"]], capture_output=True, text=True, timeout=120, cwd=REPO
        )
        assert tried.returncode == 0, tried.stderr
        assert "lab-pod-0" in tried.stdout and "Ready" in tried.stdout
        stopped = subprocess.run(
            ["bash", "-c", NODEDOC + lines["stop"]], capture_output=True, text=True, timeout=300, cwd=REPO
        )
        assert stopped.returncode == 0, stopped.stderr
        assert not directory.exists()
    finally:
        if directory.exists():
            subprocess.run([*cli, "down", str(directory)], capture_output=True, timeout=300, cwd=REPO)
