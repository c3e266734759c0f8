"""Snapshot integrity: do the unpacked overlayfs layers still hold what their layer blobs say?

Seed 002: a cleanup script deleted /pause from the pause image's unpacked snapshot while the blob in
the content store stayed intact; every new sandbox then failed with ``exec: "/pause": stat /pause: no
such file or directory``. This probe compares each committed snapshot with its blob and reports what is
missing or changed, which image and layer it is, and who depends on it. It reads the disk only, so it
works the same on a live node and on a copy of /var/lib/containerd.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from probes.api import Finding, Need, Outcome, Probe, Remedy, Severity
from probes.node import NeedUnmet, NodeContext
from probes.readers.disk.containerd_store import Orphans, SnapshotInfo, Verification

MAX_LISTED = 50
QUICK_ENV = "NODEDOC_SNAPSHOTS_QUICK"


def sandbox_image(node: NodeContext) -> str:
    """The CRI sandbox (pause) image the runtime is configured with, "" when unknown."""
    conf = {} if node.post_mortem else node.runtime_config()
    if conf.get("sandboxImage"):
        return str(conf["sandboxImage"])
    _path, parsed = node.containerd_config_file()
    plugins = parsed.get("plugins") or {}
    for name in ("io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images"):
        section = plugins.get(name) or {}
        image = section.get("sandbox_image") or (section.get("pinned_images") or {}).get("sandbox")
        if image:
            return str(image)
    return ""


class SnapshotsProbe(Probe):
    id: ClassVar[str] = "snapshots"
    title: ClassVar[str] = "Snapshot integrity"
    description: ClassVar[str] = (
        "Compares every committed overlayfs snapshot with its layer blob (missing, extra and changed files), "
        "and finds orphaned snapshot directories and records."
    )
    needs: ClassVar[frozenset[Need]] = frozenset({Need.CONTAINERD_ROOT})
    timeout: ClassVar[float] = 600.0
    #: Verify only the snapshots sandboxes use: ``check --quick`` (node option), or NODEDOC_SNAPSHOTS_QUICK=1.
    quick: ClassVar[bool] = False

    def run(self, node: NodeContext) -> Outcome:
        root = node.root()
        if not (root / "io.containerd.metadata.v1.bolt" / "meta.db").exists():
            raise NeedUnmet(f"{root} has no io.containerd.metadata.v1.bolt/meta.db: not a containerd root")
        disk = node.containerd_disk()
        quick = self.quick or bool(node.options.get("quick")) or os.environ.get(QUICK_ENV) == "1"
        pause = sandbox_image(node)
        committed = [s for s in disk.snapshots() if s.kind == "committed"]
        if quick:
            committed = [s for s in committed if s.sandbox_users or pause in s.image_names]
        results = disk.verify_many(committed)
        findings: list[Finding] = []
        for result in results:
            findings += self._verification_findings(result, pause)
        findings += self._orphan_findings(disk.orphans())
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status] = counts.get(r.status, 0) + 1
        facts: dict[str, Any] = {
            "root": str(root),
            "snapshots": len(disk.snapshots()),
            "verified": counts,
            "quick": quick,
            "sandbox_image": pause,
            "results": [r.to_dict() for r in results],
        }
        if not findings and results:
            findings.append(
                self.finding(
                    "snapshot.ok",
                    Severity.OK,
                    "Snapshots match their layers",
                    f"{counts.get('ok', 0)} committed snapshot(s) match their layer blobs.",
                )
            )
        return Outcome(findings, facts)

    # -- findings -----------------------------------------------------------------------------------

    def _subject(self, info: SnapshotInfo, result: Verification) -> dict[str, Any]:
        layer = result.layer
        return {
            "name": f"snapshot {info.id}",
            "snapshot_id": info.id,
            "snapshot_key": info.key,
            "image": layer.image if layer else (info.image_names[0] if info.image_names else ""),
            "images": info.image_names,
            "layer_index": layer.layer.index if layer else None,
            "layer_digest": layer.layer.blob.digest if layer else "",
            "path": str(info.fs_dir),
        }

    def _verification_findings(self, result: Verification, pause: str) -> list[Finding]:
        info = result.snapshot
        subject = self._subject(info, result)
        users = sorted({c.display_name for c in info.users + info.owners})
        if result.status == "unverifiable":
            return [
                self.finding(
                    "snapshot.unverifiable",
                    Severity.INFO,
                    f"Snapshot {info.id} cannot be verified",
                    f"Snapshot {info.id} ({subject['image'] or info.key}) cannot be verified: {result.reason}.",
                    subject=subject,
                    evidence={"reason": result.reason},
                )
            ]
        if result.status == "corrupt-blob":
            return [
                self.finding(
                    "snapshot.blob-corrupt",
                    Severity.WARNING,
                    f"Layer blob of snapshot {info.id} is corrupt",
                    f"{result.reason}. The snapshot cannot be checked against it, and a re-unpack would fail.",
                    subject=subject,
                    evidence={"reason": result.reason},
                    remediation=[
                        Remedy(
                            "Remove the image and pull it again so the blob is fetched anew",
                            f"crictl rmi {subject['image']} && crictl pull {subject['image']}",
                        )
                    ],
                )
            ]
        check = result.check
        if check is None or check.ok:
            return []
        out = []
        image = subject["image"]
        evidence_base = {
            "users": users,
            "mounted_at": [m.mountpoint for m in info.mounts],
            "blob": check.blob,
            "fs": check.fs_dir,
            "entries_in_layer": check.entries,
        }
        fix = [
            Remedy(
                "Remove the image and pull (or re-import) it so the layer is unpacked again; stop and remove "
                "the pods using it first",
                f"crictl rmi {image} && crictl pull {image}",
            ),
            Remedy(
                "Find what deleted or changed files under the containerd root (cleanup scripts, disk "
                "cleaners, manual rm) and stop it: nothing but containerd may write under "
                "io.containerd.snapshotter.v1.overlayfs/snapshots"
            ),
        ]
        if check.missing:
            critical = bool(info.users or info.owners) or (pause and pause in info.image_names)
            paths = [d.describe() for d in check.missing]
            out.append(
                self.finding(
                    "snapshot.files-missing",
                    Severity.CRITICAL if critical else Severity.WARNING,
                    f"Files missing from {image or 'snapshot'} layer {subject['layer_index']} (snapshot {info.id})",
                    f"Snapshot {info.id} ({info.key}), layer {subject['layer_index']} of {image} "
                    f"({subject['layer_digest']}), lacks {len(paths)} path(s) its layer blob holds: "
                    f"{', '.join(d.path for d in check.missing[:5])}{' …' if len(paths) > 5 else ''}."
                    + (f" It is a lower layer of {len(users)} sandbox(es)/container(s)." if users else "")
                    + (
                        " It is the sandbox (pause) image: every new pod on this node will fail."
                        if pause and pause in info.image_names
                        else ""
                    ),
                    subject=subject,
                    evidence={**evidence_base, "missing": paths[:MAX_LISTED], "missing_count": len(paths)},
                    remediation=fix,
                    references=[
                        "https://github.com/containerd/containerd/blob/main/docs/snapshotters/README.md"
                    ],
                )
            )
        if check.changed or check.extra:
            changed = [d.describe() for d in check.changed + check.extra]
            out.append(
                self.finding(
                    "snapshot.files-changed",
                    Severity.WARNING,
                    f"Files changed in {image or 'snapshot'} layer {subject['layer_index']} (snapshot {info.id})",
                    f"Snapshot {info.id} ({info.key}) differs from its layer blob in {len(changed)} path(s): "
                    f"{', '.join(changed[:3])}{' …' if len(changed) > 3 else ''}.",
                    subject=subject,
                    evidence={
                        **evidence_base,
                        "changed": changed[:MAX_LISTED],
                        "changed_count": len(changed),
                    },
                    remediation=fix,
                )
            )
        return out

    def _orphan_findings(self, orphans: Orphans) -> list[Finding]:
        out = []
        if orphans.dirs_without_record:
            ids = orphans.dirs_without_record
            out.append(
                self.finding(
                    "snapshot.orphan",
                    Severity.INFO,
                    f"{len(ids)} snapshot director(ies) without a record",
                    f"snapshots/{', '.join(map(str, ids[:10]))} exist on disk but the overlayfs metadata.db does not "
                    "know them: leftovers of an interrupted unpack or removal, taking disk space.",
                    subject={"name": "snapshot directories", "ids": ids},
                    evidence={"ids": ids[:MAX_LISTED]},
                    remediation=[
                        Remedy("With containerd stopped, and after checking nothing mounts them, remove them")
                    ],
                )
            )
        for info in orphans.records_without_dir:
            out.append(
                self.finding(
                    "snapshot.orphan",
                    Severity.WARNING,
                    f"Snapshot {info.id} has a record but no directory",
                    f"metadata.db records snapshot {info.id} ({info.key}, {info.kind}) but {info.fs_dir.parent} does "
                    "not exist: whatever uses it cannot be mounted.",
                    subject={
                        "name": f"snapshot {info.id}",
                        "snapshot_id": info.id,
                        "snapshot_key": info.key,
                        "images": info.image_names,
                    },
                    evidence={"users": sorted({c.display_name for c in info.users + info.owners})},
                    remediation=[Remedy("Remove the image (or container) owning it and pull again")],
                )
            )
        if orphans.namespace_records_without_backend:
            keys = [f"{m.namespace}/{m.key}" for m in orphans.namespace_records_without_backend]
            out.append(
                self.finding(
                    "snapshot.orphan",
                    Severity.WARNING,
                    f"{len(keys)} meta.db snapshot(s) unknown to overlayfs",
                    "meta.db lists snapshots that the overlayfs snapshotter has no record of: "
                    + ", ".join(keys[:5]),
                    subject={"name": "meta.db snapshots"},
                    evidence={"keys": keys[:MAX_LISTED]},
                )
            )
        return out
