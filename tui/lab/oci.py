"""Write an OCI image layout archive from layers and a config, byte for byte reproducibly.

Both images nodedoc builds go through here: the lab's pause image and the ``kubectl debug node`` image
(``scripts/build-image``). The archive is what ``ctr images import`` and ``skopeo copy oci-archive:...``
take: ``oci-layout``, ``index.json`` naming the image, and the blobs under ``blobs/sha256/``.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """A gzip-compressed layer and the digest of its uncompressed tar (the config's diff_id)."""

    blob: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.blob)


@dataclass(frozen=True)
class WrittenImage:
    name: str
    path: Path
    manifest_digest: str
    config_digest: str
    layers: tuple[Layer, ...]


def _canonical(doc: dict[str, Any]) -> bytes:
    """Sorted keys, one fixed spacing: the same document always gives the same digest."""
    return json.dumps(doc, sort_keys=True).encode()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
    """Add a regular file owned by 0:0 with a fixed mtime: nothing of the build machine leaks in."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, mtime, 0, 0
    tar.addfile(info, io.BytesIO(data))


def write_archive(
    path: Path,
    name: str,
    config: dict[str, Any],
    layers: Iterable[Layer],
    *,
    tag: str | None = None,
) -> WrittenImage:
    """Write ``path``: an OCI layout tar of one image called ``name`` (``config`` gets its diff_ids here).

    ``tag`` is the ``org.opencontainers.image.ref.name`` annotation (what skopeo's ``oci-archive:FILE:TAG``
    selects); by default the part of ``name`` after its last colon.
    """
    layers = tuple(layers)
    config = {**config, "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}}
    config_blob = _canonical(config)
    manifest_blob = _canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": CONFIG_TYPE,
                "digest": sha256_digest(config_blob),
                "size": len(config_blob),
            },
            "layers": [
                {"mediaType": LAYER_GZIP_TYPE, "digest": layer.digest, "size": len(layer.blob)}
                for layer in layers
            ],
        }
    )
    index_blob = _canonical(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": MANIFEST_TYPE,
                    "digest": sha256_digest(manifest_blob),
                    "size": len(manifest_blob),
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": tag or name.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", index_blob)
        for blob in (*(layer.blob for layer in layers), config_blob, manifest_blob):
            add_bytes(tar, "blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
    return WrittenImage(name, path, sha256_digest(manifest_blob), sha256_digest(config_blob), layers)
