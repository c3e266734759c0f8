"""The service probe on host trees built under a temporary --host-root, and on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from gobinaries import write_go_binary

from probes.api import Severity
from probes.builtin.service import ServiceProbe
from probes.node import NodeContext
from probes.readers.host.systemd_unit import read_unit

UPSTREAM_UNIT = """[Unit]
Description=containerd container runtime
[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart={exec}
Type=notify
Delegate=yes
{killmode}
Restart=always
LimitNOFILE=infinity
OOMScoreAdjust=-999
"""


def write(root: Path, path: str, text: str, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def node_for(root: Path, monkeypatch: pytest.MonkeyPatch) -> NodeContext:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    (root / "proc").mkdir(exist_ok=True)
    return NodeContext(host_root=root, proc_root=root / "proc")


def systemd_booted(root: Path) -> None:
    (root / "run/systemd/system").mkdir(parents=True, exist_ok=True)


def install(root: Path, *, containerd: str = "/usr/bin/containerd", version: str = "v1.6.28") -> None:
    write_go_binary(root, containerd, "containerd", version, "0123456789abcdef")
    shim = str(Path(containerd).parent / "containerd-shim-runc-v2")
    write_go_binary(root, shim, "containerd-shim-runc-v2", version, "0123456789abcdef")
    write_go_binary(root, "/usr/sbin/runc", "runc", "1.1.12", "v1.1.12-0-g51d5e946")


def ids(findings: list, severity: Severity | None = None) -> set[str]:
    return {f.id for f in findings if severity is None or f.severity is severity}


@pytest.mark.parametrize(
    ("killmode", "expect_critical"),
    [
        pytest.param("KillMode=process", False, id="process"),
        pytest.param("KillMode=control-group", True, id="control-group"),
        pytest.param("KillMode=mixed", True, id="mixed"),
        pytest.param("", True, id="unset-defaults-to-control-group"),
    ],
)
def test_killmode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killmode: str, expect_critical: bool
) -> None:
    systemd_booted(tmp_path)
    install(tmp_path)
    write(
        tmp_path,
        "/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/usr/bin/containerd", killmode=killmode),
    )
    outcome = ServiceProbe().run(node_for(tmp_path, monkeypatch))
    critical = [f for f in outcome.findings if f.id == "service.killmode"]
    assert bool(critical) is expect_critical
    if critical:
        assert critical[0].severity is Severity.CRITICAL
        assert "KillMode=process" in critical[0].remediation[0].command
    else:
        assert "service.unit" in ids(outcome.findings, Severity.OK)


@pytest.mark.parametrize(
    ("dropins", "killmode", "exec_start"),
    [
        pytest.param(
            {"/etc/systemd/system/containerd.service.d/10.conf": "[Service]\nKillMode=mixed\n"},
            "mixed",
            ["/usr/bin/containerd"],
            id="etc-dropin-overrides",
        ),
        pytest.param(
            {
                "/etc/systemd/system/containerd.service.d/10.conf": "[Service]\nKillMode=mixed\n",
                "/etc/systemd/system/containerd.service.d/20.conf": "[Service]\nKillMode=process\n",
            },
            "process",
            ["/usr/bin/containerd"],
            id="later-name-wins",
        ),
        pytest.param(
            {
                "/usr/lib/systemd/system/containerd.service.d/10.conf": "[Service]\nKillMode=mixed\n",
                "/etc/systemd/system/containerd.service.d/10.conf": "[Service]\nKillMode=process\n",
            },
            "process",
            ["/usr/bin/containerd"],
            id="etc-masks-same-name",
        ),
        pytest.param(
            {
                "/run/systemd/system/containerd.service.d/x.conf": "[Service]\nExecStart=\nExecStart=/usr/local/bin/containerd\n"
            },
            "process",
            ["/usr/local/bin/containerd"],
            id="exec-reset-then-set",
        ),
        pytest.param(
            {
                "/etc/systemd/system/containerd.service.d/x.conf": "[Service]\nExecStart=/usr/local/bin/containerd\n"
            },
            "process",
            ["/usr/bin/containerd", "/usr/local/bin/containerd"],
            id="exec-appended",
        ),
    ],
)
def test_dropins(tmp_path: Path, dropins: dict[str, str], killmode: str, exec_start: list[str]) -> None:
    write(
        tmp_path,
        "/usr/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/usr/bin/containerd", killmode="KillMode=process"),
    )
    for path, text in dropins.items():
        write(tmp_path, path, text)
    unit = read_unit(tmp_path, "containerd.service")
    assert unit.value("Service", "KillMode") == killmode
    assert [a.value for a in unit.all("Service", "ExecStart")] == exec_start


def test_duplicate_exec_start_is_critical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    systemd_booted(tmp_path)
    install(tmp_path)
    install(tmp_path, containerd="/usr/local/bin/containerd", version="v1.6.28")
    write(
        tmp_path,
        "/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/usr/bin/containerd", killmode="KillMode=process"),
    )
    write(
        tmp_path,
        "/etc/systemd/system/containerd.service.d/override.conf",
        "[Service]\nExecStart=/usr/local/bin/containerd\n",
    )
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    dup = next(f for f in found if f.id == "service.exec-duplicate")
    assert dup.severity is Severity.CRITICAL and "ExecStart=\\n" in dup.remediation[0].command


def test_seed001_unit_and_path_disagree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The unit still starts the old /usr/bin containerd while the new one is in /usr/local/bin (first on PATH)."""
    systemd_booted(tmp_path)
    install(tmp_path, containerd="/usr/bin/containerd", version="v1.6.14")
    install(tmp_path, containerd="/usr/local/bin/containerd", version="v1.6.28")
    write(
        tmp_path,
        "/usr/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/usr/bin/containerd", killmode="KillMode=process"),
    )
    outcome = ServiceProbe().run(node_for(tmp_path, monkeypatch))
    mismatch = next(f for f in outcome.findings if f.id == "service.binary-mismatch")
    assert mismatch.severity is Severity.WARNING
    assert (
        mismatch.evidence["unit"]["version"] == "v1.6.14"
        and mismatch.evidence["path"]["version"] == "v1.6.28"
    )
    assert "ExecStart=/usr/local/bin/containerd" in mismatch.remediation[0].command
    shim = next(f for f in outcome.findings if f.id == "service.shim-mismatch")
    assert "v1.6.28" in shim.summary and "v1.6.14" in shim.summary


