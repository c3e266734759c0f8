"""The report as Markdown, for a ticket or a chat message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from probes.api import Remedy
from tui.format import remedy_text, subject_text
from tui.report.model import Inventory, Report, Walkthrough


def _md_code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _remedies(steps: Sequence[Remedy]) -> list[str]:
    if not steps:
        return []
    out = ["", "Remediation:", ""]
    for i, step in enumerate(steps, 1):
        out.append(
            f"{i}. {remedy_text(step)}" + (f"\n   ```\n   {step.command}\n   ```" if step.command else "")
        )
    return out


def _walkthrough_markdown(walk: Walkthrough) -> list[str]:
    out = [
        "## Walkthrough",
        "",
        f"Runbook **{walk.runbook_title}** (`{walk.runbook_id}`), started {walk.started_at}.",
        "",
    ]
    for i, rec in enumerate(walk.path, 1):
        line = f"{i}. **{rec.title}** ({rec.kind}, {rec.entered_at})"
        if rec.answer:
            line += f" — answered: {rec.answer_label or rec.answer}"
        if rec.probes:
            line += " — probes: " + ", ".join(f"{p.probe} {p.status}" for p in rec.probes)
            if rec.matched:
                line += f"; found {', '.join(_md_code(m) for m in rec.matched)}"
        out.append(line)
        if rec.note:
            out += [f"   > Note: {n}" for n in rec.note.splitlines()]
    con = walk.conclusion
    if con:
        out += ["", f"### Conclusion: {con.diagnosis}", "", f"Severity: **{con.severity}**", "", con.summary]
        out += _remedies(con.remediation)
        if con.references:
            out += ["", "References: " + ", ".join(con.references)]
    else:
        out += ["", "The walkthrough did not reach a conclusion."]
    return [*out, ""]


def _containers_markdown(containers: Inventory) -> list[str]:
    out = ["## Containers", ""]
    if containers.error:
        out.append(f"Not listed: {containers.error}")
    elif not containers.items:
        out.append("No containers.")
    for c in containers.items:
        out.append(f"- **{c.name}** in {c.pod_text} · {c.state} · {c.image} · `{c.id[:13]}`")
        out += [f"  - env {key}={_md_code(value)}" for key, value in c.env.items()]
    return [*out, ""]


def render_markdown(report: Report) -> str:
    report = report.displayable()  # every string from the node made inert (tui.untrusted)
    node, rt, verdict = report.node, report.runtime, report.verdict
    out = [f"# nodedoc report: {node.hostname}", ""]
    out.append(f"Generated {report.generated_at} · kernel {node.kernel} · {node.os}")
    if rt.name:
        out.append(f"Runtime {rt.name} {rt.version} (CRI {rt.api_version}) at `{rt.endpoint}`")
    elif rt.error:
        out.append(f"Runtime not reachable: {rt.error}")
    out += ["", f"_{report.redaction.line}_"]
    if verdict.line:
        out += ["", f"## Verdict unknown: {verdict.line}", ""]
        out += [f"- **{p.id}** ({p.status}): {p.reason}" for p in verdict.could_not_run]
        out += ["", "Nothing found by the other probes is an all-clear for what these look at."]
    if report.components:
        out += ["", "| component | version |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in report.components.items()]
    out.append("")
    if report.walkthrough:
        out += _walkthrough_markdown(report.walkthrough)
    out += ["## Findings", ""]
    if not report.findings:
        out.append("No findings.")
    for f in report.findings:
        out += [f"### {str(f.severity).upper()} · {f.title}", "", f"`{f.id}` · {subject_text(f.subject)}", ""]
        out.append(f.summary)
        if f.evidence:
            out += ["", "Evidence:", ""]
            out += [f"- {k}: {_md_code(_evidence_text(v))}" for k, v in f.evidence.items()]
        out += _remedies(f.remediation)
        if f.references:
            out += ["", "References: " + ", ".join(f.references)]
        out.append("")
    out += _containers_markdown(report.containers)
    out += ["## Probes", "", "| probe | status | reason | ms |", "|---|---|---|---|"]
    for p in report.probes:
        out.append(f"| {p.id} | {p.status} | {p.reason.replace('|', '/')} | {p.duration_ms:.0f} |")
    return "\n".join(out) + "\n"


def _evidence_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)
