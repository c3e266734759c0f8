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
    from importlib import metadata

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


def entry_points_in(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group`` (3.9's ``entry_points()`` takes no ``group=``)."""
    from importlib import metadata

    if sys.version_info >= (3, 10):
        return list(metadata.entry_points(group=group))
    return list(metadata.entry_points().get(group, ()))  # pragma: no cover - 3.9


__all__ = ["StrEnum", "entry_points_in", "tomllib"]
