"""Seed 002's remedies run on the real lab as nodedoc prints them, and shown to repair the node.

Each test damages the pause image's snapshot on a lab whose pause image comes from a registry on
loopback, runs ``nodedoc check --format json`` as a subprocess, takes the commands from its JSON (never
retyped) and runs them with ``sh -c``, then proves recovery by the symptom's own definition: a new pod
sandbox starts (RunPodSandbox succeeds), and ``check`` afterwards finds the snapshots clean. The restore
must also leave the running pods alone: same sandbox ids, same pids.

crictl is not packaged for Debian 12: printed crictl lines run through tests/fixtures/crictl.py put on
PATH as ``crictl``, which makes the same CRI calls (StopPodSandbox, RemovePodSandbox, RemoveImage,
PullImage) against the real runtime.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, skip_or_fail
from test_remedies_proven import remedy_calls

from probes.errors import CriError
from probes.knowledge.remedies import snapshots as snapshot_remedy
from probes.node import NodeContext
from probes.readers.cri import cri_pb2 as pb
from probes.readers.cri.sandboxes import list_sandboxes
from probes.readers.disk.containerd_store import ContainerdDisk, SnapshotInfo
from tui.lab import Lab
from tui.lab.registry import missing_tools
from tui.runbook import BUILTIN_DIR, RunbookSession, load_catalog
from tui.runbook import walk as walk_runbook

pytestmark = [pytest.mark.lab, pytest.mark.root]


@pytest.fixture(scope="module")
def registry_lab() -> Iterator[Lab]:
    """A lab of its own (the tests damage and repair it): 2 pods with a container each, the pause image
    pulled over CRI from a registry on loopback."""
    missing = Lab.missing_requirements() + missing_tools()
    if missing:
        skip_or_fail("the registry lab cannot start here: missing " + "; ".join(missing))
    directory = Path(tempfile.mkdtemp(prefix="ndrem-", dir="/tmp"))
    shutil.rmtree(directory)
    lab = Lab.up(directory, pods=2, containers=True, registry=True, log=lambda *_: None)
    try:
        yield lab
    finally:
        Lab.down(directory, log=lambda *_: None)


@pytest.fixture(scope="module")
def tools_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """PATH for printed commands: the crictl stand-in, this interpreter's nodedoc, then the system's."""
    bin_dir = tmp_path_factory.mktemp("bin")
    shim = bin_dir / "crictl"
    shim.write_text(
        f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} {REPO / "tests/fixtures/crictl.py"} "$@"\n'
    )
    shim.chmod(0o755)
    return f"{bin_dir}:{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"


def check(lab: Lab) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--endpoint", lab.endpoint, "--containerd-root", str(lab.root)]
        + ["check", "--format", "json", "--probe", "snapshots"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def findings(doc: dict, *ids: str) -> list[dict]:
    return [f for f in doc["findings"] if f["id"] in ids]


def run_printed(command: str, path: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=300, env={**os.environ, "PATH": path}
    )
    assert proc.returncode == 0, (command, proc.stdout, proc.stderr)
    return proc


def pause_snapshot(lab: Lab) -> SnapshotInfo:
    [snap] = [
        s
        for s in ContainerdDisk(lab.root).snapshots()
        if s.kind == "committed" and lab.image in s.image_names
    ]
    return snap


def running_pods(lab: Lab) -> dict[str, int]:
    """Sandbox id → sandbox pid of every ready pod."""
    with lab.client() as client:
        return {v.id: v.pid for v in list_sandboxes(client, verbose=True) if v.ready}


def new_sandbox(lab: Lab) -> str:
    """Run a pod sandbox, see it still ready a second later, remove it: '' when it started and stayed up,
    else the runtime's error (or that its pause process died: a changed /pause fails after start)."""
    name = f"probe-{os.urandom(3).hex()}"
    try:
        pod = lab.run_pod(name)
    except CriError as exc:
        return str(exc)
    time.sleep(1.0)
    with lab.client() as client:
        state = client.pod_sandbox_status(pod.id, verbose=False).status.state
        client.stop_pod_sandbox(pod.id)
        client.remove_pod_sandbox(pod.id)
    return (
        "" if state == pb.SANDBOX_READY else "the sandbox started, then its pause process exited (NotReady)"
    )


