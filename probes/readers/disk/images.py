"""containerd's content store: manifests, indexes and image configs, and which layer is which snapshot.

An image's target is a manifest or an index (OCI or Docker media types); an index is resolved to the
node's platform. The config's ``rootfs.diff_ids`` give each layer's chainID, and the committed
snapshot of layer *n* is the one whose key in the namespace is ``ChainID(L0..Ln)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import NodedocError

CONTENT_DIR = Path("io.containerd.content.v1.content")
MAX_JSON_BLOB = 8 * 1024 * 1024
#: The OCI image spec's digest grammar: ``algorithm ":" encoded``.
DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")

INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)
MANIFEST_TYPES = frozenset(
    {
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    }
)
#: Go's GOARCH for Python's machine names.
GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "i686": "386",
    "i386": "386",
}


class ContentError(NodedocError):
    """A content-store blob is missing, unreadable or not the JSON it should be."""


@dataclass(frozen=True)
class Descriptor:
    digest: str
    media_type: str
    size: int
    platform: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """Layer ``index`` of an image: its blob, its uncompressed digest and its chainID."""

    index: int
    blob: Descriptor
    diff_id: str
    chain_id: str


@dataclass(frozen=True)
class ResolvedImage:
    """An image's manifest for this node's platform, its config and its layers."""

    name: str
    target: Descriptor
    manifest: Descriptor
    config: Descriptor
    layers: tuple[Layer, ...]
    platform: str


def node_platform() -> tuple[str, str]:
    """(os, architecture) in Go's names, e.g. ("linux", "amd64")."""
    machine = os.uname().machine.lower()  # platform.machine(), without importing platform
    return "linux", GOARCH.get(machine, machine)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..Ln) = sha256 of "ChainID(L0..Ln-1) DiffID(Ln)"."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


class ContentStore:
    """``<root>/io.containerd.content.v1.content``: blobs by digest."""

    def __init__(self, root: Path) -> None:
        self.dir = root / CONTENT_DIR

    def blob_path(self, digest: str) -> Path:
        """Where a blob lives; a digest that is not the OCI grammar (a NUL, a ``/``, ``..``) names no file."""
        if not DIGEST.fullmatch(digest):
            raise ContentError(f"digest {digest[:200]!r} is not <algorithm>:<hex>")
        algo, _, hexpart = digest.partition(":")
        return self.dir / "blobs" / algo / hexpart

    def has(self, digest: str) -> bool:
        try:
            return self.blob_path(digest).is_file()
        except ContentError:
            return False

    def read_json(self, digest: str) -> dict[str, Any]:
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            if size > MAX_JSON_BLOB:
                raise ContentError(f"blob {path} is {size} bytes, too large for a manifest or config")
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ContentError(f"blob {digest} is not in the content store ({path} does not exist)") from exc
        except OSError as exc:
            raise ContentError(f"cannot read blob {path}: {exc.strerror}") from exc
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if digest.startswith("sha256:") and actual != digest:
            raise ContentError(f"blob {path} is corrupt: its sha256 is {actual}")
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise ContentError(f"blob {path} is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ContentError(f"blob {path} is not a JSON object")
        return doc

    def resolve(self, name: str, target: Descriptor, os_arch: tuple[str, str] | None = None) -> ResolvedImage:
        """Follow an image's target to this platform's manifest, config and layers."""
        want_os, want_arch = os_arch or node_platform()
        manifest_desc = target
        doc = self.read_json(target.digest)
        media = target.media_type or str(doc.get("mediaType", ""))
        for _ in range(4):  # an index may point at another index
            if media not in INDEX_TYPES and "manifests" not in doc:
                break
            manifests = [m for m in _list(doc, "manifests") if isinstance(m, dict)]
            chosen = _pick_platform(manifests, want_os, want_arch)
            if chosen is None:
                raise ContentError(
                    f"image {name}: index {manifest_desc.digest} has no manifest for {want_os}/{want_arch}"
                )
            manifest_desc = _descriptor(chosen)
            doc = self.read_json(manifest_desc.digest)
            media = manifest_desc.media_type or str(doc.get("mediaType", ""))
        config_doc = doc.get("config")
        if not isinstance(config_doc, dict):
            raise ContentError(f"image {name}: manifest {manifest_desc.digest} has no config")
        config_desc = _descriptor(config_doc)
        config = self.read_json(config_desc.digest)
        diff_ids = [str(d) for d in _list(_dict(config, "rootfs"), "diff_ids")]
        blobs = [_descriptor(layer) for layer in _list(doc, "layers") if isinstance(layer, dict)]
        if len(blobs) != len(diff_ids):
            raise ContentError(
                f"image {name}: manifest has {len(blobs)} layers but config {config_desc.digest} "
                f"has {len(diff_ids)} diff_ids"
            )
        chains = chain_ids(diff_ids)
        layers = tuple(Layer(i, b, d, c) for i, (b, d, c) in enumerate(zip(blobs, diff_ids, chains)))
        plat = f"{config.get('os', want_os)}/{config.get('architecture', want_arch)}"
        return ResolvedImage(name, target, manifest_desc, config_desc, layers, plat)


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    """``doc[key]`` when it is a JSON array, else [] (a blob is written by whoever pushed the image)."""
    value = doc.get(key)
    return value if isinstance(value, list) else []


def _dict(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _descriptor(doc: dict[str, Any]) -> Descriptor:
    plat = doc.get("platform") if isinstance(doc.get("platform"), dict) else {}
    size = doc.get("size", 0)
    return Descriptor(
        str(doc.get("digest", "")),
        str(doc.get("mediaType", "")),
        int(size) if isinstance(size, int) else 0,
        {str(k): str(v) for k, v in (plat or {}).items()},
    )


def _pick_platform(manifests: list[dict[str, Any]], want_os: str, want_arch: str) -> dict[str, Any] | None:
    """The manifest for os/arch; one without platform when it is the only one."""
    for m in manifests:
        p = _dict(m, "platform")
        if p.get("os") == want_os and p.get("architecture") == want_arch:
            return m
    plain = [m for m in manifests if not m.get("platform")]
    return plain[0] if len(plain) == 1 and len(manifests) == 1 else None
