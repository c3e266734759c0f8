"""The report as terminal text: problems worst first with their first remedy, info one line each."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from tui.format import subject_text
from tui.report.model import ReportDocument, could_not_run, could_not_run_line, displayable, redaction_line

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}


def render_text(doc: ReportDocument, console: Any) -> None:
    """Short and scannable: problems worst first with their first remedy, info one line each, then probes."""
    doc = displayable(doc)  # every string from the node made inert (tui.untrusted)
    findings = [f for f in doc["findings"] if f["severity"] != "ok"]
    runtime = doc["runtime"]
    head = f"{doc['node']['hostname']} · kernel {doc['node']['kernel']}"
    if runtime.get("name"):
        head += f" · {runtime['name']} {runtime['version']} (CRI {runtime['api_version']})"
    console.print(escape(head), style="bold", highlight=False)
    missing, unknown = could_not_run(doc), could_not_run_line(doc)
    if unknown:
        console.print(
            f"[bold red]{'UNKNOWN':<8}[/] [bold]{escape(unknown)}[/]: the verdict is unknown, "
            "not an all-clear",
            highlight=False,
            soft_wrap=True,
        )
        for p in missing:
            console.print(
                f"         {escape(p['id'])}: {escape(p['reason'])}", highlight=False, soft_wrap=True
            )
    if not any(f["severity"] in ("warning", "critical") for f in findings):
        if not unknown:
            console.print("No problems found.", style="green")
        elif missing:
            console.print("No problems found by the probes that ran.", style="yellow")
    for f in findings:
        style = SEVERITY_STYLE[f["severity"]]
        label = f"[{style}]{f['severity'].upper():<8}[/] [bold]{escape(f['id'])}[/]"
        if f["severity"] == "info":
            console.print(f"{label}  {escape(f['title'])}", highlight=False, soft_wrap=True)
            continue
        console.print(f"{label}  {escape(subject_text(f['subject']))}", highlight=False)
        console.print(f"         {escape(f['title'])}", highlight=False, soft_wrap=True)
        for step in f["remediation"][:1]:
            hint = step["command"] or step["text"]
            console.print(f"         [dim]→ {escape(hint)}[/]", highlight=False, soft_wrap=True)
    parts = []
    for p in doc["probes"]:
        mark = {"ok": "[green]ok[/]", "skipped": "[yellow]skipped[/]", "error": "[red]error[/]"}[p["status"]]
        if p.get("not_applicable"):
            mark = "[dim]not applicable[/]"
        parts.append(f"{p['id']} {mark}" + (f" ({escape(p['reason'])})" if p["reason"] else ""))
    console.print("probes: " + "; ".join(parts), highlight=False)
    if doc.get("redaction"):
        console.print(escape(redaction_line(doc)), style="dim", highlight=False)
