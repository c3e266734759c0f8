"""The config probe on containerd configs (v2, v3, imports, k3s) and kubelet configs under a temporary host root."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.api import Severity
from probes.builtin.config import ConfigProbe
from probes.node import NodeContext
from probes.readers.host.kubelet_config import read_top_level

V2_RUNC = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]'
V3_RUNC = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]"
V2_REGISTRY = '[plugins."io.containerd.grpc.v1.cri".registry]'
V3_REGISTRY = "[plugins.'io.containerd.cri.v1.images'.registry]"
V2_MIRROR = '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\nendpoint = ["https://mirror.example"]\n'
V3_MIRROR = "[plugins.'io.containerd.cri.v1.images'.registry.mirrors.'docker.io']\nendpoint = ['https://mirror.example']\n"


def write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def run(root: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    (root / "proc").mkdir(exist_ok=True)
    return ConfigProbe().run(NodeContext(host_root=root, proc_root=root / "proc")).findings


def by_id(findings: list, finding_id: str):
    return next((f for f in findings if f.id == finding_id), None)


@pytest.mark.parametrize(
    ("config", "kubelet", "expect"),
    [
        pytest.param(
            f"version = 2\n{V2_RUNC}\nSystemdCgroup = true\n",
            "cgroupDriver: systemd\n",
            Severity.OK,
            id="v2-systemd-both",
        ),
        pytest.param(
            f"version = 2\n{V2_RUNC}\nSystemdCgroup = true\n",
            "cgroupDriver: cgroupfs\n",
            Severity.CRITICAL,
            id="v2-systemd-vs-cgroupfs",
        ),
        pytest.param(
            "version = 2\n", "cgroupDriver: systemd\n", Severity.CRITICAL, id="v2-default-vs-systemd"
        ),
        pytest.param(
            "version = 2\n", "kind: KubeletConfiguration\n", Severity.OK, id="both-defaults-cgroupfs"
        ),
        pytest.param(
            f"version = 3\n{V3_RUNC}\nSystemdCgroup = true\n",
            'cgroupDriver: "systemd"  # kubeadm\n',
            Severity.OK,
            id="v3-systemd-both",
        ),
        pytest.param(
            f"version = 3\n{V3_RUNC}\nSystemdCgroup = false\n",
            "cgroupDriver: systemd\n",
            Severity.CRITICAL,
            id="v3-cgroupfs-vs-systemd",
        ),
        pytest.param(f"version = 2\n{V2_RUNC}\nSystemdCgroup = true\n", None, Severity.INFO, id="no-kubelet"),
    ],
)
def test_cgroup_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, kubelet: str | None, expect: Severity
) -> None:
    write(tmp_path, "/etc/containerd/config.toml", config)
    if kubelet is not None:
        write(
            tmp_path,
            "/var/lib/kubelet/config.yaml",
            "apiVersion: kubelet.config.k8s.io/v1beta1\nauthentication:\n  anonymous:\n    enabled: false\n"
            + kubelet,
        )
    found = run(tmp_path, monkeypatch)
    finding = by_id(found, "config.cgroup-driver-mismatch") or by_id(found, "config.cgroup-driver")
    assert finding is not None and finding.severity is expect
    if expect is Severity.CRITICAL:
        assert "SystemdCgroup" in finding.remediation[0].text and finding.remediation[0].command


def test_kubeadm_flag_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "/etc/containerd/config.toml", f"version = 2\n{V2_RUNC}\nSystemdCgroup = true\n")
    write(tmp_path, "/var/lib/kubelet/config.yaml", "cgroupDriver: systemd\n")
    write(tmp_path, "/var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="--cgroup-driver=cgroupfs"\n')
    mismatch = by_id(run(tmp_path, monkeypatch), "config.cgroup-driver-mismatch")
    assert mismatch is not None and "kubeadm-flags.env" in mismatch.evidence["kubelet_origin"]


@pytest.mark.parametrize(
    ("config", "expect_id", "severity"),
    [
        pytest.param(
            f"version = 2\n{V2_MIRROR}", "config.deprecated-registry", Severity.WARNING, id="v2-mirrors"
        ),
        pytest.param(
            'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]\n'
            'username = "u"\n',
            "config.deprecated-registry",
            Severity.WARNING,
            id="v2-configs-auth",
        ),
        pytest.param(
            f'version = 2\n{V2_REGISTRY}\nconfig_path = "/etc/containerd/certs.d"\n{V2_MIRROR}',
            "config.registry-conflict",
            Severity.CRITICAL,
            id="v2-mirrors-and-config-path",
        ),
        pytest.param(
            f'version = 2\n{V2_REGISTRY}\nconfig_path = "/etc/containerd/certs.d"\n'
            '[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".tls]\n'
            "insecure_skip_verify = true\n",
            "config.registry-conflict",
            Severity.CRITICAL,
            id="v2-configs-tls-and-config-path",
        ),
        pytest.param(
            f"version = 3\n{V3_MIRROR}", "config.deprecated-registry", Severity.WARNING, id="v3-mirrors"
        ),
        pytest.param(
            f'version = 3\n{V3_REGISTRY}\nconfig_path = "/etc/containerd/certs.d"\n',
            None,
            None,
            id="v3-config-path-only",
        ),
    ],
)
def test_registry(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: str,
    expect_id: str | None,
    severity: Severity | None,
) -> None:
    write(tmp_path, "/etc/containerd/config.toml", config)
    found = run(tmp_path, monkeypatch)
    registry = [f for f in found if f.id in ("config.deprecated-registry", "config.registry-conflict")]
    if expect_id is None:
        assert registry == []
        return
    assert [(f.id, f.severity) for f in registry] == [(expect_id, severity)]
    commands = "\n".join(r.command or "" for r in registry[0].remediation)
    assert "config_path" in "\n".join(r.text for r in registry[0].remediation)
    if "mirrors" in config:
        assert "/etc/containerd/certs.d/docker.io/hosts.toml" in commands
        assert (
            '[host."https://mirror.example"]' in commands
            and 'server = "https://registry-1.docker.io"' in commands
        )


def test_parse_error_names_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path, "/etc/containerd/config.toml", 'version = 2\n[plugins."io.containerd.grpc.v1.cri"\nx = 1\n'
    )
    found = run(tmp_path, monkeypatch)
    assert [f.id for f in found] == ["config.parse-error"]
    assert found[0].evidence["line"] == 2 and found[0].severity is Severity.CRITICAL
    assert found[0].remediation[0].command == "$EDITOR +2 /etc/containerd/config.toml"


def test_imports_merge_and_their_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "/etc/containerd/config.toml", 'version = 2\nimports = ["conf.d/*.toml"]\n')
    write(tmp_path, "/etc/containerd/conf.d/10-mirror.toml", f"version = 2\n{V2_MIRROR}")
    found = run(tmp_path, monkeypatch)
    assert by_id(found, "config.deprecated-registry") is not None
    assert "/etc/containerd/conf.d/10-mirror.toml" in by_id(found, "config.file").summary
    write(tmp_path, "/etc/containerd/conf.d/20-broken.toml", "this is = = broken\n")
    broken = run(tmp_path, monkeypatch)
    assert broken[0].id == "config.parse-error" and broken[0].evidence["file"].endswith("20-broken.toml")


def test_cni_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        "/etc/containerd/config.toml",
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n'
        'bin_dir = "/opt/cni/bin"\nconf_dir = "/etc/cni/net.d"\n',
    )
    write(tmp_path, "/var/lib/kubelet/config.yaml", "cgroupDriver: cgroupfs\n")
    assert by_id(run(tmp_path, monkeypatch), "config.cni-conf-dir").severity is Severity.WARNING
    write(
        tmp_path,
        "/etc/cni/net.d/10-bridge.conflist",
        '{"cniVersion": "0.4.0", "name": "n", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}]}',
    )
    assert by_id(run(tmp_path, monkeypatch), "config.cni-bin-dir").severity is Severity.WARNING
    write(tmp_path, "/opt/cni/bin/bridge", "", 0o755)
    missing = by_id(run(tmp_path, monkeypatch), "config.cni-plugin-missing")
    assert (
        missing is not None
        and "host-local" in missing.summary
        and "bridge" not in missing.summary.split("[")[1]
    )
    write(tmp_path, "/opt/cni/bin/host-local", "", 0o755)
    assert by_id(run(tmp_path, monkeypatch), "config.cni").severity is Severity.OK


def test_k3s_template_and_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
    write(
        tmp_path,
        path,
        'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\nrestrict_oom_score_adj = true\n'
        "disable_apparmor = true\n" + V2_MIRROR,
    )
    found = run(tmp_path, monkeypatch)
    assert "config.toml.tmpl" in by_id(found, "config.file").summary
    assert "registries.yaml" in by_id(found, "config.deprecated-registry").remediation[0].command
    assert {"config.restrict-oom-score-adj", "config.disable-apparmor"} <= {f.id for f in found}


def test_env_names_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "/lab/config.toml", f"version = 2\n{V2_MIRROR}")
    write(tmp_path, "/etc/containerd/config.toml", "version = 2\n")
    monkeypatch.setenv("NODEDOC_CONTAINERD_CONFIG", "/lab/config.toml")
    (tmp_path / "proc").mkdir()
    found = ConfigProbe().run(NodeContext(host_root=tmp_path, proc_root=tmp_path / "proc")).findings
    assert by_id(found, "config.file").subject["file"] == "/lab/config.toml"
    assert by_id(found, "config.deprecated-registry") is not None


def test_no_config_uses_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = run(tmp_path, monkeypatch)
    assert by_id(found, "config.defaults").severity is Severity.INFO
    assert by_id(found, "config.images").evidence["snapshotter"] == "overlayfs"


def test_read_top_level_yaml() -> None:
    text = (
        "apiVersion: v1\nauthentication:\n  cgroupDriver: nested\ncgroupDriver: 'systemd' # x\nlist:\n- a\n"
    )
    assert read_top_level(text) == {"apiVersion": "v1", "cgroupDriver": "systemd"}


def test_this_machine_has_no_false_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    found = ConfigProbe().run(NodeContext()).findings
    assert found
    assert not [f.id for f in found if f.severity.rank >= Severity.WARNING.rank]


@pytest.mark.lab
def test_lab_config(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("no `lab` fixture in tests/conftest.py yet")
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    found = ConfigProbe().run(NodeContext(endpoint=lab.endpoint)).findings
    assert str(lab.dir) in by_id(found, "config.file").subject["file"]
    assert by_id(found, "config.cni").severity is Severity.OK
    assert not [f.id for f in found if f.severity.rank >= Severity.WARNING.rank]


HEAD = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "p"\n'
MIRROR = (
    '  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n    endpoint = ["https://m"]\n'
)
TAIL = '  # CNI\n  [plugins."io.containerd.grpc.v1.cri".cni]\n    bin_dir = "/usr/lib/cni"\n'
REGISTRY = '  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = ""\n'


@pytest.mark.parametrize(
    ("text", "editable"),
    [
        pytest.param(HEAD + MIRROR, True, id="mirror-last"),
        pytest.param(HEAD + MIRROR + TAIL, True, id="mirror-in-the-middle"),
        pytest.param(
            HEAD + REGISTRY.replace('    config_path = ""\n', "") + MIRROR + TAIL, True, id="with-header"
        ),
        pytest.param(HEAD + MIRROR + MIRROR.replace("docker.io", "quay.io") + TAIL, True, id="two-mirrors"),
        pytest.param(
            HEAD + '  [plugins."io.containerd.grpc.v1.cri".registry]\n    mirrors = { "docker.io" = {} }\n',
            False,
            id="inline-table",
        ),
    ],
)
def test_registry_edit_as_sed_runs_it(tmp_path: Path, text: str, editable: bool) -> None:
    """The printed sed, run by sed itself: the deprecated tables are gone, config_path is set, the rest stays."""
    import shutil
    import subprocess

    import tomllib

    from probes.builtin.config import registry_edit

    table = 'plugins."io.containerd.grpc.v1.cri".registry'
    edit = registry_edit(text, table, {"mirrors"}, "/etc/containerd/certs.d")
    assert (edit is not None) == editable
    if edit is None or shutil.which("sed") is None:
        return
    path = tmp_path / "config.toml"
    path.write_text(text)
    subprocess.run(f"sed -i.nodedoc.bak {edit} {path}", shell=True, check=True)
    after = tomllib.loads(path.read_text())
    cri = after["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"] == {"config_path": "/etc/containerd/certs.d"}
    assert cri["sandbox_image"] == "p" and ("cni" in cri) == (
        "cni" in tomllib.loads(text)["plugins"]["io.containerd.grpc.v1.cri"]
    )
    assert (tmp_path / "config.toml.nodedoc.bak").read_text() == text
