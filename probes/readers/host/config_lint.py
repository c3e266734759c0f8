"""What containerd 2.x does differently with a config: settings it removed, and v2 tables in a v3 file.

Verified on Debian's containerd 2.1.9: a setting 2.0 removed (``systemd_cgroup``, ``default_runtime``, ...) is
dropped with "Ignoring unknown key in TOML for plugin" in the log and no error; in a ``version = 3`` file,
keys under ``plugins."io.containerd.grpc.v1.cri"`` other than the streaming server's are ignored without a
word (``SystemdCgroup`` there leaves runc on cgroupfs). A version 1 or 2 file is migrated in memory at each
start ("Configuration migrated from version 2, use `containerd config migrate` to avoid migration").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probes.readers.host.containerd_config import V2_CRI, V3_IMAGES, V3_RUNTIME, ContainerdConfig

#: What stays in the io.containerd.grpc.v1.cri plugin in a version 3 config (containerd 2.x's CRI server).
V3_GRPC_KEYS = frozenset(
    {
        "disable_tcp_service",
        "stream_server_address",
        "stream_server_port",
        "stream_idle_timeout",
        "enable_tls_streaming",
        "x509_key_pair_streaming",
    }
)
#: Keys of the v2 CRI table that containerd 2.x reads from the images plugin (the rest go to runtime).
V3_IMAGE_KEYS = frozenset(
    {
        "sandbox_image",
        "registry",
        "image_decryption",
        "max_concurrent_downloads",
        "image_pull_progress_timeout",
        "image_pull_with_sync_fs",
        "stats_collect_period",
    }
)
V3_IMAGE_CONTAINERD_KEYS = frozenset(
    {"snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"}
)

#: Settings containerd 2.0 removed: (path under the CRI runtime table, key, bad value or None for any,
#: deprecation id in probes/knowledge/data/deprecations.toml). ``*`` matches every runtime.
REMOVED_IN_2 = (
    ((), "systemd_cgroup", None, "cri-systemd-cgroup-v1"),
    (("containerd",), "untrusted_workload_runtime", None, "cri-untrusted-workload-runtime"),
    (("containerd",), "default_runtime", None, "cri-default-runtime"),
    (("containerd", "runtimes", "*"), "runtime_engine", None, "cri-runtime-engine"),
    (("containerd", "runtimes", "*"), "runtime_root", None, "cri-runtime-root"),
    (("containerd", "runtimes", "*", "options"), "CriuPath", None, "cri-criu-path"),
    (("containerd", "runtimes", "*"), "runtime_type", "io.containerd.runtime.v1.linux", "runtime-v1"),
    (("containerd", "runtimes", "*"), "runtime_type", "io.containerd.runc.v1", "runtime-runc-v1"),
)


@dataclass(frozen=True)
class RemovedSetting:
    """A setting containerd 2.0 removed, where it is in this file, and its deprecation id."""

    table: str
    key: str
    value: Any
    deprecation: str


@dataclass(frozen=True)
class MisplacedKey:
    """A key a version 3 file sets in the old CRI table, and the table containerd 2.x reads it from."""

    key: str
    belongs_in: str


def _walk(
    data: Any, path: tuple[str, ...], names: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    if not isinstance(data, dict):
        return []
    if not path:
        return [(names, data)]
    head, rest = path[0], path[1:]
    keys = sorted(data) if head == "*" else [head]
    found = []
    for key in keys:
        if key in data:
            found += _walk(data[key], rest, (*names, key))
    return found


def removed_settings(config: ContainerdConfig) -> list[RemovedSetting]:
    """Settings of the CRI runtime table that containerd 2.0 removed (a v3 file can carry them too:
    ``config migrate`` copies unknown keys across)."""
    plugin = config.runtime_plugin
    found = []
    for path, key, bad, deprecation in REMOVED_IN_2:
        for names, table in _walk(config.plugin_table(plugin), path):
            if key not in table or (bad is not None and table[key] != bad):
                continue
            found.append(RemovedSetting(config.table_name(plugin, *names), key, table[key], deprecation))
    return found


def misplaced_in_v3(config: ContainerdConfig) -> list[MisplacedKey]:
    """In a version 3 file: keys under the old ``io.containerd.grpc.v1.cri`` table that 2.x never reads."""
    if config.version < 3:
        return []
    old = config.plugin_table(V2_CRI)
    found = []
    for key in sorted(old):
        if key in V3_GRPC_KEYS:
            continue
        if key == "containerd" and isinstance(old[key], dict):
            for sub in sorted(old[key]):
                plugin = V3_IMAGES if sub in V3_IMAGE_CONTAINERD_KEYS else V3_RUNTIME
                where = () if plugin == V3_IMAGES else ("containerd",)
                found.append(MisplacedKey(f"containerd.{sub}", config.table_name(plugin, *where)))
            continue
        plugin = V3_IMAGES if key in V3_IMAGE_KEYS else V3_RUNTIME
        if key == "sandbox_image":
            found.append(MisplacedKey(key, config.table_name(V3_IMAGES, "pinned_images") + " sandbox"))
        else:
            found.append(MisplacedKey(key, config.table_name(plugin)))
    return found
