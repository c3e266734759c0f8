"""``nodedoc fleet``: three real lab nodes on containerd 1.6, 1.7 and 2.x with different faults give three
reports; their merge groups each finding by its cause, names the nodes, and gives each group's fix once."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import skip_or_fail

from probes.node import NodeContext
from tui.commands.demo import break_pod_network, pause_removed
from tui.fleet import merge, read_reports, render
from tui.lab import Lab

pytestmark = pytest.mark.lab


def report(lab: Lab, out: Path, *args: str, env: dict | None = None) -> dict:
    node = [
        "--endpoint",
        lab.endpoint,
        "--containerd-root",
        str(lab.root),
        "--containerd-state",
        str(lab.state),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *node, *args, "report", "--format", "json", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


@contextlib.contextmanager
def lab_on(series: str | None) -> Iterator[Lab]:
    missing = Lab.missing_requirements()
    if missing:
        skip_or_fail("the lab cannot start here: missing " + "; ".join(missing))
    directory = Path(tempfile.mkdtemp(prefix=f"ndfleet-{series or 'sys'}-", dir="/tmp"))
    lab = Lab.up(directory, pods=2, log=lambda *_: None, containerd=series)
    try:
        yield lab
    finally:
        Lab.down(directory, log=lambda *_: None)


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """node-a: containerd 1.6 with seed 002; node-b: 1.7 with a pod's address flushed; the third: 2.x with
    seed 002, named by the host name (no --node-name, no NODE_NAME)."""
    out = tmp_path_factory.mktemp("fleet")
    env = {k: v for k, v in os.environ.items() if k != "NODE_NAME"}
    paths = {}
    with lab_on(None) as a, pause_removed(a):
        paths["node-a"] = out / "a.json"
        report(a, paths["node-a"], "--node-name", "node-a", env=env)
    with lab_on("1.7") as b:
        victim = b.run_pod("web-broken-net")
        break_pod_network(b, victim)
        paths["node-b"] = out / "b.json"
        report(b, paths["node-b"], env={**env, "NODE_NAME": "node-b"})
    with lab_on("2") as c, pause_removed(c):
        paths["host"] = out / "c.json"
        report(c, paths["host"], env=env)
    return paths


def test_reports_carry_the_node_name(reports) -> None:
    names = {key: json.loads(path.read_text())["node"]["name"] for key, path in reports.items()}
    assert names == {"node-a": "node-a", "node-b": "node-b", "host": NodeContext().node_name()}


def test_merge_groups_by_cause(reports) -> None:
    fleet = merge(read_reports([str(p) for p in reports.values()]))
    host = NodeContext().node_name()
    by_key = {(g.finding, g.cause): g for g in fleet.groups}
    versions = {json.loads(p.read_text())["node"]["name"]: _containerd(p) for p in reports.values()}
    assert versions["node-a"].startswith("1.6") and versions["node-b"].startswith("1.7")
    assert versions[host].startswith("2.")
    # Seed 002 on two runtimes: one group per containerd build, each naming its node.
    damaged = {g.cause: g.nodes for g in fleet.groups if g.finding == "snapshot.entrypoint-missing"}
    assert damaged == {f"containerd {versions['node-a']}": ["node-a"], f"containerd {versions[host]}": [host]}
    # The flushed address only on the 1.7 node.
    [lost] = [g for g in fleet.groups if g.finding == "network.netns-ip-missing"]
    assert lost.nodes == ["node-b"] and lost.cause == f"containerd {versions['node-b']}"
    # The one runc every lab shares: one group across the three runtimes, its fix given once.
    runc = [
        g for (fid, cause), g in by_key.items() if fid == "versions.known-issue" and cause.startswith("runc ")
    ]
    assert runc and all(sorted(g.nodes) == sorted(["node-a", "node-b", host]) for g in runc)
    assert all(len(g.remediation) >= 1 for g in runc)
    assert fleet.not_checked == []


def _containerd(path: Path) -> str:
    doc = json.loads(path.read_text())
    return str(doc["runtime"]["version"])


def test_formats_and_the_stream(reports, tmp_path) -> None:
    paths = [str(p) for p in reports.values()]
    fleet = merge(read_reports(paths))
    assert json.loads(render(fleet, "json"))["schema"] == "nodedoc.fleet/v1"
    text = render(fleet, "text")
    assert text.startswith("3 node(s) read") and "snapshot.entrypoint-missing" in text
    html = render(fleet, "html")
    assert html.startswith("<!doctype html>") and "<script" not in html and "node-b" in html
    assert "| critical | `snapshot.entrypoint-missing`" in render(fleet, "md")
    # Pretty-printed reports back to back on stdin, as `kubectl logs` of the report DaemonSet gives them,
    # one node's report twice (hourly): the newest stands for the node.
    stream = "".join(Path(p).read_text() for p in [*paths, paths[0]]) + '{"broken": '
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "fleet", "-", "--format", "json"],
        input=stream,
        capture_output=True,
        text=True,
        timeout=120,
    )
    merged = json.loads(proc.stdout)
    assert merged["nodes"] == 3 and proc.returncode == 2  # criticals win over the unreadable tail
    assert [n["node"] for n in merged["not_checked"]] == ["<stdin>#5"]


def test_unreadable_and_unknown_nodes_are_not_called_healthy(reports, tmp_path) -> None:
    doc = json.loads(reports["node-b"].read_text())
    doc["node"]["name"], doc["findings"] = "node-x", []
    doc["verdict"] = {"could_not_run": [{"id": "snapshots", "reason": "meta.db unreadable"}]}
    (tmp_path / "x.json").write_text(json.dumps(doc))
    (tmp_path / "y.json").write_text("{")
    fleet = merge(read_reports([str(tmp_path)]))
    assert [n for n, _ in fleet.not_checked] == ["node-x", str(tmp_path / "y.json")]
    assert "node-x" not in fleet.to_dict()["healthy"]
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "fleet", str(tmp_path / "nothing-here")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1


def test_fleet_screen_walks_the_groups(reports) -> None:
    import asyncio

    from textual.widgets import DataTable

    from tui.fleet_app import FleetApp

    fleet = merge(read_reports([str(p) for p in reports.values()]))

    async def walk() -> tuple[int, object, object]:
        app = FleetApp(fleet)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause()
            table = app.screen.query_one(DataTable)
            first = app.screen.shown
            await pilot.press("down")
            await pilot.pause()
            return table.row_count, first, app.screen.shown

    rows, first, second = asyncio.run(walk())
    assert rows == len(fleet.groups) + len(fleet.not_checked)
    assert (first, second) == (fleet.groups[0], fleet.groups[1])
