"""``nodedoc npd``: node-problem-detector's custom plugin protocol, one condition's probes at a time.

NPD runs the command every ``invoke_interval`` and reads its exit status and first line: 0 the condition is
false (nothing at or above ``--min-severity``), 1 it is true (the line names the worst finding and its
subject), anything else unknown. nodedoc answers 2 when it could not tell: a probe errored, timed out or
could not reach what it looks at. It never runs longer than ``--timeout`` (default 25 s), and compares no snapshot with
its layer blob unless ``--verify`` (the blob-free checks, such as the entrypoint in the snapshot chain,
still run).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import threading
from typing import Any

from probes.api import Finding, ProbeResult, Severity, sort_worst_first
from probes.errors import NodedocError
from probes.readers.cri.client import DEFAULT_TIMEOUT as CRI_TIMEOUT
from probes.registry import run_probes, select
from tui.format import subject_text
from tui.options import add_node_options, node_from_args

OK, PROBLEM, UNKNOWN = 0, 1, 2
DEFAULT_TIMEOUT = 25.0
LEVELS = ("info", "warning", "critical")
#: Findings that mean nodedoc could not look, not that it saw a problem: NPD gets "unknown" (the kubelet
#: has its own condition for a runtime that does not answer).
CANNOT_TELL = frozenset({"runtime.unreachable"})


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "npd",
        help="node-problem-detector plugin: exit 0 ok, 1 problem (one line), 2 unknown",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    add_node_options(parser)
    parser.add_argument(
        "--probe", action="append", required=True, metavar="ID", help="probe to run (repeatable)"
    )
    parser.add_argument(
        "--finding",
        action="append",
        default=[],
        metavar="GLOB",
        help="count only findings whose id matches (repeatable, e.g. 'runc.init-*'); default: all",
    )
    parser.add_argument("--min-severity", choices=LEVELS, default="warning")
    parser.add_argument(
        "--max-length", type=_length, default=80, metavar="N", help="message length (default 80)"
    )
    parser.add_argument("--verify", action="store_true", help="also compare snapshots with their layer blobs")
    parser.set_defaults(func=run)


def _length(text: str) -> int:
    value = int(text)
    if value < 20:
        raise argparse.ArgumentTypeError("must be at least 20")
    return value


def counted(results: list[ProbeResult], threshold: Severity, patterns: list[str]) -> list[Finding]:
    """The findings at or above ``threshold`` (and matching ``patterns``, when given), worst first."""
    found = [
        f
        for r in results
        for f in r.findings
        if f.severity.rank >= threshold.rank
        and f.id not in CANNOT_TELL
        and (not patterns or any(fnmatch.fnmatch(f.id, p) for p in patterns))
    ]
    return sort_worst_first(found)


def message(findings: list[Finding], limit: int) -> str:
    """``CRITICAL snapshot.files-missing: /pause ... [snapshot_id=1 image=...] (+2 more)``, cut to ``limit``."""
    worst = findings[0]
    subject = subject_text(worst.subject)
    more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
    text = f"{str(worst.severity).upper()} {worst.id}: {worst.title}" + (f" [{subject}]" if subject else "")
    return clip(text, limit - len(more)) + more


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line, whatever the finding's text holds
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def answer(results: list[ProbeResult], args: argparse.Namespace) -> tuple[int, str]:
    findings = counted(results, Severity(args.min_severity), args.finding)
    if findings:
        return PROBLEM, message(findings, args.max_length)
    missing = [f"{r.probe}: {r.reason or r.status}" for r in results if r.could_not_run]
    missing += [f"{f.probe}: {f.title}" for r in results for f in r.findings if f.id in CANNOT_TELL]
    if missing:
        return UNKNOWN, clip(f"unknown: {'; '.join(missing)}", args.max_length)
    checked = ", ".join(r.probe for r in results)
    return OK, clip(f"ok: nothing at or above {args.min_severity} ({checked})", args.max_length)


def run(args: argparse.Namespace) -> int:
    try:
        refs = select(args.probe)
    except ValueError as exc:
        raise NodedocError(str(exc)) from None
    # --timeout is the whole answer's deadline here (default 25 s, under NPD's usual 30 s rule timeout);
    # each call to the runtime gets at most the usual CRI timeout within it.
    deadline = getattr(args, "timeout", DEFAULT_TIMEOUT)
    args.timeout = min(deadline / 2, CRI_TIMEOUT)
    node = node_from_args(args)
    node.options["verify_layers"] = args.verify
    outcome: dict[str, Any] = {}

    def probe() -> None:
        try:
            outcome["answer"] = answer(run_probes(node, refs), args)
        except NodedocError as exc:
            outcome["answer"] = (UNKNOWN, clip(f"unknown: {exc}", args.max_length))

    worker = threading.Thread(target=probe, name="npd", daemon=True)
    worker.start()
    worker.join(deadline)
    code, line = outcome.get("answer") or (
        UNKNOWN,
        clip(f"unknown: {', '.join(args.probe)} did not answer within {deadline:g} s", args.max_length),
    )
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if worker.is_alive():
        os._exit(code)  # a probe thread stuck in the kernel must not hold NPD's plugin slot
    return code
