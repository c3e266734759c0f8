"""One consistent --host-root: sockets, files, the runtime's own paths and procfs are all read under it.

A foreign root without proc (a copied tree) has no processes: the process probes are skipped as not
applicable, never a false ``runtime.containerd-not-running`` from this machine's own shims.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nodedoc_cli import nodedoc

from probes.api import Need
from probes.node import NodeContext, NotApplicable

pytestmark = pytest.mark.lab


def under(root: Path, host_path: Path) -> Path:
    return root / str(host_path).lstrip("/")


def test_copied_tree_without_proc_skips_process_probes_and_raises_no_false_critical(lab, tmp_path):
    (tmp_path / "etc").mkdir()
    args = ["--host-root", str(tmp_path), "--endpoint", lab.endpoint, "--containerd-root", str(lab.root)]
    args += ["--containerd-state", str(lab.state)]
    probes = ("--probe", "runc", "--probe", "network", "--probe", "runtime")
    proc = nodedoc(*args, "check", *probes, "--format", "json")
    doc = json.loads(proc.stdout)
    status = {p["id"]: p for p in doc["probes"]}
    for probe in ("runc", "network"):
        assert status[probe]["status"] == "skipped" and status[probe]["not_applicable"] is True
        assert f"no procfs at {tmp_path}/proc" in status[probe]["reason"]
    assert [f["id"] for f in doc["findings"]] == ["runtime.ok"] and proc.returncode == 0, proc.stdout
    assert doc["node"]["kernel"] == "unknown (no procfs under the host root)"  # not this machine's
    procs = nodedoc(*args, "procs")
    assert procs.returncode == 3 and procs.stderr.startswith(f"nodedoc: no procfs at {tmp_path}/proc")


def test_the_runtimes_own_paths_and_the_hosts_crictl_yaml_are_read_under_the_host_root(lab, tmp_path):
    """The runtime names its root as the host sees it; the host's crictl.yaml names the host's socket."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "proc").symlink_to("/proc")
    (host / "etc" / "crictl.yaml").write_text("runtime-endpoint: unix:///run/cri/lab.sock\n")
    (host / "run" / "cri").mkdir(parents=True)
    (host / "run" / "cri" / "lab.sock").symlink_to(lab.socket)
    seen_root = under(host, lab.root)
    seen_root.parent.mkdir(parents=True)
    seen_root.symlink_to(lab.root)

    node = NodeContext(host_root=host)
    assert node.cri().endpoint == f"unix://{host}/run/cri/lab.sock"
    assert node.root() == seen_root  # not the lab's own path on this machine
    pods = nodedoc("--host-root", str(host), "pods", "-o", "json")
    assert pods.returncode == 0, pods.stderr
    assert {p["id"] for p in json.loads(pods.stdout)["items"]} >= {p.id for p in lab.pods}


def test_explicit_paths_are_used_as_given(lab, tmp_path):
    node = NodeContext(
        host_root=tmp_path, endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state
    )
    assert node.root() == lab.root and node.state() == lab.state
    assert node.cri().endpoint == lab.endpoint
    assert isinstance(node.unmet_need(Need.PROCFS), NotApplicable)


def test_containerd_config_may_be_named_as_given_or_as_the_host_sees_it(tmp_path):
    from tui.options import as_host_path

    config = tmp_path / "etc" / "containerd" / "config.toml"
    assert as_host_path(str(config), tmp_path) == "/etc/containerd/config.toml"
    assert as_host_path("/etc/containerd/config.toml", tmp_path) == "/etc/containerd/config.toml"
    assert as_host_path(str(config), Path("/")) == str(config)
