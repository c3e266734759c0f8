"""A disposable real node: Debian's containerd, runc and CNI plugins, everything inside one directory.

``Lab.up(DIR)`` writes a private containerd config (own root, state, socket, CNI config and bridge),
starts containerd, imports a locally built pause image and runs pods over CRI. ``Lab.down(DIR)``
removes the pods, stops only the processes this lab started (by pid), unmounts and deletes DIR.
The state of a running lab is kept in ``DIR/lab.json`` so another process can find and stop it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import CriError, NodedocError
from probes.readers.cri import cri_pb2 as pb
from probes.readers.cri.client import CriClient
from probes.shell import quote
from tui.lab.image import IMAGE_NAME, build_image
from tui.lab.registry import LoopbackRegistry
from tui.lab.runtimes import RuntimeBuild, ensure

NAMESPACE = "k8s.io"
POD_NAMESPACE = "nodedoc-lab"
CNI_BIN = Path("/usr/lib/cni")
CONTAINERD = {
    "containerd": ("containerd", "containerd"),
    "ctr": ("ctr", "containerd"),
}
REQUIRED = {
    "runc": ("runc", "runc"),
    "gcc": ("gcc", "gcc libc6-dev"),
    "nsenter": ("nsenter", "util-linux"),
    "ip": ("ip", "iproute2"),
}


def lab_subnet(tag: str, pods: int) -> str:
    """The lab's pod subnet, picked from its directory's hash: a /24 (253 pod addresses), or a /22 (1,021)
    for a lab started with more pods than a /24 holds (host-local IPAM gives each pod one address)."""
    second, third = 200 + int(tag[8:10], 16) % 50, int(tag[10:12], 16)
    if pods <= 250:
        return f"10.{second}.{third}.0/24"
    return f"10.{second}.{third & ~3}.0/22"


class LabError(NodedocError):
    """The lab could not be started or stopped."""


@dataclass
class LabPod:
    id: str
    name: str
    namespace: str
    uid: str
    ip: str = ""
    container_id: str = ""


@dataclass
class Lab:
    dir: Path
    pid: int = 0
    bridge: str = ""
    subnet: str = ""
    network: str = ""
    db_password: str = ""
    image: str = IMAGE_NAME
    pods: list[LabPod] = field(default_factory=list)
    #: With a loopback registry (``up(registry=True)``): its port and pid; the image is pulled from it.
    registry_port: int = 0
    registry_pid: int = 0
    #: CRI's ``discard_unpacked_layers``: layer blobs are deleted once unpacked (CRI pulls only).
    discard_layers: bool = False
    runtime: dict[str, str] = field(default_factory=dict)  # RuntimeBuild.to_dict() of the containerd it runs

    # -- where things are ---------------------------------------------------------------------------

    @property
    def socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def root(self) -> Path:
        return self.dir / "root"

    @property
    def state(self) -> Path:
        return self.dir / "state"

    @property
    def config_path(self) -> Path:
        return self.dir / "config.toml"

    @property
    def build(self) -> RuntimeBuild:
        """The containerd build this lab runs (series, exact version, binaries)."""
        if not self.runtime:  # a lab.json written before labs could run other builds
            return RuntimeBuild(series="1.6", version="", bin_dir=Path("/usr/bin"), source="system")
        fields: dict[str, Any] = {**self.runtime, "bin_dir": Path(self.runtime["bin_dir"])}
        return RuntimeBuild(**fields)

    def client(self, timeout: float = 10.0) -> CriClient:
        return CriClient.connect(self.endpoint, timeout)

    def save(self) -> None:
        data = asdict(self)
        data["dir"] = str(self.dir)
        (self.dir / "lab.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Lab:
        path = Path(directory) / "lab.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"{directory} is not a nodedoc lab (no lab.json)") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read {path}: {exc}") from None
        data["dir"] = Path(data["dir"])
        data["pods"] = [LabPod(**p) for p in data.get("pods", [])]
        return cls(**data)

    # -- starting -------------------------------------------------------------------------------------

    @staticmethod
    def missing_requirements(containerd: str | None = None) -> list[str]:
        """What this machine lacks to run a lab, as install hints; empty when it has everything. With a
        ``containerd`` series the lab fetches its own build, so the system's containerd is not needed."""
        missing = []
        if os.geteuid() != 0:
            missing.append("root (the lab starts containerd and configures pod networking: run as root)")
        needed = list(REQUIRED.values()) + ([] if containerd else list(CONTAINERD.values()))
        for binary, package in needed:
            if shutil.which(binary) is None:
                missing.append(f"{binary} (apt-get install {package})")
        for plugin in ("bridge", "host-local", "loopback"):
            if not (CNI_BIN / plugin).exists():
                missing.append(f"{CNI_BIN / plugin} (apt-get install containernetworking-plugins)")
        return missing

    @property
    def registry_dir(self) -> Path:
        return self.dir / "registry"

    @property
    def hosts_dir(self) -> Path:
        """CRI's registry ``config_path`` (``<host>/hosts.toml`` inside) when the lab has a registry."""
        return self.registry_dir / "certs.d"

    @classmethod
    def up(
        cls,
        directory: Path,
        pods: int = 3,
        containers: bool = False,
        log=print,
        containerd: str | None = None,
        registry: bool = False,
        discard_layers: bool = False,
    ) -> Lab:
        """Start a lab in ``directory`` (created; must be empty or absent) with ``pods`` running pods, on
        containerd ``containerd`` (``1.6``, ``1.7``, ``2``; None: the system's), fetched the first time.

        ``registry`` serves the pause image from a registry on loopback and CRI pulls it from there
        (slower to start; for tests that pull); ``discard_layers`` sets CRI's discard_unpacked_layers.
        """
        missing = cls.missing_requirements(containerd)
        if missing:
            raise LabError("cannot start a lab; missing: " + "; ".join(missing))
        build = ensure(containerd, log=log)
        directory = Path(directory).absolute()
        if directory.exists() and any(directory.iterdir()):
            raise LabError(
                f"{directory} is not empty; pick a new directory (or `nodedoc lab down {quote(str(directory))}`)"
            )
        if len(str(directory / "containerd.sock.ttrpc")) > 100:
            raise LabError(f"{directory} is too long a path for a unix socket; choose a shorter one")
        directory.mkdir(parents=True, exist_ok=True)
        tag = hashlib.sha256(str(directory).encode()).hexdigest()
        lab = cls(
            dir=directory,
            bridge=f"ndlab{tag[:8]}",
            subnet=lab_subnet(tag, pods),
            network=f"nodedoc-lab-{tag[:8]}",
            db_password="lab-" + secrets.token_hex(12),
            runtime=build.to_dict(),
            discard_layers=discard_layers,
        )
        try:
            if registry or discard_layers:
                served = LoopbackRegistry.start(lab.registry_dir)
                lab.registry_port, lab.registry_pid, lab.image = served.port, served.pid, served.ref()
                lab.save()
                served.push(build_image(directory / "image").tar_path, lab.image)
            lab._write_config()
            lab._start_containerd()
            lab.save()
            log(f"containerd {build.version} started (pid {lab.pid}); bringing in {lab.image}")
            if lab.registry_port:
                with lab.client(timeout=120) as client:
                    client.pull_image(lab.image)
            else:
                lab._import_image()
            if pods:
                lab.add_pods(pods, containers=containers)
            lab.save()
        except BaseException:
            with contextlib.suppress(Exception):
                lab.save()
                cls.down(directory, log=lambda *_: None)
            raise
        return lab

    def _write_config(self) -> None:
        for sub in ("root", "state", "cni", "logs", "cni-ipam"):
            (self.dir / sub).mkdir(exist_ok=True)
        self.config_path.write_text(
            f"""version = 2
root = "{self.root}"
state = "{self.state}"
[grpc]
  address = "{self.socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{self.image}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{self.dir / "cni"}"
"""
            + (
                f"""  [plugins."io.containerd.grpc.v1.cri".containerd]
    discard_unpacked_layers = {str(self.discard_layers).lower()}
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{self.hosts_dir}"
"""
                if self.registry_port
                else ""
            )
        )
        conflist = {
            "cniVersion": "0.4.0",
            "name": self.network,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": True,
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.subnet}]],
                        "dataDir": str(self.dir / "cni-ipam"),
                    },
                },
                {"type": "loopback"},
            ],
        }
        (self.dir / "cni" / "10-nodedoc-lab.conflist").write_text(json.dumps(conflist, indent=2))

    def _start_containerd(self) -> None:
        log = open(self.dir / "containerd.log", "ab")  # noqa: SIM115 - handed to the child
        build = self.build
        proc = subprocess.Popen(
            [str(build.containerd), "--config", str(self.config_path)],
            env=build.env(),  # its own bin dir first: containerd starts the shim it finds on PATH
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.pid = proc.pid
        deadline = time.monotonic() + 30
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(f"containerd exited with {proc.returncode}; see {self.dir / 'containerd.log'}")
            try:
                status = self.client(timeout=2).status()
                ready = {c.type: c.status for c in status.status.conditions}
                if ready.get("RuntimeReady") and ready.get("NetworkReady"):
                    return
                last = f"conditions {ready}"
            except CriError as exc:
                last = str(exc)
            time.sleep(0.2)
        raise LabError(f"containerd did not become ready in 30s ({last}); see {self.dir / 'containerd.log'}")

    def restart_containerd(self) -> None:
        """Stop this lab's containerd and start it again on its config (what `systemctl restart containerd`
        does on a node); the shims and their pods keep running."""
        _stop(self.pid)
        self._start_containerd()
        self.save()

    def _import_image(self) -> None:
        built = build_image(self.dir / "image")
        proc = subprocess.run(
            [
                str(self.build.ctr),
                "-a",
                str(self.socket),
                "-n",
                NAMESPACE,
                "images",
                "import",
                str(built.tar_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise LabError(f"ctr images import failed: {proc.stderr.strip()[-300:]}")

    # -- pods -----------------------------------------------------------------------------------------

    def sandbox_config(self, name: str, uid: str) -> pb.PodSandboxConfig:
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=POD_NAMESPACE, attempt=0),
            hostname=name,
            log_directory=str(self.dir / "logs" / name),
            labels={
                "app": "nodedoc-lab",
                "io.kubernetes.pod.name": name,
                "io.kubernetes.pod.namespace": POD_NAMESPACE,
            },
            annotations={"nodedoc.lab/dir": str(self.dir)},
            linux=pb.LinuxPodSandboxConfig(),
        )

    def run_pod(self, name: str, container: bool = False, client: CriClient | None = None) -> LabPod:
        """Run one pod (and its container) and record it; the caller saves."""
        uid = hashlib.sha256(f"{self.dir}/{name}".encode()).hexdigest()[:32]
        own = client is None
        client = client or self.client()
        try:
            config = self.sandbox_config(name, uid)
            (self.dir / "logs" / name).mkdir(parents=True, exist_ok=True)
            sandbox_id = client.run_pod_sandbox(config)
            pod = LabPod(id=sandbox_id, name=name, namespace=POD_NAMESPACE, uid=uid)
            pod.ip = client.pod_sandbox_status(sandbox_id, verbose=False).status.network.ip
            if container:
                cconfig = pb.ContainerConfig(
                    metadata=pb.ContainerMetadata(name="app", attempt=0),
                    image=pb.ImageSpec(image=self.image),
                    envs=[
                        pb.KeyValue(key="DB_PASSWORD", value=self.db_password.encode()),
                        pb.KeyValue(key="APP_MODE", value=b"lab"),
                    ],
                    labels={"io.kubernetes.container.name": "app"},
                    log_path="app.log",
                    linux=pb.LinuxContainerConfig(),
                )
                pod.container_id = client.create_container(sandbox_id, cconfig, config)
                client.start_container(pod.container_id)
            return pod
        finally:
            if own:
                client.close()

    def add_pods(self, count: int, containers: bool = False, prefix: str = "lab-pod") -> list[LabPod]:
        start = len(self.pods)
        names = [f"{prefix}-{i}" for i in range(start, start + count)]
        with self.client(timeout=60) as client, ThreadPoolExecutor(max_workers=4) as pool:
            added = list(pool.map(lambda n: self.run_pod(n, containers, client), names))
        self.pods.extend(added)
        self.save()
        return added

    def remove_pod(self, pod_id: str) -> None:
        with self.client(timeout=30) as client:
            client.stop_pod_sandbox(pod_id)
            client.remove_pod_sandbox(pod_id)
        self.pods = [p for p in self.pods if p.id != pod_id]
        self.save()

    # -- stopping -------------------------------------------------------------------------------------

    @classmethod
    def down(cls, directory: Path, log=print) -> None:
        """Remove the pods, stop what this lab started, unmount, delete the directory."""
        directory = Path(directory).absolute()
        lab = cls.load(directory)
        if lab.pid and _alive(lab.pid, "containerd"):
            with contextlib.suppress(CriError), lab.client(timeout=10) as client:
                ids = [s.id for s in client.list_pod_sandboxes()]
                with ThreadPoolExecutor(max_workers=4) as pool:
                    list(pool.map(lambda i: _remove_sandbox(client, i), ids))
            _stop(lab.pid)
            log(f"containerd (pid {lab.pid}) stopped")
        if lab.registry_pid and _alive(lab.registry_pid, "docker-registry"):
            _stop(lab.registry_pid)
        for pid in _shims_of(lab.socket):
            for child in _children(pid):
                _stop(child, grace=0)
            _stop(pid, grace=1)
        _unmount_under(directory)
        if lab.bridge:
            subprocess.run(["ip", "link", "del", lab.bridge], capture_output=True, timeout=10)
        results = Path("/var/lib/cni/results")
        if lab.network and results.is_dir():
            for stale in results.glob(f"{lab.network}-*"):
                stale.unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
        log(f"lab {directory} removed")


def _remove_sandbox(client: CriClient, sandbox_id: str) -> None:
    with contextlib.suppress(CriError):
        client.stop_pod_sandbox(sandbox_id)
        client.remove_pod_sandbox(sandbox_id)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int, name: str) -> bool:
    args = _cmdline(pid)
    return bool(args) and Path(args[0]).name == name


def _shims_of(socket: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            args = _cmdline(int(entry.name))
            if args and "containerd-shim" in Path(args[0]).name and str(socket) in args:
                pids.append(int(entry.name))
    return pids


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _stop(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM if grace else signal.SIGKILL)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not Path(f"/proc/{pid}").exists() or _zombie(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _unmount_under(directory: Path) -> None:
    prefix = str(directory) + "/"
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1].encode().decode("unicode_escape") for line in lines if len(line.split()) > 1]
    for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, timeout=10)
