"""Help: the keys of the screen underneath and of the app, from the same bindings the footer shows."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def keys_table(title: str, bindings: list[Binding]) -> Table:
    table = Table(title=title, title_justify="left", box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for b in bindings:
        if b.description:
            table.add_row(
                b.key_display or b.key.replace("question_mark", "?").replace("slash", "/"), b.description
            )
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 64; max-height: 90%; border: round $accent; padding: 0 1;
                                  background: $surface; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        screen_keys = [b for b in self.under.BINDINGS if isinstance(b, Binding)]
        app_keys = [b for b in self.app.BINDINGS if isinstance(b, Binding)]
        with VerticalScroll():
            yield Static(keys_table(f"{getattr(self.under, 'TITLE_TEXT', '') or 'This screen'}", screen_keys))
            yield Static(keys_table("Everywhere", app_keys))
            yield Static("ctrl+p opens the command palette: every key above is there by name.", classes="dim")
