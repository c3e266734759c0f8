"""The report's inventory: every container the runtime knows, with its pod and environment.

:class:`PodContainer` is plain data, so what reads a report back (``nodedoc fleet``, the report model)
needs neither grpc nor the CRI stubs; :func:`container_inventory` asks the runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PodContainer:
    """One container with the pod it runs in and its environment: a line of the report's inventory."""

    id: str
    name: str
    pod: str
    namespace: str
    sandbox_id: str
    state: str
    image: str
    restarts: int = 0
    pid: int | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pod_text(self) -> str:
        """``namespace/pod``, or the sandbox id's first characters when the pod is not known."""
        return f"{self.namespace}/{self.pod}" if self.pod else self.sandbox_id[:13]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PodContainer:
        text = {
            k: str(data.get(k) or "")
            for k in ("id", "name", "pod", "namespace", "sandbox_id", "state", "image")
        }
        pid = data.get("pid")
        return cls(
            **text,
            restarts=int(data.get("restarts") or 0),
            pid=pid if isinstance(pid, int) else None,
            env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        )


def container_inventory(client: Any) -> list[PodContainer]:
    """Every container the runtime knows, with its pod and environment (for the report)."""
    from probes.readers.cri.sandboxes import list_containers

    pods = {p.id: p.metadata for p in client.list_pod_sandboxes()}
    items = []
    for view in sorted(list_containers(client), key=lambda v: (v.sandbox_id, v.name)):
        meta = pods.get(view.sandbox_id)
        items.append(
            PodContainer(
                id=view.id,
                name=view.name,
                pod=meta.name if meta else "",
                namespace=meta.namespace if meta else "",
                sandbox_id=view.sandbox_id,
                state=view.state,
                image=view.image,
                restarts=view.restarts,
                pid=view.pid,
                env=dict(view.env),
            )
        )
    return items
