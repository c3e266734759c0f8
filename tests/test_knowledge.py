"""The knowledge base: version parsing, verdicts at range boundaries, support table, and malformed files."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from probes.api import NOT_TESTED, Severity
from probes.errors import KnowledgeBaseError
from probes.knowledge import known_issues
from probes.knowledge.known_issues import Verdict, known_issues_for
from probes.readers.host.packages import parse_debian_changelog
from probes.versions import VersionError, parse


@pytest.mark.parametrize(
    ("text", "release", "pre", "distribution"),
    [
        pytest.param("1.6.20~ds1", (1, 6, 20), None, "~ds1", id="debian-repack"),
        pytest.param("1.1.5+ds1-1+deb12u1", (1, 1, 5), None, "+ds1-1+deb12u1", id="debian-package"),
        pytest.param("v1.0.0-rc93", (1, 0, 0), ("rc", 93), "", id="runc-rc93"),
        pytest.param("1.7.0-beta.1", (1, 7, 0), ("beta", 1), "", id="beta"),
        pytest.param("v1.6.14-k3s1", (1, 6, 14), None, "-k3s1", id="k3s"),
        pytest.param("1.0.0~rc93+ds1-5", (1, 0, 0), ("rc", 93), "+ds1-5", id="debian-prerelease"),
        pytest.param("1.1.12-0-g51d5e946", (1, 1, 12), None, "", id="git-describe-not-distro"),
        pytest.param("1.6.28-3.1.el9", (1, 6, 28), None, "-3.1.el9", id="rpm"),
    ],
)
def test_parse(text: str, release: tuple[int, ...], pre: tuple[str, int] | None, distribution: str) -> None:
    v = parse(text)
    assert (v.release, v.pre, v.distribution) == (release, pre, distribution)
    assert v.is_distribution_build == bool(distribution)


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        pytest.param("1.0.0-rc93", "1.0.0-rc94", id="rc-numbers"),
        pytest.param("1.0.0-rc94", "1.0.0", id="rc-before-release"),
        pytest.param("1.7.0-beta.1", "1.7.0-rc.1", id="beta-before-rc"),
        pytest.param("1.6.9", "1.6.14", id="numeric-not-lexical"),
        pytest.param("1.6.14", "v1.6.15", id="v-prefix"),
    ],
)
def test_ordering(lower: str, higher: str) -> None:
    assert parse(lower) < parse(higher)
    assert not parse(higher) < parse(lower)


def test_not_a_version() -> None:
    with pytest.raises(VersionError, match="not a version"):
        parse("runc")


def _verdict(component: str, version: str, issue_id: str) -> Verdict | None:
    return next((m.verdict for m in known_issues_for(component, version) if m.issue.id == issue_id), None)


@pytest.mark.parametrize(
    ("component", "version", "issue_id", "verdict"),
    [
        pytest.param("containerd", "1.6.8", "containerd-7843", None, id="7843-before-introduced"),
        pytest.param("containerd", "1.6.9", "containerd-7843", Verdict.AFFECTED, id="7843-first-affected"),
        pytest.param("containerd", "1.6.14", "containerd-7843", Verdict.AFFECTED, id="7843-last-affected"),
        pytest.param("containerd", "1.6.15", "containerd-7843", Verdict.FIXED, id="7843-fixed"),
        pytest.param("containerd", "1.5.16", "containerd-7843", Verdict.AFFECTED, id="7843-1.5-affected"),
        pytest.param("containerd", "1.5.17", "containerd-7843", Verdict.FIXED, id="7843-1.5-fixed"),
        pytest.param("containerd", "1.7.0-beta.1", "containerd-7843", Verdict.AFFECTED, id="7843-beta"),
        pytest.param("containerd", "1.7.0", "containerd-7843", Verdict.FIXED, id="7843-1.7"),
        pytest.param("containerd", "v1.6.14-k3s1", "containerd-7843", Verdict.FIXED, id="7843-k3s-early-fix"),
        pytest.param("runc", "1.0.0-rc92", "runc-seccomp-pipe-deadlock", None, id="pipe-rc92"),
        pytest.param("runc", "1.0.0-rc93", "runc-seccomp-pipe-deadlock", Verdict.AFFECTED, id="pipe-rc93"),
        pytest.param("runc", "v1.0.0-rc93", "runc-seccomp-pipe-deadlock", Verdict.AFFECTED, id="pipe-v-rc93"),
        pytest.param("runc", "1.0.0-rc94", "runc-seccomp-pipe-deadlock", Verdict.FIXED, id="pipe-rc94"),
        pytest.param("runc", "1.1.5", "runc-seccomp-pipe-deadlock", Verdict.FIXED, id="pipe-1.1.5"),
        pytest.param("runc", "1.0.0-rc6", "CVE-2019-5736", Verdict.AFFECTED, id="5736-rc6"),
        pytest.param("runc", "1.0.0-rc7", "CVE-2019-5736", Verdict.FIXED, id="5736-rc7"),
        pytest.param("runc", "1.1.11", "CVE-2024-21626", Verdict.AFFECTED, id="21626-1.1.11"),
        pytest.param("runc", "1.1.12", "CVE-2024-21626", Verdict.FIXED, id="21626-1.1.12"),
        pytest.param("runc", "1.0.0-rc92", "CVE-2024-21626", None, id="21626-predates"),
        pytest.param("runc", "1.3.2", "CVE-2025-31133", Verdict.AFFECTED, id="31133-1.3.2"),
        pytest.param("runc", "1.3.3", "CVE-2025-31133", Verdict.FIXED, id="31133-1.3.3"),
        pytest.param("runc", "1.4.0-rc.2", "CVE-2025-31133", Verdict.AFFECTED, id="31133-1.4-rc2"),
        pytest.param("runc", "1.4.0-rc.3", "CVE-2025-31133", Verdict.FIXED, id="31133-1.4-rc3"),
        pytest.param("containerd", "1.6.0", "CVE-2022-23648", Verdict.AFFECTED, id="23648-1.6.0"),
        pytest.param("containerd", "1.6.1", "CVE-2022-23648", Verdict.FIXED, id="23648-1.6.1"),
        pytest.param("containerd", "1.4.12", "CVE-2022-23648", Verdict.AFFECTED, id="23648-1.4.12"),
    ],
)
def test_boundaries(component: str, version: str, issue_id: str, verdict: Verdict | None) -> None:
    assert _verdict(component, version, issue_id) == verdict


RUNC_CHANGELOG = """runc (1.1.5+ds1-1+deb12u1) bookworm-security; urgency=high

  * CVE-2024-21626: several container breakouts due to internally leaked fds

 -- A Maintainer <a@example.org>  Fri, 02 Feb 2024 21:53:05 +0800

