"""Shared fixtures: the real lab node, and the rule that CI never silently skips what needs it."""

from __future__ import annotations

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
from tui_snapshot import compare, snapshot_dir  # noqa: F401  (screen snapshots live under snapshots/)

from tui.lab import Lab

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
