"""Each built-in runbook walked end to end on the real lab: with its fault injected it reaches the right
conclusion, and on the healthy lab it reaches a "no fault found" one. Needs root and the lab."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from fixtures.pipe_hog import built, hung_init, soft_limit_held

from probes.api import Severity
from probes.node import NodeContext
from probes.readers.cri.sandboxes import list_sandboxes
from tui.runbook import BUILTIN_DIR, RunbookSession, load_catalog, walk

pytestmark = [pytest.mark.lab, pytest.mark.root]


def lab_node(lab) -> NodeContext:
    return NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)


def walk_runbook(lab, runbook_id: str, answers: dict[str, str]) -> RunbookSession:
    session = RunbookSession(load_catalog(dirs=[BUILTIN_DIR]).get(runbook_id))
    walk(session, lab_node(lab), answers)
    return session


@contextlib.contextmanager
def pause_removed(lab) -> Iterator[Path]:
    """Move /pause out of the pause image's committed snapshot (seed 002), and back afterwards."""
    [pause] = sorted(lab.root.glob("io.containerd.snapshotter.v1.overlayfs/snapshots/*/fs/pause"))
    aside = lab.dir / "pause.removed-by-test"
    shutil.move(pause, aside)
    try:
        yield pause
    finally:
        shutil.move(aside, pause)


@contextlib.contextmanager
def address_flushed(lab, pod) -> Iterator[str]:
    """Flush the IPv4 address of a scratch pod's eth0 inside its namespace (the pod is removed afterwards)."""
    with lab.client() as client:
        [view] = [v for v in list_sandboxes(client) if v.id == pod.id]
    subprocess.run(
        ["nsenter", f"--net=/proc/{view.pid}/ns/net", "ip", "-4", "addr", "flush", "dev", "eth0"],
        check=True,
        capture_output=True,
        timeout=10,
    )
    yield pod.name


