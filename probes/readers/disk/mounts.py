"""Overlay mounts from /proc/mounts: which snapshots are mounted now, and for which container.

A container's rootfs is ``overlay`` mounted at ``<state>/io.containerd.runtime.v2.task/<ns>/<id>/rootfs``
with ``lowerdir`` = its parent chain's ``snapshots/N/fs`` (top first) and ``upperdir`` = its own.
When the options would be too long containerd passes relative paths (``lowerdir=3/fs:1/fs``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from probes.errors import NodedocError

SNAPSHOT_PATH = re.compile(r"(?:^|/)io\.containerd\.snapshotter\.v1\.overlayfs/snapshots/(\d+)/fs$")
RELATIVE_SNAPSHOT = re.compile(r"^(\d+)/fs$")
TASK_ROOTFS = re.compile(r"/io\.containerd\.runtime\.v2\.task/([^/]+)/([^/]+)/rootfs$")
_OCTAL = re.compile(r"\\([0-7]{3})")


class MountsError(NodedocError):
    """The mount table could not be read."""


@dataclass(frozen=True)
class OverlayMount:
    """One overlay mount: where, its layers as snapshot ids (top first), and its container when known."""

    mountpoint: str
    lower_ids: tuple[int, ...]
    upper_id: int | None
    namespace: str
    container_id: str
    snapshot_root: str  # the overlayfs snapshotter dir the paths are under ("" when relative)
    lowerdirs: tuple[str, ...]
    upperdir: str

    @property
    def snapshot_ids(self) -> tuple[int, ...]:
        return ((self.upper_id,) if self.upper_id is not None else ()) + self.lower_ids


def unescape(field: str) -> str:
    """/proc/mounts escapes space, tab, newline and backslash as \\ooo."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def _split_lowerdir(value: str) -> list[str]:
    """Split on ':' not escaped by a backslash."""
    parts, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            cur.append(value[i + 1])
            i += 2
            continue
        if c == ":":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p for p in parts if p]


def _options(field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for opt in field.split(","):
        key, _, value = opt.partition("=")
        out[key] = value
    return out


def _snapshot_id(path: str) -> tuple[int | None, str]:
    m = SNAPSHOT_PATH.search(path)
    if m:
        return int(m.group(1)), path[: m.start(1)].rstrip("/").removesuffix("/snapshots")
    m = RELATIVE_SNAPSHOT.match(path)
    if m:
        return int(m.group(1)), ""
    return None, ""


def parse_mounts(text: str) -> list[OverlayMount]:
    """The overlay mounts of a /proc/mounts text whose layers are overlayfs snapshots."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "overlay":
            continue
        mountpoint = unescape(fields[1])
        opts = _options(unescape(fields[3]))
        lowers = _split_lowerdir(opts.get("lowerdir", ""))
        upper = opts.get("upperdir", "")
        lower_ids: list[int] = []
        roots = set()
        for p in lowers:
            sid, root = _snapshot_id(p)
            if sid is not None:
                lower_ids.append(sid)
                roots.add(root)
        upper_id, uroot = _snapshot_id(upper) if upper else (None, "")
        if upper_id is not None:
            roots.add(uroot)
        if not lower_ids and upper_id is None:
            continue
        m = TASK_ROOTFS.search(mountpoint)
        out.append(
            OverlayMount(
                mountpoint=mountpoint,
                lower_ids=tuple(lower_ids),
                upper_id=upper_id,
                namespace=m.group(1) if m else "",
                container_id=m.group(2) if m else "",
                snapshot_root=next(iter(roots - {""}), ""),
                lowerdirs=tuple(lowers),
                upperdir=upper,
            )
        )
    return out


def read_overlay_mounts(proc_root: Path = Path("/proc")) -> list[OverlayMount]:
    """Overlay mounts of the host's mount namespace (pid 1's view when readable, else this process's)."""
    for candidate in (proc_root / "1" / "mounts", proc_root / "self" / "mounts", proc_root / "mounts"):
        try:
            return parse_mounts(candidate.read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError:
            continue
    raise MountsError(f"cannot read the mount table under {proc_root} (is procfs mounted there?)")


def mounts_for_root(mounts: list[OverlayMount], overlay_dir: Path) -> list[OverlayMount]:
    """The mounts whose snapshots are under ``overlay_dir`` (or relative, whose root cannot be told)."""
    want = str(overlay_dir.resolve()) if overlay_dir.exists() else str(overlay_dir)
    return [m for m in mounts if m.snapshot_root in ("", want, str(overlay_dir))]
