"""The runbooks agree with the knowledge base: no version they recommend is affected by a warning or critical
known issue, and every containerd ↔ Kubernetes statement is the support table's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib

from probes.api import Severity
from probes.knowledge import known_issues
from probes.versions import parse
from tui.runbook import BUILTIN_DIR

RUNBOOKS = sorted(BUILTIN_DIR.glob("*.toml"))
COMPONENTS = ("containerd", "runc")
#: A version recommended as a floor: ``1.2.8+``, ``1.2.8 or later``, ``1.2.8 or newer``.
FLOOR = re.compile(r"\bv?(\d+\.\d+(?:\.\d+)?(?:-rc\.?\d+)?)(?:\+| or later\b| or newer\b| and later\b)")
#: The one way a runbook states support: "Kubernetes 1.26, 1.27 and 1.28 need containerd 1.7.0+ or 1.6.15+."
SUPPORT = re.compile(r"Kubernetes ((?:\d+\.\d+(?:, | and )?)+) needs? containerd ([^.;]*(?:\.\d[^.;]*)*)")


def strings(value: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from strings(item, f"{where}[{n}]")


def clauses(text: str) -> list[str]:
    """Sentences and clauses: split at '; ', newlines and a full stop that ends a sentence."""
    return [c for c in re.split(r";\s|\n|(?<=[a-z)])\.\s", " ".join(text.split("\n"))) if c.strip()]


def runbook_clauses() -> Iterator[tuple[str, str]]:
    for path in RUNBOOKS:
        for where, text in strings(tomllib.loads(path.read_text()), path.stem):
            for clause in clauses(text):
                yield where, clause


def recommendations(clause: str) -> Iterator[tuple[str, str]]:
    """(component, version) for every floor version a clause gives a component, outside support statements."""
    if SUPPORT.search(clause):
        return
    spans = [(m.start(), m.group()) for m in re.finditer(r"\b(containerd|runc)\b", clause)]
    for n, (start, component) in enumerate(spans):
        end = spans[n + 1][0] if n + 1 < len(spans) else len(clause)
        for match in FLOOR.finditer(clause[start:end]):
            yield component, match.group(1)


def blocking_issues(component: str, version: str) -> list[str]:
    return [
        m.issue.id
        for m in known_issues.known_issues_for(component, version)
        if m.affected and m.issue.severity.rank >= Severity.WARNING.rank
    ]


def test_runbooks_recommend_no_version_the_knowledge_base_marks_affected() -> None:
    seen, wrong = [], []
    for where, clause in runbook_clauses():
        for component, version in recommendations(clause):
            seen.append(f"{component} {version}")
            issues = blocking_issues(component, version)
            if issues:
                floor = known_issues.lowest_unaffected(component, parse(version).branch)
                wrong.append(
                    f"{where}: recommends {component} {version}+, affected by {', '.join(issues)} "
                    f"(lowest unaffected on {parse(version).branch}: {floor.upstream if floor else 'none'})"
                )
    assert not wrong, "\n".join(wrong)
    assert {"runc 1.2.8", "containerd 1.7.29", "containerd 2.0.7"} <= set(seen)  # it saw the upgrade advice


def test_knowledge_base_steps_recommend_no_version_it_flags() -> None:
    """The knowledge base's own steps say where an issue was fixed, never "upgrade to X+" with an X another of
    its issues affects (#7843's old "1.6.15+ / 1.5.17+ / 1.7.0+"); the versions probe names the real floor."""
    wrong = [
        f"{issue.id}: {step.text!r} recommends {component} {version}+ ({', '.join(blocking)})"
        for issue in known_issues.load().issues.values()
        for step in issue.remediation
        for clause in clauses(step.text)
        for component, version in recommendations(clause)
        if (blocking := blocking_issues(component, version))
    ]
    assert not wrong, "\n".join(wrong)


def test_support_statements_are_the_support_table() -> None:
    compat = known_issues.load_compatibility()
    checked, wrong = set(), []
    for where, clause in runbook_clauses():
        for match in SUPPORT.finditer(clause):
            minors = re.findall(r"\d+\.\d+", match.group(1))
            said = {parse(v).key() for v in re.findall(r"(\d+\.\d+(?:\.\d+)?)\+", match.group(2))}
            for minor in minors:
                row = known_issues.support_row(minor, compat)
                table = {v.key() for v in row.containerd} if row else set()
                checked.add(minor)
                if said != table:
                    listed = (
                        ", ".join(f"{v.upstream}+" for v in row.containerd) if row else "not in the table"
                    )
                    wrong.append(
                        f"{where}: says Kubernetes {minor} needs {match.group(2)!r}; the table: {listed}"
                    )
    assert not wrong, "\n".join(wrong)
    assert checked == {m for row in compat.rows for m in row.minors}  # every minor the table knows is advised


def test_every_version_advice_is_recognised() -> None:
    """A clause that ties Kubernetes or the kubelet to a containerd version must be a support statement the
    test above checks, so no compatibility advice escapes it."""
    loose = [
        f"{where}: {clause}"
        for where, clause in runbook_clauses()
        if re.search(r"\b(kubelet|Kubernetes) \d+\.\d+", clause)
        and re.search(r"containerd \d+\.\d+", clause)
        and not SUPPORT.search(clause)
    ]
    assert not loose, "\n".join(loose)


@pytest.mark.parametrize(
    ("clause", "expect"),
    [
        pytest.param("Upgrade runc to 1.0.0-rc94 or later", [("runc", "1.0.0-rc94")], id="or-later"),
        pytest.param(
            "containerd 1.6.15+ / 1.5.17+, runc 1.1.12+",
            [("containerd", "1.6.15"), ("containerd", "1.5.17"), ("runc", "1.1.12")],
            id="plus",
        ),  # noqa: E501
        pytest.param("Kubernetes 1.29 needs containerd 1.7.11+ or 1.6.27+", [], id="support-statement"),
        pytest.param("#7843 was fixed in 1.6.15 and 1.5.17", [], id="history-not-advice"),
    ],
)
def test_recommendations_are_found(clause: str, expect: list[tuple[str, str]]) -> None:
    assert list(recommendations(clause)) == expect
    found = [blocking_issues(c, v) for c, v in expect]
    assert all(found)  # each of these old floors is one the knowledge base would flag


def test_knowledge_base_flags_the_old_runc_advice() -> None:
    """The advice this test replaced: runc 1.1.12+ is affected by the 2025 CVEs."""
    assert set(blocking_issues("runc", "1.1.12")) >= {"CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"}
    assert Path(BUILTIN_DIR / "upgrade-runtime.toml").read_text().count("1.1.12") == 0