runc (1.1.5+ds1-1) unstable; urgency=medium

  * New upstream version 1.1.5+ds1
    + CVE-2023-28642: AppArmor/SELinux bypass with symlinked /proc

 -- A Maintainer <a@example.org>  Wed, 29 Mar 2023 17:24:36 +0800
"""


def _record(version: str, changelog: str | None = RUNC_CHANGELOG) -> known_issues.PackageRecord:
    path = "/usr/share/doc/runc/changelog.Debian.gz"
    parsed = parse_debian_changelog(path, changelog) if changelog is not None else None
    return known_issues.PackageRecord(name="runc", version=version, changelog=parsed, changelog_path=path)


def _matches(
    version: str, package: known_issues.PackageRecord | None, kb=None
) -> dict[str, known_issues.Match]:
    return {m.issue.id: m for m in known_issues_for("runc", version, kb, package=package)}


def test_debian_changelog_fix_is_evidence_and_the_rest_stays_critical() -> None:
    found = _matches("1.1.5+ds1-1+deb12u1", _record("1.1.5+ds1-1+deb12u1"))
    leaky = found["CVE-2024-21626"]
    assert (
        leaky.verdict is Verdict.FIXED and leaky.evidence_source == "/usr/share/doc/runc/changelog.Debian.gz"
    )
    assert "1.1.5+ds1-1+deb12u1 (the installed one)" in leaky.evidence and "leaked fds" in leaky.evidence
    for cve in ("CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"):
        assert found[cve].affected and found[cve].issue.severity.value == "critical"
        assert "names no fix for " + cve in found[cve].distribution_note


def test_a_fix_in_a_later_revision_does_not_count_for_an_older_install() -> None:
    leaky = _matches("1.1.5+ds1-1", _record("1.1.5+ds1-1"), kb=_kb_without_fixed_builds())["CVE-2024-21626"]
    assert leaky.affected and "names no fix" in leaky.distribution_note


def test_without_a_changelog_the_verdict_keeps_its_severity() -> None:
    leaky = _matches("1.1.5+ds1-2", _record("1.1.5+ds1-2", changelog=None))["CVE-2024-21626"]
    assert leaky.affected and leaky.evidence is None
    assert "no /usr/share/doc/runc/changelog.Debian.gz on the node" in leaky.distribution_note
    assert "the last step below shows the package changelog" in leaky.distribution_note
    # That step is the package manager's, which downloads the changelog: printed as not run by the tests.
    step = known_issues.changelog_step(
        parse("1.1.5+ds1-2"), "runc", _record("1.1.5+ds1-2", changelog=None), "CVE-2024-21626"
    )
    assert step.command == "apt changelog runc | less"
    assert NOT_TESTED in step.text and not step.proven


def test_knowledge_base_fixed_build_is_evidence_with_its_reference() -> None:
    for build in ("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1+deb12u2"):
        leaky = _matches(build, None)["CVE-2024-21626"]
        assert leaky.verdict is Verdict.FIXED, build
        assert leaky.evidence_source == "https://security-tracker.debian.org/tracker/CVE-2024-21626"
    assert _matches("1.1.5", None)["CVE-2024-21626"].distribution_note is None


def _kb_without_fixed_builds() -> known_issues.KnowledgeBase:
    kb = known_issues.load()
    issues = {k: dataclasses.replace(v, fixed_builds=()) for k, v in kb.issues.items()}
    return known_issues.KnowledgeBase(path=kb.path, issues=issues)


@pytest.mark.parametrize(
    ("fixed", "version", "covered"),
    [
        pytest.param("1.6.14-k3s1", "v1.6.14+k3s1", True, id="k3s-other-separator"),
        pytest.param("1.6.14-k3s1", "1.6.14-k3s2", True, id="k3s-later-build"),
        pytest.param("1.6.14-k3s2", "1.6.14-k3s1", False, id="k3s-earlier-build"),
        pytest.param("1.6.14-k3s1", "1.6.13-k3s1", False, id="other-upstream"),
        pytest.param("1.6.14-k3s1", "1.6.14", False, id="upstream-build"),
        pytest.param("1.6.14-k3s1", "1.6.14-rke2r1", False, id="other-packager"),
        pytest.param("1.1.5+ds1-1+deb12u1", "1.1.5+ds1-1+deb12u10", True, id="debian-u10-after-u1"),
        pytest.param("1.1.5+ds1-1+deb12u2", "1.1.5+ds1-1+deb12u1", False, id="debian-u1-before-u2"),
    ],
)
def test_fixed_builds_compare_as_versions(fixed: str, version: str, covered: bool) -> None:
    assert known_issues.FixedBuild(parse(fixed)).covers(parse(version)) is covered


def test_every_entry_has_an_https_reference() -> None:
    for issue in known_issues.load().issues.values():
        assert issue.references, f"{issue.id} has no reference"
        assert all(ref.startswith("https://") for ref in issue.references), issue.id


@pytest.mark.parametrize(
    ("component", "branch", "expect"),
    [
        pytest.param("runc", "1.1", None, id="runc-1.1-has-no-clean-release"),
        pytest.param("runc", "1.2", "1.2.8", id="runc-1.2"),
        pytest.param("containerd", "1.6", None, id="containerd-1.6-no-release-has-the-2025-fixes"),
        pytest.param("containerd", "1.7", "1.7.29", id="containerd-1.7"),
        pytest.param("containerd", "2.0", "2.0.7", id="containerd-2.0"),
        pytest.param("containerd", "2.1", "2.1.5", id="containerd-2.1"),
    ],
)
def test_lowest_unaffected(component: str, branch: str, expect: str | None) -> None:
    found = known_issues.lowest_unaffected(component, branch)
    assert (found.upstream if found else None) == expect
    if found:
        blocking = [
            m
            for m in known_issues_for(component, found)
            if m.affected and m.issue.severity.rank >= Severity.WARNING.rank
        ]
        assert not blocking


@pytest.mark.parametrize(
    ("component", "version", "expect"),
    [
        pytest.param("containerd", "1.6.20", "1.7.29+, 2.0.7+, 2.1.5+, 2.2.0+ or 2.3.0+", id="from-1.6"),
        pytest.param("containerd", "2.1.4", "2.1.5+, 2.2.0+ or 2.3.0+", id="from-2.1"),
        pytest.param("runc", "1.1.5+ds1-1+deb12u1", "1.2.8+, 1.3.3+ or 1.4.0+", id="runc-from-1.1"),
    ],
)
def test_upgrade_floors(component: str, version: str, expect: str) -> None:
    """Per branch from the version's on, the first release no warning or critical issue affects."""
    floors = known_issues.upgrade_floors(component, version)
    assert known_issues.describe_floors(floors) == expect
    for floor in floors:
        assert not [
            m.issue.id
            for m in known_issues_for(component, floor)
            if m.affected and m.issue.severity.rank >= Severity.WARNING.rank
        ], floor


