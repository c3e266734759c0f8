"""The few kubelet settings nodedoc compares with containerd's, read without a YAML library.

``/var/lib/kubelet/config.yaml`` (a KubeletConfiguration) is read for top-level scalar keys only
(``cgroupDriver: systemd``), which is all nodedoc needs; nested maps and lists are skipped. The deprecated
``--cgroup-driver`` flag in ``/var/lib/kubelet/kubeadm-flags.env`` or ``/etc/default/kubelet`` /
``/etc/sysconfig/kubelet`` overrides the file, as it does for the kubelet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from probes.readers.host.binaries import local

CONFIG = "/var/lib/kubelet/config.yaml"
FLAG_FILES = ("/var/lib/kubelet/kubeadm-flags.env", "/etc/default/kubelet", "/etc/sysconfig/kubelet")
#: The kubelet's own default when neither the file nor a flag sets it.
DEFAULT_CGROUP_DRIVER = "cgroupfs"

_TOP_LEVEL = re.compile(r"^([A-Za-z][\w.-]*)\s*:\s*(.*?)\s*$")
_FLAG = re.compile(r"--cgroup-driver[= ](\S+?)[\"']?(?:\s|$)")


def _scalar(text: str) -> str:
    text = re.sub(r"\s+#.*$", "", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def read_top_level(text: str) -> dict[str, str]:
    """Top-level ``key: scalar`` pairs of a YAML document (keys whose value is a block are left out)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0] in " \t#-" or line.startswith("---"):
            continue
        match = _TOP_LEVEL.match(line)
        if match and match[2] and match[2][0] not in "|>{[&":
            values[match[1]] = _scalar(match[2])
    return values


@dataclass(frozen=True)
class CgroupDriver:
    """The kubelet's cgroup driver and where it comes from (file:line or ``kubelet default``)."""

    value: str
    origin: str


@dataclass
class KubeletConfig:
    """What nodedoc read of the kubelet's configuration; ``present`` is False when the node has none."""

    path: str | None
    values: dict[str, str] = field(default_factory=dict)
    cgroup_driver: CgroupDriver | None = None

    @property
    def present(self) -> bool:
        return self.path is not None


def read(host_root: Path) -> KubeletConfig:
    """The kubelet's config under the host root (``present`` False when there is no kubelet config)."""
    config_file = local(host_root, CONFIG)
    config = KubeletConfig(path=None)
    if config_file.is_file():
        config.path = CONFIG
        try:
            text = config_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        config.values = read_top_level(text)
        if "cgroupDriver" in config.values:
            line = next(
                (n for n, raw in enumerate(text.splitlines(), 1) if raw.startswith("cgroupDriver")), 0
            )
            config.cgroup_driver = CgroupDriver(config.values["cgroupDriver"], f"{CONFIG}:{line}")
    for flags in FLAG_FILES:
        try:
            text = local(host_root, flags).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = _FLAG.search(text)
        if match:
            config.path = config.path or flags
            config.cgroup_driver = CgroupDriver(match[1].strip("\"'"), f"{flags} (--cgroup-driver)")
    if config.present and config.cgroup_driver is None:
        config.cgroup_driver = CgroupDriver(DEFAULT_CGROUP_DRIVER, "kubelet default (cgroupDriver not set)")
    return config
