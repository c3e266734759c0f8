"""The containerd builds a lab can run: Debian 12's own 1.6, and Debian's 1.7 (trixie) and 2.x (sid) builds
fetched into a cache without touching the system's apt state or installing anything.

``ensure(series)`` returns a :class:`RuntimeBuild` (where its ``containerd``, ``ctr`` and shim are, and the
exact Debian version), fetching it the first time: a private apt sources list for the machine's own Debian
mirror, ``apt-get download`` of the pinned version, unpacked into ``CACHE/<version>`` as ``dpkg-deb -R`` does
(the files, and the package's own ``DEBIAN/control`` and ``md5sums``, so nodedoc can tell which Debian build
the lab runs and read its changelog, as on a node where the package is installed). runc stays
Debian 12's 1.1.5 (the newer runc packages need glibc 2.38). The lab puts ``bin_dir`` first on containerd's
PATH so it starts its own shim.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from probes.errors import NodedocError

CACHE = Path(os.environ.get("NODEDOC_RUNTIMES_CACHE", "/var/cache/nodedoc-runtimes"))
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SYSTEM_BIN = Path("/usr/bin")


@dataclass(frozen=True)
class Pin:
    """One series: the Debian suite that carries it and the exact package version ``apt-cache madison`` shows."""

    series: str
    suite: str
    version: str


PINS = {
    "1.6": Pin("1.6", "bookworm", "1.6.20~ds1-1+deb12u3"),
    "1.7": Pin("1.7", "trixie", "1.7.24~ds1-6+deb13u1"),
    "2": Pin("2", "sid", "2.1.9+ds1-5"),
}
SERIES = tuple(PINS)


class RuntimeFetchError(NodedocError):
    """A containerd build could not be found or fetched."""


@dataclass(frozen=True)
class RuntimeBuild:
    """A containerd build on this machine: ``bin_dir`` holds ``containerd``, ``containerd-shim-runc-v2`` and
    ``ctr``; ``version`` is the Debian package version (``2.1.9+ds1-5``); ``source`` says where it came from."""

    series: str
    version: str
    bin_dir: Path
    source: str

    @property
    def containerd(self) -> Path:
        return self.bin_dir / "containerd"

    @property
    def ctr(self) -> Path:
        return self.bin_dir / "ctr"

    @property
    def shim(self) -> Path:
        return self.bin_dir / "containerd-shim-runc-v2"

    @property
    def upstream_version(self) -> str:
        """The upstream release, ``2.1.9`` for ``2.1.9+ds1-5``."""
        return re.split(r"[~+-]", self.version, maxsplit=1)[0]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for the containerd process: this build's ``bin_dir`` first on PATH (its own shim),
        then the system's (Debian 12's runc)."""
        env = dict(os.environ if base is None else base)
        rest = env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env["PATH"] = f"{self.bin_dir}:{rest}"
        return env

    def to_dict(self) -> dict[str, str]:
        return {
            "series": self.series,
            "version": self.version,
            "bin_dir": str(self.bin_dir),
            "source": self.source,
        }


def normalise(series: str | None) -> str | None:
    """``1.6``, ``1.7``, ``2`` (``2.x``, ``2.1`` too) or None/``system`` for the system's; else a one-line error."""
    if series is None or series in ("", "system"):
        return None
    text = series.strip().lower().removeprefix("v")
    if text in PINS:
        return text
    if text in ("2.x", "2.1"):
        return "2"
    raise RuntimeFetchError(
        f"unknown containerd series {series!r}; choose one of {', '.join(SERIES)} (or system)"
    )


def system_build() -> RuntimeBuild:
    """The containerd installed on this machine (on PATH), with its Debian package version when dpkg knows it."""
    found = shutil.which("containerd")
    if found is None:
        raise RuntimeFetchError(
            "no containerd on PATH (apt-get install containerd, or pick --containerd 1.7|2)"
        )
    bin_dir = Path(found).resolve().parent
    version = _installed_version() if bin_dir == SYSTEM_BIN else ""
    if not version:
        version = _version_from_binary(Path(found))
    return RuntimeBuild(series=_series_of(version), version=version, bin_dir=bin_dir, source="system")


