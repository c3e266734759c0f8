"""``nodedoc fleet --tui``: the merged fleet report in a terminal, one screen."""

from __future__ import annotations

from textual.app import App

from screens.fleet import FleetScreen
from tui.app import NodedocApp
from tui.fleet import Fleet


class FleetApp(App[None]):
    TITLE = "nodedoc fleet"
    CSS = NodedocApp.CSS  # the one stylesheet, which has the fleet screen's rules too

    def __init__(self, fleet: Fleet) -> None:
        super().__init__()
        self.fleet = fleet

    def on_mount(self) -> None:
        self.push_screen(FleetScreen(self.fleet))
