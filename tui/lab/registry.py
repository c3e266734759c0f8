"""A real image registry on loopback for the lab: Debian's ``docker-registry`` (the CNCF distribution
registry) serving a directory inside the lab on 127.0.0.1, and ``skopeo`` to push the lab's image to it.

With it CRI pulls are real pulls (``PullImage`` through the lab's ``hosts.toml``), so remedies that pull
an image again, and ``discard_unpacked_layers`` (which applies to CRI pulls only), can be run on the lab.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from probes.errors import NodedocError

REQUIRED = {"docker-registry": "docker-registry", "skopeo": "skopeo"}
REPOSITORY = "nodedoc/pause"


class RegistryError(NodedocError):
    """The loopback registry could not be started or fed."""


def missing_tools() -> list[str]:
    return [f"{tool} (apt-get install {pkg})" for tool, pkg in REQUIRED.items() if shutil.which(tool) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LoopbackRegistry:
    dir: Path
    port: int
    pid: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def hosts_dir(self) -> Path:
        """The directory containerd's CRI ``config_path`` names: ``<host>/hosts.toml`` inside."""
        return self.dir / "certs.d"

    def ref(self, tag: str = "lab") -> str:
        return f"{self.host}/{REPOSITORY}:{tag}"

    @classmethod
    def start(cls, directory: Path) -> LoopbackRegistry:
        missing = missing_tools()
        if missing:
            raise RegistryError("cannot start the loopback registry; missing: " + "; ".join(missing))
        directory.mkdir(parents=True, exist_ok=True)
        registry = cls(directory, free_port())
        (directory / "storage").mkdir(exist_ok=True)
        config = directory / "config.yml"
        config.write_text(
            f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {directory / "storage"}
  delete:
    enabled: true
http:
  addr: {registry.host}
"""
        )
        host_dir = registry.hosts_dir / registry.host
        host_dir.mkdir(parents=True, exist_ok=True)
        (host_dir / "hosts.toml").write_text(
            f'server = "http://{registry.host}"\n\n'
            f'[host."http://{registry.host}"]\n  capabilities = ["pull", "resolve"]\n'
        )
        log = open(directory / "registry.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        registry.pid = proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RegistryError(
                    f"docker-registry exited with {proc.returncode}; see {directory}/registry.log"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=2) as answer:
                    if answer.status == 200:
                        return registry
            time.sleep(0.1)
        raise RegistryError(f"docker-registry did not answer on {registry.host} in 30s")

    def push(self, oci_archive: Path, ref: str) -> None:
        """Copy an OCI archive to ``ref`` on this registry (plain HTTP)."""
        proc = subprocess.run(
            [
                "skopeo",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                f"oci-archive:{oci_archive}",
                f"docker://{ref}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise RegistryError(f"skopeo copy to {ref} failed: {proc.stderr.strip()[-300:]}")