def _series_of(version: str) -> str:
    """``1.7`` for ``1.7.24~ds1-6``, ``2`` for any 2.x."""
    major_minor = ".".join(re.split(r"[~+-]", version, maxsplit=1)[0].split(".")[:2])
    return "2" if major_minor.startswith("2.") else major_minor


def ensure(series: str | None = None, log: Callable[[str], None] = lambda _: None) -> RuntimeBuild:
    """The build of ``series`` (None: the system's), fetched into the cache the first time."""
    wanted = normalise(series)
    if wanted is None:
        return system_build()
    pin = PINS[wanted]
    installed = _installed_version()
    if installed and (SYSTEM_BIN / "containerd").exists() and _series_of(installed) == wanted:
        # Debian's own package of this series (Debian 12's 1.6): whatever its point release, it is the one.
        return RuntimeBuild(series=wanted, version=installed, bin_dir=SYSTEM_BIN, source="system")
    cached = cached_build(wanted)
    if cached is not None and _has_control(pin):
        return cached
    with _locked():
        cached = cached_build(wanted)  # another process may have fetched it while we waited
        if cached is None:
            return _fetch(pin, log)
        if not _has_control(pin):  # a cache unpacked before the control files were kept: add them
            _add_control(pin, log)
        return cached


def cached_build(series: str) -> RuntimeBuild | None:
    """The cached build of ``series`` if it is complete, without fetching anything."""
    pin = PINS[normalise(series) or ""]
    marker = _build_dir(pin) / "build.json"
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    build = RuntimeBuild(
        series=pin.series, version=data["version"], bin_dir=Path(data["bin_dir"]), source=data["source"]
    )
    if not all(p.exists() for p in (build.containerd, build.ctr, build.shim)):
        return None
    return build


# -- fetching ------------------------------------------------------------------------------------------


