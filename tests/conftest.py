"""Shared fixtures: the real lab node, and the rule that CI never silently skips what needs it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from tui_snapshot import compare, snapshot_dir  # noqa: F401  (screen snapshots live under snapshots/)

from tui.lab import Lab

REQUIRE_LAB = os.environ.get("NODEDOC_REQUIRE_LAB") == "1"

# Property-based tests (tests/test_fuzz.py and others): "ci" is the bounded budget every run pays, the same
# examples each time (derandomized, so a failure reproduces); "long" is scripts/fuzz's, random and wide.
# Choose with NODEDOC_HYPOTHESIS_PROFILE. Each case's own 5 s limit is checked by tests/fuzzing.exercise.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
settings.register_profile(
    "ci", max_examples=250, deadline=None, derandomize=True, database=None, suppress_health_check=_SLOW_OK
)
settings.register_profile("long", max_examples=1_000_000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("NODEDOC_HYPOTHESIS_PROFILE", "ci"))
REPO = Path(__file__).resolve().parent.parent


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail when NODEDOC_REQUIRE_LAB=1 (CI), so nothing hides."""
    if REQUIRE_LAB:
        pytest.fail(f"NODEDOC_REQUIRE_LAB=1 but {reason}")
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        skip_or_fail("this test needs root")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """One real containerd node for the whole test session: 3 pods, each with one container."""
    missing = Lab.missing_requirements()
    if missing:
        skip_or_fail("the lab cannot start here: missing " + "; ".join(missing))
    directory = Path(tempfile.mkdtemp(prefix="ndlab-", dir="/tmp"))
    started = Lab.up(directory, pods=3, containers=True, log=lambda *_: None)
    try:
        yield started
    finally:
        Lab.down(directory, log=lambda *_: None)


@pytest.fixture
def extra_pod(lab: Lab) -> Iterator:
    """A pod of its own for a test that breaks it; removed afterwards so the shared lab stays healthy."""
    pod = lab.run_pod(f"scratch-{os.urandom(3).hex()}", container=False)
    try:
        yield pod
    finally:
        lab.remove_pod(pod.id)
