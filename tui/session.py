"""The headless engine behind the screens: one node, read on demand, in whatever thread calls it.

``NodeSession`` wraps a :class:`probes.node.NodeContext` and returns plain data the screens draw
(sandbox and container views, network comparisons, probe results, snapshot rows, the process scan).
It never imports Textual. A runtime that stops answering raises :class:`RuntimeUnreachable` and drops
the dead connection, so the next call reconnects. ``RecordedSession`` serves the same data from a
JSON recording made on the real lab (``record_session``), for snapshot tests with a fixed clock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from probes.api import Finding, ProbeResult, ProbeStatus
from probes.errors import CriError, NodedocError
from probes.node import NeedUnmet, NodeContext
from probes.readers.cri.sandboxes import ContainerView, SandboxView
from tui.redact import Redactor

FORMAT = "nodedoc.session/v1"

Progress = Callable[[int, int], None]


class RuntimeUnreachable(CriError):
    """The runtime did not answer; the connection was dropped and the next call tries again."""


class ProbeUnavailable(NodedocError):
    """The reader a screen needs is not part of this build (or cannot look at this node)."""


def redact(value: Any) -> Any:
    """A copy with secrets replaced, by the same rules as the exported report (:mod:`tui.redact`)."""
    redactor = Redactor()
    return redactor.scrub_echoes(redactor.walk(value))


@dataclass
class SnapshotCatalog:
    """What the snapshots screen draws: images with their layers, and every snapshot as a row."""

    root: str = ""
    error: str = ""
    images: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)

    def by_id(self, snapshot_id: int) -> dict[str, Any] | None:
        return next((s for s in self.snapshots if s["id"] == snapshot_id), None)

    def by_name(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.snapshots if s["name"] == name), None)


class NodeSession:
    """Reads one node for the screens. Every method may block: call it from a worker thread."""

    def __init__(self, node: NodeContext, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.clock = clock
        self._lock = threading.Lock()
        self._disk: Any = None
        self.last_sandboxes: list[SandboxView] = []
        self.last_sandboxes_at: float | None = None
        self.last_results: list[ProbeResult] = []

    # -- what kind of session ----------------------------------------------------------------------

    @property
    def post_mortem(self) -> bool:
        return self.node.post_mortem

    @property
    def endpoint(self) -> str:
        return self.node.endpoint or "(discovered)"

    def now(self) -> float:
        return self.clock()

    def post_mortem_session(self) -> NodeSession:
        """A session on the same containerd root with no live runtime (raises when the root is unknown)."""
        root = self.node.containerd_root or self.node.root()
        return NodeSession(
            NodeContext(containerd_root=root, host_root=self.node.host_root, proc_root=self.node.proc_root),
            self.clock,
        )

    # -- the runtime --------------------------------------------------------------------------------

    def _cri(self, call: Callable[[Any], Any]) -> Any:
        """Run ``call(client)``; a dead runtime drops the connection and becomes RuntimeUnreachable."""
        try:
            return call(self.node.cri())
        except NeedUnmet:
            raise
        except CriError as exc:
            self.node.forget_runtime()
            raise RuntimeUnreachable(str(exc)) from None

    def node_facts(self) -> dict[str, str]:
        from tui.report import node_facts

        return node_facts(self.node)

    def runtime(self) -> dict[str, Any]:
        """Name, version, API, endpoint and conditions (RuntimeUnreachable when it does not answer)."""
        from probes.readers.cri.runtime import read_runtime_facts

        return self._cri(lambda client: read_runtime_facts(client).to_dict())

    def heartbeat(self) -> None:
        """One cheap call (Version) to tell whether the runtime still answers."""
        self._cri(lambda client: client.version())

    def sandboxes(self) -> list[SandboxView]:
        from probes.readers.cri.sandboxes import list_sandboxes

        views = self._cri(list_sandboxes)
        with self._lock:
            self.last_sandboxes, self.last_sandboxes_at = views, self.now()
        return views

    def containers(self, sandbox_id: str) -> list[ContainerView]:
        from probes.readers.cri.sandboxes import list_containers

        views = self._cri(lambda client: list_containers(client, sandbox_id))
        for view in views:
            view.env = redact(view.env)
        return views

    def pod_network(self, view: SandboxView) -> dict[str, Any]:
        """CRI's IPs beside the addresses really configured in the pod's namespace."""
        from probes.readers.procfs.netns import compare_pod

        return compare_pod(view, self.node.proc_root).to_dict()

    def image_count(self) -> int:
        return len(self._cri(lambda client: client.list_images()))

    # -- probes -------------------------------------------------------------------------------------

    def probe_results(
        self, on_result: Callable[[ProbeResult], None] | None = None, only: list[str] | None = None
    ) -> list[ProbeResult]:
        """The registered probes (those in ``only`` when given), on a fresh view of the node.

        Nothing cached from an earlier run is reused. A full run is kept as ``last_results``.
        """
        from probes.registry import run_probes, select

        fresh = self.node.fresh()
        try:
            results = run_probes(fresh, select(only) if only is not None else None, on_result=on_result)
        finally:
            fresh.close()
        if only is None:
            self.last_results = results
        return results

    # -- snapshots ----------------------------------------------------------------------------------

    def disk(self, reload: bool = False) -> Any:
        from probes.readers.disk.containerd_store import ContainerdDisk

        with self._lock:
            if self._disk is None or reload:
                root = self.node.root()
                proc = None if self.post_mortem else self.node.proc_root
                self._disk = ContainerdDisk(root, proc)
            return self._disk

    def snapshot_catalog(self) -> SnapshotCatalog:
        disk = self.disk(reload=True)
        images = []
        for view in disk.images():
            layers = []
            for i, snap in enumerate(view.snapshots):
                layer = view.resolved.layers[i]
                layers.append(
                    {"index": layer.index, "digest": layer.blob.digest, "snapshot": snap.id if snap else None}
                )
            images.append({"name": view.record.name, "error": view.error, "layers": layers})
        rows = []
        for info in disk.snapshots():
            row = info.summary()
            row["name"] = info.record.name
            row["owner_names"] = [c.display_name for c in info.owners]
            row["owner_sandboxes"] = [c.sandbox_id for c in info.owners]
            rows.append(row)
        return SnapshotCatalog(root=str(disk.root), images=images, snapshots=rows)

    def snapshot_files(self, snapshot_id: int, path: str = "/") -> list[dict[str, Any]]:
        disk = self.disk()
        return [asdict(e) for e in disk.list_files(disk.snapshot(snapshot_id), path)]

    def verify(
        self,
        snapshot_ids: list[int] | None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Verify the named snapshots (every committed one when None) against their layer blobs."""
        disk = self.disk()
        infos = None if snapshot_ids is None else [disk.snapshot(i) for i in snapshot_ids]
        done = disk.verify_many(
            infos, progress, cancel, (lambda v: on_result(v.to_dict())) if on_result else None
        )
        return [v.to_dict() for v in done]

    # -- processes ----------------------------------------------------------------------------------

    def processes(self) -> dict[str, Any]:
        """The runtime's process tree with pipes and per-uid pipe budgets (``RuntimeScan.to_dict``)."""
        if self.post_mortem:
            raise ProbeUnavailable("post-mortem mode: the processes here are not the broken node's")
        from probes.readers.procfs.procs import scan_runtime

        return scan_runtime(self.node.proc_root).to_dict()


