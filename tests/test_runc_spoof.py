"""No spoofed findings: a container workload that names itself ``runc:[2:INIT]`` and blocks on a pipe,
on the real lab, is not taken for a hung runc init (issue 13)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import skip_or_fail

from probes.builtin.runc import THRESHOLD_ENV, RuncProbe
from probes.node import NodeContext
from probes.readers.cri import cri_pb2 as pb
from probes.readers.procfs.procs import RUNC_INIT_COMMS, scan_runtime
from probes.registry import ProbeRef, run_probes
from tui.lab.image import IMAGE_NAME

SOURCE = Path(__file__).parent / "fixtures" / "runc_spoof.c"


@dataclass
class Spoofers:
    sandbox_id: str
    #: pid of each process in the containers that calls itself runc:[2:INIT] and is blocked on a pipe.
    pids: list[int]
    #: pid of the one that calls itself "runc" (the fake parent).
    fake_runc: int


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _descendants(pid: int) -> Iterator[int]:
    for child in _children(pid):
        yield child
        yield from _descendants(child)


@pytest.fixture(scope="module")
def spoofers(lab) -> Iterator[Spoofers]:
    if shutil.which("gcc") is None:
        skip_or_fail("gcc is needed to build the spoofing workload")
    work = Path(tempfile.mkdtemp(prefix="nodedoc-spoof-", dir="/tmp"))
    binary = work / "runc_spoof"
    subprocess.run(["gcc", "-static", "-Os", "-o", str(binary), str(SOURCE)], check=True, capture_output=True)
    binary.chmod(0o755)
    with lab.client(timeout=60) as client:
        config = lab.sandbox_config("spoof", "spoof-uid")
        (lab.dir / "logs" / "spoof").mkdir(parents=True, exist_ok=True)
        sandbox_id = client.run_pod_sandbox(config)
        for name, args in (("alone", []), ("with-parent", ["parent"])):
            cconfig = pb.ContainerConfig(
                metadata=pb.ContainerMetadata(name=name, attempt=0),
                image=pb.ImageSpec(image=IMAGE_NAME),
                command=["/runc_spoof", *args],
                mounts=[pb.Mount(container_path="/runc_spoof", host_path=str(binary), readonly=True)],
                log_path=f"{name}.log",
                linux=pb.LinuxContainerConfig(),
            )
            client.start_container(client.create_container(sandbox_id, cconfig, config))
    try:
        shims = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_shim_of(int(p), sandbox_id)]
        deadline = time.monotonic() + 20
        while True:
            pids = [p for s in shims for p in _descendants(s) if _comm(p) == "runc:[2:INIT]"]
            blocked = [p for p in pids if "pipe" in Path(f"/proc/{p}/wchan").read_text()]
            if len(blocked) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        fake = [p for s in shims for p in _descendants(s) if _comm(p) == "runc"]
        assert len(blocked) == 2 and len(fake) == 1, (pids, blocked, fake)
        yield Spoofers(sandbox_id, blocked, fake[0])
    finally:
        with lab.client(timeout=60) as client:
            client.stop_pod_sandbox(sandbox_id)
            client.remove_pod_sandbox(sandbox_id)
        shutil.rmtree(work, ignore_errors=True)


def _is_shim_of(pid: int, sandbox_id: str) -> bool:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return bool(args) and b"containerd-shim" in args[0] and sandbox_id.encode() in args


@pytest.mark.lab
@pytest.mark.root
def test_a_workload_named_runc_init_is_not_a_runc_init(spoofers: Spoofers) -> None:
    scan = scan_runtime("/proc")
    kinds = {p.pid: p for p in scan.processes}
    for pid in spoofers.pids:
        assert _comm(pid) in RUNC_INIT_COMMS  # it does call itself that, and it is blocked on a pipe
        assert pid not in {p.pid for p in scan.of_kind("runc-init")}
        if pid in kinds:
            assert kinds[pid].kind == "impostor" and "workload" in kinds[pid].not_runtime_because


@pytest.mark.lab
@pytest.mark.root
def test_runc_probe_reports_no_spoofed_hung_init(spoofers: Spoofers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THRESHOLD_ENV, "0.1")
    time.sleep(0.2)
    [result] = run_probes(NodeContext(), [ProbeRef("runc", cls=RuncProbe)])
    blocked = [f for f in result.findings if f.id == "runc.init-blocked"]
    assert not [f for f in blocked if f.evidence.get("pid") in spoofers.pids], blocked
