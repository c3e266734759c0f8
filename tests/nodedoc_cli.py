"""Run the ``nodedoc`` command line as a user would: a fresh process, no terminal, output captured."""

from __future__ import annotations

import subprocess
import sys


def nodedoc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
