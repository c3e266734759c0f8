"""Version 2 and version 3 forms of the same settings give the same findings.

The version 3 text is what containerd 2.1.9's own `containerd config migrate` makes of the version 2 text (the
test runs Debian's 2.1.9 build for that; nodedoc never runs containerd). Then: what 2.x removed, and v2 tables
left in a v3 file, checked against what a live 2.1.9 really does with them.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from fixtures.containerd_builds import bare_containerd, build_bin

from probes.api import Severity
from probes.builtin.config import ConfigProbe
from probes.node import NodeContext
from probes.readers.cri.client import CriClient

CRI = '[plugins."io.containerd.grpc.v1.cri"]'
RUNC = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]'
RUNC_OPTIONS = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]'
REGISTRY = '[plugins."io.containerd.grpc.v1.cri".registry]'
MIRROR = '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\nendpoint = ["https://mirror.example"]\n'
CNI = '[plugins."io.containerd.grpc.v1.cri".cni]\nbin_dir = "/opt/cni/bin"\nconf_dir = "/etc/cni/net.d"\n'
KUBELET_CGROUPFS = "cgroupDriver: cgroupfs\n"
KUBELET_SYSTEMD = "cgroupDriver: systemd\n"


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def findings_for(root: Path, config: str, kubelet: str | None, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    write(root, "/etc/containerd/config.toml", config)
    if kubelet is not None:
        write(root, "/var/lib/kubelet/config.yaml", kubelet)
    (root / "proc").mkdir(exist_ok=True)
    # No runtime and no containerd binary under this root: the findings rest on the file alone.
    return ConfigProbe().run(NodeContext(host_root=root, proc_root=root / "proc")).findings


@pytest.fixture(scope="module")
def migrate(tmp_path_factory: pytest.TempPathFactory):
    containerd = build_bin("2") / "containerd"

    def run(v2_text: str) -> str:
        source = tmp_path_factory.mktemp("v2") / "config.toml"
        source.write_text(v2_text)
        out = subprocess.run(
            [str(containerd), "--config", str(source), "config", "migrate"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("version = 3"), out.stdout[:200]
        return out.stdout

    return run


def comparable(findings: list) -> Counter:
    """(id, severity) of every finding but the one naming the file (its text says which version it read)."""
    return Counter((f.id, f.severity) for f in findings if f.id != "config.file")


@pytest.mark.parametrize(
    ("v2", "kubelet", "expect", "dropped"),
    [
        pytest.param(
            f'version = 2\n{CRI}\nsandbox_image = "localhost/pause:lab"\nrestrict_oom_score_adj = true\n{CNI}',
            KUBELET_CGROUPFS,
            {("config.restrict-oom-score-adj", Severity.INFO), ("config.cgroup-driver", Severity.OK)},
            set(),
            id="lab-like",
        ),
        pytest.param(
            f"version = 2\n{RUNC_OPTIONS}\nSystemdCgroup = true\n",
            KUBELET_CGROUPFS,
            {("config.cgroup-driver-mismatch", Severity.CRITICAL)},
            set(),
            id="systemd-vs-cgroupfs",
        ),
        pytest.param(
            "version = 2\n",
            KUBELET_SYSTEMD,
            {("config.cgroup-driver-mismatch", Severity.CRITICAL)},
            set(),
            id="default-vs-systemd",
        ),
        pytest.param(
            f"version = 2\n{MIRROR}",
            None,
            {("config.deprecated-registry", Severity.WARNING)},
            set(),
            id="mirrors",
        ),
        pytest.param(
            f'version = 2\n{REGISTRY}\nconfig_path = "/etc/containerd/certs.d"\n{MIRROR}',
            None,
            {("config.registry-conflict", Severity.CRITICAL)},
            set(),
            id="mirrors-and-config-path",
        ),
        pytest.param(
            f"version = 2\n{CRI}\nsystemd_cgroup = true\ndisable_apparmor = true\n",
            None,
            {("config.disable-apparmor", Severity.INFO)},
            # 2.x's migrate drops the key ("Ignoring unknown key"): only the v2 file still has it to report.
            {("config.removed-setting", Severity.WARNING)},
            id="removed-systemd-cgroup",
        ),
        pytest.param(
            f'version = 2\n{RUNC}\nruntime_type = "io.containerd.runtime.v1.linux"\n',
            None,
            {("config.removed-setting", Severity.WARNING)},
            set(),  # migrate keeps runtime_type as it is
            id="removed-runtime-v1",
        ),
    ],
)
def test_v2_and_its_migrated_v3_give_the_same_findings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    migrate,
    v2: str,
    kubelet: str | None,
    expect: set,
    dropped: set,
) -> None:
    v3 = migrate(v2)
    old = findings_for(tmp_path / "v2", v2, kubelet, monkeypatch)
    new = findings_for(tmp_path / "v3", v3, kubelet, monkeypatch)
    assert comparable(old) - Counter(dropped) == comparable(new), (comparable(old), comparable(new))
    assert set(dropped) <= set(comparable(old))
    assert expect <= set(comparable(new)), comparable(new)
    assert "config.v2-table-in-v3" not in {f.id for f in new}  # migrate leaves only streaming keys behind
    for finding in (f for f in old if (f.id, f.severity) not in dropped):
        twin = next(f for f in new if f.id == finding.id and f.subject.keys() == finding.subject.keys())
        if finding.id == "config.cgroup-driver-mismatch":
            assert twin.evidence["SystemdCgroup"] == finding.evidence["SystemdCgroup"]
            assert "io.containerd.cri.v1.runtime" in twin.evidence["table"]
        if finding.id in ("config.deprecated-registry", "config.registry-conflict"):
            assert twin.remediation[0].command == finding.remediation[0].command  # the same hosts.toml
            assert twin.evidence["table"] == "plugins.'io.containerd.cri.v1.images'.registry"
        if finding.id == "config.removed-setting":
            assert twin.evidence["key"] == finding.evidence["key"]
            assert twin.evidence["deprecation"] == finding.evidence["deprecation"]
        if finding.id == "config.cni":
            assert twin.evidence == finding.evidence


def test_migrated_lab_config_reads_the_same_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, migrate
) -> None:
    v2 = f'version = 2\n{CRI}\nsandbox_image = "localhost/pause:lab"\n{CNI}'
    findings = findings_for(tmp_path, migrate(v2), None, monkeypatch)
    images = next(f for f in findings if f.id == "config.images")
    assert images.evidence == {"sandbox_image": "localhost/pause:lab", "snapshotter": "overlayfs"}
    cni = next(f for f in findings if f.id.startswith("config.cni"))
    assert cni.evidence.get("bin_dirs", ["/opt/cni/bin"]) == ["/opt/cni/bin"]


V3_MISPLACED = (
    "[plugins.'io.containerd.grpc.v1.cri']\n  stream_server_port = '0'\n"
    "[plugins.'io.containerd.grpc.v1.cri'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n"
)


def test_v2_table_in_a_v3_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = findings_for(tmp_path, "version = 3\n" + V3_MISPLACED, KUBELET_SYSTEMD, monkeypatch)
    misplaced = next(f for f in found if f.id == "config.v2-table-in-v3")
    assert misplaced.severity is Severity.WARNING
    assert misplaced.evidence["keys"] == ["containerd.runtimes"]
    assert misplaced.evidence["belongs_in"] == ["plugins.'io.containerd.cri.v1.runtime'.containerd"]
    # ... and the setting really is not applied: runc stays on cgroupfs, which the kubelet does not use.
    assert any(f.id == "config.cgroup-driver-mismatch" for f in found)


@pytest.mark.lab
@pytest.mark.root
def test_containerd_2_ignores_what_the_findings_say_it_ignores() -> None:
    """On a live 2.1.9: SystemdCgroup in the old table (v3 file) and systemd_cgroup (v2 file) have no effect."""
    bin_dir = build_bin("2")
    with bare_containerd(bin_dir, V3_MISPLACED, version=3) as ctd:
        with CriClient.connect(ctd.endpoint) as client:
            config = json.loads(client.status(verbose=True).info["config"])
        assert config["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    with bare_containerd(bin_dir, f"{CRI}\nsystemd_cgroup = true\n") as ctd:
        log = (ctd.dir / "containerd.log").read_text()
        assert "Ignoring unknown key in TOML for plugin" in log and "key=systemd_cgroup" in log
        assert "Configuration migrated from version 2" in log
