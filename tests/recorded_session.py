"""A recorded node for the screen tests: what the screens asked of the real lab, served back.

``record_session`` asks a live :class:`tui.session.NodeSession` everything the screens ask and returns it
as JSON data (``tests/record_sessions.py`` writes the fixtures); :class:`RecordedSession` implements
:class:`tui.session.NodeReader` over that data, with the clock fixed at recording time, so every picture
is the same on every run.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from probes.api import ProbeResult
from probes.errors import NodedocError
from probes.node import NodeContext
from probes.readers.cri.runtime import RuntimeFacts
from probes.readers.cri.sandboxes import ContainerView, SandboxView
from probes.readers.disk.catalog import ImageRow, SnapshotCatalog, SnapshotRow, VerifyResult
from probes.readers.disk.layer_verify import FileEntry, VerifyCancelled
from probes.readers.host.os_release import NodeFacts
from probes.readers.procfs.netns import PodNetwork
from probes.readers.procfs.procs import RuntimeScan
from tui.redact import redacted
from tui.report import Report, report_of
from tui.report.model import Walkthrough
from tui.session import (
    PROCESS_PROBE,
    Foreground,
    NodeSession,
    NotOnThisNode,
    Progress,
    RuntimeProcesses,
    RuntimeUnreachable,
)

FORMAT = "nodedoc.session/v1"


class RecordedSession:
    """Serves a recording of a real node: same answers every time, the clock fixed at recording time.

    ``runtime_down`` (settable by a test) makes every runtime call fail as the recording's runtime did.
    """

    def __init__(self, data: dict[str, Any], latency: float = 0.0) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} recording")
        self.data = data
        self.latency = latency
        self.fixed_now = float(data["now"])
        self.runtime_down = bool(data.get("runtime_error"))
        self.node = NodeContext(endpoint=data.get("endpoint") or "unix:///recorded.sock")
        self.last_sandboxes: list[SandboxView] = []
        self.last_sandboxes_at: float | None = None
        self.last_results: list[ProbeResult] = []
        self.foreground = Foreground()

    @classmethod
    def load(cls, path: Path | str, **kw: Any) -> RecordedSession:
        return cls(json.loads(Path(path).read_text()), **kw)

    @property
    def post_mortem(self) -> bool:
        return bool(self.data.get("post_mortem"))

    @property
    def endpoint(self) -> str:
        return str(self.data.get("endpoint") or "")

    @property
    def containerd_root(self) -> str:
        return "the recorded root"

    def now(self) -> float:
        return self.fixed_now

    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def _live(self) -> None:
        self._wait()
        if self.runtime_down:
            raise RuntimeUnreachable(self.data.get("runtime_error") or "recorded runtime is down")

    def post_mortem_session(self) -> RecordedSession:
        session = RecordedSession({**self.data, "post_mortem": True, "runtime_error": ""})
        session.runtime_down = True
        return session

    def node_facts(self) -> NodeFacts:
        return NodeFacts(**self.data["node"])

    def runtime(self) -> RuntimeFacts:
        self._live()
        return RuntimeFacts.from_dict(self.data["runtime"])

    def heartbeat(self) -> None:
        self._live()

    def sandboxes(self, verbose: bool = True) -> list[SandboxView]:
        self._live()
        views = [SandboxView(**s) for s in self.data["sandboxes"]]
        if not verbose:  # what a non-verbose status leaves out
            views = [replace(v, pid=None, netns_path="", snapshot_key="", image="", info={}) for v in views]
        self.last_sandboxes, self.last_sandboxes_at = views, self.now()
        return views

    def sandbox(self, sandbox_id: str) -> SandboxView | None:
        self._live()
        return next((SandboxView(**s) for s in self.data["sandboxes"] if s["id"] == sandbox_id), None)

    def containers(self, sandbox_id: str) -> list[ContainerView]:
        self._live()
        return [ContainerView(**c) for c in self.data["containers"].get(sandbox_id, [])]

    def pod_network(self, view: SandboxView) -> PodNetwork:
        self._wait()
        recorded = self.data["network"].get(view.id)
        if recorded:
            return PodNetwork.from_dict(recorded)
        return PodNetwork(view.id, view.name, view.namespace, view.pid, view.netns_path, list(view.ips))

    def image_count(self) -> int:
        self._live()
        return int(self.data.get("images", 0))

    def probe_results(
        self, on_result: Callable[[ProbeResult], None] | None = None, only: list[str] | None = None
    ) -> list[ProbeResult]:
        self._wait()
        results = [ProbeResult.from_record(r) for r in self.data["results"]]
        if only is not None:
            results = [r for r in results if r.probe in only]
        for r in results:
            if on_result:
                on_result(r)
        if only is None:
            self.last_results = results
        return results

    def _snap(self) -> dict[str, Any]:
        snap: dict[str, Any] = self.data["snapshots"]
        if snap.get("error"):
            raise NotOnThisNode(snap["error"])
        return snap

    def snapshot_catalog(self) -> SnapshotCatalog:
        self._wait()
        snap = self._snap()
        return SnapshotCatalog(
            root=snap["root"],
            images=[ImageRow.from_dict(i) for i in snap["images"]],
            snapshots=[SnapshotRow.from_dict(r) for r in snap["rows"]],
        )

    def snapshot_files(self, snapshot_id: int, path: str = "/") -> list[FileEntry]:
        entries = self._snap()["files"].get(str(snapshot_id), {}).get(path, [])
        return [FileEntry(**e) for e in entries]

    def verify(
        self,
        snapshot_ids: list[int] | None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        on_result: Callable[[VerifyResult], None] | None = None,
    ) -> list[VerifyResult]:
        recorded = self._snap()["verify"]
        ids = snapshot_ids if snapshot_ids is not None else [int(k) for k in recorded]
        out = []
        for n, sid in enumerate(ids, 1):
            self._wait()
            if cancel is not None and cancel.is_set():
                raise VerifyCancelled("verification cancelled")
            data = recorded.get(str(sid)) or {"id": sid, "status": "unverifiable", "reason": "not recorded"}
            result = VerifyResult.from_dict(data)
            out.append(result)
            if progress:
                progress(n, len(ids))
            if on_result:
                on_result(result)
        return out

    def processes(self) -> RuntimeProcesses:
        self._wait()
        procs = self.data["processes"]
        if procs.get("error"):
            raise NotOnThisNode(procs["error"])
        results = [ProbeResult.from_record(r) for r in self.data["results"]]
        findings = [f for r in results if r.probe == PROCESS_PROBE for f in r.findings]
        return RuntimeProcesses(RuntimeScan.from_dict(procs["scan"]), findings)

    def report(self, results: list[ProbeResult], walk: Walkthrough | None = None) -> Report:
        return report_of(self.node, results, walkthrough=walk)


def record_session(session: NodeSession, files_of: int = 3) -> dict[str, Any]:
    """Everything the screens ask for, as JSON: what ``RecordedSession`` serves back."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "now": session.now(),
        "endpoint": session.node.endpoint,
        "node": session.node_facts().to_dict(),
        "runtime": None,
        "runtime_error": "",
        "sandboxes": [],
        "containers": {},
        "network": {},
        "images": 0,
    }
    try:
        data["runtime"] = session.runtime().to_dict()
        views = session.sandboxes()
        data["images"] = session.image_count()
        data["sandboxes"] = [redacted(v.to_dict(with_info=True)) for v in views]
        for v in views:
            data["containers"][v.id] = [c.to_dict() for c in session.containers(v.id)]
            data["network"][v.id] = session.pod_network(v).to_dict()
    except RuntimeUnreachable as exc:
        data["runtime_error"] = str(exc)
    data["results"] = [redacted(r.to_record()) for r in session.probe_results()]
    try:
        catalog = session.snapshot_catalog()
        files: dict[str, dict[str, list[dict[str, Any]]]] = {}
        active = [r for r in catalog.snapshots if r.kind == "active"][:1]
        for row in catalog.snapshots[:files_of] + active:
            files[str(row.id)] = {"/": [asdict(e) for e in session.snapshot_files(row.id)]}
        data["snapshots"] = {
            "root": catalog.root,
            "images": [asdict(i) for i in catalog.images],
            "rows": [r.to_dict() for r in catalog.snapshots],
            "files": files,
            "verify": {str(v.id): v.to_dict() for v in session.verify(None)},
        }
    except NodedocError as exc:
        data["snapshots"] = {"error": str(exc)}
    try:
        data["processes"] = {"scan": session.processes().scan.to_dict()}
    except NodedocError as exc:
        data["processes"] = {"error": str(exc)}
    return data


def dump_recording(data: dict[str, Any], path: Path | str) -> None:
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
