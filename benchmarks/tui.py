"""Benchmark: the troubleshooter on a lab node with many pods (needs root; starts and removes its own lab).

Each figure is timed in a fresh child process (headless Textual, the same App and screens) from the
moment a key event reaches the app to the first paint that shows its result (the app's own ``_display``
of the screen), not to when Pilot returns (``Pilot.press`` sleeps at least 40 ms by itself):

- launch → the dashboard painted with runtime data (process start, imports included); target ≤ 0.5 s;
- p → the pods table painted with every pod, the first time (probes done); target ≤ 0.3 s;
- p → the table again, after d (the screen is kept); no target;
- a filter keystroke (``/`` then ``lab-pod-1`` typed one key at a time) → the table repainted; target
  ≤ 50 ms for every key;
- the same launch, p and keys while the dashboard's probes run: p is pressed as soon as the probe threads
  have started (the runc probe's pass over /proc, the network probe's 500 pods, the binaries' hashes...);
  the child counts the keys typed while any of them still ran; targets as above;
- the same while a heavy probe runs: the lab also holds an image with one big layer (``--heavy-mib``,
  ``--heavy-files``) that the snapshots probe verifies when the dashboard starts (once the run's other
  probes are done); p is pressed as soon as the blob is being read, and the child checks the verification
  was still running at p and at each key; targets as above;
- peak memory (the child's VmHWM, without and with the heavy probe); target ≤ 150 MB.

CPU seconds of the child (user + system) and the load average are printed beside the wall times: the
machine may be shared.

Usage: python benchmarks/tui.py [--pods 500] [--runs 3] [--dir /tmp/ndbench-tui] [--keep]
       [--heavy-mib 400] [--heavy-files 40000] [--no-heavy]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CHILD = r"""
import time
t0 = time.monotonic()
import asyncio, json, os, resource, sys, threading
from pathlib import Path
from probes.node import NodeContext
from textual import events
from textual.app import App
from tui.app import NodedocApp
from tui.session import NodeSession

endpoint, root, state, pods, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
FILTER = "lab-pod-1"
out = {}
waiting = []  # (name, predicate, started): the first paint for which predicate() holds ends the timing

original_display = App._display

def display(self, screen, renderable):
    original_display(self, screen, renderable)
    now = time.monotonic()
    for item in list(waiting):
        name, predicate, started, cpu = item
        if predicate():
            out[name] = now - started
            out[name + "_cpu"] = time.process_time() - cpu
            waiting.remove(item)

App._display = display

def verifying():
    # The blob's own threads (layer_stream.py): reading it, inflating it.
    return any(t.name.startswith(("layer-read", "layer-inflate")) for t in threading.enumerate())

def probing():
    # Any probe of the dashboard's run but the snapshots probe waiting for the rest of them.
    return any(t.name.startswith("probe:") and t.name != "probe:snapshots" for t in threading.enumerate())

async def until(cond, limit=120.0, what=""):
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > limit:
            raise SystemExit(f"timed out waiting for {what or cond} (so far: {out})")
        await asyncio.sleep(0.002)

async def key(app, name, char, figure, predicate):
    waiting.append((figure, predicate, time.monotonic(), time.process_time()))
    app._driver.send_message(events.Key(name, char))
    await until(lambda: figure in out, 30.0, figure)

async def settle(app):
    # Let the paint's follow-up work (the table's idle measuring, timers) finish before the next key.
    await asyncio.sleep(0.15)

def table_of(app):
    return app.screen.query_one("#pod-table")

