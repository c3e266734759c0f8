"""containerd's config.toml as containerd would read it: which file, its imports, and the CRI settings in it.

Where the file is: ``NODEDOC_CONTAINERD_CONFIG`` (a host path; the lab keeps its config in its own folder),
else the ``--config`` of the running containerd that serves the node's endpoint, else the systemd unit's
``ExecStart --config``, else the plain, k3s and RKE2 locations. No file means containerd's defaults.

Versions 1 (``plugins.cri``), 2 (``plugins."io.containerd.grpc.v1.cri"``) and 3 (``io.containerd.cri.v1.images``
and ``io.containerd.cri.v1.runtime``) are read. ``imports`` (globs, relative to the main file) are merged the
way containerd 1.x documents it: top-level values override, lists append, each plugin's table is replaced
entirely by an import's; for version 3 plugin tables are merged key by key (containerd 2.x; unverified).
A file that does not parse is data (:class:`ParseProblem`, with the line), not an exception.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.compat import tomllib
from probes.errors import NodedocError
from probes.readers.host.binaries import host_realpath, local

ENV_VAR = "NODEDOC_CONTAINERD_CONFIG"
DEFAULT_SOCKET = "/run/containerd/containerd.sock"

#: (config path, flavour, template next to it or None)
KNOWN_LOCATIONS = (
    ("/etc/containerd/config.toml", "containerd"),
    ("/var/lib/rancher/k3s/agent/etc/containerd/config.toml", "k3s"),
    ("/var/lib/rancher/rke2/agent/etc/containerd/config.toml", "rke2"),
)

V2_CRI = "io.containerd.grpc.v1.cri"
V3_IMAGES = "io.containerd.cri.v1.images"
V3_RUNTIME = "io.containerd.cri.v1.runtime"

_TOML_POS = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass(frozen=True)
class ParseProblem:
    """A config file that does not parse: the file, the line and column, and tomllib's message."""

    path: str
    line: int | None
    column: int | None
    message: str

    def describe(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Setting:
    """A value from the config, the TOML table it lives in (for edits), and whether it is containerd's default."""

    value: Any
    table: str
    key: str
    default: bool = False


@dataclass
class ContainerdConfig:
    """The effective config; ``path`` is None when no file exists (containerd runs on defaults)."""

    path: str | None
    source: str
    flavour: str = "containerd"
    data: dict[str, Any] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    problem: ParseProblem | None = None

    @property
    def version(self) -> int:
        raw = self.data.get("version", 1 if self.path else 2)
        return raw if isinstance(raw, int) else 1

    @property
    def template(self) -> str | None:
        """k3s / RKE2 regenerate config.toml at start; edits go to this template (None elsewhere)."""
        if self.flavour == "containerd" or not self.path:
            return None
        return str(Path(self.path).parent / "config.toml.tmpl")

    @property
    def edit_target(self) -> str:
        """The file a person should edit to change a setting."""
        return self.template or self.path or "/etc/containerd/config.toml"

    def plugin_table(self, name: str) -> dict[str, Any]:
        """A plugin's table as written ({} when absent)."""
        plugins = self.data.get("plugins", {})
        value = plugins.get(name, {}) if isinstance(plugins, dict) else {}
        return value if isinstance(value, dict) else {}

    def table_name(self, plugin: str, *path: str) -> str:
        """The TOML table name of ``path`` in ``plugin``, quoted as this config's version writes it."""
        return self._table(plugin, *path)

    def _quote(self, name: str) -> str:
        return f"'{name}'" if self.version >= 3 else f'"{name}"'

    def _table(self, plugin: str, *path: str) -> str:
        return ".".join([f"plugins.{self._quote(plugin)}", *path])

    @property
    def images_plugin(self) -> str:
        return {1: "cri", 2: V2_CRI}.get(self.version, V3_IMAGES)

    @property
    def runtime_plugin(self) -> str:
        return {1: "cri", 2: V2_CRI}.get(self.version, V3_RUNTIME)

    @staticmethod
    def _dig(data: dict[str, Any], *path: str) -> Any:
        for part in path:
            if not isinstance(data, dict) or part not in data:
                return None
            data = data[part]
        return data

    def _get(self, plugin: str, table: tuple[str, ...], key: str, default: Any) -> Setting:
        value = self._dig(self.plugin_table(plugin), *table, key)
        return Setting(default if value is None else value, self._table(plugin, *table), key, value is None)

    def default_runtime(self) -> str:
        name = self._dig(self.plugin_table(self.runtime_plugin), "containerd", "default_runtime_name")
        return name if isinstance(name, str) and name else "runc"

    def runtime_option(self, key: str, default: Any = None) -> Setting:
        """An option of the default runtime (``SystemdCgroup``, ``BinaryName``)."""
        table = ("containerd", "runtimes", self.default_runtime(), "options")
        return self._get(self.runtime_plugin, table, key, default)

    def systemd_cgroup(self) -> Setting:
        return self.runtime_option("SystemdCgroup", False)

    def sandbox_image(self) -> Setting:
        if self.version >= 3:
            return self._get(V3_IMAGES, ("pinned_images",), "sandbox", "registry.k8s.io/pause:3.10")
        return self._get(self.images_plugin, (), "sandbox_image", "registry.k8s.io/pause:3.6")

    def snapshotter(self) -> Setting:
        if self.version >= 3:
            return self._get(V3_IMAGES, (), "snapshotter", "overlayfs")
        return self._get(self.images_plugin, ("containerd",), "snapshotter", "overlayfs")

    def cni_bin_dirs(self) -> Setting:
        dirs = self._get(self.runtime_plugin, ("cni",), "bin_dirs", None)
        if not dirs.default and isinstance(dirs.value, list):
            return dirs
        single = self._get(self.runtime_plugin, ("cni",), "bin_dir", "/opt/cni/bin")
        return Setting([single.value], single.table, single.key, single.default)

    def cni_conf_dir(self) -> Setting:
        return self._get(self.runtime_plugin, ("cni",), "conf_dir", "/etc/cni/net.d")

    def discard_unpacked_layers(self) -> Setting:
        """CRI deletes a layer's blob once it is unpacked (CRI pulls only); false by default."""
        if self.version >= 3:
            return self._get(V3_IMAGES, (), "discard_unpacked_layers", False)
        return self._get(self.images_plugin, ("containerd",), "discard_unpacked_layers", False)

    def registry(self) -> tuple[dict[str, Any], str]:
        """The CRI registry table and its TOML table name."""
        table = self._dig(self.plugin_table(self.images_plugin), "registry")
        return (table if isinstance(table, dict) else {}), self._table(self.images_plugin, "registry")

    def runtime_flag(self, key: str) -> Setting:
        return self._get(self.runtime_plugin, (), key, False)

    def ignored_deprecations(self) -> Setting:
        """``ignore_deprecation_warnings``: ids kept out of the CRI condition (still in the introspection list)."""
        return self._get(self.runtime_plugin, (), "ignore_deprecation_warnings", [])

    def root(self) -> str:
        return str(self.data.get("root") or "/var/lib/containerd")

    def state(self) -> str:
        return str(self.data.get("state") or "/run/containerd")

    def grpc_address(self) -> str:
        grpc = self.data.get("grpc")
        address = grpc.get("address") if isinstance(grpc, dict) else None
        return str(address or DEFAULT_SOCKET)


# -- reading -----------------------------------------------------------------------------------------------


def parse_text(text: str, path: str) -> tuple[dict[str, Any], ParseProblem | None]:
    try:
        return tomllib.loads(text), None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        pos = _TOML_POS.search(message)
        line, column = (int(pos[1]), int(pos[2])) if pos else (None, None)
        return {}, ParseProblem(path, line, column, _TOML_POS.sub("", message).strip())


def _read(host_root: Path, path: str) -> tuple[dict[str, Any], ParseProblem | None]:
    try:
        text = local(host_root, host_realpath(host_root, path)).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return {}, ParseProblem(path, None, None, f"cannot read: {exc.strerror or exc}")
    return parse_text(text, path)


def _merge(into: dict[str, Any], extra: dict[str, Any], deep_plugins: bool) -> None:
    for key, value in extra.items():
        if key == "plugins" and isinstance(value, dict) and isinstance(into.get(key), dict):
            for plugin, table in value.items():
                if deep_plugins and isinstance(table, dict) and isinstance(into[key].get(plugin), dict):
                    _deep_merge(into[key][plugin], table)
                else:
                    into[key][plugin] = table
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + value
        else:
            into[key] = value


def _deep_merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def read_config(
    host_root: Path, path: str | None, source: str, flavour: str = "containerd"
) -> ContainerdConfig:
    """Read a config file and its imports; a missing path (None) stands for containerd's defaults."""
    config = ContainerdConfig(path=path, source=source, flavour=flavour)
    if path is None:
        return config
    data, problem = _read(host_root, path)
    if problem:
        config.problem = problem
        return config
    imports = data.get("imports", [])
    base = Path(path).parent
    for pattern in imports if isinstance(imports, list) else []:
        full = pattern if str(pattern).startswith("/") else str(base / str(pattern))
        for match in sorted(glob.glob(str(local(host_root, full)))):
            host_path = "/" + os.path.relpath(match, host_root)
            if host_path == path:
                continue
            extra, problem = _read(host_root, host_path)
            if problem:
                config.problem = problem
                return config
            config.imports.append(host_path)
            extra.pop("imports", None)
            _merge(data, extra, deep_plugins=data.get("version", 1) >= 3)
    config.data = data
    return config


# -- finding the file --------------------------------------------------------------------------------------


def _flavour(path: str) -> str:
    return "k3s" if "/rancher/k3s/" in path else "rke2" if "/rancher/rke2/" in path else "containerd"


def _config_arg(args: list[str] | tuple[str, ...]) -> str | None:
    for n, arg in enumerate(args):
        if arg in ("--config", "-c") and n + 1 < len(args):
            return args[n + 1]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
    return None


def _socket(endpoint: str | None, host_root: Path = Path("/")) -> str:
    """The endpoint's socket as the node's containerd names it in its config.

    From a debug container the endpoint is given under the host root (``/host/run/...``); the containerd
    that serves it wrote ``/run/...`` in its ``grpc.address``.
    """
    if not endpoint:
        return DEFAULT_SOCKET
    path = Path(endpoint.removeprefix("unix://"))
    if host_root != Path("/") and path.is_relative_to(host_root):
        return "/" + str(path.relative_to(host_root))
    return str(path)


def running_configs(proc_root: Path) -> list[tuple[int, str | None]]:
    """(pid, --config value or None) of every containerd process in this procfs."""
    found = []
    root = str(proc_root)
    try:
        names = os.listdir(root)
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            # A process names itself: one whose name is not UTF-8 is not containerd.
            if _read_proc_file(f"{root}/{name}/comm").decode("utf-8").strip() != "containerd":
                continue
            args = _read_proc_file(f"{root}/{name}/cmdline").decode(errors="replace").split("\0")
        except (OSError, UnicodeDecodeError):
            continue
        found.append((int(name), _config_arg([a for a in args if a])))
    return found


def serving_containerd(
    host_root: Path, proc_root: Path | None, endpoint: str | None
) -> tuple[int, str | None] | None:
    """The running containerd that serves ``endpoint`` (its config's ``grpc.address``), with the host path of
    that config (None when it runs on its defaults: no config file); None when no process in ``proc_root``
    serves it."""
    if proc_root is None:
        return None
    wanted = _socket(endpoint, host_root)
    for pid, arg in sorted(running_configs(proc_root)):
        path = arg or "/etc/containerd/config.toml"
        exists = local(host_root, path).is_file()
        data, _ = _read(host_root, path) if exists else ({}, None)
        section = data.get("grpc")
        grpc = section if isinstance(section, dict) else {}
        if str(grpc.get("address") or DEFAULT_SOCKET) == wanted:
            return pid, path if exists else None
    return None


def _read_proc_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def locate(
    host_root: Path,
    proc_root: Path | None,
    endpoint: str | None,
    unit_args: tuple[str, ...] = (),
    explicit: str | None = None,
) -> tuple[str | None, str]:
    """The host path of the config file containerd uses here and how it was found (path None: defaults).

    ``explicit`` (``--containerd-config``) wins, then ``$NODEDOC_CONTAINERD_CONFIG``, then the config of the
    running containerd serving ``endpoint``, the unit's ``--config``, and the standard locations.
    """
    if explicit:
        if not local(host_root, explicit).is_file():
            raise NodedocError(f"--containerd-config {explicit}: no such file under host root {host_root}")
        return explicit, "--containerd-config"
    env = os.environ.get(ENV_VAR)
    if env:
        if not local(host_root, env).is_file():
            raise NodedocError(f"{ENV_VAR}={env}: no such file under host root {host_root}")
        return env, f"${ENV_VAR}"
    wanted = _socket(endpoint, host_root)
    serving = serving_containerd(host_root, proc_root, endpoint)
    if serving is not None and serving[1] is not None:
        pid, path = serving
        return path, f"--config of containerd pid {pid} (serves {wanted})"
    unit_config = _config_arg(list(unit_args))
    if unit_config and local(host_root, unit_config).is_file():
        return unit_config, "ExecStart --config of containerd.service"
    for path, _flav in KNOWN_LOCATIONS:
        if local(host_root, path).is_file():
            return path, "standard location"
    return None, "no config file: containerd's defaults"


def load(
    host_root: Path,
    proc_root: Path | None,
    endpoint: str | None,
    unit_args: tuple[str, ...] = (),
    explicit: str | None = None,
) -> ContainerdConfig:
    path, source = locate(host_root, proc_root, endpoint, unit_args, explicit)
    return read_config(host_root, path, source, _flavour(path or ""))


# -- CNI ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CniNetwork:
    """One CNI config file in the conf dir: its plugin types (in order) and whether a bridge is a gateway."""

    file: str
    name: str
    types: tuple[str, ...]
    bridge_gateway: bool = False
    error: str = ""


def read_cni(host_root: Path, conf_dir: str) -> list[CniNetwork]:
    """The CNI configs containerd would consider, in the order it sorts them (it uses the first)."""
    import json

    here = local(host_root, host_realpath(host_root, conf_dir))
    if not here.is_dir():
        return []
    networks = []
    for entry in sorted(here.iterdir()):
        if entry.suffix not in (".conf", ".conflist", ".json") or not entry.is_file():
            continue
        path = f"{conf_dir.rstrip('/')}/{entry.name}"
        try:
            data = json.loads(entry.read_text(encoding="utf-8", errors="replace"))
        except (OSError, ValueError) as exc:
            networks.append(CniNetwork(path, "", (), error=str(exc)))
            continue
        plugins = data.get("plugins") if isinstance(data.get("plugins"), list) else [data]
        types = tuple(str(p.get("type", "")) for p in plugins if isinstance(p, dict))
        gateway = any(
            isinstance(p, dict) and p.get("type") == "bridge" and p.get("isGateway") for p in plugins
        )
        ipam = [
            p.get("ipam", {}).get("type")
            for p in plugins
            if isinstance(p, dict) and isinstance(p.get("ipam"), dict)
        ]
        networks.append(
            CniNetwork(path, str(data.get("name", "")), types + tuple(t for t in ipam if t), gateway)
        )
    return networks


# -- where a table is in the file (for concrete edits) -----------------------------------------------------


def split_keys(dotted: str) -> tuple[str, ...]:
    """A TOML dotted key (``plugins."io.containerd.grpc.v1.cri".registry``) as its parts, quotes removed."""
    parts, current, quote = [], "", ""
    for char in dotted.strip():
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return tuple(parts)


def table_spans(text: str) -> list[tuple[tuple[str, ...], int, int]]:
    """Each ``[table]`` header of a TOML file as (keys, first line, last line), 1-based; a table ends at its
    last line holding a value before the next header (comments and blanks in between belong to the next)."""
    spans: list[tuple[tuple[str, ...], int, int]] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            header = (
                stripped[1:].split("]", 1)[0] if '"' not in stripped else stripped[1 : stripped.rindex("]")]
            )
            spans.append((split_keys(header), number, number))
        elif spans and stripped and not stripped.startswith("#"):
            keys, first, _last = spans[-1]
            spans[-1] = (keys, first, number)
    return spans
