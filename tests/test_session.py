"""The session boundary without a screen: typed answers from the real lab, recordings that answer the
same, and the processes data carrying the runc probe's own verdict."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.pipe_hog import built, hung_init
from recorded_session import RecordedSession, record_session

from probes.builtin.runc import THRESHOLD_ENV
from probes.node import NodeContext
from probes.readers.cri.runtime import RuntimeFacts
from probes.readers.disk.catalog import SnapshotRow, VerifyResult
from tui.session import NodeSession, NotOnThisNode


def lab_session(lab) -> NodeSession:
    return NodeSession(
        NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    )


@pytest.mark.every_runtime
@pytest.mark.lab
def test_live_answers_are_the_readers_dataclasses(lab) -> None:
    session = lab_session(lab)
    runtime = session.runtime()
    assert isinstance(runtime, RuntimeFacts) and runtime.name == "containerd"
    conditions = {c.type: c.status for c in runtime.conditions}
    assert conditions["RuntimeReady"] and conditions["NetworkReady"] and all(conditions.values())
    # 1.7.24 and 2.x add their deprecation condition (true: the lab's config uses nothing deprecated).
    assert set(conditions) - {"RuntimeReady", "NetworkReady"} == (
        {"ContainerdHasNoDeprecationWarnings"} if lab.build.series in ("1.7", "2") else set()
    )
    pods = session.sandboxes()
    assert len(pods) == 3 and session.last_sandboxes == pods
    network = session.pod_network(pods[0])
    assert network.error == "" and network.netns_ips == network.cri_ips == pods[0].ips
    catalog = session.snapshot_catalog()
    committed = [row.id for row in catalog.snapshots if row.kind == "committed"]
    assert committed and all(isinstance(row, SnapshotRow) for row in catalog.snapshots)
    seen: list[VerifyResult] = []
    results = session.verify(committed, on_result=seen.append)
    assert [r.status for r in results] == ["ok"] * len(committed) and seen == results
    pause = next(row for row in catalog.snapshots if "localhost/pause:lab" in row.images)
    assert [e.path for e in session.snapshot_files(pause.id)] == ["/pause"]


@pytest.mark.every_runtime
@pytest.mark.lab
def test_the_light_list_shows_what_the_verbose_one_does(lab) -> None:
    """The screens list pods without the verbose status and read one pod's when it is opened: the list
    must show exactly what the verbose list shows, and the one pod read be the verbose list's pod."""
    session = lab_session(lab)
    verbose = session.sandboxes()
    light = session.sandboxes(verbose=False)
    assert session.last_sandboxes == light and len(light) == len(verbose) == len(lab.pods)

    def shown(view) -> dict[str, object]:
        data = view.to_dict()
        for key in ("pid", "netns_path", "snapshot_key", "image"):  # what only the verbose status has
            data.pop(key)
        return data

    assert [shown(v) for v in light] == [shown(v) for v in verbose]
    assert all(v.pid is None and not v.info for v in light)
    for view in verbose:
        one = session.sandbox(view.id)
        assert one is not None and one.pid and one.netns_path
        assert one.to_dict(with_info=True) == view.to_dict(with_info=True)
    assert session.sandbox("0" * 64) is None


@pytest.mark.lab
def test_a_recording_answers_as_the_node_did(lab) -> None:
    live = lab_session(lab)
    recorded = RecordedSession(record_session(live))
    assert recorded.runtime() == live.runtime()
    # Sandboxes are recorded with their verbose info redacted; everything else is as read.
    assert [v.to_dict() for v in recorded.sandboxes()] == [v.to_dict() for v in live.sandboxes()]
    assert recorded.snapshot_catalog() == live.snapshot_catalog()

    def outcome(results: list[VerifyResult]) -> list[tuple[int, str, list[str]]]:
        return [(r.id, r.status, r.check.missing + r.check.changed if r.check else []) for r in results]

    assert outcome(recorded.verify(None)) == outcome(live.verify(None))
    view = live.sandboxes()[0]
    assert recorded.pod_network(view) == live.pod_network(view)
    assert [r.probe for r in recorded.probe_results(only=["runtime"])] == ["runtime"]


def test_post_mortem_has_no_processes(tmp_path: Path) -> None:
    session = NodeSession(NodeContext(containerd_root=tmp_path))
    with pytest.raises(NotOnThisNode, match="post-mortem"):
        session.processes()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[Path]:
    with built() as binary:
        yield binary


@pytest.mark.root
@pytest.mark.parametrize(
    ("threshold", "marked"),
    [
        pytest.param("0.3", True, id="past-the-probe-threshold"),
        pytest.param("3600", False, id="younger-than-the-probe-threshold"),
    ],
)
def test_processes_carry_the_runc_probes_verdict(
    stand_in: Path, monkeypatch, threshold: str, marked: bool
) -> None:
    """The screen marks a runc init hung exactly when the runc probe reports it (seed 003), threshold included."""
    monkeypatch.setenv(THRESHOLD_ENV, threshold)
    with hung_init(stand_in) as init:
        time.sleep(0.4)
        processes = NodeSession(NodeContext()).processes()
    hung = processes.scan.by_pid(init.pid)
    assert hung is not None and hung.kind == "runc-init" and hung.wchan.endswith("pipe_write")
    verdict = processes.blocked_init(init.pid)
    assert (verdict is not None) == marked
    if verdict is not None:
        assert verdict.probe == "runc" and verdict.evidence["pid"] == init.pid
