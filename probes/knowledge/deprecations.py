"""What to change for each deprecation containerd reports: ``probes/knowledge/data/deprecations.toml`` as data.

containerd names a deprecation by an id (``io.containerd.deprecation/cri-registry-mirrors``) and a message;
the table adds where the setting lives in a version 2 and a version 3 config, when it goes away, the fix and
references. A malformed table raises :class:`~probes.errors.KnowledgeBaseError` naming the entry.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from probes.compat import tomllib
from probes.errors import KnowledgeBaseError

# Read through importlib.resources, so it loads from the one-file nodedoc.pyz too.
TABLE = resources.files("probes.knowledge") / "data" / "deprecations.toml"
PREFIX = "io.containerd.deprecation/"
#: The CRI runtime condition containerd 1.7.24+ and 2.x add; false while any deprecation is reported.
CONDITION = "ContainerdHasNoDeprecationWarnings"
_FIELDS = (
    "id",
    "what",
    "v2_table",
    "v3_table",
    "key",
    "deprecated",
    "removed",
    "fix",
    "command",
    "references",
)


@dataclass(frozen=True)
class DeprecationFix:
    id: str
    what: str
    v2_table: str
    v3_table: str
    key: str
    deprecated: str
    removed: str
    fix: str
    command: str
    references: tuple[str, ...]

    def table(self, config_version: int) -> str:
        """Where the setting is in a config of this version ('' when it is not a config setting)."""
        return self.v3_table if config_version >= 3 and self.v3_table else self.v2_table


def short_id(deprecation_id: str) -> str:
    return deprecation_id.removeprefix(PREFIX)


@functools.cache
def fixes(path: Traversable = TABLE) -> dict[str, DeprecationFix]:
    """The table keyed by short id."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise KnowledgeBaseError(f"{path}: {exc}") from None
    found: dict[str, DeprecationFix] = {}
    for n, entry in enumerate(data.get("deprecation", [])):
        missing = [f for f in _FIELDS if f not in entry]
        unknown = sorted(set(entry) - set(_FIELDS))
        if missing or unknown or not isinstance(entry.get("references"), list):
            raise KnowledgeBaseError(
                f"{path}: deprecation #{n} ({entry.get('id', '?')}): missing {missing}, unknown {unknown}, "
                "references must be a list"
            )
        if entry["id"] in found:
            raise KnowledgeBaseError(f"{path}: deprecation {entry['id']} is listed twice")
        found[entry["id"]] = DeprecationFix(**{**entry, "references": tuple(entry["references"])})
    return found


def from_condition(conditions: Iterable[Any]) -> tuple[dict[str, str], str | None]:
    """The ``{id: message}`` of a false ContainerdHasNoDeprecationWarnings condition (CRI runtime conditions as
    :class:`probes.readers.cri.runtime.RuntimeCondition`), and a problem if its message is not the JSON object
    containerd writes. ({}, None) when the condition is absent or true."""
    for cond in conditions:
        if cond.type != CONDITION or cond.status:
            continue
        ids = cond.deprecations()
        if not ids and cond.message:
            return {}, f"{CONDITION} message is not a JSON object of ids: {cond.message[:200]!r}"
        return ids, None
    return {}, None
