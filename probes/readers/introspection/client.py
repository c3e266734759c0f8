"""containerd's own introspection service: the deprecation warnings it has seen (what `ctr deprecations list` prints).

The service listens on containerd's main socket, the one CRI is served on. containerd records a deprecation
when it meets the deprecated use (a config key when it loads the config, a schema 1 pull, a label), keeps it
until it restarts, and answers ``Server`` with the list (field ``deprecations``, containerd 1.7.9 and later;
older servers leave the field empty, which therefore says nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import grpc
from google.protobuf import empty_pb2

from probes.errors import CriCallFailed, CriError, CriTimeout, NotCriRuntime
from probes.readers.cri.endpoint import socket_path
from probes.readers.introspection import introspection_pb2 as pb

SERVER_RPC = "/containerd.services.introspection.v1.Introspection/Server"


@dataclass(frozen=True)
class Deprecation:
    """One deprecation warning as containerd reports it."""

    id: str
    message: str
    last_occurrence: dt.datetime | None = None

    @property
    def short_id(self) -> str:
        """``cri-registry-mirrors`` for ``io.containerd.deprecation/cri-registry-mirrors``."""
        return self.id.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ServerInfo:
    """containerd's answer to ``Server``: its uuid, pid (0 before 1.7) and deprecations."""

    uuid: str
    pid: int
    deprecations: list[Deprecation] = field(default_factory=list)


def _timestamp(value: object) -> dt.datetime | None:
    seconds, nanos = getattr(value, "seconds", 0), getattr(value, "nanos", 0)
    if not seconds and not nanos:
        return None
    return dt.datetime.fromtimestamp(seconds + nanos / 1e9, tz=dt.timezone.utc)


def decode(response: pb.ServerResponse) -> ServerInfo:
    return ServerInfo(
        uuid=response.uuid,
        pid=response.pid,
        deprecations=[
            Deprecation(d.id, d.message, _timestamp(d.last_occurrence)) for d in response.deprecations
        ],
    )


def read_server(endpoint: str, timeout: float = 2.0) -> ServerInfo:
    """Ask the containerd at ``endpoint`` (``unix://`` or a path) for its server info.

    Raises :class:`NotCriRuntime` when the socket is not containerd's (CRI-O, cri-dockerd), and the other
    :class:`CriError` kinds when it does not answer.
    """
    path = socket_path(endpoint)
    channel = grpc.insecure_channel(f"unix://{path}")
    try:
        call = channel.unary_unary(
            SERVER_RPC,
            request_serializer=empty_pb2.Empty.SerializeToString,
            response_deserializer=pb.ServerResponse.FromString,
        )
        return decode(call(empty_pb2.Empty(), timeout=timeout))
    except grpc.RpcError as err:
        raise _error(path, err, timeout) from None
    finally:
        channel.close()


def _error(path: str, err: grpc.RpcError, timeout: float) -> CriError:
    code = err.code() if hasattr(err, "code") else None
    detail = ((err.details() if hasattr(err, "details") else "") or str(code)).splitlines()[0]
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return NotCriRuntime(f"{path} has no containerd introspection service: it is not containerd")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return CriTimeout(f"introspection Server on {path} did not answer within {timeout:g}s")
    return CriCallFailed(f"introspection Server on {path} failed: {detail}")
