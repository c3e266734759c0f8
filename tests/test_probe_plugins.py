"""Probes are found through entry points, run concurrently, and each failure stays its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = """
import time
from probes.api import Need, Probe, Severity


class GoodProbe(Probe):
    id = "demo-good"
    title = "Demo good"
    description = "always finds one info finding"

    def run(self, node):
        return [self.finding("demo.hello", Severity.INFO, "Hello from a plugin", "installed separately")]


class BoomProbe(Probe):
    id = "demo-boom"
    title = "Demo boom"
    description = "raises"

    def run(self, node):
        raise RuntimeError("plugin exploded")


class SlowProbe(Probe):
    id = "demo-slow"
    title = "Demo slow"
    description = "hangs past its timeout"
    timeout = 0.5

    def run(self, node):
        time.sleep(30)
        return []


class HangingProbe(Probe):
    id = "demo-hang"
    title = "Demo hang"
    description = "hangs well inside its own (long) timeout: what a caller's deadline must cut short"
    timeout = 120

    def run(self, node):
        time.sleep(60)
        return []


class NeedyProbe(Probe):
    id = "demo-needy"
    title = "Demo needy"
    description = "needs a live runtime"
    needs = frozenset({Need.CRI})

    def run(self, node):
        return []
"""


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    """Install a tiny third-party probe distribution (with pip) into a directory of its own."""
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "nodedoc_demo_probes.py").write_text(PLUGIN)
    (src / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "nodedoc-demo-probes"
        version = "0.0.1"
        [tool.setuptools]
        py-modules = ["nodedoc_demo_probes"]
        [project.entry-points."nodedoc.probes"]
        demo-good = "nodedoc_demo_probes:GoodProbe"
        demo-boom = "nodedoc_demo_probes:BoomProbe"
        demo-slow = "nodedoc_demo_probes:SlowProbe"
        demo-needy = "nodedoc_demo_probes:NeedyProbe"
        demo-hang = "nodedoc_demo_probes:HangingProbe"
        demo-broken = "nodedoc_demo_probes_missing:Nothing"
    """)
    )
    target = tmp_path_factory.mktemp("plugin-site")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return target


def check(plugin_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=60, env=env
    )


def test_each_failure_is_its_own_status_and_the_others_still_report(plugin_path):
    proc = check(
        plugin_path,
        "--endpoint",
        "unix:///nonexistent/cri.sock",
        "check",
        "--format",
        "json",
        *[
            a
            for p in ("demo-good", "demo-boom", "demo-slow", "demo-needy", "demo-broken")
            for a in ("--probe", p)
        ],
    )
    doc = json.loads(proc.stdout)
    status = {p["id"]: (p["status"], p["reason"]) for p in doc["probes"]}
    assert status["demo-good"] == ("ok", "")
    assert status["demo-boom"] == ("error", "RuntimeError: plugin exploded")
    assert status["demo-slow"] == ("error", "timed out after 0.5s")
    assert (
        status["demo-needy"][0] == "skipped"
        and "no socket at /nonexistent/cri.sock" in status["demo-needy"][1]
    )
    assert status["demo-broken"][0] == "error" and "could not load probe" in status["demo-broken"][1]
    assert [f["id"] for f in doc["findings"]] == ["demo.hello"]
    # Only info was found, but four probes could not run: the verdict is unknown, never an all-clear.
    assert proc.returncode == 3
    assert doc["verdict"]["unknown"] is True and doc["verdict"]["worst"] == "info"
    assert [p["id"] for p in doc["verdict"]["could_not_run"]] == [
        "demo-boom",
        "demo-slow",
        "demo-needy",
        "demo-broken",
    ]
    assert {p["id"]: p["could_not_run"] for p in doc["probes"]}["demo-good"] is False
    assert all(p["duration_ms"] >= 0 for p in doc["probes"])
    slow = next(p for p in doc["probes"] if p["id"] == "demo-slow")
    assert 400 <= slow["duration_ms"] < 5000


def test_could_not_run_is_as_loud_as_a_critical_in_text(plugin_path):
    """The text report puts the unknown verdict first and never says "No problems found." alone."""
    args = ("--endpoint", "unix:///nonexistent/cri.sock", "check", "--probe", "demo-good", "--probe")
    proc = check(plugin_path, *args, "demo-boom")
    assert proc.returncode == 3
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("UNKNOWN  1 probe could not run: demo-boom: the verdict is unknown")
    assert "demo-boom: RuntimeError: plugin exploded" in lines[2]
    assert "No problems found." not in lines and "No problems found by the probes that ran." in lines
    clean = check(plugin_path, *args, "demo-good")
    assert clean.returncode == 0 and "No problems found." in clean.stdout.splitlines()


def test_plugins_are_listed_by_name_without_being_imported(plugin_path):
    code = (
        "import sys; from probes.registry import available; ids = list(available()); "
        "print(ids); print('nodedoc_demo_probes' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    ids, imported = proc.stdout.splitlines()
    assert "demo-good" in ids and "network" in ids and "runtime" in ids
    assert imported == "False"


def test_unknown_probe_is_a_one_line_error():
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "check", "--probe", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith("nodedoc: unknown probe 'nope'") and proc.stderr.count("\n") == 1


def test_probes_package_never_imports_textual():
    code = (
        "import importlib, pkgutil, sys, probes, probes.builtin\n"
        "for m in pkgutil.walk_packages(probes.__path__, 'probes.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] == 'textual'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
