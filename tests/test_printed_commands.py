"""Node-derived values in printed commands stay one inert word, whatever they hold.

Every remedy builder that puts a value from the node or the runtime into a command (pod names and namespaces,
sandbox ids, image names, paths from containerd's config and disk, CNI's interface names and gateways, unit and
drop-in paths, snapshot digests) is fed each hostile value below, the way the node would hand it over: a pod
that CRI ran, a file nodedoc read under a temporary --host-root. Two checks per command:

- ``shlex.split(command)`` holds the value as one token, equal to it (or to the flag that carries it:
  ``--net=<path>``);
- the command, run as printed by ``sh -c`` (as root, in a private mount namespace with tmpfs over /etc's
  containerd and systemd directories, every program but ``mkdir`` and ``cat`` a stand-in that records its
  arguments), creates no marker file, and the programs get the value as one argument: shlex does not expand
  ``$(...)`` inside double quotes, a shell does, so only the shell can tell.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gobinaries import write_go_binary

from probes.api import Finding, Remedy
from probes.builtin.config import ConfigProbe
from probes.builtin.deprecations import DeprecationsProbe
from probes.builtin.host import HostProbe
from probes.builtin.network import NetworkProbe, PodCheck
from probes.builtin.service import ServiceProbe
from probes.compat import tomllib
from probes.knowledge.deprecations import fixes
from probes.knowledge.known_issues import changelog_command
from probes.knowledge.remedies.snapshots import bring_layers_back, recreate_snapshot, refetch_blob
from probes.node import NodeContext
from probes.readers.cri.sandboxes import SandboxView
from probes.shell import systemd_word
from probes.versions import parse
from tui.runbook import RunbookError, load_runbook

MARKER = Path(f"/tmp/pwned-{os.getpid()}")
#: What a pod's creator, an image's pusher or a file's writer may choose; CRI and containerd take all of these
#: (a ';' in a pod name or namespace fails CNI's own argument parsing, so it never reaches a netns finding).
HOSTILE = {
    "semicolon": f";touch {MARKER};",
    "command-substitution": f"$(touch {MARKER})",
    "backticks": f"`touch {MARKER}`",
    "quotes": 'it\'s "quoted"',
    "spaces": "two  words",
    "newline": f"line\ntouch {MARKER}",
}
#: Programs the commands may name that run for real once recorded: they write the files a step writes.
REAL = ("mkdir", "cat")
STUB = """#!/bin/sh
for arg in "$0" "$@"; do printf '%s\\0' "$arg"; done >> "$NODEDOC_ARGV_LOG"
printf '\\036\\0' >> "$NODEDOC_ARGV_LOG"
"""
STUBBED = (
    "nsenter", "ip", "kubectl", "journalctl", "grep", "mv", "install", "ln", "systemctl", "crictl", "ctr", "sed",
    "cp", "containerd", "xfs_info", "df", "tail", "du", "sort", "ls", "apt", "less", "rpm", "chmod", "editor",
    "sysctl", "nodedoc",
)  # fmt: skip


@dataclass
class Printed:
    """A printed command, the values it must carry as whole words, and files it writes with what they hold."""

    command: str
    words: list[str]
    writes: dict[str, Callable[[str], None]] = field(default_factory=dict)


def commands(findings: list[Finding], *ids: str) -> list[str]:
    return [r.command for f in findings if f.id in ids for r in f.remediation if r.command]


def one(findings: list[Finding], finding_id: str) -> Finding:
    [found] = [f for f in findings if f.id == finding_id]
    return found


def component(value: str) -> str:
    """``value`` as one file name (a path component cannot hold '/')."""
    return value.replace("/", "_")


def write(root: Path, path: str, text: str | bytes, mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text if isinstance(text, bytes) else text.encode())
    target.chmod(mode)
    return target


def tree_node(root: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> NodeContext:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    (root / "proc").mkdir(exist_ok=True)
    return NodeContext(host_root=root, proc_root=root / "proc", **kw)


# -- the builders, each fed one hostile value ----------------------------------------------------------------


def pod_network(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """network.netns-ip-missing: the restore from CNI's cache (interface and gateway from the cache file, the
    namespace path from the runtime), the look, and kubectl delete with the pod's name and namespace."""
    sandbox = "ab" * 32
    netns = f"/var/run/netns/cni-{component(value)}"
    cache = {
        "kind": "cniCacheV1",
        "networkName": "lab",
        "ifName": value,
        "netns": netns,
        "result": {
            "ips": [{"address": "10.88.0.7/24", "gateway": value}],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    write(tmp, f"/var/lib/cni/results/lab-{sandbox}-eth0", json.dumps(cache))
    view = SandboxView(
        id=sandbox, name=value, namespace=value, uid="u", attempt=0, state="ready", created_at=0,
        runtime_handler="", labels={}, annotations={}, ips=["10.88.0.7"], pid=4242, netns_path=netns,
    )  # fmt: skip
    node = tree_node(tmp, monkeypatch)
    probe = NetworkProbe()
    look = PodCheck(probe, node, view, None, None, None).look  # type: ignore[arg-type]
    steps = probe._restore_steps(node, view, {"10.88.0.7"}, look)
    restore, check, _journal, delete = (s.command or "" for s in steps)
    return [
        Printed(restore, [f"--net={netns}", value]),
        Printed(check, [f"--net={netns}"]),
        Printed(delete, ["-n", value, value]),
    ]


def runc_binary_name(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """service.runc-mismatch: BinaryName in containerd's config names a runc that PATH does not find."""
    configured = f"/opt/{value}/runc"
    write_go_binary(tmp, "/usr/bin/containerd", "containerd", "v1.6.28", "0123456789abcdef")
    write_go_binary(tmp, "/usr/bin/containerd-shim-runc-v2", "containerd-shim-runc-v2", "v1.6.28", "01234567")
    write_go_binary(tmp, "/usr/sbin/runc", "runc", "1.1.12", "v1.1.12-0-g51d5e946")
    write_go_binary(tmp, configured, "runc", "1.0.0-rc93", "v1.0.0-rc93-0-g12644e61")
    write(
        tmp,
        "/etc/containerd/config.toml",
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        f"BinaryName = {json.dumps(configured)}\n",
    )
    found = ServiceProbe().run(tree_node(tmp, monkeypatch)).findings
    [link] = commands(found, "service.runc-mismatch")
    return [Printed(link, [configured, "/usr/sbin/runc"])]


UNIT = """[Unit]
Description=containerd container runtime
[Service]
Environment="PATH={path}"
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd
Type=notify
Delegate=yes
KillMode=process
OOMScoreAdjust=-999
"""


def unit_path_binaries(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """The unit's PATH finds a newer containerd (and its shim) in a directory the unit names: the drop-in that
    points ExecStart at it and, the other way round, the mv of the older one; a drop-in with a '#' in
    ExecStart is opened at its line."""
    directory = f"/opt/{value}/bin"
    newer = f"{directory}/containerd"
    write_go_binary(tmp, "/usr/bin/containerd", "containerd", "v1.6.14", "0123456789abcdef")
    write_go_binary(tmp, newer, "containerd", "v1.6.28", "0123456789abcdef")
    write_go_binary(tmp, f"{directory}/containerd-shim-runc-v2", "containerd-shim-runc-v2", "v1.6.28", "0123")
    write_go_binary(tmp, "/usr/sbin/runc", "runc", "1.1.12", "v1.1.12-0-g51d5e946")
    (tmp / "run/systemd/system").mkdir(parents=True)
    write(tmp, "/lib/systemd/system/containerd.service", UNIT.format(path=f"{directory}:/usr/bin:/usr/sbin"))
    dropin = f"/etc/systemd/system/containerd.service.d/{component(value)}.conf"
    write(tmp, dropin, "[Service]\nExecStart=\nExecStart=/usr/bin/containerd --log-level debug # verbose\n")
    found = ServiceProbe().run(tree_node(tmp, monkeypatch)).findings
    [point, _restart] = commands(found, "service.binary-mismatch")
    install_shim, _ps = commands(found, "service.shim-mismatch")
    [edit] = commands(found, "service.exec-comment")
    override = "/etc/systemd/system/containerd.service.d/override.conf"

    def points_at_it(text: str) -> None:
        assert text.splitlines() == ["[Service]", "ExecStart=", f"ExecStart={systemd_word(newer)}"]
        assert systemd_unquote(text.splitlines()[2].removeprefix("ExecStart=")) == newer

    printed = [
        Printed(point, [], {override: points_at_it}),
        Printed(install_shim, ["bin/containerd-shim-runc-v2", f"{directory}/"]),
        Printed(edit, ["+3", dropin]),
    ]
    # The other way round: the unit's binary is the newer one, the one PATH finds is moved aside.
    write_go_binary(tmp, newer, "containerd", "v1.6.10", "0123456789abcdef")
    found = ServiceProbe().run(tree_node(tmp, monkeypatch)).findings
    [move] = commands(found, "service.binary-mismatch")
    return [*printed, Printed(move, [newer, f"{newer}.old"])]


def config_file(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """The config probe on a config at a path from the node's --config, with a sandbox image, CNI dirs and
    the kubelet's cgroup driver: every command naming the file, the image or the directories."""
    path = f"/etc/containerd/{component(value)}.toml"
    bin_dir = f"/opt/{value}/cni"
    (tmp / bin_dir.lstrip("/")).mkdir(parents=True)
    write(
        tmp,
        "/etc/cni/net.d/10-lab.conflist",
        '{"cniVersion": "1.0.0", "name": "lab", "plugins": [{"type": "bridge"}]}',
    )
    write(
        tmp,
        path,
        'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n'
        f"sandbox_image = {json.dumps(value)}\n"
        '[plugins."io.containerd.grpc.v1.cri".cni]\n'
        f"bin_dir = {json.dumps(bin_dir)}\n"
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\nSystemdCgroup = false\n',
    )
    write(tmp, "/var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\ncgroupDriver: systemd\n")
    node = tree_node(tmp, monkeypatch)
    monkeypatch.setenv("NODEDOC_CONTAINERD_CONFIG", path)
    found = ConfigProbe().run(node).findings
    [inspect] = commands(found, "config.images")
    [listing] = commands(found, "config.cni-plugin-missing")
    edit, _restart = commands(found, "config.cgroup-driver-mismatch")
    printed = [Printed(inspect, [value]), Printed(listing, [bin_dir]), Printed(edit, [path])]
    # The same path when the file does not parse: the editor opens it at the line.
    write(tmp, path, "version = 2\n[plugins\n")
    node = tree_node(tmp, monkeypatch)
    monkeypatch.setenv("NODEDOC_CONTAINERD_CONFIG", path)
    found = ConfigProbe().run(node).findings
    fix, _dump = commands(found, "config.parse-error")
    return [*printed, Printed(fix, ["+2", path])]


def registry_mirrors(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """config.deprecated-registry: the hosts.toml written for a mirror whose endpoint (and config_path) come
    from the config: the heredoc ends where nodedoc ends it and the file holds that endpoint as one host. A
    registry named like a path gets no directory at all."""
    certs = str(tmp / f"certs {component(value)}")
    endpoint = f'https://mirror.example/{value}"]\n[host."https://evil.example'
    write(
        tmp,
        "/etc/containerd/config.toml",
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n'
        f"config_path = {json.dumps(certs)}\n"
        '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n'
        f"endpoint = [{json.dumps(endpoint)}]\n"
        '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."../../etc/cron.d"]\n'
        'endpoint = ["https://x.example"]\n',
    )
    found = ConfigProbe().run(tree_node(tmp, monkeypatch)).findings
    registry = [f for f in found if f.id in ("config.deprecated-registry", "config.registry-conflict")]
    steps = [r for f in registry for r in f.remediation]
    [refused] = [r for r in steps if "../../etc/cron.d" in r.text]
    assert refused.command is None
    [hosts] = [r.command for r in steps if r.command and "hosts.toml" in r.command]

    def one_host(text: str) -> None:
        assert set(tomllib.loads(text)["host"]) == {endpoint}

    return [Printed(hosts, [f"{certs}/docker.io"], {f"{certs}/docker.io/hosts.toml": one_host})]


def deprecation_edit(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """containerd.deprecation: the edit of the config file containerd reads, from the deprecations table."""
    file = f"/etc/containerd/{component(value)}.toml"
    short, fix = next((k, f) for k, f in fixes().items() if "{config}" in f.command and f.v2_table)
    steps = DeprecationsProbe._steps(short, fix, None, file, fix.v2_table)
    return [Printed(steps[0].command or "", [file])]


def host_dirs(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """host.d-type and host.disk-space on containerd's root and state, wherever the node keeps them."""
    import probes.builtin.host as host

    root, state = tmp / f"root {component(value)}", tmp / f"state {component(value)}"
    root.mkdir()
    state.mkdir()
    monkeypatch.setattr(host, "reports_d_type", lambda _path: False)

    class Full:
        f_bavail, f_blocks, f_favail, f_files, f_frsize = 1, 1000, 1000, 1000, 4096

    monkeypatch.setattr(host.os, "statvfs", lambda _path: Full())
    node = tree_node(tmp, monkeypatch, containerd_root=root, containerd_state=state)
    write(tmp, "/proc/filesystems", "nodev\toverlay\n")
    found = HostProbe().run(node).findings
    xfs, _mkfs = commands(found, "host.d-type")
    spaces = [c for c in commands(found, "host.disk-space") if c.startswith("du ")]
    assert len(spaces) == 2
    return [Printed(xfs, [str(root)]), *(Printed(du, []) for du in spaces)]


def snapshot_steps(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """The snapshot remedies: sandbox ids, image names, the endpoint, the node name, the hosts dir, the
    namespace and the layer digest as the runtime and the node report them."""
    endpoint = f"unix:///run/{component(value)}.sock"
    socket = endpoint.removeprefix("unix://")
    steps: list[Remedy] = [
        *recreate_snapshot(
            snapshot_id=7, chain_id="sha256:" + "c" * 64, images=[value], sandbox_ids=[value],
            endpoint=endpoint, node_name=value,
        ),
        *bring_layers_back(
            image=value, namespace=value, endpoint=endpoint, hosts_dir=value, image_present=False,
            nodedoc_args=["--endpoint", endpoint],
        ),
        refetch_blob(endpoint=endpoint, namespace=value, digest=value, image=value),
    ]  # fmt: skip
    drain, _stop, remove, rmi, start, pull, fetch, recheck, refetch = (s.command or "" for s in steps)
    return [
        Printed(drain, [value]),
        Printed(remove, [endpoint, value]),
        Printed(rmi, [endpoint, value]),
        Printed(start, [value]),
        Printed(pull, [endpoint, value]),
        Printed(fetch, [socket, value]),
        Printed(recheck, [endpoint]),
        Printed(refetch, [socket, value]),
    ]


def changelog(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """The package changelog command for a package the package database names."""
    return [Printed(changelog_command(value, parse("1.6.20~ds1-1+deb12u3")), [value])]


def world_writable_runbook(value: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> list[Printed]:
    """A runbook in a world-writable directory is refused with the chmod to run: its name is whoever's."""
    directory = tmp / "runbooks"
    directory.mkdir()
    directory.chmod(0o777)
    path = directory / f"{component(value)}.toml"
    path.write_text("")
    with pytest.raises(RunbookError) as refused:
        load_runbook(path)
    message = str(refused.value)
    command = message[message.index("(chmod ") + 1 : message.rindex(")")]
    return [Printed(command, [str(directory)])]


#: Each builder and the hostile values its source can hold (a unit line holds no newline, and systemd's
#: Environment= quoting no double quote).
BUILDERS: list[tuple[Callable[..., list[Printed]], tuple[str, ...]]] = [
    (pod_network, tuple(HOSTILE)),
    (runc_binary_name, tuple(HOSTILE)),
    (unit_path_binaries, ("semicolon", "command-substitution", "backticks", "spaces")),
    (config_file, tuple(HOSTILE)),
    (registry_mirrors, tuple(HOSTILE)),
    (deprecation_edit, tuple(HOSTILE)),
    (host_dirs, tuple(HOSTILE)),
    (snapshot_steps, tuple(HOSTILE)),
    (changelog, tuple(HOSTILE)),
    (world_writable_runbook, tuple(HOSTILE)),
]
CASES = [
    pytest.param(builder, HOSTILE[name], id=f"{builder.__name__}-{name}")
    for builder, names in BUILDERS
    for name in names
]


@pytest.fixture
def no_marker() -> Iterator[None]:
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), f"a printed command ran the value: {MARKER} was created"
    MARKER.unlink(missing_ok=True)


@pytest.mark.parametrize(("builder", "value"), CASES)
def test_each_node_value_is_one_word(builder, value: str, tmp_path: Path, monkeypatch, no_marker) -> None:
    printed = builder(value, tmp_path, monkeypatch)
    assert printed and all(p.command for p in printed)
    for p in printed:
        tokens = shlex.split(p.command)
        assert all(word in tokens for word in p.words), (p.command, tokens, p.words)
    if os.geteuid() != 0:
        pytest.skip("running the commands needs root (a private mount namespace)")
    for p in printed:
        argv, written = run_as_printed(p.command, tmp_path, list(p.writes))
        argv_words = {a for call in argv for a in call}
        assert all(word in argv_words for word in p.words), (p.command, argv, p.words)
        for path, check in p.writes.items():
            assert path in written, (p.command, path, list(written))
            check(written[path])


def run_as_printed(command: str, tmp: Path, files: list[str]) -> tuple[list[list[str]], dict[str, str]]:
    """``sh -c command`` with stand-in programs and tmpfs over /etc/containerd and /etc/systemd/system; the
    stand-ins' argument vectors and the listed files' contents afterwards."""
    stubs, log, out = tmp / "stubs", tmp / "argv.log", tmp / "written"
    stubs.mkdir(exist_ok=True)
    out.mkdir(exist_ok=True)
    for name in STUBBED:
        write(stubs, name, STUB, 0o755)
    for name in REAL:  # recorded too, then run
        real = subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True, text=True, check=True)
        write(stubs, name, STUB + f'exec {real.stdout.strip()} "$@"\n', 0o755)
    log.write_bytes(b"")
    copies = "; ".join(
        f"cp -- {shlex.quote(f)} {shlex.quote(str(out / str(n)))} 2>/dev/null" for n, f in enumerate(files)
    )
    wrapper = (
        "mount -t tmpfs nodedoc-test /etc/systemd/system && mount -t tmpfs nodedoc-test /etc/containerd || exit 99; "
        f'PATH={shlex.quote(str(stubs))} EDITOR={shlex.quote(str(stubs / "editor"))} /bin/sh -c "$1"; '
        f"{copies or ':'}"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", wrapper, "wrapper", command],
        capture_output=True, text=True, timeout=60, env={**os.environ, "NODEDOC_ARGV_LOG": str(log)},
        cwd=tmp,
    )  # fmt: skip
    assert proc.returncode != 99, proc.stderr
    calls = [record.split("\0")[:-1] for record in log.read_bytes().decode().split("\036\0") if record]
    argv = [[Path(call[0]).name, *call[1:]] for call in calls]
    written = {f: (out / str(n)).read_text() for n, f in enumerate(files) if (out / str(n)).exists()}
    return argv, written


def systemd_unquote(word: str) -> str:
    """One ExecStart word as systemd reads it (the subset :func:`probes.shell.systemd_word` writes)."""
    if not word.startswith('"'):
        return word
    inner, out, n = word[1:-1], [], 0
    while n < len(inner):
        c = inner[n]
        if c == "\\":
            nxt = inner[n + 1]
            if nxt == "x":
                out.append(chr(int(inner[n + 2 : n + 4], 16)))
                n += 4
                continue
            out.append(nxt)
            n += 2
            continue
        if c in "%$" and inner[n + 1 : n + 2] == c:
            n += 1
        out.append(c)
        n += 1
    return "".join(out)


def test_plain_values_print_as_before() -> None:
    """Quoting leaves an ordinary value as it is, so ordinary commands read naturally."""
    from probes.readers.host.cni_cache import CniAttachment, CniRoute, restore_commands

    attachment = CniAttachment(
        "lab", "eth0", "/var/run/netns/cni-1", ("10.88.0.7/24",), ("10.88.0.1",), (CniRoute("0.0.0.0/0"),)
    )
    assert restore_commands(attachment, "/var/run/netns/cni-1", {"10.88.0.7"}) == [
        "nsenter --net=/var/run/netns/cni-1 ip -4 addr add 10.88.0.7/24 brd + dev eth0",
        "nsenter --net=/var/run/netns/cni-1 ip -4 route replace 0.0.0.0/0 via 10.88.0.1 dev eth0",
    ]
    assert systemd_word("/usr/local/bin/containerd") == "/usr/local/bin/containerd"
    assert systemd_word("/opt/100%/containerd") == '"/opt/100%%/containerd"'
    assert changelog_command("containerd", parse("1.6.20~ds1-1")) == "apt changelog containerd | less"
