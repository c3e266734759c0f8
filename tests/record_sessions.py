"""Record the node data the screen snapshots are drawn from, on a real lab node (run as root):

    python tests/record_sessions.py [STATE ...]

Writes tests/fixtures/session-<state>.json for: healthy, broken-network (an extra pod's IP flushed in
its namespace), damaged-snapshot (/pause moved out of the pause layer, restored after), blocked-init
(pipe_hog's stand-in runc init hung on a shrunken pipe: real kernel state, a stand-in process) and
unreachable (the runtime's socket gone; the disk still read); only the STATEs named, when some are.
The lab lives in /tmp/ndrec and is taken down at the end.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from fixtures.pipe_hog import built, hung_init  # noqa: E402
from recorded_session import dump_recording, record_session  # noqa: E402

from probes.node import NodeContext  # noqa: E402
from tui.commands.demo import break_pod_network, pause_removed  # noqa: E402
from tui.lab import Lab  # noqa: E402
from tui.session import NodeSession  # noqa: E402

LAB_DIR = Path("/tmp/ndrec")
OUT = HERE / "fixtures"


def lab_only(data: dict, lab: Lab, keep: set[int] = frozenset()) -> dict:
    """Keep the lab's own runtime processes (and ``keep``): not other runtimes that share this machine."""
    scan = data["processes"].get("scan")
    if not scan:
        return data
    procs = scan["processes"]
    mine = {
        p["pid"] for p in procs if p["pid"] == lab.pid or str(lab.socket) in " ".join(p.get("cmdline", []))
    }
    mine |= {p["pid"] for p in procs if set(p.get("ancestors", [])) & mine} | set(keep)
    scan["processes"] = [p for p in procs if p["pid"] in mine]
    return data


WANTED = set(sys.argv[1:])


def record(name: str, session: NodeSession, lab: Lab, keep: set[int] = frozenset()) -> None:
    if WANTED and name not in WANTED:
        return
    data = lab_only(record_session(session), lab, keep)
    dump_recording(data, OUT / f"session-{name}.json")
    print(f"recorded {name}: {len(data['sandboxes'])} pods, runtime error {data['runtime_error']!r}")


def main() -> int:
    if LAB_DIR.exists():
        Lab.down(LAB_DIR, log=lambda *_: None)
    lab = Lab.up(LAB_DIR, pods=3, containers=True, log=lambda *_: None)
    try:
        node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
        record("healthy", NodeSession(node), lab)

        victim = lab.run_pod("web-broken-net")
        break_pod_network(lab, victim)
        record("broken-network", NodeSession(node), lab)
        lab.remove_pod(victim.id)

        with pause_removed(lab):
            record("damaged-snapshot", NodeSession(node), lab)

        os.environ["NODEDOC_RUNC_INIT_THRESHOLD"] = "0.3"
        with built() as binary, hung_init(binary) as init:
            time.sleep(0.5)
            record("blocked-init", NodeSession(node), lab, keep={init.pid})

        gone = NodeContext(endpoint=f"unix://{lab.dir}/gone.sock", containerd_root=lab.root)
        record("unreachable", NodeSession(gone), lab)
    finally:
        Lab.down(LAB_DIR, log=lambda *_: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
