"""containerd's disk as flat rows: images with their layers, snapshots, and verification results.

:class:`probes.readers.disk.containerd_store.ContainerdDisk` holds the live objects (bolt records, open
content store); these rows are what leaves it for a screen or a recording, and come back from JSON whole.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from probes.readers.disk.containerd_store import ContainerdDisk, ImageView, SnapshotInfo, Verification


@dataclass(frozen=True)
class LayerRow:
    """Layer ``index`` of an image: its blob and the committed snapshot it was unpacked to (None: not)."""

    index: int
    digest: str
    snapshot: int | None


@dataclass(frozen=True)
class ImageRow:
    name: str
    error: str = ""
    layers: list[LayerRow] = field(default_factory=list)

    @classmethod
    def of(cls, view: ImageView) -> ImageRow:
        layers = []
        if view.resolved is not None:
            for i, snap in enumerate(view.snapshots):
                layer = view.resolved.layers[i]
                layers.append(LayerRow(layer.index, layer.blob.digest, snap.id if snap else None))
        return cls(view.record.name, view.error, layers)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRow:
        return cls(data["name"], data.get("error") or "", [LayerRow(**layer) for layer in data["layers"]])


@dataclass(frozen=True)
class SnapshotRow:
    """One overlayfs snapshot: what it is a layer of, who uses it, where it is mounted."""

    id: int
    key: str
    name: str
    kind: str
    parent_id: int | None
    parent: str
    size: int | None
    inodes: int | None
    created: str | None
    images: list[str]
    layer: int | None
    layer_digest: str | None
    diff_id: str | None
    owners: list[str]
    owner_names: list[str]
    owner_sandboxes: list[str]
    users: list[str]
    mounted_at: list[str]
    on_disk: bool
    fs: str

    @classmethod
    def of(cls, info: SnapshotInfo) -> SnapshotRow:
        return cls(
            **info.summary(),
            name=info.record.name,
            owner_names=[c.display_name for c in info.owners],
            owner_sandboxes=[c.sandbox_id for c in info.owners],
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotRow:
        fields: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LayerComparison:
    """A snapshot compared with its layer blob: each problem as one line (``path: what differs``)."""

    blob: str = ""
    fs_dir: str = ""
    compression: str = ""
    entries: int = 0
    blob_bytes: int = 0
    tar_bytes: int = 0
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VerifyResult:
    """One snapshot's verification. status: ok, damaged, unverifiable, corrupt-blob."""

    id: int
    key: str
    status: str
    reason: str = ""
    image: str | None = None
    layer_digest: str | None = None
    check: LayerComparison | None = None

    @classmethod
    def of(cls, verification: Verification) -> VerifyResult:
        return cls.from_dict(verification.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyResult:
        check = data.get("check")
        return cls(
            id=int(data["id"]),
            key=str(data.get("key") or ""),
            status=str(data["status"]),
            reason=str(data.get("reason") or ""),
            image=data.get("image"),
            layer_digest=data.get("layer_digest"),
            check=LayerComparison(**check) if check else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def problem_paths(self) -> dict[str, str]:
        """Path → problem ("missing", "changed"), for marking files in a listing."""
        if self.check is None:
            return {}
        out = {text.split(" ", 1)[0]: "missing" for text in self.check.missing}
        out.update({text.split(":", 1)[0]: "changed" for text in self.check.changed})
        return out


@dataclass
class SnapshotCatalog:
    """Images with their layers, and every snapshot as a row."""

    root: str = ""
    images: list[ImageRow] = field(default_factory=list)
    snapshots: list[SnapshotRow] = field(default_factory=list)

    @classmethod
    def of(cls, disk: ContainerdDisk) -> SnapshotCatalog:
        return cls(
            root=str(disk.root),
            images=[ImageRow.of(view) for view in disk.images()],
            snapshots=[SnapshotRow.of(info) for info in disk.snapshots()],
        )

    def by_id(self, snapshot_id: int) -> SnapshotRow | None:
        return next((s for s in self.snapshots if s.id == snapshot_id), None)

    def by_name(self, name: str) -> SnapshotRow | None:
        return next((s for s in self.snapshots if s.name == name), None)
