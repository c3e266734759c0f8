"""Benchmark: the troubleshooter on a lab node with many pods (needs root; starts and removes its own lab).

Figures, from a fresh child process per run (headless Textual, the same App and screens):
- launch → dashboard showing runtime data (process start, imports included); target < 1.5 s;
- p → pods table with every pod (the list the dashboard already read); target < 0.5 s;
- p → pods table re-read from the runtime (the refresh p starts), for honesty;
- peak memory (max RSS of the child); target < 150 MB.

Usage: python benchmarks/tui.py [--pods 200] [--runs 3] [--dir /tmp/ndbench-tui] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import time
t0 = time.monotonic()
import asyncio, json, resource, sys
from probes.node import NodeContext
from tui.app import NodedocApp
from tui.session import NodeSession
from textual.widgets import DataTable

endpoint, pods = sys.argv[1], int(sys.argv[2])

async def until(pilot, cond, limit=60.0):
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > limit:
            raise SystemExit("timed out")
        await asyncio.sleep(0.005)

async def main():
    app = NodedocApp(NodeSession(NodeContext(endpoint=endpoint)), heartbeat=0)
    out = {}
    async with app.run_test(size=(120, 40)) as pilot:
        dash = app.screen
        await until(pilot, lambda: app.runtime_state == "connected" and dash.query_one("#runtime-panel").content != "loading…")
        out["first_data_s"] = time.monotonic() - t0
        await until(pilot, lambda: len(app.session.last_sandboxes) == pods)
        if "--idle" in sys.argv:
            await app.workers.wait_for_complete()
        t1 = time.monotonic()
        await pilot.press("p")
        screen = app.screen
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == pods)
        out["pods_table_s"] = time.monotonic() - t1
        await until(pilot, lambda: not screen.loading_now and not table.has_class("-stale"))
        out["pods_reread_s"] = time.monotonic() - t1
        await app.workers.wait_for_complete()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))

asyncio.run(main())
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ndbench-tui"))
    parser.add_argument(
        "--idle", action="store_true", help="press p only once the dashboard's probes are done"
    )
    parser.add_argument("--keep", action="store_true", help="leave the lab running afterwards")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    from tui.lab import Lab

    if (args.dir / "lab.json").exists():
        lab = Lab.load(args.dir)
    else:
        shutil.rmtree(args.dir, ignore_errors=True)
        print(f"starting a lab with {args.pods} pods in {args.dir}…", flush=True)
        lab = Lab.up(args.dir, pods=args.pods, containers=False, log=lambda *_: None)
    try:
        runs = []
        for _ in range(args.runs):
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    CHILD,
                    lab.endpoint,
                    str(len(lab.pods)),
                    *(["--idle"] if args.idle else []),
                ],
                capture_output=True,
                text=True,
                cwd=repo,
                timeout=300,
            )
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        for key, target, unit in (
            ("first_data_s", 1.5, "s"),
            ("pods_table_s", 0.5, "s"),
            ("pods_reread_s", None, "s"),
            ("peak_rss_mb", 150, "MB"),
        ):
            values = [r[key] for r in runs]
            verdict = "" if target is None else (" ok" if max(values) < target else f" OVER target {target}")
            print(
                f"{key:<14} median {statistics.median(values):7.3f} {unit}  max {max(values):7.3f} {unit}"
                f"  (target {target or '-'}{unit if target else ''}){verdict}"
            )
        print(f"{len(lab.pods)} pods, {args.runs} runs")
    finally:
        if not args.keep:
            Lab.down(args.dir, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
