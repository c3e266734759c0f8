"""The boundary between the screens and the node: what a screen may ask, in the probes' own dataclasses.

:class:`NodeReader` is everything a screen reads; :class:`NodeSession` reads a live node (or a containerd
root post-mortem) through :class:`probes.node.NodeContext`. Every method may block: call it from a worker.
Errors are :class:`probes.errors.NodedocError` subclasses: a runtime that stops answering raises
:class:`RuntimeUnreachable` and drops the dead connection, so the next call reconnects. Tests serve a
recording of the real lab through the same protocol (``tests/recorded_session.py``). Never imports Textual.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from probes.api import Finding, ProbeResult
from probes.errors import CriError, NodedocError
from probes.node import NeedUnmet, NodeContext
from probes.readers.cri.client import CriClient
from probes.readers.cri.runtime import RuntimeFacts, read_runtime_facts
from probes.readers.cri.sandboxes import ContainerView, SandboxView, list_containers, list_sandboxes
from tui.redact import redacted

if TYPE_CHECKING:
    # The disk, procfs and report readers are imported where they are first used: the troubleshooter
    # shows the runtime before it reads any of them.
    from probes.readers.disk.catalog import SnapshotCatalog, VerifyResult
    from probes.readers.disk.containerd_store import ContainerdDisk
    from probes.readers.disk.layer_verify import FileEntry
    from probes.readers.host.os_release import NodeFacts
    from probes.readers.procfs.netns import PodNetwork
    from probes.readers.procfs.procs import RuntimeScan
    from tui.report.model import Report, Walkthrough

T = TypeVar("T")

Progress = Callable[[int, int], None]

#: The probe whose verdicts the processes screen shows.
PROCESS_PROBE = "runc"
#: Probes whose long reads wait for the rest of a run (the snapshots probe's layer verification), and
#: for how long at most (a hung probe is reported only once its own timeout ends: this is not waited for).
HEAVY_PROBES = ("snapshots",)
HEAVY_WAIT_S = 5.0


#: How long after a key the reads behind the screens may wait for it, at most (a key whose painting
#: never comes round only slows them down for that long).
BUSY_LIMIT_S = 0.5
#: How long they wait on after the first paint that follows a key: what the key changed may be painted a
#: little later (a filter box's change message is handled after the box itself has been repainted).
SETTLE_S = 0.05


class Foreground:
    """Whether the troubleshooter is busy with a key: the long reads running behind it wait while it is.

    The App marks it busy when a key, click or scroll comes (:meth:`busy` gives that input's token) and
    done once the screen has been painted after it; it stays busy for SETTLE_S more. The paint after an
    earlier input never ends a later one's wait. Layer verification, the slowest read (a large image is
    seconds of tar headers read in Python, which holds the interpreter), calls :meth:`pause` between blocks
    of the blob, and every probe before each value it reads through the node context, so a key is handled
    while they wait rather than sharing the interpreter with them. Pausing changes when a read happens,
    never what it finds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self._latest = 0

    def busy(self) -> int:
        with self._lock:
            self._latest += 1
            self._until = time.monotonic() + BUSY_LIMIT_S
            return self._latest

    def done(self, token: int | None = None) -> None:
        """The input ``token`` (the latest when None) has been painted."""
        with self._lock:
            if token is None or token == self._latest:
                self._until = min(self._until, time.monotonic() + SETTLE_S)

    def is_busy(self) -> bool:
        """Whether :meth:`pause` would wait now."""
        return self._until > time.monotonic()

    def pause(self) -> None:
        """Wait while the UI is busy, no longer than BUSY_LIMIT_S after the last input."""
        while (left := self._until - time.monotonic()) > 0:
            time.sleep(min(left, SETTLE_S))


#: The nice value of the threads that read the node behind the screens. On a node with few cores the
#: blob reads, inflating and hashing they start (each in C, without the GIL) otherwise take the core the
#: screen's own Python needs while a key is handled; threads they start inherit it.
BACKGROUND_NICE = 10


def in_background() -> None:
    """Lower the calling thread's scheduling priority to BACKGROUND_NICE (Linux sets it per thread; where it
    cannot be set, the thread keeps its own). Changes when a read runs, never what it finds. The main
    thread, the screen's, is never lowered; nor should a pooled thread be, which later runs other work
    (Textual's thread workers run in the event loop's executor): call it in a thread of its own."""
    if threading.current_thread() is threading.main_thread() or not sys.platform.startswith("linux"):
        return  # elsewhere PRIO_PROCESS with a thread's id would name a process
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), BACKGROUND_NICE))
    except (OSError, AttributeError):
        pass


class RuntimeUnreachable(CriError):
    """The runtime did not answer; the connection was dropped and the next call tries again."""


class NotOnThisNode(NodedocError):
    """What was asked cannot be read from this node (post-mortem: the processes here are not its own)."""