def test_packaged_knowledge_base_covers_runtime_facts() -> None:
    kb = known_issues.load()
    for issue_id in (
        "containerd-7843",
        "runc-seccomp-pipe-deadlock",
        "CVE-2019-5736",
        "CVE-2024-21626",
        "CVE-2025-31133",
        "CVE-2025-52565",
        "CVE-2025-52881",
        "CVE-2022-23648",
        "CVE-2020-15257",
        "CVE-2022-23471",
        "CVE-2022-24769",
        "CVE-2023-25153",
        "CVE-2023-25173",
        "GHSA-7ww5-4wqc-m92c",
        "CVE-2024-40635",
        "CVE-2024-25621",
        "CVE-2025-64329",
        "containerd-failed-to-reserve-sandbox-name",
        "containerd-shim-task-create-failed",
        "containerd-killmode",
        "containerd-deprecated-registry-config",
        "containerd-cri-v1alpha2",
        "cgroup-driver-mismatch",
        "kernel-may-detach-mounts",
        "kernel-overlay-missing",
    ):
        assert issue_id in kb.issues, issue_id
        assert kb.issues[issue_id].remediation


@pytest.mark.parametrize(
    ("kube", "containerd", "cri", "supported"),
    [
        pytest.param("v1.26.0", "1.6.14", None, False, id="seed001-1.26-with-1.6.14"),
        pytest.param("v1.26.0", "1.6.28", None, True, id="seed001-after-upgrade"),
        pytest.param("1.33.1", "2.0.3", None, False, id="1.33-needs-2.0.4"),
        pytest.param("1.33.1", "2.0.4", None, True, id="1.33-with-2.0.4"),
        pytest.param("1.30.0", "1.5.18", None, False, id="branch-not-listed"),
        pytest.param("1.26.0", "1.7.0", "v1alpha2", False, id="cri-v1alpha2"),
        pytest.param("1.26.0", "2.1.0", None, None, id="newer-branch-unknown"),
        pytest.param("1.40.0", "2.3.0", None, None, id="kube-not-listed"),
    ],
)
def test_combination(kube: str, containerd: str, cri: str | None, supported: bool | None) -> None:
    assert known_issues.check_combination(kube, containerd, cri).supported is supported


