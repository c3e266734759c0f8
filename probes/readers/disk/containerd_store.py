"""Models of containerd's two bolt databases, read with :mod:`probes.readers.disk.bbolt`.

``meta.db`` (``<root>/io.containerd.metadata.v1.bolt/meta.db``): namespaces, images, containers and CRI
sandboxes, content entries, the snapshots each snapshotter holds per namespace, leases.

The overlayfs snapshotter's ``metadata.db`` (``<root>/io.containerd.snapshotter.v1.overlayfs/metadata.db``):
backend key → numeric id (the N of ``snapshots/N``), kind, parent, times, size, inodes and labels.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probes.errors import NodedocError
from probes.readers.disk.bbolt import BoltError, BoltFile, Bucket, open_bolt
from probes.readers.disk.images import ContentError, ContentStore, Descriptor, Layer, ResolvedImage
from probes.readers.disk.layer_verify import (
    BlobCorrupt,
    BlobMissing,
    CompressionUnsupported,
    FileEntry,
    LayerCheck,
    Progress,
    SnapshotDirMissing,
    TreeTooLarge,
    list_dir,
    verify_layer,
)
from probes.readers.disk.wire import proto_any, uvarint, varint

if TYPE_CHECKING:
    from typing_extensions import Self
from probes.readers.disk.mounts import MountsError, OverlayMount, mounts_for_root, read_overlay_mounts

META_DB = Path("io.containerd.metadata.v1.bolt/meta.db")
OVERLAY_DIR = Path("io.containerd.snapshotter.v1.overlayfs")
OVERLAY_DB = OVERLAY_DIR / "metadata.db"
OVERLAY_SNAPSHOTTER = "overlayfs"

KINDS = {1: "view", 2: "active", 3: "committed"}
GO_EPOCH_TO_UNIX = 62135596800  # seconds from 0001-01-01 to 1970-01-01


class StoreError(BoltError):
    """A bolt record does not decode as containerd writes it."""


# -- value decoders ------------------------------------------------------------------------------


def go_time(data: bytes | None) -> dt.datetime | None:
    """A Go ``time.MarshalBinary`` value (versions 1 and 2) as an aware datetime; None when absent or bad."""
    if not data or len(data) < 15 or data[0] not in (1, 2):
        return None
    secs = int.from_bytes(data[1:9], "big", signed=True) - GO_EPOCH_TO_UNIX
    nsec = int.from_bytes(data[9:13], "big")
    try:
        return dt.datetime.fromtimestamp(secs, dt.timezone.utc) + dt.timedelta(microseconds=nsec // 1000)
    except (OverflowError, OSError, ValueError):
        return None


def _text(b: Bucket | None, key: str) -> str:
    if b is None:
        return ""
    v = b.get(key)
    return v.decode(errors="replace") if v is not None else ""


def _labels(b: Bucket | None, name: str = "labels") -> dict[str, str]:
    sub = b.bucket(name) if b is not None else None
    if sub is None:
        return {}
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in sub.values().items()}


def _signed(b: Bucket, key: str) -> int | None:
    v = b.get(key)
    if not v:
        return None
    try:
        return varint(v)
    except ValueError:
        return None


# -- meta.db records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRecord:
    namespace: str
    name: str
    target: Descriptor
    labels: dict[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None


@dataclass(frozen=True)
class ProcessStart:
    """What a container's OCI spec execs: its argv, the PATH it is looked up with, the working directory.

    The spec's other environment values are not kept (they may hold secrets)."""

    args: tuple[str, ...] = ()
    path_env: str = ""
    cwd: str = "/"


def spec_process(raw: bytes | None) -> ProcessStart:
    """The ``process`` of a container's ``spec`` (a protobuf Any holding the OCI spec as JSON)."""
    if not raw:
        return ProcessStart()
    try:
        doc = json.loads(proto_any(raw)[1] or b"{}")
        process = doc.get("process") or {}
        args = tuple(str(a) for a in process.get("args") or [])
        env = [str(e) for e in process.get("env") or []]
    except (ValueError, AttributeError, TypeError):
        return ProcessStart()
    path_env = next((e[5:] for e in env if e.startswith("PATH=")), "")
    return ProcessStart(args, path_env, str(process.get("cwd") or "/"))


