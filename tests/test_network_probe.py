"""The network probe on the real lab, and the containerd #7843 signature from a recorded stand-in."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from google.protobuf import json_format

from probes.readers.cri import cri_pb2 as pb
from probes.readers.procfs.netns import parse_fib_trie, parse_if_inet6
from tui.lab.record import ReplayServer, record

FIB_TRIE = """Main:
  +-- 0.0.0.0/1 2 0 2
     +-- 10.88.0.0/24 2 0 2
        |-- 10.88.0.0
           /24 link UNICAST
        |-- 10.88.0.7
           /32 host LOCAL
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/1 2 0 2
        |-- 10.88.0.7
           /32 host LOCAL
        |-- 10.88.0.255
           /32 link BROADCAST
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(FIB_TRIE, ["10.88.0.7", "127.0.0.1"], id="pod-and-loopback-once-each"),
        pytest.param("Main:\n  +-- 0.0.0.0/0 3 0 5\nLocal:\n", [], id="flushed"),
    ],
)
def test_parse_fib_trie(text, expected):
    assert parse_fib_trie(text) == expected


def test_parse_if_inet6():
    text = (
        "00000000000000000000000000000001 01 80 10 80       lo\n"
        "fd000000000000000000000000000007 02 40 00 80     eth0\n"
    )
    assert parse_if_inet6(text) == ["::1", "fd00::7"]


def check_json(*args: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "check", "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.every_runtime
@pytest.mark.lab
def test_healthy_lab_has_no_network_warning(lab):
    code, doc = check_json("--endpoint", lab.endpoint, "--probe", "network", "--probe", "runtime")
    assert [f["id"] for f in doc["findings"]] == ["network.ok", "runtime.ok"]
    assert code == 0
    checked = {p["id"] for p in doc["facts"]["network"]["pods"]}
    assert {p.id for p in lab.pods} <= checked


@pytest.mark.every_runtime
@pytest.mark.lab
def test_flushed_address_is_reported_on_that_pod_only(lab, extra_pod):
    netns = lab.client().pod_sandbox_status(extra_pod.id)
    path = json.loads(netns.info["info"])["runtimeSpec"]["linux"]["namespaces"]
    netns_path = next(n["path"] for n in path if n["type"] == "network")
    subprocess.run(["nsenter", f"--net={netns_path}", "ip", "-4", "addr", "flush", "dev", "eth0"], check=True)
    code, doc = check_json("--endpoint", lab.endpoint, "--probe", "network")
    problems = [f for f in doc["findings"] if f["severity"] != "ok"]
    assert [(f["id"], f["subject"]["id"]) for f in problems] == [("network.netns-ip-missing", extra_pod.id)]
    assert problems[0]["evidence"]["cri_ips"] == [extra_pod.ip]
    assert problems[0]["evidence"]["netns_ips"] == []
    assert code == 2


@pytest.mark.lab
def test_7843_signature_from_a_stand_in_recorded_from_the_lab(lab, tmp_path):
    """containerd 1.6.12 after a restart: CRI blanks the IP while the namespace still has it."""
    with lab.client() as client:
        recording = record(client)
    victim = lab.pods[0]

    def as_1_6_12(rpc, request, response):
        if rpc == "Version":
            response.runtime_version = "v1.6.12"
        if rpc == "PodSandboxStatus" and request.pod_sandbox_id == victim.id:
            response.status.network.CopyFrom(pb.PodSandboxNetworkStatus(ip=""))
        return response

    with ReplayServer(recording, tmp_path / "cri.sock", edit=as_1_6_12) as server:
        code, doc = check_json("--endpoint", server.endpoint, "--probe", "network")
    problems = [f for f in doc["findings"] if f["severity"] != "ok"]
    assert [(f["id"], f["subject"]["id"]) for f in problems] == [("network.pod-ip-missing", victim.id)]
    finding = problems[0]
    assert finding["severity"] == "critical" and code == 2
    assert "#7843" in finding["summary"] and "v1.6.12 is affected" in finding["summary"]
    assert finding["evidence"]["netns_ips"] == [victim.ip]
    assert "https://github.com/containerd/containerd/issues/7843" in finding["references"]


@pytest.mark.lab
def test_same_signature_on_a_fixed_version_does_not_blame_7843(lab, tmp_path):
    with lab.client() as client:
        recording = record(client)
    victim = lab.pods[1]

    def blank(rpc, request, response):
        if rpc == "PodSandboxStatus" and request.pod_sandbox_id == victim.id:
            response.status.network.CopyFrom(pb.PodSandboxNetworkStatus())
        return response

    with ReplayServer(recording, tmp_path / "cri.sock", edit=blank) as server:
        _code, doc = check_json("--endpoint", server.endpoint, "--probe", "network")
    finding = next(f for f in doc["findings"] if f["id"] == "network.pod-ip-missing")
    assert "not in its affected range" in finding["summary"]


def test_recording_round_trips_through_the_stand_in(tmp_path):
    from pathlib import Path

    from tui.lab.record import load_recording

    recording = load_recording(Path(__file__).parent / "fixtures" / "lab-recording.json")
    with ReplayServer(recording, tmp_path / "cri.sock") as server:
        from probes.readers.cri.client import CriClient

        with CriClient.connect(server.endpoint) as client:
            first = next(iter(recording["PodSandboxStatus"]))
            got = json_format.MessageToDict(
                client.pod_sandbox_status(first), preserving_proto_field_name=True
            )
    assert got["status"]["network"]["ip"] == recording["PodSandboxStatus"][first]["status"]["network"]["ip"]
