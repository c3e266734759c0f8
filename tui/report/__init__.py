"""The findings report: one ``nodedoc.report/v1`` document, written as text, Markdown, HTML or JSON.

``nodedoc check``, ``nodedoc report`` and the TUI's export build the same document from probe results
(and, after a walkthrough, the runbook session) in :mod:`tui.report.model`; each format has its own
writer module (``as_text``, ``as_markdown``, ``as_html``, ``as_json``) that only formats it, and
:mod:`tui.report.output` picks the writer and writes the file. Never imports Textual.
"""

from tui.report.as_markdown import render_markdown
from tui.report.as_text import SEVERITY_STYLE, render_text
from tui.report.model import (
    SCHEMA,
    ReportDocument,
    build_report,
    could_not_run,
    could_not_run_line,
    could_not_run_text,
    exit_code,
    redaction_line,
    verdict,
)
from tui.report.output import export_report, render, write_private

__all__ = [
    "SCHEMA",
    "SEVERITY_STYLE",
    "ReportDocument",
    "build_report",
    "could_not_run",
    "could_not_run_line",
    "could_not_run_text",
    "exit_code",
    "export_report",
    "redaction_line",
    "render",
    "render_markdown",
    "render_text",
    "verdict",
    "write_private",
]
