"""The host probe on a temporary host root with its own /proc files, and on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.pipe_hog import soft_limit_held

from probes.api import Severity
from probes.builtin.host import HostProbe, reports_d_type
from probes.node import NodeContext

FILESYSTEMS_WITH_OVERLAY = "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n"
BRIDGE = '{"cniVersion": "0.4.0", "name": "n", "plugins": [{"type": "bridge", "isGateway": %s}]}'


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def host_tree(
    root: Path, sysctls: dict[str, str] | None = None, filesystems: str = FILESYSTEMS_WITH_OVERLAY
) -> None:
    """A host root with /proc/filesystems, /proc/cgroups and sysctls (default values unless overridden)."""
    write(root, "/proc/filesystems", filesystems)
    write(
        root,
        "/proc/cgroups",
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t2\t1\t1\npids\t3\t1\t1\n",
    )
    (root / "sys/fs/cgroup").mkdir(parents=True, exist_ok=True)
    values = {"fs.pipe-user-pages-soft": "16384", "net.ipv4.ip_forward": "1", **(sysctls or {})}
    for name, value in values.items():
        write(root, "/proc/sys/" + name.replace(".", "/"), value + "\n")


def run(root: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    return HostProbe().run(NodeContext(host_root=root, proc_root=root / "proc")).findings


def ids(findings: list) -> dict[str, Severity]:
    return {f.id: f.severity for f in findings}


@pytest.mark.parametrize(
    ("sysctls", "filesystems", "expect"),
    [
        pytest.param({}, FILESYSTEMS_WITH_OVERLAY, {}, id="defaults"),
        pytest.param(
            {"fs.may_detach_mounts": "0"},
            FILESYSTEMS_WITH_OVERLAY,
            {"host.may-detach-mounts": Severity.WARNING},
            id="detach-0",
        ),
        pytest.param({"fs.may_detach_mounts": "1"}, FILESYSTEMS_WITH_OVERLAY, {}, id="detach-1"),
        pytest.param(
            {"fs.pipe-user-pages-soft": "1"},
            FILESYSTEMS_WITH_OVERLAY,
            {"host.pipe-user-pages-soft": Severity.WARNING},
            id="pipe-soft-lowered",
        ),
        pytest.param(
            {"fs.pipe-user-pages-soft": "0"}, FILESYSTEMS_WITH_OVERLAY, {}, id="pipe-soft-unlimited"
        ),
        pytest.param({}, "nodev\tsysfs\n", {"host.overlay-missing": Severity.CRITICAL}, id="no-overlay"),
    ],
)
def test_kernel_conditions(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sysctls: dict[str, str],
    filesystems: str,
    expect: dict[str, Severity],
) -> None:
    host_tree(tmp_path, sysctls, filesystems)
    found = ids(run(tmp_path, monkeypatch))
    problems = {k: v for k, v in found.items() if v.rank >= Severity.WARNING.rank}
    assert problems == expect


def test_overlay_module_installed_is_info(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    host_tree(tmp_path, filesystems="nodev\tsysfs\n")
    write(tmp_path, f"/lib/modules/{os.uname().release}/kernel/fs/overlayfs/overlay.ko.xz", "")
    assert ids(run(tmp_path, monkeypatch))["host.overlay-missing"] is Severity.INFO


@pytest.mark.parametrize(
    ("gateway", "forward", "kubelet", "expect"),
    [
        pytest.param(
            "false", "0", False, {"host.ip-forward": Severity.WARNING}, id="bridge-no-gateway-forward-off"
        ),
        pytest.param("true", "0", False, {}, id="gateway-turns-it-on"),
        pytest.param(
            "true", "1", True, {"host.bridge-nf-call-iptables": Severity.WARNING}, id="kubelet-needs-nf"
        ),
        pytest.param(None, "0", True, {}, id="no-bridge-cni"),
    ],
)
def test_bridge_sysctls(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gateway: str | None,
    forward: str,
    kubelet: bool,
    expect: dict[str, Severity],
) -> None:
    host_tree(tmp_path, {"net.ipv4.ip_forward": forward})
    if gateway is not None:
        write(tmp_path, "/etc/cni/net.d/10-bridge.conflist", BRIDGE % gateway)
    if kubelet:
        write(tmp_path, "/var/lib/kubelet/config.yaml", "cgroupDriver: systemd\n")
    found = ids(run(tmp_path, monkeypatch))
    assert {k: v for k, v in found.items() if v.rank >= Severity.WARNING.rank} == expect


def test_space_and_cgroups_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_tree(tmp_path)
    found = run(tmp_path, monkeypatch)
    space = [f for f in found if f.id == "host.disk-space"]
    assert {f.subject["filesystem"] for f in space} == {"root", "state"}
    cgroup = next(f for f in found if f.id == "host.cgroup")
    assert cgroup.evidence["controllers"] == ["cpu", "memory", "pids"]


def test_d_type_on_tmp() -> None:
    assert reports_d_type(Path("/tmp")) is True
    assert reports_d_type(Path("/nonexistent/dir")) is None


def test_this_machine_has_no_false_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    with soft_limit_held():  # not while another test run has lowered it
        found = HostProbe().run(NodeContext()).findings
    assert any(f.id == "host.disk-space" for f in found)
    assert not [f.id for f in found if f.severity.rank >= Severity.WARNING.rank]


@pytest.mark.lab
def test_lab_host(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("no `lab` fixture in tests/conftest.py yet")
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    with soft_limit_held():
        found = HostProbe().run(NodeContext(endpoint=lab.endpoint)).findings
    assert not [f.id for f in found if f.severity.rank >= Severity.WARNING.rank]
