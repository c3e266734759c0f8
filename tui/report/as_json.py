"""The report as JSON: the whole document, for tools."""

from __future__ import annotations

import json

from tui.report.model import ReportDocument


def render_json(doc: ReportDocument) -> str:
    return json.dumps(doc, indent=2, default=str) + "\n"
