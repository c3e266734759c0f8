"""The versions probe with fake binaries under a temporary host root, on this machine, and on the lab."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from probes.api import Severity
from probes.builtin.versions import VersionsProbe
from probes.node import NodeContext


def fake_binary(root: Path, path: str, output: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"#!/bin/sh\ncat <<'OUT'\n{output}\nOUT\n")
    target.chmod(0o755)


def run(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    containerd: str | None = None,
    runc: str | None = None,
    kubelet: str | None = None,
    today: dt.date = dt.date(2024, 3, 1),
) -> tuple[list, dict]:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    if containerd:
        fake_binary(
            root, "/usr/bin/containerd", f"containerd github.com/containerd/containerd {containerd} abc"
        )
    if runc:
        fake_binary(root, "/usr/sbin/runc", f"runc version {runc}\nspec: 1.0.2-dev")
    if kubelet:
        fake_binary(root, "/usr/bin/kubelet", f"Kubernetes {kubelet}")
    (root / "proc").mkdir(exist_ok=True)
    probe = VersionsProbe()
    probe.today = today
    outcome = probe.run(NodeContext(host_root=root, proc_root=root / "proc"))
    return outcome.findings, outcome.facts


def issues(findings: list) -> dict[str, Severity]:
    return {f.subject["issue"]: f.severity for f in findings if f.id == "versions.known-issue"}


@pytest.mark.parametrize(
    ("containerd", "runc", "expect"),
    [
        pytest.param(
            "v1.6.14", "1.1.12", {"containerd-7843": Severity.CRITICAL}, id="seed001-containerd-1.6.14"
        ),
        pytest.param("v1.6.15", "1.1.12", {}, id="containerd-1.6.15"),
        pytest.param(
            "v1.6.28",
            "1.0.0-rc93",
            {"runc-seccomp-pipe-deadlock": Severity.CRITICAL, "CVE-2024-21626": Severity.CRITICAL},
            id="runc-rc93",
        ),
        pytest.param(
            "v1.6.28", "1.1.5+ds1-1+deb12u1", {"CVE-2024-21626": Severity.INFO}, id="runc-debian-build"
        ),
    ],
)
def test_known_issues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, containerd: str, runc: str, expect: dict[str, Severity]
) -> None:
    findings, facts = run(tmp_path, monkeypatch, containerd=containerd, runc=runc)
    tracked = {"containerd-7843", "runc-seccomp-pipe-deadlock", "CVE-2024-21626"}
    assert {k: v for k, v in issues(findings).items() if k in tracked} == expect
    assert facts["versions"]["containerd"]["version"] == containerd
    for f in findings:
        if f.id == "versions.known-issue":
            assert f.subject["component"] in ("containerd", "runc") and f.evidence["affected_range"]
            assert all(r.command for r in f.remediation)


def test_distribution_build_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    findings, _ = run(tmp_path, monkeypatch, containerd="v1.6.28", runc="1.1.5+ds1-1+deb12u1")
    leaky = next(f for f in findings if f.subject.get("issue") == "CVE-2024-21626")
    assert "may carry the fix" in leaky.summary
    assert leaky.remediation[0].command == "apt changelog runc | less"


@pytest.mark.parametrize(
    ("kubelet", "containerd", "expect"),
    [
        pytest.param("v1.26.0", "v1.6.14", Severity.WARNING, id="1.26-with-1.6.14"),
        pytest.param("v1.26.0", "v1.6.28", Severity.OK, id="1.26-with-1.6.28"),
        pytest.param("v1.30.2", "v1.5.18", Severity.WARNING, id="1.30-with-1.5"),
    ],
)
def test_combination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubelet: str, containerd: str, expect: Severity
) -> None:
    findings, facts = run(tmp_path, monkeypatch, containerd=containerd, runc="1.1.12", kubelet=kubelet)
    combo = next(
        f for f in findings if f.id in ("versions.unsupported-combination", "versions.supported-combination")
    )
    assert combo.severity is expect
    assert facts["versions"]["kubelet"]["version"] == kubelet


@pytest.mark.parametrize(
    ("containerd", "today", "expect"),
    [
        pytest.param("v1.6.28", dt.date(2025, 9, 1), Severity.WARNING, id="1.6-after-eol"),
        pytest.param("v1.6.28", dt.date(2025, 8, 1), None, id="1.6-before-eol"),
        pytest.param("1.6.20~ds1", dt.date(2025, 9, 1), Severity.INFO, id="debian-1.6-after-eol"),
    ],
)
def test_eol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, containerd: str, today: dt.date, expect: Severity | None
) -> None:
    findings, _ = run(tmp_path, monkeypatch, containerd=containerd, runc="1.1.12", today=today)
    eol = next((f for f in findings if f.id == "versions.eol"), None)
    assert (eol.severity if eol else None) is expect


def test_this_machine_has_no_false_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    outcome = VersionsProbe().run(NodeContext())
    assert "kernel" in outcome.facts["versions"]
    assert not [f.id for f in outcome.findings if f.severity.rank >= Severity.WARNING.rank]


@pytest.mark.lab
def test_lab_versions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("no `lab` fixture in tests/conftest.py yet")
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    outcome = VersionsProbe().run(NodeContext(endpoint=lab.endpoint))
    ctd = outcome.facts["versions"]["containerd"]
    assert ctd["source"] == "CRI Version" and ctd["cri_api"] == "v1"
    assert not [f.id for f in outcome.findings if f.severity.rank >= Severity.WARNING.rank]
