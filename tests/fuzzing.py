"""Fuzz targets: every parser nodedoc feeds from the node, each driven by a hypothesis strategy.

The rule each target proves (tests/test_fuzz.py in CI, scripts/fuzz by hand for hours): a case either
returns or raises a :class:`NodedocError` subclass; anything else escaping is a bug. Each case must also
finish within :data:`CASE_SECONDS` and allocate at most :data:`CASE_MEMORY` (checked by :func:`exercise`).

The binary seeds in ``fixtures/containerd-root`` were recorded from ``nodedoc lab up DIR --pods 1
--containers`` (containerd 1.6.20): ``meta.db``, the overlayfs ``metadata.db`` and the image's manifest
and config blobs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import tarfile
import tempfile
import time
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from probes.errors import NodedocError

FIXTURES = Path(__file__).parent / "fixtures" / "containerd-root"
CASE_SECONDS = 5.0
CASE_MEMORY = 128 * 1024 * 1024


def seed(name: str) -> bytes:
    return gzip.decompress((FIXTURES / f"{name}.gz").read_bytes())


# -- strategies ------------------------------------------------------------------------------------------


def mutated(data: bytes) -> st.SearchStrategy[bytes]:
    """``data`` with a few bytes or words overwritten (biased to the bytes in use), maybe truncated."""
    used = [i for i, b in enumerate(data) if b] or [0]
    position = st.one_of(st.sampled_from(used), st.integers(0, len(data) - 1))
    word = st.tuples(
        position,
        st.sampled_from([1, 2, 4, 8]),
        st.one_of(st.integers(0, 255), st.sampled_from([0, 1, 2, 0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF, 2**64 - 1])),
    )

    def apply(edits: list[tuple[int, int, int]], cut: int | None) -> bytes:
        out = bytearray(data)
        for at, width, value in edits:
            out[at : at + width] = (value % (1 << (8 * width))).to_bytes(width, "little")[: len(out) - at]
        return bytes(out[:cut] if cut is not None else out)

    return st.builds(apply, st.lists(word, min_size=1, max_size=12), st.none() | st.integers(0, len(data)))


#: Names a container image or a container's writable layer can hold.
HOSTILE_NAMES = [
    "../escape",
    "../../etc/passwd",
    "/abs/path",
    "a/../../b",
    "./.",
    "",
    "esc\x1b[31mRED",
    "nul\x00byte",
    "bidi\u202etxt",
    "x" * 300,
    "d/" * 120 + "deep",
    ".wh..wh..opq",
    ".wh.gone",
    "caf\udce9",
]


def text_lines(seed_text: str) -> st.SearchStrategy[str]:
    """A seed file with lines dropped, duplicated, cut or replaced by arbitrary text."""
    lines = seed_text.splitlines()

    def build(ops: list[tuple[int, int, str]], tail: str) -> str:
        out = list(lines)
        for op, at, text in ops:
            at = at % (len(out) + 1)
            if op == 0:
                out.insert(at, text)
            elif op == 1 and out:
                out.pop(min(at, len(out) - 1))
            elif op == 2 and out:
                i = min(at, len(out) - 1)
                out[i] = out[i][: len(text)] + text
            else:
                out.insert(at, out[min(at, len(out) - 1)] if out else text)
        return "\n".join(out) + tail

    piece = st.one_of(st.text(max_size=80), st.sampled_from(HOSTILE_NAMES), st.sampled_from(lines or [""]))
    return st.builds(
        build,
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 200), piece), max_size=10),
        st.sampled_from(["", "\n", "\\", "\\\n", "\x00", "["]),
    )


# -- running one case --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    result: str  # "data" or the NodedocError subclass's name
    seconds: float
    peak_bytes: int


class CaseTooSlow(AssertionError):
    """A case ran past CASE_SECONDS (raised inside it by an alarm, so an endless loop ends too)."""


def _too_slow(_signum: int, _frame: object) -> None:
    raise CaseTooSlow(f"case still running after {CASE_SECONDS:g} s")


def exercise(run: Callable[[Any, Path], object], example: Any, measure_memory: bool = True) -> Outcome:
    """Run one case in a scratch directory; only a NodedocError may escape, within time and memory."""
    scratch = Path(tempfile.mkdtemp(prefix="nd-fuzz-"))
    if measure_memory:
        tracemalloc.start()
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)  # a reader in an endless loop is stopped, and fails
    try:
        run(example, scratch)
        result = "data"
    except NodedocError as exc:
        result = type(exc).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] if measure_memory else 0
        if measure_memory:
            tracemalloc.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    assert seconds < CASE_SECONDS, f"case took {seconds:.1f} s"
    assert peak < CASE_MEMORY, f"case allocated {peak / 2**20:.0f} MiB"
    return Outcome(result, seconds, peak)


# -- bbolt and containerd's records ---------------------------------------------------------------------


def read_meta_db(data: bytes, _scratch: Path) -> int:
    from probes.readers.disk.bbolt import BoltFile
    from probes.readers.disk.containerd_store import MetaDb

    bolt = BoltFile.from_bytes(data, "fuzz-meta.db")
    meta = MetaDb(bolt)
    n = len(meta.images()) + len(meta.containers()) + len(meta.snapshots()) + len(meta.content())
    n += len(meta.leases()) + len(meta.sandboxes()) + len(meta.namespaces())
    return n + sum(1 for _ in bolt.root.walk())


def read_overlay_db(data: bytes, _scratch: Path) -> int:
    from probes.readers.disk.bbolt import BoltFile
    from probes.readers.disk.containerd_store import OverlayDb

    bolt = BoltFile.from_bytes(data, "fuzz-metadata.db")
    return len(OverlayDb(bolt).snapshots()) + sum(1 for _ in bolt.root.walk())


def containerd_root(
    scratch: Path, meta: bytes, overlay: bytes, blobs: dict[str, bytes] | None = None
) -> Path:
    """A containerd root under ``scratch`` with these two databases and content blobs."""
    root = scratch / "root"
    (root / "io.containerd.metadata.v1.bolt").mkdir(parents=True)
    (root / "io.containerd.metadata.v1.bolt" / "meta.db").write_bytes(meta)
    overlay_dir = root / "io.containerd.snapshotter.v1.overlayfs"
    (overlay_dir / "snapshots").mkdir(parents=True)
    (overlay_dir / "metadata.db").write_bytes(overlay)
    content = root / "io.containerd.content.v1.content" / "blobs" / "sha256"
    content.mkdir(parents=True)
    for path in (FIXTURES / "blobs").iterdir():
        shutil.copy(path, content / path.name)
    for digest, data in (blobs or {}).items():
        (content / digest.removeprefix("sha256:")).write_bytes(data)
    return root


def read_whole_root(root: Path) -> int:
    """What ``nodedoc snapshots --verify --containerd-root`` reads: both databases, images, snapshots."""
    from probes.readers.disk.containerd_store import ContainerdDisk

    disk = ContainerdDisk(root, None)
    n = len(disk.images()) + len(disk.orphans().namespace_records_without_backend)
    for info in disk.snapshots():
        n += len(disk.chain(info)) + len(disk.list_files(info)) + len(info.summary())
    n += len(disk.verify_many())
    return n


def read_root_from_mutated_dbs(example: tuple[bytes, bytes], scratch: Path) -> int:
    return read_whole_root(containerd_root(scratch, *example))


# -- the content store's JSON ----------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_digest = st.one_of(
    st.sampled_from(
        [
            "sha256:" + "0" * 64,
            "sha256:" + "a" * 63 + "\x00",
            "sha256:../../../etc/passwd",
            "sha256:",
            ":abc",
            "md5:abc",
            "sha256:" + "f" * 64 + "/x",
        ]
    ),
    st.text(max_size=80),
)
_media = st.sampled_from(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "",
        "text/plain",
    ]
)


def _descriptor_doc(digest: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"digest": digest, "mediaType": _media},
        optional={
            "size": st.one_of(st.integers(-(2**70), 2**70), _json),
            "platform": st.one_of(
                _json,
                st.fixed_dictionaries(
                    {
                        "os": st.sampled_from(["linux", "windows", ""]),
                        "architecture": st.sampled_from(["amd64", "arm64", "", "s390x"]),
                    }
                ),
            ),
        },
    )


@st.composite
def content_store_case(draw: st.DrawFn) -> tuple[dict[str, bytes], str, str]:
    """Blobs (digest → bytes) for an index → manifest → config chain with fuzzed fields, and the target."""
    blobs: dict[str, bytes] = {}

    def put(doc: Any) -> str:
        raw = draw(st.sampled_from([0] * 8 + [1, 2]))
        data = json.dumps(doc, default=str).encode() if raw == 0 else (b"\xff" if raw == 1 else b"[1,2")
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return digest

    layers = draw(st.lists(_descriptor_doc(_digest), max_size=4))
    diff_ids = st.lists(st.one_of(_digest, _json), min_size=len(layers), max_size=len(layers))
    config = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"rootfs": st.fixed_dictionaries({"diff_ids": diff_ids})},
                optional={"os": _json, "architecture": _json},
            ),
            _json,
        )
    )
    config_digest = put(config)
    manifest = draw(
        st.one_of(
            st.fixed_dictionaries(
                {
                    "config": st.one_of(_descriptor_doc(st.just(config_digest)), _json),
                    "layers": st.one_of(st.just(layers), _json),
                },
                optional={"mediaType": _media, "manifests": _json},
            ),
            _json,
        )
    )
    target = put(manifest)
    media = draw(_media)
    for _ in range(draw(st.integers(0, 3))):  # indexes on top, sometimes pointing at themselves
        entry = draw(_descriptor_doc(st.one_of(st.just(target), _digest)))
        index = {
            "mediaType": media,
            "manifests": draw(st.one_of(st.just([entry]), st.lists(_json, max_size=3))),
        }
        target = put(index)
    return blobs, draw(st.one_of(st.just(target), st.just(target), st.just(target), _digest)), media


def resolve_content(example: tuple[dict[str, bytes], str, str], scratch: Path) -> int:
    from probes.readers.disk.images import ContentStore, Descriptor

    blobs, target, media = example
    root = scratch / "root"
    content = root / "io.containerd.content.v1.content" / "blobs" / "sha256"
    content.mkdir(parents=True)
    for digest, data in blobs.items():
        (content / digest.removeprefix("sha256:")).write_bytes(data)
    store = ContentStore(root)
    store.has(target)
    return len(store.resolve("fuzz/image:tag", Descriptor(target, media, 0)).layers)


# -- layer tars ----------------------------------------------------------------------------------------

_SIZES = st.one_of(
    st.integers(0, 4096), st.sampled_from([-1, -512, -1024, -4096, -(2**40), 2**33, 2**62, 8**11])
)
_TYPES = st.sampled_from(
    [b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"S", b"x", b"g", b"L", b"K", b"Z", b"\0"]
)


def _base256(value: int, width: int) -> bytes:
    """GNU base-256 number field (any size, negative too)."""
    neg = value < 0
    mag = (-value if neg else value) & ((1 << (8 * width - 2)) - 1)
    raw = bytearray(mag.to_bytes(width, "big"))
    raw[0] |= 0x80 | (0x40 if neg else 0)
    return bytes(raw)


def _header(
    name: bytes, typeflag: bytes, size: int, link: bytes = b"", magic: bytes = b"ustar\x0000"
) -> bytes:
    h = bytearray(512)
    h[0:100] = name[:100].ljust(100, b"\0")
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = f"{size:011o}\0".encode() if 0 <= size < 8**11 else _base256(size, 12)
    h[136:148] = b"00000000000\0"
    h[156:157] = typeflag
    h[157:257] = link[:100].ljust(100, b"\0")
    h[257:265] = magic
    h[148:156] = b" " * 8
    h[148:156] = f"{sum(h):06o}\0 ".encode()
    return bytes(h)


@st.composite
def raw_member(draw: st.DrawFn) -> bytes:
    """One hand-made member: any type, size (huge, negative), name and link (loops, ``..``)."""
    name = draw(st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=40)))
    name_b = name.encode("utf-8", "surrogateescape")
    link = draw(
        st.one_of(
            st.just(name_b), st.sampled_from([b"..", b"/", b"../" * 40, b"loop"]), st.binary(max_size=30)
        )
    )
    typeflag, size = draw(_TYPES), draw(_SIZES)
    body_len = max(0, min(size, 4096)) if draw(st.booleans()) else draw(st.integers(0, 2048))
    body = draw(st.sampled_from([b"", b"30 path=" + name_b + b"\n", b"99999999999 size=-5\n", b"0 x\n"]))
    body = (body + b"\0" * body_len)[:body_len]
    return _header(name_b, typeflag, size, link) + body.ljust((len(body) + 511) & ~511, b"\0")


@st.composite
def tarfile_member(draw: st.DrawFn) -> bytes:
    """Members written by Python's tarfile in GNU and PAX formats: long names, links, PAX records."""
    fmt = draw(st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for _ in range(draw(st.integers(1, 4))):
            name = draw(st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(min_size=1, max_size=30)))
            info = tarfile.TarInfo(name.replace("\x00", "0") or "empty")
            info.type = draw(
                st.sampled_from(
                    [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE]
                )
            )
            info.linkname = draw(
                st.one_of(st.just(info.name), st.sampled_from(["..", "/etc", "a/b/../../../x"]))
            )
            data = b"x" * draw(st.integers(0, 600)) if info.type == tarfile.REGTYPE else b""
            info.size = len(data)
            if fmt == tarfile.PAX_FORMAT and draw(st.booleans()):
                info.pax_headers = {"size": draw(st.sampled_from(["-1", "99999999999999", "abc", "0"]))}
            try:
                tar.addfile(info, io.BytesIO(data))
            except (ValueError, UnicodeError):
                continue
    return buf.getvalue()[:-1024]  # without the end-of-archive blocks: the case adds its own


