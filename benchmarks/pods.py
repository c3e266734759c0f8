"""Benchmark: `nodedoc pods -o json` against the one-by-one loop an engineer would run.

Starts a lab with 100 pods (root, Debian containerd/runc/CNI), then measures, from one run each:
- nodedoc's listing: ListPodSandbox + ListContainers, then every PodSandboxStatus at once (the IPs need
  no verbose info, so `nodedoc pods` asks for none; the verbose listing of `--verbose` is shown too);
- the one-by-one loop (``crictl pods -q`` then ``crictl inspectp`` per pod): the same calls issued one
  after another over one connection, which is kinder to the loop than crictl's process per call;
- the whole `nodedoc pods -o json` command, interpreter start-up included.
Target: the listing at least 5x faster than the loop. Usage: python benchmarks/pods.py [--pods N]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.readers.cri.sandboxes import list_sandboxes  # noqa: E402
from tui.lab import Lab  # noqa: E402

TARGET = 5.0


def one_by_one(client) -> int:
    ids = [s.id for s in client.list_pod_sandboxes()]
    for sandbox_id in ids:
        client.pod_sandbox_status(sandbox_id, verbose=True)
    return len(ids)


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
            list_sandboxes(client)  # warm the channel and containerd's caches for both sides
            one_by_one(client)
            concurrent = best_of(lambda: list_sandboxes(client, verbose=False))
            concurrent_verbose = best_of(lambda: list_sandboxes(client, verbose=True))
            loop = best_of(lambda: one_by_one(client))
        command = best_of(
            lambda: subprocess.run(
                [sys.executable, "-m", "tui.cli", "pods", "--endpoint", lab.endpoint, "-o", "json"],
                check=True,
                capture_output=True,
            ),
            runs=3,
        )
        ratio = loop / concurrent
        print(f"pods:                           {args.pods}")
        print(f"nodedoc listing (concurrent):   {concurrent * 1000:8.1f} ms")
        print(
            f"nodedoc listing --verbose:      {concurrent_verbose * 1000:8.1f} ms  "
            f"({loop / concurrent_verbose:.2f}x faster than the loop)"
        )
        print(f"one-by-one loop (sequential):   {loop * 1000:8.1f} ms")
        print(f"nodedoc pods -o json (process): {command * 1000:8.1f} ms  (interpreter start-up included)")
        print(
            f"ratio loop / nodedoc:           {ratio:8.2f}x  (target >= {TARGET:g}x: "
            f"{'met' if ratio >= TARGET else 'NOT met'})"
        )
    finally:
        Lab.down(directory, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
