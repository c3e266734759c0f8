"""Runtime conditions as the kubelet reads them: only RuntimeReady and NetworkReady make a node NotReady.

The stand-in CRI server answers with responses recorded from a real containerd 2.1.9 (Debian's package,
run once in a private directory with a config that uses the deprecated ``registry.mirrors``; a 1.6 lab
cannot report ``ContainerdHasNoDeprecationWarnings``): ``containerd-2.1-deprecation-condition.json``
with a CNI config present, ``containerd-2.1-no-cni.json`` with none (NetworkReady false as well).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from probes.readers.cri.runtime import RuntimeCondition
from tui.lab.record import ReplayServer, load_recording

FIXTURES = Path(__file__).parent / "fixtures"
DEPRECATION_ID = "io.containerd.deprecation/cri-registry-mirrors"


def check_runtime(recording: str, tmp_path: Path, fmt: str = "json") -> tuple[int, str]:
    with ReplayServer(load_recording(FIXTURES / recording), tmp_path / "cri.sock") as server:
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", "--endpoint", server.endpoint, "check", "--probe", "runtime"]
            + ["--format", fmt],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return proc.returncode, proc.stdout


def test_the_recording_is_what_containerd_2_1_said():
    status = load_recording(FIXTURES / "containerd-2.1-deprecation-condition.json")["Status"]["status"]
    types = {c["type"]: c.get("status", False) for c in status["conditions"]}
    assert types == {"RuntimeReady": True, "NetworkReady": True, "ContainerdHasNoDeprecationWarnings": False}


def test_deprecation_condition_is_information_with_containerds_own_words(tmp_path):
    code, out = check_runtime("containerd-2.1-deprecation-condition.json", tmp_path)
    doc = json.loads(out)
    assert code == 0 and doc["verdict"]["worst"] == "info"
    (finding,) = [f for f in doc["findings"] if f["id"] == "runtime.condition-false"]
    assert finding["severity"] == "info"
    assert finding["subject"]["condition"] == "ContainerdHasNoDeprecationWarnings"
    assert DEPRECATION_ID in finding["summary"] and "node stays Ready" in finding["summary"]
    assert finding["evidence"]["condition"]["reason"] == "ContainerdHasDeprecationWarnings"
    message = finding["evidence"]["deprecations"][DEPRECATION_ID]
    assert message.startswith("The `mirrors` property of") and "config_path" in message
    assert "runtime.condition-not-ready" not in {f["id"] for f in doc["findings"]}
    assert "runtime.ok" in {f["id"] for f in doc["findings"]}


def test_network_not_ready_stays_critical_beside_the_deprecation(tmp_path):
    code, out = check_runtime("containerd-2.1-no-cni.json", tmp_path)
    doc = json.loads(out)
    by_id = {f["id"]: f for f in doc["findings"]}
    assert code == 2
    ready = by_id["runtime.condition-not-ready"]
    assert ready["severity"] == "critical" and ready["subject"]["condition"] == "NetworkReady"
    assert "cni plugin not initialized" in ready["summary"] and "NotReady" in ready["summary"]
    assert by_id["runtime.condition-false"]["severity"] == "info"
    assert "runtime.ok" not in by_id


@pytest.mark.parametrize(
    ("message", "deprecations"),
    [
        pytest.param(
            '{"io.containerd.deprecation/x": "gone soon"}', {"io.containerd.deprecation/x": "gone soon"}
        ),
        pytest.param("plain words", {}, id="plain-text"),
        pytest.param('["not", "an", "object"]', {}, id="json-list"),
        pytest.param("", {}, id="empty"),
    ],
)
def test_deprecation_ids_are_read_only_from_a_json_object(message, deprecations):
    cond = RuntimeCondition(type="X", status=False, reason="R", message=message)
    assert cond.deprecations() == deprecations and not cond.kubelet_reads
    assert RuntimeCondition("NetworkReady", False).kubelet_reads
