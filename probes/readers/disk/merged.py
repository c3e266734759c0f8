"""Look a path up in a stack of overlayfs layers the way the kernel's overlayfs shows it, without mounting.

The layers are a snapshot chain's ``fs`` directories, top first (a container's lowerdirs). A name in an
upper layer hides the same name below; a whiteout (character device 0/0, as containerd's overlay
snapshotter writes ``.wh.NAME``) hides it and everything below; a directory is merged with the same
directory in lower layers until one carries the opaque xattr (``trusted.overlay.opaque=y``) or a lower
layer has a non-directory there. Symlinks are followed inside the stack: an absolute target starts again
from the stack's root, never from the host's.

This answers "would ``exec`` find the entrypoint?" for a node whose layer blobs are gone.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from probes.readers.disk.layer_verify import is_opaque

MAX_SYMLINKS = 40  # the kernel's limit when it follows links in one lookup
#: runc and Go use this PATH when the process's environment has none.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Found:
    """A path as the merged view has it: where it resolved to and which layer holds it."""

    path: str  # resolved, absolute inside the stack: "/usr/bin/sh"
    layer: Path  # the fs directory of the layer that holds it
    mode: int  # st_mode (lstat of the final, non-symlink entry)

    @property
    def executable(self) -> bool:
        return stat.S_ISREG(self.mode) and bool(self.mode & 0o111)


def _entry(dirs: list[Path], name: str) -> tuple[os.stat_result, Path, list[Path]] | None:
    """The topmost ``name`` in these merged directories, and the directories it merges (when a dir)."""
    top: tuple[os.stat_result, Path] | None = None
    merged: list[Path] = []
    for d in dirs:
        p = d / name
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # whiteout: hides this and every lower layer
            break
        if top is not None and not stat.S_ISDIR(st.st_mode):
            break
        if top is None:
            top = (st, p)
            if not stat.S_ISDIR(st.st_mode):
                return st, p, []
        merged.append(p)
        if is_opaque(p):
            break
    return (top[0], top[1], merged) if top is not None else None


def lookup(layers: list[Path], path: str) -> Found | None:
    """Resolve ``path`` in the stack (top layer first), following symlinks; None when it does not exist."""
    if not layers:
        return None
    parts = [p for p in path.split("/") if p]
    names: list[str] = []
    dir_stack: list[list[Path]] = [list(layers)]
    where, mode = layers[0], stat.S_IFDIR | 0o755
    links = 0
    while parts:
        name = parts.pop(0)
        if name == ".":
            continue
        if name == "..":
            if names:
                names.pop()
                dir_stack.pop()
            continue
        found = _entry(dir_stack[-1], name)
        if found is None:
            return None
        st, where, merged = found
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                return None
            target = os.readlink(where)
            if target.startswith("/"):
                names, dir_stack = [], [list(layers)]
            parts = [p for p in target.split("/") if p] + parts
            continue
        if parts and not stat.S_ISDIR(st.st_mode):
            return None  # ENOTDIR
        names.append(name)
        dir_stack.append(merged)
        mode = st.st_mode
    layer = next((top for top in layers if where == top or top in where.parents), layers[0])
    return Found("/" + "/".join(names), layer, mode)


def find_executable(
    layers: list[Path], name: str, path_env: str = "", cwd: str = "/"
) -> tuple[Found | None, list[str]]:
    """Where ``exec`` of ``name`` would land in the stack, and every path tried.

    A name with a slash is taken as is (relative to ``cwd``); a bare name is searched along ``path_env``
    (the process's PATH; the default one when it is empty), as runc does with the container's PATH.
    """
    if "/" in name:
        tried = [name if name.startswith("/") else f"{cwd.rstrip('/')}/{name}"]
    else:
        dirs = (path_env or DEFAULT_PATH).split(":")
        tried = [f"{(d or cwd).rstrip('/')}/{name}" for d in dirs]
    for candidate in tried:
        found = lookup(layers, candidate)
        if found is not None and found.executable:
            return found, tried
    return None, tried