@dataclass
class RuntimeProcesses:
    """The runtime's processes from one scan, and the runc probe's findings on that very scan."""

    scan: RuntimeScan
    findings: list[Finding] = field(default_factory=list)

    def blocked_init(self, pid: int) -> Finding | None:
        """The probe's ``runc.init-blocked`` finding for ``pid``, None when the probe saw no hang there."""
        return next(
            (f for f in self.findings if f.id == "runc.init-blocked" and f.subject.get("pid") == pid), None
        )


class NodeReader(Protocol):
    """What the screens may ask of a node. Implementations: :class:`NodeSession`, and in tests a recording."""

    last_sandboxes: list[SandboxView]
    last_sandboxes_at: float | None
    last_results: list[ProbeResult]
    #: Marked by the App; the reads behind it pause on it (see Foreground).
    foreground: Foreground

    @property
    def post_mortem(self) -> bool: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def containerd_root(self) -> str:
        """The containerd root read post-mortem, as a person would name it."""
        ...

    def now(self) -> float: ...

    def post_mortem_session(self) -> NodeReader:
        """The same containerd root read with no live runtime (raises when the root is unknown)."""
        ...

    def node_facts(self) -> NodeFacts: ...

    def runtime(self) -> RuntimeFacts: ...

    def heartbeat(self) -> None:
        """One cheap call to tell whether the runtime still answers (RuntimeUnreachable when not)."""
        ...

    def sandboxes(self, verbose: bool = True) -> list[SandboxView]:
        """Every pod sandbox with its status (state, IPs, host network); ``verbose`` also what locates
        it on the host (pid, netns, snapshot key, image, the runtime's info)."""
        ...

    def sandbox(self, sandbox_id: str) -> SandboxView | None:
        """One sandbox read now with its verbose status; None when it is gone."""
        ...

    def containers(self, sandbox_id: str) -> list[ContainerView]:
        """The sandbox's containers, env values redacted."""
        ...

    def pod_network(self, view: SandboxView) -> PodNetwork: ...

    def image_count(self) -> int: ...

    def probe_results(
        self, on_result: Callable[[ProbeResult], None] | None = None, only: list[str] | None = None
    ) -> list[ProbeResult]:
        """Run the probes (those in ``only`` when given) on the node as it is now."""
        ...

    def snapshot_catalog(self) -> SnapshotCatalog: ...

    def snapshot_files(self, snapshot_id: int, path: str = "/") -> list[FileEntry]: ...

    def verify(
        self,
        snapshot_ids: list[int] | None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        on_result: Callable[[VerifyResult], None] | None = None,
    ) -> list[VerifyResult]:
        """Verify the named snapshots (every committed one when None) against their layer blobs."""
        ...

    def processes(self) -> RuntimeProcesses: ...

    def report(self, results: list[ProbeResult], walk: Walkthrough | None = None) -> Report:
        """The findings report of these results (and a walkthrough), redacted."""
        ...


