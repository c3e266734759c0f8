"""Guided walkthrough (w): choose a runbook by symptom, walk its steps to a conclusion.

Each step says what is checked and why; probe steps run in a worker and show their findings before the
walk moves on; ``n`` adds a note to the step, ``b`` goes back to change an answer, the breadcrumb shows the
path taken, and ``e`` writes the report with the walkthrough in it. The engine is :mod:`tui.runbook`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from probes.api import ProbeResult, sort_worst_first
from tui.format import remedy_text
from tui.runbook import Catalog, RunbookSession, Step, choose_branch, load_catalog
from tui.untrusted import neutralise, neutralise_data
from tui.widgets import NodeScreen, severity_text


def step_body(step: Step) -> list[Text]:
    """What a step checks and why, as lines to show above its choices or findings."""
    kind = f"probes: {', '.join(step.probes)}" if step.kind == "probe" else step.kind
    lines = [Text.assemble((step.title, "bold"), (f"  ({kind})", "dim"))]
    if step.why:
        lines += [Text(""), Text.assemble(("Why: ", "bold"), " ".join(step.why.split()))]
    if step.kind == "question":
        lines += [Text(""), Text(step.ask)]
    elif step.kind == "instruction":
        lines += [Text(""), Text(" ".join(step.text.split()))]
        lines += [Text(f"  $ {c}", style="bold cyan") for c in step.commands]
    return lines


def conclusion_body(session: RunbookSession, step: Step) -> list[Text]:
    lines = [
        Text.assemble("Conclusion ", severity_text(step.severity), " ", (step.diagnosis, "bold")),
        Text(""),
        Text(" ".join(step.summary.split())),
    ]
    decisive = session.decisive_findings()
    if decisive:
        lines += [Text(""), Text("Findings behind it", style="bold underline")]
        for f in neutralise_data(decisive):
            lines.append(Text.assemble(severity_text(f.severity), " ", (f.id, "bold"), f"  {f.title}"))
            if not step.remediation_from:  # else they are the remediation below
                lines += [Text(f"    $ {r.command}", style="cyan") for r in f.remediation if r.command][:3]
    remediation = neutralise_data(session.remediation())  # a finding's own steps quote node names
    if remediation:
        lines += [Text(""), Text("Remediation", style="bold underline")]
        for i, remedy in enumerate(remediation, 1):
            lines.append(Text(f"{i}. {remedy_text(remedy)}"))
            if remedy.command:
                lines.append(Text(f"   $ {remedy.command}", style="bold cyan"))
    if step.references:
        lines += [Text(""), Text("References", style="bold underline")]
        lines += [Text(f"- {ref}") for ref in step.references]
    return lines


class WalkthroughScreen(NodeScreen):
    """A runbook walk over one node session (a :class:`tui.session.NodeSession` or a NodeContext)."""

    TITLE_TEXT = "Runbooks"
    BINDINGS = [
        Binding("escape", "close", "Close", id="walk.close"),
        Binding("b", "back", "Back", id="walk.back"),
        Binding("n", "note", "Note", id="walk.note"),
        Binding("e", "export", "Report", id="walk.export"),
    ]
    DEFAULT_CSS = """
    WalkthroughScreen #walk-crumbs { height: auto; padding: 0 1; background: $panel; }
    WalkthroughScreen #walk-body { height: 1fr; border: round $primary-darken-2; padding: 0 1; }
    WalkthroughScreen #walk-step { height: auto; }
    WalkthroughScreen #walk-choices { height: auto; max-height: 12; margin-top: 1; }
    WalkthroughScreen #walk-note { display: none; }
    WalkthroughScreen #walk-note.-editing { display: block; }
    """

    @dataclass
    class ProbesDone(Message):
        step: str
        results: list[ProbeResult]

    def __init__(self, session: Any, catalog: Catalog | None = None) -> None:
        super().__init__()
        self.node_session = session
        self.catalog = catalog
        self.walk: RunbookSession | None = None
        self.pending: list[ProbeResult] | None = None

    @property
    def session(self) -> Any:
        return self.node_session

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        yield Static("", id="walk-crumbs")
        with VerticalScroll(id="walk-body"):
            yield Static("", id="walk-step")
            yield OptionList(id="walk-choices")
        yield Input(placeholder="note on this step (Enter saves, Esc cancels)", id="walk-note")
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        if self.catalog is None:
            self.catalog = load_catalog()
        self.loaded_for = self.session  # nothing to re-read on resume
        self.show()

    def refresh_data(self) -> None:
        """The walk keeps its own results; nothing is re-read when the screen resumes."""

    # -- drawing --------------------------------------------------------------------------------------

    def show(self) -> None:
        step_view = self.query_one("#walk-step", Static)
        choices = self.query_one("#walk-choices", OptionList)
        choices.clear_options()
        self.query_one("#walk-crumbs", Static).update(self.crumbs())
        body = self.query_one("#walk-body")
        if self.walk is None:
            body.border_title = "choose a runbook by symptom"
            step_view.update(Text("What do you see? Pick the symptom closest to it.", style="bold"))
            assert self.catalog is not None
            for runbook in self.catalog.runbooks.values():
                for i, symptom in enumerate(runbook.symptoms):
                    choices.add_option(
                        Option(f"{symptom}  [{runbook.title}]", id=f"runbook:{runbook.id}:{i}")
                    )
            choices.display = True
            choices.focus()
            return
        step = self.walk.current
        body.border_title = self.walk.runbook.title
        note = (
            [Text(""), Text.assemble(("Note: ", "bold"), self.walk.record.note)]
            if self.walk.record.note
            else []
        )
        if step.kind == "conclusion":
            step_view.update(Group(*conclusion_body(self.walk, step), *note))
            choices.display = False
            return
        lines = step_body(step)
        if step.kind == "question":
            for choice in step.choices:
                choices.add_option(Option(choice.label, id=f"choice:{choice.id}"))
        elif step.kind == "instruction":
            choices.add_option(Option("Done: continue", id="continue"))
        elif self.pending is None:
            lines += [Text(""), Text(f"Running {', '.join(step.probes)}…", style="italic")]
            self.run_step_probes(step)
        else:
            lines += self.findings_lines(step, self.pending)
            choices.add_option(Option("Continue", id="continue"))
        step_view.update(Group(*lines, *note))
        choices.display = choices.option_count > 0
        if choices.display:
            choices.highlighted = 0
            choices.focus()

    def findings_lines(self, step: Step, results: list[ProbeResult]) -> list[Text]:
        lines = [Text("")]
        for result in results:
            reason = f" ({neutralise(result.reason)})" if result.reason else ""
            lines.append(Text(f"{result.probe}: {result.status}{reason}", style="bold"))
            for f in neutralise_data(sort_worst_first(result.findings)):
                lines.append(
                    Text.assemble("  ", severity_text(f.severity), " ", (f.id, "bold"), f"  {f.title}")
                )
        target, matched = choose_branch(step, results)
        why = f"found {neutralise(', '.join(matched))}" if matched else "nothing decisive found"
        lines += [Text(""), Text(f"→ {why}: next, {self.walk.runbook.step(target).title}", style="italic")]  # type: ignore[union-attr]
        return lines

    def crumbs(self) -> Text:
        if self.walk is None:
            return Text("Runbooks", style="bold")
        text = Text.assemble((self.walk.runbook.id, "bold"))
        for record, step in zip(self.walk.records, self.walk.path):
            label = step.title if len(step.title) <= 28 else step.title[:27] + "…"
            text.append(" › ")
            text.append(label, style="bold" if record is self.walk.record else "")
            if record.answer:
                text.append(f" [{record.answer}]", style="dim")
            elif record.matched:
                text.append(f" [{', '.join(record.matched)}]", style="dim")
            if record.note:
                text.append(" ✎", style="dim")
        return text

    # -- moving ---------------------------------------------------------------------------------------

    @on(OptionList.OptionSelected, "#walk-choices")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or ""
        if option_id.startswith("runbook:"):
            assert self.catalog is not None
            self.walk = RunbookSession(self.catalog.get(option_id.split(":")[1]))
        elif self.walk is None:
            return
        elif option_id.startswith("choice:"):
            self.walk.answer(option_id.removeprefix("choice:"))
        elif option_id == "continue" and self.walk.current.kind == "instruction":
            self.walk.proceed()
        elif option_id == "continue" and self.pending is not None:
            results, self.pending = self.pending, None
            self.walk.record_probes(results)
        self.show()

    @work(thread=True, exclusive=True, group="walk-probes", exit_on_error=False)
    def run_step_probes(self, step: Step) -> None:
        results = self.session.probe_results(only=list(step.probes))
        self.post_message(self.ProbesDone(step.id, results))

    @on(ProbesDone)
    def probes_done(self, message: ProbesDone) -> None:
        if self.walk is not None and self.walk.current.id == message.step and self.pending is None:
            self.pending = message.results
            self.show()

    def action_back(self) -> None:
        if self.walk is None:
            return
        if len(self.walk.records) == 1:
            self.walk, self.pending = None, None
        else:
            self.pending = None
            self.walk.back()
        self.show()

    def action_close(self) -> None:
        note = self.query_one("#walk-note", Input)
        if note.has_class("-editing"):
            note.remove_class("-editing")
            self.query_one("#walk-choices").focus()
            return
        self.dismiss()

    def action_note(self) -> None:
        if self.walk is None:
            self.notify("Choose a runbook first.", timeout=2)
            return
        note = self.query_one("#walk-note", Input)
        note.value = ""
        note.add_class("-editing")
        note.focus()

    @on(Input.Submitted, "#walk-note")
    def note_saved(self, event: Input.Submitted) -> None:
        event.input.remove_class("-editing")
        if self.walk is not None and event.value.strip():
            self.walk.add_note(event.value)
        self.show()

    # -- the report ----------------------------------------------------------------------------------

    def action_export(self) -> None:
        if self.walk is None:
            self.notify("Choose a runbook first.", timeout=2)
            return
        self.app.export_report(self.walk.walkthrough())  # type: ignore[attr-defined]
