"""``nodedoc snapshots``: what containerd has unpacked, which image layer each snapshot is, who uses it,
and (``--verify``) whether its files still match the layer blob."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from probes.errors import NodedocError
from probes.readers.disk.containerd_store import ContainerdDisk, SnapshotInfo, Verification
from tui.options import add_node_options, node_from_args
from tui.untrusted import neutralise

EXIT_DAMAGED = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "snapshots",
        help="list overlayfs snapshots and verify them against their layers",
        description="List containerd's overlayfs snapshots (id, kind, image and layer, parent, size, users) "
        "from its root on disk, without containerd. --verify compares committed snapshots with their layer blobs.",
    )
    add_node_options(parser)
    parser.add_argument("-o", "--output", choices=("table", "json", "tree"), default="table")
    parser.add_argument(
        "--verify",
        nargs="*",
        metavar="ID|KEY",
        default=None,
        help="verify these snapshots (id, key or chainID); all committed ones when none is named",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="with --verify, also compare every regular file's bytes with the layer's (reads the whole "
        "snapshot; finds a change that keeps a file's size)",
    )
    parser.set_defaults(func=run)


def _short(text: str, n: int = 19) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _layer(info: SnapshotInfo) -> str:
    if not info.layers:
        return info.owners[0].display_name if info.owners else "-"
    ref = info.layers[0]
    return f"{ref.image} #{ref.layer.index}"


def _users(info: SnapshotInfo) -> str:
    ids = sorted({c.id[:12] for c in info.users + info.owners})
    return ",".join(ids[:3]) + (f" +{len(ids) - 3}" if len(ids) > 3 else "") if ids else "-"


def _status(result: Verification | None) -> str:
    if result is None:
        return ""
    if result.status == "damaged" and result.check is not None:
        c = result.check
        return f"DAMAGED missing={len(c.missing)} changed={len(c.changed)} extra={len(c.extra)}"
    return result.status.upper() if result.status != "ok" else "ok"


def print_table(disk: ContainerdDisk, results: dict[int, Verification], out: TextIO) -> None:
    rows = [("ID", "KIND", "IMAGE / LAYER", "PARENT", "SIZE", "USERS", "VERIFY")]
    for info in disk.snapshots():
        rows.append(
            (
                str(info.id),
                info.kind,
                neutralise(_layer(info)),
                str(info.parent_id or "-"),
                _size(info.record.size),
                neutralise(_users(info)),
                _status(results.get(info.id)),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip(), file=out)
    for result in results.values():
        _print_details(result, out)


def _print_details(result: Verification, out: TextIO) -> None:
    if result.status == "ok":
        return
    key = neutralise(result.snapshot.key)
    print(f"\nsnapshot {result.snapshot.id} ({key}): {result.status}", file=out)
    if result.reason:
        print(f"  {neutralise(result.reason)}", file=out)
    if result.check is not None:
        for d in result.check.missing + result.check.changed + result.check.extra:
            print(f"  {neutralise(d.describe())}", file=out)


def print_tree(disk: ContainerdDisk, results: dict[int, Verification], out: TextIO) -> None:
    def line(info: SnapshotInfo, depth: int) -> None:
        label = neutralise(f"{info.id} {info.kind} {_layer(info)}")
        status = _status(results.get(info.id))
        mounted = " mounted" if info.mounts else ""
        print(
            f"{'  ' * depth}{'└─ ' if depth else ''}{label}{mounted}{'  ' + status if status else ''}",
            file=out,
        )
        for child in disk.children(info):
            line(child, depth + 1)

    for info in disk.snapshots():
        if info.parent_id is None:
            line(info, 0)


def run(args: argparse.Namespace) -> int:
    if args.deep and args.verify is None:
        raise NodedocError("--deep compares contents while verifying: give it with --verify")
    node = node_from_args(args)
    root = node.root()
    disk = ContainerdDisk(root, None if node.post_mortem else node.proc_root)
    results: dict[int, Verification] = {}
    if args.verify is not None:
        chosen = [disk.snapshot(ref) for ref in args.verify] if args.verify else None
        for result in disk.verify_many(chosen, deep=args.deep):
            results[result.snapshot.id] = result
    out = sys.stdout
    if args.output == "json":
        doc = {
            "root": str(root),
            "snapshots": [
                {**i.summary(), "verify": results[i.id].to_dict() if i.id in results else None}
                for i in disk.snapshots()
            ],
            "orphans": _orphans(disk),
        }
        json.dump(doc, out, indent=2)
        out.write("\n")
    elif args.output == "tree":
        print_tree(disk, results, out)
    else:
        print_table(disk, results, out)
    return EXIT_DAMAGED if any(r.status in ("damaged", "corrupt-blob") for r in results.values()) else 0


def _orphans(disk: ContainerdDisk) -> dict[str, Any]:
    o = disk.orphans()
    return {
        "dirs_without_record": o.dirs_without_record,
        "records_without_dir": [i.id for i in o.records_without_dir],
        "namespace_records_without_backend": [
            f"{m.namespace}/{m.key}" for m in o.namespace_records_without_backend
        ],
    }
