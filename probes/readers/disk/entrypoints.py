"""Would a new container of each image in use find its executable? Read without the layer blobs.

For every image a sandbox or container uses, the executable the image config names (the first of
``Entrypoint`` then ``Cmd``, looked up along the config's ``PATH`` when it is a bare name) is looked up
in the merged view of the image's unpacked snapshot chain. Image configs stay in the content store
even where ``discard_unpacked_layers`` deletes the layer blobs. When the image itself is gone (removed
while pods still hold its snapshots), the containers' own OCI specs say what they exec, and their
snapshots' parent chain is what a new container of that image would mount.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from probes.readers.disk.containerd_store import ContainerdDisk, ContainerRecord, ImageView, SnapshotInfo
from probes.readers.disk.images import ContentError
from probes.readers.disk.merged import Found, find_executable


@dataclass
class EntrypointCheck:
    """One image's executable looked up in its snapshot chain."""

    image: str  # the image name (or the name the containers recorded, when the image is gone)
    source: str  # "image config" or "container spec"
    executable: str
    chain: list[SnapshotInfo]  # top layer first
    tried: list[str] = field(default_factory=list)
    found: Found | None = None
    users: list[ContainerRecord] = field(default_factory=list)
    image_present: bool = True  # the image record is in meta.db

    @property
    def missing(self) -> bool:
        return self.found is None


def _config_process(disk: ContainerdDisk, view: ImageView) -> tuple[str, str, str] | None:
    """(executable, PATH, working dir) from the image config; None when it names none or is unreadable."""
    if view.resolved is None:
        return None
    try:
        config = disk.content.read_json(view.resolved.config.digest).get("config") or {}
    except ContentError:
        return None
    argv = [str(a) for a in (config.get("Entrypoint") or []) + (config.get("Cmd") or [])]
    if not argv or not argv[0]:
        return None
    env = [str(e) for e in config.get("Env") or []]
    path_env = next((e[5:] for e in env if e.startswith("PATH=")), "")
    return argv[0], path_env, str(config.get("WorkingDir") or "/")


def _lookup(check: EntrypointCheck, path_env: str, cwd: str) -> EntrypointCheck:
    layers = [s.fs_dir for s in check.chain]
    check.found, check.tried = find_executable(layers, check.executable, path_env, cwd)
    return check


def check_entrypoints(disk: ContainerdDisk) -> list[EntrypointCheck]:
    """Every image in use, its executable looked up in its merged snapshot chain."""
    users: dict[str, list[ContainerRecord]] = {}
    for c in disk.containers():
        users.setdefault(c.image, []).append(c)
    out: list[EntrypointCheck] = []
    covered: set[str] = set()
    for view in disk.images():
        name = view.record.name
        who = users.get(name, [])
        if not who or not view.snapshots or view.snapshots[-1] is None:
            continue
        process = _config_process(disk, view)
        if process is None:
            continue
        executable, path_env, cwd = process
        chain = disk.chain(view.snapshots[-1])
        out.append(
            _lookup(EntrypointCheck(name, "image config", executable, chain, users=who), path_env, cwd)
        )
        covered.add(name)
    named = {v.record.name for v in disk.images()}
    seen: set[tuple[int, str]] = set()
    for image, who in users.items():
        if image in covered:
            continue
        for c in who:
            own = next((s for s in disk.snapshots() if c in s.owners), None)
            if own is None or not c.process.args:
                continue
            chain = disk.chain(own)[1:]  # the image's layers: what a new container would mount
            if not chain or (chain[0].id, c.process.args[0]) in seen:
                continue
            seen.add((chain[0].id, c.process.args[0]))
            check = EntrypointCheck(
                image, "container spec", c.process.args[0], chain, users=who, image_present=image in named
            )
            out.append(_lookup(check, c.process.path_env, c.process.cwd))
    return out