@st.composite
def layer_blob(draw: st.DrawFn) -> bytes:
    members = draw(st.lists(st.one_of(raw_member(), tarfile_member()), max_size=6))
    tar = b"".join(members) + draw(st.sampled_from([b"\0" * 1024, b"\0" * 512, b""]))
    compression = draw(st.sampled_from(["none", "gzip", "gzip", "zstd"]))
    if compression == "gzip":
        blob = gzip.compress(tar, compresslevel=1)
        if draw(st.booleans()):
            blob += gzip.compress(b"\0" * 1024) if draw(st.booleans()) else b"\0" * 64
    elif compression == "zstd":
        import zstandard

        blob = zstandard.ZstdCompressor(level=1).compress(tar)
    else:
        blob = tar
    cut = draw(st.none() | st.integers(0, len(blob)))
    return blob[:cut] if cut is not None else blob


def bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes (a few KiB compressed): a decompression bomb of a tar."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(b"\0" * (1 << 20)) for _ in range(size >> 20)]
    return b"".join(out) + z.flush()


def verify_blob(blob: bytes, scratch: Path) -> int:
    from probes.readers.disk.layer_verify import verify_layer

    path = scratch / "blob"
    path.write_bytes(blob)
    fs_dir = scratch / "fs"
    fs_dir.mkdir()
    check = verify_layer(path, fs_dir, digest="sha256:" + hashlib.sha256(blob).hexdigest())
    return check.entries


