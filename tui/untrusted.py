"""Text from the node is written by others: make it inert before a terminal or a report shows it.

File names come from image layers and containers' writable layers, labels and annotations from anyone
who can create a pod, process names from the processes themselves. Any of them can hold an escape
sequence that recolours or rewrites the operator's terminal (kubectl's CVE-2021-25743), a bidi override
that shows a name backwards, or a newline that forges a line of the report. :func:`neutralise` shows
each such character as its Python escape (``\\x1b``, ``\\u202e``), so it is visible and does nothing.

Applied where data enters the display (screens, notifications, the clipboard, the text, Markdown and
HTML writers); JSON output stays exact, since a JSON reader gets escapes of its own.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

#: Bidirectional embeddings, overrides, isolates and marks: they reorder what follows them on screen.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
#: Characters that break a line or hide themselves: line/paragraph separators, zero-width space, BOM.
INVISIBLE = "\u2028\u2029\u200b\ufeff"
#: C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), lone surrogates (bytes of non-UTF-8 names).
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{BIDI}{INVISIBLE}]")
_UNSAFE_MULTILINE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{BIDI}{INVISIBLE}]")

#: Fields of runbook prose and the operator's own notes, written over several lines; their newlines stay.
#: Not a finding's summary or a remedy's text: probes put node names in those.
PROSE_FIELDS = frozenset({"why", "ask", "note", "description"})


def _visible(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by Python's surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}"


def neutralise(text: str, *, multiline: bool = False) -> str:
    """``text`` with every control, bidi and invisible character shown as its escape.

    A single-line field (a name, a label, a path) also has its newlines and tabs escaped; ``multiline``
    keeps ``\\n`` and ``\\t`` for prose. The result is safe to print raw to a terminal.
    """
    pattern = _UNSAFE_MULTILINE if multiline else _UNSAFE_LINE
    return pattern.sub(_visible, text) if pattern.search(text) else text


def neutralise_bytes(name: bytes) -> str:
    """A name read as bytes (not necessarily UTF-8), neutralised; bytes that are not UTF-8 show as ``\\xNN``."""
    return neutralise(name.decode("utf-8", "surrogateescape"))


def neutralise_data(value: Any, *, multiline: bool = False) -> Any:
    """A copy of ``value`` (dicts, lists, tuples, dataclasses, strings) with every string neutralised.

    Dict keys and most fields are single-line; fields named in :data:`PROSE_FIELDS` keep their newlines.
    Enum members are returned as they are (they are the program's words, not the node's).
    """
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, str):
        return neutralise(value, multiline=multiline)
    if isinstance(value, dict):
        return {
            neutralise_data(k): neutralise_data(v, multiline=isinstance(k, str) and k in PROSE_FIELDS)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [neutralise_data(v, multiline=multiline) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(neutralise_data(v, multiline=multiline) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: neutralise_data(getattr(value, f.name), multiline=f.name in PROSE_FIELDS)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


def has_unsafe(text: str) -> bool:
    """Whether :func:`neutralise` would change ``text`` (as a single-line field)."""
    return _UNSAFE_LINE.search(text) is not None
