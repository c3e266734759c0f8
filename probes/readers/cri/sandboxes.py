"""Pod sandboxes and containers as the runtime reports them, gathered concurrently over CRI.

One ``ListPodSandbox`` and one ``ListContainers``, then every sandbox's verbose status at once over the
same channel: the view an on-call engineer needs (IPs included, which ``crictl pods`` lacks).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from probes.errors import CriError
from probes.readers.cri import cri_pb2 as pb

if TYPE_CHECKING:
    from probes.readers.disk.sandbox_locations import SandboxLocation

_NETWORK_MODE_NODE = pb.NamespaceMode.Value("NODE")


@dataclass
class SandboxView:
    """One pod sandbox: what CRI says of it, plus the verbose info that locates it on the host."""

    id: str
    name: str
    namespace: str
    uid: str
    attempt: int
    state: str  # "ready" | "notready"
    created_at: int  # ns since the epoch
    runtime_handler: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ips: list[str] = field(default_factory=list)
    host_network: bool = False
    containers: int = 0
    pid: int | None = None
    netns_path: str = ""
    snapshot_key: str = ""
    image: str = ""
    status_error: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def age_seconds(self, now: float | None = None) -> float:
        return max(0.0, (now if now is not None else time.time()) - self.created_at / 1e9)

    def to_dict(self, with_info: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not with_info:
            data.pop("info")
        return data


def _state_name(state: int) -> str:
    return "ready" if state == pb.PodSandboxState.Value("SANDBOX_READY") else "notready"


def parse_verbose_info(info: dict[str, str]) -> dict[str, Any]:
    """containerd puts one JSON document under the ``info`` key; other runtimes may not."""
    raw = info.get("info")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def netns_path_of(verbose: dict[str, Any]) -> str:
    """The network namespace path from the sandbox's runtime spec (``/var/run/netns/cni-...``)."""
    spec = verbose.get("runtimeSpec") or {}
    for ns in (spec.get("linux") or {}).get("namespaces") or []:
        if ns.get("type") == "network":
            return str(ns.get("path") or "")
    return ""


def view_of(
    item: Any, status_response: Any | None, containers: int = 0, location: SandboxLocation | None = None
) -> SandboxView:
    """Build a view from a ListPodSandbox item and (when it came) its PodSandboxStatus response; a
    ``location`` read from the node's files gives what verbose info would (pid, netns, snapshot, image)."""
    meta = item.metadata
    view = SandboxView(
        id=item.id,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        attempt=meta.attempt,
        state=_state_name(item.state),
        created_at=item.created_at,
        runtime_handler=item.runtime_handler,
        labels=dict(item.labels),
        annotations=dict(item.annotations),
        containers=containers,
    )
    if isinstance(status_response, CriError):
        view.status_error = str(status_response)
        return view
    if status_response is None:
        return view
    status = status_response.status
    view.state = _state_name(status.state)
    net = status.network
    view.ips = [ip for ip in [net.ip, *(p.ip for p in net.additional_ips)] if ip]
    view.host_network = status.linux.namespaces.options.network == _NETWORK_MODE_NODE
    if location is not None:
        view.pid = location.pid
        view.netns_path = netns_path_of({"runtimeSpec": location.spec})
        view.snapshot_key = location.snapshot_key
        view.image = location.image
        return view
    verbose = parse_verbose_info(dict(status_response.info))
    view.info = verbose
    if isinstance(verbose.get("pid"), int) and verbose["pid"] > 0:
        view.pid = verbose["pid"]
    view.netns_path = netns_path_of(verbose)
    view.snapshot_key = str(verbose.get("snapshotKey") or "")
    view.image = str(verbose.get("image") or "")
    return view


