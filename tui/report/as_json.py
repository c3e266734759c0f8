"""The report as JSON: the whole ``nodedoc.report/v1`` document, for tools (values exact, not neutralised)."""

from __future__ import annotations

import json

from tui.report.model import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_document(), indent=2, default=str) + "\n"
