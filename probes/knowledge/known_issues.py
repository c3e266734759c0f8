"""The knowledge base of known issues and the containerd ↔ Kubernetes support table, as data files.

``probes/knowledge/data/known_issues.toml`` holds the issues (see its header for the fields); ``compatibility.toml``
the support table and end-of-life dates. Both are validated when loaded: a malformed file raises
:class:`~probes.errors.KnowledgeBaseError` naming the file and the entry.

A verdict rests on the upstream version number. A distribution build (``1.1.5+ds1-1+deb12u1``) keeps the
upstream number but may carry backported fixes: it keeps the knowledge base's verdict unless there is evidence
that the build carries the fix, either on the node (the package changelog names the issue in the installed
revision or an older one, :class:`~probes.readers.host.packages.PackageRecord`) or in the knowledge base (``fixed_builds``, each with its
reference). A match says which (``evidence``), or, for an affected build, what was looked at
(``distribution_note``).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from probes import api
from probes.api import Remedy, Severity
from probes.compat import StrEnum, tomllib
from probes.errors import KnowledgeBaseError
from probes.readers.host.packages import PackageRecord, compare_debian
from probes.shell import quote
from probes.versions import Version, VersionError, parse

# Read through importlib.resources: the same code reads them from a wheel and from the one-file nodedoc.pyz.
DATA_DIR = resources.files("probes.knowledge") / "data"
KNOWN_ISSUES = DATA_DIR / "known_issues.toml"
COMPATIBILITY = DATA_DIR / "compatibility.toml"

COMPONENTS = frozenset({"containerd", "runc", "kernel", "kubelet"})
KINDS = frozenset({"version", "condition"})
_ISSUE_KEYS = {
    "id",
    "component",
    "kind",
    "severity",
    "title",
    "symptom",
    "detection",
    "affected",
    "fixed_builds",
    "remediation",
    "references",
}
_REQUIRED = ("id", "component", "kind", "severity", "title", "symptom", "detection", "remediation")
_RANGE_KEYS = {"introduced", "branch", "fixed", "last_affected"}
_STEP_KEYS = {"text", "command", "untested", "disrupts_pods"}
#: ``untested = "..."`` in a remediation step: why the lab never ran its command (probes.api's reasons).
UNTESTED = {
    "no-systemd": api.NO_SYSTEMD,
    "no-kubelet": api.NO_KUBELET,
    "no-crictl": api.NO_CRICTL,
    "by-hand": api.BY_HAND,
    "shows-only": api.SHOWS_ONLY,
    "changes-machine": api.CHANGES_MACHINE,
    "not-affected": api.NOT_AFFECTED,
    "shared-setting": api.SHARED_SETTING,
    "whole-machine": api.WHOLE_MACHINE,
}


# -- the data ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Affected versions: from ``introduced`` (or the start of ``branch``) up to before ``fixed`` /
    through ``last_affected``."""

    introduced: Version | None
    fixed: Version | None = None
    last_affected: Version | None = None
    branch: str | None = None

    def contains(self, version: Version) -> bool:
        if self.introduced is not None and version < self.introduced:
            return False
        if self.fixed is not None and version >= self.fixed:
            return False
        return not (self.last_affected is not None and version > self.last_affected)

    @property
    def upper(self) -> Version:
        """The version this range ends at (its fix, else its last affected version)."""
        return self.fixed or self.last_affected  # type: ignore[return-value]

    def describe(self) -> str:
        """``>=1.6.9, <1.6.15`` style, upstream numbers."""
        parts = [f"{self.branch} branch"] if self.branch else []
        if self.introduced is not None and self.introduced.release != (0, 0) and not self.branch:
            parts.append(f">={self.introduced.upstream}")
        if self.fixed is not None:
            parts.append(f"<{self.fixed.upstream}")
        if self.last_affected is not None:
            parts.append(f"<={self.last_affected.upstream}")
        return ", ".join(parts)


