"""The node a probe looks at: where the runtime's socket, root, state, procfs and host files are.

Paths come from the command line when given, else from the runtime itself (CRI verbose status), else from
containerd's config.toml (plain, k3s and RKE2 locations), else containerd's defaults when they exist.
With only ``--containerd-root`` nodedoc works post-mortem: no live runtime is looked for.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from probes.compat import StrEnum
from probes.errors import CriError, NodedocError

if TYPE_CHECKING:
    from probes.readers.cri.client import CriClient
    from probes.readers.cri.inventory import PodContainer
    from probes.readers.cri.runtime import RuntimeFacts
    from probes.readers.cri.sandboxes import SandboxView
    from probes.readers.disk.containerd_store import ContainerdDisk
    from probes.readers.disk.sandbox_locations import SandboxLocation
    from probes.readers.host.binaries import Binary
    from probes.readers.host.containerd_config import ContainerdConfig
    from probes.readers.host.os_release import NodeFacts
    from probes.readers.host.systemd_unit import Unit
    from probes.readers.procfs.procs import RuntimeScan

T = TypeVar("T")

#: containerd config files, with the root/state their distribution uses when the file names none.
CONTAINERD_CONFIGS: tuple[tuple[str, str, str], ...] = (
    ("etc/containerd/config.toml", "/var/lib/containerd", "/run/containerd"),
    (
        "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
        "/var/lib/rancher/k3s/agent/containerd",
        "/run/k3s/containerd",
    ),
    (
        "var/lib/rancher/rke2/agent/etc/containerd/config.toml",
        "/var/lib/rancher/rke2/agent/containerd",
        "/run/k3s/containerd",
    ),
)

#: The unit whose ExecStart, drop-ins and PATH say how containerd is started.
CONTAINERD_UNIT = "containerd.service"
#: The runtime's programs nodedoc reads (never runs), each copy of them the node has.
RUNTIME_PROGRAMS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc")


class Need(StrEnum):
    """What a probe needs from the node; a probe whose needs are unmet is skipped with the reason."""

    CRI = "cri"
    CONTAINERD_ROOT = "containerd-root"
    CONTAINERD_STATE = "containerd-state"
    PROCFS = "procfs"
    HOST_FILES = "host-files"


class NeedUnmet(NodedocError):
    """A probe cannot look at what it needs on a node where it should: skipped, and the verdict is unknown."""


class NotApplicable(NeedUnmet):
    """What a probe looks at is not part of this run: skipped with this reason, the verdict stands.

    Only the mode the operator chose makes a probe not applicable: post-mortem mode (no live runtime, no
    processes), a foreign ``--host-root`` with no procfs under it (a copied tree has no processes), and
    a live runtime that is not containerd (containerd's disk and state do not exist there).
    """


#: What depends on the live runtime connection, dropped together when the runtime stops answering.
_RUNTIME_KEYS = (
    "cri",
    "runtime_config",
    "runtime_facts",
    "sandboxes",
    "container_inventory",
    "root",
    "state",
)


@dataclass
class NodeContext:
    """Everything probes share about one node; caches what is expensive to read twice."""

    endpoint: str | None = None
    containerd_root: Path | None = None
    containerd_state: Path | None = None
    host_root: Path = Path("/")
    #: procfs; by default ``<host root>/proc``, so a foreign root's processes are its own or none.
    proc_root: Path = None  # type: ignore[assignment]
    timeout: float = 2.0
    #: Per-run choices probes may read (``quick``: verify only what sandboxes use; ``verify_layers``
    #: False: compare no snapshot with its blob, as ``nodedoc npd`` runs unless asked).
    options: dict[str, Any] = field(default_factory=dict)
    #: The node's Kubernetes name as given (``--node-name``); see :meth:`node_name`.
    name: str | None = None
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    #: One lock per shared value, so probes reading different values do not wait for each other.
    _key_locks: dict[str, threading.RLock] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # Paths given as strings (a caller that is not the CLI) are paths all the same.
        self.host_root = Path(self.host_root)
        if self.containerd_root is not None:
            self.containerd_root = Path(self.containerd_root)
        if self.containerd_state is not None:
            self.containerd_state = Path(self.containerd_state)
        self.proc_root = self.host_root / "proc" if self.proc_root is None else Path(self.proc_root)

    @property
    def foreign_root(self) -> bool:
        """``--host-root`` names another tree than this machine's own ``/`` (a mount or a copy)."""
        try:
            return self.host_root.resolve() != Path("/")
        except OSError:
            return True

    def node_name(self) -> str:
        """The node's name: ``--node-name``, else ``$NODE_NAME`` (what the manifests set from the downward
        API), else the host's name (what the kubelet uses unless told otherwise); "" when none is known."""
        if self.name:
            return self.name
        if os.environ.get("NODE_NAME"):
            return os.environ["NODE_NAME"]
        try:
            return self.host_path("/etc/hostname").read_text().strip()
        except OSError:
            import socket

            return socket.gethostname() if self.live_root else ""

    @property
    def live_root(self) -> bool:
        """The host root is a running system, not a copied tree: its procfs shows processes. True for ``/``
        and for a node's ``/`` mounted at ``/host`` with its ``/proc`` (a ``kubectl debug node`` pod)."""
        return (Path(self.proc_root or self.host_root / "proc") / "1").is_dir()

    @property
    def post_mortem(self) -> bool:
        """Only a containerd root was named: read the disk, look for no live runtime."""
        return self.containerd_root is not None and self.endpoint is None

    def host_path(self, path: str | os.PathLike[str]) -> Path:
        """A host path as seen from here (under ``--host-root``)."""
        p = Path(path)
        return self.host_root / p.relative_to("/") if p.is_absolute() else self.host_root / p

    # -- what is read once per node ------------------------------------------------------------------

    def fresh(self) -> NodeContext:
        """The same node with nothing read yet: a new run sees the node as it is now."""
        return replace(self)

    def close(self) -> None:
        """Forget everything read, closing the runtime connection and open databases."""
        with self._lock:
            values = list(self._memo.values())
            self._memo.clear()
        for ok, value in values:
            if ok and hasattr(value, "close"):
                value.close()

    def forget_runtime(self) -> None:
        """Drop the runtime connection and what was read through it, so the next call reconnects."""
        with self._lock:
            for key in _RUNTIME_KEYS:
                self._memo.pop(key, None)

    def _once(self, key: str, factory: Callable[[], T]) -> T:
        """Compute a shared value once per node, even when probes ask for it concurrently.

        An error is remembered too, so a dead runtime is not asked again by every probe. Each value has its
        own lock: a probe waits only for the value it asked for, never for another probe's.
        """
        with self._lock:
            entry: tuple[bool, Any] | None = self._memo.get(key)
            lock = self._key_locks.setdefault(key, threading.RLock())
        if entry is None:
            with lock:
                with self._lock:
                    entry = self._memo.get(key)
                if entry is None:
                    pace = self.options.get("pace")
                    if pace is not None:  # the troubleshooter's: a new read waits while a key is handled
                        pace()
                    try:
                        entry = (True, factory())
                    except NodedocError as exc:
                        entry = (False, exc)
                    with self._lock:
                        self._memo[key] = entry
        ok, value = cast("tuple[bool, Any]", entry)
        if not ok:
            raise cast(NodedocError, value)
        return cast(T, value)

    # -- the runtime ------------------------------------------------------------------------------

    def cri(self) -> CriClient:
        """The connected CRI client, or :class:`CriError` saying why there is none."""
        if self.post_mortem:
            raise NotApplicable("post-mortem mode (only --containerd-root given): no live runtime is used")
        from probes.readers.cri.client import discover

        return self._once("cri", lambda: discover(self.endpoint, self.timeout, host_root=self.host_root))

    def runtime_facts(self) -> RuntimeFacts:
        """Name, version, API and conditions of the live runtime (raises :class:`CriError`)."""
        from probes.readers.cri.runtime import read_runtime_facts

        return self._once("runtime_facts", lambda: read_runtime_facts(self.cri()))

    def container_inventory(self) -> list[PodContainer]:
        """Every container with its pod and environment (the report's inventory)."""
        from probes.readers.cri.inventory import container_inventory

        return self._once("container_inventory", lambda: container_inventory(self.cri()))

    def sandboxes(self) -> list[SandboxView]:
        """Every pod sandbox the runtime knows, with its IPs and where it lives (pid, netns path, snapshot
        key, image): read from containerd's files for a running pod, from verbose CRI for the others
        (:meth:`sandbox_locations`), so a view's verbose ``info`` is not kept."""
        from probes.readers.cri.sandboxes import list_sandboxes

        def read() -> list[SandboxView]:
            views = list_sandboxes(self.cri(), verbose=True, locate=self.sandbox_locations)
            for view in views:
                view.info = {}  # the same for every view, however it was read
            return views

        return self._once("sandboxes", read)

    def sandbox_locations(self, ids: list[str]) -> dict[str, SandboxLocation]:
        """Where the given ready sandboxes live (pid, netns, snapshot key, image), read from containerd's
        state and meta.db instead of verbose CRI; {} when those cannot be read here or the runtime is not
        containerd, and without the sandboxes whose files are missing (ask verbose CRI for those)."""
        from probes.readers.disk.sandbox_locations import read_sandbox_locations

        try:
            if self._other_runtime():
                return {}
            root, state = self.root(), self.state()
        except NodedocError:
            return {}
        return read_sandbox_locations(root, state, ids)

    def runtime_config(self) -> dict[str, Any]:
        """The CRI plugin's own view of its config (``Status`` verbose ``config``), {} when unknown."""

        def read() -> dict[str, Any]:
            try:
                info = self.cri().status(verbose=True).info
                return dict(json.loads(info.get("config", "{}")))
            except (CriError, NeedUnmet, ValueError):
                return {}

        return self._once("runtime_config", read)

    def containerd_config_file(self) -> tuple[Path | None, dict[str, Any]]:
        """The first containerd config.toml that exists under the host root, parsed ({} if it does not parse)."""

        def read() -> tuple[Path | None, dict[str, Any]]:
            from probes.compat import tomllib

            for rel, _root, _state in CONTAINERD_CONFIGS:
                path = self.host_root / rel
                if path.is_file():
                    try:
                        return path, tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
                    except (OSError, tomllib.TOMLDecodeError):
                        return path, {}
            return None, {}

        return self._once("containerd_config_file", read)

    def _dir_from_sources(
        self, explicit: Path | None, runtime_key: str, config_key: str, default_idx: int
    ) -> Path:
        if explicit is not None:
            return explicit
        if not self.post_mortem:
            # The runtime names paths as the host sees them: read them under the host root.
            conf = self.runtime_config()
            if runtime_key == "containerdRootDir" and conf.get(runtime_key):
                return self.host_path(conf[runtime_key])
            if runtime_key == "stateDir" and conf.get(runtime_key):
                # The CRI plugin's state dir is <containerd state>/io.containerd.grpc.v1.cri.
                return self.host_path(conf[runtime_key]).parent
        path, parsed = self.containerd_config_file()
        if parsed.get(config_key):
            return self.host_path(parsed[config_key])
        for rel, *defaults in CONTAINERD_CONFIGS:
            if path is None or path == self.host_root / rel:
                candidate = self.host_path(defaults[default_idx])
                if candidate.is_dir():
                    return candidate
        raise NeedUnmet(f"containerd {config_key} directory not found (give --containerd-{config_key})")

    def root(self) -> Path:
        """containerd's root directory (``/var/lib/containerd`` on a plain node)."""
        return self._once(
            "root",
            lambda: self._require_dir(
                self._dir_from_sources(self.containerd_root, "containerdRootDir", "root", 0), "root"
            ),
        )

    def state(self) -> Path:
        """containerd's state directory (``/run/containerd`` on a plain node)."""
        return self._once(
            "state",
            lambda: self._require_dir(
                self._dir_from_sources(self.containerd_state, "stateDir", "state", 1), "state"
            ),
        )

    @staticmethod
    def _require_dir(path: Path, what: str) -> Path:
        if not path.is_dir():
            raise NeedUnmet(f"containerd {what} {path} does not exist")
        if not os.access(path, os.R_OK | os.X_OK):
            raise NeedUnmet(f"containerd {what} {path} is not readable: run nodedoc as root")
        return path

    def containerd_disk(self) -> ContainerdDisk:
        """containerd's bolt databases and content store under its root, opened read-only."""
        from probes.readers.disk.containerd_store import ContainerdDisk

        root = self.root()
        proc = None if self.post_mortem else self.proc_root
        return self._once(f"containerd_disk:{root}", lambda: ContainerdDisk(root, proc))

    # -- the host --------------------------------------------------------------------------------------

    def node_facts(self) -> NodeFacts:
        """Hostname, kernel and OS of the node looked at (under ``--host-root`` when it is another tree)."""
        from probes.readers.host.os_release import read_node_facts

        return read_node_facts(self.host_root, self.proc_root if self.foreign_root else None)

    def containerd_unit(self) -> Unit:
        """containerd.service as systemd would load it on this node."""
        from probes.readers.host.systemd_unit import read_unit

        return self._once("containerd_unit", lambda: read_unit(self.host_root, CONTAINERD_UNIT))

    def containerd_config(self) -> ContainerdConfig:
        """The containerd config this node's containerd uses: the unit's ``--config``, imports merged."""
        from probes.readers.host.containerd_config import load
        from probes.readers.host.systemd_unit import parse_exec

        def read() -> ContainerdConfig:
            start = self.containerd_unit().all("Service", "ExecStart")
            command = parse_exec(start[-1]) if start else None
            proc = None if self.post_mortem else self.proc_root
            args = command.args if command else ()
            return load(self.host_root, proc, self.endpoint, args, self.options.get("containerd_config"))

        return self._once("containerd_config", read)

    def binary(self, name: str, path: str) -> Binary:
        """A runtime binary's version, read (never run) once per real file per node."""
        from probes.readers.host import binaries, packages

        real = binaries.host_realpath(self.host_root, path)
        dpkg = self._once("dpkg", lambda: packages.DpkgDatabase(self.host_root))
        return self._once(f"binary:{real}", lambda: binaries.inspect(self.host_root, name, path, dpkg))

    def binaries(self, wanted: list[tuple[str, str]]) -> list[Binary]:
        """:meth:`binary` of each (name, path) in order, the distinct files read at the same time (each is
        mostly hashing, which runs on another core). A file reached by several paths is read for the first
        of them, as one call after another would."""
        from probes.readers.host import binaries

        first: dict[str, tuple[str, str]] = {}
        for name, path in wanted:
            first.setdefault(binaries.host_realpath(self.host_root, path), (name, path))

        def read(name: str, path: str) -> None:
            try:
                self.binary(name, path)
            except Exception:  # noqa: S110 - read again below, so it is raised in the caller's thread
                pass

        threads = [threading.Thread(target=read, args=pair, daemon=True) for pair in list(first.values())[1:]]
        for thread in threads:
            thread.start()
        try:
            for pair in list(first.values())[:1]:
                self.binary(*pair)
        finally:
            for thread in threads:
                thread.join()
        return [self.binary(name, path) for name, path in wanted]

    def runtime_binary_paths(self) -> list[tuple[str, str]]:
        """(name, host path) of every copy of :data:`RUNTIME_PROGRAMS` on containerd's unit's PATH and in the
        usual directories: the first path of each distinct file, in search order, program by program."""
        from probes.readers.host import binaries
        from probes.readers.host.systemd_unit import search_path

        search = search_path(self.containerd_unit())
        dirs = tuple(dict.fromkeys(search + binaries.DEFAULT_PATH + binaries.EXTRA_DIRS))
        return [(name, p) for name in RUNTIME_PROGRAMS for p in binaries.find_all(self.host_root, name, dirs)]

    def read_runtime_binaries_ahead(self) -> threading.Thread:
        """Start reading :meth:`runtime_binary_paths` (:meth:`binary`) in one background thread, one file
        after another: reading one is mostly hashing it (its md5 against dpkg's record), which runs on
        another core, so probes that ask for a binary later find it read, or wait only for the rest of it.
        Each file is hashed before the rest of it is read (its version strings, dpkg's lists): that Python
        work waits its turn for the GIL, the hash does not. One thread, not one per file: on a node with
        few cores, several hashes at once would take the core the probes' Python runs on."""
        from probes.readers.host import binaries, packages

        def read() -> None:
            try:
                dpkg = self._once("dpkg", lambda: packages.DpkgDatabase(self.host_root))
                for name, path in self.runtime_binary_paths():
                    if dpkg.exists:
                        dpkg.md5(binaries.local(self.host_root, binaries.host_realpath(self.host_root, path)))
                    self.binary(name, path)
            except Exception:  # noqa: S110 - a probe that asks again gets the error in its own thread
                pass

        thread = threading.Thread(target=read, name="binaries", daemon=True)
        thread.start()
        return thread

    def serving_containerd_binary(self) -> str | None:
        """The host path of the executable of the containerd that serves the runtime's endpoint, read from
        ``/proc/<pid>/exe`` (never run); None post-mortem, when no process here serves it, or when its file
        was removed or replaced since it started."""
        from probes.readers.host.containerd_config import serving_containerd

        if self.post_mortem:
            return None
        try:
            endpoint = str(self.cri().endpoint)
        except NodedocError:
            endpoint = self.endpoint or ""
        serving = serving_containerd(self.host_root, self.proc_root, endpoint)
        if serving is None:
            return None
        try:
            exe = os.readlink(self.proc_root / str(serving[0]) / "exe")
        except OSError:
            return None
        return None if exe.endswith(" (deleted)") else exe

    def containerd_runc(self) -> tuple[str | None, str]:
        """The runc containerd's shims run: the host path of the config's BinaryName (absolute, or looked up
        on the unit's PATH) or of ``runc`` on that PATH, and the BinaryName ('' when none set); the path is
        None when no such executable exists."""
        from probes.readers.host import binaries
        from probes.readers.host.systemd_unit import search_path

        configured = ""
        try:
            value = self.containerd_config().runtime_option("BinaryName", "").value
            configured = value if isinstance(value, str) else ""
        except NodedocError:
            pass
        path = configured if configured.startswith("/") else None
        if path is None:
            path = binaries.which(self.host_root, configured or "runc", search_path(self.containerd_unit()))
        if not path or not binaries.is_executable(self.host_root, path):
            return None, configured
        return path, configured

    # -- processes -------------------------------------------------------------------------------------

    def runtime_scan(self) -> RuntimeScan:
        """containerd, its shims, runc and runc init processes with every pipe they hold."""
        from probes.readers.procfs.procs import scan_runtime

        return self._once("runtime_scan", lambda: scan_runtime(self.proc_root))

    # -- needs --------------------------------------------------------------------------------------

    def unmet(self, need: Need) -> str | None:
        """Why ``need`` cannot be met on this node, or None when it can."""
        problem = self.unmet_need(need)
        return str(problem) if problem else None

    def unmet_need(self, need: Need) -> NeedUnmet | None:
        """Why ``need`` cannot be met, typed: :class:`NotApplicable` when this run does not look there."""
        try:
            if need is Need.CRI:
                self.cri()
            elif need is Need.CONTAINERD_ROOT:
                self._containerd_dir(self.root)
            elif need is Need.CONTAINERD_STATE:
                if self.post_mortem and self.containerd_state is None:
                    return NotApplicable("post-mortem mode: no containerd state directory (it lives in /run)")
                self._containerd_dir(self.state)
            elif need is Need.PROCFS:
                if self.post_mortem:
                    return NotApplicable("post-mortem mode: the processes here are not the broken node's")
                if not (self.proc_root / "self").exists():
                    if self.foreign_root:
                        return NotApplicable(
                            f"no procfs at {self.proc_root}: a host root without proc (a copied tree) has "
                            "no processes to read"
                        )
                    return NeedUnmet(f"{self.proc_root} is not a mounted procfs")
            elif need is Need.HOST_FILES and not self.host_root.is_dir():
                return NeedUnmet(f"host root {self.host_root} does not exist")
        except NeedUnmet as exc:
            return exc
        except NodedocError as exc:
            return NeedUnmet(str(exc))
        return None

    def _containerd_dir(self, read: Callable[[], Path]) -> Path:
        """containerd's root or state; not applicable when the live runtime is another one (CRI-O)."""
        try:
            return read()
        except NeedUnmet as exc:
            other = self._other_runtime()
            if other:
                raise NotApplicable(f"the runtime here is {other}, not containerd ({exc})") from None
            raise

    def _other_runtime(self) -> str:
        """The live runtime's name when it answers and is not containerd, else ""."""
        if self.post_mortem or self.containerd_root is not None:
            return ""
        try:
            client = self.cri()
            name = str((client.version_response or client.version()).runtime_name)
        except (NodedocError, AttributeError):
            return ""
        return "" if not name or "containerd" in name.lower() else name
