"""The interactive troubleshooter: app-wide keys, the command palette, screen switching, worker errors.

Each top-level screen is a mode (its own stack), so ``p`` always returns to the pods table as it was
and Esc pops back. Every read of the node runs in a worker; this module holds the one handler that
turns a failed worker into a notification, and the heartbeat that notices the runtime going away and
coming back.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable
from functools import partial
from importlib import import_module, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.markup import escape as escape_markup
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState, get_current_worker

from probes.errors import CriError, NodedocError
from probes.node import NeedUnmet
from probes.readers.cri.sandboxes import SandboxView
from screens.dashboard import DashboardScreen
from tui.session import NodeReader, RuntimeUnreachable
from tui.untrusted import neutralise
from tui.widgets import NodeScreen, node_text

if TYPE_CHECKING:
    from tui.report.model import Walkthrough

#: Seconds between two "are you still there" calls to the runtime (and reconnect attempts).
HEARTBEAT_S = 2.0
#: Seconds without a key or a click after which the app does the full garbage collection it put off.
IDLE_COLLECT_S = 1.0
#: How many times the usual number of collections may be put off while keys keep coming (a key of a 500-pod
#: filter is about one middle collection: ten times the usual came every 75 keys of steady typing).
FORCED_COLLECT = 100
#: The inputs the reads behind the screens wait for (Foreground): keys, clicks and scrolls.
HANDLED_FIRST = (
    events.Key,
    events.MouseDown,
    events.MouseUp,
    events.Click,
    events.MouseScrollDown,
    events.MouseScrollUp,
    events.MouseScrollLeft,
    events.MouseScrollRight,
)

SCREENS_BY_KEY = {
    "dashboard": ("Dashboard", "Node, runtime, counts and the worst findings"),
    "pods": ("Pods", "Pod sandboxes with IPs and state"),
    "snapshots": ("Snapshots", "Images, layers, snapshots; browse and verify"),
    "processes": ("Processes", "containerd, shims, runc, runc init and their pipes"),
    "findings": ("Findings", "Every finding by severity, with remediation"),
}


def few_malloc_arenas(count: int = 2) -> None:
    """Let glibc's malloc keep ``count`` arenas, not one per thread that allocates (up to 8 per core).

    The probes run in a thread each, and memory one thread freed in its own arena is not reused by
    another: with 500 pods the probe run left 25-30 MB more resident than two arenas do, at the same
    CPU time. glibc only: where there is no ``mallopt`` nothing changes."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (ImportError, OSError, AttributeError):
        return
    m_arena_max = -8  # <malloc.h>
    mallopt(m_arena_max, count)


def screen_of(module: str, name: str) -> Callable[[], Screen[Any]]:
    """A screen made by its class in ``screens.<module>``, imported when the screen is first made: the
    troubleshooter starts on the dashboard, and importing every screen first cost that start 40 ms."""

    def make() -> Screen[Any]:
        return cast("Screen[Any]", getattr(import_module(f"screens.{module}"), name)())

    return make


class PodCommands(Provider):
    """Command palette: jump to a pod by name (from the last pod list read)."""

    def _pods(self) -> list[SandboxView]:
        return list(self._app.session.last_sandboxes)

    @property
    def _app(self) -> NodedocApp:
        return cast("NodedocApp", self.app)

    async def discover(self) -> Hits:
        for view in self._pods()[:20]:
            yield DiscoveryHit(
                node_text(f"pod {view.namespace}/{view.name}"),
                partial(self._app.open_pod, view),
                help="open pod detail",
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for view in self._pods():
            text = escape_markup(neutralise(f"pod {view.namespace}/{view.name}"))  # highlight() reads markup
            score = matcher.match(text)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(self._app.open_pod, view),
                    help=neutralise(", ".join(view.ips)),
                )


