"""The entrypoint check that needs no layer blob: an image's executable looked up in the merged view of its
snapshot chain, with whiteouts and opaque directories as containerd's overlay snapshotter leaves them on
disk (verified on the lab: a character device 0/0, the ``trusted.overlay.opaque`` xattr)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fixtures.layered_image import build

from probes.node import NodeContext
from probes.readers.cri import cri_pb2 as pb
from probes.readers.disk.containerd_store import ContainerdDisk
from probes.readers.disk.merged import find_executable, lookup
from probes.registry import run_probes, select

LAYERS: list[dict[str, bytes | None]] = [
    {
        "bin/": None,
        "bin/app": b"#!/usr/bin/real\n",
        "opt/": None,
        "opt/dir/": None,
        "opt/dir/tool": b"t",
        "usr/": None,
        "usr/bin/": None,
        "usr/bin/real": b"r",
    },
    {"bin/.wh.app": None, "opt/dir/.wh..wh..opq": None, "opt/dir/new": b"n", "usr/bin/tool": b"x"},
]


@pytest.fixture
def layered(lab, tmp_path: Path):
    """A two-layer image imported into the lab; upper layer whites out /bin/app and makes /opt/dir opaque."""
    name = f"localhost/nodedoc-layered:{os.urandom(3).hex()}"
    archive = build(tmp_path / "layered.tar", name, LAYERS, ["/bin/app"])
    ctr = ["ctr", "--address", str(lab.socket), "--namespace", "k8s.io", "images"]
    subprocess.run([*ctr, "import", str(archive)], check=True, capture_output=True, timeout=120)
    chain = {str(d) for d in chain_dirs(lab, name)}
    try:
        yield name
    finally:
        with lab.client() as client:  # CRI removes every ref of it (its name and the sha256 id CRI added)
            client.remove_image(name)
        left = {str(s.fs_dir) for s in ContainerdDisk(lab.root).snapshots()} & chain
        assert not left, f"the layered image's snapshots outlived it on the shared lab: {left}"


def chain_dirs(lab, image: str) -> list[Path]:
    disk = ContainerdDisk(lab.root)
    [view] = [v for v in disk.images() if v.record.name == image]
    return [s.fs_dir for s in disk.chain(view.snapshots[-1])]


@pytest.mark.lab
@pytest.mark.root
def test_the_snapshotter_leaves_whiteouts_and_opaque_dirs_as_the_lookup_reads_them(lab, layered) -> None:
    top, lower = chain_dirs(lab, layered)
    st = os.lstat(top / "bin" / "app")
    assert (oct(st.st_mode)[:4], st.st_rdev) == ("0o20", 0)  # character device 0/0
    assert "trusted.overlay.opaque" in os.listxattr(top / "opt" / "dir")
    layers = [top, lower]
    assert (lower / "bin" / "app").is_file() and lookup(layers, "/bin/app") is None
    assert (lower / "opt" / "dir" / "tool").is_file() and lookup(layers, "/opt/dir/tool") is None
    assert lookup(layers, "/opt/dir/new").layer == top
    assert lookup(layers, "/usr/bin/real").layer == lower  # a merged directory
    found, tried = find_executable(layers, "tool", "/usr/bin:/bin")
    assert found is not None and found.path == "/usr/bin/tool" and tried == ["/usr/bin/tool", "/bin/tool"]


@pytest.mark.lab
@pytest.mark.root
@pytest.mark.parametrize(
    "command",
    [pytest.param([], id="image-entrypoint"), pytest.param(["tool", "--serve"], id="pod-command-overrides")],
)
def test_an_image_whose_entrypoint_a_layer_deletes_is_critical_unless_the_pod_overrides_it(
    lab, layered, extra_pod, command: list[str]
) -> None:
    """A container created from it (CreateContainer succeeds; StartContainer would fail): CRITICAL, and
    since its layers match their blobs, the fix is the image, not the node. A pod whose command runs
    something the layers do have (``tool``, found along the image's PATH) is not a fault."""
    with lab.client() as client:
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="layered"),
            image=pb.ImageSpec(image=layered),
            command=command,
            linux=pb.LinuxContainerConfig(),
        )
        client.create_container(extra_pod.id, config, lab.sandbox_config(extra_pod.name, extra_pod.uid))
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    [result] = run_probes(node, select(["snapshots"]))
    found = [f for f in result.findings if f.id == "snapshot.entrypoint-missing"]
    assert not [f for f in result.findings if f.id.startswith("snapshot.files-")]
    checked = {e["image"]: e for e in result.facts["entrypoints"]}
    if command:
        assert found == [] and checked[layered] == {
            "image": layered,
            "executable": "tool",
            "found": "/usr/bin/tool",
        }
        return
    assert [(f.subject["image"], f.evidence["executable"]) for f in found] == [(layered, "/bin/app")]
    assert found[0].evidence["layer_blobs"] == "verified" and found[0].evidence["from"] == "image config"
    assert (
        "image itself is broken" in found[0].remediation[0].text and found[0].remediation[0].command is None
    )


def test_symlinks_resolve_inside_the_stack(tmp_path: Path) -> None:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    for d in (upper / "usr" / "bin", lower / "usr" / "bin", upper / "etc"):
        d.mkdir(parents=True)
    (lower / "usr" / "bin" / "sh").write_text("")
    (lower / "usr" / "bin" / "sh").chmod(0o755)
    (upper / "bin").symlink_to("usr/bin")  # merged-usr
    (upper / "etc" / "shell").symlink_to("/bin/sh")  # absolute: from the stack's root, not the host's
    (upper / "loop").symlink_to("loop")
    layers = [upper, lower]
    found = lookup(layers, "/etc/shell")
    assert found is not None and found.path == "/usr/bin/sh" and found.layer == lower and found.executable
    assert lookup(layers, "/loop") is None
    assert lookup(layers, "/usr/bin/sh/x") is None  # not a directory
    assert find_executable(layers, "sh", "/bin")[0] is not None
    assert find_executable(layers, "./sh", "", "/usr/bin")[0] is not None
    assert find_executable(layers, "sh", "/sbin")[0] is None