async def main():
    session = NodeSession(NodeContext(endpoint=endpoint, containerd_root=Path(root), containerd_state=Path(state)))
    app = NodedocApp(session, heartbeat=0)
    def runtime_shown():
        panel = app.screen.query("#runtime-panel")
        return app.runtime_state == "connected" and bool(panel) and panel.first().content != "loading…"
    waiting.append(("first_data_s", runtime_shown, t0, 0.0))
    async with app.run_test(size=(120, 40)):
        await until(lambda: "first_data_s" in out)
        if mode == "heavy":
            await until(verifying)
        elif mode == "early":
            await until(probing)
        else:
            await until(lambda: bool(session.last_results))
            await app.workers.wait_for_complete()
        if mode != "early":
            await settle(app)
        busy = verifying if mode == "heavy" else probing
        heavy_at_p = busy()
        def pods_shown():
            from screens.pods import PodsScreen
            # Every pod, and the table's own measuring of them (column widths, scroll size) done.
            if not isinstance(app.screen, PodsScreen):
                return False
            table = table_of(app)
            return table.row_count == pods and not table._require_update_dimensions
        await key(app, "p", "p", "pods_table_s", pods_shown)
        await settle(app)
        await key(app, "slash", "/", "slash_s", lambda: app.screen.query_one("#pod-filter").has_focus)
        await settle(app)
        keys = []
        heavy_at_keys = []
        for i, ch in enumerate(FILTER):
            typed = FILTER[: i + 1]
            name = "minus" if ch == "-" else ch
            before = table_of(app)._update_count
            heavy_at_keys.append(busy())
            await key(app, name, ch, f"key{i}", lambda t=typed, b=before: app.screen.filter_text == t and table_of(app)._update_count > b)
            keys.append(out.pop(f"key{i}"))
            out.pop(f"key{i}_cpu")
            await settle(app)
        out["filter_key_ms"] = [k * 1000 for k in keys]
        await key(app, "escape", None, "clear_s", lambda: not app.screen.filter_text and table_of(app).row_count == pods)
        await settle(app)
        await key(app, "d", "d", "dashboard_s", lambda: app.current_mode == "dashboard")
        await settle(app)
        await key(app, "p", "p", "pods_again_s", pods_shown)
        out["heavy_running"] = heavy_at_p and all(heavy_at_keys)
        out["busy_keys_at"] = heavy_at_keys
        if mode == "plain":
            await app.workers.wait_for_complete()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # VmHWM is this process's own peak; ru_maxrss also counts what the parent held when it forked us.
    status = open("/proc/self/status").read()
    out["peak_rss_mb"] = int(status.split("VmHWM:")[1].split()[0]) / 1024
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # a heavy probe may still be verifying in a daemon thread

