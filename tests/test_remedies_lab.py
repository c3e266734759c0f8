"""nodedoc's printed fixes, run as printed on the real lab, and the node shown recovered by the symptom's
own definition. Needs root and the lab."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.pipe_hog import SOFT_LIMIT, built, hung_init, soft_limit_held
from remedies import check, problems, proof_id, run_printed, steps_proven_by

from probes.errors import CriError
from tui.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.root]


def netns_of(lab, pod) -> str:
    info = json.loads(lab.client().pod_sandbox_status(pod.id).info["info"])
    return next(n["path"] for n in info["runtimeSpec"]["linux"]["namespaces"] if n["type"] == "network")


def answers(ip: str, timeout: float = 3.0) -> bool:
    """Whether the pod's kernel answers at ``ip``: a TCP connect to a closed port is refused (a reset
    came back from the pod); a black-holed address times out or is unreachable."""
    with socket.socket() as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((ip, 9))
        except ConnectionRefusedError:
            return True
        except OSError as exc:
            assert isinstance(exc, TimeoutError) or exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH), exc
            return False
    return True


def test_flushed_pod_address_restored_as_printed(lab, extra_pod, request) -> None:
    """network.netns-ip-missing: the address is put back from CNI's own result, the pod answers again at
    its IP, the pod was never restarted, and `check` is clean."""
    assert answers(extra_pod.ip)
    netns = netns_of(lab, extra_pod)
    subprocess.run(["nsenter", f"--net={netns}", "ip", "-4", "addr", "flush", "dev", "eth0"], check=True)
    assert not answers(extra_pod.ip)

    code, findings = check("--endpoint", lab.endpoint, "--probe", "network")
    [finding] = problems(findings)
    assert (finding["id"], finding["subject"]["id"], code) == ("network.netns-ip-missing", extra_pod.id, 2)
    steps = steps_proven_by(finding, proof_id(request))
    assert [s["disrupts_pods"] for s in steps] == [False, False]
    restore, look = steps
    assert netns in restore["command"] and f"{extra_pod.ip}/" in restore["command"]

    run_printed(restore)
    assert f"inet {extra_pod.ip}/" in run_printed(look)
    assert answers(extra_pod.ip)
    with lab.client() as client:
        status = client.pod_sandbox_status(extra_pod.id, verbose=False).status
    assert status.state == 0 and status.network.ip == extra_pod.ip  # the same sandbox, still ready
    code, findings = check("--endpoint", lab.endpoint, "--probe", "network")
    assert [f["id"] for f in findings] == ["network.ok"] and code == 0


#: A pod name and namespace CRI and CNI take as they are (a ';' fails CNI's CNI_ARGS parsing, so it never
#: makes a running pod): each would run `touch MARKER` if a printed command put it in unquoted.
HOSTILE_NAME = "evil$(touch {marker})`touch {marker}`'\"\n two  words"
HOSTILE_NAMESPACE = "ns$(touch {marker})"


def test_hostile_pod_name_is_one_word_in_the_printed_fix(lab, tmp_path: Path) -> None:
    """A pod whose name and namespace hold command substitutions, backticks, quotes, a newline and spaces:
    its flushed address is reported, every printed step is run as printed with `sh -c` (the restore and the
    look for real, kubectl delete with a stand-in kubectl that records its arguments), no marker file appears,
    kubectl gets the name and namespace as one argument each, and the pod answers at its IP again."""
    marker = Path(f"/tmp/pwned-{os.getpid()}")
    marker.unlink(missing_ok=True)
    name, namespace = HOSTILE_NAME.format(marker=marker), HOSTILE_NAMESPACE.format(marker=marker)
    config = lab.sandbox_config(name, os.urandom(16).hex())
    config.metadata.namespace = namespace
    config.hostname = "hostile"  # the kernel takes at most 64 bytes: the kubelet's would be the pod's name
    Path(config.log_directory).mkdir(parents=True, exist_ok=True)
    with lab.client(timeout=60) as client:
        sandbox = client.run_pod_sandbox(config)
    try:
        with lab.client() as client:
            status = client.pod_sandbox_status(sandbox, verbose=False).status
        assert (status.metadata.name, status.metadata.namespace) == (name, namespace)
        ip, netns = status.network.ip, netns_of(lab, status)
        subprocess.run(["nsenter", f"--net={netns}", "ip", "-4", "addr", "flush", "dev", "eth0"], check=True)
        assert not answers(ip)

        _code, findings = check("--endpoint", lab.endpoint, "--probe", "network")
        [finding] = [f for f in problems(findings) if f["subject"]["id"] == sandbox]
        assert finding["id"] == "network.netns-ip-missing" and finding["subject"]["name"] == name
        restore, look, journal, delete = finding["remediation"]
        assert shlex.split(delete["command"]) == ["kubectl", "delete", "pod", "-n", namespace, name]

        run_printed(restore)
        assert f"inet {ip}/" in run_printed(look)
        stubs, log = tmp_path / "stubs", tmp_path / "argv"
        stubs.mkdir()
        for program in ("kubectl", "journalctl", "grep"):
            (stubs / program).write_text(
                '#!/bin/sh\nfor a in "$0" "$@"; do printf "%s\\0" "$a"; done >> "$ARGV"\n'
            )
            (stubs / program).chmod(0o755)
        for step in (journal, delete):
            subprocess.run(
                ["/bin/sh", "-c", step["command"]], env={"PATH": str(stubs), "ARGV": str(log)}, check=True
            )
        calls = log.read_bytes().decode().split("\0")
        start = calls.index(str(stubs / "kubectl"))
        assert calls[start : start + 7] == [
            str(stubs / "kubectl"),
            "delete",
            "pod",
            "-n",
            namespace,
            name,
            "",
        ]
        assert not marker.exists(), "a printed command ran the pod's name"
        assert answers(ip)
        _code, findings = check("--endpoint", lab.endpoint, "--probe", "network")
        assert not [f for f in problems(findings) if f["subject"].get("id") == sandbox]
    finally:
        marker.unlink(missing_ok=True)
        with lab.client(timeout=30) as client:
            client.stop_pod_sandbox(sandbox)
            client.remove_pod_sandbox(sandbox)


@contextlib.contextmanager
def restored(path: Path) -> Iterator[None]:
    """Put a machine-wide file (under /etc) back as it was, or remove it, whatever happens."""
    before = path.read_text() if path.exists() else None
    try:
        yield
    finally:
        if before is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(before)


def of(findings: list[dict], finding_id: str, **subject) -> list[dict]:
    return [
        f
        for f in findings
        if f["id"] == finding_id and all(f["subject"].get(k) == v for k, v in subject.items())
    ]


def test_hung_init_cleared_as_printed(lab, request) -> None:
    """Seed 003 (runc.init-blocked, pipe.user-soft-limit-exceeded, pipe.shrunk): the printed steps raise
    fs.pipe-user-pages-soft, persist it, name the pipe holder and kill the hung init; then no init is
    blocked, the uid is within its budget, and a new container starts on the node."""
    from probes.builtin.runc import SYSCTL_FILE

    env = {"NODEDOC_RUNC_INIT_THRESHOLD": "0.3"}
    test = proof_id(request)
    with soft_limit_held(), restored(Path(SYSCTL_FILE)), built() as binary, hung_init(binary) as init:
        time.sleep(0.4)  # older than the threshold
        code, findings = check("--probe", "runc", env=env)
        [blocked] = of(findings, "runc.init-blocked", pid=init.pid)
        [over] = of(findings, "pipe.user-soft-limit-exceeded", uid=init.uid)
        [shrunk] = of(findings, "pipe.shrunk", uid=init.uid)
        assert code == 2 and blocked["evidence"]["pipe_capacity"] < 65536

        raise_now, persist, holders = steps_proven_by(over, test)
        assert steps_proven_by(shrunk, test) == [raise_now, persist]
        assert steps_proven_by(blocked, test)[:2] == [raise_now, persist]
        run_printed(raise_now)
        run_printed(persist)
        assert int(SOFT_LIMIT.read_text()) > over["evidence"]["pages"]
        assert str(init.pid) in json.dumps(
            next(u for u in json.loads(run_printed(holders))["users"] if u["uid"] == init.uid)
        )
        *_, kill = steps_proven_by(blocked, test)
        assert kill["command"] == f"kill -9 {init.pid}" and not kill["disrupts_pods"]
        run_printed(kill)
        assert init.process is not None and init.process.wait(timeout=10) == -9

        pod = lab.run_pod(f"after-003-{os.urandom(3).hex()}", container=True)
        try:
            with lab.client() as client:
                state = client.container_status(pod.container_id).status.state
            assert state == 1  # CONTAINER_RUNNING: runc init finished with a full-size pipe
            _code, findings = check("--probe", "runc", env=env)
            assert not of(findings, "runc.init-blocked", pid=init.pid)
            assert not of(findings, "pipe.user-soft-limit-exceeded", uid=init.uid)
            assert not of(findings, "pipe.shrunk", uid=init.uid)
        finally:
            lab.remove_pod(pod.id)


def test_lowered_pipe_limit_restored_as_printed(lab, request) -> None:
    """host.pipe-user-pages-soft: the printed step sets the default back now and for the next boot; the
    finding is gone and a new container starts."""
    from probes.builtin.host import PIPE_USER_PAGES_SOFT_DEFAULT, SYSCTL_FILE

    with soft_limit_held(), restored(Path(SYSCTL_FILE)):
        SOFT_LIMIT.write_text("1024")
        _code, findings = check("--probe", "host")
        [finding] = of(findings, "host.pipe-user-pages-soft")
        [step] = steps_proven_by(finding, proof_id(request))
        run_printed(step)
        assert int(SOFT_LIMIT.read_text()) == PIPE_USER_PAGES_SOFT_DEFAULT
        assert f"fs.pipe-user-pages-soft = {PIPE_USER_PAGES_SOFT_DEFAULT}" in Path(SYSCTL_FILE).read_text()
        _code, findings = check("--probe", "host")
        assert not of(findings, "host.pipe-user-pages-soft")
        pod = lab.run_pod(f"after-pipe-limit-{os.urandom(3).hex()}", container=True)
        try:
            with lab.client() as client:
                assert client.container_status(pod.container_id).status.state == 1  # running
        finally:
            lab.remove_pod(pod.id)


@contextlib.contextmanager
def removed_afterwards(directory: Path) -> Iterator[None]:
    """Remove ``directory`` and every parent of it that did not exist before, whatever happens."""
    created = [d for d in [directory, *directory.parents] if not d.exists()]
    try:
        yield
    finally:
        for path in created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def test_deprecated_registry_moved_to_hosts_toml_as_printed(request) -> None:
    """config.deprecated-registry on a lab of its own (it restarts containerd): a mirror set the deprecated
    way (registry.nodedoc.test served by the loopback registry) is moved to hosts.toml and config_path by the
    printed steps; after the restart the deprecation is gone, CRI pulls through the mirror only thanks to the
    printed hosts.toml, and a new pod starts."""
    from probes.readers.host.registry_migration import CERTS_DIR

    directory = Path(tempfile.mkdtemp(prefix="ndreg-", dir="/tmp"))
    lab = Lab.up(directory, pods=1, registry=True, log=lambda *_: None)
    try:
        served, name = f"127.0.0.1:{lab.registry_port}", "registry.nodedoc.test"  # .test never resolves
        mirrored = lab.image.replace(served, name, 1)
        modern = f'  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "{lab.hosts_dir}"\n'
        deprecated = (
            f'  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."{name}"]\n'
            f'    endpoint = ["http://{served}"]\n'
        )
        text = lab.config_path.read_text()
        assert modern in text and mirrored != lab.image
        lab.config_path.write_text(text.replace(modern, deprecated))
        lab.restart_containerd()

        _code, findings = check("--endpoint", lab.endpoint, "--probe", "config")
        [finding] = of(findings, "config.deprecated-registry")
        hosts_toml = Path(CERTS_DIR) / name / "hosts.toml"
        with removed_afterwards(hosts_toml.parent):
            hosts, edit = steps_proven_by(finding, proof_id(request))
            assert str(hosts_toml) in hosts["command"] and str(lab.config_path) in edit["command"]
            assert not hosts["disrupts_pods"] and not edit["disrupts_pods"]
            run_printed(hosts)
            run_printed(edit)
            lab.restart_containerd()  # the printed `systemctl restart containerd`: the lab has no systemd

            _code, findings = check("--endpoint", lab.endpoint, "--probe", "config")
            assert not of(findings, "config.deprecated-registry")
            assert not [f for f in findings if f["severity"] in ("warning", "critical")], findings
            with lab.client(timeout=120) as client:
                client.remove_image(mirrored)
                aside = hosts_toml.rename(hosts_toml.with_suffix(".aside"))
                with pytest.raises(CriError):  # without the printed hosts.toml the name does not resolve
                    client.pull_image(mirrored)
                aside.rename(hosts_toml)
                assert client.pull_image(mirrored)  # through the printed hosts.toml to the mirror
            pod = lab.run_pod(f"after-registry-{os.urandom(3).hex()}", container=True)
            with lab.client() as client:
                assert client.container_status(pod.container_id).status.state == 1  # running
    finally:
        Lab.down(directory, log=lambda *_: None)
