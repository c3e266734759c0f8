"""Small formatting rules shared by the headless commands and the screens."""

from __future__ import annotations

import time
from typing import Any


def human_age(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d`` (kubectl's style: one unit, rounded down)."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def age_of_ns(created_ns: int, now: float | None = None) -> str:
    if not created_ns:
        return "-"
    return human_age((now if now is not None else time.time()) - created_ns / 1e9)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def short_id(value: str, width: int = 13) -> str:
    return value[:width]


def subject_text(subject: dict[str, Any]) -> str:
    """What a finding is about, one way everywhere: ``pod default/web``, ``process 4242``, ``uid 0``."""
    name = str(subject.get("name") or subject.get("id") or "")
    if subject.get("namespace"):
        name = f"{subject['namespace']}/{name}"
    return f"{subject.get('kind', '')} {name}".strip()


def subject_line(subject: dict[str, Any]) -> str:
    """:func:`subject_text`, or, for a subject that names no kind, its key=value pairs: the one line
    ``nodedoc npd`` and the fleet report give must name what the finding is about."""
    return subject_text(subject) or " ".join(
        f"{k}={v}" for k, v in subject.items() if v not in (None, "", [], {})
    )
