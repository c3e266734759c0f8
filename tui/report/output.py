"""Writing a report: in which format, to which file (0600), and the TUI's one export."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from probes.errors import NodedocError
from tui.report.as_html import render_html
from tui.report.as_json import render_json
from tui.report.as_markdown import render_markdown
from tui.report.model import ReportDocument


def render(doc: ReportDocument, fmt: str) -> str:
    """The document as ``json``, ``md`` or ``html`` text."""
    if fmt == "json":
        return render_json(doc)
    if fmt == "md":
        return render_markdown(doc)
    if fmt == "html":
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
