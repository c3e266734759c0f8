"""``nodedoc.pyz`` on the node's own Python: every CPython 3.9 to 3.13 these machines carry (under pyenv)
runs the one file against the lab — ``pods``, ``check``, and the troubleshooter in a real terminal.

Each interpreter runs with ``-S`` (no site-packages): what it imports comes from the archive alone, as on
a node that has a bare python3 and no route to a package index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, skip_or_fail
from tmux import capture, start

from tui.lab.pipe_hog import soft_limit_held

pytestmark = pytest.mark.lab

PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")


def interpreter(minor: str) -> Path:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted(root.glob(f"{minor}.*/bin/python{minor}"))
    if not found:
        skip_or_fail(f"no CPython {minor} under {root} (these machines carry 3.9 to 3.13 under pyenv)")
    return found[-1]


@pytest.fixture(scope="module")
def pyz(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pyz") / "nodedoc.pyz"
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/build-zipapp"), "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr
    return out


def run_pyz(minor: str, pyz: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(interpreter(minor)), "-S", str(pyz), *args], capture_output=True, text=True, timeout=300
    )


def node(lab) -> list[str]:
    return [
        "--endpoint",
        lab.endpoint,
        "--containerd-root",
        str(lab.root),
        "--containerd-state",
        str(lab.state),
    ]


def test_archive_carries_each_interpreter_and_machine(pyz) -> None:
    with zipfile.ZipFile(pyz) as zf:
        names = zf.namelist()
    tags = {n.split("/")[1] for n in names if n.startswith("_native/") and n.count("/") > 2}
    wanted = {f"cp{m.replace('.', '')}-{arch}" for m in PYTHONS for arch in ("x86_64", "aarch64")}
    assert tags == wanted
    for tag in wanted:
        assert any(n.startswith(f"_native/{tag}/grpc/_cython/cygrpc.") for n in names), tag
    assert "probes/knowledge/data/known_issues.toml" in names and "tui/nodedoc.tcss" in names
    assert pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n") and os.access(pyz, os.X_OK)


@pytest.mark.parametrize("minor", PYTHONS)
def test_pods_and_check_match_the_installed_nodedoc(lab, pyz, minor) -> None:
    pods = run_pyz(minor, pyz, *node(lab), "pods", "-o", "json")
    assert pods.returncode == 0, pods.stderr
    listed = {(p["id"], tuple(p["ips"])) for p in json.loads(pods.stdout)["items"]}
    assert {(p.id, (p.ip,)) for p in lab.pods} <= listed

    with soft_limit_held():  # no other test's shrunken pipes between the two checks
        check = run_pyz(minor, pyz, *node(lab), "check", "--format", "json")
        installed = subprocess.run(
            [sys.executable, "-m", "tui.cli", *node(lab), "check", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert check.returncode == installed.returncode, check.stderr
    ours, theirs = json.loads(check.stdout), json.loads(installed.stdout)
    assert [(p["id"], p["status"]) for p in ours["probes"]] == [
        (p["id"], p["status"]) for p in theirs["probes"]
    ]
    assert sorted(f["id"] for f in ours["findings"]) == sorted(f["id"] for f in theirs["findings"])


@pytest.mark.parametrize("minor", PYTHONS)
def test_troubleshooter_on_a_real_terminal(lab, pyz, minor) -> None:
    if shutil.which("tmux") is None:
        skip_or_fail("tmux is not installed (apt-get install tmux)")
    session = f"nodedoc-pyz-{minor.replace('.', '')}-{os.getpid()}"  # a dot would name a window
    command = " ".join(
        ["env", "-u", "COLUMNS", "-u", "LINES", str(interpreter(minor)), "-S", str(pyz), *node(lab)]
    )
    start(session, command, 120, 40)
    try:
        deadline = time.monotonic() + 60  # the first start compiles nodedoc from the archive's sources
        while "RuntimeReady" not in capture(session):
            assert time.monotonic() < deadline, f"the dashboard never showed the runtime:\n{capture(session)}"
            time.sleep(0.3)
        subprocess.run(["tmux", "send-keys", "-t", session, "p"], check=True)
        wanted = [p.name for p in lab.pods]
        deadline = time.monotonic() + 20
        while not all(w in capture(session) for w in wanted):
            assert time.monotonic() < deadline, f"pods missing from the table:\n{capture(session)}"
            time.sleep(0.3)
        assert "Traceback" not in capture(session)
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 10
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, f"q did not quit:\n{capture(session)}"
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_an_interpreter_it_was_not_built_for_gets_one_line(pyz) -> None:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    older = sorted(root.glob("3.8.*/bin/python3.8"))
    if not older:
        skip_or_fail("no CPython 3.8 under pyenv to try the refusal with")
    proc = subprocess.run(
        [str(older[-1]), "-S", str(pyz), "pods"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3
    [line] = proc.stderr.strip().splitlines()
    assert "no compiled parts for CPython 3.8" in line and "cp39-x86_64" in line
