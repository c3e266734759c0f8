"""Where each running pod sandbox lives on the host, read from containerd's own files, not verbose CRI.

Verbose ``PodSandboxStatus`` makes containerd marshal each sandbox's whole runtime spec, CRI config and
CNI result to JSON, which is most of what ``nodedoc pods --verbose`` waited for. The four values it shows
are on the node already, where verbose CRI takes them from:

- the pid: ``<state>/io.containerd.runtime.v2.task/<namespace>/<id>/init.pid``, which runc writes for the
  shim when the sandbox's task starts (verbose CRI reports that task's pid);
- the image and the snapshot key: the sandbox's container record in ``meta.db``
  (``v1/<namespace>/containers/<id>``: ``image``, ``snapshotKey``), which verbose CRI copies;
- the network namespace: the ``network`` entry of ``linux.namespaces`` in that record's ``spec``, the OCI
  spec verbose CRI reports as ``runtimeSpec``.

Only a running sandbox has a task, so the caller asks for ready sandboxes only. A sandbox whose files are
missing, unreadable or not as containerd writes them is left out, for the caller to ask verbose CRI;
``tests/test_pods.py`` checks the values equal verbose CRI's on every containerd series the lab runs.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.errors import NodedocError
from probes.readers.disk.bbolt import Bucket, open_bolt
from probes.readers.disk.wire import proto_any

#: The containerd namespace the CRI plugin keeps pods in (a constant in containerd 1.x and 2.x).
CRI_NAMESPACE = "k8s.io"
TASK_DIR = "io.containerd.runtime.v2.task"
META_DB = "io.containerd.metadata.v1.bolt/meta.db"


@dataclass(frozen=True)
class SandboxLocation:
    """A running sandbox's pid, its container record's image and snapshot key, and its OCI spec."""

    pid: int
    image: str
    snapshot_key: str
    spec: dict[str, Any]


def read_sandbox_locations(
    root: Path, state: Path, ids: Iterable[str], namespace: str = CRI_NAMESPACE
) -> dict[str, SandboxLocation]:
    """The location of each sandbox id whose files can all be read; {} when meta.db cannot be."""
    wanted = [i for i in ids if i and "/" not in i and "\x00" not in i and i not in (".", "..")]
    if not wanted:
        return {}
    try:
        bolt = open_bolt(root / META_DB)
    except (NodedocError, OSError):
        return {}
    found: dict[str, SandboxLocation] = {}
    try:
        containers = bolt.bucket("v1", namespace, "containers")
        if containers is None:
            return {}
        tasks = state / TASK_DIR / namespace
        for sandbox_id in wanted:
            try:
                location = _location(containers.bucket(sandbox_id), tasks / sandbox_id)
            except (NodedocError, OSError, ValueError, TypeError, RecursionError):
                location = None
            if location is not None:
                found[sandbox_id] = location
    except NodedocError:
        return {}
    finally:
        bolt.close()
    return found


def _location(record: Bucket | None, bundle: Path) -> SandboxLocation | None:
    if record is None:
        return None
    pid_text = _read_small(bundle / "init.pid").decode("ascii").strip()
    if not (pid_text.isdigit() and int(pid_text) > 0):
        return None
    image, key, spec_any = record.get("image"), record.get("snapshotKey"), record.get("spec")
    if key is None or spec_any is None:
        return None
    spec = json.loads(proto_any(spec_any)[1])
    if not isinstance(spec, dict):
        return None
    return SandboxLocation(
        pid=int(pid_text),
        image=(image or b"").decode(errors="replace"),
        snapshot_key=key.decode(errors="replace"),
        spec=spec,
    )


def _read_small(path: Path, limit: int = 64) -> bytes:
    """The first bytes of a regular file, never following a symlink or waiting on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.read(fd, limit)
    finally:
        os.close(fd)
