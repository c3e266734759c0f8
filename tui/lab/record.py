"""Record a runtime's CRI answers, and replay them from a stand-in server.

The stand-in exists only for states a real runtime here cannot produce (a containerd affected by #7843,
a containerd 1.5 that speaks only runtime.v1alpha2). It answers with responses recorded from the real
lab, optionally edited by the test that needs the state (an IP blanked, a version changed).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from probes.readers.cri import cri_pb2 as pb
from probes.readers.cri.client import _RPCS, CriClient

FORMAT = "nodedoc.cri-recording/v1"


def _dump(message: Any) -> dict[str, Any]:
    return json.loads(json_format.MessageToJson(message, preserving_proto_field_name=True))


def record(client: CriClient) -> dict[str, Any]:
    """Every read-only answer nodedoc uses, keyed by rpc (and by id for the per-object calls)."""
    sandboxes = client.list_pod_sandboxes()
    containers = client.list_containers()
    return {
        "format": FORMAT,
        "api": client.api,
        "Version": _dump(client.version()),
        "Status": _dump(client.status(verbose=True)),
        "ListPodSandbox": _dump(pb.ListPodSandboxResponse(items=sandboxes)),
        "PodSandboxStatus": {s.id: _dump(client.pod_sandbox_status(s.id)) for s in sandboxes},
        "ListContainers": _dump(pb.ListContainersResponse(containers=containers)),
        "ContainerStatus": {c.id: _dump(client.container_status(c.id)) for c in containers},
        "ListImages": _dump(pb.ListImagesResponse(images=client.list_images())),
        "ImageFsInfo": _dump(client.image_fs_info()),
    }


Editor = Callable[[str, Any, Any], Any]


class ReplayServer:
    """A gRPC server on a unix socket answering CRI reads from a recording, under one API package."""

    def __init__(
        self, recording: dict[str, Any], socket: Path, api: str = "runtime.v1", edit: Editor | None = None
    ) -> None:
        self.recording = recording
        self.socket = Path(socket)
        self.api = api
        self.edit = edit
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([_Handler(self)])
        self._server.add_insecure_port(f"unix://{self.socket}")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def answer(self, rpc: str, request: Any) -> Any:
        with self._lock:
            self.calls.append(rpc)
        _service, _req, resp_type = _RPCS[rpc]
        data = self.recording.get(rpc)
        if rpc == "PodSandboxStatus":
            data = (data or {}).get(request.pod_sandbox_id)
        elif rpc == "ContainerStatus":
            data = (data or {}).get(request.container_id)
        if data is None:
            return None
        response = json_format.ParseDict(data, resp_type())
        if rpc == "ListPodSandbox" and request.HasField("filter") and request.filter.id:
            kept = [s for s in response.items if s.id == request.filter.id]
            del response.items[:]
            response.items.extend(kept)
        return self.edit(rpc, request, response) if self.edit else response

    def __enter__(self) -> ReplayServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None)


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, server: ReplayServer) -> None:
        self.server = server

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        prefix = f"/{self.server.api}."
        if not details.method.startswith(prefix):
            return None  # UNIMPLEMENTED, as a runtime without this API version answers
        rpc = details.method.rsplit("/", 1)[-1]
        if rpc not in _RPCS:
            return None
        _service, req_type, resp_type = _RPCS[rpc]

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            response = self.server.answer(rpc, request)
            if response is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"{rpc}: not in the recording")
            return response

        return grpc.unary_unary_rpc_method_handler(
            unary, request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString
        )


def load_recording(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} recording")
    return data
