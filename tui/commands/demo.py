"""``nodedoc demo``: a lab node with a few pods (optionally with a seed's fault), the troubleshooter on it,
and the lab taken down on exit. The way to see nodedoc work without a broken node at hand (needs root)."""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

from probes.errors import NodedocError
from probes.node import NodeContext
from tui.commands.lab import add_containerd_option
from tui.lab import Lab, LabPod

FAULTS = ("missing-pause", "netns-ip", "runc-init")
SNAPSHOTS = Path("io.containerd.snapshotter.v1.overlayfs/snapshots")
#: Signals that end the demo as q does: its terminal closed (SIGHUP) or it was asked to stop (SIGTERM).
ENDING = (signal.SIGHUP, signal.SIGTERM)


class Ended(SystemExit):
    """The demo was ended by a signal; it unwinds like a quit, so every fault is undone and the lab taken down
    (the runc-init fault puts the machine-wide fs.pipe-user-pages-soft back)."""


@contextlib.contextmanager
def ended_by_signals() -> Iterator[None]:
    """SIGHUP and SIGTERM raise :class:`Ended` (exit status 128 + the signal) instead of killing the process
    where it stands; once one came, further ones are ignored so the clean-up runs to its end."""

    def end(signum: int, _frame: FrameType | None) -> None:
        for sig in ENDING:
            signal.signal(sig, signal.SIG_IGN)
        raise Ended(128 + signum)

    previous = {sig: signal.signal(sig, end) for sig in ENDING}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def say(line: str) -> None:
    """Print, unless the terminal is gone (a hung-up tty fails writes with EIO): the clean-up goes on."""
    with contextlib.suppress(OSError):
        print(line, flush=True)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="start a lab node with a few pods and open the troubleshooter on it")
    parser.add_argument("--pods", type=int, default=4, metavar="N", help="pods to run (default 4)")
    parser.add_argument("--fault", choices=FAULTS, help="inject a seed's fault into the lab")
    parser.add_argument(
        "--dir", type=Path, metavar="DIR", help="lab directory (default: a new one under /tmp)"
    )
    add_containerd_option(parser)
    parser.set_defaults(func=run)


def netns_path_of(lab: Lab, pod: LabPod) -> str:
    with lab.client() as client:
        info = json.loads(client.pod_sandbox_status(pod.id).info["info"])
    return next(n["path"] for n in info["runtimeSpec"]["linux"]["namespaces"] if n["type"] == "network")


def break_pod_network(lab: Lab, pod: LabPod) -> None:
    """Flush the pod's IPv4 address inside its namespace: CRI still reports it (seed: netns-ip)."""
    subprocess.run(
        ["nsenter", f"--net={netns_path_of(lab, pod)}", "ip", "-4", "addr", "flush", "dev", "eth0"],
        check=True,
        capture_output=True,
        timeout=10,
    )


@contextlib.contextmanager
def pause_removed(lab: Lab) -> Iterator[Path]:
    """Move /pause out of the lab's unpacked pause layer (seed 002); put it back afterwards."""
    found = sorted((lab.root / SNAPSHOTS).glob("*/fs/pause"))
    if not found:
        raise NodedocError(f"no snapshot under {lab.root / SNAPSHOTS} holds /pause")
    moved = lab.dir / "pause.nodedoc-demo"  # outside the snapshot, so only the missing file shows
    found[0].rename(moved)
    try:
        yield found[0]
    finally:
        moved.rename(found[0])


def inject(lab: Lab, fault: str | None, stack: contextlib.ExitStack) -> str:
    """Inject ``fault`` into the lab; what to look for, in one line."""
    if fault == "netns-ip":
        victim = lab.run_pod("web-broken-net")
        lab.pods.append(victim)
        lab.save()
        break_pod_network(lab, victim)
        return f"pod {victim.name} lost {victim.ip} inside its namespace; CRI still reports it"
    if fault == "missing-pause":
        path = stack.enter_context(pause_removed(lab))
        return f"{path} removed from the pause image's snapshot; new sandboxes cannot start"
    if fault == "runc-init":
        return stack.enter_context(_hung_init())
    return ""


@contextlib.contextmanager
def _hung_init() -> Iterator[str]:
    """A stand-in runc init hung on a shrunken pipe (tui.lab.pipe_hog, compiled here with gcc)."""
    from probes.builtin.runc import RuncProbe, init_threshold
    from tui.lab import pipe_hog

    with pipe_hog.built() as binary, pipe_hog.hung_init(binary) as init:
        # The runc probe calls an init hung only once it has waited longer than its threshold; open the
        # troubleshooter after that, or its first look would (rightly) see a young init, not a hung one.
        wait = init_threshold(RuncProbe.init_blocked_after) + 0.5
        if wait > 2:
            print(
                f"waiting {wait:.0f} s until the stand-in runc init counts as hung (NODEDOC_RUNC_INIT_THRESHOLD)"
            )
        time.sleep(wait)
        yield f"runc:[2:INIT] stand-in pid {init.pid} hung writing a {init.capacity}-byte pipe"


def _fetch_notes(line: str) -> None:
    """Only fetching a containerd build is worth a line before the troubleshooter opens."""
    if "fetching" in line:
        print(line)


def run(args: argparse.Namespace, open_app: Callable[[NodeContext], None] | None = None) -> int:
    from tui.app import NodedocApp
    from tui.session import NodeSession

    directory = args.dir or Path(tempfile.mkdtemp(prefix="nddemo-", dir="/tmp"))
    if args.dir is None:
        shutil.rmtree(directory)
    with ended_by_signals():
        print(f"starting a lab in {directory} ({args.pods} pods)…")
        # Lab.up takes down what it started if anything, Ended included, interrupts it.
        lab = Lab.up(directory, pods=args.pods, containers=True, log=_fetch_notes, containerd=args.containerd)
        try:
            with contextlib.ExitStack() as stack:
                note = inject(lab, args.fault, stack)
                node = NodeContext(
                    endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state
                )
                if open_app is not None:
                    open_app(node)
                else:
                    app = NodedocApp(NodeSession(node))
                    if note:
                        app.call_later(app.notify, note, title=f"fault: {args.fault}", timeout=10)
                    app.run()
        finally:
            say(f"taking the lab in {directory} down…")
            Lab.down(directory, log=lambda *_: None)
    return 0
