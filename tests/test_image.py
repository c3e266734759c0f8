"""nodedoc's ``kubectl debug node`` image: built from Debian's packages and the project's wheels, imported
into the lab's real containerd and run the way ``kubectl debug node --profile=sysadmin`` runs it.

Each build runs mmdebstrap against Debian's mirror and pip against PyPI (or its cache), about half a minute.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator

import pytest
import tomllib
from conftest import REPO, blob, build_image_archive, ctr, index_of
from fixtures.pipe_hog import built, hung_init

from probes.builtin.runc import THRESHOLD_ENV
from tui.commands.demo import pause_removed

pytestmark = [pytest.mark.lab, pytest.mark.root]

NAMESPACE = "nodedoc-image-test"  # not k8s.io: the lab's pods and the CRI never see the tool's image
IMAGE_SIZE_LIMIT = 140 * 2**20
HUNG_AFTER = "0.3"  # seconds a stand-in runc init must block before it counts as hung


def version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_archive_names_the_image_runs_nodedoc_and_is_small(nodedoc_image) -> None:
    archive, digest = nodedoc_image
    [entry] = index_of(archive)["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == f"nodedoc:{version()}"
    manifest = json.loads(blob(archive, digest))
    config = json.loads(blob(archive, manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/nodedoc"]
    [layer] = manifest["layers"]
    raw = gzip.decompress(blob(archive, layer["digest"]))
    assert len(raw) < IMAGE_SIZE_LIMIT, f"{len(raw) / 2**20:.1f} MiB uncompressed"
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr/local/bin/nodedoc"].mode & 0o111
    assert "usr/local/lib/nodedoc/tui/cli.py" in members and "usr/bin/python3.11" in members
    assert not any(name.startswith(("dev/", "proc/", "var/log/")) for name in members)
    assert {m.mtime for m in members.values()} == {1700000000}


def test_same_inputs_same_digest(nodedoc_image, tmp_path) -> None:
    _, digest = nodedoc_image
    assert build_image_archive(tmp_path / "again.tar") == digest


def test_skopeo_accepts_the_archive(nodedoc_image, tmp_path) -> None:
    archive, digest = nodedoc_image
    proc = subprocess.run(
        ["skopeo", "copy", f"oci-archive:{archive}", f"oci:{tmp_path / 'layout'}:copied"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    index = json.loads((tmp_path / "layout/index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [digest]


@pytest.fixture(scope="module")
def imported(lab, nodedoc_image) -> Iterator[str]:
    archive, _ = nodedoc_image
    proc = ctr(lab, NAMESPACE, "images", "import", str(archive))
    assert proc.returncode == 0, proc.stderr
    name = f"nodedoc:{version()}"
    assert name in ctr(lab, NAMESPACE, "images", "ls", "-q").stdout.split()
    yield name
    ctr(lab, NAMESPACE, "images", "rm", name)


def run_in_debug_container(lab, image: str, *args: str) -> subprocess.CompletedProcess:
    """What ``kubectl debug node/N -it --profile=sysadmin`` gives: privileged, host network and PID
    namespace, the node's / at /host. The PID namespace is joined through the lab's containerd (a host
    process): /proc/1/ns cannot be read on these machines."""
    name = f"nodedoc-debug-{os.urandom(3).hex()}"
    return ctr(
        lab,
        NAMESPACE,
        "run", "--rm", "--privileged", "--net-host",
        "--with-ns", f"pid:/proc/{lab.pid}/ns/pid",
        "--mount", "type=bind,src=/,dst=/host,options=rbind:ro",
        "--env", f"{THRESHOLD_ENV}={HUNG_AFTER}",
        image, name, *args,
    )  # fmt: skip


def node_args(lab, prefix: str = "") -> list[str]:
    return [
        "--endpoint", f"unix://{prefix}{lab.socket}",
        "--containerd-root", f"{prefix}{lab.root}",
        "--containerd-state", f"{prefix}{lab.state}",
    ]  # fmt: skip


def on_host(lab) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *node_args(lab), "check", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, THRESHOLD_ENV: HUNG_AFTER},
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return json.loads(proc.stdout)


def in_container(lab, image: str) -> dict:
    proc = run_in_debug_container(
        lab, image, "nodedoc", "--host-root", "/host", *node_args(lab, "/host"), "check", "--format", "json"
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return json.loads(proc.stdout)


def _unprefixed(value):
    if isinstance(value, str):
        return value.replace("/host/", "/")
    return value


def verdicts(doc: dict) -> set[tuple]:
    """What a finding says about which thing, with /host taken off the paths it names."""
    return {
        (f["id"], f["severity"], tuple(sorted((k, str(_unprefixed(v))) for k, v in f["subject"].items())))
        for f in doc["findings"]
    }


@contextlib.contextmanager
def seed_003() -> Iterator[int]:
    with built() as binary, hung_init(binary) as init:
        time.sleep(0.5)
        yield init.pid


def test_findings_inside_the_debug_container_match_the_host(lab, imported) -> None:
    with pause_removed(lab), seed_003() as hung_pid:
        host = on_host(lab)
        inside = in_container(lab, imported)
    ids = {f["id"] for f in host["findings"]}
    assert {"snapshot.files-missing", "runc.init-blocked"} <= ids, sorted(ids)
    assert any(f["subject"].get("pid") == hung_pid for f in inside["findings"])
    assert [p["status"] for p in inside["probes"]] == [p["status"] for p in host["probes"]]
    assert verdicts(inside) == verdicts(host)


def test_without_host_root_it_says_how_to_run_it(lab, imported) -> None:
    proc = run_in_debug_container(lab, imported, "nodedoc", "pods")
    assert proc.returncode == 3
    [line] = proc.stderr.strip().splitlines()
    assert "--host-root /host" in line and "Traceback" not in proc.stderr