class NodedocApp(App[None]):
    """nodedoc's troubleshooter on one node."""

    TITLE = "nodedoc"
    # The stylesheet is read through importlib.resources, so it loads from the one-file nodedoc.pyz too.
    CSS = resources.files("tui").joinpath("nodedoc.tcss").read_text(encoding="utf-8")
    COMMANDS = App.COMMANDS | {PodCommands}
    MODES = {
        "dashboard": DashboardScreen,
        "pods": screen_of("pods", "PodsScreen"),
        "snapshots": screen_of("snapshots", "SnapshotsScreen"),
        "processes": screen_of("processes", "ProcessesScreen"),
        "findings": screen_of("findings", "FindingsScreen"),
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        Binding("d", "show('dashboard')", "Dashboard", id="dashboard"),
        Binding("p", "show('pods')", "Pods", id="pods"),
        Binding("s", "show('snapshots')", "Snapshots", id="snapshots"),
        Binding("x", "show('processes')", "Procs", id="processes"),
        Binding("f", "show('findings')", "Findings", id="findings"),
        Binding("w", "runbooks", "Runbooks", id="runbooks"),
        Binding("e", "export", "Export", id="export"),
        Binding("r", "refresh", "Refresh", id="refresh"),
        Binding("slash", "filter", "Filter", id="filter", show=False),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("escape", "go_back", "Back", id="back", show=False),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    runtime_state: reactive[str] = reactive("connecting")
    """connecting, connected, unreachable or post-mortem: what the node bar says of the runtime."""
    runtime_label: reactive[str] = reactive("")
    """Host and runtime version for the node bar."""
    runtime_error: reactive[str] = reactive("")
    """Why the runtime cannot be reached (empty while it answers)."""

    def __init__(self, session: NodeReader, heartbeat: float = HEARTBEAT_S) -> None:
        few_malloc_arenas()  # before any of the app's threads allocate
        super().__init__()
        self.session = session
        self.heartbeat_s = heartbeat

    # -- start, heartbeat, reconnect ------------------------------------------------------------------

    def on_mount(self) -> None:
        self.identify()
        if self.heartbeat_s:
            self.set_interval(self.heartbeat_s, self._beat)
        self._put_off_full_collections()

    # -- garbage collection off the keys ------------------------------------------------------------

    def _put_off_full_collections(self) -> None:
        """Python's full collection walks every object (100-200 ms with 500 pods read), and runs whenever
        enough objects have piled up: often in the middle of a key. It is put off until no key or click
        has come for IDLE_COLLECT_S, or until FORCED_COLLECT times as many are due as usual (typing without a
        pause for a minute or so)."""
        self._gc_thresholds = gc.get_threshold()
        young, middle, _ = self._gc_thresholds
        gc.set_threshold(young, middle, 1 << 30)
        self._last_input = time.monotonic()
        self.set_interval(IDLE_COLLECT_S / 2, self._collect_if_idle)

    def _collect_if_idle(self) -> None:
        due = gc.get_count()[2]  # middle collections since the last full one
        usual = self._gc_thresholds[2]
        idle = time.monotonic() - self._last_input >= IDLE_COLLECT_S
        if due >= usual and (idle or due >= FORCED_COLLECT * usual):
            gc.collect()

    def on_unmount(self) -> None:
        gc.set_threshold(*self._gc_thresholds)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.InputEvent):
            self._last_input = time.monotonic()
        if isinstance(event, HANDLED_FIRST):
            # The long reads behind the screens pause until what this input changes is painted (not for a
            # mouse moving, which changes nothing and would hold them back for as long as it moves).
            foreground = self.session.foreground
            self.call_after_refresh(foreground.done, foreground.busy())
        await super().on_event(event)

    @work(thread=True, exclusive=True, group="identify", exit_on_error=False)
    def identify(self) -> None:
        """Who is this node and which runtime answers (sets the node bar)."""
        session = self.session
        facts = session.node_facts()
        host = f"{facts.hostname or '?'} │ kernel {facts.kernel or '?'}"
        if session.post_mortem:
            self.call_from_thread(self._set_state, "post-mortem", host + " │ disk only")
            return
        self.call_from_thread(setattr, self, "runtime_label", host)
        runtime = session.runtime()
        label = f"{host} │ {runtime.name} {runtime.version} (CRI {runtime.api_version})"
        self.call_from_thread(self._set_state, "connected", label)

    def _set_state(self, state: str, label: str | None = None) -> None:
        if label is not None:
            self.runtime_label = label
        was = self.runtime_state
        self.runtime_state = state
        if state != "unreachable":
            self.runtime_error = ""
        if was == "unreachable" and state == "connected":
            self.notify("The runtime answers again; reloading.", title="Runtime back")
            screen = self.screen
            if isinstance(screen, NodeScreen):
                screen.on_runtime_back()

    def _beat(self) -> None:
        if self.runtime_state in ("post-mortem",):
            return
        self.run_worker(self._heartbeat, thread=True, exclusive=True, group="heartbeat", exit_on_error=False)

    def _heartbeat(self) -> None:
        self.session.heartbeat()
        if self.runtime_state != "connected":
            self.call_from_thread(self.identify)

    def notify(self, message: str, *, title: str = "", markup: bool = False, **kw: Any) -> None:
        """Every notification (and every screen's, which come here) may quote the node: never markup, and
        control characters shown as escapes."""
        super().notify(neutralise(message, multiline=True), title=neutralise(title), markup=False, **kw)

    def runtime_lost(self, reason: str) -> None:
        if self.runtime_state == "post-mortem":
            return
        if self.runtime_state != "unreachable":
            again = f"Reconnecting every {self.heartbeat_s:g} s." if self.heartbeat_s else "Press r to retry."
            self.notify(f"{reason}. {again}", title="Runtime unreachable", severity="error", timeout=6)
        self.runtime_error = reason
        self.runtime_state = "unreachable"

    # -- the one worker-error handler --------------------------------------------------------------

    @on(Worker.StateChanged)
    def _app_worker_changed(self, event: Worker.StateChanged) -> None:
        self.handle_worker_state(event)

    def handle_worker_state(self, event: Worker.StateChanged) -> None:
        """Failed workers become notifications; a runtime that stopped answering becomes the app's state."""
        if event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, (RuntimeUnreachable, CriError)):
            self.runtime_lost(str(error))
            return
        if isinstance(error, (NeedUnmet, NodedocError)):
            self.notify(str(error), title="Could not read the node", severity="warning")
            return
        self.notify(f"{type(error).__name__}: {error}", title="Internal error", severity="error", timeout=8)

    # -- screens --------------------------------------------------------------------------------------

    def action_show(self, mode: str) -> None:
        if self.current_mode == mode and len(self.screen_stack) > 1:
            while len(self.screen_stack) > 1:
                self.pop_screen()
            return
        self.switch_mode(mode)

    def action_go_back(self) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
        elif self.current_mode != "dashboard":
            self.switch_mode("dashboard")

    def open_pod(self, view: SandboxView) -> None:
        if self.current_mode != "pods":
            self.switch_mode("pods")
        self._read_pod(view)

    @work(thread=True, exclusive=True, group="open-pod", exit_on_error=False)
    def _read_pod(self, view: SandboxView) -> None:
        """The pod's verbose status, read now: the lists are read without it (500 pods' runtime specs
        were most of each read), and the detail needs its pid, netns, snapshot and the runtime's info."""
        read = view
        if not self.session.post_mortem:
            try:
                read = self.session.sandbox(view.id) or view  # gone since: the detail says what is not there
            except NodedocError:
                pass  # the detail's own reads say why
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self._show_pod, read)

    def _show_pod(self, view: SandboxView) -> None:
        from screens.pod_detail import PodDetailScreen

        self.push_screen(PodDetailScreen(view))

    def action_refresh(self) -> None:
        if self.runtime_state == "unreachable":
            self.identify()
        screen = self.screen
        if isinstance(screen, NodeScreen):
            screen.refresh_data()

    def action_filter(self) -> None:
        action = getattr(self.screen, "action_start_filter", None)
        if action is None:
            self.notify("This screen has no filter.", timeout=2)
        else:
            action()

    def action_help(self) -> None:
        from screens.help import HelpScreen

        self.push_screen(HelpScreen(self.screen))

    def action_runbooks(self) -> None:
        from screens.walkthrough import WalkthroughScreen

        self.push_screen(WalkthroughScreen(self.session))

    def action_post_mortem(self) -> None:
        self._enter_post_mortem()

    @work(thread=True, exclusive=True, group="post-mortem", exit_on_error=False)
    def _enter_post_mortem(self) -> None:
        session = self.session.post_mortem_session()
        self.call_from_thread(self._switch_session, session)

    def _switch_session(self, session: NodeReader) -> None:
        self.session = session
        self.runtime_error = ""
        self.notify(f"Post-mortem mode on {session.containerd_root}.")
        self.identify()
        screen = self.screen
        if isinstance(screen, NodeScreen):
            screen.refresh_data()

    # -- export ---------------------------------------------------------------------------------------

    def action_export(self) -> None:
        self.export_report()

    def export_report(self, walk: Walkthrough | None = None) -> None:
        """The one export of every screen: the report (with the walkthrough, when there is one)."""
        self.notify("Writing the report…", timeout=2)
        self._export(walk)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, walk: Walkthrough | None) -> None:
        from tui.report import export_report

        session = self.session
        results = session.last_results or session.probe_results()
        path = export_report(session.report(results, walk), Path.cwd())
        self.call_from_thread(self.notify, f"Report written to {path} (mode 0600).", title="Report")

    # -- command palette ------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode, (title, help_text) in SCREENS_BY_KEY.items():
            yield SystemCommand(title, help_text, partial(self.action_show, mode))
        yield SystemCommand("Runbooks", "Guided walkthroughs for known failures", self.action_runbooks)
        yield SystemCommand("Export report", "Write the findings report (HTML, 0600)", self.action_export)
        yield SystemCommand("Refresh", "Read the node again", self.action_refresh)
        yield SystemCommand("Help", "Keys of this screen and the app", self.action_help)
        if not self.session.post_mortem:
            yield SystemCommand(
                "Post-mortem mode",
                "Read the containerd root from disk, without the runtime",
                self.action_post_mortem,
            )