def mirror() -> str:
    """The machine's own Debian mirror, as its apt sources name it."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    with contextlib.suppress(OSError):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and len(line.split()) > 1:
                return line.split()[1]
    with contextlib.suppress(OSError):
        for line in Path("/etc/apt/sources.list").read_text().splitlines():
            words = line.split()
            if words[:1] == ["deb"]:
                url = next((w for w in words[1:] if "://" in w), "")
                if url and "security" not in url:
                    return url
    return DEFAULT_MIRROR


def _build_dir(pin: Pin) -> Path:
    return CACHE / f"containerd-{pin.version}"


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        handle = open(CACHE / ".lock", "w")  # noqa: SIM115 - held for the block
    except OSError as exc:
        raise RuntimeFetchError(
            f"cannot write the runtime cache {CACHE}: {exc.strerror} (run as root)"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _apt_options(apt: Path) -> list[str]:
    return [
        "-o", f"Dir::Etc::SourceList={apt / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip


def _run(args: list[str], what: str, cwd: Path | None = None, timeout: float = 600) -> str:
    if shutil.which(args[0]) is None:
        raise RuntimeFetchError(
            f"{what}: {args[0]} not found (fetching containerd needs Debian's apt and dpkg)"
        )
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeFetchError(f"{what}: {args[0]} took more than {timeout:.0f}s") from None
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith(("E:", "dpkg"))] or [
            proc.stderr.strip()
        ]
        raise RuntimeFetchError(f"{what}: {' '.join(errors)[-300:]}")
    return proc.stdout


def _fetch(pin: Pin, log: Callable[[str], None]) -> RuntimeBuild:
    apt = CACHE / "apt"
    (apt / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    url = mirror()
    suites = sorted({p.suite for p in PINS.values()})
    (apt / "sources.list").write_text("".join(f"deb [signed-by={KEYRING}] {url} {s} main\n" for s in suites))
    what = f"cannot fetch containerd {pin.version} (Debian {pin.suite}) from {url}"
    opts = _apt_options(apt)
    log(f"fetching containerd {pin.version} from Debian {pin.suite} ({url}) into {CACHE}")
    _run(["apt-get", *opts, "-q", "update"], what)
    offered = _run(["apt-cache", *opts, "madison", "containerd"], what)
    versions = [row.split("|")[1].strip() for row in offered.splitlines() if row.count("|") >= 2]
    if pin.version not in versions:
        raise RuntimeFetchError(f"{what}: the mirror offers only {', '.join(versions) or 'no containerd'}")
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=CACHE) as scratch:
        work = Path(scratch)
        _run(["apt-get", *opts, "-q", "download", f"containerd={pin.version}"], what, cwd=work)
        debs = sorted(work.glob("containerd_*.deb"))
        if len(debs) != 1:
            raise RuntimeFetchError(f"{what}: apt-get download left {len(debs)} packages")
        version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"], what).strip()
        tree = work / "tree"
        _run(["dpkg", "-x", str(debs[0]), str(tree)], f"cannot unpack {debs[0].name}")
        _control_into(debs[0], tree / "DEBIAN")
        final = _build_dir(pin)
        shutil.rmtree(final, ignore_errors=True)
        tree.rename(final)
    build = RuntimeBuild(
        series=pin.series, version=version, bin_dir=final / "usr" / "bin", source=f"debian {pin.suite}"
    )
    missing = [p.name for p in (build.containerd, build.ctr, build.shim) if not p.exists()]
    if missing:
        raise RuntimeFetchError(f"{what}: the package has no {', '.join(missing)}")
    (final / "build.json").write_text(json.dumps(build.to_dict(), indent=2) + "\n")
    log(f"containerd {version} ready in {build.bin_dir}")
    return build


def _has_control(pin: Pin) -> bool:
    return all((_build_dir(pin) / "DEBIAN" / name).is_file() for name in ("control", "md5sums"))


def _control_into(deb: Path, target: Path) -> None:
    """The package's control files (``dpkg-deb -e``) into ``target``, root's and not writable by others."""
    _run(["dpkg-deb", "-e", str(deb), str(target)], f"cannot read the control files of {deb.name}")
    target.chmod(0o755)
    for item in target.iterdir():
        item.chmod(0o644 if not os.access(item, os.X_OK) else 0o755)


def _add_control(pin: Pin, log: Callable[[str], None]) -> None:
    """Download the package again and add only its DEBIAN/ beside the files already unpacked (labs running
    from them are not disturbed); a failure leaves the build as it was, with a line saying why."""
    apt = CACHE / "apt"
    what = f"cannot fetch containerd {pin.version}'s control files"
    try:
        with tempfile.TemporaryDirectory(prefix="control-", dir=CACHE) as scratch:
            work = Path(scratch)
            _run(
                ["apt-get", *_apt_options(apt), "-q", "download", f"containerd={pin.version}"], what, cwd=work
            )
            debs = sorted(work.glob("containerd_*.deb"))
            if len(debs) != 1:
                raise RuntimeFetchError(f"{what}: apt-get download left {len(debs)} packages")
            _control_into(debs[0], work / "DEBIAN")
            (work / "DEBIAN").rename(_build_dir(pin) / "DEBIAN")
    except (RuntimeFetchError, OSError, ValueError) as exc:
        log(f"containerd {pin.version}: {exc}; nodedoc will not know which Debian build this lab runs")


def _installed_version() -> str:
    if shutil.which("dpkg-query") is None:
        return ""
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "containerd"], capture_output=True, text=True, timeout=30
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _version_from_binary(binary: Path) -> str:
    """``containerd --version`` prints ``containerd <package> <version> <revision>``; the lab's own binary."""
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    words = proc.stdout.split()
    if proc.returncode != 0 or len(words) < 3:
        raise RuntimeFetchError(f"cannot read the version of {binary}")
    return words[2].removeprefix("v")
