"""Many nodes' reports as one: which findings hit which nodes, grouped by cause, with the fix once per group.

Input is what ``nodedoc report --format json`` (or ``check --format json``) writes on each node: files,
directories of them, or a stream of JSON lines (``-``: what ``kubectl logs`` of the report DaemonSet gives).
A group is one finding id with one cause: the component version it names, the setting and value it names,
or else the containerd build the node runs. Nodes whose report says probes could not run, and reports that
cannot be read, are listed as not checked: never counted as healthy.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from probes.api import Remedy, Severity
from probes.errors import NodedocError
from tui.format import remedy_text, subject_text

SCHEMA = "nodedoc.fleet/v1"
#: From this many files on, they are parsed in worker processes, one per core.
PARALLEL_FROM = 64
_RANK = {s.value: s.rank for s in Severity}


class FleetError(NodedocError):
    """The inputs name nothing to read."""


@dataclass(frozen=True)
class NodeReport:
    node: str
    generated_at: str
    source: str
    containerd: str
    runc: str
    findings: tuple[dict[str, Any], ...]
    could_not_run: tuple[str, ...]


@dataclass(frozen=True)
class Unreadable:
    source: str
    reason: str


@dataclass
class Group:
    """One finding id with one cause, the nodes it hit, and the fix (from the first node's finding)."""

    finding: str
    severity: str
    title: str
    cause: str
    nodes: list[str] = field(default_factory=list)
    subjects: dict[str, list[str]] = field(default_factory=dict)
    remediation: list[dict[str, Any]] = field(default_factory=list)
    fix_from: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding": self.finding,
            "severity": self.severity,
            "title": self.title,
            "cause": self.cause,
            "nodes": self.nodes,
            "subjects": self.subjects,
            "remediation": self.remediation,
            "remediation_from": self.fix_from,
        }


@dataclass
class Fleet:
    nodes: list[NodeReport] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    @property
    def not_checked(self) -> list[tuple[str, str]]:
        """(node or file, why) for every node that cannot be called healthy or not."""
        out = [
            (n.node, "could not run: " + ", ".join(n.could_not_run)) for n in self.nodes if n.could_not_run
        ]
        return out + [(u.source, u.reason) for u in self.unreadable]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "nodes": len(self.nodes),
            "groups": [g.to_dict() for g in self.groups],
            "not_checked": [{"node": n, "why": why} for n, why in self.not_checked],
            "healthy": sorted(
                n.node
                for n in self.nodes
                if not n.could_not_run and not any(_RANK.get(f["severity"], 0) >= 2 for f in n.findings)
            ),
        }


# -- reading ------------------------------------------------------------------------------------------


