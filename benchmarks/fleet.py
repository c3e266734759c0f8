"""How long `nodedoc fleet` takes to merge 1,000 node reports, next to only parsing the same files.

Starts a lab with seed 002 injected, takes its real `nodedoc report --format json` (about 150 KB, with the
runtime's facts), and writes N copies that differ as a fleet does: node names, three containerd builds, a
third of the nodes with the damage, some with a probe that could not run. Then times one whole
`nodedoc fleet DIR --format json` process against the floor: one Python process that only reads and parses
every file (`json.load`), no grouping and no output. Also times `nodedoc npd` for each rule of
deploy/nodedoc-monitor.json on the lab (what NPD pays every 30 s per rule).

    python benchmarks/fleet.py [--nodes 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tui.commands.demo import pause_removed  # noqa: E402
from tui.lab import Lab  # noqa: E402

PARSE_ONLY = "import json,sys,pathlib; [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob('*.json'))]"


def whole(cmd: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the child, result) of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def fan_out(template: dict, out: Path, count: int) -> None:
    rng = random.Random(7)
    builds = ["1.6.20~ds1", "1.7.24~ds1", "2.1.9+ds1"]
    for n in range(count):
        doc = json.loads(json.dumps(template))
        doc["node"]["name"] = f"node-{n:04d}"
        build = builds[n % 3]
        doc["runtime"]["version"] = build
        doc["components"]["containerd"] = f"{build} (/usr/bin/containerd)"
        if n % 3:  # two nodes in three are healthy
            doc["findings"] = [f for f in doc["findings"] if not f["id"].startswith("snapshot.")]
        if rng.random() < 0.02:
            doc["verdict"] = {"could_not_run": [{"id": "snapshots", "reason": "timed out"}]}
        (out / f"node-{n:04d}.json").write_text(json.dumps(doc))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--skip-npd", action="store_true", help="only the fleet merge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nodedoc-bench-fleet-") as tmp:
        work = Path(tmp)
        lab = Lab.up(work / "lab", pods=10, containers=True, log=lambda *_: None)
        try:
            node = [
                "--endpoint",
                lab.endpoint,
                "--containerd-root",
                str(lab.root),
                "--containerd-state",
                str(lab.state),
            ]
            rules = json.loads((REPO / "deploy/nodedoc-monitor.json").read_text())["rules"]
            print("nodedoc npd per rule, whole process, lab with 10 pods (no layer verification):")
            for rule in rules[:0] if args.skip_npd else rules:
                args_ = [a for a in rule["args"] if a not in ("--host-root", "/host")]
                times = [whole([sys.executable, "-m", "tui.cli", *node, *args_]) for _ in range(5)]
                walls = sorted(t[0] for t in times)
                cpus = sorted(t[1] for t in times)
                print(
                    f"  {rule['condition']:32} median {walls[2]:.2f} s wall, {cpus[2]:.2f} s CPU (exit {times[0][2].returncode})"
                )
            with pause_removed(lab):
                _, _, proc = whole([sys.executable, "-m", "tui.cli", *node, "report", "--format", "json"])
            template = json.loads(proc.stdout)
        finally:
            Lab.down(work / "lab", log=lambda *_: None)
        reports = work / "reports"
        reports.mkdir()
        fan_out(template, reports, args.nodes)
        size = sum(p.stat().st_size for p in reports.iterdir()) / 2**20
        fleet_wall, fleet_cpu, merged = whole(
            [sys.executable, "-m", "tui.cli", "fleet", "--format", "json", str(reports)]
        )
        parse_wall, _, _ = whole([sys.executable, "-c", PARSE_ONLY, str(reports)])
        doc = json.loads(merged.stdout)
        print(
            f"nodedoc fleet, {args.nodes} reports ({size:.0f} MiB): {fleet_wall:.2f} s wall, {fleet_cpu:.2f} s CPU, "
            f"{len(doc['groups'])} groups, {len(doc['not_checked'])} not checked (target < 2 s)"
        )
        print(
            f"baseline, one process parsing the same files: {parse_wall:.2f} s; ratio {fleet_wall / parse_wall:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
