"""What a worker reading the node posts back to its screen: one message class per kind of data.

A screen's worker reads through :class:`tui.session.NodeReader` and posts one of these; a read that could
not be done posts :class:`Unavailable` with the one-line reason. Handlers never see untyped data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # what the messages carry, imported by the screens that read it
    from probes.api import Finding, ProbeResult
    from probes.readers.cri.runtime import RuntimeFacts
    from probes.readers.cri.sandboxes import ContainerView, SandboxView
    from probes.readers.disk.catalog import SnapshotCatalog, SnapshotRow, VerifyResult
    from probes.readers.disk.layer_verify import FileEntry
    from probes.readers.procfs.netns import PodNetwork
    from tui.session import RuntimeProcesses


@dataclass
class RuntimeRead(Message):
    facts: RuntimeFacts


@dataclass
class RuntimeLost(Message):
    reason: str


@dataclass
class SandboxesRead(Message):
    sandboxes: list[SandboxView]


@dataclass
class ContainersRead(Message):
    containers: list[ContainerView]


@dataclass
class PodNetworkRead(Message):
    network: PodNetwork


@dataclass
class ImagesCounted(Message):
    count: int


@dataclass
class CatalogRead(Message):
    catalog: SnapshotCatalog


@dataclass
class SnapshotChainRead(Message):
    """A pod's snapshot and its parents, newest first; ``verified`` once they have been checked, and
    ``fixes`` (the snapshots probe's findings about them) when a layer is not ok."""

    chain: list[SnapshotRow]
    verified: dict[int, VerifyResult] | None = None
    fixes: list[Finding] | None = None


@dataclass
class FilesRead(Message):
    snapshot_id: int
    path: str
    entries: list[FileEntry]


@dataclass
class SnapshotVerified(Message):
    result: VerifyResult


@dataclass
class VerificationEnded(Message):
    error: str


@dataclass
class ResultsRead(Message):
    results: list[ProbeResult]


@dataclass
class ProcessesRead(Message):
    processes: RuntimeProcesses


@dataclass
class Unavailable(Message):
    """``what`` (snapshots, processes, ...) could not be read: ``reason`` says why in one line."""

    what: str
    reason: str