asyncio.run(main())
"""

HEAVY_IMAGE = "localhost/nodedoc-bench-heavy:1"


def add_heavy_image(lab, mib: int, files: int) -> None:
    """Import an image with one gzip layer of ``files`` files, ``mib`` MiB in all, into the lab (its
    snapshot is what the snapshots probe then verifies at every start)."""
    from tui.lab import NAMESPACE
    from tui.lab.oci import Layer, sha256_digest, write_archive

    listed = subprocess.run(
        [str(lab.build.ctr), "-a", str(lab.socket), "-n", NAMESPACE, "images", "ls", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if HEAVY_IMAGE in listed:
        return
    print(f"importing a {mib} MiB, {files}-file layer into the lab…", flush=True)
    raw = io.BytesIO()
    rand = os.urandom(8 << 20)
    per = max(1, mib * (1 << 20) // files)
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(files):
            folder = f"d{i // 200:04d}"
            if i % 200 == 0:
                info = tarfile.TarInfo(folder)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            info = tarfile.TarInfo(f"{folder}/f{i:06d}")
            info.size, info.mode = per, 0o644
            start = (i * 1_000_003) % (len(rand) - per)
            tar.addfile(info, io.BytesIO(rand[start : start + per]))
    data = raw.getvalue()
    layer = Layer(gzip.compress(data, compresslevel=1, mtime=0), sha256_digest(data))
    archive = lab.dir / "heavy-image.tar"
    config = {"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/f"]}}
    write_archive(archive, HEAVY_IMAGE, config, [layer])
    try:
        subprocess.run(
            [str(lab.build.ctr), "-a", str(lab.socket), "-n", NAMESPACE, "images", "import", str(archive)],
            capture_output=True,
            check=True,
            timeout=600,
        )
    finally:
        archive.unlink()


def remove_heavy_image(lab) -> None:
    """Remove the heavy image (its name and the ID the CRI plugin tracks it by) and, with --sync, its
    snapshot and blob, so the plain runs verify only the pause image."""
    from tui.lab import NAMESPACE

    ctr = [str(lab.build.ctr), "-a", str(lab.socket), "-n", NAMESPACE, "images"]
    rows = [
        line.split()
        for line in subprocess.run([*ctr, "ls"], capture_output=True, text=True).stdout.splitlines()[1:]
    ]
    digest = next((row[2] for row in rows if row and row[0] == HEAVY_IMAGE), None)
    refs = [row[0] for row in rows if digest and len(row) > 2 and row[2] == digest]
    if refs:
        subprocess.run([*ctr, "rm", "--sync", *refs], capture_output=True, check=True)


def run_child(repo: Path, lab, mode: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, lab.endpoint, str(lab.root), str(lab.state), str(len(lab.pods)), mode],
        capture_output=True,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(label: str, runs: list[dict], mode: str = "plain") -> None:
    def line(name: str, key: str, unit: str, target: float | None, scale: float = 1.0) -> None:
        values = [v * scale for r in runs for v in (r[key] if isinstance(r[key], list) else [r[key]])]
        verdict = "" if target is None else ("  met" if max(values) <= target else "  MISSED")
        shown = f"target ≤ {target:g} {unit}" if target is not None else "no target"
        cpu = [r[key + "_cpu"] for r in runs if key + "_cpu" in r]
        cpu_text = f"  CPU {statistics.median(cpu):.3f} s" if cpu else ""
        print(
            f"  {name:<28} median {statistics.median(values):8.3f} {unit}  max {max(values):8.3f} {unit}"
            f"{cpu_text}  ({shown}){verdict}"
        )

    print(label)
    line("launch → runtime data", "first_data_s", "s", 0.5)
    line("p → pods table (first)", "pods_table_s", "s", 0.3)
    line("p → pods table (again)", "pods_again_s", "s", None)
    keys = sum(len(r["filter_key_ms"]) for r in runs)
    line(f"filter key → redraw ({keys})", "filter_key_ms", "ms", 50)
    by_position = sorted(((ms, i + 1) for r in runs for i, ms in enumerate(r["filter_key_ms"])), reverse=True)
    print(
        "    slowest keys (ms, which key of the filter): "
        + ", ".join(f"{ms:.0f} (#{i})" for ms, i in by_position[:6])
    )
    line("peak RSS", "peak_rss_mb", "MB", 150)
    line("CPU of the child (user+sys)", "cpu_s", "s", None)
    if mode == "heavy":
        running = sum(1 for r in runs if r["heavy_running"])
        print(f"  the layer being verified at p and at every key: {running} of {len(runs)} runs")
    elif mode == "early":
        typed = sum(len(r["filter_key_ms"]) for r in runs)
        during = [ms for r in runs for ms, busy in zip(r["filter_key_ms"], r["busy_keys_at"]) if busy]
        print(
            f"  keys typed while a probe still ran: {len(during)} of {typed}"
            + (f", slowest {max(during):.0f} ms" if during else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ndbench-tui"))
    parser.add_argument("--heavy-mib", type=int, default=400)
    parser.add_argument("--heavy-files", type=int, default=40000)
    parser.add_argument("--no-heavy", action="store_true", help="skip the heavy-probe runs")
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
        started = time.monotonic()
        lab = Lab.up(args.dir, pods=args.pods, containers=False, log=lambda *_: None)
        print(f"  up in {time.monotonic() - started:.0f} s", flush=True)
    try:
        # The plain runs first, without the heavy image (its snapshot would be verified too).
        remove_heavy_image(lab)
        plain = [run_child(repo, lab, "plain") for _ in range(args.runs)]
        load = os.getloadavg()
        report(f"{len(lab.pods)} pods, {args.runs} runs (load average {load[0]:.2f} {load[1]:.2f})", plain)
        early = [run_child(repo, lab, "early") for _ in range(args.runs)]
        load = os.getloadavg()
        report(
            f"same, p pressed while the dashboard's probes run (load average {load[0]:.2f} {load[1]:.2f})",
            early,
            "early",
        )
        if not args.no_heavy:
            add_heavy_image(lab, args.heavy_mib, args.heavy_files)
            heavy = [run_child(repo, lab, "heavy") for _ in range(args.runs)]
            load = os.getloadavg()
            report(
                f"same, p pressed while the snapshots probe verifies a {args.heavy_mib} MiB, "
                f"{args.heavy_files}-file layer (load average {load[0]:.2f} {load[1]:.2f})",
                heavy,
                "heavy",
            )
    finally:
        if not args.keep:
            Lab.down(args.dir, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
