"""Build the lab's sandbox image without a registry: a static pause program in an OCI image layout tar.

Every byte is deterministic (fixed mtimes and owners, gzip without a timestamp), so the layer digest and
chainID are the same on every machine with the same compiler output.
"""

from __future__ import annotations

import gzip
import io
import platform
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from probes.errors import NodedocError
from tui.lab.oci import Layer, add_bytes, sha256_digest, write_archive

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


def layer_tar(pause_binary: bytes) -> bytes:
    """The uncompressed layer: just ``/pause``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "pause", pause_binary, 0o755)
    return buf.getvalue()


def build_image(work: Path, name: str = IMAGE_NAME) -> BuiltImage:
    """Compile pause and write an OCI image layout tar for ``name`` under ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    binary = compile_pause(work / "pause").read_bytes()
    raw = layer_tar(binary)
    layer = Layer(gzip.compress(raw, mtime=0), sha256_digest(raw))
    config = {
        "architecture": _ARCH.get(platform.machine(), platform.machine()),
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "Env": ["PATH=/"]},
        "history": [{"created_by": "nodedoc lab: static pause program"}],
    }
    written = write_archive(work / "pause-image.tar", name, config, [layer])
    return BuiltImage(name, written.path, written.manifest_digest, layer.digest, layer.diff_id)
