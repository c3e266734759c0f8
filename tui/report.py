"""The findings report: one ``nodedoc.report/v1`` document, written as JSON, Markdown, HTML or text.

``nodedoc check``, ``nodedoc report`` and the TUI's export build the same document from probe results
(and, after a walkthrough, the runbook session); the writers only format it. Everything that leaves the
node goes through here, and is redacted here by default (:mod:`tui.redact`): the document says what was
removed and how many values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
from pathlib import Path
from typing import Any

from rich.markup import escape

from probes.api import Finding, ProbeResult, ProbeStatus, Severity, sort_worst_first, worst
from probes.errors import CriError, NodedocError
from probes.node import NeedUnmet, NodeContext
from tui.redact import not_redacted, redact_document

SCHEMA = "nodedoc.report/v1"

#: The report as JSON data (typed in the report package).
ReportDocument = dict[str, Any]


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
    if not node.foreign_root:
        kernel, hostname = platform.release(), hostname or socket.gethostname()
    else:
        # Another tree's node: its kernel is what its procfs says, never this machine's.
        try:
            kernel = (node.proc_root / "sys/kernel/osrelease").read_text().strip()
        except OSError:
            kernel = "unknown (no procfs under the host root)"
        hostname = hostname or "unknown"
    return {"name": node.node_name(), "hostname": hostname, "kernel": kernel, "os": os_name}


def runtime_section(node: NodeContext) -> dict[str, Any]:
    """The report's runtime block, from the runtime probe's facts (read once per node, shared with it)."""
    try:
        facts = node.runtime_facts().to_dict()
    except (CriError, NeedUnmet) as exc:
        return {
            "name": None,
            "version": None,
            "api_version": None,
            "endpoint": node.endpoint,
            "error": str(exc),
        }
    return {key: facts[key] for key in ("name", "version", "api_version", "endpoint")}


def container_facts(node: NodeContext) -> dict[str, Any]:
    """Every container the runtime knows, with its pod and environment (redacted later, by the writer)."""
    if node.post_mortem:
        return {"items": [], "error": "post-mortem mode: no live runtime"}
    from probes.readers.cri.sandboxes import list_containers

    try:
        client = node.cri()
        pods = {p.id: p.metadata for p in client.list_pod_sandboxes()}
        views = list_containers(client)
    except (NodedocError, ValueError) as exc:
        return {"items": [], "error": str(exc)}
    items = []
    for view in sorted(views, key=lambda v: (v.sandbox_id, v.name)):
        meta = pods.get(view.sandbox_id)
        items.append(
            {
                "id": view.id,
                "name": view.name,
                "pod": meta.name if meta else "",
                "namespace": meta.namespace if meta else "",
                "sandbox_id": view.sandbox_id,
                "state": view.state,
                "image": view.image,
                "restarts": view.restarts,
                "pid": view.pid,
                "env": dict(view.env),
            }
        )
    return {"items": items, "error": ""}


def component_versions(runtime: dict[str, Any], results: list[ProbeResult]) -> dict[str, str]:
    """containerd, shim, ctr and runc versions from the runtime and the probes that read the binaries."""
    versions: dict[str, str] = {}
    if runtime.get("name"):
        versions[f"{runtime['name']} (running)"] = str(runtime.get("version") or "")
    facts = {r.probe: r.facts for r in results}
    for name, items in ((facts.get("service") or {}).get("binaries") or {}).items():
        for item in items[:1]:
            if isinstance(item, dict) and item.get("version"):
                versions[name] = f"{item['version']} ({item.get('path', '')})"
    runc = (facts.get("runc") or {}).get("runc") or {}
    if runc.get("version") and "runc" not in versions:
        versions["runc"] = f"{runc['version']} ({runc.get('binary') or ''})"
    return versions


def build_report(
    node: NodeContext,
    results: list[ProbeResult],
    now: dt.datetime | None = None,
    *,
    session: dict[str, Any] | None = None,
    redact: bool = True,
    containers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``nodedoc.report/v1`` document, redacted unless ``redact`` is False.

    ``session`` is a runbook session document (:meth:`tui.runbook.RunbookSession.to_dict`): the path taken,
    answers, notes and timestamps go in ``walkthrough``. ``containers`` defaults to asking the runtime.
    """
    findings = sort_worst_first([f for r in results for f in r.findings])
    runtime = runtime_section(node)
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
        "node": node_facts(node),
        "runtime": runtime,
        "components": component_versions(runtime, results),
        "options": {
            "endpoint": node.endpoint,
            "containerd_root": str(node.containerd_root) if node.containerd_root else None,
            "containerd_state": str(node.containerd_state) if node.containerd_state else None,
            "host_root": str(node.host_root),
            "post_mortem": node.post_mortem,
        },
        "verdict": verdict(results),
        "probes": [r.to_dict() for r in results],
        "findings": [f.to_dict() for f in findings],
        "containers": containers if containers is not None else container_facts(node),
        "walkthrough": session,
        "facts": {r.probe: r.facts for r in results if r.facts},
    }
    if not redact:
        doc["redaction"] = not_redacted()
        return doc
    cleaned, summary = redact_document(doc)
    cleaned["redaction"] = summary
    return cleaned


