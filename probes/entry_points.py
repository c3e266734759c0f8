"""A group's entry points read from the installed distributions' ``entry_points.txt``, without importlib.metadata.

Importing :mod:`importlib.metadata` and letting it scan every distribution costs ``nodedoc check`` about 20 ms
before any probe starts, more than reading the few files itself. :func:`entry_points_in` reads what
importlib.metadata (Python 3.11 to 3.13) reads, in its order, and keeps what it keeps: the metadata
directories (``*.dist-info``, ``*.egg-info``) of each ``sys.path`` entry, the first distribution of each
normalised name, the ``name = value`` lines of the group's section. For anything it does not read the same
way it hands over to importlib.metadata: another interpreter, a zip or egg on the path, a finder that lists
distributions of its own, a directory name that does not give the distribution's name, an unreadable or
malformed file. ``tests/test_entry_points.py`` compares both on every interpreter the project supports.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
import re
import sys
from typing import Any, NamedTuple

#: importlib.metadata's syntax of an entry point's value: ``module:attr.attr [extras]``.
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_METADATA_DIRS = (".dist-info", ".egg-info")
#: What importlib.metadata reads a missing ``entry_points.txt`` as: none.
_ABSENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class EntryPoint(NamedTuple):
    """One ``name = value`` line of a distribution's ``entry_points.txt``."""

    name: str
    value: str
    group: str

    def load(self) -> Any:
        """The object the value names, imported as importlib.metadata's ``EntryPoint.load`` does."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name} = {self.value!r} does not name a module")
        module = importlib.import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, attrs, module)


class _NotReadHere(Exception):
    """What importlib.metadata would read differently: it is asked instead."""


def entry_points_in(group: str) -> list[Any]:
    """The entry points of ``group`` of every installed distribution, in importlib.metadata's order."""
    if (3, 11) <= sys.version_info < (3, 14):
        try:
            return [ep for ep in _read_all() if ep.group == group]
        except _NotReadHere:
            pass
    from probes.compat import entry_points_in as from_importlib_metadata

    return list(from_importlib_metadata(group))


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _read_all() -> list[EntryPoint]:
    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and hasattr(finder, "find_distributions"):
            raise _NotReadHere
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path:
        for directory in _metadata_dirs(entry):
            stem = os.path.basename(directory)
            filename, ext = os.path.splitext(stem)
            name = filename.partition("-")[0]
            if ext not in _METADATA_DIRS or not name:
                raise _NotReadHere  # importlib.metadata would read its METADATA for the name
            key = _normalize(name)
            if key in seen:
                continue
            seen.add(key)
            found += _parse(_read_text(os.path.join(directory, "entry_points.txt")))
    return found


def _metadata_dirs(entry: object) -> list[str]:
    """The metadata directories of one ``sys.path`` entry, grouped by name as importlib.metadata lists them."""
    if not isinstance(entry, str):
        raise _NotReadHere
    root = entry or "."
    try:
        children = os.listdir(root)
    except OSError:
        if os.path.isfile(root):
            raise _NotReadHere from None  # a zip: importlib.metadata reads inside it
        return []
    if os.path.basename(entry).lower().endswith(".egg"):
        raise _NotReadHere
    groups: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith(_METADATA_DIRS):
            key = _normalize(low.rpartition(".")[0].partition("-")[0])
            groups.setdefault(key, []).append(os.path.join(entry, child))
    return [path for paths in groups.values() for path in paths]


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except _ABSENT:
        return ""
    except (OSError, UnicodeDecodeError):
        raise _NotReadHere from None


def _parse(text: str) -> list[EntryPoint]:
    out: list[EntryPoint] = []
    section: str | None = None
    for line in text.splitlines():
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if value.startswith("[") and value.endswith("]"):
            section = value.strip("[]")
            continue
        if section is None:
            continue
        if "=" not in value:
            raise _NotReadHere  # importlib.metadata raises: let it
        name, _sep, target = value.partition("=")
        out.append(EntryPoint(name.strip(), target.strip(), section))
    return out
