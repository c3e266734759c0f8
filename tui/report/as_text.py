"""The report as terminal text: problems worst first with their first remedy, info one line each."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from probes.api import Severity
from tui.format import DISRUPTS_PODS, remedy_text, subject_text
from tui.report.model import Report

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}
PROBE_STATUS = {"ok": "[green]ok[/]", "skipped": "[yellow]skipped[/]", "error": "[red]error[/]"}


def render_text(report: Report, console: Any) -> None:
    """Short and scannable: problems worst first with their first remedy, info one line each, then probes."""
    report = report.displayable()  # every string from the node made inert (tui.untrusted)
    findings = [f for f in report.findings if f.severity is not Severity.OK]
    node, runtime = report.node, report.runtime
    head = f"{node.hostname} · kernel {node.kernel}"
    if runtime.name:
        head += f" · {runtime.name} {runtime.version} (CRI {runtime.api_version})"
    console.print(escape(head), style="bold", highlight=False)
    unknown = report.verdict.line
    if unknown:
        console.print(
            f"[bold red]{'UNKNOWN':<8}[/] [bold]{escape(unknown)}[/]: the verdict is unknown, "
            "not an all-clear",
            highlight=False,
            soft_wrap=True,
        )
        for missing in report.verdict.could_not_run:
            console.print(
                f"         {escape(missing.id)}: {escape(missing.reason)}", highlight=False, soft_wrap=True
            )
    if not any(f.severity.rank >= Severity.WARNING.rank for f in findings):
        if not unknown:
            console.print("No problems found.", style="green")
        elif report.verdict.could_not_run:
            console.print("No problems found by the probes that ran.", style="yellow")
    for f in findings:
        style = SEVERITY_STYLE[str(f.severity)]
        label = f"[{style}]{str(f.severity).upper():<8}[/] [bold]{escape(f.id)}[/]"
        if f.severity is Severity.INFO:
            console.print(f"{label}  {escape(f.title)}", highlight=False, soft_wrap=True)
            continue
        console.print(f"{label}  {escape(subject_text(f.subject))}", highlight=False)
        console.print(f"         {escape(f.title)}", highlight=False, soft_wrap=True)
        for step in f.remediation[:1]:
            console.print(
                f"         [dim]→ {escape(step.command or remedy_text(step))}[/]",
                highlight=False,
                soft_wrap=True,
            )
            if step.command and step.disrupts_pods:
                console.print(f"           [yellow]({DISRUPTS_PODS})[/]", highlight=False)
    parts = []
    for p in report.probes:
        mark = "[dim]not applicable[/]" if p.not_applicable else PROBE_STATUS[str(p.status)]
        parts.append(f"{p.id} {mark}" + (f" ({escape(p.reason)})" if p.reason else ""))
    console.print("probes: " + "; ".join(parts), highlight=False)
    console.print(escape(report.redaction.line), style="dim", highlight=False)
