"""Small files laid out the way a Go program is, for host trees under a temporary --host-root.

A test of a probe on a foreign node needs containerd, runc and the kubelet of many versions; nodedoc reads
versions from the file and never runs it, so a file with an ELF header, Go's build-information block and the
linker-written version strings is what it reads on a real node too. The layout follows Go's
``debug/buildinfo`` (magic, pointer size, flags with bit 1 for inline strings, varint-prefixed Go version and
module information between 16-byte sentinels); tests against Debian's real binaries sit beside these.
"""

from __future__ import annotations

import struct
from pathlib import Path

#: Module information is wrapped in these 16 bytes at each end (their values do not matter to a reader).
SENTINEL = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
#: How upstream builds stamp the version (``-X <var>=<version>``), by program.
VERSION_VARS = {
    "containerd": (
        "github.com/containerd/containerd/version.Version",
        "github.com/containerd/containerd/version.Revision",
    ),
    "containerd-shim-runc-v2": (
        "github.com/containerd/containerd/version.Version",
        "github.com/containerd/containerd/version.Revision",
    ),
    "ctr": (
        "github.com/containerd/containerd/version.Version",
        "github.com/containerd/containerd/version.Revision",
    ),
    "runc": ("main.version", "main.gitCommit"),
    "kubelet": ("k8s.io/component-base/version.gitVersion", "k8s.io/component-base/version.gitCommit"),
}
MAIN = {
    "containerd": "github.com/containerd/containerd/cmd/containerd",
    "containerd-shim-runc-v2": "github.com/containerd/containerd/cmd/containerd-shim-runc-v2",
    "ctr": "github.com/containerd/containerd/cmd/ctr",
    "runc": "github.com/opencontainers/runc",
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
}


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def go_binary_bytes(
    program: str, version: str, revision: str = "", *, stamped_in_build_info: bool = True
) -> bytes:
    """An upstream-style build (``-ldflags -X`` recorded in the build info) or, with
    ``stamped_in_build_info=False``, a distribution-style ``-trimpath`` build where only the linked strings
    carry the version (Debian stamps its package version as the revision)."""
    version_var, revision_var = VERSION_VARS[program]
    lines = [f"path\t{MAIN[program]}", "build\t-compiler=gc"]
    if stamped_in_build_info:
        flags = (
            f"-X {version_var}={version}" + (f" -X {revision_var}={revision}" if revision else "") + " -s -w"
        )
        lines.append(f'build\t-ldflags="{flags}"')
    else:
        lines.append("build\t-trimpath=true")
    lines += ["build\tCGO_ENABLED=1", "build\tGOARCH=amd64", "build\tGOOS=linux"]
    modinfo = SENTINEL + ("\n".join(lines) + "\n").encode() + SENTINEL
    go_version = b"go1.21.6"
    elf = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + struct.pack("<HHI", 2, 0x3E, 1) + bytes(64 - 24)
    header = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
    info = header + _uvarint(len(go_version)) + go_version + _uvarint(len(modinfo)) + modinfo
    pad = bytes(16)
    strings = b"packed literals with no separatorsruntime error" + pad + go_version + pad
    if not stamped_in_build_info:
        strings += version.encode() + pad + (revision.encode() + pad if revision else b"")
    return elf + pad + info + pad + strings


def write_go_binary(
    root: Path, path: str, program: str, version: str, revision: str = "", **kw: bool
) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(go_binary_bytes(program, version, revision, **kw))
    target.chmod(0o755)
    return target
