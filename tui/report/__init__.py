"""The findings report: one typed :class:`Report` (``nodedoc.report/v1``), written as text, Markdown, HTML or JSON.

``nodedoc check``, ``nodedoc report``, ``nodedoc runbook run --report`` and the TUI's export build the same
report from probe results (and, after a walkthrough, the runbook session): :mod:`tui.report.model` is the
model and how it is built, :mod:`tui.report.gather` what the run adds (which node, the options, the
container inventory); each format has its own writer module (``as_text``, ``as_markdown``, ``as_html``,
``as_json``) that only formats a report, and :mod:`tui.report.output` picks the writer and writes the file.
Never imports Textual; the writers (and rich) are imported only by what uses them.
"""

from tui.report.gather import report_of
from tui.report.model import SCHEMA, Report, ReportError, Verdict, build_report, could_not_run_text
from tui.report.output import FORMATS, export_report, render, write_private

__all__ = [
    "FORMATS",
    "SCHEMA",
    "Report",
    "ReportError",
    "Verdict",
    "build_report",
    "could_not_run_text",
    "export_report",
    "render",
    "report_of",
    "write_private",
]