@dataclass(frozen=True)
class FixedBuild:
    """A build whose upstream number is affected but which carries the fix (and later builds of its series)."""

    build: Version
    reference: str = ""

    def covers(self, version: Version) -> bool:
        """True for this build and later builds of the same series: same upstream number, same packager
        suffix apart from its last number, and that number at least this one's (``v1.6.14+k3s1`` and
        ``1.6.14-k3s2`` are covered by ``1.6.14-k3s1``; ``1.1.5+ds1-1+deb12u2`` by ``...deb12u1``)."""
        if not version.same_upstream(self.build) or not version.distribution:
            return False
        mine, theirs = _series(self.build.distribution), _series(version.distribution)
        if mine[0] != theirs[0]:
            return False
        return compare_debian(theirs[1] or "0", mine[1] or "0") >= 0


def _series(suffix: str) -> tuple[str, str]:
    """``-k3s1`` → (``k3s``, ``1``); ``+ds1-1+deb12u1`` → (``ds1-1+deb12u``, ``1``): the packager's series and
    its build number."""
    bare = suffix.lstrip("-+~.")
    digits = len(bare) - len(bare.rstrip("0123456789"))
    return (bare[: len(bare) - digits] if digits else bare), (bare[len(bare) - digits :] if digits else "")


@dataclass(frozen=True)
class KnownIssue:
    """One entry of the knowledge base."""

    id: str
    component: str
    kind: str
    severity: Severity
    title: str
    symptom: str
    detection: str
    affected: tuple[Range, ...] = ()
    fixed_builds: tuple[FixedBuild, ...] = ()
    remediation: tuple[Remedy, ...] = ()
    references: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The ids a changelog may name this issue by: its id and the CVE/GHSA ids in its references."""
        found = [self.id] if self.id.upper().startswith(("CVE-", "GHSA-")) else []
        for ref in self.references:
            found += re.findall(r"(CVE-\d{4}-\d{4,}|GHSA(?:-[0-9a-z]{4}){3})", ref, re.IGNORECASE)
        return tuple(dict.fromkeys(n.upper() if n.upper().startswith("CVE") else n for n in found))

    @property
    def fixed_versions(self) -> list[str]:
        """The first fixed version on each affected line, e.g. ``['1.6.15', '1.5.17']``."""
        return [r.fixed.upstream for r in self.affected if r.fixed is not None]


class Verdict(StrEnum):
    AFFECTED = "affected"
    FIXED = "fixed"


@dataclass(frozen=True)
class Match:
    """A known issue as it applies to one version."""

    issue: KnownIssue
    version: Version
    verdict: Verdict
    matched_range: Range | None = None
    distribution_note: str | None = None
    #: For a build judged fixed though its upstream number is affected: what shows the fix, and where.
    evidence: str | None = None
    evidence_source: str | None = None

    @property
    def affected(self) -> bool:
        return self.verdict is Verdict.AFFECTED


@dataclass(frozen=True)
class KnowledgeBase:
    path: Traversable
    issues: dict[str, KnownIssue] = field(default_factory=dict)

    def for_component(self, component: str) -> list[KnownIssue]:
        return [i for i in self.issues.values() if i.component == component]


@dataclass(frozen=True)
class SupportRow:
    minors: tuple[str, ...]
    containerd: tuple[Version, ...]
    cri: tuple[str, ...]


@dataclass(frozen=True)
class EolEntry:
    component: str
    branch: str
    date: dt.date
    precision: str = "day"
    lts: bool = False


@dataclass(frozen=True)
class Compatibility:
    path: Traversable
    rows: tuple[SupportRow, ...]
    eols: tuple[EolEntry, ...]


# -- loading and validation -------------------------------------------------------------------------------


def _read_toml(path: Traversable) -> dict[str, Any]:
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        return data
    except OSError as exc:
        raise KnowledgeBaseError(f"{path}: cannot read the knowledge base: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeBaseError(f"{path}: not valid TOML: {exc}") from exc


class _Entry:
    """Validation helpers that name the file and the entry in every message."""

    def __init__(self, path: Traversable, label: str, data: Any) -> None:
        self.path, self.label = path, label
        if not isinstance(data, dict):
            self.fail(f"must be a table, not {type(data).__name__}")
        self.data: dict[str, Any] = data

    def fail(self, message: str) -> None:
        raise KnowledgeBaseError(f"{self.path}: {self.label}: {message}")

    def text(self, key: str, required: bool = True) -> str:
        value = self.data.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(
                f"field {key!r} must be a non-empty string" if key in self.data else f"missing field {key!r}"
            )
        return value  # type: ignore[return-value]

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(f"field {key!r} must be a list of strings")
        return tuple(value)

    def version(self, key: str, text: Any) -> Version:
        if not isinstance(text, str):
            self.fail(f"{key} must be a version string, not {text!r}")
        if text == "0":
            return parse("0.0")
        try:
            return parse(text)
        except VersionError:
            self.fail(f"{key} is not a version: {text!r}")
            raise  # unreachable: fail raised


def _range(entry: _Entry, index: int, data: Any) -> Range:
    where = f"affected[{index}]"
    if not isinstance(data, dict):
        entry.fail(f'{where} must be a table like {{ introduced = "1.6.9", fixed = "1.6.15" }}')
    unknown = set(data) - _RANGE_KEYS
    if unknown:
        entry.fail(f"{where} has unknown keys {sorted(unknown)} (known: {sorted(_RANGE_KEYS)})")
    if "introduced" in data and "branch" in data:
        entry.fail(f"{where}: give introduced or branch, not both")
    if "introduced" not in data and "branch" not in data:
        entry.fail(f'{where}: needs introduced ("0" for all earlier versions) or branch')
    if ("fixed" in data) == ("last_affected" in data):
        entry.fail(f"{where}: needs exactly one of fixed, last_affected")
    branch = None
    if "branch" in data:
        branch = entry.version(f"{where}.branch", data["branch"]).branch
        introduced = parse(f"{branch}.0-dev.0")
    else:
        introduced = entry.version(f"{where}.introduced", data["introduced"])
    fixed = entry.version(f"{where}.fixed", data["fixed"]) if "fixed" in data else None
    last = entry.version(f"{where}.last_affected", data["last_affected"]) if "last_affected" in data else None
    upper = fixed or last
    assert upper is not None
    if (fixed and fixed <= introduced) or (last and last < introduced):
        entry.fail(f"{where}: ends ({upper.raw}) before it starts ({introduced.raw})")
    return Range(introduced=introduced, fixed=fixed, last_affected=last, branch=branch)


def _fixed_builds(entry: _Entry) -> tuple[FixedBuild, ...]:
    """``fixed_builds``: version strings, or tables ``{ build = "...", reference = "https://..." }``."""
    raw = entry.data.get("fixed_builds", [])
    if not isinstance(raw, list):
        entry.fail("fixed_builds must be a list")
    builds = []
    for n, item in enumerate(raw):
        if isinstance(item, str):
            builds.append(FixedBuild(entry.version(f"fixed_builds[{n}]", item)))
            continue
        if not isinstance(item, dict) or set(item) - {"build", "reference"} or "build" not in item:
            entry.fail(
                f'fixed_builds[{n}] must be a version or {{ build = "...", reference = "https://..." }}'
            )
        reference = item.get("reference", "")
        if reference and not (isinstance(reference, str) and reference.startswith("https://")):
            entry.fail(f"fixed_builds[{n}].reference {reference!r} is not an https URL")
        version = entry.version(f"fixed_builds[{n}].build", item["build"])
        if not version.distribution:
            entry.fail(f"fixed_builds[{n}].build {item['build']!r} is an upstream version, not a build")
        builds.append(FixedBuild(version, reference))
    return tuple(builds)


def _remedies(entry: _Entry) -> tuple[Remedy, ...]:
    """The steps: a step with a command says why no lab test runs it (``untested``, one of :data:`UNTESTED`),
    and may say it disrupts pods. A step with no command is the upgrade itself: the probe that reports the
    issue adds the command for the very binary this node runs (:mod:`probes.knowledge.remedies.upgrade`)."""
    steps = entry.data.get("remediation")
    if not isinstance(steps, list) or not steps:
        entry.fail("needs at least one [[issue.remediation]] step with text (and command)")
        return ()
    remedies = []
    for n, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("text"), str) or not step["text"].strip():
            entry.fail(f"remediation[{n}] needs a text")
        command = step.get("command")
        if command is not None and not (isinstance(command, str) and command.strip()):
            entry.fail(f"remediation[{n}].command must be a non-empty string")
        if set(step) - _STEP_KEYS:
            entry.fail(f"remediation[{n}] has unknown keys {sorted(set(step) - _STEP_KEYS)}")
        why = step.get("untested")
        if command is not None and why not in UNTESTED:
            entry.fail(
                f"remediation[{n}] has a command, so it needs untested = one of {sorted(UNTESTED)} "
                "(why no lab test runs it)"
            )
        disrupts = step.get("disrupts_pods", False)
        if not isinstance(disrupts, bool):
            entry.fail(f"remediation[{n}].disrupts_pods must be true or false")
        if command is None:
            remedies.append(Remedy(text=step["text"], disrupts_pods=disrupts))
        else:
            remedies.append(api.untested(step["text"], command, UNTESTED[why], disrupts_pods=disrupts))
    return tuple(remedies)


def _issue(path: Traversable, index: int, data: Any) -> KnownIssue:
    label = f"issue #{index + 1}"
    if isinstance(data, dict) and isinstance(data.get("id"), str) and data["id"]:
        label = f"issue {data['id']!r}"
    entry = _Entry(path, label, data)
    for key in _REQUIRED:
        if key not in entry.data:
            entry.fail(f"missing field {key!r}")
    unknown = set(entry.data) - _ISSUE_KEYS
    if unknown:
        entry.fail(f"unknown fields {sorted(unknown)} (known: {sorted(_ISSUE_KEYS)})")
    component, kind = entry.text("component"), entry.text("kind")
    if component not in COMPONENTS:
        entry.fail(f"component {component!r} is not one of {sorted(COMPONENTS)}")
    if kind not in KINDS:
        entry.fail(f"kind {kind!r} is not one of {sorted(KINDS)}")
    try:
        severity = Severity(entry.text("severity"))
    except ValueError:
        entry.fail(f"severity {entry.data['severity']!r} is not one of {[str(s) for s in Severity]}")
    ranges_data = entry.data.get("affected", [])
    if not isinstance(ranges_data, list):
        entry.fail("affected must be a list of ranges")
    ranges = tuple(_range(entry, n, r) for n, r in enumerate(ranges_data))
    if kind == "version" and not ranges:
        entry.fail('a kind = "version" issue needs affected ranges')
    if kind == "condition" and ranges:
        entry.fail('a kind = "condition" issue applies to any version: remove affected')
    references = entry.strings("references")
    for ref in references:
        if not ref.startswith("https://"):
            entry.fail(f"reference {ref!r} is not an https URL")
    fixed_builds = _fixed_builds(entry)
    return KnownIssue(
        id=entry.text("id"),
        component=component,
        kind=kind,
        severity=severity,
        title=entry.text("title"),
        symptom=entry.text("symptom"),
        detection=entry.text("detection"),
        affected=ranges,
        fixed_builds=fixed_builds,
        remediation=_remedies(entry),
        references=references,
    )


def _check_schema(path: Traversable, data: dict[str, Any]) -> None:
    if data.get("schema") != 1:
        raise KnowledgeBaseError(f"{path}: schema = {data.get('schema')!r}; this nodedoc reads schema = 1")


def load(path: Path | str | None = None) -> KnowledgeBase:
    """Load and validate the known-issues file (the packaged one by default)."""
    if path is None:
        return _default()
    return _load(Path(path))


@functools.cache
def _default() -> KnowledgeBase:
    return _load(KNOWN_ISSUES)


def _load(path: Traversable) -> KnowledgeBase:
    data = _read_toml(path)
    _check_schema(path, data)
    entries = data.get("issue")
    if not isinstance(entries, list) or not entries:
        raise KnowledgeBaseError(f"{path}: no [[issue]] entries")
    issues: dict[str, KnownIssue] = {}
    for n, raw in enumerate(entries):
        issue = _issue(path, n, raw)
        if issue.id in issues:
            raise KnowledgeBaseError(f"{path}: issue {issue.id!r}: duplicate id (entry #{n + 1})")
        issues[issue.id] = issue
    return KnowledgeBase(path=path, issues=issues)


def load_compatibility(path: Path | str | None = None) -> Compatibility:
    """Load and validate the support table (the packaged one by default)."""
    if path is None:
        return _default_compat()
    return _load_compat(Path(path))


@functools.cache
def _default_compat() -> Compatibility:
    return _load_compat(COMPATIBILITY)


def _load_compat(path: Traversable) -> Compatibility:
    data = _read_toml(path)
    _check_schema(path, data)
    rows = []
    for n, raw in enumerate(data.get("kubernetes", [])):
        entry = _Entry(path, f"kubernetes #{n + 1}", raw)
        minors = entry.strings("minors")
        if not minors:
            entry.fail("needs minors")
        entry.label = f"kubernetes {', '.join(minors)}"
        versions = tuple(entry.version("containerd", v) for v in entry.strings("containerd"))
        cri = entry.strings("cri")
        if not versions or not cri:
            entry.fail("needs containerd versions and cri API versions")
        rows.append(SupportRow(minors=minors, containerd=versions, cri=cri))
    eols = []
    for n, raw in enumerate(data.get("eol", [])):
        entry = _Entry(path, f"eol #{n + 1}", raw)
        branch = entry.text("branch")
        entry.label = f"eol {entry.data.get('component')} {branch}"
        if not isinstance(entry.data.get("date"), dt.date):
            entry.fail("date must be a TOML date like 2025-08-23")
        eols.append(
            EolEntry(
                component=entry.text("component"),
                branch=branch,
                date=entry.data["date"],
                precision=entry.data.get("precision", "day"),
                lts=bool(entry.data.get("lts", False)),
            )
        )
    if not rows:
        raise KnowledgeBaseError(f"{path}: no [[kubernetes]] rows")
    return Compatibility(path=path, rows=tuple(rows), eols=tuple(eols))


# -- questions ---------------------------------------------------------------------------------------------


def issue(issue_id: str) -> KnownIssue:
    """One entry of the packaged knowledge base by id (KeyError for an unknown id)."""
    return load().issues[issue_id]


def changelog_command(component: str, version: Version, manager: str = "") -> str:
    """The command that shows a distribution package's changelog, to look a fix up in."""
    suffix = version.distribution.lower()
    package = {"kubelet": "kubelet", "kernel": "linux-image-$(uname -r)"}.get(component) or quote(component)
    if manager == "rpm" or ".el" in suffix or ".fc" in suffix or ".amzn" in suffix:
        return f"rpm -q --changelog {package} | less"
    if "k3s" in suffix or "rke2" in suffix:
        return "k3s --version  # then read the k3s/RKE2 release notes for this build"
    return f"apt changelog {package} | less"