@dataclass(frozen=True)
class ContainerRecord:
    """A containerd container; CRI sandboxes are containers labelled ``io.cri-containerd.kind=sandbox``."""

    namespace: str
    id: str
    image: str
    snapshotter: str
    snapshot_key: str
    runtime: str
    labels: dict[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    cri: dict[str, Any] = field(default_factory=dict)  # the CRI extension's Metadata, when there is one
    process: ProcessStart = field(default_factory=ProcessStart)

    @property
    def kind(self) -> str:
        """``sandbox``, ``container`` (CRI) or ``plain`` (made with ctr or another client)."""
        return self.labels.get("io.cri-containerd.kind", "plain")

    @property
    def sandbox_id(self) -> str:
        return self.id if self.kind == "sandbox" else str(self.cri.get("SandboxID", ""))

    @property
    def display_name(self) -> str:
        """The CRI name (``pod_namespace_uid_attempt`` or ``container_pod_...``) or the id."""
        return str(self.cri.get("Name") or self.id)


@dataclass(frozen=True)
class SandboxRecord:
    """An entry of the ``sandboxes`` bucket (containerd ≥ 1.7's sandbox store)."""

    namespace: str
    id: str
    labels: dict[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None


@dataclass(frozen=True)
class ContentRecord:
    namespace: str
    digest: str
    size: int | None
    labels: dict[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None


@dataclass(frozen=True)
class MetaSnapshotRecord:
    """A snapshot as a namespace sees it: its key there and the backend's key (``name``)."""

    namespace: str
    snapshotter: str
    key: str
    name: str
    parent: str
    children: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None


@dataclass(frozen=True)
class LeaseRecord:
    namespace: str
    id: str
    labels: dict[str, str] = field(default_factory=dict)
    created: dt.datetime | None = None
    resources: tuple[str, ...] = ()  # "content/<digest>", "snapshots/<snapshotter>/<key>", "ingests/<ref>"


class _BoltDatabase:
    """A bolt file opened read-only, closed on leaving a ``with`` block."""

    def __init__(self, path: str | Path | BoltFile) -> None:
        if isinstance(path, BoltFile):
            self.path, self.bolt = Path(path.name), path
        else:
            self.path = Path(path)
            self.bolt = open_bolt(self.path)

    def close(self) -> None:
        self.bolt.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MetaDb(_BoltDatabase):
    """containerd's metadata database, opened read-only."""

    def _v1(self) -> Bucket | None:
        return self.bolt.bucket("v1")

    @property
    def schema_version(self) -> int | None:
        v1 = self._v1()
        raw = v1.get("version") if v1 is not None else None
        return varint(raw) if raw else None

    def namespaces(self) -> list[str]:
        v1 = self._v1()
        return [k.decode(errors="replace") for k, _b in v1.buckets()] if v1 is not None else []

    def _ns_named(self, namespace: str, *path: str) -> Iterator[tuple[str, str, Bucket]]:
        namespaces = [namespace] if namespace else self.namespaces()
        for ns in namespaces:
            b = self.bolt.bucket("v1", ns, *path)
            if b is not None:
                for key, sub in b.buckets():
                    yield ns, key.decode(errors="replace"), sub

    def images(self, namespace: str = "") -> list[ImageRecord]:
        out = []
        for ns, name, b in self._ns_named(namespace, "images"):
            target = b.bucket("target")
            size = _signed(target, "size") if target is not None else None
            out.append(
                ImageRecord(
                    namespace=ns,
                    name=name,
                    target=Descriptor(_text(target, "digest"), _text(target, "mediatype"), size or 0),
                    labels=_labels(b),
                    created=go_time(b.get("createdat")),
                    updated=go_time(b.get("updatedat")),
                )
            )
        return out

    def containers(self, namespace: str = "") -> list[ContainerRecord]:
        out = []
        for ns, cid, b in self._ns_named(namespace, "containers"):
            cri: dict[str, Any] = {}
            ext = b.bucket("extensions")
            if ext is not None:
                for key, value in ext.values().items():
                    if key.startswith(b"io.cri-containerd.") and key.endswith(b".metadata"):
                        try:
                            doc = json.loads(proto_any(value)[1] or b"{}")
                            cri = dict(doc.get("Metadata") or {})
                        except (ValueError, AttributeError):
                            cri = {}
            runtime = b.bucket("runtime")
            out.append(
                ContainerRecord(
                    namespace=ns,
                    id=cid,
                    image=_text(b, "image"),
                    snapshotter=_text(b, "snapshotter"),
                    snapshot_key=_text(b, "snapshotKey"),
                    runtime=_text(runtime, "name"),
                    labels=_labels(b),
                    created=go_time(b.get("createdat")),
                    updated=go_time(b.get("updatedat")),
                    cri=cri,
                    process=spec_process(b.get("spec")),
                )
            )
        return out

    def sandboxes(self, namespace: str = "") -> list[SandboxRecord]:
        return [
            SandboxRecord(ns, sid, _labels(b), go_time(b.get("createdat")))
            for ns, sid, b in self._ns_named(namespace, "sandboxes")
        ]

    def content(self, namespace: str = "") -> list[ContentRecord]:
        return [
            ContentRecord(ns, digest, _signed(b, "size"), _labels(b), go_time(b.get("createdat")))
            for ns, digest, b in self._ns_named(namespace, "content", "blob")
        ]

    def snapshots(
        self, namespace: str = "", snapshotter: str = OVERLAY_SNAPSHOTTER
    ) -> list[MetaSnapshotRecord]:
        out = []
        for ns, key, b in self._ns_named(namespace, "snapshots", snapshotter):
            children = b.bucket("children")
            out.append(
                MetaSnapshotRecord(
                    namespace=ns,
                    snapshotter=snapshotter,
                    key=key,
                    name=_text(b, "name"),
                    parent=_text(b, "parent"),
                    children=tuple(k.decode(errors="replace") for k in children.key_list())
                    if children
                    else (),
                    labels=_labels(b),
                    created=go_time(b.get("createdat")),
                )
            )
        return out

    def leases(self, namespace: str = "") -> list[LeaseRecord]:
        out = []
        for ns, lid, b in self._ns_named(namespace, "leases"):
            resources: list[str] = []
            for kind in ("content", "ingests"):
                sub = b.bucket(kind)
                if sub is not None:
                    resources += [f"{kind}/{k.decode(errors='replace')}" for k in sub.key_list()]
            snaps = b.bucket("snapshots")
            if snaps is not None:
                for sname, sb in snaps.buckets():
                    resources += [
                        f"snapshots/{sname.decode()}/{k.decode(errors='replace')}" for k in sb.key_list()
                    ]
            out.append(LeaseRecord(ns, lid, _labels(b), go_time(b.get("createdat")), tuple(resources)))
        return out


# -- overlayfs metadata.db -----------------------------------------------------------------------


@dataclass(frozen=True)
class OverlaySnapshotRecord:
    """One snapshot of the overlayfs snapshotter; its files are in ``snapshots/<id>/fs``."""

    key: str  # backend key: "<namespace>/<seq>/<name>"
    id: int
    kind: str  # view, active, committed (or "unknown(N)")
    parent: str  # backend key of the parent, "" for a base layer
    created: dt.datetime | None = None
    updated: dt.datetime | None = None
    size: int | None = None  # committed snapshots only
    inodes: int | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.key.split("/", 2)[0] if self.key.count("/") >= 2 else ""

    @property
    def name(self) -> str:
        """The key the namespace uses (a chainID for a layer, the container id for a container)."""
        return self.key.split("/", 2)[2] if self.key.count("/") >= 2 else self.key


class OverlayDb(_BoltDatabase):
    """The overlayfs snapshotter's metadata.db, opened read-only."""

    def snapshots(self) -> list[OverlaySnapshotRecord]:
        b = self.bolt.bucket("v1", "snapshots")
        if b is None:
            return []
        out = []
        for key, sb in b.buckets():
            name = key.decode(errors="replace")
            raw_id, raw_kind = sb.get("id"), sb.get("kind")
            try:
                sid = uvarint(raw_id or b"")
            except ValueError as exc:
                raise StoreError(self.bolt.name, None, f"snapshot {name!r} has no readable id") from exc
            kind_byte = raw_kind[0] if raw_kind else 0
            out.append(
                OverlaySnapshotRecord(
                    key=name,
                    id=sid,
                    kind=KINDS.get(kind_byte, f"unknown({kind_byte})"),
                    parent=_text(sb, "parent"),
                    created=go_time(sb.get("createdat")),
                    updated=go_time(sb.get("updatedat")),
                    size=_signed(sb, "size"),
                    inodes=_signed(sb, "inodes"),
                    labels=_labels(sb),
                )
            )
        return out


def meta_db_path(root: Path) -> Path:
    return root / META_DB


def overlay_db_path(root: Path) -> Path:
    return root / OVERLAY_DB


# -- the whole root, joined ----------------------------------------------------------------------


class SnapshotNotFound(NodedocError):
    """No snapshot matches the id or key given."""


@dataclass(frozen=True)
class LayerRef:
    """A committed snapshot seen as layer ``layer.index`` of ``image``."""

    namespace: str
    image: str
    layer: Layer


@dataclass
class SnapshotInfo:
    """An overlayfs snapshot with everything known about it: layer of which images, used by whom, mounted where."""

    record: OverlaySnapshotRecord
    fs_dir: Path
    on_disk: bool
    parent_id: int | None = None
    layers: list[LayerRef] = field(default_factory=list)
    owners: list[ContainerRecord] = field(default_factory=list)  # containers whose rw snapshot this is
    users: list[ContainerRecord] = field(default_factory=list)  # containers with it in their parent chain
    mounts: list[OverlayMount] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def image_names(self) -> list[str]:
        return sorted({ref.image for ref in self.layers if not ref.image.startswith("sha256:")}) or sorted(
            {ref.image for ref in self.layers}
        )

    @property
    def sandbox_users(self) -> list[ContainerRecord]:
        return [c for c in self.owners + self.users if c.kind == "sandbox"]

    def summary(self) -> dict[str, Any]:
        first = self.layers[0] if self.layers else None
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "parent_id": self.parent_id,
            "parent": self.record.parent,
            "size": self.record.size,
            "inodes": self.record.inodes,
            "created": self.record.created.isoformat() if self.record.created else None,
            "images": self.image_names,
            "layer": first.layer.index if first else None,
            "layer_digest": first.layer.blob.digest if first else None,
            "diff_id": first.layer.diff_id if first else None,
            "owners": [c.id for c in self.owners],
            "users": sorted({c.id for c in self.users}),
            "mounted_at": [m.mountpoint for m in self.mounts],
            "on_disk": self.on_disk,
            "fs": str(self.fs_dir),
        }


@dataclass
class ImageView:
    """An image of meta.db, resolved through the content store to its layers and their snapshots."""

    record: ImageRecord
    resolved: ResolvedImage | None
    error: str
    snapshots: list[SnapshotInfo | None] = field(default_factory=list)  # per layer, None when not unpacked


@dataclass
class Orphans:
    dirs_without_record: list[int] = field(default_factory=list)
    records_without_dir: list[SnapshotInfo] = field(default_factory=list)
    namespace_records_without_backend: list[MetaSnapshotRecord] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.dirs_without_record or self.records_without_dir or self.namespace_records_without_backend
        )


@dataclass
class Verification:
    """One snapshot's check. status: ok, damaged, unverifiable (blob gone, zstd, active), corrupt-blob."""

    snapshot: SnapshotInfo
    status: str
    reason: str = ""
    layer: LayerRef | None = None
    check: LayerCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.snapshot.id,
            "key": self.snapshot.key,
            "status": self.status,
            "reason": self.reason,
            "image": self.layer.image if self.layer else None,
            "layer_digest": self.layer.layer.blob.digest if self.layer else None,
            "check": self.check.to_dict() if self.check else None,
        }


