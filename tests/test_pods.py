"""`nodedoc pods` against the real lab: the pods containerd runs, with the IPs it assigned."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from probes.node import NodeContext
from probes.readers.cri.sandboxes import list_sandboxes

pytestmark = [pytest.mark.lab, pytest.mark.every_runtime]


def nodedoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=60
    )


def pods_json(lab, *args: str) -> list[dict]:
    proc = nodedoc("pods", "--endpoint", lab.endpoint, "-o", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["items"]


def test_lists_exactly_the_lab_pods_with_their_ips(lab):
    items = pods_json(lab)
    assert {i["id"]: i["ips"] for i in items} == {p.id: [p.ip] for p in lab.pods}
    for item in items:
        assert item["state"] == "ready"
        assert item["containers"] == 1
        assert item["pid"] is None  # verbose info is fetched only when asked for


def test_verbose_adds_where_each_pod_lives_on_the_host(lab):
    for item in pods_json(lab, "--verbose"):
        assert item["pid"] and item["netns_path"].startswith("/var/run/netns/")
        assert item["snapshot_key"] == item["id"]
        assert item["image"] == lab.image


def rows(views) -> list[dict]:
    return [v.to_dict() for v in views]


def test_verbose_read_from_the_nodes_files_is_what_verbose_cri_says(lab, extra_pod):
    """pid, netns path, snapshot key and image read from containerd's state and meta.db (found as the
    command finds them: through the runtime) equal verbose CRI's for every pod; every ready pod is read from
    the files, and a stopped one (no task, so no init.pid) is asked of verbose CRI."""
    with lab.client() as client:
        client.stop_pod_sandbox(extra_pod.id)
        node = NodeContext(endpoint=lab.endpoint)
        asked: list[list[str]] = []

        def locate(ids: list[str]):
            asked.append(ids)
            return node.sandbox_locations(ids)

        fast = list_sandboxes(client, verbose=True, locate=locate)
        slow = list_sandboxes(client, verbose=True)
    assert rows(fast) == rows(slow)
    ready = {v.id for v in slow if v.ready}
    assert set(asked[0]) == ready and extra_pod.id not in ready
    assert set(node.sandbox_locations(sorted(ready))) == ready  # none fell back to verbose CRI
    assert all(v.pid and v.netns_path for v in fast if v.ready)


def test_verbose_falls_back_to_cri_where_the_files_are_not_there(lab, tmp_path):
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=tmp_path)
    with lab.client() as client:
        assert node.sandbox_locations([p.id for p in lab.pods]) == {}
        fast = list_sandboxes(client, verbose=True, locate=node.sandbox_locations)
        slow = list_sandboxes(client, verbose=True)
    assert rows(fast) == rows(slow) and all(v.pid for v in fast)


def test_verbose_under_a_host_root_reads_the_files_there(lab, tmp_path):
    """With --host-root, containerd's state and root are read under it (where the runtime says they are);
    the output is verbose CRI's, and without the state under the host root too."""
    host = tmp_path / "host"
    (host / "proc").mkdir(parents=True)
    for path in (lab.root, lab.state):
        seen = host / str(path).lstrip("/")
        seen.parent.mkdir(parents=True, exist_ok=True)
        seen.symlink_to(path)
    node = NodeContext(endpoint=lab.endpoint, host_root=host)
    assert set(node.sandbox_locations([p.id for p in lab.pods])) == {p.id for p in lab.pods}
    expected = pods_json(lab, "--verbose")
    assert pods_json(lab, "--host-root", str(host), "--verbose") == expected
    (host / str(lab.state).lstrip("/")).unlink()
    assert NodeContext(endpoint=lab.endpoint, host_root=host).sandbox_locations([lab.pods[0].id]) == {}
    assert pods_json(lab, "--host-root", str(host), "--verbose") == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("--name", "^lab-pod-1$"), {"lab-pod-1"}, id="name-regex"),
        pytest.param(("--name", "pod-[02]"), {"lab-pod-0", "lab-pod-2"}, id="name-class"),
        pytest.param(
            ("--namespace", "^nodedoc-lab$"), {"lab-pod-0", "lab-pod-1", "lab-pod-2"}, id="namespace"
        ),
        pytest.param(("--namespace", "kube-system"), set(), id="other-namespace"),
        pytest.param(("--label", "io.kubernetes.pod.name=lab-pod-2"), {"lab-pod-2"}, id="label"),
        pytest.param(
            ("--label", "app=nodedoc-lab", "--label", "io.kubernetes.pod.name=lab-pod-0"),
            {"lab-pod-0"},
            id="two-labels",
        ),
        pytest.param(("--state", "ready"), {"lab-pod-0", "lab-pod-1", "lab-pod-2"}, id="ready"),
        pytest.param(("--state", "notready"), set(), id="notready"),
    ],
)
def test_filters_select_the_right_subset(lab, args, expected):
    assert {i["name"] for i in pods_json(lab, *args)} == expected


def test_table_shows_names_and_ips(lab):
    proc = nodedoc("pods", "--endpoint", lab.endpoint)
    assert proc.returncode == 0, proc.stderr
    for pod in lab.pods:
        line = next(ln for ln in proc.stdout.splitlines() if pod.name in ln)
        assert pod.ip in line and pod.id[:13] in line


def test_endpoint_before_the_subcommand_is_honoured(lab):
    proc = nodedoc("--endpoint", lab.endpoint, "pods", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["items"]) == len(lab.pods)


def test_a_stopped_pod_is_notready(lab, extra_pod):
    with lab.client() as client:
        client.stop_pod_sandbox(extra_pod.id)
    notready = pods_json(lab, "--state", "notready")
    assert [i["id"] for i in notready] == [extra_pod.id]
    assert notready[0]["ips"] == []


def test_bad_regex_is_a_one_line_error(lab):
    proc = nodedoc("pods", "--endpoint", lab.endpoint, "--name", "(")
    assert proc.returncode != 0
    assert "not a valid regular expression" in proc.stderr and "Traceback" not in proc.stderr


def test_the_nodes_shared_sandbox_list_is_verbose_cris_without_its_info(lab):
    """What the network probe reads (NodeContext.sandboxes) is verbose CRI's listing, pid and netns path
    included, with no verbose info kept."""
    with lab.client() as client:
        slow = list_sandboxes(client, verbose=True)
    for view in slow:
        assert view.info  # verbose CRI sent it
        view.info = {}
    assert rows(NodeContext(endpoint=lab.endpoint).sandboxes()) == rows(slow)