def test_same_binary_through_symlinked_bin_is_no_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Merged /usr: /bin -> usr/bin makes /bin/containerd and /usr/bin/containerd one file."""
    systemd_booted(tmp_path)
    install(tmp_path)
    (tmp_path / "bin").symlink_to("usr/bin")
    write(
        tmp_path,
        "/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/bin/containerd", killmode="KillMode=process"),
    )
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    assert not ids(found, Severity.WARNING) and not ids(found, Severity.CRITICAL)
    assert "service.binary-mismatch" not in ids(found)


def test_missing_exec_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    systemd_booted(tmp_path)
    install(tmp_path)
    write(
        tmp_path,
        "/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/opt/containerd/bin/containerd", killmode="KillMode=process"),
    )
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    missing = next(f for f in found if f.id == "service.exec-missing")
    assert (
        missing.severity is Severity.CRITICAL
        and "ExecStart=/usr/bin/containerd" in missing.remediation[0].command
    )


def test_runc_binary_name_differs_from_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(tmp_path)
    write_go_binary(tmp_path, "/opt/runc/runc", "runc", "1.0.0-rc93", "v1.0.0-rc93-0-g12644e61")
    write(
        tmp_path,
        "/etc/containerd/config.toml",
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        'BinaryName = "/opt/runc/runc"\n',
    )
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    runc = next(f for f in found if f.id == "service.runc-mismatch")
    assert runc.evidence["containerd_runc"]["version"] == "1.0.0-rc93"
    assert runc.remediation[0].command == "ln -sf /opt/runc/runc /usr/sbin/runc"


def test_no_unit_k3s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    systemd_booted(tmp_path)
    write(tmp_path, "/etc/systemd/system/k3s.service", "[Service]\nExecStart=/usr/local/bin/k3s server\n")
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    no_unit = next(f for f in found if f.id == "service.no-unit")
    assert "k3s.service" in no_unit.summary
    assert "service.no-containerd" in ids(found)
    assert not ids(found, Severity.WARNING) | ids(found, Severity.CRITICAL)


def install_with_killmode_mixed(root: Path) -> None:
    install(root)
    write(
        root,
        "/lib/systemd/system/containerd.service",
        UPSTREAM_UNIT.format(exec="/usr/bin/containerd", killmode="KillMode=mixed"),
    )


def test_live_root_without_systemd_makes_unit_findings_informational(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a live root without systemd is lenient: nothing starts containerd through the unit. A root is
    live when its procfs shows processes: this machine's /, or a node's / at /host in a debug pod."""
    install_with_killmode_mixed(tmp_path)
    (tmp_path / "proc/1").mkdir(parents=True)
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    killmode = next(f for f in found if f.id == "service.killmode")
    assert killmode.severity is Severity.INFO and "systemd is not running" in killmode.summary
    assert "service.systemd-not-running" in ids(found)


