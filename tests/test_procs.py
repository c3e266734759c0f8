"""The runtime process reader: telling runtime processes apart, container ids, skipped processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.pipe_hog import built, idle

from probes.readers.procfs.procs import classify, runc_container_id, runc_subcommand, scan_runtime, shim_args

REPO = Path(__file__).resolve().parent.parent
CID = "3489a459ff78" + "0" * 52
SHIM_V2 = [
    "/usr/bin/containerd-shim-runc-v2",
    "-namespace",
    "k8s.io",
    "-id",
    CID,
    "-address",
    "/run/containerd/containerd.sock",
]
SHIM_V1 = [
    "containerd-shim",
    "-namespace",
    "moby",
    "-workdir",
    f"/var/lib/containerd/io.containerd.runtime.v1.linux/moby/{CID}",
    "-address",
    "/run/containerd/containerd.sock",
    "-containerd-binary",
    "/usr/bin/containerd",
    "-runtime-root",
    "/var/run/docker/runtime-runc",
]
RUNC_CREATE = [
    "runc",
    "--root",
    "/run/containerd/runc/k8s.io",
    "--log",
    f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{CID}/log.json",
    "--log-format",
    "json",
    "create",
    "--bundle",
    f"/run/containerd/io.containerd.runtime.v2.task/k8s.io/{CID}",
    "--pid-file",
    "/run/x/init.pid",
    CID,
]


@pytest.mark.parametrize(
    ("comm", "cmdline", "kind"),
    [
        pytest.param("containerd", ["/usr/bin/containerd"], "containerd", id="containerd"),
        pytest.param("containerd-shim", SHIM_V2, "shim", id="shim-v2"),
        pytest.param("containerd-shim", SHIM_V1, "shim", id="shim-v1"),
        pytest.param("runc", RUNC_CREATE, "runc", id="runc-create"),
        pytest.param("runc", ["runc", "init"], "runc-init", id="runc-init-cmdline"),
        pytest.param("runc:[0:PARENT]", ["runc", "init"], "runc-init", id="stage-0"),
        pytest.param("runc:[1:CHILD]", ["runc", "init"], "runc-init", id="stage-1"),
        pytest.param("runc:[2:INIT]", ["runc", "init"], "runc-init", id="stage-2"),
        pytest.param("pause", ["/pause"], None, id="pause"),
        pytest.param("containerd-sto", ["containerd-stop"], None, id="lookalike"),
    ],
)
def test_classify(comm: str, cmdline: list[str], kind: str | None) -> None:
    assert classify(comm, cmdline) == kind


@pytest.mark.parametrize(
    ("argv", "sub", "cid"),
    [
        pytest.param(RUNC_CREATE, "create", CID, id="create-with-globals"),
        pytest.param(["runc", "start", "abc"], "start", "abc", id="start"),
        pytest.param(["runc", "--root=/r", "delete", "--force", "abc"], "delete", "abc", id="delete-force"),
        pytest.param(
            ["runc", "exec", "--process", "/tmp/p.json", "-d", "--pid-file", "/p", "abc"],
            "exec",
            "abc",
            id="exec",
        ),
        pytest.param(["runc", "kill", "abc", "9"], "kill", "abc", id="kill"),
        pytest.param(["runc", "init"], "init", None, id="init"),
        pytest.param(["runc", "--version"], None, None, id="version"),
    ],
)
def test_runc_command_line(argv: list[str], sub: str | None, cid: str | None) -> None:
    assert (runc_subcommand(argv), runc_container_id(argv)) == (sub, cid)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            SHIM_V2, {"namespace": "k8s.io", "id": CID, "address": "/run/containerd/containerd.sock"}, id="v2"
        ),
        pytest.param(
            SHIM_V1,
            {"namespace": "moby", "workdir": SHIM_V1[4], "address": "/run/containerd/containerd.sock"},
            id="v1",
        ),
    ],
)
def test_shim_args(argv: list[str], expected: dict[str, str]) -> None:
    assert shim_args(argv) == expected


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Path]:
    with built() as binary:
        yield binary


@pytest.fixture
def bindir(tmp_path: Path) -> Iterator[Path]:
    tmp_path.chmod(0o755)
    yield tmp_path


def test_runc_init_takes_its_container_id_from_the_runc_that_started_it(stand_in: Path, bindir: Path) -> None:
    with idle(stand_in, bindir, "runc", RUNC_CREATE[1:], spawn=["init"], spawn_name="runc:[2:INIT]") as (
        runc,
        init_pid,
    ):
        scan = scan_runtime()
        parent, init = scan.by_pid(runc.pid), scan.by_pid(init_pid)
    assert parent is not None and init is not None
    assert (parent.kind, parent.runc_command, parent.container_id, parent.container_id_from) == (
        "runc",
        "create",
        CID,
        "runc-args",
    )
    assert (init.kind, init.comm, init.container_id, init.container_id_from) == (
        "runc-init",
        "runc:[2:INIT]",
        CID,
        "parent",
    )
    assert init.ancestors[0] == runc.pid and init.state == "S" and init.wchan
    assert 0 <= init.age_s < 60


def _fake_proc(root: Path) -> None:
    """A proc tree where one pid has a stat but no fd directory (exited between the two reads) and one
    pid directory is empty (exited before its stat was read)."""
    (root / "sys/fs").mkdir(parents=True)
    (root / "sys/kernel").mkdir(parents=True)
    for name, value in (
        ("pipe-user-pages-soft", "16384"),
        ("pipe-user-pages-hard", "0"),
        ("pipe-max-size", "1048576"),
    ):
        (root / "sys/fs" / name).write_text(value + "\n")
    (root / "sys/kernel/osrelease").write_text("5.4.0-1\n")
    (root / "uptime").write_text("1000.0 2000.0\n")
    (root / "4000001").mkdir()
    (root / "4000001/stat").write_text(Path("/proc/self/stat").read_text())
    (root / "4000002").mkdir()


def test_processes_that_vanish_mid_scan_are_counted(tmp_path: Path) -> None:
    _fake_proc(tmp_path)
    scan = scan_runtime(tmp_path)
    assert (scan.scanned, scan.vanished, scan.processes) == (0, 2, [])
    assert scan.limits.shrunk_pages == 1 and scan.limits.kernel == "5.4.0-1"


@pytest.mark.root
def test_unreadable_fds_are_counted_not_fatal(bindir: Path) -> None:
    """As uid 65534 the other processes' fds cannot be read: the scan still lists the processes."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for uid 65534")
    code = "import json; from probes.readers.procfs.procs import scan_runtime; print(json.dumps(scan_runtime().to_dict()))"
    out = subprocess.run(
        [python, "-c", code],
        user=65534,
        group=65534,
        extra_groups=[],
        cwd="/",
        env={"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    visible = sum(1 for name in os.listdir("/proc") if name.isdigit())
    assert data["fds_unreadable"] > 0 and data["scanned"] > data["fds_unreadable"] // 2
    assert data["scanned"] + data["vanished"] + data["fds_unreadable"] >= visible // 2
