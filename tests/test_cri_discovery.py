"""Endpoint discovery in crictl's order, API negotiation, and every connection error as one line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import grpc
import pytest

from probes.errors import CriTimeout, EndpointNotFound, NotCriRuntime
from probes.readers.cri.client import CriClient, candidate_endpoints, discover
from tui.lab.record import ReplayServer, load_recording

RECORDING = load_recording(Path(__file__).parent / "fixtures" / "lab-recording.json")


@pytest.mark.parametrize(
    ("explicit", "env", "crictl_yaml", "expected"),
    [
        pytest.param(
            "unix:///flag.sock",
            {"CONTAINER_RUNTIME_ENDPOINT": "unix:///env.sock"},
            "runtime-endpoint: unix:///yaml.sock",
            ["unix:///flag.sock"],
            id="flag-wins",
        ),
        pytest.param(
            None,
            {"CONTAINER_RUNTIME_ENDPOINT": "unix:///env.sock"},
            "runtime-endpoint: unix:///yaml.sock",
            ["unix:///env.sock"],
            id="env-before-yaml",
        ),
        pytest.param(
            None,
            {},
            "runtime-endpoint: 'unix:///yaml.sock'\ntimeout: 5",
            ["unix://HOST/yaml.sock"],
            id="yaml",
        ),
        pytest.param(None, {}, "image-endpoint: unix:///img.sock", None, id="yaml-without-runtime-endpoint"),
        pytest.param(None, {}, None, None, id="known-sockets"),
    ],
)
def test_discovery_order(tmp_path, explicit, env, crictl_yaml, expected):
    if crictl_yaml is not None:
        (tmp_path / "etc").mkdir()
        (tmp_path / "etc" / "crictl.yaml").write_text(crictl_yaml)
    got = [c.endpoint for c in candidate_endpoints(explicit, env, host_root=tmp_path)]
    if expected is None:
        expected = [
            f"unix://{tmp_path}/run/containerd/containerd.sock",
            f"unix://{tmp_path}/run/k3s/containerd/containerd.sock",
            f"unix://{tmp_path}/var/run/crio/crio.sock",
            f"unix://{tmp_path}/var/run/cri-dockerd.sock",
            f"unix://{tmp_path}/var/snap/microk8s/common/run/containerd.sock",
        ]
    assert got == [e.replace("HOST", str(tmp_path)) for e in expected]  # the host's yaml: under its root


def test_cri_config_file_env_names_the_yaml(tmp_path):
    conf = tmp_path / "crictl.yaml"
    conf.write_text("runtime-endpoint: unix:///custom.sock\n")
    got = candidate_endpoints(None, {"CRI_CONFIG_FILE": str(conf)}, host_root=tmp_path)
    assert [c.endpoint for c in got] == ["unix:///custom.sock"]


def test_no_socket_lists_what_was_tried(tmp_path):
    with pytest.raises(EndpointNotFound) as err:
        discover(None, timeout=0.5, environ={}, host_root=tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path}/run/containerd/containerd.sock" in message and "microk8s" in message


def test_first_known_socket_that_answers_is_used(tmp_path):
    sock = tmp_path / "run" / "k3s" / "containerd" / "containerd.sock"
    sock.parent.mkdir(parents=True)
    with ReplayServer(RECORDING, sock), discover(None, 2, environ={}, host_root=tmp_path) as client:
        assert client.path == str(sock)
        assert client.version().runtime_name == "containerd"


def _listener(path: Path, behaviour: str) -> threading.Thread:
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(4)

    def serve() -> None:
        conn, _ = srv.accept()
        if behaviour == "garbage":
            conn.recv(100)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        elif behaviour == "silent":
            threading.Event().wait(3)
        conn.close()
        srv.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_socket_that_is_not_grpc(tmp_path):
    path = tmp_path / "web.sock"
    _listener(path, "garbage")
    with pytest.raises(NotCriRuntime, match="not with gRPC"):
        CriClient.connect(f"unix://{path}", timeout=2)


def test_socket_that_accepts_and_never_answers_times_out(tmp_path):
    path = tmp_path / "hung.sock"
    _listener(path, "silent")
    with pytest.raises(CriTimeout, match="did not answer within 0.5s"):
        CriClient.connect(f"unix://{path}", timeout=0.5)


def test_grpc_server_that_is_not_cri(tmp_path):
    path = tmp_path / "other.sock"
    server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(2))
    server.add_insecure_port(f"unix://{path}")
    server.start()
    try:
        with pytest.raises(NotCriRuntime, match="speaks gRPC but not CRI"):
            CriClient.connect(f"unix://{path}", timeout=2)
    finally:
        server.stop(None)


def test_a_regular_file_is_not_a_socket(tmp_path):
    path = tmp_path / "file.sock"
    path.write_text("x")
    with pytest.raises(NotCriRuntime, match="is not a socket"):
        CriClient.connect(f"unix://{path}", timeout=1)


def test_v1alpha2_only_runtime_is_spoken_to_as_v1alpha2(tmp_path):
    """A containerd 1.5 answers runtime.v1 with UNIMPLEMENTED; nodedoc falls back, same messages."""
    with ReplayServer(RECORDING, tmp_path / "old.sock", api="runtime.v1alpha2") as server:
        with CriClient.connect(server.endpoint, timeout=2) as client:
            assert client.api == "runtime.v1alpha2"
            ids = {s.id for s in client.list_pod_sandboxes()}
            assert ids == set(RECORDING["PodSandboxStatus"])
    assert server.calls[:2] == ["Version", "ListPodSandbox"]


@pytest.mark.root
def test_permission_denied_says_to_run_as_root():
    """A socket only root may open, connected to as an unprivileged user (in a child process)."""
    tmp_path = Path(tempfile.mkdtemp(prefix="nd-perm-"))
    path = tmp_path / "root-only.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    os.chmod(path, 0o600)
    os.chmod(tmp_path, 0o755)
    code = (
        "import os,sys\n"
        "from probes.readers.cri.client import CriClient\n"
        "from probes.errors import EndpointPermissionDenied\n"
        "os.setgid(65534); os.setuid(65534)\n"
        f"try:\n    CriClient.connect('unix://{path}', 1)\n"
        "except EndpointPermissionDenied as e:\n    print('DENIED', e); sys.exit(0)\n"
        "sys.exit(1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=Path(__file__).parent.parent,
    )
    srv.close()
    shutil.rmtree(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "run nodedoc as root" in proc.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(
            ["--endpoint", "unix:///nonexistent/cri.sock"], "no socket at /nonexistent/cri.sock", id="missing"
        ),
        pytest.param(["--endpoint", "tcp://10.0.0.1:1234"], "unix sockets only", id="tcp"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "pods"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 3
    assert needle in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
