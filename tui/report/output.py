"""Writing a report: in which format, to which file (0600), and the TUI's one export."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from probes.errors import NodedocError
from tui.report.model import Report

#: The formats a report is written in, each by its own writer module.
FORMATS = ("json", "md", "html")


def render(report: Report, fmt: str) -> str:
    """The report as ``json``, ``md`` or ``html`` text (each writer imported only when used)."""
    if fmt == "json":
        from tui.report.as_json import render_json

        return render_json(report)
    if fmt == "md":
        from tui.report.as_markdown import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from tui.report.as_html import render_html

        return render_html(report)
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


def export_report(report: Report, directory: Path, now: dt.datetime | None = None) -> Path:
    """Write the report as HTML into ``directory`` (0600), named by host and time; the TUI's one export."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    path = directory / f"nodedoc-report-{report.node.hostname}-{stamp}.html"
    write_private(path, render(report, "html"))
    return path
