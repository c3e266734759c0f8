"""``nodedoc npd``: node-problem-detector's plugin protocol on the real lab — 0 ok, 1 a problem with one line
naming the worst finding and its subject, 2 when nodedoc could not tell — and never past --timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from test_probe_plugins import plugin_path  # noqa: F401  (a third-party probe that hangs)

from tui.commands.demo import break_pod_network, pause_removed

pytestmark = pytest.mark.lab


def npd(lab, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    node = [
        "--endpoint",
        lab.endpoint,
        "--containerd-root",
        str(lab.root),
        "--containerd-state",
        str(lab.state),
    ]
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *node, "npd", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_healthy_snapshots_answer_ok(lab) -> None:
    proc = npd(lab, "--probe", "snapshots", "--min-severity", "critical")
    assert (proc.returncode, proc.stdout.count("\n")) == (0, 1), proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok: nothing at or above critical (snapshots)")


def test_seed_002_is_a_problem_in_one_line_naming_its_subject(lab) -> None:
    with pause_removed(lab):
        short = npd(lab, "--probe", "snapshots", "--min-severity", "critical")
        long = npd(lab, "--probe", "snapshots", "--min-severity", "critical", "--max-length", "400")
    assert short.returncode == 1 and long.returncode == 1, short.stderr
    [line] = short.stdout.splitlines()
    assert len(line) <= 80 and line.startswith("CRITICAL snapshot.entrypoint-missing")
    [full] = long.stdout.splitlines()
    assert 80 < len(full) <= 400 and full.endswith(f"[{lab.image}]")  # the subject, named


def test_finding_filter_keeps_a_condition_to_its_own_family(lab, extra_pod) -> None:
    break_pod_network(lab, extra_pod)
    network = npd(lab, "--probe", "network", "--finding", "network.*")
    runc = npd(lab, "--probe", "runc", "--finding", "runc.init-blocked")
    assert network.returncode == 1 and "network.netns-ip-missing" in network.stdout
    assert extra_pod.name in npd(lab, "--probe", "network", "--max-length", "300").stdout
    assert runc.returncode == 0, runc.stdout


def test_no_runtime_is_unknown_not_ok(lab, tmp_path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--endpoint",
            f"unix://{tmp_path}/none.sock",
            "npd",
            "--probe",
            "runtime",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout.startswith("unknown: runtime"), proc.stdout + proc.stderr


def test_never_answers_later_than_its_timeout(lab, plugin_path) -> None:  # noqa: F811
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    started = time.monotonic()
    proc = npd(lab, "--probe", "demo-hang", "--timeout", "2", env=env)
    took = time.monotonic() - started
    assert proc.returncode == 2 and "did not answer within 2 s" in proc.stdout, proc.stdout + proc.stderr
    assert took < 2 + 15, f"{took:.1f} s"  # the deadline plus interpreter start on a loaded machine


def test_bad_options_are_one_line(lab) -> None:
    proc = npd(lab, "--probe", "nosuch")
    assert proc.returncode == 3 and len(proc.stderr.strip().splitlines()) == 1 and "nosuch" in proc.stderr
