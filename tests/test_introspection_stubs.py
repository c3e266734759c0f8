"""The committed containerd introspection stubs are current, and the wire contract holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from probes.readers.introspection import introspection_pb2 as pb
from probes.readers.introspection.client import SERVER_RPC, decode

API_DIR = Path(pb.__file__).resolve().parent


def test_committed_stubs_match_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    from probes.readers.introspection.regenerate import generate

    generated = generate(tmp_path)
    assert [p.name for p in generated] == [
        "introspection_pb2.py",
        "introspection_pb2.pyi",
        "introspection_pb2_grpc.py",
    ]
    for fresh in generated:
        committed = API_DIR / fresh.name
        assert committed.is_file(), (
            f"{committed} is missing; run `python -m probes.readers.introspection.regenerate`"
        )
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{committed.name} is stale compared with introspection.proto; "
            "run `python -m probes.readers.introspection.regenerate` and commit the result"
        )


# Field numbers as published in containerd api/services/introspection/v1/introspection.proto (v1.7.9+).
UPSTREAM_FIELD_NUMBERS = [
    ("ServerResponse", "uuid", 1),
    ("ServerResponse", "pid", 2),
    ("ServerResponse", "pidns", 3),
    ("ServerResponse", "deprecations", 4),
    ("DeprecationWarning", "id", 1),
    ("DeprecationWarning", "message", 2),
    ("DeprecationWarning", "last_occurrence", 3),
]


@pytest.mark.parametrize(("message", "field", "number"), UPSTREAM_FIELD_NUMBERS)
def test_field_numbers_match_upstream(message: str, field: str, number: int) -> None:
    assert pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number == number


def test_package_service_and_method_path() -> None:
    assert pb.DESCRIPTOR.package == "containerd.services.introspection.v1"
    service = pb.DESCRIPTOR.services_by_name["Introspection"]
    assert service.full_name == "containerd.services.introspection.v1.Introspection"
    server = service.methods_by_name["Server"]
    assert server.input_type.full_name == "google.protobuf.Empty"
    assert f"/{service.full_name}/{server.name}" == SERVER_RPC


def test_decode_round_trip() -> None:
    when = timestamp_pb2.Timestamp(seconds=1_790_000_000, nanos=438_745_720)
    wire = pb.ServerResponse(
        uuid="5060b1d7",
        pid=2717,
        pidns=4026531836,
        deprecations=[
            pb.DeprecationWarning(
                id="io.containerd.deprecation/cri-registry-mirrors", message="m", last_occurrence=when
            ),
            pb.DeprecationWarning(id="io.containerd.deprecation/cri-registry-configs", message="c"),
        ],
    ).SerializeToString()
    info = decode(pb.ServerResponse.FromString(wire))
    assert info.pid == 2717 and info.uuid == "5060b1d7"
    assert [d.short_id for d in info.deprecations] == ["cri-registry-mirrors", "cri-registry-configs"]
    assert info.deprecations[0].last_occurrence == dt.datetime.fromtimestamp(
        1_790_000_000.43874572, tz=dt.UTC
    )
    assert info.deprecations[1].last_occurrence is None


def test_a_1_6_answer_has_no_deprecations_field() -> None:
    """containerd 1.6 knows field 1 only: what it sends decodes to an empty list, which says nothing."""
    info = decode(pb.ServerResponse.FromString(b"\n\x08abcd-123"))
    assert info.uuid == "abcd-123" and info.pid == 0 and info.deprecations == []
