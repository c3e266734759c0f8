"""The report as Markdown, for a ticket or a chat message."""

from __future__ import annotations

import json
from typing import Any

from tui.format import subject_text
from tui.report.model import ReportDocument, could_not_run, could_not_run_line, displayable, redaction_line


def _md_code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"``{text}``"


def _walkthrough_markdown(walk: dict[str, Any]) -> list[str]:
    out = [
        "## Walkthrough",
        "",
        f"Runbook **{walk['runbook']['title']}** (`{walk['runbook']['id']}`), "
        f"started {walk.get('started_at', '')}.",
        "",
    ]
    for i, rec in enumerate(walk.get("path") or [], 1):
        line = f"{i}. **{rec['title']}** ({rec['kind']}, {rec.get('entered_at', '')})"
        if rec.get("answer"):
            line += f" — answered: {rec.get('answer_label') or rec['answer']}"
        if rec.get("probes"):
            probes = ", ".join(f"{p['id']} {p['status']}" for p in rec["probes"])
            line += f" — probes: {probes}"
            if rec.get("matched"):
                line += f"; found {', '.join(_md_code(m) for m in rec['matched'])}"
        out.append(line)
        if rec.get("note"):
            out += [f"   > Note: {n}" for n in rec["note"].splitlines()]
    con = walk.get("conclusion")
    if con:
        out += [
            "",
            f"### Conclusion: {con['diagnosis']}",
            "",
            f"Severity: **{con['severity']}**",
            "",
            con["summary"],
        ]
        if con.get("remediation"):
            out += ["", "Remediation:", ""]
            for i, step in enumerate(con["remediation"], 1):
                out.append(
                    f"{i}. {step['text']}"
                    + (f"\n   ```\n   {step['command']}\n   ```" if step.get("command") else "")
                )
        if con.get("references"):
            out += ["", "References: " + ", ".join(con["references"])]
    else:
        out += ["", "The walkthrough did not reach a conclusion."]
    return [*out, ""]


def _containers_markdown(containers: dict[str, Any]) -> list[str]:
    out = ["## Containers", ""]
    if containers.get("error"):
        out.append(f"Not listed: {containers['error']}")
    if not containers.get("items") and not containers.get("error"):
        out.append("No containers.")
    for c in containers.get("items") or []:
        pod = f"{c['namespace']}/{c['pod']}" if c.get("pod") else c["sandbox_id"][:13]
        out.append(f"- **{c['name']}** in {pod} · {c['state']} · {c['image']} · `{c['id'][:13]}`")
        for key, value in (c.get("env") or {}).items():
            out.append(f"  - env {key}={_md_code(str(value))}")
    return [*out, ""]


def render_markdown(doc: ReportDocument) -> str:
    doc = displayable(doc)  # every string from the node made inert (tui.untrusted)
    out = [f"# nodedoc report: {doc['node']['hostname']}", ""]
    out.append(f"Generated {doc['generated_at']} · kernel {doc['node']['kernel']} · {doc['node']['os']}")
    rt = doc["runtime"]
    if rt.get("name"):
        out.append(f"Runtime {rt['name']} {rt['version']} (CRI {rt['api_version']}) at `{rt['endpoint']}`")
    elif rt.get("error"):
        out.append(f"Runtime not reachable: {rt['error']}")
    if doc.get("redaction"):
        out += ["", f"_{redaction_line(doc)}_"]
    if could_not_run_line(doc):
        out += ["", f"## Verdict unknown: {could_not_run_line(doc)}", ""]
        out += [f"- **{p['id']}** ({p['status']}): {p['reason']}" for p in could_not_run(doc)]
        out += ["", "Nothing found by the other probes is an all-clear for what these look at."]
    if doc.get("components"):
        out += ["", "| component | version |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in doc["components"].items()]
    out.append("")
    if doc.get("walkthrough"):
        out += _walkthrough_markdown(doc["walkthrough"])
    out += ["## Findings", ""]
    if not doc["findings"]:
        out.append("No findings.")
    for f in doc["findings"]:
        out.append(f"### {f['severity'].upper()} · {f['title']}")
        out.append("")
        out.append(f"`{f['id']}` · {subject_text(f['subject'])}")
        out.append("")
        out.append(f["summary"])
        if f["evidence"]:
            out += ["", "Evidence:", ""]
            out += [f"- {k}: {_md_code(_evidence_text(v))}" for k, v in f["evidence"].items()]
        if f["remediation"]:
            out += ["", "Remediation:", ""]
            for i, step in enumerate(f["remediation"], 1):
                out.append(
                    f"{i}. {step['text']}"
                    + (f"\n   ```\n   {step['command']}\n   ```" if step["command"] else "")
                )
        if f["references"]:
            out += ["", "References: " + ", ".join(f["references"])]
        out.append("")
    if doc.get("containers"):
        out += _containers_markdown(doc["containers"])
    out += ["## Probes", "", "| probe | status | reason | ms |", "|---|---|---|---|"]
    for p in doc["probes"]:
        out.append(
            f"| {p['id']} | {p['status']} | {p['reason'].replace('|', '/')} | {p['duration_ms']:.0f} |"
        )
    return "\n".join(out) + "\n"


def _evidence_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False)