def test_supported_containerd_for() -> None:
    assert [v.raw for v in known_issues.supported_containerd_for("1.29")] == ["1.7.11", "1.6.27"]
    assert known_issues.supported_containerd_for("1.10") == []


@pytest.mark.parametrize(
    ("version", "today", "ended"),
    [
        pytest.param("1.6.20", dt.date(2025, 8, 23), False, id="1.6-last-day"),
        pytest.param("1.6.20", dt.date(2025, 8, 24), True, id="1.6-after"),
        pytest.param("1.4.13", dt.date(2020, 1, 1), True, id="older-than-listed"),
        pytest.param("2.3.0", dt.date(2026, 11, 23), False, id="2.3-lts"),
    ],
)
def test_eol(version: str, today: dt.date, ended: bool) -> None:
    status = known_issues.eol("containerd", version, today)
    assert status is not None and status.ended is ended


GOOD_ISSUE = """
[[issue]]
id = "{id}"
component = "runc"
kind = "version"
severity = "warning"
title = "t"
symptom = "s"
detection = "d"
affected = [{affected}]
references = ["https://example.org/x"]
[[issue.remediation]]
text = "upgrade"
command = "true"
untested = "shows-only"
"""


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        pytest.param(
            "schema = 1\n" + GOOD_ISSUE.format(id="x-1", affected='{ introduced = "1.0", fixed = "1.x" }'),
            r"issue 'x-1': affected\[0\].fixed is not a version: '1.x'",
            id="bad-version",
        ),
        pytest.param(
            "schema = 1\n" + GOOD_ISSUE.format(id="x-2", affected='{ introduced = "1.0" }'),
            r"issue 'x-2': affected\[0\]: needs exactly one of fixed, last_affected",
            id="open-range",
        ),
        pytest.param(
            "schema = 1\n" + GOOD_ISSUE.format(id="x-3", affected='{ introduced = "1.2", fixed = "1.1" }'),
            r"issue 'x-3': affected\[0\]: ends \(1.1\) before it starts",
            id="backwards",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-4", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                'severity = "warning"', 'severity = "bad"'
            ),
            r"issue 'x-4': severity 'bad' is not one of",
            id="severity",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-5", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                'title = "t"\n', ""
            ),
            r"issue 'x-5': missing field 'title'",
            id="missing-title",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-6", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                'title = "t"', 'titel = "t"\ntitle = "t"'
            ),
            r"issue 'x-6': unknown fields \['titel'\]",
            id="typo-field",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-7", affected='{ introduced = "1.0", fixed = "1.1" }') * 2,
            r"issue 'x-7': duplicate id",
            id="duplicate",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-8", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                '"https://example.org/x"', '"example.org"'
            ),
            r"issue 'x-8': reference 'example.org' is not an https URL",
            id="reference",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-9", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                'component = "runc"', 'component = "docker"'
            ),
            r"issue 'x-9': component 'docker' is not one of",
            id="component",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-10", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                'untested = "shows-only"\n', ""
            ),
            r"issue 'x-10': remediation\[0\] has a command, so it needs untested = one of",
            id="command-without-why",
        ),
        pytest.param(
            "schema = 1\n"
            + GOOD_ISSUE.format(id="x-11", affected='{ introduced = "1.0", fixed = "1.1" }').replace(
                '"shows-only"', '"proven-somewhere"'
            ),
            r"issue 'x-11': remediation\[0\] has a command, so it needs untested",
            id="unknown-why",
        ),
        pytest.param(
            "schema = 1\n[[issue]]\ncomponent = 'runc'\n", r"issue #1: missing field 'id'", id="no-id"
        ),
        pytest.param("schema = 2\n", r"schema = 2; this nodedoc reads schema = 1", id="schema"),
        pytest.param("schema = 1\n[[issue]\n", r"not valid TOML: .*line 2", id="toml-syntax"),
    ],
)
def test_malformed_knowledge_base(tmp_path: Path, body: str, expect: str) -> None:
    path = tmp_path / "kb.toml"
    path.write_text(body)
    with pytest.raises(KnowledgeBaseError, match=expect) as info:
        known_issues.load(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value).strip()


def test_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "kb.toml"
    path.write_text(
        "schema = 1\n" + GOOD_ISSUE.format(id="x-ok", affected='{ introduced = "1.0", fixed = "1.1" }')
    )
    kb = known_issues.load(path)
    assert [m.verdict for m in known_issues_for("runc", "1.0.5", kb)] == [Verdict.AFFECTED]


def test_malformed_compatibility(tmp_path: Path) -> None:
    path = tmp_path / "compat.toml"
    path.write_text('schema = 1\n[[kubernetes]]\nminors = ["1.30"]\ncontainerd = ["two"]\ncri = ["v1"]\n')
    with pytest.raises(KnowledgeBaseError, match=r"kubernetes 1.30: containerd is not a version: 'two'"):
        known_issues.load_compatibility(path)
