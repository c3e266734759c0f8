"""Snapshot integrity: do the unpacked overlayfs layers still hold what their layer blobs say?

Seed 002: a cleanup script deleted /pause from the pause image's unpacked snapshot while the blob in
the content store stayed intact; every new sandbox then failed with ``exec: "/pause": stat /pause: no
such file or directory``. This probe compares each committed snapshot with its blob and reports what is
missing or changed, which image and layer it is, and who depends on it. It reads the disk only, so it
works the same on a live node and on a copy of /var/lib/containerd.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from probes.api import Finding, Need, Outcome, Probe, Remedy, Severity
from probes.errors import NodedocError
from probes.knowledge.remedies.snapshots import (
    DEFAULT_ENDPOINT,
    bring_layers_back,
    recreate_snapshot,
    refetch_blob,
    restore_from_blob,
)
from probes.node import NeedUnmet, NodeContext
from probes.readers.disk.containerd_store import ContainerdDisk, Orphans, SnapshotInfo, Verification
from probes.readers.disk.entrypoints import EntrypointCheck, check_entrypoints
from probes.readers.disk.layer_verify import LayerCheck

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


def runtime_endpoint(node: NodeContext) -> str:
    """The CRI endpoint the node's runtime answers on, for the commands nodedoc prints."""
    if not node.post_mortem:
        try:
            return str(node.cri().endpoint)
        except NodedocError:
            pass
    return node.endpoint or DEFAULT_ENDPOINT


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
        self._endpoint, self._node_name = runtime_endpoint(node), node.node_name()
        committed = [s for s in disk.snapshots() if s.kind == "committed"]
        if quick:
            committed = [s for s in committed if s.sandbox_users or pause in s.image_names]
        if node.options.get("verify_layers") is False:  # nodedoc npd: the blob-free checks only
            committed = []
        # The troubleshooter's options: "before_verifying" waits for the run's other probes (so the blobs are
        # read once they are done, not beside them), "pace" waits while a key is handled, between blocks.
        before = node.options.get("before_verifying")
        if committed and before is not None:
            before()
        results = disk.verify_many(committed, cancel=node.options.get("pace"))
        findings: list[Finding] = []
        for result in results:
            findings += self._verification_findings(result, pause)
        findings += self._orphan_findings(disk.orphans())
        discard = self._discard_finding(node, results)
        findings += [discard] if discard else []
        entrypoints = check_entrypoints(disk)
        findings += self._entrypoint_findings(node, disk, entrypoints, results)
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
            "entrypoints": [
                {"image": e.image, "executable": e.executable, "found": e.found.path if e.found else None}
                for e in entrypoints
            ],
        }
        if not findings and results:
            findings.append(
                self.finding(
                    "snapshot.ok",
                    Severity.OK,
                    "Snapshots match their layers",
                    f"{counts.get('ok', 0)} committed snapshot(s) match their layer blobs; "
                    f"{len(entrypoints)} image(s) in use find their entrypoint in their layers.",
                )
            )
        return Outcome(findings, facts)

    # -- findings -----------------------------------------------------------------------------------

    def _discard_finding(self, node: NodeContext, results: list[Verification]) -> Finding | None:
        """``discard_unpacked_layers``: what it does to verification, said once."""
        conf = {} if node.post_mortem else node.runtime_config()
        live = (conf.get("containerd") or {}).get("discardUnpackedLayers")
        setting = node.containerd_config().discard_unpacked_layers()
        if not (live or (live is None and setting.value is True)):
            return None
        gone = [
            r.snapshot.id for r in results if r.status == "unverifiable" and "not in the content" in r.reason
        ]
        return self.finding(
            "snapshot.layers-discarded",
            Severity.INFO,
            "containerd deletes layer blobs after unpacking: snapshots cannot be checked against their layers",
            f"{setting.key} = true ({setting.table}"
            f"{' in ' + str(node.containerd_config().path) if node.containerd_config().path else ''}): CRI "
            "deletes each layer's blob once it is unpacked, so a file deleted from a snapshot cannot be "
            f"found by comparing it with its layer ({len(gone)} snapshot(s) here have no blob). nodedoc "
            "checks instead that every image in use finds its entrypoint in its unpacked layers; a repair "
            "first fetches the layer blobs back from the registry.",
            subject={"name": "discard_unpacked_layers"},
            evidence={
                "setting": f"{setting.table}.{setting.key}",
                "snapshots_without_blob": gone[:MAX_LISTED],
            },
        )

    def _entrypoint_findings(
        self,
        node: NodeContext,
        disk: ContainerdDisk,
        checks: list[EntrypointCheck],
        results: list[Verification],
    ) -> list[Finding]:
        by_id = {r.snapshot.id: r for r in results}
        out = []
        for check in checks:
            if not check.missing:
                continue
            ids = [s.id for s in check.chain]
            damaged = next((by_id[i] for i in ids if i in by_id and by_id[i].status == "damaged"), None)
            verified = all(i in by_id and by_id[i].status == "ok" for i in ids)
            top = check.chain[0]
            users = sorted({c.display_name for c in check.users})
            sandboxes = sorted({c.sandbox_id for c in check.users if c.sandbox_id})
            if damaged is not None and damaged.check is not None:
                fix = self._repair(damaged.snapshot, damaged, damaged.check)
            elif verified:
                fix = [
                    Remedy(
                        f"{check.image}'s layers, checked against their blobs, never had {check.executable}: "
                        "the image itself is broken (its Entrypoint, Cmd or PATH); fix the image or the "
                        "pod's command"
                    )
                ]
            else:
                fix = [
                    *bring_layers_back(
                        image=check.image,
                        namespace=top.record.namespace or "k8s.io",
                        endpoint=self._endpoint,
                        hosts_dir=self._hosts_dir(node),
                        image_present=check.image_present,
                        nodedoc_args=self._nodedoc_args(node),
                    ),
                    *recreate_snapshot(
                        snapshot_id=top.id,
                        chain_id=top.record.name,
                        images=[check.image],
                        sandbox_ids=sandboxes,
                        endpoint=self._endpoint,
                        node_name=self._node_name,
                    ),
                ]
            out.append(
                self.finding(
                    "snapshot.entrypoint-missing",
                    Severity.CRITICAL,
                    f"{check.image}: its entrypoint {check.executable} is not in its unpacked layers",
                    f"The {check.source} of {check.image} runs {check.executable}, but the merged view of its "
                    f"snapshots ({', '.join(map(str, ids))}) has no executable "
                    + (
                        f"at {check.tried[0]}"
                        if len(check.tried) == 1
                        else f"along PATH ({', '.join(check.tried)})"
                    )
                    + f": every new sandbox or container of this image fails to start. {len(users)} "
                    "sandbox(es)/container(s) on this node use it.",
                    subject={
                        "name": check.image,
                        "image": check.image,
                        "snapshot_id": top.id,
                        "snapshot_ids": ids,
                    },
                    evidence={
                        "executable": check.executable,
                        "from": check.source,
                        "tried": check.tried,
                        "layers": [str(s.fs_dir) for s in check.chain],
                        "layer_blobs": "verified"
                        if verified
                        else ("damaged" if damaged else "not all present"),
                        "users": users[:MAX_LISTED],
                    },
                    remediation=fix,
                )
            )
        return out

    def _hosts_dir(self, node: NodeContext) -> str:
        """CRI's registry ``config_path`` (the hosts.toml directory), "" when not set."""
        conf = {} if node.post_mortem else node.runtime_config()
        live = (conf.get("registry") or {}).get("configPath")
        if live:
            return str(live)
        table, _name = node.containerd_config().registry()
        return str(table.get("config_path") or "")

    @staticmethod
    def _nodedoc_args(node: NodeContext) -> list[str]:
        """The options this run was given explicitly, so the printed ``nodedoc check`` looks at the same node."""
        args = []
        if node.endpoint:
            args += ["--endpoint", node.endpoint]
        if node.containerd_root is not None:
            args += ["--containerd-root", str(node.containerd_root)]
        return args

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

    def _repair(self, info: SnapshotInfo, result: Verification, check: LayerCheck) -> list[Remedy]:
        """Restore from the blob first (no pod touched), then the alternative that recreates the snapshot."""
        sandboxes = sorted({c.sandbox_id for c in info.users + info.owners if c.sandbox_id})
        return [
            restore_from_blob(check, info.id),
            *recreate_snapshot(
                snapshot_id=info.id,
                chain_id=result.layer.layer.chain_id if result.layer else info.record.name,
                images=info.image_names,
                sandbox_ids=sandboxes,
                endpoint=self._endpoint,
                node_name=self._node_name,
            ),
            Remedy(
                "Find what deleted or changed files under the containerd root (cleanup scripts, disk "
                "cleaners, manual rm) and stop it: nothing but containerd may write under "
                "io.containerd.snapshotter.v1.overlayfs/snapshots"
            ),
        ]

    def _verification_findings(self, result: Verification, pause: str) -> list[Finding]:
        verified = VerifiedSnapshot(self, result, pause)
        return [f for check in VERIFICATION_CHECKS if (f := check(verified)) is not None]

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