#: The lab test that runs the changelog step as printed on this machine's own Debian packages.
CHANGELOG_PROOF = "tests/test_versions_probe.py::test_the_changelog_step_shows_the_changelog_nodedoc_read"


def changelog_step(
    version: Version, component: str, package: PackageRecord | None, looked_for: str = ""
) -> Remedy:
    """The step that shows a person the package's changelog: a backport nodedoc did not find named there
    (``looked_for``: what it searched), or whether the distribution still supports the build.

    When nodedoc read the changelog of a package dpkg installed, the step opens that very file (read-only,
    local; the lab runs it). Otherwise it is the package manager's own command, not run by the tests."""
    supported = "for whether the distribution still supports this build"
    if package is not None and package.changelog is not None and package.manager == "dpkg":
        command = f"zless {quote(package.changelog_path)}"
        if package.prefix == "/":
            why = (
                f"for a backport described in other words (nodedoc looked for {looked_for} in entries up to "
                f"{package.version} and found none)"
                if looked_for
                else supported
            )
            return Remedy(
                f"Read the {package.name} package's changelog {why}", command, proven=CHANGELOG_PROOF
            )
    else:
        name = package.name if package else component
        command = changelog_command(name, version, package.manager if package else "")
    if command.startswith("rpm "):
        reason = "rpm reads the changelog from the node's RPM database, and the lab's nodes are Debian"
    elif command.startswith("apt "):
        reason = "apt downloads the changelog from the distribution, which the tests do not reach"
    elif command.startswith("zless "):
        reason = "the lab test reads the changelogs of installed packages, not of unpacked ones"
    else:
        reason = "the lab runs no k3s or RKE2"
    what = f"for a backport of {looked_for}" if looked_for else supported
    return api.untested(f"Read the distribution's changelog {what}", command, reason)