# -- host files: containerd config, systemd unit, kubelet config, runbook ------------------------------

CONTAINERD_CONFIG = """version = 2
root = "/var/lib/containerd"
imports = ["/etc/containerd/conf.d/*.toml"]
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = true
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.example"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
"""
CONTAINERD_UNIT = """[Unit]
Description=containerd container runtime
After=network.target local-fs.target

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/bin/containerd --config /etc/containerd/config.toml
Type=notify
Delegate=yes
KillMode=process
Restart=always
LimitNOFILE=infinity
Environment="A=1" "B=two words"

[Install]
WantedBy=multi-user.target
"""
DROPIN = """[Service]
ExecStart=
ExecStart=@/usr/local/bin/containerd containerd \\
  --log-level debug
KillMode=mixed
"""
KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: "systemd"  # matches containerd
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous:
    enabled: false
"""
KUBEADM_FLAGS = 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock --cgroup-driver=cgroupfs"\n'


def _host(scratch: Path, files: dict[str, str]) -> Path:
    host = scratch / "host"
    for path, text in files.items():
        target = host / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", errors="surrogateescape")
    (host / "proc").mkdir(exist_ok=True)
    return host


def host_files_case() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {
            "/etc/containerd/config.toml": text_lines(CONTAINERD_CONFIG),
            "/etc/containerd/conf.d/extra.toml": text_lines(
                '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n'
            ),
            "/etc/systemd/system/containerd.service": text_lines(CONTAINERD_UNIT),
            "/etc/systemd/system/containerd.service.d/10-override.conf": text_lines(DROPIN),
            "/var/lib/kubelet/config.yaml": text_lines(KUBELET_CONFIG),
            "/var/lib/kubelet/kubeadm-flags.env": text_lines(KUBEADM_FLAGS),
        }
    )


def read_host_files(files: dict[str, str], scratch: Path) -> int:
    """The readers and the two probes that read these files (config, service), on a scratch host root."""
    from probes.builtin.config import ConfigProbe
    from probes.builtin.service import ServiceProbe
    from probes.node import NeedUnmet, NodeContext
    from probes.readers.host import containerd_config, kubelet_config, systemd_unit

    host = _host(scratch, files)
    config = containerd_config.load(host, host / "proc", None)
    for accessor in (
        "version",
        "template",
        "edit_target",
        "images_plugin",
        "runtime_plugin",
        "default_runtime",
    ):
        getattr(config, accessor)
    for call in (
        config.systemd_cgroup,
        config.sandbox_image,
        config.snapshotter,
        config.cni_bin_dirs,
        config.cni_conf_dir,
        config.registry,
    ):
        call()
    unit = systemd_unit.read_unit(host, "containerd.service")
    for key in ("ExecStart", "ExecStartPre", "KillMode", "Environment"):
        for assignment in unit.all("Service", key):
            systemd_unit.parse_exec(assignment)
    kubelet_config.read(host)
    node = NodeContext(host_root=host, proc_root=host / "proc", endpoint="unix:///nonexistent.sock")
    n = 0
    for probe in (ConfigProbe(), ServiceProbe()):
        try:
            out = probe.run(node)
        except NeedUnmet:
            continue
        n += len(out.findings if hasattr(out, "findings") else out)
    return n


RUNBOOK = (Path(__file__).parent.parent / "tui" / "runbooks" / "pod-sandbox-create.toml").read_text()


def load_runbook_text(text: str, scratch: Path) -> int:
    from tui.runbook import load_runbook

    path = scratch / "runbook.toml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    path.chmod(0o644)
    return len(load_runbook(path, known_probes=["runtime", "snapshots", "runc", "network", "config"]).steps)


# -- procfs ------------------------------------------------------------------------------------------------

STAT = "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 {start} 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
MOUNTINFO = (
    "1234 99 0:55 / /run/containerd/io.containerd.runtime.v2.task/k8s.io/abc/rootfs rw,relatime - overlay overlay "
    "rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/2/fs:/var/lib/containerd/"
    "io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter"
    ".v1.overlayfs/snapshots/3/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/3/work\n"
)
FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.88.0.5
        /32 host LOCAL
     |-- 127.0.0.1
        /32 host LOCAL
Local:
  +-- 10.88.0.0/16 2 0 2
"""
IF_INET6 = "fe800000000000000c7e2dfffe6a1b2c 02 40 20 80     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n"

