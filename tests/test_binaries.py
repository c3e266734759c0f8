"""Versions read from binaries, never by running them: Debian's real containerd and runc, newer Debian builds
when the lab's runtime cache holds them, upstream-style builds, and node files that would run if executed."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from gobinaries import write_go_binary

from probes.readers.host import binaries, packages
from probes.readers.host.gobinary import NotAGoBinary, read_go_binary
from tui.cli import main

RUNTIME_CACHE = Path("/var/cache/nodedoc-runtimes")


def dpkg_version(package: str) -> str:
    version = packages.dpkg_version(Path("/"), package)
    if version is None:
        pytest.fail(f"Debian's {package} is not installed here (scripts/install-deps installs it)")
    return version


@pytest.mark.parametrize(
    ("path", "package", "main_package"),
    [
        pytest.param(
            "/usr/bin/containerd",
            "containerd",
            "github.com/containerd/containerd/cmd/containerd",
            id="containerd",
        ),
        pytest.param(
            "/usr/bin/containerd-shim-runc-v2",
            "containerd",
            "github.com/containerd/containerd/cmd/containerd-shim-runc-v2",
            id="shim",
        ),
        pytest.param("/usr/sbin/runc", "runc", "github.com/opencontainers/runc", id="runc"),
    ],
)
def test_debian_binaries_read_without_running(path: str, package: str, main_package: str) -> None:
    packaged = dpkg_version(package)
    go = read_go_binary(Path(path))
    assert go.build is not None and go.build.go_version.startswith("go1.")
    assert go.build.main_package == main_package and go.build.settings.get("-trimpath") == "true"
    assert "-ldflags" not in go.build.settings  # Debian's -trimpath builds record none
    assert go.linked is not None and go.linked.heuristic
    assert packaged.startswith(go.linked.version.raw) and go.linked.revision == packaged
    described = binaries.inspect(Path("/"), package, path)
    assert described.package == packaged and described.version == go.linked.version
    assert described.evidence["package"]["checksum"] == "matches"
    assert described.source.startswith(f"dpkg package {package} {packaged}")


def newer_debian_builds() -> list[Path]:
    if not RUNTIME_CACHE.is_dir():
        return []
    return sorted(p for p in RUNTIME_CACHE.rglob("usr/bin/containerd") if p.is_file())


@pytest.mark.parametrize("build", range(2), ids=["first", "second"])
def test_newer_debian_containerd_builds(build: int) -> None:
    found = newer_debian_builds()
    if build >= len(found):
        pytest.skip(
            f"{RUNTIME_CACHE} holds {len(found)} newer containerd build(s) (fetched by the lab's runtimes)"
        )
    go = read_go_binary(found[build])
    assert go.linked is not None, go.problem
    assert go.build is not None and go.build.main_package.startswith("github.com/containerd/containerd")
    assert go.linked.version.release[:2] >= (1, 7)


def test_upstream_style_build_is_read_from_its_ldflags(tmp_path: Path) -> None:
    write_go_binary(
        tmp_path,
        "/usr/local/bin/containerd",
        "containerd",
        "v1.7.13",
        "7c3aca7a610df76212171d200ca3811ff6096eb8",
    )
    described = binaries.inspect(tmp_path, "containerd", "/usr/local/bin/containerd")
    assert described.version is not None and described.version.raw == "v1.7.13" and not described.package
    assert described.source == (
        "Go build info: -ldflags -X github.com/containerd/containerd/version.Version=v1.7.13: v1.7.13"
    )


def test_a_replaced_packaged_file_is_not_described_by_its_package(tmp_path: Path) -> None:
    for f in ("/var/lib/dpkg/info/runc.list", "/var/lib/dpkg/info/runc.md5sums", "/var/lib/dpkg/status"):
        (tmp_path / f.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, tmp_path / f.lstrip("/"))
    write_go_binary(tmp_path, "/usr/sbin/runc", "runc", "1.1.12", "v1.1.12-0-g51d5e946")
    described = binaries.inspect(tmp_path, "runc", "/usr/sbin/runc")
    assert described.version is not None and described.version.raw == "1.1.12" and described.package == ""
    assert described.evidence["package"]["checksum"] == "differs"
    assert any("checksum differs" in s for s in described.evidence["version_from"])


def unpacked_runc(root: Path, tree: str) -> str:
    """Debian's runc as ``dpkg-deb -R`` leaves it under ``tree``: the file, DEBIAN/control and DEBIAN/md5sums
    (this machine's own records of the package), the changelog; the binary's host path."""
    binary = f"{tree}/usr/sbin/runc"
    (root / binary.lstrip("/")).parent.mkdir(parents=True)
    shutil.copy("/usr/sbin/runc", root / binary.lstrip("/"))
    control = root / tree.lstrip("/") / "DEBIAN"
    control.mkdir()
    stanza = next(s for s in Path("/var/lib/dpkg/status").read_text().split("\n\n") if "Package: runc\n" in s)
    (control / "control").write_text(stanza + "\n")
    shutil.copy("/var/lib/dpkg/info/runc.md5sums", control / "md5sums")
    doc = root / tree.lstrip("/") / "usr/share/doc/runc"
    doc.mkdir(parents=True)
    shutil.copy("/usr/share/doc/runc/changelog.Debian.gz", doc)
    return binary


def test_an_unpacked_debian_package_describes_its_binary(tmp_path: Path) -> None:
    """A runc run from an unpacked .deb (no dpkg database names it): its DEBIAN/ records give the exact build,
    the checksum is checked, and its changelog is the tree's own."""
    binary = unpacked_runc(tmp_path, "/opt/runtimes/runc-deb")
    described = binaries.inspect(tmp_path, "runc", binary)
    record = described.evidence["package"]
    assert described.package and record["checksum"] == "matches"
    assert record["unpacked_in"] == "/opt/runtimes/runc-deb"
    assert record["version_from"] == "/opt/runtimes/runc-deb/DEBIAN/control"
    found = binaries.package_record(tmp_path, described)
    assert found is not None and found.changelog is not None
    assert found.changelog_path == "/opt/runtimes/runc-deb/usr/share/doc/runc/changelog.Debian.gz"


@pytest.mark.parametrize("spoil", ["group-writable", "replaced-binary"])
def test_an_unpacked_tree_others_could_write_or_a_changed_file_is_no_evidence(
    tmp_path: Path, spoil: str
) -> None:
    """Whoever could write DEBIAN/ could name any build: only root's own records count; a file whose checksum
    differs is not the package's."""
    binary = unpacked_runc(tmp_path, "/opt/runtimes/runc-deb")
    if spoil == "group-writable":
        (tmp_path / "opt/runtimes/runc-deb/DEBIAN/control").chmod(0o664)
    else:
        write_go_binary(tmp_path, binary, "runc", "1.1.5", "v1.1.5-0-gf19387a6")
    described = binaries.inspect(tmp_path, "runc", binary)
    assert described.installed is None and binaries.package_record(tmp_path, described) is None
    if spoil == "replaced-binary":
        assert described.evidence["package"]["checksum"] == "differs"
    else:
        assert "package" not in described.evidence


def test_a_script_is_not_a_go_binary(tmp_path: Path) -> None:
    script = tmp_path / "usr/bin/containerd"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\necho containerd github.com/containerd/containerd v1.7.13 abc\n")
    script.chmod(0o755)
    with pytest.raises(NotAGoBinary):
        read_go_binary(script)
    described = binaries.inspect(tmp_path, "containerd", "/usr/bin/containerd")
    assert described.version is None and "nodedoc does not run it" in described.error


TRAP = """#!/bin/sh
echo "$0 $*" >> {marker}
echo "containerd github.com/containerd/containerd v1.6.14 abc"
echo "runc version 1.0.0-rc93"
"""


def booby_trapped_node(root: Path, marker: Path) -> None:
    """A foreign node whose runtime binaries are scripts that leave a mark if anything runs them."""
    for path in (
        "/usr/bin/containerd",
        "/usr/bin/containerd-shim-runc-v2",
        "/usr/bin/ctr",
        "/usr/sbin/runc",
        "/usr/local/bin/kubelet",
        "/usr/bin/kubelet",
        "/opt/trap/runc",
    ):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(TRAP.format(marker=marker))
        target.chmod(0o755)
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        'BinaryName = "/opt/trap/runc"\n'
    )
    unit = root / "etc/systemd/system/containerd.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/containerd\nKillMode=process\nDelegate=yes\n")
    (root / "proc").mkdir()


