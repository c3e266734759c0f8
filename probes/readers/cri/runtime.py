"""What the runtime says about itself over CRI: name, version, API and its conditions."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from probes.readers.cri.client import CriClient

#: The only conditions the kubelet acts on: either false and it marks the node NotReady.
NODE_CONDITIONS = ("RuntimeReady", "NetworkReady")


@dataclass(frozen=True)
class RuntimeCondition:
    """One CRI runtime condition (``RuntimeReady``, ``NetworkReady``, ...)."""

    type: str
    status: bool
    reason: str = ""
    message: str = ""

    @property
    def kubelet_reads(self) -> bool:
        """Whether the kubelet acts on this condition (the node's readiness), not only passes it on."""
        return self.type in NODE_CONDITIONS

    def deprecations(self) -> dict[str, str]:
        """containerd's deprecation ids and messages when the message is their JSON object, else {}.

        containerd 2.1 reports ``ContainerdHasNoDeprecationWarnings`` with a message such as
        ``{"io.containerd.deprecation/cri-registry-mirrors": "The `mirrors` property ..."}``.
        """
        try:
            parsed = json.loads(self.message or "")
        except ValueError:
            return {}
        if isinstance(parsed, dict) and all(isinstance(v, str) for v in parsed.values()):
            return dict(sorted(parsed.items()))
        return {}


@dataclass(frozen=True)
class RuntimeFacts:
    """Name, version, API version, endpoint and conditions of the live runtime."""

    name: str
    version: str
    api_version: str
    api_package: str
    endpoint: str
    conditions: list[RuntimeCondition] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeFacts:
        return cls(
            name=str(data.get("name") or ""),
            version=str(data.get("version") or ""),
            api_version=str(data.get("api_version") or ""),
            api_package=str(data.get("api_package") or ""),
            endpoint=str(data.get("endpoint") or ""),
            conditions=[RuntimeCondition(**c) for c in data.get("conditions") or []],
        )


def read_runtime_facts(client: CriClient) -> RuntimeFacts:
    """Ask the runtime (``Version`` and ``Status``); raises :class:`probes.errors.CriError`."""
    version = client.version()
    status = client.status(verbose=False)
    return RuntimeFacts(
        name=version.runtime_name,
        version=version.runtime_version,
        api_version=version.runtime_api_version,
        api_package=client.api,
        endpoint=client.endpoint,
        conditions=[
            RuntimeCondition(type=c.type, status=c.status, reason=c.reason, message=c.message)
            for c in status.status.conditions
        ],
    )