class NodeSession:
    """Reads one live node (or a containerd root post-mortem) for the screens."""

    def __init__(self, node: NodeContext, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.clock = clock
        self._lock = threading.Lock()
        self._disk: ContainerdDisk | None = None
        self.last_sandboxes: list[SandboxView] = []
        self.last_sandboxes_at: float | None = None
        self.last_results: list[ProbeResult] = []
        self.foreground = Foreground()

    # -- what kind of session ----------------------------------------------------------------------

    @property
    def post_mortem(self) -> bool:
        return self.node.post_mortem

    @property
    def endpoint(self) -> str:
        return self.node.endpoint or "(discovered)"

    @property
    def containerd_root(self) -> str:
        return str(self.node.containerd_root or "containerd's root")

    def now(self) -> float:
        return self.clock()

    def post_mortem_session(self) -> NodeSession:
        root = self.node.containerd_root or self.node.root()
        return NodeSession(
            NodeContext(containerd_root=root, host_root=self.node.host_root, proc_root=self.node.proc_root),
            self.clock,
        )

    def node_facts(self) -> NodeFacts:
        return self.node.node_facts()

    # -- the runtime --------------------------------------------------------------------------------

    def _cri(self, call: Callable[[CriClient], T]) -> T:
        """Run ``call(client)``; a dead runtime drops the connection and becomes RuntimeUnreachable."""
        try:
            return call(self.node.cri())
        except NeedUnmet:
            raise
        except CriError as exc:
            self.node.forget_runtime()
            raise RuntimeUnreachable(str(exc)) from None

    def runtime(self) -> RuntimeFacts:
        return self._cri(read_runtime_facts)

    def heartbeat(self) -> None:
        self._cri(lambda client: client.version())

    def sandboxes(self, verbose: bool = True) -> list[SandboxView]:
        views = self._cri(lambda client: list_sandboxes(client, verbose=verbose))
        with self._lock:
            self.last_sandboxes, self.last_sandboxes_at = views, self.now()
        return views

    def sandbox(self, sandbox_id: str) -> SandboxView | None:
        views = self._cri(lambda client: list_sandboxes(client, keep=lambda view: view.id == sandbox_id))
        return views[0] if views else None

    def containers(self, sandbox_id: str) -> list[ContainerView]:
        views = self._cri(lambda client: list_containers(client, sandbox_id))
        for view in views:
            view.env = redacted(view.env)
        return views

    def pod_network(self, view: SandboxView) -> PodNetwork:
        from probes.readers.procfs.netns import compare_pod

        return compare_pod(view, self.node.proc_root)

    def image_count(self) -> int:
        return len(self._cri(lambda client: client.list_images()))

    # -- probes -------------------------------------------------------------------------------------

    def probe_results(
        self, on_result: Callable[[ProbeResult], None] | None = None, only: list[str] | None = None
    ) -> list[ProbeResult]:
        """Nothing cached from an earlier run is reused; a full run is kept as ``last_results``."""
        from probes.registry import run_probes, select

        refs = select(only)
        # Layer verification (seconds on a large image) starts once the run's other probes are done: beside
        # it they take several times as long, and while they run a key shares the interpreter with their
        # reads. Those reads wait before each new value while a key is handled ("pace"), and the
        # verification between blocks of each blob.
        left = {ref.id for ref in refs} - set(HEAVY_PROBES)
        settled = threading.Condition()

        def result(probe_result: ProbeResult) -> None:
            with settled:
                left.discard(probe_result.probe)
                settled.notify_all()
            if on_result is not None:
                on_result(probe_result)

        def before_verifying() -> None:
            with settled:
                settled.wait_for(lambda: not left, timeout=HEAVY_WAIT_S)

        fresh = self.node.fresh()
        fresh.options = {**fresh.options, "pace": self.foreground.pause, "before_verifying": before_verifying}
        try:
            results = run_probes(fresh, refs, on_result=result, on_start=in_background)
        finally:
            fresh.close()
        if only is None:
            self.last_results = results
        return results

    # -- snapshots ----------------------------------------------------------------------------------

    def _containerd_disk(self, reload: bool = False) -> ContainerdDisk:
        from probes.readers.disk.containerd_store import ContainerdDisk

        with self._lock:
            if self._disk is None or reload:
                proc = None if self.post_mortem else self.node.proc_root
                self._disk = ContainerdDisk(self.node.root(), proc)
            return self._disk

    def snapshot_catalog(self) -> SnapshotCatalog:
        from probes.readers.disk.catalog import SnapshotCatalog

        return SnapshotCatalog.of(self._containerd_disk(reload=True))

    def snapshot_files(self, snapshot_id: int, path: str = "/") -> list[FileEntry]:
        disk = self._containerd_disk()
        return disk.list_files(disk.snapshot(snapshot_id), path)

    def verify(
        self,
        snapshot_ids: list[int] | None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        on_result: Callable[[VerifyResult], None] | None = None,
    ) -> list[VerifyResult]:
        from probes.readers.disk.catalog import VerifyResult

        disk = self._containerd_disk()
        infos = None if snapshot_ids is None else [disk.snapshot(i) for i in snapshot_ids]
        pause = self.foreground.pause

        def cancelled() -> bool:  # polled between blocks of each blob: pause there while a key is handled
            pause()
            return cancel is not None and cancel.is_set()

        # A thread of its own, at the lower priority: the caller's may be pooled (Textual's workers).
        with ThreadPoolExecutor(1, thread_name_prefix="verify-snapshots", initializer=in_background) as pool:
            done = pool.submit(
                disk.verify_many,
                infos,
                progress,
                cancelled,
                (lambda v: on_result(VerifyResult.of(v))) if on_result else None,
            ).result()
        return [VerifyResult.of(v) for v in done]

    # -- processes ----------------------------------------------------------------------------------

    def processes(self) -> RuntimeProcesses:
        """One scan of /proc, judged by the runc probe (its verdicts, on the scan shown)."""
        if self.post_mortem:
            raise NotOnThisNode("post-mortem mode: the processes here are not the broken node's")
        from probes.registry import run_probes, select

        fresh = self.node.fresh()
        try:
            results = run_probes(fresh, select([PROCESS_PROBE]))
            scan = fresh.runtime_scan()
        finally:
            fresh.close()
        return RuntimeProcesses(scan, [f for r in results for f in r.findings])

    # -- the report ---------------------------------------------------------------------------------

    def report(self, results: list[ProbeResult], walk: Walkthrough | None = None) -> Report:
        from tui.report.gather import report_of

        return report_of(self.node, results, walkthrough=walk)