class ContainerdDisk:
    """What containerd keeps under its root, read without containerd: the API the probe and screens use.

    ``proc_root`` (live node only) adds which snapshots are mounted now. Opening reads both bolt files
    once; call :meth:`reload` to read them again.
    """

    def __init__(self, root: Path, proc_root: Path | None = None) -> None:
        self.root = Path(root)
        self.proc_root = proc_root
        self.content = ContentStore(self.root)
        self.overlay_dir = self.root / OVERLAY_DIR
        self.reload()

    def reload(self) -> None:
        with MetaDb(meta_db_path(self.root)) as meta:
            self.namespaces = meta.namespaces()
            self.image_records = meta.images()
            self.container_records = meta.containers()
            self.meta_snapshots = meta.snapshots()
            self.leases = meta.leases()
            self.content_records = meta.content()
        path = overlay_db_path(self.root)
        if path.exists():
            with OverlayDb(path) as overlay:
                self.overlay_records = overlay.snapshots()
        else:
            self.overlay_records = []
        self.mounts: list[OverlayMount] = []
        if self.proc_root is not None:
            try:
                self.mounts = mounts_for_root(read_overlay_mounts(self.proc_root), self.overlay_dir)
            except MountsError:
                self.mounts = []
        self._join()

    # -- joining ------------------------------------------------------------------------------------

    def _join(self) -> None:
        by_key = {r.key: r for r in self.overlay_records}
        self._by_id: dict[int, SnapshotInfo] = {}
        self._by_key: dict[str, SnapshotInfo] = {}
        for r in sorted(self.overlay_records, key=lambda r: r.id):
            fs_dir = self.overlay_dir / "snapshots" / str(r.id) / "fs"
            parent = by_key.get(r.parent)
            info = SnapshotInfo(r, fs_dir, fs_dir.is_dir(), parent.id if parent else None)
            self._by_id[r.id] = info
            self._by_key[r.key] = info
        self._ns_key: dict[tuple[str, str], SnapshotInfo] = {}
        for m in self.meta_snapshots:
            known = self._by_key.get(m.name)
            if known is not None:
                self._ns_key[(m.namespace, m.key)] = known
        for c in self.container_records:
            if c.snapshotter != OVERLAY_SNAPSHOTTER:
                continue
            own = self._ns_key.get((c.namespace, c.snapshot_key))
            if own is None:
                continue
            own.owners.append(c)
            for ancestor in self.chain(own)[1:]:
                ancestor.users.append(c)
        for mount in self.mounts:
            for sid in mount.snapshot_ids:
                if sid in self._by_id:
                    self._by_id[sid].mounts.append(mount)
        self._images: list[ImageView] = []
        for img in self.image_records:
            try:
                resolved: ResolvedImage | None = self.content.resolve(img.name, img.target)
                error = ""
            except ContentError as exc:
                resolved, error = None, str(exc)
            view = ImageView(img, resolved, error)
            for layer in resolved.layers if resolved else ():
                snap = self._ns_key.get((img.namespace, layer.chain_id))
                view.snapshots.append(snap)
                if snap is not None and not any(
                    r.image == img.name and r.namespace == img.namespace for r in snap.layers
                ):
                    snap.layers.append(LayerRef(img.namespace, img.name, layer))
            self._images.append(view)
        for info in self._by_id.values():
            info.layers.sort(key=lambda r: (r.image.startswith("sha256:"), r.image))

    # -- listing ------------------------------------------------------------------------------------

    def images(self) -> list[ImageView]:
        return list(self._images)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every overlayfs snapshot, by id."""
        return list(self._by_id.values())

    def containers(self) -> list[ContainerRecord]:
        return list(self.container_records)

    def snapshot(self, ref: str | int) -> SnapshotInfo:
        """A snapshot by id (``12``), backend key, namespace key (chainID or container id) or unique prefix."""
        text = str(ref)
        if text.isdigit() and int(text) in self._by_id:
            return self._by_id[int(text)]
        if text in self._by_key:
            return self._by_key[text]
        hits = {id(i): i for i in self._by_id.values() if i.record.name == text}
        if not hits:
            hits = {
                id(i): i
                for i in self._by_id.values()
                if i.record.name.removeprefix("sha256:").startswith(text.removeprefix("sha256:"))
            }
        if len(hits) == 1:
            return next(iter(hits.values()))
        if len(hits) > 1:
            raise SnapshotNotFound(
                f"snapshot {text!r} is ambiguous: {', '.join(str(i.id) for i in hits.values())}"
            )
        raise SnapshotNotFound(
            f"no overlayfs snapshot {text!r} under {self.root} (give an id, key or chainID)"
        )

    def chain(self, info: SnapshotInfo) -> list[SnapshotInfo]:
        """The snapshot then its parents up to the base layer (stops on a loop or a missing parent)."""
        out, seen = [info], {info.id}
        cur = info
        while cur.parent_id is not None and cur.parent_id not in seen:
            cur = self._by_id[cur.parent_id]
            seen.add(cur.id)
            out.append(cur)
        return out

    def children(self, info: SnapshotInfo) -> list[SnapshotInfo]:
        return [i for i in self._by_id.values() if i.parent_id == info.id]

    def orphans(self) -> Orphans:
        out = Orphans()
        snapdir = self.overlay_dir / "snapshots"
        try:
            names = os.listdir(snapdir)
        except OSError:
            names = []
        out.dirs_without_record = sorted(int(n) for n in names if n.isdigit() and int(n) not in self._by_id)
        out.records_without_dir = [i for i in self._by_id.values() if not (i.fs_dir.parent.is_dir())]
        out.namespace_records_without_backend = [m for m in self.meta_snapshots if m.name not in self._by_key]
        return out

    def list_files(self, info: SnapshotInfo, path: str = "/") -> list[FileEntry]:
        """One directory of a snapshot's own files (not merged with its parents)."""
        return list_dir(info.fs_dir, path)

    # -- verifying ----------------------------------------------------------------------------------

    def verify(
        self,
        info: SnapshotInfo,
        progress: Progress | None = None,
        cancel: threading.Event | Callable[[], bool] | None = None,
        deep: bool = False,
    ) -> Verification:
        """Compare a committed snapshot with its layer blob (``deep``: every file's bytes too). Never
        raises for an unverifiable snapshot."""
        if info.kind != "committed":
            return Verification(
                info,
                "unverifiable",
                f"{info.kind} snapshot: its files come from the container, not from a layer",
            )
        if not info.layers:
            return Verification(info, "unverifiable", "no image in meta.db has this snapshot as a layer")
        ref = next((r for r in info.layers if self.content.has(r.layer.blob.digest)), info.layers[0])
        try:
            blob = self.content.blob_path(ref.layer.blob.digest)
        except ContentError as exc:
            return Verification(info, "unverifiable", str(exc), ref)
        try:
            check = verify_layer(
                blob,
                info.fs_dir,
                digest=ref.layer.blob.digest,
                diff_id=ref.layer.diff_id,
                progress=progress,
                cancel=cancel,
                deep=deep,
            )
        except BlobMissing:
            return Verification(
                info,
                "unverifiable",
                f"layer blob {ref.layer.blob.digest} is not in the content "
                "store (garbage-collected or discarded after unpack)",
                ref,
            )
        except CompressionUnsupported as exc:
            return Verification(info, "unverifiable", str(exc), ref)
        except (SnapshotDirMissing, TreeTooLarge) as exc:
            return Verification(info, "unverifiable", str(exc), ref)
        except BlobCorrupt as exc:
            return Verification(info, "corrupt-blob", str(exc), ref)
        return Verification(info, "ok" if check.ok else "damaged", "", ref, check)

    def verify_many(
        self,
        infos: list[SnapshotInfo] | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | Callable[[], bool] | None = None,
        on_result: Callable[[Verification], None] | None = None,
        deep: bool = False,
    ) -> list[Verification]:
        """Verify several snapshots (every committed one by default), as many at once as there are cores.

        Inflating and hashing release the GIL, so threads use the cores. ``progress`` counts all their
        blobs' bytes; ``on_result`` is called on the calling thread as each finishes; results in order.
        """
        todo = infos if infos is not None else [i for i in self.snapshots() if i.kind == "committed"]
        sizes = [self._blob_size(i) for i in todo]
        total = sum(sizes)
        done = [0] * len(todo)
        lock = threading.Lock()

        def one(index: int) -> Verification:
            def moved(count: int, _total: int) -> None:
                with lock:
                    done[index] = count
                    so_far = sum(done)
                if progress is not None:
                    progress(so_far, total)

            return self.verify(todo[index], moved, cancel, deep)

        out: list[Verification | None] = [None] * len(todo)
        workers = max(1, min(len(todo), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify") as pool:
            futures = {pool.submit(one, i): i for i in range(len(todo))}
            try:
                for future in as_completed(futures):
                    result = future.result()
                    out[futures[future]] = result
                    if on_result is not None:
                        on_result(result)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [r for r in out if r is not None]

    def _blob_size(self, info: SnapshotInfo) -> int:
        for ref in info.layers:
            try:
                return self.content.blob_path(ref.layer.blob.digest).stat().st_size
            except (OSError, ContentError):
                continue
        return 0
