"""Benchmark: whole-process times of the short commands against crictl-style baselines, on a 100-pod lab.

Every figure is a whole process (interpreter start-up included), the median of N runs, all from one run of
this script, each printed beside its baseline and target:
- floors: ``python -c pass`` and ``python -c 'import grpc'`` in the same interpreter (nothing in Python
  can start faster than the first; nothing that speaks CRI faster than the second);
- ``nodedoc --help`` (target 0.10 s);
- ``nodedoc pods`` (target 0.15 s) beside crictl's way of doing the same CRI calls: crictl is absent on
  Debian 12, so the baseline is a minimal CRI client process (our stubs and grpc, nothing else) for
  ``ListPodSandbox`` alone (what ``crictl pods`` prints, without IPs) and one more process per pod for its
  ``PodSandboxStatus`` (``crictl inspectp``: the IPs), as crictl does;
- ``nodedoc check --quick`` (target 0.5 s wall; CPU time printed too).
Usage: python benchmarks/startup.py [--pods 100] [--runs 5] [--lab DIR (an existing lab, left up)]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.lab import Lab  # noqa: E402

TARGETS = {"help": 0.10, "pods": 0.15, "check": 0.5}

#: A minimal CRI client, one process per call as crictl is: list the sandboxes, or one sandbox's status.
CRI_CALL = """
import sys
from probes.readers.cri.client import CriClient
client = CriClient(sys.argv[1])
if len(sys.argv) > 2:
    print(client.pod_sandbox_status(sys.argv[2]).status.network.ip)
else:
    print([s.id for s in client.list_pod_sandboxes()])
"""


def whole(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one process (its children included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1, 2):  # check exits 1/2 for findings; 3 means it could not run
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def median(runs: int, argv: list[str]) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``runs`` runs (after one that warms the page cache)."""
    whole(argv)
    samples = [whole(argv) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def crictl_style(lab: Lab, pod_ids: list[str]) -> tuple[float, float]:
    """One process to list, then one process per pod for its status: wall and CPU of all of them."""
    wall = cpu = 0.0
    for argv in [[lab.endpoint]] + [[lab.endpoint, pod_id] for pod_id in pod_ids]:
        w, c = whole([sys.executable, "-c", CRI_CALL, *argv])
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def row(what: str, figure: tuple[float, float], baseline: str, target: float | None = None) -> None:
    """A figure's wall and CPU seconds (CPU is what a loaded machine does not inflate), its baseline, target."""
    verdict = ""
    if target is not None:
        verdict = f"target <= {target:.2f} s wall: {'met' if figure[0] <= target else 'NOT met'}"
    print(f"{what:<34} {figure[0]:7.3f} s wall {figure[1]:6.3f} s CPU   {baseline:<58} {verdict}")


def seconds(figure: tuple[float, float]) -> str:
    return f"{figure[0]:.3f} s wall, {figure[1]:.3f} s CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lab", type=Path, help="an existing lab directory (not taken down)")
    args = parser.parse_args()
    own_lab = args.lab is None
    directory = args.lab or Path(tempfile.mkdtemp(prefix="ndbench-", dir="/tmp"))
    if own_lab:
        print(f"starting a lab with {args.pods} pods in {directory} ...", flush=True)
        lab = Lab.up(directory, pods=args.pods, log=lambda *_: None)
    else:
        lab = Lab.load(directory)
    try:
        nodedoc = [sys.executable, "-m", "tui.cli"]
        node = [
            "--endpoint",
            lab.endpoint,
            "--containerd-root",
            str(lab.root),
            "--containerd-state",
            str(lab.state),
        ]
        with lab.client() as client:
            pod_ids = [s.id for s in client.list_pod_sandboxes()]
        print(
            f"{len(pod_ids)} pods; whole processes, median of {args.runs}; load average {os.getloadavg()[0]:.1f}"
        )
        floor = median(args.runs, [sys.executable, "-c", "pass"])
        floor_grpc = median(args.runs, [sys.executable, "-c", "import grpc"])
        list_only = median(args.runs, [sys.executable, "-c", CRI_CALL, lab.endpoint])
        per_pod = crictl_style(lab, pod_ids)
        help_time = median(args.runs, [*nodedoc, "--help"])
        pods_time = median(args.runs, [*nodedoc, *node, "pods"])
        check_time = median(args.runs, [*nodedoc, *node, "check", "--quick", "--format", "json"])
        row("python -c pass (floor)", floor, "")
        row("python -c 'import grpc' (floor)", floor_grpc, "")
        row("nodedoc --help", help_time, f"floor: {seconds(floor)}", TARGETS["help"])
        row("nodedoc pods", pods_time, f"crictl pods style, no IPs: {seconds(list_only)}", TARGETS["pods"])
        row("", pods_time, f"+ inspectp per pod (IPs): {seconds(per_pod)}")
        row("nodedoc check --quick", check_time, "(no crictl equivalent)", TARGETS["check"])
    finally:
        if own_lab:
            Lab.down(directory, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