def assert_same_fix_everywhere(lab: Lab, finding: dict) -> None:
    """The runbook's conclusion and the exported report give exactly the steps of the finding `check` gave."""
    walk = RunbookSession(load_catalog(dirs=[BUILTIN_DIR]).get("pod-sandbox-create"))
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    walk_runbook(walk, node, {"which-error": "pause-missing"})
    assert walk.to_dict()["conclusion"]["remediation"] == finding["remediation"]
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--endpoint", lab.endpoint, "--containerd-root", str(lab.root)]
        + ["report", "--format", "json", "--probe", "snapshots"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    [reported] = [f for f in json.loads(proc.stdout)["findings"] if f["id"] == finding["id"]]
    assert reported["remediation"] == finding["remediation"]


def damage_missing(fs: Path, lab: Lab) -> None:
    (fs / "pause").rename(lab.dir / "pause.gone")


def damage_changed(fs: Path, lab: Lab) -> None:
    """/pause overwritten with other bytes (a different size), and a file the layer never had."""
    (fs / "pause").write_bytes(b"#!/bin/false\n")
    (fs / "dropped-by-cleanup.txt").write_text("not from the layer\n")


@pytest.mark.parametrize(
    ("damage", "finding_id", "failure"),
    [
        pytest.param(damage_missing, "snapshot.files-missing", "no such file or directory", id="missing"),
        pytest.param(damage_changed, "snapshot.files-changed", "NotReady", id="changed"),
    ],
)
def test_restore_from_blob_repairs_without_touching_pods(
    registry_lab: Lab, tools_path: str, damage, finding_id: str, failure: str
) -> None:
    lab = registry_lab
    before = running_pods(lab)
    assert len(before) >= 2
    snap = pause_snapshot(lab)
    damage(snap.fs_dir, lab)
    assert failure in new_sandbox(lab)
    code, doc = check(lab)
    [finding] = findings(doc, finding_id)
    assert finding["subject"]["snapshot_id"] == snap.id
    restore = finding["remediation"][0]
    assert restore["disrupts_pods"] is False and restore["command"].startswith("tar -x")
    assert str(snap.fs_dir) in restore["command"] and finding["evidence"]["blob"] in restore["command"]
    assert restore["proven"].endswith(test_restore_from_blob_repairs_without_touching_pods.__name__)

    assert_same_fix_everywhere(lab, finding)
    run_printed(restore["command"], tools_path)

    assert new_sandbox(lab) == ""
    assert running_pods(lab) == before
    code, doc = check(lab)
    assert code == 0 and [f["id"] for f in doc["findings"]] == ["snapshot.ok"], doc["findings"]


def test_restore_refuses_where_a_directory_replaced_the_file(registry_lab: Lab) -> None:
    """tar cannot put a file where a directory stands: nodedoc says so and prints no tar command."""
    lab = registry_lab
    snap = pause_snapshot(lab)
    moved = lab.dir / "pause.moved"
    (snap.fs_dir / "pause").rename(moved)
    (snap.fs_dir / "pause").mkdir()  # a directory where the layer has a file
    try:
        code, doc = check(lab)
        [finding] = findings(doc, "snapshot.files-changed")
        first = finding["remediation"][0]
        assert first["command"] is None and "refused" in first["text"] and "directory" in first["text"]
    finally:
        (snap.fs_dir / "pause").rmdir()
        moved.rename(snap.fs_dir / "pause")
    assert check(lab)[0] == 0


def test_remove_sandboxes_then_rmi_and_pull_recreates_the_snapshot(
    registry_lab: Lab, tools_path: str
) -> None:
    """The alternative that disrupts pods: every sandbox on the snapshot removed, then remove and pull."""
    lab = registry_lab
    snap = pause_snapshot(lab)
    damage_missing(snap.fs_dir, lab)
    _code, doc = check(lab)
    [finding] = findings(doc, "snapshot.files-missing")
    steps = finding["remediation"]
    proven = [s for s in steps if s["proven"] == snapshot_remedy.PROVEN_RECREATE]
    assert [s["disrupts_pods"] for s in proven] == [True, False]
    assert [s["disrupts_pods"] for s in steps if "kubectl drain" in (s["command"] or "")] == [True]
    assert set(running_pods(lab)) <= set(proven[0]["command"].split())
    unproven = [s for s in steps[1:] if s["command"] and not s["proven"]]
    assert all("kubectl" in s["command"] or "kubelet" in s["command"] for s in unproven)

    for step in proven:
        run_printed(step["command"], tools_path)

    assert running_pods(lab) == {}
    fresh = pause_snapshot(lab)
    assert (fresh.fs_dir / "pause").is_file()
    assert new_sandbox(lab) == ""
    code, doc = check(lab)
    assert code == 0 and [f["id"] for f in doc["findings"]] == ["snapshot.ok"], doc["findings"]
    lab.pods = []
    lab.add_pods(2, containers=True, prefix="after-recreate")  # for the next test: pods on the new snapshot


def test_rmi_and_pull_alone_change_nothing_while_pods_hold_the_snapshot(
    registry_lab: Lab, tools_path: str
) -> None:
    """The old advice, run as nodedoc now prints it in the alternative, but without removing the sandboxes.
    (Last in the module: the pull does not fetch the layer blob again, since its snapshot exists.)"""
    lab = registry_lab
    snap = pause_snapshot(lab)
    damage_missing(snap.fs_dir, lab)
    try:
        _code, doc = check(lab)
        [finding] = findings(doc, "snapshot.files-missing")
        [rmi_pull] = [r for r in finding["remediation"] if r["command"] and " rmi " in r["command"]]
        run_printed(rmi_pull["command"], tools_path)
        assert "no such file or directory" in new_sandbox(lab)
        assert pause_snapshot(lab).id == snap.id  # the same snapshot came back with the image
        code, doc = check(lab)  # the pull did not fetch the layer blob: the entrypoint check still sees it
        [finding] = findings(doc, "snapshot.entrypoint-missing")
        assert code == 2 and finding["subject"]["snapshot_id"] == snap.id
        assert finding["evidence"]["executable"] == "/pause" and finding["subject"]["image"] == lab.image
    finally:
        (lab.dir / "pause.gone").rename(snap.fs_dir / "pause")


def follow_until_restore(lab: Lab, finding: dict, path: str) -> list[dict]:
    """Run the steps that bring the layer back, as printed, up to nodedoc's own check; the steps run."""
    ran = []
    for step in finding["remediation"]:
        if step["disrupts_pods"] or not step["command"]:
            break
        proc = subprocess.run(
            ["sh", "-c", step["command"]],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PATH": path},
        )
        ran.append(step)
        if step["command"].startswith("nodedoc "):
            assert proc.returncode == 2 and "tar -x" in proc.stdout, (proc.stdout, proc.stderr)
            break
        assert proc.returncode == 0, (step["command"], proc.stderr)
    return ran


def restore_as_printed(lab: Lab, path: str) -> None:
    """The check after the blob came back names the damaged paths; its restore is run as printed."""
    _code, doc = check(lab)
    [missing] = findings(doc, "snapshot.files-missing")
    [entry] = findings(doc, "snapshot.entrypoint-missing")
    assert entry["remediation"][0] == missing["remediation"][0]  # both findings give the same fix
    run_printed(missing["remediation"][0]["command"], path)


def test_after_rmi_the_damage_is_still_reported_and_repaired(registry_lab: Lab, tools_path: str) -> None:
    """The image removed while pods hold its snapshot (the old advice's first half): the containers' specs
    still say what they exec, so the missing /pause is reported, and the printed steps repair it."""
    lab = registry_lab
    before = running_pods(lab)
    snap = pause_snapshot(lab)
    (snap.fs_dir / "pause").rename(lab.dir / "pause.gone")
    run_printed(f"crictl --runtime-endpoint {lab.endpoint} rmi {lab.image}", tools_path)
    code, doc = check(lab)
    [finding] = findings(doc, "snapshot.entrypoint-missing")
    assert code == 2 and finding["evidence"]["from"] == "container spec"
    assert finding["subject"]["snapshot_id"] == snap.id
    ran = follow_until_restore(lab, finding, tools_path)
    assert [s["proven"] for s in ran] == [snapshot_remedy.PROVEN_REPULL] + [snapshot_remedy.PROVEN_FETCH] * 2
    restore_as_printed(lab, tools_path)

    assert new_sandbox(lab) == ""
    assert running_pods(lab) == before
    code, doc = check(lab)
    assert code == 0 and [f["id"] for f in doc["findings"]] == ["snapshot.ok"], doc["findings"]


@pytest.fixture(scope="module")
def discard_lab() -> Iterator[Lab]:
    """A lab whose CRI discards layer blobs after unpacking (as amazon-eks-ami's containerd 2.x config
    does); the pause image is pulled over CRI from the loopback registry, so the discard applies."""
    missing = Lab.missing_requirements() + missing_tools()
    if missing:
        skip_or_fail("the registry lab cannot start here: missing " + "; ".join(missing))
    directory = Path(tempfile.mkdtemp(prefix="nddis-", dir="/tmp"))
    shutil.rmtree(directory)
    lab = Lab.up(directory, pods=2, containers=True, discard_layers=True, log=lambda *_: None)
    try:
        yield lab
    finally:
        Lab.down(directory, log=lambda *_: None)


def test_discarded_layers_fetch_the_blob_then_restore(discard_lab: Lab, tools_path: str) -> None:
    lab = discard_lab
    disk = ContainerdDisk(lab.root)
    [view] = [v for v in disk.images() if v.record.name == lab.image]
    assert view.resolved is not None
    layer, config = view.resolved.layers[0].blob.digest, view.resolved.config.digest
    deadline = time.monotonic() + 60  # containerd's garbage collector deletes the blob, asynchronously
    while disk.content.has(layer) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not disk.content.has(layer) and disk.content.has(config)  # discarded; the config is kept
    before = running_pods(lab)
    snap = pause_snapshot(lab)
    code, doc = check(lab)
    assert code == 0 and findings(doc, "snapshot.layers-discarded")  # said, at INFO: no false alarm

    (snap.fs_dir / "pause").rename(lab.dir / "pause.gone")
    assert "no such file or directory" in new_sandbox(lab)
    code, doc = check(lab)
    [finding] = findings(doc, "snapshot.entrypoint-missing")
    assert code == 2 and finding["evidence"]["from"] == "image config"
    assert "layer" in findings(doc, "snapshot.layers-discarded")[0]["title"]
    walk = RunbookSession(load_catalog(dirs=[BUILTIN_DIR]).get("pod-sandbox-create"))
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    walk_runbook(walk, node, {"which-error": "pause-missing"})
    assert walk.current.id == "pause-snapshot-damaged"
    assert [f.id for f in walk.decisive_findings()] == ["snapshot.entrypoint-missing"]
    ran = follow_until_restore(lab, finding, tools_path)
    assert [s["proven"] for s in ran] == [snapshot_remedy.PROVEN_FETCH] * 2
    restore_as_printed(lab, tools_path)

    assert new_sandbox(lab) == ""
    assert running_pods(lab) == before
    code, doc = check(lab)
    assert code == 0 and not [f for f in doc["findings"] if f["severity"] in ("warning", "critical")]


@pytest.mark.parametrize("module", ["probes.builtin.snapshots", "probes.knowledge.remedies.snapshots"])
def test_every_step_with_a_command_is_proven_or_says_it_is_not(module: str) -> None:
    """Each seed 002 step names the test above that runs it, or its text says it was not tested and why."""
    calls = remedy_calls(module)
    assert all(proven for _line, proven in calls), calls
    assert calls or module == "probes.builtin.snapshots"  # its steps come from probes.knowledge.remedies
    for _line, proven in calls:
        path, _, name = proven.partition("::")
        tree = ast.parse((REPO / path).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, proven
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    if module.endswith("remedies.snapshots"):
        assert source.count("untested(") >= 4
    else:  # the one unproven step of its own, the corrupt blob's refetch, is built in probes.knowledge.remedies too
        assert "untested(" not in source and "refetch_blob(" in source


def test_lab_up_with_a_registry_from_the_command_line(tmp_path: Path) -> None:
    if Lab.missing_requirements() + missing_tools():
        skip_or_fail("the registry lab cannot start here")
    directory = Path(tempfile.mkdtemp(prefix="ndcli-", dir="/tmp"))
    shutil.rmtree(directory)
    cli = [sys.executable, "-m", "tui.cli", "lab"]
    up = subprocess.run(
        [*cli, "up", str(directory), "--pods", "0", "--discard-layers"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert up.returncode == 0, up.stderr
        lab = Lab.load(directory)
        assert (
            lab.registry_port
            and lab.discard_layers
            and lab.image.startswith(f"127.0.0.1:{lab.registry_port}/")
        )
        assert f"registry          127.0.0.1:{lab.registry_port}" in up.stdout
        assert "discard_unpacked_layers = true" in lab.config_path.read_text()
    finally:
        subprocess.run([*cli, "down", str(directory)], capture_output=True, timeout=300)
    assert not directory.exists()
