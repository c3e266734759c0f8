"""The findings report: one ``nodedoc.report/v1`` document, written as JSON, Markdown or text.

``nodedoc check`` and the TUI's export build the same document from probe results; the writers only
format it. Everything that leaves the node goes through here.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import socket
from typing import Any

from probes.api import Finding, ProbeResult, Severity, sort_worst_first, worst
from probes.errors import CriError
from probes.node import NeedUnmet, NodeContext

SCHEMA = "nodedoc.report/v1"


def node_facts(node: NodeContext) -> dict[str, str]:
    os_name = ""
    try:
        for line in node.host_path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    hostname = ""
    try:
        hostname = node.host_path("/etc/hostname").read_text().strip()
    except OSError:
        pass
    return {"hostname": hostname or socket.gethostname(), "kernel": platform.release(), "os": os_name}


def runtime_facts(node: NodeContext) -> dict[str, Any]:
    empty = {"name": None, "version": None, "api_version": None, "endpoint": node.endpoint}
    try:
        version = node.cri().version()
        client = node.cri()
    except (CriError, NeedUnmet) as exc:
        return {**empty, "error": str(exc)}
    return {
        "name": version.runtime_name,
        "version": version.runtime_version,
        "api_version": version.runtime_api_version,
        "endpoint": client.endpoint,
    }


def build_report(
    node: NodeContext, results: list[ProbeResult], now: dt.datetime | None = None
) -> dict[str, Any]:
    findings = sort_worst_first([f for r in results for f in r.findings])
    return {
        "schema": SCHEMA,
        "generated_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "node": node_facts(node),
        "runtime": runtime_facts(node),
        "options": {
            "endpoint": node.endpoint,
            "containerd_root": str(node.containerd_root) if node.containerd_root else None,
            "containerd_state": str(node.containerd_state) if node.containerd_state else None,
            "host_root": str(node.host_root),
            "post_mortem": node.post_mortem,
        },
        "probes": [r.to_dict() for r in results],
        "findings": [f.to_dict() for f in findings],
        "facts": {r.probe: r.facts for r in results if r.facts},
    }


def exit_code(doc: dict[str, Any]) -> int:
    """0 nothing worse than info, 1 a warning, 2 a critical finding."""
    severity = worst([Finding.from_dict(f) for f in doc["findings"]])
    return {Severity.WARNING: 1, Severity.CRITICAL: 2}.get(severity, 0)


def _subject(subject: dict[str, Any]) -> str:
    kind = subject.get("kind", "")
    name = subject.get("name") or subject.get("id") or ""
    if subject.get("namespace") and kind == "pod":
        name = f"{subject['namespace']}/{name}"
    return f"{kind} {name}".strip()


SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}


def render_text(doc: dict[str, Any], console: Any) -> None:
    """Short and scannable: worst first, one line each plus the first remedy, then the probe statuses."""
    findings = [f for f in doc["findings"] if f["severity"] != "ok"]
    runtime = doc["runtime"]
    head = f"{doc['node']['hostname']} · kernel {doc['node']['kernel']}"
    if runtime.get("name"):
        head += f" · {runtime['name']} {runtime['version']} (CRI {runtime['api_version']})"
    console.print(head, style="bold", highlight=False)
    if not findings:
        console.print("No problems found.", style="green")
    for f in findings:
        style = SEVERITY_STYLE[f["severity"]]
        console.print(
            f"[{style}]{f['severity'].upper():<8}[/] [bold]{f['id']}[/]  {_subject(f['subject'])}",
            highlight=False,
        )
        console.print(f"         {f['title']}", highlight=False)
        for step in f["remediation"][:1]:
            hint = step["command"] or step["text"]
            console.print(f"         [dim]→ {hint}[/]", highlight=False, soft_wrap=True)
    parts = []
    for p in doc["probes"]:
        mark = {"ok": "[green]ok[/]", "skipped": "[yellow]skipped[/]", "error": "[red]error[/]"}[p["status"]]
        parts.append(f"{p['id']} {mark}" + (f" ({p['reason']})" if p["reason"] else ""))
    console.print("probes: " + "; ".join(parts), highlight=False)


def render_markdown(doc: dict[str, Any]) -> str:
    out = [f"# nodedoc report: {doc['node']['hostname']}", ""]
    out.append(f"Generated {doc['generated_at']} · kernel {doc['node']['kernel']} · {doc['node']['os']}")
    rt = doc["runtime"]
    if rt.get("name"):
        out.append(f"Runtime {rt['name']} {rt['version']} (CRI {rt['api_version']}) at `{rt['endpoint']}`")
    elif rt.get("error"):
        out.append(f"Runtime not reachable: {rt['error']}")
    out += ["", "## Findings", ""]
    if not doc["findings"]:
        out.append("No findings.")
    for f in doc["findings"]:
        out.append(f"### {f['severity'].upper()} · {f['title']}")
        out.append("")
        out.append(f"`{f['id']}` · {_subject(f['subject'])}")
        out.append("")
        out.append(f["summary"])
        if f["evidence"]:
            out += ["", "Evidence:", ""]
            out += [f"- {k}: `{v}`" for k, v in f["evidence"].items()]
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
    out += ["## Probes", "", "| probe | status | reason | ms |", "|---|---|---|---|"]
    for p in doc["probes"]:
        out.append(
            f"| {p['id']} | {p['status']} | {p['reason'].replace('|', '/')} | {p['duration_ms']:.0f} |"
        )
    return "\n".join(out) + "\n"


def write_private(path: os.PathLike[str] | str, text: str) -> None:
    """Write a report readable only by its owner (0600), whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
