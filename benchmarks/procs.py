"""How long the runc probe's /proc scan takes next to `ps -eo pid,ppid,comm,wchan` plus `ls -l /proc/*/fd`.

Starts N extra idle processes (default 5,000 `sleep`s), then times one run of each over the same process
table and prints the figures and the ratio. The scan reads more than the pair: every process's stat and
pipe fds, each pipe's capacity and fill, and cmdline, wchan, credentials and fd ends of the runtime's.

    python benchmarks/procs.py [--extra 5000]

Every process started here is killed by pid before it exits.
"""

from __future__ import annotations

import argparse
import glob
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.readers.procfs.procs import scan_runtime  # noqa: E402


def start_idle(count: int) -> list[subprocess.Popen]:
    procs = []
    for _ in range(count):
        procs.append(
            subprocess.Popen(
                ["sleep", "3600"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        )
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait()


def timed(run) -> tuple[float, object]:
    start = time.perf_counter()
    value = run()
    return (time.perf_counter() - start) * 1000, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=int, default=5000, help="idle processes to add (default 5000)")
    args = parser.parse_args()
    print(f"starting {args.extra} idle processes ...", file=sys.stderr)
    procs = start_idle(args.extra)
    try:
        time.sleep(1.0)
        ps_ms, _ = timed(
            lambda: subprocess.run(
                ["ps", "-eo", "pid,ppid,comm,wchan"], stdout=subprocess.DEVNULL, check=False
            )
        )
        fd_dirs = sorted(glob.glob("/proc/[0-9]*/fd"))
        ls_ms, _ = timed(
            lambda: subprocess.run(
                ["ls", "-l", *fd_dirs], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
            )
        )
        scan_ms, scan = timed(scan_runtime)
    finally:
        stop(procs)
    pair = ps_ms + ls_ms
    print(
        f"processes scanned        {scan.scanned}  (+{args.extra} idle; {scan.vanished} vanished, "
        f"{scan.fds_unreadable} with unreadable fds)"
    )
    print(f"pipes measured           {scan.pipes}; runtime processes {len(scan.processes)}")
    print(f"nodedoc scan_runtime     {scan_ms:8.1f} ms")
    print(f"ps -eo pid,ppid,comm,wchan {ps_ms:6.1f} ms")
    print(f"ls -l /proc/*/fd         {ls_ms:8.1f} ms  ({len(fd_dirs)} directories)")
    print(f"ratio scan / (ps + ls)   {scan_ms / pair:8.2f}  (target <= 1.00, one run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
