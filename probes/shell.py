"""Values from the node in the commands nodedoc prints for an on-call engineer to paste into a root shell.

A pod's name and namespace, an image reference, a path from containerd's config or disk, an interface name
from CNI's cache: whoever created the pod, pushed the image or wrote the file chose them. In a printed command
each is one inert word for a POSIX shell (``;``, ``$(...)``, backticks, quotes, spaces and newlines included):
:func:`quote` is :func:`shlex.quote`, which leaves a plain value (letters, digits and ``@%+=:,./_-``) as it
is, so ordinary commands read as before. What nodedoc itself chose (flags, ``$EDITOR``, ``$(uname -r)``)
stays unquoted.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

_PLAIN = re.compile(r"[A-Za-z0-9@%+=:,./_-]+")


def quote(value: object) -> str:
    """``value`` as one word for a POSIX shell."""
    return shlex.quote(str(value))


def words(values: Iterable[object]) -> str:
    """Each value as one word, separated by spaces."""
    return " ".join(quote(v) for v in values)


def printf_text(text: str) -> str:
    """``printf`` format text that prints ``text`` exactly, as one shell word: ``\\`` and ``%`` escaped,
    newlines written ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace("%", "%%").replace("\n", "\\n")
    return quote(escaped)


def heredoc_delimiter(body: str, base: str = "EOF") -> str:
    """A here-document delimiter no line of ``body`` equals, so the document ends where nodedoc ends it:
    ``EOF`` unless the body holds such a line."""
    lines = set(body.splitlines())
    delimiter, n = base, 0
    while delimiter in lines:
        n += 1
        delimiter = f"{base}_{n}"
    return delimiter


def systemd_word(value: str) -> str:
    """``value`` as one word of a systemd ``ExecStart=`` line: as it is when plain, else double-quoted with
    ``\\`` and ``"`` escaped, ``%`` as ``%%`` (systemd's specifiers) and ``$`` as ``$$`` (its variables)."""
    if _PLAIN.fullmatch(value) and "%" not in value:
        return value
    inner = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    inner = "".join(c if c.isprintable() else _c_escape(c) for c in inner)
    return f'"{inner}"'


def _c_escape(c: str) -> str:
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: a registry name or endpoint from the node's config stays one string in
    the hosts.toml nodedoc writes, whatever quotes or newlines it holds."""
    out = []
    for c in value:
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'
