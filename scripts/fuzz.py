"""Long fuzzing by hand: the CI fuzz targets (tests/fuzzing.py) with random seeds for as long as you like.

Runs each target in turn for ``--seconds`` (or ``--examples``), under hypothesis's "long" profile (random,
not the CI's fixed examples), and prints per target the cases per second, the outcomes (``data`` or the
NodedocError subclass raised), the slowest case and the largest allocation. A case that lets anything
but a NodedocError escape, runs past 5 s or allocates more than 128 MiB stops the run with hypothesis's
shrunk reproducer: add it to tests/test_fuzz.py as a regression case, then fix the reader.

Usage: python scripts/fuzz.py [--seconds 600] [--examples N] [--target NAME ...] [--no-memory]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("NODEDOC_HYPOTHESIS_PROFILE", "long")

import fuzzing  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


#: Cases per hypothesis run; runs repeat (each with a new random seed) until the target's time is up.
BATCH = 200


def run_target(target: fuzzing.Target, seconds: float, examples: int, memory: bool) -> None:
    outcomes: Counter[str] = Counter()
    slowest = peak = 0.0

    @settings(max_examples=min(BATCH, examples), deadline=None, database=None, suppress_health_check=SLOW_OK)
    @given(target.strategy())
    def case(example: object) -> None:
        nonlocal slowest, peak
        outcome = fuzzing.exercise(target.run, example, measure_memory=memory)
        outcomes[outcome.result] += 1
        slowest, peak = max(slowest, outcome.seconds), max(peak, outcome.peak_bytes)

    started = time.monotonic()
    while time.monotonic() - started < seconds and sum(outcomes.values()) < examples:
        case()
    elapsed = time.monotonic() - started
    total = sum(outcomes.values())
    shown = ", ".join(f"{name} {n}" for name, n in outcomes.most_common())
    print(
        f"{target.name:<16} {total:>7} cases  {total / elapsed:7.1f}/s  slowest {slowest * 1000:6.0f} ms  "
        f"peak {peak / 2**20:6.1f} MiB  outcomes: {shown}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per target (default 60)")
    parser.add_argument("--examples", type=int, default=1_000_000, help="per target, at most")
    parser.add_argument("--target", action="append", default=[], help="only these (repeatable)")
    parser.add_argument("--no-memory", action="store_true", help="skip tracemalloc (about twice as fast)")
    args = parser.parse_args()
    targets = fuzzing.targets()
    unknown = set(args.target) - set(targets)
    if unknown:
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; known: {', '.join(targets)}")
    print(f"limits per case: {fuzzing.CASE_SECONDS:g} s, {fuzzing.CASE_MEMORY / 2**20:.0f} MiB", flush=True)
    for name in args.target or list(targets):
        run_target(targets[name], args.seconds, args.examples, not args.no_memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
