"""Version strings as runtimes and distributions print them, parsed and compared by their upstream number.

Handles ``v1.6.14``, ``1.0.0-rc93``, ``1.7.0-beta.1``, ``2.0.0-rc.3`` (pre-releases sort before the release),
and distribution builds that keep the upstream number but may carry patches: Debian ``1.6.20~ds1``,
``1.1.5+ds1-1+deb12u1``, k3s ``v1.6.14-k3s1``, Ubuntu ``1.7.12-0ubuntu2~22.04.1``, RPM ``1.6.28-3.1.el9``.
Comparison uses the upstream number only; :attr:`Version.distribution` keeps the rest for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from probes.errors import NodedocError

#: Pre-release labels in upstream order (a label not listed sorts with ``dev``).
_PRE_ORDER = {"dev": 0, "alpha": 1, "beta": 2, "pre": 3, "rc": 4}

_VERSION = re.compile(
    r"""^v?(?P<release>\d+(?:\.\d+){1,3})
        (?:[-~.]?(?P<pre_label>alpha|beta|rc|pre|dev)\.?(?P<pre_num>\d+)?)?
        (?P<rest>.*)$""",
    re.VERBOSE | re.IGNORECASE,
)


#: ``-0-g51d5e946``: git describe's distance and commit, an upstream build rather than a distribution's.
GIT_DESCRIBE = re.compile(r"^-\d+-g[0-9a-f]{7,40}(?:-dirty)?$")


class VersionError(NodedocError):
    """A string that is not a version nodedoc understands."""


@dataclass(frozen=True)
class Version:
    """One parsed version: the upstream release, its pre-release, and any distribution suffix."""

    raw: str
    release: tuple[int, ...]
    pre: tuple[str, int] | None = None
    distribution: str = ""

    @property
    def upstream(self) -> str:
        """The version without the distribution suffix and leading ``v``: ``1.1.5``, ``1.0.0-rc93``."""
        text = self.raw[: len(self.raw) - len(self.distribution)] if self.distribution else self.raw
        return text.lstrip("vV")

    @property
    def branch(self) -> str:
        """``major.minor``: the release branch (``1.6``) that support and fixes are tracked by."""
        return f"{self.release[0]}.{self.release[1]}"

    @property
    def is_distribution_build(self) -> bool:
        """True when a packager added a suffix: the build may carry fixes its number does not show."""
        return bool(self.distribution)

    @property
    def is_prerelease(self) -> bool:
        return self.pre is not None

    def key(self) -> tuple[object, ...]:
        """Sort key: release padded to four parts, then pre-releases before the release itself."""
        padded = self.release + (0,) * (4 - len(self.release))
        stage = (0, _PRE_ORDER.get(self.pre[0].lower(), 0), self.pre[1]) if self.pre else (1, 0, 0)
        return padded + stage

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def same_upstream(self, other: Version) -> bool:
        return self.key() == other.key()

    def __str__(self) -> str:
        return self.raw


def parse(text: str) -> Version:
    """Parse a version string; :class:`VersionError` when it does not start with ``[v]N.N``."""
    raw = text.strip()
    match = _VERSION.match(raw)
    if not match:
        raise VersionError(f"not a version: {text!r} (expected something like 1.6.20 or v1.0.0-rc93)")
    release = tuple(int(part) for part in match["release"].split("."))
    pre = None
    if match["pre_label"]:
        pre = (match["pre_label"].lower(), int(match["pre_num"] or 0))
    rest = "" if GIT_DESCRIBE.match(match["rest"]) else match["rest"]
    return Version(raw=raw, release=release, pre=pre, distribution=rest)


def try_parse(text: str | None) -> Version | None:
    """Like :func:`parse` but None for what is not a version."""
    if not text:
        return None
    try:
        return parse(text)
    except VersionError:
        return None
