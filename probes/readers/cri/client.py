"""A CRI client that finds the node's runtime the way crictl does and speaks runtime.v1 or v1alpha2.

Discovery order (crictl's): an explicit endpoint, then ``CONTAINER_RUNTIME_ENDPOINT``, then
``runtime-endpoint`` in ``/etc/crictl.yaml`` (or ``CRI_CONFIG_FILE``), then the known sockets of
containerd, k3s/RKE2, CRI-O, cri-dockerd and MicroK8s, first that answers.

Every failure is a :class:`probes.errors.CriError` whose message is one line a person can act on.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import Message

from probes.errors import (
    CriCallFailed,
    CriError,
    CriTimeout,
    EndpointNotFound,
    EndpointPermissionDenied,
    NotCriRuntime,
)
from probes.readers.cri import cri_pb2 as pb
from probes.readers.cri.endpoint import DEFAULT_TIMEOUT, socket_path

#: Known runtime sockets, in the order they are tried when nothing names an endpoint.
KNOWN_ENDPOINTS: tuple[tuple[str, str], ...] = (
    ("containerd", "unix:///run/containerd/containerd.sock"),
    ("k3s/RKE2", "unix:///run/k3s/containerd/containerd.sock"),
    ("CRI-O", "unix:///var/run/crio/crio.sock"),
    ("cri-dockerd", "unix:///var/run/cri-dockerd.sock"),
    ("MicroK8s", "unix:///var/snap/microk8s/common/run/containerd.sock"),
)

API_PACKAGES = ("runtime.v1", "runtime.v1alpha2")

# rpc name -> (service, request type, response type). v1alpha2 has the same messages on the wire.
_RPCS: dict[str, tuple[str, type[Message], type[Message]]] = {
    "Version": ("RuntimeService", pb.VersionRequest, pb.VersionResponse),
    "Status": ("RuntimeService", pb.StatusRequest, pb.StatusResponse),
    "ListPodSandbox": ("RuntimeService", pb.ListPodSandboxRequest, pb.ListPodSandboxResponse),
    "PodSandboxStatus": ("RuntimeService", pb.PodSandboxStatusRequest, pb.PodSandboxStatusResponse),
    "RunPodSandbox": ("RuntimeService", pb.RunPodSandboxRequest, pb.RunPodSandboxResponse),
    "StopPodSandbox": ("RuntimeService", pb.StopPodSandboxRequest, pb.StopPodSandboxResponse),
    "RemovePodSandbox": ("RuntimeService", pb.RemovePodSandboxRequest, pb.RemovePodSandboxResponse),
    "ListContainers": ("RuntimeService", pb.ListContainersRequest, pb.ListContainersResponse),
    "ContainerStatus": ("RuntimeService", pb.ContainerStatusRequest, pb.ContainerStatusResponse),
    "CreateContainer": ("RuntimeService", pb.CreateContainerRequest, pb.CreateContainerResponse),
    "StartContainer": ("RuntimeService", pb.StartContainerRequest, pb.StartContainerResponse),
    "StopContainer": ("RuntimeService", pb.StopContainerRequest, pb.StopContainerResponse),
    "RemoveContainer": ("RuntimeService", pb.RemoveContainerRequest, pb.RemoveContainerResponse),
    "ListImages": ("ImageService", pb.ListImagesRequest, pb.ListImagesResponse),
    "ImageStatus": ("ImageService", pb.ImageStatusRequest, pb.ImageStatusResponse),
    "ImageFsInfo": ("ImageService", pb.ImageFsInfoRequest, pb.ImageFsInfoResponse),
    "PullImage": ("ImageService", pb.PullImageRequest, pb.PullImageResponse),
    "RemoveImage": ("ImageService", pb.RemoveImageRequest, pb.RemoveImageResponse),
}


@dataclass(frozen=True)
class Candidate:
    """An endpoint to try and where it came from (shown when nothing answers)."""

    endpoint: str
    source: str


def _under(host_root: Path, path: str) -> str:
    return path if host_root == Path("/") else str(host_root / path.lstrip("/"))


def read_crictl_config(path: Path) -> dict[str, str]:
    """The flat ``key: value`` pairs of a crictl.yaml (the format has no nesting we need)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def candidate_endpoints(
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    host_root: Path = Path("/"),
) -> list[Candidate]:
    """The endpoints to try, in crictl's order; a named endpoint is the only one tried."""
    env = os.environ if environ is None else environ
    if explicit:
        return [Candidate(explicit, "--endpoint")]
    if env.get("CONTAINER_RUNTIME_ENDPOINT"):
        return [Candidate(env["CONTAINER_RUNTIME_ENDPOINT"], "CONTAINER_RUNTIME_ENDPOINT")]
    if env.get("CRI_CONFIG_FILE"):  # the operator's own crictl config: its endpoint is used as given
        config = Path(env["CRI_CONFIG_FILE"])
        configured = read_crictl_config(config).get("runtime-endpoint")
        if configured:
            return [Candidate(configured, f"runtime-endpoint in {config}")]
    else:  # the host's: it names the socket as the host sees it, so look under the host root
        config = host_root / "etc/crictl.yaml"
        configured = read_crictl_config(config).get("runtime-endpoint")
        if configured:
            endpoint = "unix://" + _under(host_root, socket_path(configured))
            return [Candidate(endpoint, f"runtime-endpoint in {config}")]
    return [
        Candidate("unix://" + _under(host_root, socket_path(ep)), f"{name} default")
        for name, ep in KNOWN_ENDPOINTS
    ]


