"""Shared fixtures: the real lab node, and the rule that CI never silently skips what needs it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tui_snapshot import compare, snapshot_dir  # noqa: F401  (screen snapshots live under snapshots/)

from probes.errors import NodedocError
from tui.lab import Lab, runtimes

REQUIRE_LAB = os.environ.get("NODEDOC_REQUIRE_LAB") == "1"
REPO = Path(__file__).resolve().parent.parent


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; fail when NODEDOC_REQUIRE_LAB=1 (CI), so nothing hides."""
    if REQUIRE_LAB:
        pytest.fail(f"NODEDOC_REQUIRE_LAB=1 but {reason}")
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") and os.geteuid() != 0:
        skip_or_fail("this test needs root")


def _system_series() -> str:
    try:
        return runtimes.system_build().series
    except NodedocError:
        return "1.6"  # no containerd here: the lab says so when a test asks for it


SYSTEM_SERIES = _system_series()


def selected_runtimes() -> list[str]:
    """The containerd series ``every_runtime`` tests run on: ``NODEDOC_RUNTIMES=1.6,1.7,2`` (default: all)."""
    text = os.environ.get("NODEDOC_RUNTIMES", "").strip()
    if text in ("", "all"):
        return list(runtimes.SERIES)
    chosen: list[str] = []
    for part in text.split(","):
        try:
            series = runtimes.normalise(part) or SYSTEM_SERIES
        except NodedocError as exc:
            raise pytest.UsageError(f"NODEDOC_RUNTIMES: {exc}") from None
        if series not in chosen:
            chosen.append(series)
    return chosen


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test (or module) marked ``every_runtime`` that uses the lab runs once per selected containerd
    series; every other lab test runs on the system's containerd only."""
    if "lab" in metafunc.fixturenames and metafunc.definition.get_closest_marker("every_runtime"):
        series = selected_runtimes()
        ids = [f"containerd-{s}" for s in series]
        metafunc.parametrize("lab", series, indirect=True, ids=ids, scope="session")


class LabPool:
    """At most one lab per containerd series for the whole session, started when a test first needs it,
    all taken down at the end. A lab that cannot start is tried once; its tests skip (or fail in CI)."""

    def __init__(self) -> None:
        self.labs: dict[str, Lab] = {}
        self.errors: dict[str, str] = {}

    def get(self, series: str) -> Lab:
        if series not in self.labs and series not in self.errors:
            error = self._start(series)
            if error:
                self.errors[series] = error
        if series in self.errors:
            skip_or_fail(self.errors[series])
        return self.labs[series]

    def _start(self, series: str) -> str | None:
        containerd = None if series == SYSTEM_SERIES else series
        missing = Lab.missing_requirements(containerd)
        if missing:
            return "the lab cannot start here: missing " + "; ".join(missing)
        directory = Path(tempfile.mkdtemp(prefix=f"ndlab{series.replace('.', '')}-", dir="/tmp"))
        try:
            self.labs[series] = Lab.up(
                directory, pods=3, containers=True, log=lambda *_: None, containerd=containerd
            )
        except NodedocError as exc:
            return f"the containerd {series} lab did not start: {exc}"
        return None

    def close(self) -> None:
        for lab in self.labs.values():
            with contextlib.suppress(NodedocError):
                Lab.down(lab.dir, log=lambda *_: None)


@pytest.fixture(scope="session")
def lab_pool() -> Iterator[LabPool]:
    pool = LabPool()
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest, lab_pool: LabPool) -> Lab:
    """A real containerd node shared by the session: 3 pods, each with one container. On the system's
    containerd, or, for ``every_runtime`` tests, on each series in NODEDOC_RUNTIMES (``lab.build`` says
    which). Tests that change the lab put it back (or use ``extra_pod``)."""
    return lab_pool.get(getattr(request, "param", SYSTEM_SERIES))


@pytest.fixture
def extra_pod(lab: Lab) -> Iterator:
    """A pod of its own for a test that breaks it; removed afterwards so the shared lab stays healthy."""
    pod = lab.run_pod(f"scratch-{os.urandom(3).hex()}", container=False)
    try:
        yield pod
    finally:
        lab.remove_pod(pod.id)