def test_foreign_root_unit_is_judged_at_full_severity_without_run_systemd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copied tree has an empty /run: its unit is still what systemd there would start."""
    install_with_killmode_mixed(tmp_path)
    assert not (tmp_path / "run/systemd/system").exists()
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    killmode = next(f for f in found if f.id == "service.killmode")
    assert killmode.severity is Severity.CRITICAL and "systemd is not running" not in killmode.summary
    assert "service.systemd-not-running" not in ids(found)


def test_garbage_unit_is_one_syntax_finding_naming_the_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    systemd_booted(tmp_path)
    install(tmp_path)
    garbage = "\n".join(f"garbage line {n} without an equals sign" for n in range(74))
    unit = UPSTREAM_UNIT.format(exec="/usr/bin/containerd", killmode="KillMode=process")
    write(tmp_path, "/lib/systemd/system/containerd.service", unit + garbage + "\n")
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    (syntax,) = [f for f in found if f.id == "service.unit-syntax"]
    first = unit.count("\n") + 1
    path = "/lib/systemd/system/containerd.service"
    assert syntax.severity is Severity.WARNING and syntax.title == "74 unreadable lines in the unit"
    assert syntax.evidence["lines"] == [f"{path}:{n}" for n in range(first, first + 74)]
    assert f"{path}:{first}, {path}:{first + 1}" in syntax.summary and "and 64 more" in syntax.summary


def test_every_problem_finding_has_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    systemd_booted(tmp_path)
    install(tmp_path, containerd="/usr/bin/containerd", version="v1.6.14")
    install(tmp_path, containerd="/usr/local/bin/containerd", version="v1.6.28")
    write(
        tmp_path, "/lib/systemd/system/containerd.service", "[Service]\nExecStart=/usr/bin/containerd # new\n"
    )
    found = ServiceProbe().run(node_for(tmp_path, monkeypatch)).findings
    problems = [f for f in found if f.severity.rank >= Severity.WARNING.rank]
    assert {"service.killmode", "service.delegate", "service.binary-mismatch", "service.exec-comment"} <= ids(
        problems
    )
    for f in problems:
        assert f.remediation and all(r.command for r in f.remediation), f.id


def test_this_machine_has_no_false_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    found = ServiceProbe().run(NodeContext()).findings
    assert found
    assert not [f.id for f in found if f.severity.rank >= Severity.WARNING.rank]
