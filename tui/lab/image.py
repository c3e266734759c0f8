"""Build the lab's sandbox image without a registry: a static pause program in an OCI image layout tar.

Every byte is deterministic (fixed mtimes and owners, gzip without a timestamp), so the layer digest and
chainID are the same on every machine with the same compiler output.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import platform
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from probes.errors import NodedocError

IMAGE_NAME = "localhost/pause:lab"
PAUSE_SOURCE = Path(__file__).with_name("pause.c")

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


class ImageBuildError(NodedocError):
    """The lab image could not be built."""


@dataclass(frozen=True)
class BuiltImage:
    name: str
    tar_path: Path
    manifest_digest: str
    layer_digest: str
    diff_id: str


def compile_pause(out: Path) -> Path:
    if shutil.which("gcc") is None:
        raise ImageBuildError(
            "gcc is missing (apt-get install gcc libc6-dev): the lab compiles its pause program"
        )
    proc = subprocess.run(
        ["gcc", "-static", "-Os", "-s", "-o", str(out), str(PAUSE_SOURCE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise ImageBuildError(f"gcc -static failed: {proc.stderr.strip().splitlines()[-1:]}")
    return out


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = len(data), mode, 0, 0, 0
    tar.addfile(info, io.BytesIO(data))


def layer_tar(pause_binary: bytes) -> bytes:
    """The uncompressed layer: just ``/pause``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "pause", pause_binary, 0o755)
    return buf.getvalue()


def build_image(work: Path, name: str = IMAGE_NAME) -> BuiltImage:
    """Compile pause and write an OCI image layout tar for ``name`` under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    binary = compile_pause(work / "pause").read_bytes()
    raw = layer_tar(binary)
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps(
        {
            "architecture": _ARCH.get(platform.machine(), platform.machine()),
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "Env": ["PATH=/"]},
            "rootfs": {"type": "layers", "diff_ids": [_sha(raw)]},
            "history": [{"created_by": "nodedoc lab: static pause program"}],
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(layer),
                    "size": len(layer),
                }
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": _sha(manifest),
                    "size": len(manifest),
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                    },
                }
            ],
        },
        sort_keys=True,
    ).encode()
    tar_path = work / "pause-image.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add_bytes(tar, "index.json", index)
        for blob in (layer, config, manifest):
            _add_bytes(tar, "blobs/sha256/" + hashlib.sha256(blob).hexdigest(), blob)
    return BuiltImage(name, tar_path, _sha(manifest), _sha(layer), _sha(raw))