#: Pids above the kernel's pid_max: a scratch /proc can never name a real process.
FAKE_PIDS = [4_194_400 + i for i in range(4)]


def procfs_case() -> st.SearchStrategy[dict[str, Any]]:
    comm = st.one_of(
        st.sampled_from(
            ["containerd", "containerd-shim-runc-v2", "runc", "runc:[2:INIT]", "a) b (c", ")", ""]
        ),
        st.text(max_size=20),
    )
    stat_line = st.one_of(
        st.builds(
            lambda c, pp, s: STAT.format(pid=1, comm=c, ppid=pp, start=s),
            comm,
            st.integers(-5, 2**70),
            st.integers(-5, 2**70),
        ),
        text_lines(STAT.format(pid=1, comm="runc:[2:INIT]", ppid=1, start=5)),
        st.text(max_size=60),
    )
    return st.fixed_dictionaries(
        {
            "stats": st.lists(stat_line, min_size=1, max_size=len(FAKE_PIDS)),
            "cmdline": st.lists(st.text(max_size=20), max_size=6).map("\0".join),
            "status": text_lines("Name:\trunc:[2:INIT]\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\n"),
            "cgroup": text_lines("0::/kubepods/besteffort/pod1/" + "a" * 64 + "\n"),
            "limits": st.tuples(st.text(max_size=12), st.text(max_size=12), st.text(max_size=12)),
            "uptime": st.text(max_size=20),
            "mountinfo": text_lines(MOUNTINFO * 2),
            "fib_trie": text_lines(FIB_TRIE),
            "if_inet6": text_lines(IF_INET6),
        }
    )