def list_sandboxes(
    client: Any,
    verbose: bool = True,
    keep: Callable[[SandboxView], bool] | None = None,
    locate: Callable[[list[str]], Mapping[str, SandboxLocation]] | None = None,
) -> list[SandboxView]:
    """Sandboxes with their status, fetched concurrently; newest first.

    ``keep`` filters on what the list alone says (name, namespace, labels, state) so that statuses
    are fetched only for the sandboxes shown. With ``verbose``, ``locate`` reads from the node's files
    where the ready sandboxes it is given live (:mod:`probes.readers.disk.sandbox_locations`): those
    need no verbose status, only the others (not ready, or their files unreadable) are asked for one.
    Views built so carry no ``info``.
    """
    containers = client.list_containers_later()  # both lists asked at once
    items = client.list_pod_sandboxes()
    counts: dict[str, int] = {}
    for container in containers():
        counts[container.pod_sandbox_id] = counts.get(container.pod_sandbox_id, 0) + 1
    if keep is not None:
        items = [i for i in items if keep(view_of(i, None, counts.get(i.id, 0)))]
    ids = [i.id for i in items]
    located: Mapping[str, SandboxLocation] = {}
    if verbose and locate is not None:
        statuses = client.pod_sandbox_statuses(ids, verbose=False)
        located = locate([i for i in ids if _ready(statuses.get(i))])
        rest = [i for i in ids if i not in located]
        statuses.update(client.pod_sandbox_statuses(rest, verbose=True) if rest else {})
    else:
        statuses = client.pod_sandbox_statuses(ids, verbose=verbose)
    views = [view_of(i, statuses.get(i.id), counts.get(i.id, 0), located.get(i.id)) for i in items]
    views.sort(key=lambda v: (-v.created_at, v.namespace, v.name))
    return views


def _ready(status_response: Any) -> bool:
    return (
        status_response is not None
        and not isinstance(status_response, CriError)
        and _state_name(status_response.status.state) == "ready"
    )


@dataclass
class ContainerView:
    """One container as CRI reports it (env values kept: redaction is the writer's job)."""

    id: str
    name: str
    sandbox_id: str
    state: str
    image: str
    image_ref: str
    attempt: int
    created_at: int
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    restarts: int = 0
    pid: int | None = None
    snapshot_key: str = ""
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    status_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CONTAINER_STATES = {
    pb.ContainerState.Value("CONTAINER_CREATED"): "created",
    pb.ContainerState.Value("CONTAINER_RUNNING"): "running",
    pb.ContainerState.Value("CONTAINER_EXITED"): "exited",
    pb.ContainerState.Value("CONTAINER_UNKNOWN"): "unknown",
}


def list_containers(client: Any, sandbox_id: str | None = None) -> list[ContainerView]:
    """Containers (of one sandbox, or all) with their verbose status, fetched concurrently."""
    items = client.list_containers(pod_sandbox_id=sandbox_id) if sandbox_id else client.list_containers()
    statuses = client.container_statuses([c.id for c in items])
    views = []
    for item in items:
        view = ContainerView(
            id=item.id,
            name=item.metadata.name,
            sandbox_id=item.pod_sandbox_id,
            state=_CONTAINER_STATES.get(item.state, "unknown"),
            image=item.image.image,
            image_ref=item.image_ref,
            attempt=item.metadata.attempt,
            created_at=item.created_at,
            restarts=item.metadata.attempt,
            labels=dict(item.labels),
        )
        resp = statuses.get(item.id)
        if isinstance(resp, CriError):
            view.status_error = str(resp)
        elif resp is not None:
            st = resp.status
            view.state = _CONTAINER_STATES.get(st.state, view.state)
            view.started_at, view.finished_at = st.started_at, st.finished_at
            view.exit_code, view.reason, view.message = st.exit_code, st.reason, st.message
            view.image = st.image.image or view.image
            verbose = parse_verbose_info(dict(resp.info))
            if isinstance(verbose.get("pid"), int) and verbose["pid"] > 0:
                view.pid = verbose["pid"]
            view.snapshot_key = str(verbose.get("snapshotKey") or "")
            for kv in (verbose.get("config") or {}).get("envs") or []:
                if isinstance(kv, dict) and "key" in kv:
                    view.env[str(kv["key"])] = str(kv.get("value", ""))
        views.append(view)
    return views
