"""Benchmark: `nodedoc pods` against the one-by-one loop an engineer would run, doing the same work.

Starts a lab with 100 pods (root, Debian containerd/runc/CNI), then measures, from one run each (best of 3):
- nodedoc's listing with IPs: ListPodSandbox + ListContainers, then every non-verbose PodSandboxStatus at
  once (the IPs need no verbose info, so `nodedoc pods` asks for none);
- the loop that fetches the same IPs: the same ListPodSandbox + ListContainers, then one non-verbose
  PodSandboxStatus after another, building the same rows; over one connection, which is kinder to the loop
  than ``crictl inspectp``'s process per pod. This pair is the headline ratio;
- the same pair with verbose statuses (`nodedoc pods --verbose` / ``crictl inspectp``: pid, netns, snapshot);
- the whole `nodedoc pods -o json` command, interpreter start-up included (no baseline: a figure alone).
Both sides of a pair must return the same rows, or the benchmark stops. Target: the listing at least 5x
faster than the loop. Usage: python benchmarks/pods.py [--pods N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.readers.cri.sandboxes import list_sandboxes, view_of  # noqa: E402
from tui.lab import Lab  # noqa: E402

TARGET = 5.0


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
    return [(v.id, tuple(v.ips), v.containers, v.pid, v.netns_path, v.snapshot_key) for v in views]


def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="ndbench-", dir="/tmp"))
    print(f"starting a lab with {args.pods} pods in {directory} ...", flush=True)
    start = time.perf_counter()
    lab = Lab.up(directory, pods=args.pods, log=lambda *_: None)
    print(f"lab up in {time.perf_counter() - start:.1f}s")
    try:
        with lab.client(timeout=30) as client:
            for verbose in (False, True):  # warm the channel and containerd's caches; prove equal work
                listed, looped = (
                    rows(list_sandboxes(client, verbose=verbose)),
                    rows(one_by_one(client, verbose)),
                )
                if listed != looped or len(listed) != args.pods or not all(r[1] for r in listed):
                    print(f"the two sides differ (verbose={verbose}): not equal work", file=sys.stderr)
                    return 1
            concurrent = best_of(lambda: list_sandboxes(client, verbose=False))
            loop = best_of(lambda: one_by_one(client, verbose=False))
            concurrent_verbose = best_of(lambda: list_sandboxes(client, verbose=True))
            loop_verbose = best_of(lambda: one_by_one(client, verbose=True))
        command = best_of(
            lambda: subprocess.run(
                [sys.executable, "-m", "tui.cli", "pods", "--endpoint", lab.endpoint, "-o", "json"],
                check=True,
                capture_output=True,
            ),
            runs=3,
        )
        ratio = loop / concurrent
        print(
            f"pods:                                  {args.pods} (same rows on both sides, every pod with an IP)"
        )
        print(f"nodedoc listing with IPs (concurrent): {concurrent * 1000:8.1f} ms")
        print(f"loop fetching the IPs (sequential):    {loop * 1000:8.1f} ms")
        print(
            f"ratio loop / nodedoc:                  {ratio:8.2f}x  (target >= {TARGET:g}x: "
            f"{'met' if ratio >= TARGET else 'NOT met'})"
        )
        print(f"nodedoc listing --verbose:             {concurrent_verbose * 1000:8.1f} ms")
        print(f"loop with verbose statuses:            {loop_verbose * 1000:8.1f} ms")
        print(f"ratio, verbose:                        {loop_verbose / concurrent_verbose:8.2f}x")
        print(
            f"nodedoc pods -o json (process):        {command * 1000:8.1f} ms  (interpreter start-up included)"
        )
    finally:
        Lab.down(directory, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
