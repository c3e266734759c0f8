"""Benchmark: `nodedoc pods` against the one-by-one loop an engineer would run, doing the same work.

Starts a lab with 100 pods (root, Debian containerd/runc/CNI), then measures, from one run each (median of 5,
wall and CPU seconds of this process: the client's side; containerd's own CPU is not in it):
- nodedoc's listing with IPs: ListPodSandbox + ListContainers, then every non-verbose PodSandboxStatus at
  once (the IPs need no verbose info, so `nodedoc pods` asks for none);
- the loop that fetches the same IPs: the same ListPodSandbox + ListContainers, then one non-verbose
  PodSandboxStatus after another, building the same rows; over one connection, which is kinder to the loop
  than ``crictl inspectp``'s process per pod. Target: nodedoc at least 5x faster;
- `nodedoc pods --verbose` (pid, netns path, snapshot key, image): the non-verbose statuses at once, then
  those values read from containerd's state and meta.db (probes/readers/disk/sandbox_locations.py), verbose
  CRI only for a pod whose files are not there; against the loop of verbose statuses (``crictl inspectp``'s
  calls). Target: at least 3x. The lab's root and state are given, as ``--containerd-root`` and
  ``--containerd-state`` would; without them the command finds them with one more CRI call;
- the whole `nodedoc pods -o json` and `pods --verbose -o json` commands, interpreter start-up included
  (no baseline: figures alone).
Both sides of a pair must return the same rows, or the benchmark stops; so must the verbose listing read
from the files and the one asked of verbose CRI. Usage: python benchmarks/pods.py [--pods N] [--runs N]
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

from probes.node import NodeContext  # noqa: E402
from probes.readers.cri.sandboxes import list_sandboxes, view_of  # noqa: E402
from tui.lab import Lab  # noqa: E402

TARGET = 5.0
TARGET_VERBOSE = 3.0


def one_by_one(client, verbose: bool) -> list:
    """The same calls and rows as ``list_sandboxes``, one status after another."""
    items = client.list_pod_sandboxes()
    counts: dict[str, int] = {}
    for container in client.list_containers():
        counts[container.pod_sandbox_id] = counts.get(container.pod_sandbox_id, 0) + 1
    views = [view_of(i, client.pod_sandbox_status(i.id, verbose=verbose), counts.get(i.id, 0)) for i in items]
    views.sort(key=lambda v: (-v.created_at, v.namespace, v.name))
    return views


def rows(views: list) -> list[tuple]:
    return [(v.id, tuple(v.ips), v.containers, v.pid, v.netns_path, v.snapshot_key, v.image) for v in views]


def timed(fn, runs: int) -> tuple[float, float]:
    """Median wall and median CPU seconds (this process, all its threads) of ``runs`` calls."""
    samples = []
    for _ in range(runs):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - start, time.process_time() - cpu))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def process(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU seconds of a whole process."""
    samples = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        samples.append((time.perf_counter() - start, cpu))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def figure(what: str, value: tuple[float, float]) -> str:
    return f"{what:<46} {value[0] * 1000:8.1f} ms wall {value[1] * 1000:7.1f} ms CPU"


def ratio(what: str, loop: tuple[float, float], ours: tuple[float, float], target: float) -> str:
    wall, cpu = loop[0] / ours[0], loop[1] / ours[1] if ours[1] else float("inf")
    verdict = "met" if wall >= target else "NOT met"
    return f"{what:<46} {wall:8.2f}x wall {cpu:7.2f}x CPU   (target >= {target:g}x wall: {verdict})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="ndbench-", dir="/tmp"))
    print(f"starting a lab with {args.pods} pods in {directory} ...", flush=True)
    start = time.perf_counter()
    lab = Lab.up(directory, pods=args.pods, log=lambda *_: None)
    print(f"lab up in {time.perf_counter() - start:.1f}s")
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    try:
        with lab.client(timeout=30) as client:

            def listing(verbose: bool) -> list:
                return list_sandboxes(client, verbose=verbose, locate=node.sandbox_locations)

            for verbose in (False, True):  # warm the channel and containerd's caches; prove equal work
                listed, looped = rows(listing(verbose)), rows(one_by_one(client, verbose))
                if listed != looped or len(listed) != args.pods or not all(r[1] for r in listed):
                    print(f"the two sides differ (verbose={verbose}): not equal work", file=sys.stderr)
                    return 1
            if rows(listing(True)) != rows(list_sandboxes(client, verbose=True)):
                print("the verbose listing read from the files differs from verbose CRI's", file=sys.stderr)
                return 1
            located = len(node.sandbox_locations([p.id for p in lab.pods]))
            load = os.getloadavg()[0]
            concurrent = timed(lambda: listing(False), args.runs)
            loop = timed(lambda: one_by_one(client, verbose=False), args.runs)
            concurrent_verbose = timed(lambda: listing(True), args.runs)
            loop_verbose = timed(lambda: one_by_one(client, verbose=True), args.runs)
            cri_verbose = timed(lambda: list_sandboxes(client, verbose=True), args.runs)
        cli = [sys.executable, "-m", "tui.cli", "pods", "--endpoint", lab.endpoint, "-o", "json"]
        command = process(cli, args.runs)
        command_verbose = process([*cli, "--verbose"], args.runs)
        print(
            f"{args.pods} pods, same rows on both sides, every pod with an IP; {located} of {args.pods} "
            f"pods' verbose values read from the node's files; median of {args.runs}; load average "
            f"{load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        )
        print(figure("nodedoc listing with IPs (concurrent)", concurrent))
        print(figure("  baseline: loop fetching the IPs (sequential)", loop))
        print(ratio("  loop / nodedoc", loop, concurrent, TARGET))
        print(figure("nodedoc listing --verbose (files + statuses)", concurrent_verbose))
        print(figure("  baseline: loop with verbose statuses", loop_verbose))
        print(ratio("  loop / nodedoc, verbose", loop_verbose, concurrent_verbose, TARGET_VERBOSE))
        print(figure("  (verbose CRI statuses at once, as before)", cri_verbose))
        print(figure("nodedoc pods -o json (whole process)", command))
        print(figure("nodedoc pods --verbose -o json (whole process)", command_verbose))
    finally:
        Lab.down(directory, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
