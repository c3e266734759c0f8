"""The report's document (``nodedoc.report/v1``), built from probe results, and what it concludes.

The runtime block comes from the runtime probe's result; host identity and the container inventory come
from the node's readers through :class:`probes.node.NodeContext`. Everything that leaves the node is
redacted here by default (:mod:`tui.redact`): the document says what was removed and how many values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from probes.api import Finding, ProbeResult, ProbeStatus, Severity, sort_worst_first, worst
from probes.errors import CriError, NodedocError
from probes.node import NeedUnmet, NodeContext
from tui.redact import not_redacted, redact_document
from tui.untrusted import neutralise_data

SCHEMA = "nodedoc.report/v1"

#: The report as JSON data: what every writer reads.
ReportDocument = dict[str, Any]


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
    try:
        return {"items": node.container_inventory(), "error": ""}
    except (NodedocError, ValueError) as exc:
        return {"items": [], "error": str(exc)}


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
        "node": {"name": node.node_name(), **node.node_facts().to_dict()},
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


def displayable(doc: ReportDocument) -> ReportDocument:
    """The document as the text, Markdown and HTML writers show it: every string from the node made inert
    (:mod:`tui.untrusted`); the runbook's hard-wrapped conclusion joined into one paragraph first."""
    walk = doc.get("walkthrough") or {}
    if walk.get("conclusion"):
        conclusion = {**walk["conclusion"], "summary": " ".join(str(walk["conclusion"]["summary"]).split())}
        doc = {**doc, "walkthrough": {**walk, "conclusion": conclusion}}
    return neutralise_data(doc)  # type: ignore[no-any-return]


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


def redaction_line(doc: dict[str, Any]) -> str:
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