def read_reports(inputs: Iterable[str], stdin: IO[str] | None = None) -> Iterator[NodeReport | Unreadable]:
    """Every report the inputs name, reduced to what the merge needs. Files are read and parsed on every
    core (a report is mostly facts the merge never looks at, and parsing is the cost); a stream in order."""
    files: list[Path] = []
    for item in inputs:
        if item == "-":
            if stdin is None:
                raise FleetError("- reads reports from standard input, and there is none")
            yield from (node_report(source, doc) for source, doc in stream(stdin.read(), "<stdin>"))
            continue
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise FleetError(f"{item}: no such file or directory")
    if len(files) < PARALLEL_FROM:
        yield from map(read_file, files)
        return
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        yield from pool.map(read_file, files, chunksize=max(1, len(files) // (8 * (os.cpu_count() or 1))))


def read_file(path: Path) -> NodeReport | Unreadable:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Unreadable(str(path), f"cannot read: {exc}")
    return node_report(str(path), _parse(text))


def stream(text: str, source: str) -> Iterator[tuple[str, Any]]:
    """Every JSON document in ``text``, one after another (one a line, or pretty-printed back to back, as
    ``kubectl logs`` of the report DaemonSet gives them); what follows a broken one is unreadable."""
    decoder = json.JSONDecoder()
    at, n = 0, 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return
        n += 1
        try:
            doc, at = decoder.raw_decode(text, at)
        except ValueError as exc:
            yield f"{source}#{n}", exc
            return
        yield f"{source}#{n}", doc


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        return exc


def node_report(source: str, doc: Any) -> NodeReport | Unreadable:
    if isinstance(doc, Exception):
        return Unreadable(source, f"not a report: {doc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list) or "node" not in doc:
        return Unreadable(source, "not a nodedoc report (no node, no findings)")
    node: dict[str, Any] = doc["node"] if isinstance(doc.get("node"), dict) else {}
    name = str(node.get("name") or node.get("hostname") or source)
    components: dict[str, Any] = doc["components"] if isinstance(doc.get("components"), dict) else {}
    runtime: dict[str, Any] = doc["runtime"] if isinstance(doc.get("runtime"), dict) else {}
    findings = tuple(f for f in doc["findings"] if isinstance(f, dict) and f.get("id"))
    missing = tuple(str(p.get("id")) for p in (doc.get("verdict") or {}).get("could_not_run") or [])
    return NodeReport(
        node=name,
        generated_at=str(doc.get("generated_at") or ""),
        source=source,
        containerd=str(runtime.get("version") or _version(components.get("containerd")) or "unknown"),
        runc=_version(components.get("runc")) or "unknown",
        findings=findings,
        could_not_run=missing,
    )


def _version(text: object) -> str:
    """``1.1.5+ds1-1+deb12u1`` of a component line ``1.1.5+ds1-1+deb12u1 (/usr/sbin/runc)``."""
    return str(text).split(" (", 1)[0] if text else ""


def cause_of(finding: dict[str, Any], node: NodeReport) -> str:
    """What nodes sharing this finding most likely share: the version or the setting it names, else the
    containerd build (the runtime is the usual common factor)."""
    subject = finding.get("subject") or {}
    evidence = finding.get("evidence") or {}
    if subject.get("version"):
        return f"{subject.get('component', 'version')} {subject['version']}"
    if subject.get("setting"):
        value = evidence.get("value", subject.get("value", ""))
        return f"{subject['setting']} = {value}" if value != "" else str(subject["setting"])
    if finding.get("id", "").startswith(("pipe.", "host.")) and "soft_limit" in evidence:
        return f"fs.pipe-user-pages-soft = {evidence['soft_limit']}"
    return f"containerd {node.containerd}"


def merge(reports: Iterable[NodeReport | Unreadable], min_severity: Severity = Severity.WARNING) -> Fleet:
    fleet = Fleet()
    newest: dict[str, NodeReport] = {}
    for report in reports:
        if isinstance(report, Unreadable):
            fleet.unreadable.append(report)
        elif report.node not in newest or report.generated_at >= newest[report.node].generated_at:
            newest[report.node] = report  # a node's newest report stands for it (logs hold hourly ones)
    fleet.nodes = sorted(newest.values(), key=lambda r: r.node)
    groups: dict[tuple[str, str], Group] = {}
    for report in fleet.nodes:
        for finding in report.findings:
            if _RANK.get(finding.get("severity", ""), 0) < min_severity.rank:
                continue
            key = (finding["id"], cause_of(finding, report))
            group = groups.get(key)
            if group is None:
                group = groups[key] = Group(
                    finding=finding["id"],
                    severity=finding["severity"],
                    title=finding.get("title", ""),
                    cause=key[1],
                    remediation=list(finding.get("remediation") or []),
                    fix_from=report.node,
                )
            if report.node not in group.nodes:
                group.nodes.append(report.node)
            group.subjects.setdefault(report.node, []).append(subject_text(finding.get("subject") or {}))
    fleet.groups = sorted(
        groups.values(), key=lambda g: (-_RANK.get(g.severity, 0), -len(g.nodes), g.finding)
    )
    return fleet


# -- writing ------------------------------------------------------------------------------------------


def _fix_lines(group: Group) -> list[str]:
    lines = []
    for step in group.remediation:
        lines.append(
            remedy_text(Remedy(str(step.get("text", "")), disrupts_pods=bool(step.get("disrupts_pods"))))
        )
        if step.get("command"):
            lines.append("    " + step["command"].replace("\n", "\n    "))
    return lines


def listed(nodes: list[str], limit: int = 20) -> str:
    """Node names for a line: the first ``limit``, then how many more (JSON has them all)."""
    more = f" … and {len(nodes) - limit} more" if len(nodes) > limit else ""
    return ", ".join(nodes[:limit]) + more


def render_text(fleet: Fleet) -> str:
    out = [f"{len(fleet.nodes)} node(s) read, {len(fleet.groups)} problem group(s), "
           f"{len(fleet.not_checked)} not checked"]  # fmt: skip
    for g in fleet.groups:
        out += ["", f"{g.severity.upper()} {g.finding}: {g.title}", f"  cause: {g.cause}"]
        out.append(f"  {len(g.nodes)} node(s): {listed(g.nodes)}")
        if g.remediation:
            out.append(f"  fix (commands as printed on {g.fix_from}; paths and ids differ per node):")
            out += ["    " + line for line in _fix_lines(g)]
    if fleet.not_checked:
        out += ["", "Not checked (no verdict):"] + [f"  {n}: {why}" for n, why in fleet.not_checked]
    return "\n".join(out) + "\n"


def render_markdown(fleet: Fleet) -> str:
    out = [
        "# nodedoc fleet report",
        "",
        f"{len(fleet.nodes)} node(s) read, {len(fleet.groups)} problem group(s), {len(fleet.not_checked)} not checked.",
        "",
        "| severity | finding | cause | nodes |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {g.severity} | `{g.finding}` {_md(g.title)} | {_md(g.cause)} | {len(g.nodes)} |"
        for g in fleet.groups
    ]
    for g in fleet.groups:
        out += [
            "",
            f"## {_md(g.finding)}: {_md(g.cause)}",
            "",
            "Nodes: " + _md(listed(g.nodes)),
        ]
        if g.remediation:
            out += ["", f"Fix (as printed on {_md(g.fix_from)}):", "", "```sh"] + _fix_lines(g) + ["```"]
    if fleet.not_checked:
        out += ["", "## Not checked", ""] + [f"- {_md(n)}: {_md(why)}" for n, why in fleet.not_checked]
    return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_html(fleet: Fleet) -> str:
    e = html.escape
    rows = "".join(
        f"<tr class='{e(g.severity)}'><td>{e(g.severity)}</td><td><code>{e(g.finding)}</code> {e(g.title)}</td>"
        f"<td>{e(g.cause)}</td><td>{len(g.nodes)}</td></tr>"
        for g in fleet.groups
    )
    details = "".join(
        f"<section><h2>{e(g.finding)} — {e(g.cause)}</h2><p>{len(g.nodes)} node(s): {e(', '.join(g.nodes))}</p>"
        + (
            f"<p>Fix, as printed on {e(g.fix_from)}:</p><pre>{e(chr(10).join(_fix_lines(g)))}</pre>"
            if g.remediation
            else ""
        )
        + "</section>"
        for g in fleet.groups
    )
    unchecked = "".join(f"<li>{e(n)}: {e(why)}</li>" for n, why in fleet.not_checked)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>nodedoc fleet report</title><style>"
        "body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}tr.critical td:first-child{color:#b00;"
        "font-weight:bold}tr.warning td:first-child{color:#a60}pre{background:#f4f4f4;padding:.6em;overflow:auto}"
        ".unchecked{color:#b00}</style></head><body><h1>nodedoc fleet report</h1>"
        f"<p>{len(fleet.nodes)} node(s) read, {len(fleet.groups)} problem group(s), "
        f"<span class='unchecked'>{len(fleet.not_checked)} not checked</span>.</p>"
        f"<table><tr><th>severity</th><th>finding</th><th>cause</th><th>nodes</th></tr>{rows}</table>{details}"
        + (f"<h2 class='unchecked'>Not checked</h2><ul>{unchecked}</ul>" if unchecked else "")
        + "</body></html>\n"
    )


def render(fleet: Fleet, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(fleet.to_dict(), indent=2) + "\n"
    return {"text": render_text, "md": render_markdown, "html": render_html}[fmt](fleet)