def verdict(results: list[ProbeResult]) -> dict[str, Any]:
    """The worst severity found and the probes that could not run; ``unknown`` when any could not.

    A probe that errored, timed out or could not look where it should have leaves the verdict unknown:
    "nothing found" from the others is not an all-clear. A probe that does not apply to this run
    (post-mortem mode, a copied tree with no processes) does not, unless no probe ran at all: then
    nothing was checked (``nothing_checked``) and the verdict is unknown too.
    """
    findings = [f for r in results for f in r.findings]
    missing = [r for r in results if r.could_not_run]
    nothing_checked = bool(results) and not any(r.status is ProbeStatus.OK for r in results)
    return {
        "worst": str(worst(findings)),
        "unknown": bool(missing) or nothing_checked,
        "nothing_checked": nothing_checked,
        "could_not_run": [
            {"id": r.probe, "title": r.title, "status": str(r.status), "reason": r.reason} for r in missing
        ],
    }


def could_not_run(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The probes of a report that could not run (its ``verdict``), with their reasons."""
    return list((doc.get("verdict") or {}).get("could_not_run") or [])


def could_not_run_text(ids: list[str]) -> str:
    """ "2 probes could not run: snapshots, network": the line every writer shows beside the criticals."""
    return f"{len(ids)} probe{'s' if len(ids) != 1 else ''} could not run: {', '.join(ids)}"


def could_not_run_line(doc: dict[str, Any]) -> str:
    """Why the report's verdict is unknown, in one line; "" when it is not."""
    missing = could_not_run(doc)
    if missing:
        return could_not_run_text([p["id"] for p in missing])
    if (doc.get("verdict") or {}).get("nothing_checked"):
        return "no probe ran: none of those selected applies to this run"
    return ""


def exit_code(doc: dict[str, Any]) -> int:
    """0 nothing worse than info, 1 a warning, 2 a critical finding, 3 the verdict is unknown.

    A critical finding (2) wins over probes that could not run (3), which win over a warning (1).
    """
    severity = worst([Finding.from_dict(f) for f in doc["findings"]])
    if severity is Severity.CRITICAL:
        return 2
    if could_not_run_line(doc):
        return 3
    return 1 if severity is Severity.WARNING else 0


def _subject(subject: dict[str, Any]) -> str:
    kind = subject.get("kind", "")
    name = subject.get("name") or subject.get("id") or ""
    if subject.get("namespace") and kind == "pod":
        name = f"{subject['namespace']}/{name}"
    return f"{kind} {name}".strip()


SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan", "ok": "green"}


def render_text(doc: dict[str, Any], console: Any) -> None:
    """Short and scannable: problems worst first with their first remedy, info one line each, then probes."""
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
        console.print(f"{label}  {escape(_subject(f['subject']))}", highlight=False)
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
        console.print(escape(_redaction_line(doc)), style="dim", highlight=False)


def _redaction_line(doc: dict[str, Any]) -> str:
    red = doc.get("redaction") or {}
    if not red.get("enabled", True):
        return (
            "NOT REDACTED (--no-redact): this report may contain passwords, tokens and container env values."
        )
    kinds = ", ".join(f"{n} {k}" for k, n in (red.get("kinds") or {}).items())
    return (
        f"Redacted {red.get('values', 0)} value(s)"
        + (f": {kinds}" if kinds else "")
        + f" (shown as {red.get('marker', '[redacted]')})."
    )


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


def render_markdown(doc: dict[str, Any]) -> str:
    out = [f"# nodedoc report: {doc['node']['hostname']}", ""]
    out.append(f"Generated {doc['generated_at']} · kernel {doc['node']['kernel']} · {doc['node']['os']}")
    rt = doc["runtime"]
    if rt.get("name"):
        out.append(f"Runtime {rt['name']} {rt['version']} (CRI {rt['api_version']}) at `{rt['endpoint']}`")
    elif rt.get("error"):
        out.append(f"Runtime not reachable: {rt['error']}")
    if doc.get("redaction"):
        out += ["", f"_{_redaction_line(doc)}_"]
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
        out.append(f"`{f['id']}` · {_subject(f['subject'])}")
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


def render(doc: dict[str, Any], fmt: str) -> str:
    """The document as ``json``, ``md`` or ``html`` text."""
    if fmt == "json":
        return json.dumps(doc, indent=2, default=str) + "\n"
    if fmt == "md":
        return render_markdown(doc)
    if fmt == "html":
        from tui.report_html import render_html

        return render_html(doc)
    raise ValueError(f"unknown report format {fmt!r}")


def write_private(path: os.PathLike[str] | str, text: str) -> None:
    """Write a report readable only by its owner (0600), whatever the umask; NodedocError when it cannot."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise NodedocError(f"cannot write {path}: {exc.strerror or exc}") from None


def export_report(doc: ReportDocument, directory: Path, now: dt.datetime | None = None) -> Path:
    """Write the report as HTML into ``directory`` (0600), named by host and time; the TUI's one export."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = directory / f"nodedoc-report-{doc['node']['hostname']}-{stamp}.html"
    write_private(path, render(doc, "html"))
    return path
