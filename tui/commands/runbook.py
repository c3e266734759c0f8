"""``nodedoc runbook list|validate|run``: the guided runbooks, headless.

``run`` walks a runbook from its first step to a conclusion: questions are asked on the terminal (or
answered with ``--answer STEP=CHOICE``), probe steps run their probes and branch on the findings, and
the conclusion is printed. Exit status follows the conclusion: 0 ok/info, 1 warning, 2 critical.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape as escape_markup

from probes.api import Severity
from probes.errors import NodedocError
from tui.format import remedy_text
from tui.options import add_node_options, node_from_args, output_file
from tui.report import render, report_of, write_private
from tui.report.as_text import SEVERITY_STYLE
from tui.runbook import COULD_NOT_RUN, RunbookError, RunbookSession, Step, load_catalog, walk
from tui.untrusted import neutralise


def escape(text: str) -> str:
    """One line for the console: control characters neutralised, then Rich markup escaped."""
    return escape_markup(neutralise(text))


def escape_prose(text: str) -> str:
    """Prose (summaries, step text) keeps its newlines; everything else as :func:`escape`."""
    return escape_markup(neutralise(text, multiline=True))


EXIT_FOR = {Severity.WARNING: 1, Severity.CRITICAL: 2}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("runbook", help="guided runbooks: from a symptom to a diagnosis")
    actions = parser.add_subparsers(dest="runbook_command", metavar="ACTION", required=True)

    listing = actions.add_parser("list", help="the runbooks, with the symptoms each is for")
    listing.add_argument("--json", action="store_true", help="as JSON")
    listing.set_defaults(func=run_list)

    validate = actions.add_parser("validate", help="check runbook files (default: every installed one)")
    validate.add_argument("files", nargs="*", metavar="FILE|DIR")
    validate.set_defaults(func=run_validate)

    walk_parser = actions.add_parser("run", help="walk a runbook to its conclusion")
    add_node_options(walk_parser)
    walk_parser.add_argument("id", metavar="ID")
    walk_parser.add_argument(
        "--answer", action="append", default=[], metavar="STEP=CHOICE", help="answer a question (repeatable)"
    )
    walk_parser.add_argument(
        "--note", action="append", default=[], metavar="STEP=TEXT", help="note on a step (repeatable)"
    )
    walk_parser.add_argument(
        "--save", type=output_file, metavar="FILE", help="save the session (0600) for `nodedoc report`"
    )
    walk_parser.add_argument(
        "--report", type=output_file, metavar="FILE", help="also write the report with the walkthrough"
    )
    walk_parser.add_argument("--format", choices=("md", "html", "json"), default="md", help="of --report")
    walk_parser.add_argument("--no-redact", action="store_true", help="do not redact the --report")
    walk_parser.set_defaults(func=run_walk)


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key or not rest:
            raise NodedocError(
                f"--{what} {value!r}: expected STEP={what.upper() if what != 'answer' else 'CHOICE'}"
            )
        out[key.strip()] = rest.strip()
    return out


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def run_list(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    if args.json:
        rows: list[dict[str, Any]] = [
            {
                "id": r.id,
                "title": r.title,
                "symptoms": list(r.symptoms),
                "source": str(r.source),
                "probes": r.probes(),
            }
            for r in catalog.runbooks.values()
        ]
        print(json.dumps({"runbooks": rows, "problems": [str(p) for p in catalog.problems]}, indent=2))
        return 0
    console = _console()
    for r in catalog.runbooks.values():
        origin = "built-in" if r.builtin else str(r.source)
        console.print(f"[bold]{escape(r.id)}[/]  {escape(r.title)}  [dim]({escape(origin)})[/]")
        for symptom in r.symptoms:
            console.print(f"    - {escape(symptom)}")
    for old, new in catalog.replaced:
        console.print(f"[dim]{escape(str(new))} replaces {escape(str(old))}[/]")
    for problem in catalog.problems:
        print(f"nodedoc: skipped {problem}", file=sys.stderr)
    return 0


def run_validate(args: argparse.Namespace) -> int:
    named = [Path(f) for f in args.files]
    dirs = [p for p in named if p.is_dir()]  # a directory: every *.toml in it
    catalog = load_catalog(dirs=dirs if named else None, files=[p for p in named if not p.is_dir()])
    for r in catalog.runbooks.values():
        print(f"ok  {r.source} ({r.id}: {len(r.steps)} steps)")
    for problem in catalog.problems:
        print(f"bad {problem}")
    if not catalog.runbooks and not catalog.problems:
        print("no runbooks found")
    return 1 if catalog.problems else 0


# -- run ---------------------------------------------------------------------------------------------


def _print_step(console: Console, session: RunbookSession, step: Step) -> None:
    if len(session.records) > 1:
        done = session.records[-2]
        for result in done.results:
            console.print(
                f"    {result.probe}: {result.status}" + (f" ({result.reason})" if result.reason else "")
            )
            for f in result.findings:
                style = SEVERITY_STYLE[str(f.severity)]
                console.print(f"      [{style}]{f.severity.upper():<8}[/] {escape(f.id)}  {escape(f.title)}")
        if done.results:
            console.print(f"    → {escape(', '.join(done.matched) or 'no decisive finding')}")
    if step.kind == "conclusion":
        style = SEVERITY_STYLE[str(step.severity)]
        console.print(
            f"\n[bold]Conclusion[/] [{style}]{step.severity.upper()}[/]  [bold]{escape(step.diagnosis)}[/]"
        )
        console.print(escape_prose(step.summary))
        for f in session.decisive_findings():
            console.print(f"  [{SEVERITY_STYLE[str(f.severity)]}]{escape(f.id)}[/]  {escape(f.summary)}")
            for remedy in [] if step.remediation_from else f.remediation:  # else listed once below
                console.print(f"      → {escape(remedy.command or remedy_text(remedy))}")
        for i, remedy in enumerate(session.remediation(), 1):
            console.print(f"  {i}. {escape(remedy_text(remedy))}")
            if remedy.command:
                console.print(f"       [cyan]{escape(remedy.command)}[/]")
        for ref in step.references:
            console.print(f"  [dim]{escape(ref)}[/]")
        return
    what = f"probes: {', '.join(step.probes)}" if step.kind == "probe" else step.kind
    console.print(f"\n[bold]── {escape(step.title)}[/] [dim]({escape(what)})[/]")
    if step.why:
        console.print(f"   [dim]{escape(' '.join(step.why.split()))}[/]")
    if step.kind == "instruction":
        console.print(f"   {escape_prose(step.text)}")
        for command in step.commands:
            console.print(f"     [cyan]$ {escape(command)}[/]")
    elif step.kind == "question":
        console.print(f"   {escape_prose(step.ask)}")
        for i, choice in enumerate(step.choices, 1):
            console.print(f"   {i}) [bold]{escape(choice.id)}[/]: {escape(choice.label)}")


def _ask_on_terminal(step: Step) -> str:
    while True:
        try:
            reply = input(f"   answer [1-{len(step.choices)} or id]: ").strip()
        except EOFError:
            raise RunbookError(f"no answer for step {step.id!r} (end of input)") from None
        if reply.isdigit() and 1 <= int(reply) <= len(step.choices):
            return step.choices[int(reply) - 1].id
        if any(c.id == reply for c in step.choices):
            return reply
        print(f"   not a choice: {reply!r}", file=sys.stderr)


def run_walk(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    runbook = catalog.get(args.id)
    answers = _pairs(args.answer, "answer")
    notes = _pairs(args.note, "note")
    for step_id in [*answers, *notes]:
        runbook.step(step_id)
    for step_id, choice in answers.items():
        runbook.step(step_id).choice(choice)
    node = node_from_args(args)
    session = RunbookSession(runbook)
    console = _console()
    console.print(f"[bold]{escape(runbook.title)}[/]  [dim]({escape(runbook.id)})[/]")

    def on_step(s: RunbookSession, step: Step) -> None:
        if step.id in notes:
            s.add_note(notes.pop(step.id))
        _print_step(console, s, step)

    ask = _ask_on_terminal if sys.stdin.isatty() else None
    try:
        conclusion = walk(session, node, answers, ask=ask, on_step=on_step)
    finally:
        if args.save:
            session.save(args.save)
    if args.report:
        from probes.registry import run_probes

        report = report_of(
            node, run_probes(node), walkthrough=session.walkthrough(), redact=not args.no_redact
        )
        write_private(args.report, render(report, args.format))
        console.print(f"[dim]report written to {escape(args.report)}[/]")
    if conclusion.id == COULD_NOT_RUN.id:
        return 3  # the verdict is unknown, as for `nodedoc check`
    return EXIT_FOR.get(conclusion.severity, 0)
