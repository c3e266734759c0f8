"""The runtime's binaries on the node: where they are, which one PATH finds, and what version each says.

Paths are host paths (``/usr/bin/containerd``); files are looked at under the node's host root, and
symlinks are followed within it (``/bin`` → ``usr/bin`` on merged-/usr hosts is one file, not two).
Versions come from running the binary with its version flag: argument list, no shell, a timeout.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from probes.versions import Version, find_version

#: systemd's default PATH for services (and a login shell's on most distributions), in lookup order.
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: Where else runtime binaries are installed by hand, by k3s/RKE2, or by Flatcar-style distributions.
EXTRA_DIRS = ("/opt/bin", "/opt/containerd/bin", "/var/lib/rancher/rke2/bin", "/opt/cni/bin")

VERSION_ARGS: dict[str, tuple[str, ...]] = {
    "containerd": ("--version",),
    "ctr": ("--version",),
    "containerd-shim-runc-v2": ("-v",),
    "runc": ("--version",),
    "kubelet": ("--version",),
    "k3s": ("--version",),
    "rke2": ("--version",),
}


@dataclass(frozen=True)
class Binary:
    """One executable file: the host path it was found at, the file it really is, and its version."""

    name: str
    path: str
    real: str
    version: Version | None = None
    package: str = ""
    output: str = ""
    error: str = ""

    @property
    def version_text(self) -> str:
        """The most specific version string: the package build when shown, else the version."""
        if self.package:
            return self.package
        return self.version.raw if self.version else "unknown"


def host_realpath(host_root: Path, path: str) -> str:
    """Resolve symlinks in a host path inside the host root; absolute link targets stay in the host root."""
    parts = list(PurePosixPath(path).parts[1:])
    resolved = PurePosixPath("/")
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved.parent
            continue
        candidate = resolved / part
        local = host_root / str(candidate).lstrip("/")
        if local.is_symlink() and hops < 40:
            hops += 1
            target = PurePosixPath(os.readlink(local))
            base = PurePosixPath("/") if target.is_absolute() else resolved
            parts = list(target.parts[1:] if target.is_absolute() else target.parts) + parts
            resolved = base
            continue
        resolved = candidate
    return str(resolved)


def local(host_root: Path, path: str) -> Path:
    """Where a host path is from here."""
    return host_root / path.lstrip("/")


def is_executable(host_root: Path, path: str) -> bool:
    p = local(host_root, host_realpath(host_root, path))
    return p.is_file() and os.access(p, os.X_OK)


def run_version(executable: Path, args: tuple[str, ...], timeout: float) -> tuple[str, str]:
    """Run ``executable args`` (no shell) and return (output, error); error is '' when it answered."""
    try:
        done = subprocess.run(
            [str(executable), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={"PATH": ":".join(DEFAULT_PATH), "LC_ALL": "C"},
        )
    except subprocess.TimeoutExpired:
        return "", f"{executable} {' '.join(args)} did not answer within {timeout:g}s"
    except OSError as exc:
        return "", f"cannot run {executable}: {exc.strerror or exc}"
    output = (done.stdout or "") + (done.stderr or "")
    if done.returncode != 0 and not output.strip():
        return "", f"{executable} {' '.join(args)} exited with status {done.returncode}"
    return output.strip(), ""


def inspect(host_root: Path, name: str, path: str, timeout: float = 5.0) -> Binary:
    """Describe one binary at a host path, running it for its version."""
    real = host_realpath(host_root, path)
    output, error = run_version(local(host_root, real), VERSION_ARGS.get(name, ("--version",)), timeout)
    version, package = find_version(output) if output else (None, "")
    if output and version is None and not error:
        error = f"no version in the output of {path}: {output.splitlines()[0][:80]!r}"
    return Binary(
        name=name, path=path, real=real, version=version, package=package, output=output, error=error
    )


def which(host_root: Path, name: str, search: tuple[str, ...] = DEFAULT_PATH) -> str | None:
    """The host path PATH lookup finds for ``name`` (first executable in ``search`` order), or None."""
    for directory in search:
        candidate = f"{directory.rstrip('/')}/{name}"
        if is_executable(host_root, candidate):
            return candidate
    return None


def find_all(host_root: Path, name: str, search: tuple[str, ...] = DEFAULT_PATH + EXTRA_DIRS) -> list[str]:
    """Every distinct file named ``name`` in the directories, first path per real file, in search order."""
    seen: set[str] = set()
    found = []
    for directory in search:
        candidate = f"{directory.rstrip('/')}/{name}"
        if not is_executable(host_root, candidate):
            continue
        real = host_realpath(host_root, candidate)
        if real not in seen:
            seen.add(real)
            found.append(candidate)
    return found
