"""Widgets every screen shares: the node bar, the base screen, and severity / state text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static
from textual.worker import Worker

from probes.api import Severity
from tui.untrusted import neutralise

if TYPE_CHECKING:
    from tui.app import NodedocApp
    from tui.session import NodeReader

#: Severity marks that read without colour (NO_COLOR): the word carries the meaning, colour only helps.
SEVERITY_MARK = {
    Severity.CRITICAL: ("CRIT", "bold red"),
    Severity.WARNING: ("WARN", "yellow"),
    Severity.INFO: ("info", "cyan"),
    Severity.OK: ("ok", "green"),
}


def node_text(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """A value read from the node, ready for a widget: control characters shown as escapes, and never
    parsed as markup (a plain ``str`` given to a DataTable or a Static would be)."""
    return Text(neutralise(str(value), multiline=multiline), style=style)


def severity_text(severity: Severity | str) -> Text:
    mark, style = SEVERITY_MARK[Severity(severity)]
    return Text(f"{mark:<5}", style=style)


def state_text(state: str) -> Text:
    good = state in ("ready", "running", "ok", "connected")
    bad = state in ("notready", "exited", "damaged", "corrupt-blob", "unreachable", "missing")
    return Text(state, style="green" if good else "bold red" if bad else "yellow")


class NodeBar(Static):
    """One line: whether the runtime answers (first, so a narrow terminal never hides it), node, runtime."""

    def on_mount(self) -> None:
        self.watch(self.app, "runtime_state", self._redraw)
        self.watch(self.app, "runtime_label", self._redraw)

    def _redraw(self, _value: Any = None) -> None:
        app: NodedocApp = self.app  # type: ignore[assignment]
        state = app.runtime_state
        mark = {
            "connected": "● connected",
            "unreachable": "✗ RUNTIME UNREACHABLE",
            "post-mortem": "◆ post-mortem",
        }
        line = Text.assemble(
            (mark.get(state, "… connecting"), "bold"),
            " │ ",
            ("nodedoc", "bold"),
            " │ ",
            neutralise(app.runtime_label or "…"),  # the node's hostname and the runtime's own words
        )
        self.update(line)
        for name in ("connected", "unreachable", "post-mortem", "connecting"):
            self.set_class(state == name, f"-{name}")


class NodeFooter(Footer):
    """Textual's Footer, recomposed only when what it shows changes.

    Footer rebuilds all its key widgets (twenty-odd, each styled) on every bindings signal: each focus
    move and screen resume; opening the pods screen did it five times. What it shows is the screen's
    active bindings, so a signal that leaves those as they were shown is let pass.
    """

    #: What the last compose showed (None: nothing yet).
    _shown: object = None

    def compose(self) -> Iterator[Widget]:
        self._shown = self._showing() if self._bindings_ready else None
        yield from super().compose()

    def bindings_changed(self, screen: Screen[Any]) -> None:
        # Footer's own, but for the recompose: it is decided when it would have run.
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        if self._shown is None or self._showing() != self._shown:
            await self.recompose()

    def _showing(self) -> object:
        """Everything of the bindings that Footer.compose reads."""
        app = self.app
        active = self.screen.active_bindings
        keys = tuple(
            (binding, enabled, tooltip, app.get_key_display(binding))
            for _, binding, enabled, tooltip in active.values()
            if binding.show
        )
        palette = active.get(app.COMMAND_PALETTE_BINDING)
        palette_shown = None if palette is None else (palette[1:], app.get_key_display(palette.binding))
        return (keys, palette_shown, self.compact, self.show_command_palette, app.ENABLE_COMMAND_PALETTE)


class NodeScreen(Screen):
    """Base of the node screens: node bar on top, footer below, and the session at hand."""

    #: Name shown in the node bar's breadcrumb and the command palette.
    TITLE_TEXT = ""

    @property
    def session(self) -> NodeReader:
        return self.app.session  # type: ignore[attr-defined,no-any-return]

    def compose_top(self) -> ComposeResult:
        yield NodeBar(id="node-bar")

    def compose_bottom(self) -> ComposeResult:
        yield NodeFooter()

    @on(Worker.StateChanged)
    def _worker_changed(self, event: Worker.StateChanged) -> None:
        """Worker state messages do not bubble: hand them to the App's one handler."""
        self.app.handle_worker_state(event)  # type: ignore[attr-defined]

    #: The session this screen's data came from: a new session (post-mortem) means read again.
    loaded_for: NodeReader | None = None

    def on_screen_resume(self) -> None:
        if self.loaded_for is not self.session:
            self.loaded_for = self.session
            self.refresh_data()

    def refresh_data(self) -> None:
        """Read the node again (screens override)."""

    def on_runtime_back(self) -> None:
        """The runtime answers again after being unreachable: screens that need it re-read."""
        self.refresh_data()
