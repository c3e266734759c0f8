"""Knowledge base entries for containerd 2.x: CVE-2025-47290 hit 2.1.0 alone (GHSA-cm76-qm8v-3j95)."""

from __future__ import annotations

import pytest

from probes.api import Severity
from probes.knowledge.known_issues import issue, known_issues_for


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        pytest.param("2.1.0", True, id="2.1.0"),
        pytest.param("2.1.0-rc.1", True, id="2.1.0-rc"),
        pytest.param("2.1.1", False, id="2.1.1-fixed"),
        pytest.param("2.1.9+ds1-5", False, id="debian-sid"),
        pytest.param("2.0.10", False, id="2.0-never"),
        pytest.param("1.7.24~ds1-6+deb13u1", False, id="1.7-never"),
    ],
)
def test_cve_2025_47290_is_2_1_0_only(version: str, affected: bool) -> None:
    matches = [m for m in known_issues_for("containerd", version) if m.issue.id == "CVE-2025-47290"]
    assert any(m.affected for m in matches) is affected


def test_cve_2025_47290_is_critical_with_the_advisory() -> None:
    entry = issue("CVE-2025-47290")
    assert entry.severity is Severity.CRITICAL
    assert (
        "https://github.com/containerd/containerd/security/advisories/GHSA-cm76-qm8v-3j95" in entry.references
    )
