"""What nodedoc needs from Python 3.11 on the older interpreters nodes ship (3.9 and 3.10).

``tomllib`` is the standard library's TOML reader from 3.11; before that the same code is on PyPI as
``tomli`` (a dependency on those versions only). ``StrEnum`` is an enum whose members are strings and
print as their value, as 3.11's ``enum.StrEnum`` does.

``tomllib`` and ``importlib.metadata`` are imported when first used: a short command such as ``nodedoc
pods`` needs neither, and importing them is a large part of its start-up.
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - exercised by the zipapp tests on 3.9 and 3.10

    class StrEnum(str, enum.Enum):
        """Members are strings and ``str()`` of a member is its value."""

        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str(self.value).__format__(spec)


def __getattr__(name: str) -> Any:
    """``tomllib``, imported the first time a module asks for it."""
    if name != "tomllib":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if sys.version_info >= (3, 11):
        import tomllib as module
    else:  # pragma: no cover - 3.9 and 3.10
        import tomli as module
    globals()["tomllib"] = module
    return module


def entry_points_in(group: str) -> list[Any]:
    """The installed entry points of ``group`` (3.9's ``entry_points()`` takes no ``group=``).

    importlib.metadata raises for the whole group when one distribution's ``entry_points.txt`` is malformed;
    then each distribution is read on its own, and a malformed one that has a section for ``group`` becomes
    an entry point named after it whose ``load`` raises why: that plugin is an error result and every other
    probe still runs. A malformed one without such a section is passed over, as it has nothing in it."""
    from importlib import metadata

    try:
        if sys.version_info >= (3, 10):
            return list(metadata.entry_points(group=group))
        return list(metadata.entry_points().get(group, ()))  # pragma: no cover - 3.9
    except Exception:  # noqa: BLE001 - whatever the parser raised, one distribution at a time below
        return _each_distribution(group)


class UnreadableEntryPoints:
    """Stands for a distribution whose entry points could not be read: loading it raises why."""

    def __init__(self, distribution: str, problem: str, group: str) -> None:
        self.name, self.value, self.group = distribution, "", group
        self.problem = problem

    def load(self) -> Any:
        raise ValueError(
            f"the entry points of the installed distribution {self.name} cannot be read: {self.problem}"
        )


def _each_distribution(group: str) -> list[Any]:
    from importlib import metadata

    seen: set[object] = set()
    found: list[Any] = []
    for dist in metadata.distributions():
        name = _name_of(dist)
        try:  # importlib.metadata's own key: the name from the metadata directory's, else the metadata's
            key: object = dist._normalized_name  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no name to tell it by: kept, as distinct
            key = object()
        if key in seen:
            continue
        seen.add(key)
        try:
            found += [ep for ep in dist.entry_points if ep.group == group]
        except Exception as exc:  # noqa: BLE001 - a malformed file, reported as that plugin's error
            if _has_section(dist, group) is False:
                continue  # a distribution with nothing in this group: its malformed file is not ours to judge
            text = str(exc).strip().splitlines()
            found.append(
                UnreadableEntryPoints(name, f"{type(exc).__name__}: {text[0] if text else ''}", group)
            )
    return found


def _name_of(dist: Any) -> str:
    """The distribution's name: its metadata's, else its metadata directory's (``name-1.0.dist-info``)."""
    try:
        name = str(dist.metadata["Name"] or "")
    except Exception:  # noqa: BLE001 - unreadable metadata: the directory names it
        name = ""
    if not name:
        directory = str(getattr(dist, "_path", "") or "")
        stem = directory.rstrip("/").rpartition("/")[2]
        name = stem.partition("-")[0] if "-" in stem else stem.rpartition(".")[0]
    return name or "?"


def _has_section(dist: Any, group: str) -> bool | None:
    """Whether the distribution's entry_points.txt has a ``[group]`` line; None when that cannot be read
    (then its failure is reported: it may be ours)."""
    try:
        data = dist.read_text("entry_points.txt") or ""
    except Exception:  # noqa: BLE001 - not UTF-8, say: the raw bytes then, where the distribution is a directory
        path = getattr(dist, "_path", None)
        try:
            data = (path / "entry_points.txt").read_bytes().decode("utf-8", "replace") if path else None
        except (OSError, TypeError):
            data = None
    if data is None:
        return None
    return f"[{group}]" in (line.strip() for line in data.splitlines())


__all__ = ["StrEnum", "UnreadableEntryPoints", "entry_points_in", "tomllib"]
