"""Running nodedoc's printed fixes as printed: the steps come from `nodedoc check --format json`, never retyped.

A finding's step names the lab test that proves it (``proven``); that test runs exactly those steps with
``sh -c`` and shows the node recovered. Every other step with a command must say it was not tested on a
node, so nothing unproven reads as proven.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probes.api import NOT_TESTED

REPO = Path(__file__).resolve().parent.parent


def proof_id(request: pytest.FixtureRequest) -> str:
    """This test as a ``proven`` value names it: ``tests/FILE.py::NAME`` (without parameters)."""
    return f"{Path(request.node.path).relative_to(REPO)}::{request.node.originalname}"


def check(*args: str, env: dict[str, str] | None = None) -> tuple[int, list[dict]]:
    """`nodedoc check --format json ARGS` as the on-call engineer runs it: exit code and findings."""
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "check", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return proc.returncode, json.loads(proc.stdout)["findings"]


def problems(findings: list[dict]) -> list[dict]:
    return [f for f in findings if f["severity"] not in ("ok", "info")]


def steps_proven_by(finding: dict, test: str) -> list[dict]:
    """The finding's steps this test proves, in printed order. Each other step with a command is either
    proven by another test or says it was not tested on a node."""
    mine = [s for s in finding["remediation"] if s["proven"] == test]
    assert mine, f"no step of {finding['id']} names {test}: {finding['remediation']}"
    for step in finding["remediation"]:
        if step["command"] and not step["proven"]:
            assert NOT_TESTED in step["text"], f"unproven step reads as proven: {step}"
    return mine


def run_printed(step: dict, timeout: float = 60) -> str:
    """Run one printed step's command exactly as printed, as root; its output. ``nodedoc`` in a command is
    the one installed beside the Python running the tests."""
    assert step["command"] and "<" not in step["command"].replace("<<'EOF'", ""), step["command"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    proc = subprocess.run(
        ["sh", "-c", step["command"]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PATH": path},
    )
    assert proc.returncode == 0, f"{step['command']!r} failed ({proc.returncode}): {proc.stderr}"
    return proc.stdout
