"""Benchmark: whole-process times of the short commands against crictl-style baselines, on a 100-pod lab.

Every figure is a whole process (interpreter start-up included), the median of N runs, all from one run of
this script, each printed with wall and CPU seconds beside its baseline and target:
- floors: ``python -c pass`` and ``python -c 'import grpc'`` in the same interpreter (nothing in Python
  can start faster than the first; nothing that speaks CRI faster than the second);
- ``nodedoc --help`` (target 0.10 s wall);
- ``nodedoc pods`` (target 0.15 s wall) beside crictl's way of doing the same CRI calls: crictl is absent
  on Debian 12, so the baseline is a minimal CRI client process (our stubs and grpc, nothing else) for
  ``ListPodSandbox`` alone (what ``crictl pods`` prints, without IPs) and one more process per pod for its
  ``PodSandboxStatus`` (``crictl inspectp``: the IPs), as crictl does;
- ``nodedoc check --quick --format json`` (target 0.5 s wall), with each probe's own duration from the
  report of the last run.

Python's bytecode: an installed nodedoc (pip, the image) has its modules compiled once, at install; a
checkout run with ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` (as on this project's machines)
compiles every module it imports at every start, which costs ``check`` about a tenth of a second. So the
figures are taken both ways: "as this environment runs it" and "bytecode cached" (``PYTHONPYCACHEPREFIX``
in a temporary directory, written by one warm-up run: the benchmark's own files, never the node's).
The runc probe reads every process of the machine and the snapshots probe every overlay mount, other labs'
included: the script prints how many there are.

Usage: python benchmarks/startup.py [--pods 100] [--runs 5] [--lab DIR (an existing lab, left up)]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
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

Figure = tuple[float, float]


def whole(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """Wall and CPU seconds of one process (its children included), and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, timeout=120, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1, 2):  # check exits 1/2 for findings; 3 means it could not run
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), proc.stdout


def median(runs: int, argv: list[str], env: dict[str, str]) -> tuple[Figure, bytes]:
    """Median wall and median CPU seconds of ``runs`` runs (after one that warms the caches), and the
    output of the last run."""
    whole(argv, env)
    samples = [whole(argv, env) for _ in range(runs)]
    return (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)), samples[-1][
        2
    ]


def crictl_style(lab: Lab, pod_ids: list[str], env: dict[str, str]) -> Figure:
    """One process to list, then one process per pod for its status: wall and CPU of all of them."""
    wall = cpu = 0.0
    for argv in [[lab.endpoint]] + [[lab.endpoint, pod_id] for pod_id in pod_ids]:
        w, c, _out = whole([sys.executable, "-c", CRI_CALL, *argv], env)
        wall, cpu = wall + w, cpu + c
    return wall, cpu


def row(what: str, figure: Figure, baseline: str, target: float | None = None) -> None:
    """A figure's wall and CPU seconds (CPU is what a loaded machine does not inflate), its baseline, target."""
    verdict = ""
    if target is not None:
        verdict = f"target <= {target:.2f} s wall: {'met' if figure[0] <= target else 'NOT met'}"
    print(f"{what:<34} {figure[0]:7.3f} s wall {figure[1]:6.3f} s CPU   {baseline:<62} {verdict}")


def seconds(figure: Figure) -> str:
    return f"{figure[0]:.3f} s wall, {figure[1]:.3f} s CPU"


def machine() -> str:
    processes = sum(1 for name in os.listdir("/proc") if name.isdigit())
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
        overlays = sum(1 for line in mounts if " - overlay " in line)
    return f"{processes} processes and {overlays} overlay mounts on this machine"


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
    cache = Path(tempfile.mkdtemp(prefix="ndbench-pyc-", dir="/tmp"))
    try:
        nodedoc = [sys.executable, "-m", "tui.cli"]
        node = ["--endpoint", lab.endpoint, "--containerd-root", str(lab.root)]
        node += ["--containerd-state", str(lab.state)]
        with lab.client() as client:
            pod_ids = [s.id for s in client.list_pod_sandboxes()]
        here = dict(os.environ)
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(cache)
        compiled = "no __pycache__" if not any(ROOT.glob("probes/**/__pycache__")) else "with __pycache__"
        writes = "PYTHONDONTWRITEBYTECODE=1" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "writable"
        load = os.getloadavg()[0]
        print(
            f"{len(pod_ids)} pods; whole processes, median of {args.runs}; {machine()}; "
            f"load average {load:.1f}"
        )
        per_pod = crictl_style(lab, pod_ids, here)
        for label, env in ((f"as this environment runs it ({compiled}, {writes})", here),
                           ("bytecode cached (as an installed nodedoc runs)", cached)):  # fmt: skip
            floor, _ = median(args.runs, [sys.executable, "-c", "pass"], env)
            floor_grpc, _ = median(args.runs, [sys.executable, "-c", "import grpc"], env)
            list_only, _ = median(args.runs, [sys.executable, "-c", CRI_CALL, lab.endpoint], env)
            help_time, _ = median(args.runs, [*nodedoc, "--help"], env)
            pods_time, _ = median(args.runs, [*nodedoc, *node, "pods"], env)
            check_time, report = median(
                args.runs, [*nodedoc, *node, "check", "--quick", "--format", "json"], env
            )
            print(f"\n-- {label}")
            row("python -c pass (floor)", floor, "")
            row("python -c 'import grpc' (floor)", floor_grpc, "")
            row("nodedoc --help", help_time, f"floor: {seconds(floor)}", TARGETS["help"])
            row(
                "nodedoc pods", pods_time, f"crictl pods style, no IPs: {seconds(list_only)}", TARGETS["pods"]
            )
            if env is here:
                row("", pods_time, f"+ inspectp per pod (IPs): {seconds(per_pod)}")
            row("nodedoc check --quick", check_time, "(no crictl equivalent)", TARGETS["check"])
            probes = json.loads(report)["probes"]
            print(
                "  probes (last run, concurrent): "
                + ", ".join(f"{p['id']} {p['duration_ms']:.0f} ms" for p in probes)
            )
        print(f"\nload average {os.getloadavg()[0]:.1f} at the end")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if own_lab:
            Lab.down(directory, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
