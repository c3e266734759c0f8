"""The report as one self-contained HTML file: inline CSS, no script, no network, readable printed.

Every value from the document is neutralised (:mod:`tui.untrusted`: control characters shown as escapes) and
HTML-escaped; the report is already redacted by :func:`tui.report.model.build_report`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from probes.api import Finding, Remedy
from tui.format import remedy_text, subject_text
from tui.report.model import Inventory, Report, Verdict, Walkthrough

CSS = """
:root { --crit: #b3261e; --warn: #8a5a00; --info: #1f5f8b; --ok: #2e7d32; --line: #d0d7de; --muted: #57606a; }
* { box-sizing: border-box; }
body { font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1f2328;
       max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; border-bottom: 1px solid var(--line);
     padding-bottom: 4px; margin-top: 28px; } h3 { font-size: 15px; margin: 0 0 6px; }
.meta, .muted { color: var(--muted); }
.notice { border: 1px solid var(--line); border-left: 4px solid var(--info); padding: 8px 12px; margin: 12px 0; }
.notice.danger { border-left-color: var(--crit); background: #fff5f5; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font: 12.5px/1.45 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: 8px; white-space: pre-wrap;
      word-break: break-all; margin: 4px 0; }
td code { word-break: break-all; }
.finding { border: 1px solid var(--line); border-left: 5px solid var(--line); padding: 10px 14px; margin: 12px 0;
           break-inside: avoid; page-break-inside: avoid; }
.sev { display: inline-block; font-weight: 700; font-size: 11px; padding: 1px 6px; border-radius: 3px;
       color: #fff; margin-right: 6px; text-transform: uppercase; }
.critical { border-left-color: var(--crit); } .sev.critical { background: var(--crit); }
.warning { border-left-color: var(--warn); } .sev.warning { background: var(--warn); }
.info { border-left-color: var(--info); } .sev.info { background: var(--info); }
.ok { border-left-color: var(--ok); } .sev.ok { background: var(--ok); }
.sev.unknown { background: var(--crit); }
ol.path li { margin: 4px 0; } .note { border-left: 3px solid var(--line); padding-left: 8px; color: var(--muted); }
.conclusion { border: 2px solid var(--line); padding: 10px 14px; margin-top: 12px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  a { color: inherit; text-decoration: none; } a[href]::after { content: " (" attr(href) ")"; font-size: 9pt; }
  h2 { break-after: avoid; } .finding, .conclusion, tr { break-inside: avoid; }
  .sev { border: 1px solid #000; color: #000 !important; background: none !important; }
}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _sev(severity: str) -> str:
    return f'<span class="sev {_e(severity)}">{_e(severity)}</span>'


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return f"<code>{_e(text)}</code>"


def _link(url: str) -> str:
    if url.startswith(("https://", "http://")):
        return f'<a href="{_e(url)}">{_e(url)}</a>'
    return _e(url)


def _remedies(steps: Sequence[Remedy]) -> str:
    if not steps:
        return ""
    items = "".join(
        f"<li>{_e(remedy_text(s))}" + (f"<pre>{_e(s.command)}</pre>" if s.command else "") + "</li>"
        for s in steps
    )
    return f"<p><strong>Remediation</strong></p><ol>{items}</ol>"


def _references(refs: Sequence[str]) -> str:
    if not refs:
        return ""
    return "<p><strong>References:</strong> " + ", ".join(_link(r) for r in refs) + "</p>"


def _finding(f: Finding) -> str:
    evidence = ""
    if f.evidence:
        rows = "".join(f"<tr><th>{_e(k)}</th><td>{_value(v)}</td></tr>" for k, v in f.evidence.items())
        evidence = f"<p><strong>Evidence</strong></p><table>{rows}</table>"
    return (
        f'<section class="finding {_e(f.severity)}">'
        f"<h3>{_sev(f.severity)}{_e(f.title)}</h3>"
        f'<p class="meta"><code>{_e(f.id)}</code> · probe {_e(f.probe)} · {_e(subject_text(f.subject))}</p>'
        f"<p>{_e(f.summary)}</p>{evidence}{_remedies(f.remediation)}"
        f"{_references(f.references)}</section>"
    )


def _walkthrough(walk: Walkthrough) -> str:
    items = []
    for rec in walk.path:
        detail = []
        if rec.answer:
            detail.append(f"answered: <strong>{_e(rec.answer_label or rec.answer)}</strong>")
        if rec.probes:
            detail.append("probes: " + ", ".join(f"{_e(p.probe)} {_e(p.status)}" for p in rec.probes))
        if rec.matched:
            detail.append("found " + ", ".join(f"<code>{_e(m)}</code>" for m in rec.matched))
        note = f'<div class="note">Note: {_e(rec.note)}</div>' if rec.note else ""
        items.append(
            f"<li><strong>{_e(rec.title)}</strong> <span class='muted'>({_e(rec.kind)}, "
            f"{_e(rec.entered_at)})</span>" + ("<br>" + " · ".join(detail) if detail else "") + f"{note}</li>"
        )
    con = walk.conclusion
    if con:
        conclusion = (
            f'<div class="conclusion {_e(con.severity)}"><h3>{_sev(con.severity)}Conclusion: '
            f"{_e(con.diagnosis)}</h3><p>{_e(con.summary)}</p>{_remedies(con.remediation)}"
            f"{_references(con.references)}</div>"
        )
    else:
        conclusion = "<p>The walkthrough did not reach a conclusion.</p>"
    return (
        f"<h2>Walkthrough</h2><p>Runbook <strong>{_e(walk.runbook_title)}</strong> "
        f"(<code>{_e(walk.runbook_id)}</code>), started {_e(walk.started_at)}.</p>"
        f'<ol class="path">{"".join(items)}</ol>{conclusion}'
    )


def _containers(containers: Inventory) -> str:
    rows = []
    for c in containers.items:
        env = "<br>".join(f"<code>{_e(k)}={_e(v)}</code>" for k, v in c.env.items())
        rows.append(
            f"<tr><td>{_e(c.name)}<br><code>{_e(c.id[:13])}</code></td><td>{_e(c.pod_text)}</td>"
            f"<td>{_e(c.state)}</td><td>{_e(c.image)}</td><td>{env}</td></tr>"
        )
    error = f"<p>Not listed: {_e(containers.error)}</p>" if containers.error else ""
    table = (
        "<table><tr><th>container</th><th>pod</th><th>state</th><th>image</th><th>env</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else ""
    )
    return f"<h2>Containers</h2>{error}{table or ('' if error else '<p>No containers.</p>')}"


def _unknown(verdict: Verdict) -> str:
    """The could-not-run banner: as loud as a critical finding, above the findings."""
    if not verdict.line:
        return ""
    items = "".join(
        f"<li><code>{_e(p.id)}</code> ({_e(p.status)}): {_e(p.reason)}</li>" for p in verdict.could_not_run
    )
    return (
        f'<section class="finding critical unknown"><h3>{_sev("unknown")}Verdict unknown: '
        f"{_e(verdict.line)}</h3><ul>{items}</ul>"
        "<p>Nothing found by the other probes is an all-clear for what these look at.</p></section>"
    )


def render_html(report: Report) -> str:
    report = report.displayable()  # control characters shown as escapes, then every value HTML-escaped
    node, rt = report.node, report.runtime
    runtime = (
        f"{_e(rt.name)} {_e(rt.version)} (CRI {_e(rt.api_version)}) at <code>{_e(rt.endpoint)}</code>"
        if rt.name
        else f"not reachable: {_e(rt.error or 'unknown')}"
    )
    notice = f'<div class="notice{"" if report.redaction.enabled else " danger"}">{_e(report.redaction.line)}</div>'
    components = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in report.components.items())
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[str(f.severity)] = counts.get(str(f.severity), 0) + 1
    summary = " ".join(f"{_sev(s)}{counts[s]}" for s in ("critical", "warning", "info", "ok") if s in counts)
    findings = "".join(_finding(f) for f in report.findings) or "<p>No findings.</p>"
    probes = "".join(
        f"<tr><td>{_e(p.id)}</td><td>{_e(p.title)}</td><td>{_e(p.status)}</td><td>{_e(p.reason)}</td>"
        f"<td>{p.duration_ms:.0f}</td></tr>"
        for p in report.probes
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>nodedoc report: {_e(node.hostname)}</title><style>{CSS}</style></head><body>",
        f"<h1>nodedoc report: {_e(node.hostname)}</h1>",
        f'<p class="meta">{_e(report.schema)} · generated {_e(report.generated_at)} · kernel {_e(node.kernel)}'
        f" · {_e(node.os)}<br>Runtime {runtime}</p>",
        notice,
        _unknown(report.verdict),
        f"<table>{components}</table>" if components else "",
        _walkthrough(report.walkthrough) if report.walkthrough else "",
        f"<h2>Findings</h2><p>{summary}</p>{findings}",
        _containers(report.containers),
        "<h2>Probes</h2><table><tr><th>probe</th><th>title</th><th>status</th><th>reason</th><th>ms</th></tr>"
        f"{probes}</table>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