# -- one snapshot's verification: one check per finding, its words with it ---------------------------------


@dataclass
class VerifiedSnapshot:
    """One snapshot's verification as each check sees it, with the repair steps its findings share."""

    probe: SnapshotsProbe
    result: Verification
    pause: str

    @property
    def info(self) -> SnapshotInfo:
        return self.result.snapshot

    @cached_property
    def subject(self) -> dict[str, Any]:
        return self.probe._subject(self.info, self.result)

    @property
    def compared(self) -> LayerCheck | None:
        """The layer comparison, when the snapshot could be compared at all and something differs."""
        if self.result.status in ("unverifiable", "corrupt-blob"):
            return None
        check = self.result.check
        return None if check is None or check.ok else check

    @cached_property
    def repair(self) -> list[Remedy]:
        assert self.result.check is not None
        return self.probe._repair(self.info, self.result, self.result.check)

    def evidence(self, check: LayerCheck) -> dict[str, Any]:
        info = self.info
        return {
            "users": sorted({c.display_name for c in info.users + info.owners}),
            "mounted_at": [m.mountpoint for m in info.mounts],
            "blob": check.blob,
            "fs": check.fs_dir,
            "entries_in_layer": check.entries,
        }


def unverifiable(v: VerifiedSnapshot) -> Finding | None:
    """The snapshot could not be compared (blob gone, zstd without a module, an active snapshot)."""
    if v.result.status != "unverifiable":
        return None
    info, reason = v.info, v.result.reason
    return v.probe.finding(
        "snapshot.unverifiable",
        Severity.INFO,
        f"Snapshot {info.id} cannot be verified",
        f"Snapshot {info.id} ({v.subject['image'] or info.key}) cannot be verified: {reason}.",
        subject=v.subject,
        evidence={"reason": reason},
    )