def _backport(issue_: KnownIssue, version: Version, package: PackageRecord | None) -> tuple[str, str] | None:
    """(evidence, source) that this build carries the fix although its upstream number is affected."""
    named = None
    if package is not None and package.changelog is not None and issue_.names:
        named = package.changelog.naming(issue_.names, package.version)
    if named is None:
        for fixed in issue_.fixed_builds:
            if fixed.covers(version):
                return (
                    f"{version.raw} is a build of the {fixed.build.raw} series, which carries the fix for {issue_.id}",
                    fixed.reference or "knowledge base fixed_builds",
                )
        return None
    assert package is not None
    entry, line = named
    return (
        f"the {package.name} changelog names {issue_.id} in revision {entry.version}"
        + (" (the installed one)" if entry.version == package.version else f" (installed: {package.version})")
        + f": {line[:200]}",
        package.changelog_path,
    )


def _distribution_note(
    issue_: KnownIssue, version: Version, component: str, package: PackageRecord | None
) -> str:
    base = f"{version.raw} is a distribution build of upstream {version.upstream}"
    if package is not None and package.changelog is not None:
        return (
            f"{base}; its changelog ({package.changelog_path}) names no fix for {issue_.id} up to "
            f"{package.version}, so the upstream verdict stands."
        )
    where = f" (no {package.changelog_path} on the node)" if package is not None else ""
    return (
        f"{base}: no record of a backported fix for {issue_.id} was found{where}, so the verdict rests on the "
        "upstream number; the last step below shows the package changelog."
    )


