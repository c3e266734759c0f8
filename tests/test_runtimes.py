"""The containerd builds a lab runs: the system's 1.6, Debian's 1.7 and 2.x fetched into the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import skip_or_fail
from fixtures.pipe_hog import soft_limit_held

from tui.cli import EXIT_CANNOT_RUN
from tui.lab import runtimes
from tui.lab.runtimes import PINS, SERIES, Pin, RuntimeFetchError, ensure, normalise


def _ensure_or_skip(series: str) -> runtimes.RuntimeBuild:
    if os.geteuid() != 0 and runtimes.cached_build(series) is None:
        skip_or_fail(f"containerd {series} is not cached and fetching it needs root")
    return ensure(series)


@pytest.mark.parametrize("series", SERIES)
def test_each_series_is_the_pinned_debian_build_and_runs_here(series: str) -> None:
    build = _ensure_or_skip(series)
    assert build.series == series
    # The pinned build, or Debian's own package of that series when the system has it (Debian 12's 1.6).
    assert build.version == PINS[series].version or (
        build.source == "system" and build.version.startswith(series + ".")
    )
    for binary in (build.containerd, build.ctr, build.shim):
        assert os.access(binary, os.X_OK), binary
    # The build's own binary says the same release (never the node's: this is the lab's copy).
    out = subprocess.run([str(build.containerd), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert build.upstream_version in out.stdout
    assert build.env({"PATH": "/usr/sbin:/usr/bin"})["PATH"] == f"{build.bin_dir}:/usr/sbin:/usr/bin"


def test_default_is_the_systems_containerd() -> None:
    system = ensure(None)
    assert system.source == "system"
    assert system.series in SERIES
    assert system.version.startswith(system.upstream_version)


@pytest.mark.parametrize("text,series", [("1.7", "1.7"), ("2.x", "2"), ("v2.1", "2"), ("system", None)])
def test_series_names(text: str, series: str | None) -> None:
    assert normalise(text) == series


def test_unknown_series_is_a_one_line_error() -> None:
    with pytest.raises(RuntimeFetchError, match=r"unknown containerd series '3'; choose one of 1.6, 1.7, 2"):
        normalise("3")
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "lab", "up", "/tmp/nd-never", "--containerd", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == EXIT_CANNOT_RUN
    assert "invalid choice: '3'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.root
def test_a_version_the_mirror_lacks_is_a_clear_error(tmp_path, monkeypatch) -> None:
    """A pin the mirror no longer carries: one line naming the version and what the mirror offers."""
    monkeypatch.setattr(runtimes, "CACHE", tmp_path)
    monkeypatch.setitem(PINS, "2", Pin("2", "sid", "9.9.9+ds1-1"))
    with pytest.raises(RuntimeFetchError) as caught:
        ensure("2")
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot fetch containerd 9.9.9+ds1-1 (Debian sid)" in message
    assert "the mirror offers only" in message and "2.1.9+ds1-5" in message
    assert not list(tmp_path.glob("containerd-*"))


@pytest.mark.lab
@pytest.mark.every_runtime
def test_check_on_a_healthy_lab_names_its_version_and_finds_nothing_wrong(lab) -> None:
    """The runtime probe and the rest, live on each series: CRI reports the build the lab runs, and a
    healthy lab gets no warning or critical (no false alarm on 1.7 or 2.x)."""
    with soft_limit_held():  # not while another test run has lowered the machine's pipe limit
        proc = subprocess.run(
            [sys.executable, "-m", "tui.cli", "--endpoint", lab.endpoint, "--containerd-root", str(lab.root),
             "--containerd-state", str(lab.state), "--containerd-config", str(lab.config_path),
             "check", "--format", "json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    doc = json.loads(proc.stdout)
    assert doc["runtime"]["version"].startswith(lab.build.upstream_version), doc["runtime"]
    serious = [f for f in doc["findings"] if f["severity"] in ("warning", "critical")]
    # Debian's own builds carry real known issues (runc 1.1.5's CVEs, containerd's): true of this node,
    # and each must be about the build the lab runs, never the system's containerd on a 1.7/2.x lab.
    known = [f for f in serious if f["id"] == "versions.known-issue"]
    for finding in known:
        component = finding["subject"]["component"]
        assert component in ("containerd", "runc"), finding
        if component == "containerd":
            assert lab.build.upstream_version in finding["summary"], finding["summary"]
    assert [(f["id"], f["summary"]) for f in serious if f not in known] == []
    assert proc.returncode == (
        0 if not serious else max(1 if f["severity"] == "warning" else 2 for f in serious)
    )


def test_lab_fetch_lists_each_build() -> None:
    """``nodedoc lab fetch`` (what scripts/install-deps runs) names each series' exact build and where it is."""
    for series in SERIES:
        _ensure_or_skip(series)
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "lab", "fetch"], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    for series in SERIES:
        build = ensure(series)
        assert f"containerd {series}: {build.version} ({build.source}) in {build.bin_dir}" in proc.stdout


@pytest.mark.lab
@pytest.mark.every_runtime
def test_the_lab_runs_its_own_builds_containerd_and_shim(lab) -> None:
    """containerd finds its shim on PATH: the lab puts the build's bin dir first, so a 1.7 or 2.x lab never
    runs Debian 12's shim (which would mix runtime versions on one node)."""
    from tui.lab import _shims_of

    assert Path(os.readlink(f"/proc/{lab.pid}/exe")) == lab.build.containerd.resolve()
    shims = _shims_of(lab.socket)
    assert len(shims) >= len(lab.pods)
    assert {Path(os.readlink(f"/proc/{pid}/exe")) for pid in shims} == {lab.build.shim.resolve()}