# -- recorded sessions ------------------------------------------------------------------------------


def result_to_dict(result: ProbeResult) -> dict[str, Any]:
    return {
        **result.to_dict(),
        "findings": [f.to_dict() for f in result.findings],
        "facts": result.facts,
    }


def result_from_dict(data: dict[str, Any]) -> ProbeResult:
    return ProbeResult(
        probe=data["id"],
        title=data["title"],
        status=ProbeStatus(data["status"]),
        reason=data["reason"],
        duration_ms=data["duration_ms"],
        findings=[Finding.from_dict(f) for f in data["findings"]],
        facts=data.get("facts") or {},
    )


class RecordedSession(NodeSession):
    """Serves a recording of a real node: same answers every time, the clock fixed at recording time.

    ``runtime_down`` (settable by a test) makes every runtime call fail as the recording's runtime did.
    """

    def __init__(self, data: dict[str, Any], latency: float = 0.0) -> None:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} recording")
        self.data = data
        self.latency = latency
        fixed = float(data["now"])
        super().__init__(NodeContext(endpoint=data.get("endpoint") or "unix:///recorded.sock"), lambda: fixed)
        self.runtime_down = bool(data.get("runtime_error"))

    @classmethod
    def load(cls, path: Path | str, **kw: Any) -> RecordedSession:
        return cls(json.loads(Path(path).read_text()), **kw)

    @property
    def post_mortem(self) -> bool:
        return bool(self.data.get("post_mortem"))

    @property
    def endpoint(self) -> str:
        return str(self.data.get("endpoint") or "")

    def _wait(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def _live(self) -> None:
        self._wait()
        if self.runtime_down:
            raise RuntimeUnreachable(self.data.get("runtime_error") or "recorded runtime is down")

    def post_mortem_session(self) -> NodeSession:
        data = {**self.data, "post_mortem": True, "runtime_error": ""}
        session = RecordedSession(data)
        session.runtime_down = True
        return session

    def node_facts(self) -> dict[str, str]:
        return dict(self.data["node"])

    def runtime(self) -> dict[str, Any]:
        self._live()
        return dict(self.data["runtime"])

    def heartbeat(self) -> None:
        self._live()

    def sandboxes(self) -> list[SandboxView]:
        self._live()
        views = [SandboxView(**s) for s in self.data["sandboxes"]]
        self.last_sandboxes, self.last_sandboxes_at = views, self.now()
        return views

    def containers(self, sandbox_id: str) -> list[ContainerView]:
        self._live()
        return [ContainerView(**c) for c in self.data["containers"].get(sandbox_id, [])]

    def pod_network(self, view: SandboxView) -> dict[str, Any]:
        self._wait()
        return dict(
            self.data["network"].get(view.id) or {"cri_ips": view.ips, "netns_ips": None, "error": ""}
        )

    def image_count(self) -> int:
        self._live()
        return int(self.data.get("images", 0))

    def probe_results(
        self, on_result: Callable[[ProbeResult], None] | None = None, only: list[str] | None = None
    ) -> list[ProbeResult]:
        self._wait()
        results = [result_from_dict(r) for r in self.data["results"]]
        if only is not None:
            results = [r for r in results if r.probe in only]
        for r in results:
            if on_result:
                on_result(r)
        if only is None:
            self.last_results = results
        return results

    def _snap(self) -> dict[str, Any]:
        snap = self.data["snapshots"]
        if snap.get("error"):
            raise ProbeUnavailable(snap["error"])
        return snap

    def snapshot_catalog(self) -> SnapshotCatalog:
        self._wait()
        snap = self._snap()
        return SnapshotCatalog(root=snap["root"], images=snap["images"], snapshots=snap["rows"])

    def snapshot_files(self, snapshot_id: int, path: str = "/") -> list[dict[str, Any]]:
        return list(self._snap()["files"].get(str(snapshot_id), {}).get(path, []))

    def verify(
        self,
        snapshot_ids: list[int] | None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        recorded = self._snap()["verify"]
        ids = snapshot_ids if snapshot_ids is not None else [int(k) for k in recorded]
        out = []
        for n, sid in enumerate(ids, 1):
            self._wait()
            if cancel is not None and cancel.is_set():
                from probes.readers.disk.layer_verify import VerifyCancelled

                raise VerifyCancelled("verification cancelled")
            result = recorded.get(str(sid)) or {"id": sid, "status": "unverifiable", "reason": "not recorded"}
            out.append(result)
            if progress:
                progress(n, len(ids))
            if on_result:
                on_result(result)
        return out

    def processes(self) -> dict[str, Any]:
        self._wait()
        procs = self.data["processes"]
        if procs.get("error"):
            raise ProbeUnavailable(procs["error"])
        return procs["scan"]


def record_session(session: NodeSession, files_of: int = 3) -> dict[str, Any]:
    """Everything the screens ask for, as JSON: what ``RecordedSession`` serves back."""
    data: dict[str, Any] = {
        "format": FORMAT,
        "now": session.now(),
        "endpoint": session.node.endpoint,
        "node": session.node_facts(),
        "runtime": None,
        "runtime_error": "",
        "sandboxes": [],
        "containers": {},
        "network": {},
        "images": 0,
    }
    try:
        data["runtime"] = session.runtime()
        views = session.sandboxes()
        data["images"] = session.image_count()
        data["sandboxes"] = [redact(v.to_dict(with_info=True)) for v in views]
        for v in views:
            data["containers"][v.id] = [c.to_dict() for c in session.containers(v.id)]
            data["network"][v.id] = session.pod_network(v)
    except RuntimeUnreachable as exc:
        data["runtime_error"] = str(exc)
    data["results"] = [redact(result_to_dict(r)) for r in session.probe_results()]
    try:
        catalog = session.snapshot_catalog()
        files: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for row in catalog.snapshots[:files_of] + [r for r in catalog.snapshots if r["kind"] == "active"][:1]:
            files[str(row["id"])] = {"/": session.snapshot_files(row["id"])}
        verify = {str(v["id"]): v for v in session.verify(None)}
        data["snapshots"] = {
            "root": catalog.root,
            "images": catalog.images,
            "rows": catalog.snapshots,
            "files": files,
            "verify": verify,
        }
    except NodedocError as exc:
        data["snapshots"] = {"error": str(exc)}
    try:
        data["processes"] = {"scan": session.processes()}
    except NodedocError as exc:
        data["processes"] = {"error": str(exc)}
    return data


def dump_recording(data: dict[str, Any], path: Path | str) -> None:
    Path(path).write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
