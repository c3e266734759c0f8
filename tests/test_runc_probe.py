"""The runc probe against real kernel behaviour: a stand-in runc init hung on a shrunken pipe, fake
containerd/shim processes, and the lab's real shims."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.pipe_hog import built, hung_init, idle

from probes.api import Finding, ProbeStatus, Severity
from probes.builtin.runc import SHIM_SETTLE_S, THRESHOLD_ENV, RuncProbe, blocked_pipe, suggested_soft_limit
from probes.node import NodeContext
from probes.readers.procfs.pipes import PipeEnd
from probes.readers.procfs.procs import RuntimeProcess, scan_runtime
from probes.registry import ProbeRef, run_probes

REF = ProbeRef("runc", cls=RuncProbe)


def run_runc_probe(node: NodeContext | None = None):
    [result] = run_probes(node or NodeContext(), [REF])
    return result


def about(findings: list[Finding], finding_id: str, **subject) -> list[Finding]:
    return [
        f for f in findings if f.id == finding_id and all(f.subject.get(k) == v for k, v in subject.items())
    ]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Path]:
    with built() as binary:
        yield binary


@pytest.mark.root
@pytest.mark.parametrize(
    ("threshold", "reported"),
    [
        pytest.param("0.3", True, id="past-threshold"),
        pytest.param("3600", False, id="younger-than-threshold"),
    ],
)
def test_hung_init_on_shrunken_pipe(stand_in: Path, monkeypatch, threshold: str, reported: bool) -> None:
    monkeypatch.setenv(THRESHOLD_ENV, threshold)
    with hung_init(stand_in) as init:
        time.sleep(0.4)
        result = run_runc_probe()
        assert result.status is ProbeStatus.OK, result.reason
        blocked = about(result.findings, "runc.init-blocked", pid=init.pid)
        over = about(result.findings, "pipe.user-soft-limit-exceeded", uid=init.uid)
        shrunk = about(result.findings, "pipe.shrunk", uid=init.uid)
    assert init.capacity == 2 * os.sysconf("SC_PAGE_SIZE")
    assert len(over) == 1 and over[0].evidence["pages"] > over[0].evidence["soft_limit"] == 64
    assert len(shrunk) == 1 and shrunk[0].evidence["shrunk_pipes"] >= 1
    assert len(blocked) == int(reported)
    if reported:
        found = blocked[0]
        assert found.severity is Severity.CRITICAL
        assert (found.evidence["pid"], found.evidence["comm"]) == (init.pid, "runc:[2:INIT]")
        assert (found.evidence["pipe_fd"], found.evidence["pipe_capacity"]) == (init.fd, 8192)
        assert found.evidence["pipe_bytes_waiting"] == 8192 and found.evidence["wchan"].endswith("pipe_write")
        commands = [r.command or "" for r in found.remediation]
        assert any(c.startswith("sysctl -w fs.pipe-user-pages-soft=") for c in commands)
        assert any("/etc/sysctl.d/" in c for c in commands) and f"kill -9 {init.pid}" in commands
        assert "https://github.com/opencontainers/runc/pull/2871" in found.references
    # Gone, and the limit restored: nothing about it any more.
    after = run_runc_probe()
    assert not about(after.findings, "runc.init-blocked", pid=init.pid)
    assert not about(after.findings, "pipe.user-soft-limit-exceeded", uid=init.uid)
    assert not about(after.findings, "pipe.shrunk", uid=init.uid)


@pytest.mark.root
def test_check_command_reports_the_hung_init(stand_in: Path) -> None:
    """`nodedoc check --probe runc --format json`, as the on-call engineer runs it."""
    env = {**os.environ, THRESHOLD_ENV: "0.3"}
    command = [sys.executable, "-m", "tui.cli", "check", "--probe", "runc", "--format", "json"]
    with hung_init(stand_in) as init:
        time.sleep(0.4)
        during = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    after = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
    assert during.returncode == 2, during.stderr  # a critical finding
    findings = [Finding.from_dict(f) for f in json.loads(during.stdout)["findings"]]
    [blocked] = about(findings, "runc.init-blocked", pid=init.pid)
    assert blocked.evidence["pipe_capacity"] == 8192
    assert about(findings, "pipe.user-soft-limit-exceeded", uid=init.uid)
    later = [Finding.from_dict(f) for f in json.loads(after.stdout)["findings"]]
    assert not about(later, "runc.init-blocked", pid=init.pid)
    assert not about(later, "pipe.user-soft-limit-exceeded", uid=init.uid)


@pytest.mark.root
def test_procs_command_shows_the_hung_init(stand_in: Path) -> None:
    with hung_init(stand_in) as init:
        out = subprocess.run(
            [sys.executable, "-m", "tui.cli", "procs", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    [proc] = [p for p in data["processes"] if p["pid"] == init.pid]
    assert (proc["kind"], proc["uid"], proc["state"]) == ("runc-init", init.uid, "S")
    [pipe] = [p for p in proc["pipes"] if p["fd"] == init.fd]
    assert (pipe["end"], pipe["capacity"], pipe["bytes_waiting"]) == ("write", 8192, 8192)
    [user] = [u for u in data["users"] if u["uid"] == init.uid]
    assert user["over_soft"] and user["privilege"] == "none"


def test_shim_under_containerd_and_containerd_not_answering(stand_in: Path, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    address = tmp_path / "nobody-listens.sock"
    shim_argv = ["-namespace", "k8s.io", "-id", "sandbox-under-containerd", "-address", str(address)]
    with idle(
        stand_in,
        tmp_path,
        "containerd",
        ["--config", "/nonexistent"],
        spawn=shim_argv,
        spawn_name="containerd-shim-runc-v2",
    ) as (containerd, shim_pid):
        time.sleep(SHIM_SETTLE_S)  # a younger shim may be one containerd is starting
        findings = run_runc_probe().findings
    [orphan] = about(findings, "runtime.shim-not-reparented", pid=shim_pid)
    assert orphan.subject["container_id"] == "sandbox-under-containerd"
    assert orphan.evidence["parents"][0] == containerd.pid
    [down] = [f for f in findings if f.id == "runtime.containerd-not-running"]
    assert str(address) in down.subject["addresses"] and shim_pid in down.evidence["shim_pids"]


@pytest.mark.parametrize(
    ("wchan", "pipes", "chosen_fd"),
    [
        pytest.param(
            "anon_pipe_write",
            [
                PipeEnd(3, 10, "read", 65536, 0),
                PipeEnd(4, 11, "write", 65536, 10),
                PipeEnd(5, 12, "write", 8192, 8192),
            ],
            5,
            id="full-write-end",
        ),
        pytest.param(
            "anon_pipe_read",
            [PipeEnd(3, 10, "read", 65536, 5), PipeEnd(4, 11, "read", 65536, 0)],
            4,
            id="empty-read-end",
        ),
        pytest.param(
            "pipe_wait",
            [PipeEnd(3, 10, "read", 65536, 5), PipeEnd(6, 12, "write", 4096, 0)],
            6,
            id="old-kernel-smallest",
        ),
        pytest.param("anon_pipe_write", [], None, id="no-pipes"),
    ],
)
def test_blocked_pipe_choice(wchan: str, pipes: list[PipeEnd], chosen_fd: int | None) -> None:
    proc = RuntimeProcess(
        pid=1, ppid=0, kind="runc-init", comm="runc:[2:INIT]", state="S", age_s=99, wchan=wchan, pipes=pipes
    )
    chosen = blocked_pipe(proc)
    assert (chosen.fd if chosen else None) == chosen_fd


@pytest.mark.parametrize(
    ("used", "current", "suggested"),
    [
        pytest.param(66, 64, 16384, id="lowered-limit"),
        pytest.param(20000, 16384, 40960, id="busy-root"),
        pytest.param(0, None, 16384, id="unknown"),
    ],
)
def test_suggested_soft_limit(used: int, current: int | None, suggested: int) -> None:
    assert suggested_soft_limit(used, current) == suggested


@pytest.mark.parametrize(
    ("node", "why"),
    [
        pytest.param(lambda p: NodeContext(proc_root=p), "is not a mounted procfs", id="no-procfs"),
        pytest.param(lambda p: NodeContext(containerd_root=p), "post-mortem", id="post-mortem"),
    ],
)
def test_skipped_without_live_procfs(tmp_path: Path, node, why: str) -> None:
    result = run_runc_probe(node(tmp_path))
    assert result.status is ProbeStatus.SKIPPED and why in result.reason


def test_runc_version_is_read_from_the_binary_and_its_package() -> None:
    facts = run_runc_probe().facts["runc"]
    assert facts["version"], facts.get("reason")
    status = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    stanza = next(s for s in status if "Package: runc\n" in s)
    packaged = next(line.split(": ", 1)[1] for line in stanza.splitlines() if line.startswith("Version: "))
    assert facts["version"] == packaged and facts["binary"].endswith("/runc")


@pytest.mark.every_runtime
@pytest.mark.lab
def test_lab_shims_are_found_with_their_sandbox_ids(lab) -> None:
    assert lab.pods
    scan = scan_runtime()
    shims = {p.container_id: p for p in scan.of_kind("shim") if p.shim_address == str(lab.socket)}
    assert {pod.id for pod in lab.pods} <= set(shims)
    for pod in lab.pods:
        shim = shims[pod.id]
        assert shim.container_id_from == "shim-args" and shim.shim_namespace == "k8s.io"
        assert shim.ppid != lab.pid  # reparented away from containerd
    findings = run_runc_probe().findings
    assert not [f for f in findings if f.id == "runc.init-blocked"]
    assert not [
        f
        for f in findings
        if f.id == "runtime.shim-not-reparented" and f.subject["pid"] in {s.pid for s in shims.values()}
    ]


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        pytest.param("1.0.0-rc93", True, id="rc93"),
        pytest.param("v1.0.0-rc93", True, id="rc93-v"),
        pytest.param("1.0.0-rc92", False, id="rc92"),
        pytest.param("1.0.0-rc94", False, id="rc94-fixed"),
        pytest.param("1.1.5+ds1", False, id="debian-1.1.5"),
    ],
)
def test_version_affected_by_the_pipe_hang(version: str, affected: bool) -> None:
    findings = RuncProbe().version_findings(version, "/usr/sbin/runc")
    assert [f.id for f in findings] == ["runc.version-affected"] * affected
    if affected:
        assert findings[0].subject["issue"] == "runc-seccomp-pipe-deadlock"
        assert "1.0.0-rc94" in findings[0].evidence["fixed"]
        assert "https://github.com/opencontainers/runc/pull/2871" in findings[0].references
