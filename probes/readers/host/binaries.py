"""The runtime's binaries on the node: where they are, which one PATH finds, and what version each says.

Paths are host paths (``/usr/bin/containerd``); files are looked at under the node's host root, and
symlinks are followed within it (``/bin`` → ``usr/bin`` on merged-/usr hosts is one file, not two).
Versions come from reading the file, never from running it (a copied or mounted node's files are not ours to
execute, and on the live node a version flag is still a program we did not write): the package database that
installed it when there is one (exact, and its checksum says the file is still the packaged one), the Go build
information and the version string linked in (see :mod:`probes.gobinary`). Each binary says where its version
came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from probes.readers.host import packages, rpmdb
from probes.readers.host.gobinary import GoBinary, NotAGoBinary, read_go_binary
from probes.versions import Version, try_parse

#: systemd's default PATH for services (and a login shell's on most distributions), in lookup order.
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
#: Where else runtime binaries are installed by hand, by k3s/RKE2, or by Flatcar-style distributions.
EXTRA_DIRS = ("/opt/bin", "/opt/containerd/bin", "/var/lib/rancher/rke2/bin", "/opt/cni/bin")


@dataclass(frozen=True)
class Binary:
    """One executable file: the host path it was found at, the file it really is, its version, and where
    that version was read from (``source``, with the details in ``evidence``)."""

    name: str
    path: str
    real: str
    version: Version | None = None
    package: str = ""
    source: str = ""
    evidence: dict[str, Any] = field(default_factory=dict, compare=False)
    error: str = ""
    #: The package database's record when it describes this very file (same checksum and version).
    installed: packages.InstalledPackage | None = field(default=None, compare=False)

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


def _package_record(
    host_root: Path, path: str, real: str, dpkg: packages.DpkgDatabase | None
) -> packages.InstalledPackage | None:
    candidates = list(dict.fromkeys([path, real]))
    return (
        packages.dpkg_owner(host_root, candidates, dpkg)
        or rpmdb.rpm_owner(host_root, candidates)
        or packages.unpacked_deb_owner(host_root, candidates)
    )


def inspect(host_root: Path, name: str, path: str, dpkg: packages.DpkgDatabase | None = None) -> Binary:
    """Describe one binary at a host path by reading it (never running it); ``dpkg``, the host root's package
    database when several binaries are looked up in it."""
    real = host_realpath(host_root, path)
    evidence: dict[str, Any] = {}
    go: GoBinary | None = None
    problem = ""
    try:
        go = read_go_binary(local(host_root, real))
    except NotAGoBinary as exc:
        problem = f"{path}: {exc}; its version cannot be read without running it, and nodedoc does not run it"
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    if go is not None:
        evidence["go_build"] = go.build.to_dict() if go.build else None
        if go.candidates:
            evidence["version_strings"] = list(go.candidates)
        if go.linked is None:
            problem = f"{path}: {go.problem}"
    linked = go.linked if go else None
    record = _package_record(host_root, path, real, dpkg)
    version: Version | None = linked.version if linked else None
    package, sources, installed = "", [], None
    if linked:
        sources.append(
            f"{linked.source}: {linked.version.raw}" + (" (heuristic)" if linked.heuristic else "")
        )
    if record is not None:
        evidence["package"] = record.to_dict()
        packaged = try_parse(record.version)
        described = f"{record.manager} package {record.name} {record.version} ({record.database})"
        if record.checksum == "differs":
            sources.append(
                f"{described} lists {record.file}, but the file's checksum differs from the package's: "
                "it was replaced after installation, so the package version does not describe it"
            )
        elif version is not None and packaged is not None and not version.same_upstream(packaged):
            sources.append(f"{described} disagrees with the binary's own version; the binary's is used")
        else:
            package, installed = record.version, record
            version = version or packaged
            sources.insert(
                0,
                f"{described}, file listed in {record.listed_in}"
                + (", checksum matches" if record.checksum == "matches" else ""),
            )
            problem = "" if version else problem
    elif linked and linked.revision and _extends(linked.revision, linked.version):
        package = linked.revision
    database = rpmdb.find_database(host_root) if record is None else None
    if database is not None and not database.readable:
        sources.append(
            f"the RPM database {database.path} is in {database.format} format, which nodedoc does not read "
            "(it reads the sqlite rpmdb of RPM 4.16+)"
        )
    evidence["version_from"] = sources
    return Binary(
        name=name,
        path=path,
        real=real,
        version=version,
        package=package,
        source=sources[0] if sources else "",
        evidence=evidence,
        error="" if version else (problem or f"no version found in {path}"),
        installed=installed,
    )


def package_record(host_root: Path, binary: Binary) -> packages.PackageRecord | None:
    """The package that installed ``binary`` with its changelog (Debian's changelog.Debian.gz, or the RPM
    header's), to look for backported fixes in; None when no package describes the file."""
    record = binary.installed
    if record is None:
        return None
    if record.manager == "rpm":
        changelog = rpmdb.rpm_changelog(host_root, record.name)
        path = changelog.path if changelog else f"the {record.name} changelog in {record.database}"
    else:
        path = packages.changelog_path(record.name, record.prefix)
        changelog = packages.debian_changelog(host_root, record.name, record.prefix)
    return packages.PackageRecord(record.name, record.version, changelog, path, record.manager, record.prefix)


def _extends(revision: str, version: Version) -> bool:
    """A stamped revision that is a build of the version (Debian's package version), not a commit."""
    parsed = try_parse(revision)
    return bool(parsed and parsed.same_upstream(version) and parsed.distribution and revision != version.raw)


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
