"""nodedoc's printed fixes, run as printed on the real lab, and the node shown recovered by the symptom's
own definition. Needs root and the lab."""

from __future__ import annotations

import errno
import json
import socket
import subprocess

import pytest
from remedies import check, problems, proof_id, run_printed, steps_proven_by

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