def _verdict(issue_: KnownIssue, version: Version) -> tuple[Verdict | None, Range | None]:
    for rng in issue_.affected:
        if rng.contains(version):
            return Verdict.AFFECTED, rng
    for rng in issue_.affected:
        if rng.fixed is not None and version >= rng.fixed and version.branch == rng.fixed.branch:
            return Verdict.FIXED, rng
    if all(version > rng.upper for rng in issue_.affected):
        return Verdict.FIXED, None
    return None, None


def known_issues_for(
    component: str,
    version: str | Version,
    kb: KnowledgeBase | None = None,
    package: PackageRecord | None = None,
) -> list[Match]:
    """The version-determined issues of ``component`` that ``version`` is affected by or has the fix for.

    Issues the version predates (or whose affected lines it is not on) are left out. A build whose upstream
    number is affected is judged fixed only on evidence: the knowledge base's ``fixed_builds``, or the
    ``package`` changelog naming the issue; otherwise it stays affected, with a note of what was looked at.
    A version string that does not parse is a :class:`~probes.versions.VersionError`.
    """
    kb = kb or load()
    parsed = version if isinstance(version, Version) else parse(version)
    matches = []
    for entry in kb.for_component(component):
        if entry.kind != "version":
            continue
        verdict, rng = _verdict(entry, parsed)
        if verdict is None:
            continue
        evidence = note = None
        if verdict is Verdict.AFFECTED and (parsed.is_distribution_build or package is not None):
            evidence = _backport(entry, parsed, package)
            if evidence:
                verdict = Verdict.FIXED
            elif parsed.is_distribution_build:
                note = _distribution_note(entry, parsed, component, package)
        matches.append(
            Match(
                issue=entry,
                version=parsed,
                verdict=verdict,
                matched_range=rng,
                distribution_note=note,
                evidence=evidence[0] if evidence else None,
                evidence_source=evidence[1] if evidence else None,
            )
        )
    return matches