def _check_socket(path: str, timeout: float) -> None:
    """Prove something at ``path`` speaks HTTP/2 (gRPC) before handing it to grpc.

    grpc turns every kind of wrong socket into the same UNAVAILABLE or deadline; this tells them apart.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise EndpointNotFound(f"no socket at {path}") from None
    except PermissionError:
        raise EndpointPermissionDenied(
            f"permission denied looking up {path}: run nodedoc as root (sudo nodedoc ...)"
        ) from None
    except OSError as exc:
        raise EndpointNotFound(f"cannot look up {path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(mode):
        raise NotCriRuntime(f"{path} is not a socket, so not a CRI runtime endpoint")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except PermissionError:
            raise EndpointPermissionDenied(
                f"permission denied connecting to {path}: run nodedoc as root (sudo nodedoc ...)"
            ) from None
        except ConnectionRefusedError:
            raise EndpointNotFound(f"{path} refuses connections: is the runtime running?") from None
        except OSError as exc:
            raise NotCriRuntime(f"{path} is not a CRI socket: {exc.strerror or exc}") from None
        # Client preface plus an empty SETTINGS frame; an HTTP/2 server answers with its SETTINGS.
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + struct.pack(">I", 0)[1:] + b"\x04\x00" + b"\x00" * 4
        try:
            sock.sendall(preface)
            header = b""
            while len(header) < 9:
                chunk = sock.recv(9 - len(header))
                if not chunk:
                    break
                header += chunk
        except TimeoutError:
            raise CriTimeout(
                f"{path} accepted the connection but did not answer within {timeout:g}s "
                "(runtime hung? try a larger --timeout)"
            ) from None
        except OSError as exc:
            raise NotCriRuntime(f"{path} is not a CRI runtime: {exc.strerror or exc}") from None
        if len(header) < 9 or header[3] != 0x04:
            raise NotCriRuntime(f"{path} answers, but not with gRPC: it is not a CRI runtime socket")
    finally:
        sock.close()


class CriClient:
    """A connected CRI client. Thread-safe; calls may run concurrently from workers."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT, api: str | None = None) -> None:
        self.endpoint = endpoint if "://" in endpoint else "unix://" + endpoint
        self.path = socket_path(self.endpoint)
        self.timeout = timeout
        self.api = api or API_PACKAGES[0]
        self._channel = grpc.insecure_channel(
            self.endpoint, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self._callables: dict[str, Any] = {}
        self._lock = threading.Lock()
        #: The answer to the Version call that negotiated the API (set by :meth:`connect`).
        self.version_response: Any = None

    # -- connection -------------------------------------------------------------------------------

    @classmethod
    def connect(cls, endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> CriClient:
        """Connect and negotiate the API version: runtime.v1, else runtime.v1alpha2."""
        _check_socket(socket_path(endpoint), timeout)
        for api in API_PACKAGES:
            client = cls(endpoint, timeout, api)
            try:
                client.version_response = client.call("Version", pb.VersionRequest(version="v1"))
                return client
            except CriCallFailed as exc:
                client.close()
                if exc.code != grpc.StatusCode.UNIMPLEMENTED:
                    raise
        raise NotCriRuntime(
            f"{socket_path(endpoint)} speaks gRPC but not CRI: "
            "neither runtime.v1 nor runtime.v1alpha2 Version is implemented"
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> CriClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls ------------------------------------------------------------------------------------

    def _callable(self, rpc: str) -> Any:
        with self._lock:
            fn = self._callables.get(rpc)
            if fn is None:
                service, req, resp = _RPCS[rpc]
                fn = self._channel.unary_unary(
                    f"/{self.api}.{service}/{rpc}",
                    request_serializer=req.SerializeToString,
                    response_deserializer=resp.FromString,
                )
                self._callables[rpc] = fn
            return fn

    def _error(self, rpc: str, err: grpc.RpcError) -> CriError:
        code = err.code() if hasattr(err, "code") else None
        detail = (err.details() if hasattr(err, "details") else str(err)) or str(code)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return CriTimeout(
                f"{rpc} on {self.path} timed out after {self.timeout:g}s (runtime slow or hung? "
                "try a larger --timeout)"
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            failure = CriCallFailed(f"{rpc} on {self.path}: runtime unavailable ({detail.splitlines()[0]})")
        else:
            failure = CriCallFailed(f"{rpc} on {self.path} failed: {detail.splitlines()[0]}")
        failure.code = code
        return failure

    def call(self, rpc: str, request: Message, timeout: float | None = None) -> Any:
        try:
            return self._callable(rpc)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as err:
            raise self._error(rpc, err) from None

    def begin(self, rpc: str, request: Message, timeout: float | None = None) -> Callable[[], Any]:
        """Send a call now and go on; the function returned waits for its answer (or raises CriError)."""
        future = self._callable(rpc).future(request, timeout=timeout or self.timeout)

        def answer() -> Any:
            try:
                return future.result()
            except grpc.RpcError as err:
                raise self._error(rpc, err) from None

        return answer

    def call_many(
        self, rpc: str, requests: Mapping[str, Message], timeout: float | None = None
    ) -> dict[str, Any]:
        """Issue all calls at once over the one channel and gather them: ``{key: response | CriError}``."""
        fn = self._callable(rpc)
        futures = {key: fn.future(req, timeout=timeout or self.timeout) for key, req in requests.items()}
        results: dict[str, Any] = {}
        for key, fut in futures.items():
            try:
                results[key] = fut.result()
            except grpc.RpcError as err:
                results[key] = self._error(rpc, err)
        return results

    # -- the calls nodedoc reads with ---------------------------------------------------------------

    def version(self) -> Any:
        return self.call("Version", pb.VersionRequest(version="v1"))

    def status(self, verbose: bool = False) -> Any:
        return self.call("Status", pb.StatusRequest(verbose=verbose))

    def list_pod_sandboxes(self, **filter_fields: Any) -> list[Any]:
        request = pb.ListPodSandboxRequest()
        if filter_fields:
            request.filter.CopyFrom(pb.PodSandboxFilter(**filter_fields))
        return list(self.call("ListPodSandbox", request).items)

    def pod_sandbox_status(self, sandbox_id: str, verbose: bool = True) -> Any:
        return self.call(
            "PodSandboxStatus", pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose)
        )

    def pod_sandbox_statuses(self, sandbox_ids: Iterable[str], verbose: bool = True) -> dict[str, Any]:
        requests = {i: pb.PodSandboxStatusRequest(pod_sandbox_id=i, verbose=verbose) for i in sandbox_ids}
        return self.call_many("PodSandboxStatus", requests)

    def list_containers(self, **filter_fields: Any) -> list[Any]:
        return self.list_containers_later(**filter_fields)()

    def list_containers_later(self, **filter_fields: Any) -> Callable[[], list[Any]]:
        """ListContainers sent now; the function returned waits for the list."""
        request = pb.ListContainersRequest()
        if filter_fields:
            request.filter.CopyFrom(pb.ContainerFilter(**filter_fields))
        answer = self.begin("ListContainers", request)
        return lambda: list(answer().containers)

    def container_status(self, container_id: str, verbose: bool = True) -> Any:
        return self.call(
            "ContainerStatus", pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        )

    def container_statuses(self, container_ids: Iterable[str], verbose: bool = True) -> dict[str, Any]:
        requests = {i: pb.ContainerStatusRequest(container_id=i, verbose=verbose) for i in container_ids}
        return self.call_many("ContainerStatus", requests)

    def list_images(self) -> list[Any]:
        return list(self.call("ListImages", pb.ListImagesRequest()).images)

    def image_status(self, image: str, verbose: bool = True) -> Any:
        return self.call(
            "ImageStatus", pb.ImageStatusRequest(image=pb.ImageSpec(image=image), verbose=verbose)
        )

    def image_fs_info(self) -> Any:
        return self.call("ImageFsInfo", pb.ImageFsInfoRequest())

    # -- the calls the lab runs pods with -----------------------------------------------------------

    def run_pod_sandbox(self, config: Any, runtime_handler: str = "", timeout: float = 60.0) -> str:
        request = pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        return str(self.call("RunPodSandbox", request, timeout=timeout).pod_sandbox_id)

    def stop_pod_sandbox(self, sandbox_id: str, timeout: float = 30.0) -> None:
        self.call("StopPodSandbox", pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=timeout)

    def remove_pod_sandbox(self, sandbox_id: str, timeout: float = 30.0) -> None:
        self.call("RemovePodSandbox", pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id), timeout=timeout)

    def create_container(
        self, sandbox_id: str, config: Any, sandbox_config: Any, timeout: float = 60.0
    ) -> str:
        request = pb.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
        )
        return str(self.call("CreateContainer", request, timeout=timeout).container_id)

    def start_container(self, container_id: str, timeout: float = 60.0) -> None:
        self.call("StartContainer", pb.StartContainerRequest(container_id=container_id), timeout=timeout)

    def stop_container(self, container_id: str, grace: int = 0, timeout: float = 30.0) -> None:
        request = pb.StopContainerRequest(container_id=container_id, timeout=grace)
        self.call("StopContainer", request, timeout=timeout)

    def remove_container(self, container_id: str, timeout: float = 30.0) -> None:
        self.call("RemoveContainer", pb.RemoveContainerRequest(container_id=container_id), timeout=timeout)

    def pull_image(self, image: str, timeout: float = 120.0) -> str:
        """Pull ``image`` through the runtime (its registry config applies); the image ref it returns."""
        request = pb.PullImageRequest(image=pb.ImageSpec(image=image))
        return str(self.call("PullImage", request, timeout=timeout).image_ref)

    def remove_image(self, image: str, timeout: float = 60.0) -> None:
        self.call("RemoveImage", pb.RemoveImageRequest(image=pb.ImageSpec(image=image)), timeout=timeout)


def discover(
    explicit: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    environ: Mapping[str, str] | None = None,
    host_root: Path = Path("/"),
) -> CriClient:
    """Connect to the first candidate endpoint that answers as a CRI runtime."""
    candidates = candidate_endpoints(explicit, environ, host_root)
    if len(candidates) == 1:
        return CriClient.connect(candidates[0].endpoint, timeout)
    errors: list[CriError] = []
    for cand in candidates:
        try:
            return CriClient.connect(cand.endpoint, timeout)
        except CriError as exc:
            errors.append(exc)
    for kind in (EndpointPermissionDenied, CriTimeout, NotCriRuntime, CriCallFailed):
        for error in errors:
            if isinstance(error, kind):
                raise error
    tried = ", ".join(socket_path(c.endpoint) for c in candidates)
    raise EndpointNotFound(
        f"no CRI runtime socket found (tried {tried}); name one with --endpoint or CONTAINER_RUNTIME_ENDPOINT"
    )
