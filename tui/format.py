"""Small formatting rules shared by the headless commands and the screens."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probes.api import Remedy


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
    """What a finding is about, one way everywhere (screens, reports, ``check``, ``npd``, ``fleet``):
    ``pod default/web``, ``process 4242``, ``runc 1.1.5``, or for a subject that names neither a kind, a
    name nor a component, its key=value pairs."""
    name = str(subject.get("name") or subject.get("id") or "")
    if subject.get("namespace"):
        name = f"{subject['namespace']}/{name}"
    text = f"{subject.get('kind', '')} {name}".strip()
    if text:
        return text
    if subject.get("component"):
        return f"{subject['component']} {subject.get('version') or ''}".strip()
    return " ".join(f"{k}={_value_text(v)}" for k, v in subject.items() if v not in (None, "", [], {}))


def _value_text(value: Any) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


#: How a step that stops or restarts pods already running on the node is marked wherever it is shown.
DISRUPTS_PODS = "disrupts running pods"


def remedy_text(step: Remedy) -> str:
    """A remediation step's words as every output shows them: what to do, then what running it costs."""
    return f"{step.text} ({DISRUPTS_PODS})" if step.disrupts_pods else step.text