def lowest_unaffected(component: str, branch: str, kb: KnowledgeBase | None = None) -> Version | None:
    """The first release on ``branch`` (``1.6``) that no warning or critical version issue affects: the least
    an upgrade on that branch should go to. None when every release the knowledge base knows of on it is
    affected without a fix."""
    kb = kb or load()
    floor = parse(f"{branch}.0")
    for _ in range(100):
        blocking = [
            rng
            for issue_ in kb.for_component(component)
            if issue_.kind == "version" and issue_.severity.rank >= Severity.WARNING.rank
            for rng in issue_.affected
            if rng.contains(floor)
        ]
        if not blocking:
            return floor
        ends = [r.fixed for r in blocking if r.fixed is not None]
        ends += [
            parse(f"{r.last_affected.upstream}.1") for r in blocking if r.fixed is None and r.last_affected
        ]
        nxt = max(ends, default=None)
        if nxt is None or nxt <= floor or nxt.branch != branch:
            return None
        floor = nxt
    return None


def upgrade_floors(component: str, version: str | Version, kb: KnowledgeBase | None = None) -> list[Version]:
    """From ``version``'s branch on, the first release of each branch that no warning or critical version
    issue affects (:func:`lowest_unaffected`): what an upgrade should reach. Branches are those the knowledge
    base's ranges name, and for containerd the support table's; a branch with no such release is left out
    (containerd 1.6: no upstream release carries the 2025 fixes)."""
    kb = kb or load()
    start = parse(f"{(version if isinstance(version, Version) else parse(version)).branch}.0")
    branches = {
        v.branch
        for issue_ in kb.for_component(component)
        for rng in issue_.affected
        for v in (rng.introduced, rng.fixed, rng.last_affected)
        if v is not None and v.release[:2] != (0, 0)
    }
    if component == "containerd":
        branches |= {v.branch for row in load_compatibility().rows for v in row.containerd}
    floors = []
    for branch in sorted(branches, key=lambda b: parse(f"{b}.0")):
        if parse(f"{branch}.0") < start:
            continue
        floor = lowest_unaffected(component, branch, kb)
        if floor is not None:
            floors.append(floor)
    return floors


