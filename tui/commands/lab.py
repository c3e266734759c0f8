"""``nodedoc lab up|down|status``: a disposable real containerd node for tests, demos and practice."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tui.lab import Lab
from tui.lab.runtimes import SERIES


def add_containerd_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--containerd",
        choices=SERIES,
        metavar="|".join(SERIES),
        help="containerd series to run: Debian 12's 1.6, or Debian's 1.7 (trixie) / 2.x (sid) build fetched "
        "into /var/cache/nodedoc-runtimes the first time (default: the system's containerd)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("lab", help="start or stop a disposable real containerd node in a directory")
    lab_sub = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    up = lab_sub.add_parser("up", help="start containerd in DIR and run pods on it")
    up.add_argument("dir", type=Path, metavar="DIR")
    up.add_argument("--pods", type=int, default=3, metavar="N", help="pods to run (default 3)")
    up.add_argument(
        "--containers",
        action="store_true",
        help="one container in each pod (its env holds DB_PASSWORD, to test redaction)",
    )
    add_containerd_option(up)
    up.add_argument(
        "--registry",
        action="store_true",
        help="serve the pause image from a registry on 127.0.0.1 (docker-registry, skopeo) and pull it over CRI",
    )
    up.add_argument(
        "--discard-layers",
        action="store_true",
        help="set CRI's discard_unpacked_layers (layer blobs deleted once unpacked; implies --registry)",
    )
    up.set_defaults(func=run_up)
    down = lab_sub.add_parser("down", help="remove the pods, stop what the lab started, delete DIR")
    down.add_argument("dir", type=Path, metavar="DIR")
    down.set_defaults(func=run_down)
    status = lab_sub.add_parser("status", help="print the lab's endpoint, directories and pods as JSON")
    status.add_argument("dir", type=Path, metavar="DIR")
    status.set_defaults(func=run_status)
    fetch = lab_sub.add_parser(
        "fetch", help="fetch Debian's containerd builds the lab can run into /var/cache/nodedoc-runtimes"
    )
    fetch.add_argument("series", nargs="*", metavar="|".join(SERIES), help="series to fetch (default: all)")
    fetch.set_defaults(func=run_fetch)
    rec = lab_sub.add_parser("record", help="record the lab runtime's CRI answers (for tests and stand-ins)")
    rec.add_argument("dir", type=Path, metavar="DIR")
    rec.add_argument("--output", "-O", type=Path, required=True, metavar="FILE")
    rec.set_defaults(func=run_record)


def run_up(args: argparse.Namespace) -> int:
    lab = Lab.up(
        args.dir,
        pods=args.pods,
        containers=args.containers,
        containerd=args.containerd,
        registry=args.registry,
        discard_layers=args.discard_layers,
    )
    print(f"lab is up: {len(lab.pods)} pods")
    print(f"  containerd        {lab.build.version} ({lab.build.source}, {lab.build.bin_dir})")
    print(f"  endpoint          {lab.endpoint}")
    print(f"  containerd root   {lab.root}")
    print(f"  containerd state  {lab.state}")
    print(f"  config            {lab.config_path}")
    print(f"  pod network       {lab.subnet} on bridge {lab.bridge}")
    if lab.registry_port:
        print(f"  registry          127.0.0.1:{lab.registry_port} (image {lab.image}, hosts {lab.hosts_dir})")
    from probes.shell import quote, words

    node = ["--endpoint", lab.endpoint, "--containerd-root", lab.root, "--containerd-state", lab.state]
    print(f"try: nodedoc {words(node)} pods")  # quoted: the lab's directory is the caller's to name
    print(f"stop: nodedoc lab down {quote(lab.dir)}")
    return 0


def run_down(args: argparse.Namespace) -> int:
    Lab.down(args.dir)
    return 0


def run_status(args: argparse.Namespace) -> int:
    lab = Lab.load(args.dir)
    print(
        json.dumps(
            {
                "endpoint": lab.endpoint,
                "root": str(lab.root),
                "state": str(lab.state),
                "pid": lab.pid,
                "containerd": lab.runtime,
                "pods": [p.__dict__ for p in lab.pods],
            },
            indent=2,
        )
    )
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    from tui.lab.runtimes import ensure, normalise

    wanted = [normalise(s) or "system" for s in args.series] or list(SERIES)  # a bad name: one line, exit 3
    for series in wanted:
        build = ensure(None if series == "system" else series, log=print)
        print(f"containerd {series}: {build.version} ({build.source}) in {build.bin_dir}")
    return 0


def run_record(args: argparse.Namespace) -> int:
    from tui.lab.record import record

    lab = Lab.load(args.dir)
    with lab.client() as client:
        data = record(client)
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(
        f"recorded {len(data['PodSandboxStatus'])} sandboxes, {len(data['ContainerStatus'])} containers "
        f"to {args.output}"
    )
    return 0
