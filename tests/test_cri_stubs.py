"""The committed CRI stubs are current, and the wire contract holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.readers.cri import cri_pb2

CRI_DIR = Path(cri_pb2.__file__).resolve().parent


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    from probes.readers.cri.regenerate import generate

    generated = generate(tmp_path)
    assert generated, "protoc generated nothing"
    for fresh in generated:
        committed = CRI_DIR / fresh.name
        assert committed.is_file(), (
            f"{committed} is missing; run `python -m probes.readers.cri.regenerate` and commit the result"
        )
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed.name} is stale compared with cri.proto; "
            "run `python -m probes.readers.cri.regenerate` and commit the result"
        )


def test_pod_sandbox_status_response_round_trip() -> None:
    original = cri_pb2.PodSandboxStatusResponse(
        status=cri_pb2.PodSandboxStatus(
            id="a1b2c3",
            metadata=cri_pb2.PodSandboxMetadata(name="web", uid="u-1", namespace="default", attempt=2),
            state=cri_pb2.SANDBOX_READY,
            created_at=1_700_000_000_000_000_000,
            network=cri_pb2.PodSandboxNetworkStatus(
                ip="10.88.0.7",
                additional_ips=[cri_pb2.PodIP(ip="fd00::7")],
            ),
            runtime_handler="runc",
        ),
        info={"info": '{"pid": 4242, "runtimeSpec": {}}'},
        timestamp=1_700_000_000_123_456_789,
    )
    wire = original.SerializeToString()
    decoded = cri_pb2.PodSandboxStatusResponse.FromString(wire)

    assert decoded == original
    assert decoded.status.network.ip == "10.88.0.7"
    assert [p.ip for p in decoded.status.network.additional_ips] == ["fd00::7"]
    assert dict(decoded.info) == {"info": '{"pid": 4242, "runtimeSpec": {}}'}
    assert decoded.status.metadata.attempt == 2


# Field numbers as published in kubernetes/cri-api pkg/apis/runtime/v1/api.proto.
UPSTREAM_FIELD_NUMBERS = [
    ("PodSandboxStatusResponse", "status", 1),
    ("PodSandboxStatusResponse", "info", 2),
    ("PodSandboxStatusResponse", "containers_statuses", 3),
    ("PodSandboxStatusResponse", "timestamp", 4),
    ("PodSandboxStatus", "network", 5),
    ("PodSandboxStatus", "linux", 6),
    ("PodSandboxStatus", "runtime_handler", 9),
    ("PodSandboxNetworkStatus", "ip", 1),
    ("PodSandboxNetworkStatus", "additional_ips", 2),
    ("Namespace", "options", 2),
    ("ListPodSandboxRequest", "filter", 1),
    ("RunPodSandboxRequest", "config", 1),
    ("RunPodSandboxRequest", "runtime_handler", 2),
    ("ContainerConfig", "envs", 6),
    ("ContainerConfig", "linux", 15),
    ("ContainerStatus", "image_id", 17),
    ("ContainerStatusResponse", "info", 2),
    ("LinuxSandboxSecurityContext", "run_as_group", 8),
    ("ImageSpec", "user_specified_image", 18),
    ("ImageFsInfoResponse", "container_filesystems", 2),
    ("StatusResponse", "info", 2),
]


@pytest.mark.parametrize(("message", "field", "number"), UPSTREAM_FIELD_NUMBERS)
def test_field_numbers_match_upstream(message: str, field: str, number: int) -> None:
    descriptor = cri_pb2.DESCRIPTOR.message_types_by_name[message]
    assert descriptor.fields_by_name[field].number == number


def test_package_and_services() -> None:
    assert cri_pb2.DESCRIPTOR.package == "runtime.v1"
    services = cri_pb2.DESCRIPTOR.services_by_name
    assert services["RuntimeService"].full_name == "runtime.v1.RuntimeService"
    assert set(services["ImageService"].methods_by_name) == {
        "ListImages",
        "ImageStatus",
        "PullImage",
        "RemoveImage",
        "ImageFsInfo",
    }
    assert {"Version", "Status", "RunPodSandbox", "PodSandboxStatus", "ListPodSandbox"} <= set(
        services["RuntimeService"].methods_by_name
    )