def describe_floors(floors: list[Version]) -> str:
    """``1.7.29+, 2.0.7+ or 2.1.5+``."""
    names = [f"{v.upstream}+" for v in floors]
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " or " + names[-1]


def _minor(kube_version: str | Version) -> str:
    v = kube_version if isinstance(kube_version, Version) else parse(kube_version)
    return v.branch


def support_row(kube_version: str | Version, compat: Compatibility | None = None) -> SupportRow | None:
    """The support-table row for a Kubernetes version (``1.26`` or ``v1.26.3``), None when not listed."""
    minor = _minor(kube_version)
    for row in (compat or load_compatibility()).rows:
        if minor in row.minors:
            return row
    return None


def supported_containerd_for(kube_minor: str | Version, compat: Compatibility | None = None) -> list[Version]:
    """The lowest supported containerd on each branch for a Kubernetes minor ([] when the minor is not listed)."""
    row = support_row(kube_minor, compat)
    return list(row.containerd) if row else []


@dataclass(frozen=True)
class Combination:
    """Whether a containerd version is supported with a Kubernetes version, and why."""

    supported: bool | None  # None: the table cannot tell (minor or branch not listed, newer than the table)
    reason: str
    minimums: tuple[str, ...] = ()


def check_combination(
    kube_version: str | Version,
    containerd_version: str | Version,
    cri_api: str | None = None,
    compat: Compatibility | None = None,
) -> Combination:
    """Check a kubelet / containerd (/ CRI API) combination against the support table."""
    compat = compat or load_compatibility()
    kube = kube_version if isinstance(kube_version, Version) else parse(kube_version)
    ctd = containerd_version if isinstance(containerd_version, Version) else parse(containerd_version)
    row = support_row(kube, compat)
    if row is None:
        listed = [m for r in compat.rows for m in r.minors]
        return Combination(
            None, f"Kubernetes {kube.branch} is not in the support table ({listed[0]}–{listed[-1]})"
        )
    minimums = tuple(f"{v.upstream}+" for v in row.containerd)
    if cri_api and cri_api not in row.cri:
        return Combination(
            False,
            f"Kubernetes {kube.branch} needs CRI {'/'.join(row.cri)}; the runtime serves {cri_api}",
            minimums,
        )
    same_branch = [v for v in row.containerd if v.branch == ctd.branch]
    if same_branch:
        low = same_branch[0]
        if ctd >= low:
            return Combination(
                True, f"containerd {ctd.upstream} ≥ {low.upstream} on the {ctd.branch} branch", minimums
            )
        return Combination(
            False,
            f"Kubernetes {kube.branch} needs containerd {low.upstream}+ on the "
            f"{ctd.branch} branch; this is {ctd.upstream}",
            minimums,
        )
    if all(ctd > v for v in row.containerd):
        return Combination(
            None,
            f"containerd {ctd.branch} is newer than the branches listed for Kubernetes {kube.branch}",
            minimums,
        )
    return Combination(
        False, f"containerd {ctd.branch} is not supported with Kubernetes {kube.branch}", minimums
    )


@dataclass(frozen=True)
class EolStatus:
    component: str
    branch: str
    date: dt.date | None
    ended: bool
    lts: bool = False
    precision: str = "day"

    def describe(self) -> str:
        when = (
            "long ago"
            if self.date is None
            else (self.date.strftime("%b %Y") if self.precision == "month" else self.date.isoformat())
        )
        verb = "reached end of life" if self.ended else "reaches end of life"
        return f"{self.component} {self.branch}{' (LTS)' if self.lts else ''} {verb} {when}"


def eol(
    component: str, version: str | Version, today: dt.date | None = None, compat: Compatibility | None = None
) -> EolStatus | None:
    """End of life of ``version``'s branch: None when the table has no dates for it (or the component)."""
    compat = compat or load_compatibility()
    today = today or dt.date.today()
    v = version if isinstance(version, Version) else parse(version)
    entries = [e for e in compat.eols if e.component == component]
    if not entries:
        return None
    for e in entries:
        if e.branch == v.branch:
            return EolStatus(component, e.branch, e.date, today > e.date, e.lts, e.precision)
    oldest = min(entries, key=lambda e: parse(e.branch))
    if v < parse(oldest.branch + ".0-dev.0"):
        return EolStatus(component, v.branch, None, True)
    return None