def read_procfs(case: dict[str, Any], scratch: Path) -> int:
    """``scan_runtime`` over a scratch /proc made of fuzzed stat/status/cmdline/cgroup files, and the
    mountinfo and netns parsers."""
    from probes.readers.disk.mounts import mounts_for_root, parse_mounts
    from probes.readers.procfs.netns import parse_fib_trie, parse_if_inet6
    from probes.readers.procfs.procs import scan_runtime

    proc = scratch / "proc"
    (proc / "sys" / "fs").mkdir(parents=True)
    for name, value in zip(
        ("pipe-user-pages-soft", "pipe-user-pages-hard", "pipe-max-size"), case["limits"], strict=True
    ):
        (proc / "sys" / "fs" / name).write_text(value, errors="surrogateescape")
    (proc / "uptime").write_text(case["uptime"], errors="surrogateescape")
    for pid, line in zip(FAKE_PIDS, case["stats"], strict=False):
        d = proc / str(pid)
        (d / "fd").mkdir(parents=True)
        (d / "stat").write_text(line.replace("1 (", f"{pid} (", 1), errors="surrogateescape")
        (d / "cmdline").write_text(case["cmdline"], errors="surrogateescape")
        (d / "status").write_text(case["status"], errors="surrogateescape")
        (d / "cgroup").write_text(case["cgroup"], errors="surrogateescape")
        os.symlink("pipe:[4242]", d / "fd" / "3")
    scan = scan_runtime(proc)
    mounts = parse_mounts(case["mountinfo"])
    mounts_for_root(mounts, Path("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs"))
    return (
        len(scan.processes)
        + len(mounts)
        + len(parse_fib_trie(case["fib_trie"]))
        + len(parse_if_inet6(case["if_inet6"]))
    )


# -- the registry of targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    run: Callable[[Any, Path], object]
    #: Share of the CI budget (examples) relative to 1.0.
    weight: float = 1.0


def targets() -> dict[str, Target]:
    meta, overlay = seed("meta.db"), seed("metadata.db")
    return {
        t.name: t
        for t in (
            Target("bolt-meta-db", lambda: mutated(meta), read_meta_db, 1.5),
            Target("bolt-overlay-db", lambda: mutated(overlay), read_overlay_db),
            Target(
                "containerd-root",
                lambda: st.tuples(mutated(meta), mutated(overlay)),
                read_root_from_mutated_dbs,
            ),
            Target("content-json", content_store_case, resolve_content, 1.5),
            Target("layer-tar", layer_blob, verify_blob, 1.5),
            Target("host-files", host_files_case, read_host_files),
            Target("runbook-toml", lambda: text_lines(RUNBOOK), load_runbook_text),
            Target("procfs", procfs_case, read_procfs),
        )
    }
