"""Shared fixtures: the real lab node, and the rule that CI never silently skips what needs it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from tui_snapshot import compare, snapshot_dir  # noqa: F401  (screen snapshots live under snapshots/)

from probes.errors import NodedocError
from tui.lab import Lab, runtimes

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


# -- nodedoc's kubectl-debug image, built once for the session (tests/test_image.py, tests/test_deploy.py) --


def build_image_archive(output: Path) -> str:
    """scripts/build-image into ``output``; the manifest digest (about half a minute: mmdebstrap, pip)."""
    for tool in ("mmdebstrap", "skopeo"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} is missing (scripts/install-deps installs it)")
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/build-image"), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1700000000"},
    )
    assert proc.returncode == 0, proc.stderr
    return index_of(output)["manifests"][0]["digest"]


def index_of(archive: Path) -> dict:
    with tarfile.open(archive) as tar:
        return json.load(tar.extractfile("index.json"))


def blob(archive: Path, digest: str) -> bytes:
    with tarfile.open(archive) as tar:
        return tar.extractfile("blobs/sha256/" + digest.removeprefix("sha256:")).read()


@pytest.fixture(scope="session")
def nodedoc_image(tmp_path_factory) -> tuple[Path, str]:
    """(archive, manifest digest) of the image ``scripts/build-image`` builds from this checkout."""
    archive = tmp_path_factory.mktemp("image") / "nodedoc-image.tar"
    return archive, build_image_archive(archive)


def ctr(lab: Lab, namespace: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``ctr`` against the lab's containerd in ``namespace`` (not k8s.io: the CRI never sees what a test puts
    there)."""
    return subprocess.run(
        ["ctr", "--address", str(lab.socket), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