@contextlib.contextmanager
def init_blocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A process named runc:[2:INIT] blocked writing into a shrunken pipe (seed 003)."""
    monkeypatch.setenv("NODEDOC_RUNC_INIT_THRESHOLD", "0.2")
    with built() as binary, hung_init(binary) as init:
        time.sleep(0.4)  # older than the threshold
        yield init.pid


@pytest.mark.every_runtime
@pytest.mark.parametrize(
    ("runbook_id", "answers", "fault", "conclusion", "decisive"),
    [
        pytest.param(
            "pod-sandbox-create",
            {"which-error": "pause-missing"},
            "pause",
            "pause-snapshot-damaged",
            "snapshot.files-missing",
            id="pause-removed",
        ),
        pytest.param(
            "pod-sandbox-create",
            {"which-error": "unknown"},
            "pause",
            "pause-snapshot-damaged",
            "snapshot.files-missing",
            id="pause-removed-unknown-error",
        ),
        pytest.param(
            "restart-lost-pods",
            {},
            "flush",
            "ip-gone-from-namespace",
            "network.netns-ip-missing",
            id="address-flushed",
        ),
        pytest.param(
            "node-notready", {}, "init", "runc-init-hang", "runc.init-blocked", id="runc-init-blocked"
        ),
        pytest.param(
            "pod-sandbox-create",
            {"which-error": "reserve-name"},
            "init",
            "runc-init-hang",
            "runc.init-blocked",
            id="reserve-name-runc-init-blocked",
        ),
    ],
)
def test_fault_reaches_its_conclusion(
    lab,
    request,
    monkeypatch,
    runbook_id: str,
    answers: dict[str, str],
    fault: str,
    conclusion: str,
    decisive: str,
) -> None:
    faults: dict[str, Callable[[], contextlib.AbstractContextManager]] = {
        "pause": lambda: pause_removed(lab),
        "flush": lambda: address_flushed(lab, request.getfixturevalue("extra_pod")),
        "init": lambda: init_blocked(monkeypatch),
    }
    with faults[fault]() as subject:
        session = walk_runbook(lab, runbook_id, answers)
    assert session.finished, session.to_dict()
    assert session.current.id == conclusion, [r.step for r in session.records]
    assert session.current.severity is Severity.CRITICAL
    found = [f for f in session.decisive_findings() if f.id == decisive]
    assert found, [f.id for f in session.findings()]
    if fault == "init":
        assert any(f.evidence.get("pid") == subject for f in found)
    if fault == "flush":
        assert any(f.subject.get("name") == subject for f in found)
    if fault == "pause":
        assert any("/pause" in str(f.evidence) for f in found)
    if fault in ("init", "flush"):
        assert_shows_the_findings_fix(session, found)


def assert_shows_the_findings_fix(session: RunbookSession, found: list) -> None:
    """The conclusion's remediation is the finding's own steps (same commands, same proof), and the
    walkthrough screen and the saved session (what the report prints) show exactly those."""
    from screens.walkthrough import conclusion_body

    shown = session.remediation()
    for finding in found:
        assert finding.remediation and all(step in shown for step in finding.remediation)
    assert session.to_dict()["conclusion"]["remediation"] == [asdict(step) for step in shown]
    screen = "\n".join(line.plain for line in conclusion_body(session, session.current))
    assert all(f"$ {step.command}" in screen for step in shown if step.command)
    assert "<" not in " ".join(step.command or "" for step in shown)


@pytest.mark.every_runtime
@pytest.mark.parametrize(
    ("runbook_id", "answers", "conclusion"),
    [
        pytest.param(
            "pod-sandbox-create", {"which-error": "pause-missing"}, "snapshots-intact", id="sandbox-pause"
        ),
        pytest.param(
            "pod-sandbox-create", {"which-error": "unknown"}, "no-fault-found", id="sandbox-unknown"
        ),
        pytest.param("restart-lost-pods", {"what-happened": "nothing-now"}, "no-fault-found", id="restart"),
        pytest.param("node-notready", {"pleg-in-kubelet-log": "none"}, "no-fault-found", id="notready"),
    ],
)
def test_healthy_lab_finds_no_fault(lab, runbook_id: str, answers: dict[str, str], conclusion: str) -> None:
    with soft_limit_held():  # not while another test run has lowered it
        session = walk_runbook(lab, runbook_id, answers)
    assert session.current.id == conclusion, (
        [r.step for r in session.records],
        [f.id for f in session.findings() if f.severity.rank >= Severity.WARNING.rank],
    )
    assert session.current.severity is Severity.OK
    assert "No fault found" in session.current.diagnosis


def test_upgrade_runbook_on_the_lab_names_the_runc_it_still_has_to_upgrade(lab) -> None:
    """The lab runs Debian 12's runc 1.1.5+ds1-1+deb12u1: its changelog carries the CVE-2024-21626 fix but none
    for the 2025 breakouts, so after the upgrade steps the verify step stops at version-still-wrong."""
    session = walk_runbook(lab, "upgrade-runtime", {"kubelet-version": "1.26-1.29", "node-ready": "ready"})
    assert session.current.id == "version-still-wrong", [r.step for r in session.records]
    cited = {f.subject.get("issue") for f in session.decisive_findings() if f.id == "versions.known-issue"}
    assert {"CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"} <= cited
    assert "CVE-2024-21626" not in cited
    fixed = [f for f in session.findings() if f.id == "versions.backported-fix"]
    assert any(f.subject["issue"] == "CVE-2024-21626" for f in fixed)


def test_cli_run_saves_the_session_and_writes_the_report(lab, tmp_path: Path) -> None:
    saved, report = tmp_path / "walk.json", tmp_path / "report.md"
    with pause_removed(lab):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "tui.cli",
                "runbook",
                "run",
                "pod-sandbox-create",
                "--endpoint",
                lab.endpoint,
                "--containerd-root",
                str(lab.root),
                "--containerd-state",
                str(lab.state),
                "--answer",
                "which-error=pause-missing",
                "--note",
                "check-snapshots=after the 02:00 cleanup job",
                "--save",
                str(saved),
                "--report",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ),
        )
    assert out.returncode == 2, out.stderr
    assert "Conclusion CRITICAL" in out.stdout and "snapshot.files-missing" in out.stdout
    for path in (saved, report):
        assert path.stat().st_mode & 0o777 == 0o600
    text = report.read_text()
    assert "## Walkthrough" in text and "after the 02:00 cleanup job" in text
    assert "Conclusion: The pause image's unpacked snapshot lost files" in text
    assert lab.db_password not in text and lab.db_password not in saved.read_text()
