"""Would a new container of each image in use find its executable? Read without the layer blobs.

For every image a sandbox or container uses, the executable it runs (the first of the image config's
``Entrypoint`` then ``Cmd``, as CRI put it in the container's OCI spec, or the pod's command where that
overrides it), looked up along the ``PATH`` it runs with when it is a bare name, is looked up in the
merged view of the image's unpacked snapshot chain. Image configs stay in the content store even where
``discard_unpacked_layers`` deletes the layer blobs; the containers' specs stay in meta.db even when
the image was removed while pods still hold its snapshots (then their snapshots' parent chain is what a
new container of that image would mount).
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
    """Every image in use: what its sandboxes and containers exec, looked up in its merged snapshot chain.

    What they exec is what their OCI specs say (CRI built them from the image config, with the pod's
    command where it overrides it); the image config's entrypoint stands in when no spec says. So an
    image whose own entrypoint is missing but whose every pod overrides it is not condemned.
    """
    users: dict[tuple[str, str], list[ContainerRecord]] = {}
    for c in disk.containers():
        users.setdefault((c.namespace, c.image), []).append(c)
    views = {(v.record.namespace, v.record.name): v for v in disk.images()}
    owners = {id(c): s for s in disk.snapshots() for c in s.owners}
    out: list[EntrypointCheck] = []
    for (namespace, image), who in sorted(users.items()):
        view = views.get((namespace, image))
        top = view.snapshots[-1] if view and view.snapshots and view.snapshots[-1] is not None else None
        config = _config_process(disk, view) if view is not None else None
        runs: dict[tuple[str, str, str], list[ContainerRecord]] = {}
        for c in who:
            if c.process.args:
                runs.setdefault((c.process.args[0], c.process.path_env, c.process.cwd), []).append(c)
        if not runs and config is not None:
            runs[config] = who
        for (executable, path_env, cwd), runners in sorted(runs.items()):
            own = owners.get(id(runners[0]))
            chain = disk.chain(top) if top is not None else (disk.chain(own)[1:] if own is not None else [])
            if not chain:
                continue
            source = "image config" if config is not None and executable == config[0] else "container spec"
            check = EntrypointCheck(
                image, source, executable, chain, users=runners, image_present=view is not None
            )
            out.append(_lookup(check, path_env, cwd))
    return out