def test_check_never_runs_a_foreign_nodes_files(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = tmp_path / "node"
    booby_trapped_node(root, marker)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tui.cli",
            "--host-root",
            str(root),
            "--endpoint",
            f"unix://{tmp_path}/none.sock",
        ]
        + ["check", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert not marker.exists(), marker.read_text()
    doc = json.loads(done.stdout)
    runc = doc["facts"]["versions"]["versions"]["runc"]
    assert runc["path"] == "/opt/trap/runc" and runc["version"] is None
    assert "nodedoc does not run it" in runc["error"]


class Executed(AssertionError):
    pass


@pytest.mark.lab
def test_whole_check_on_the_lab_starts_no_process(
    lab, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every way Python starts a program fails for the length of `nodedoc check` on the real lab node."""
    calls: list[str] = []

    def refuse(name: str):
        def run(*args, **kwargs):
            # Popen.__init__ gets the half-made Popen first, whose repr raises: record the arguments only.
            calls.append(f"{name}{args[1:3] if name == 'subprocess.Popen' else args[:2]!r}")
            raise Executed(f"nodedoc tried to start a program: {name}{args[:2]!r}")

        return run

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("subprocess.Popen"))
    for name in (
        "system", "popen", "fork", "forkpty", "posix_spawn", "posix_spawnp",
        "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
        "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
    ):  # fmt: skip
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    output = tmp_path / "check.json"
    with redirect_stdout(io.StringIO()):
        code = main(["--endpoint", lab.endpoint, "--containerd-root", str(lab.root), "check", "--format", "json",
                     "--output", str(output)])  # fmt: skip
    assert calls == []
    doc = json.loads(output.read_text())
    ran = {p["id"]: p["status"] for p in doc["probes"]}
    assert code in (0, 1, 2) and set(ran.values()) == {"ok"}, ran  # no probe failed for want of a program
    runc = doc["facts"]["versions"]["versions"]["runc"]
    assert runc["version"] == dpkg_version("runc") and "dpkg package runc" in runc["source"]


def test_disagreeing_version_strings_leave_the_version_unknown(tmp_path: Path) -> None:
    """Two linked strings that name different releases (a C library's beside Go's) are not guessed between."""
    target = write_go_binary(tmp_path, "/usr/sbin/runc", "runc", "1.1.12", stamped_in_build_info=False)
    target.write_bytes(target.read_bytes() + b"2.5.4" + bytes(16))
    described = binaries.inspect(tmp_path, "runc", "/usr/sbin/runc")
    assert described.version is None
    assert "several version strings in the binary: 1.1.12, 2.5.4" in described.error