def blob_corrupt(v: VerifiedSnapshot) -> Finding | None:
    """The layer blob itself does not decompress: nothing to compare with, and a re-unpack would fail."""
    if v.result.status != "corrupt-blob":
        return None
    info, subject = v.info, v.subject
    return v.probe.finding(
        "snapshot.blob-corrupt",
        Severity.WARNING,
        f"Layer blob of snapshot {info.id} is corrupt",
        f"{v.result.reason}. The snapshot cannot be checked against it, and a re-unpack would fail.",
        subject=subject,
        evidence={"reason": v.result.reason},
        remediation=[
            refetch_blob(
                endpoint=v.probe._endpoint,
                namespace=info.record.namespace or "k8s.io",
                digest=str(subject["layer_digest"]),
                image=str(subject["image"]),
            )
        ],
    )


def files_missing(v: VerifiedSnapshot) -> Finding | None:
    """Paths the layer blob holds are gone from the snapshot (seed 002's missing /pause)."""
    check = v.compared
    if check is None or not check.missing:
        return None
    info, subject, pause = v.info, v.subject, v.pause
    image = subject["image"]
    users = sorted({c.display_name for c in info.users + info.owners})
    critical = bool(info.users or info.owners) or (pause and pause in info.image_names)
    paths = [d.describe() for d in check.missing]
    return v.probe.finding(
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
        evidence={**v.evidence(check), "missing": paths[:MAX_LISTED], "missing_count": len(paths)},
        remediation=v.repair,
        references=["https://github.com/containerd/containerd/blob/main/docs/snapshotters/README.md"],
    )


def files_changed(v: VerifiedSnapshot) -> Finding | None:
    """Paths differ from the layer blob, or are there that the blob does not hold."""
    check = v.compared
    if check is None or not (check.changed or check.extra):
        return None
    info, subject = v.info, v.subject
    changed = [d.describe() for d in check.changed + check.extra]
    return v.probe.finding(
        "snapshot.files-changed",
        Severity.WARNING,
        f"Files changed in {subject['image'] or 'snapshot'} layer {subject['layer_index']} (snapshot {info.id})",
        f"Snapshot {info.id} ({info.key}) differs from its layer blob in {len(changed)} path(s): "
        f"{', '.join(changed[:3])}{' …' if len(changed) > 3 else ''}.",
        subject=subject,
        evidence={**v.evidence(check), "changed": changed[:MAX_LISTED], "changed_count": len(changed)},
        remediation=v.repair,
    )


#: One snapshot's verification checks, each returning its finding or None.
VERIFICATION_CHECKS: tuple[Callable[[VerifiedSnapshot], Finding | None], ...] = (
    unverifiable,
    blob_corrupt,
    files_missing,
    files_changed,
)
