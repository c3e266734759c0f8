"""No false all-clear: a probe that could not run makes the verdict unknown, in every writer and exit code.

Which skips leave the verdict unknown: any error, timeout or unreadable input, and any need unmet where
it should be met (a runtime that does not answer, a containerd root that is missing or unreadable, a
live root without procfs). Not: what the operator's chosen mode does not look at (post-mortem mode, a
copied tree with no proc), nor containerd's disk on a node whose live runtime is another one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from nodedoc_cli import nodedoc

from probes.api import Finding, Need, ProbeResult, ProbeStatus, Severity
from probes.node import NeedUnmet, NodeContext, NotApplicable
from tui.report import render, report_of
from tui.report.model import Inventory

NO_CONTAINERS = Inventory()


# -- which skips make the verdict unknown ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "need", "kind", "words"),
    [
        pytest.param(
            lambda t: NodeContext(containerd_root=t),
            Need.CRI,
            NotApplicable,
            "post-mortem",
            id="post-mortem-cri",
        ),
        pytest.param(
            lambda t: NodeContext(containerd_root=t),
            Need.PROCFS,
            NotApplicable,
            "post-mortem",
            id="post-mortem-procfs",
        ),
        pytest.param(
            lambda t: NodeContext(containerd_root=t),
            Need.CONTAINERD_STATE,
            NotApplicable,
            "post-mortem",
            id="post-mortem-state",
        ),
        pytest.param(
            lambda t: NodeContext(host_root=t, endpoint=f"unix://{t}/none.sock"),
            Need.PROCFS,
            NotApplicable,
            "no procfs at",
            id="copied-tree-without-proc",
        ),
        pytest.param(
            lambda t: NodeContext(endpoint=f"unix://{t}/none.sock", timeout=0.3),
            Need.CRI,
            NeedUnmet,
            "no socket at",
            id="runtime-down",
        ),
        pytest.param(
            lambda t: NodeContext(endpoint=f"unix://{t}/none.sock", proc_root=t / "proc"),
            Need.PROCFS,
            NeedUnmet,
            "not a mounted procfs",
            id="live-root-without-procfs",
        ),
        pytest.param(
            lambda t: NodeContext(endpoint=f"unix://{t}/none.sock", containerd_root=t / "gone", timeout=0.3),
            Need.CONTAINERD_ROOT,
            NeedUnmet,
            "does not exist",
            id="named-root-missing",
        ),
        pytest.param(
            lambda t: NodeContext(host_root=t / "nowhere"),
            Need.HOST_FILES,
            NeedUnmet,
            "does not exist",
            id="no-host",
        ),
    ],
)
def test_skip_kinds(tmp_path, make, need, kind, words):
    problem = make(tmp_path).unmet_need(need)
    assert type(problem) is kind and words in str(problem)


def result(
    status: ProbeStatus, *findings: Severity, not_applicable: bool = False, probe: str = "p"
) -> ProbeResult:
    return ProbeResult(
        probe=probe,
        title=probe.title(),
        status=status,
        reason="" if status is ProbeStatus.OK else f"{probe} could not look",
        not_applicable=not_applicable,
        findings=[Finding(f"{probe}.x", probe, s, f"{s} thing", "summary") for s in findings],
    )


@pytest.mark.parametrize(
    ("results", "code"),
    [
        pytest.param([result(ProbeStatus.OK, Severity.INFO)], 0, id="info-only"),
        pytest.param([result(ProbeStatus.OK, Severity.WARNING)], 1, id="warning"),
        pytest.param(
            [result(ProbeStatus.OK), result(ProbeStatus.ERROR, probe="q")], 3, id="error-is-unknown"
        ),
        pytest.param(
            [result(ProbeStatus.OK, Severity.WARNING), result(ProbeStatus.SKIPPED, probe="q")],
            3,
            id="unknown-beats-warning",
        ),
        pytest.param(
            [result(ProbeStatus.OK, Severity.CRITICAL), result(ProbeStatus.ERROR, probe="q")],
            2,
            id="critical-beats-unknown",
        ),
        pytest.param(
            [result(ProbeStatus.OK), result(ProbeStatus.SKIPPED, not_applicable=True, probe="q")],
            0,
            id="not-applicable-keeps-the-verdict",
        ),
        pytest.param(
            [result(ProbeStatus.SKIPPED, not_applicable=True, probe="q")], 3, id="nothing-checked-is-unknown"
        ),
    ],
)
def test_exit_code_order(results, code):
    report = report_of(NodeContext(containerd_root=Path("/nonexistent")), results, containers=NO_CONTAINERS)
    assert report.exit_code == code
    assert report.verdict.unknown is (code == 3 or any(r.could_not_run for r in results))
    assert report.verdict.nothing_checked is all(r.not_applicable for r in results)


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_every_writer_says_which_probes_could_not_run(fmt):
    results = [
        result(ProbeStatus.OK, Severity.INFO, probe="config"),
        result(ProbeStatus.ERROR, probe="snapshots"),
        result(ProbeStatus.SKIPPED, probe="network"),
        result(ProbeStatus.SKIPPED, not_applicable=True, probe="runtime"),
    ]
    report = report_of(NodeContext(containerd_root=Path("/nonexistent")), results, containers=NO_CONTAINERS)
    text = render(report, fmt)
    if fmt == "json":
        verdict = json.loads(text)["verdict"]
        assert [p["id"] for p in verdict["could_not_run"]] == ["snapshots", "network"]
        return
    assert "2 probes could not run: snapshots, network" in text
    banner = text[text.index("2 probes could not run") :].split("Findings")[0]
    assert "snapshots could not look" in banner and "runtime could not look" not in banner  # not applicable
    head = text.split("Findings")[0]  # the banner comes before the findings, as a critical would
    assert "could not run" in head
    if fmt == "html":
        assert '<section class="finding critical unknown">' in head


def test_post_mortem_check_of_only_live_probes_checks_nothing_and_says_so(tmp_path):
    proc = nodedoc("--containerd-root", str(tmp_path), "check", "--probe", "runtime", "--probe", "runc")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "UNKNOWN  no probe ran: none of those selected applies to this run" in proc.stdout
    assert "No problems found" not in proc.stdout and "runtime not applicable" in proc.stdout


# -- a metadata database nodedoc cannot read ------------------------------------------------------------


def spoil(kind: str, path: Path) -> None:
    size = path.stat().st_size
    if kind == "random-bytes":
        path.write_bytes(os.urandom(size))
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    elif kind == "truncated":
        os.truncate(path, size // 2)
    elif kind == "empty":
        os.truncate(path, 0)


@pytest.mark.lab
@pytest.mark.parametrize(
    ("db", "kind"),
    [
        pytest.param("io.containerd.metadata.v1.bolt/meta.db", "random-bytes", id="meta-random"),
        pytest.param("io.containerd.metadata.v1.bolt/meta.db", "directory", id="meta-directory"),
        pytest.param("io.containerd.metadata.v1.bolt/meta.db", "truncated", id="meta-truncated"),
        pytest.param(
            "io.containerd.snapshotter.v1.overlayfs/metadata.db", "random-bytes", id="overlay-random"
        ),
        pytest.param("io.containerd.snapshotter.v1.overlayfs/metadata.db", "empty", id="overlay-empty"),
    ],
)
def test_unreadable_database_is_never_no_problems_found(lab, tmp_path, db, kind):
    copy = tmp_path / "root"
    shutil.copytree(lab.root, copy, symlinks=True)
    healthy = nodedoc("--containerd-root", str(copy), "check", "--probe", "snapshots", "--format", "json")
    assert healthy.returncode == 0, healthy.stderr
    spoil(kind, copy / db)
    text = nodedoc("--containerd-root", str(copy), "check", "--probe", "snapshots")
    assert text.returncode == 3, text.stdout + text.stderr
    assert "No problems found." not in text.stdout.splitlines()
    assert "1 probe could not run: snapshots" in text.stdout and db.split("/")[-1] in text.stdout
    assert "Traceback" not in text.stderr
    data = nodedoc("--containerd-root", str(copy), "check", "--probe", "snapshots", "--format", "json")
    (probe,) = json.loads(data.stdout)["verdict"]["could_not_run"]
    assert probe["id"] == "snapshots" and probe["status"] == "error"
    assert probe["reason"].startswith(f"bolt file {copy / db}")  # the reader's typed error, in its words
    listing = nodedoc("--containerd-root", str(copy), "snapshots")
    assert listing.returncode == 3 and listing.stderr.startswith("nodedoc: bolt file")
    assert listing.stderr.count("\n") == 1
