"""The faster reads behind ``nodedoc check`` give exactly what the slower ones they replaced gave.

Each fast path is set beside a reference written the plain way (the regular expression over the whole
region, the package database read again for every file, every changelog line searched): on the node's real
binaries and package database, and on generated inputs that aim at the edges (strings at a region's ends,
NULs back to back, long digit runs, a version glued to the next string).
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.node import NodeContext
from probes.readers.host import binaries, gobinary, packages
from probes.readers.procfs import pipes
from tui import redact

RUNTIME_CACHE = Path("/var/cache/nodedoc-runtimes")

# -- the plain way ---------------------------------------------------------------------------------------

STANDALONE = re.compile(rb"(?<=\x00)v?\d+\.\d+\.\d+[0-9A-Za-z.~+\-]*(?=\x00)")
SOURCE_DEFAULT = re.compile(rb"(?<![0-9.])(\d+\.\d+\.\d+(?:-(?:rc|beta|alpha)\.\d+)?)\+unknown")


def standalone_versions(data: bytes | mmap.mmap, sections: list[gobinary._Section]) -> list[str]:
    regions = [s for s in sections if s.name in (".rodata", ".noptrdata", ".data.rel.ro")] or [
        gobinary._Section("file", 0, 0, len(data))
    ]
    found: list[str] = []
    for region in regions:
        for match in STANDALONE.finditer(data[region.offset : region.offset + region.size]):
            text = match.group().decode("ascii")
            if text not in found and gobinary.try_parse(text) is not None:
                found.append(text)
    return found


def source_defaults(data: bytes | mmap.mmap) -> set[str]:
    return {m.group(1).decode() for m in SOURCE_DEFAULT.finditer(data)}


def dpkg_owner(host_root: Path, paths: list[str]) -> tuple[str, str, str] | None:
    """(package, listing, the path as listed): every ``*.list`` read in name order, line by line."""
    wanted = {alias for p in paths for alias in packages.aliases(p)}
    for listing in sorted((host_root / "var/lib/dpkg/info").glob("*.list")):
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
        hit = next((line for line in lines if line in wanted), None)
        if hit is not None and packages.dpkg_version(host_root, listing.stem.split(":")[0]) is not None:
            return listing.stem.split(":")[0], listing.name, hit
    return None


# -- version strings in binaries ---------------------------------------------------------------------------


def runtime_binaries() -> list[Path]:
    found = [Path(p) for p in ("/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2", "/usr/bin/ctr")]
    found += [Path("/usr/sbin/runc")]
    if RUNTIME_CACHE.is_dir():
        found += sorted(RUNTIME_CACHE.glob("*/usr/bin/containerd"))
    return [p for p in found if p.is_file()]


@pytest.mark.parametrize("path", runtime_binaries(), ids=str)
def test_the_version_scans_of_a_real_binary_are_the_regular_expressions(path: Path) -> None:
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        _order, sections = gobinary._sections(data)
        assert gobinary._standalone_versions(data, sections) == standalone_versions(data, sections)
        assert gobinary._source_defaults(data) == source_defaults(data)


#: Pieces a linker's read-only data is made of, as far as the version scans care.
PIECES = st.sampled_from(
    [
        b"\x00",
        b"\x00\x00",
        b"1",
        b"20",
        b".",
        b".6.",
        b"v",
        b"~ds1",
        b"-1+deb12u3",
        b"+unknown",
        b"-rc.",
        b"x",
    ]
    + [b"beta", b"+", b"1.6.20", b"2.1.9+unknown", b"\x001.2.3\x00", b"9" * 70]
)


@st.composite
def rodata(draw: st.DrawFn) -> tuple[bytes, list[gobinary._Section]]:
    data = b"".join(draw(st.lists(PIECES, max_size=60)))
    sections = []
    for name in draw(st.lists(st.sampled_from([".rodata", ".noptrdata", ".text"]), max_size=3)):
        offset = draw(st.integers(0, len(data) + 4))
        sections.append(gobinary._Section(name, 0, offset, draw(st.integers(0, len(data) + 4))))
    return data, sections


@settings(max_examples=600)
@given(rodata())
def test_the_version_scans_are_the_regular_expressions(case: tuple[bytes, list[gobinary._Section]]) -> None:
    data, sections = case
    # mmap has bytes' find/rfind/slicing; the scans are given bytes here.
    assert gobinary._standalone_versions(data, sections) == standalone_versions(data, sections)  # type: ignore[arg-type]
    assert gobinary._source_defaults(data) == source_defaults(data)  # type: ignore[arg-type]


# -- the package database ------------------------------------------------------------------------------


def sample_paths() -> list[str]:
    """Files of a few packages, their merged-/usr twins, and paths no package lists."""
    info = Path("/var/lib/dpkg/info")
    paths = [
        "/usr/bin/containerd",
        "/bin/containerd",
        "/usr/sbin/runc",
        "/sbin/runc",
        "/usr/bin/no-such-file",
    ]
    for listing in sorted(info.glob("*.list"))[::90]:
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
        paths += lines[1 :: max(1, len(lines) // 3)][:3]
    return paths


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").is_file(), reason="needs a dpkg database")
def test_one_read_of_the_package_database_answers_as_a_read_per_file() -> None:
    database = packages.DpkgDatabase(Path("/"))
    for path in sample_paths():
        shared = packages.dpkg_owner(Path("/"), [path], database)
        expected = dpkg_owner(Path("/"), [path])
        got = (shared.name, shared.listed_in.rsplit("/", 1)[-1], shared.file) if shared else None
        assert got == expected, path
        if shared is not None:
            assert shared == packages.dpkg_owner(Path("/"), [path])  # checksum verdict included


def installed_version(status: str, package: str) -> str | None:
    """Every stanza of the status file parsed, in order, until the package's installed one."""
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith(" ")
        )
        if (
            fields.get("Package", "").strip() == package
            and "installed" in fields.get("Status", "").split()[-1:]
        ):
            return fields.get("Version", "").strip() or None
    return None


@pytest.mark.skipif(not Path("/var/lib/dpkg/status").is_file(), reason="needs a dpkg database")
def test_installed_versions_are_those_of_every_stanza_parsed() -> None:
    status = Path("/var/lib/dpkg/status").read_text(encoding="utf-8", errors="replace")
    names = [line[len("Package:") :].strip() for line in status.splitlines() if line.startswith("Package:")]
    names += ["", "containerd-x", "lib", "no-such-package", "Package", "install ok installed"]
    crafted = "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage:  a \nStatus: x\n\n"
    for text in (status, crafted, crafted[::-1], ""):
        for name in names[::7] + names[-6:] + ["a", " a"]:
            assert packages._installed_version(text, name) == installed_version(text, name), name


@pytest.mark.parametrize(
    "listing",
    [
        pytest.param(b"/.\n/usr\n/usr/bin\n/usr/bin/containerd\n", id="plain"),
        pytest.param(b"/usr/bin/containerd.old\n/usr/bin/containerd-x\n", id="prefix-only"),
        pytest.param(b"/usr/bin/x\r/usr/bin/containerd\n", id="carriage-return"),
        pytest.param(b"/usr/bin/\xff\xfe\n/bin/containerd\x85\n/bin/containerd\n", id="not-utf8"),
        pytest.param(b"/usr/bin/\xc3/usr/bin/containerd\n", id="broken-sequence-before"),
    ],
)
def test_a_crafted_package_list_is_read_as_before(tmp_path: Path, listing: bytes) -> None:
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (info / "aaa.list").write_bytes(b"/etc/aaa\n")
    (info / "containerd.list").write_bytes(listing)
    status = "".join(
        f"Package: {p}\nStatus: install ok installed\nVersion: 1.0\n\n" for p in ("aaa", "containerd")
    )
    (tmp_path / "var/lib/dpkg/status").write_text(status)
    found = packages.dpkg_owner(tmp_path, ["/usr/bin/containerd"])
    expected = dpkg_owner(tmp_path, ["/usr/bin/containerd"])
    assert ((found.name, found.listed_in.rsplit("/", 1)[-1], found.file) if found else None) == expected


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(["CVE-2024-21626", "cve-2024-216", "GHSA-7ww5", "x", " ", "\n", "\r", "-", "_"]))
)
def test_a_changelog_is_searched_as_line_by_line(words: list[str]) -> None:
    text = "".join(words)
    changelog = packages.Changelog("changelog", (packages.ChangelogEntry("1.0", text),))
    names = ("CVE-2024-21626", "CVE-2024-216")
    expected = None
    for line in text.splitlines():
        if any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", line, re.IGNORECASE) for n in names):
            expected = (changelog.entries[0], line.strip(" *+-\t"))
            break
    assert changelog.naming(names, "1.0") == expected


# -- binaries read at once ----------------------------------------------------------------------------------


def test_binaries_read_at_once_are_the_binaries_read_one_by_one() -> None:
    """As many reads at once as files, each read once: the same answers as one call after another."""
    wanted = [(n, p) for n in ("containerd", "ctr", "runc") for p in binaries.find_all(Path("/"), n)]
    wanted += [("containerd", "/usr/bin/containerd"), ("containerd", "/bin/containerd")]  # one file, twice
    together = NodeContext().binaries(wanted)
    node = NodeContext()
    one_by_one = [node.binary(name, path) for name, path in wanted]
    assert together == one_by_one
    assert [(b.evidence, b.installed) for b in together] == [(b.evidence, b.installed) for b in one_by_one]
    first = {b.real: b for b in reversed(one_by_one)}
    assert list(first.values()) == [binaries.inspect(Path("/"), b.name, b.path) for b in first.values()]


def test_binaries_read_ahead_are_the_binaries_read_when_asked() -> None:
    """check reads the runtime's binaries ahead, each hashed first: the same answers as reading them later."""
    ahead = NodeContext()
    ahead.read_runtime_binaries_ahead().join(timeout=120)
    asked = NodeContext()
    wanted = asked.runtime_binary_paths()
    assert wanted, "this machine has containerd and runc"
    fresh = [asked.binary(name, path) for name, path in wanted]
    assert [ahead.binary(name, path) for name, path in wanted] == fresh
    assert [b.evidence for b in fresh] == [ahead.binary(n, p).evidence for n, p in wanted]


def test_a_file_is_hashed_once_until_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    target = tmp_path / "binary"
    target.write_bytes(b"one" * 100_000)
    reads: list[Path] = []
    real_digest = packages.file_digest
    monkeypatch.setattr(packages, "file_digest", lambda p, a: reads.append(p) or real_digest(p, a))
    database = packages.DpkgDatabase(tmp_path)
    answers: list[str | None] = []
    threads = [threading.Thread(target=lambda: answers.append(database.md5(target))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [real_digest(target, "md5")] * 6 and len(reads) == 1
    target.write_bytes(b"two" * 100_000)  # same size, new bytes (and a new modification time)
    os.utime(target, ns=(1, 1))
    assert database.md5(target) == real_digest(target, "md5") != answers[0]
    assert database.md5(tmp_path / "missing") is None


# -- redaction ----------------------------------------------------------------------------------------------


class PlainRedactor(redact.Redactor):
    """Every rule run over every string, every key tested each time it is seen."""

    def text(self, value: str) -> str:
        for kind, pattern in redact._TEXT_RULES:
            value = pattern.sub(partial(self._replace, kind), value)
        return value

    def _entry(self, key: str, value: object) -> object:
        if isinstance(value, str) and value and redact._SENSITIVE_KEY.search(key):
            return self._take(value, "registry credential" if "auth" in key.lower() else "password or token")
        return self.walk(value, key)


FRAGMENTS = st.sampled_from(
    [
        "password=hunter22",
        "Bearer abcdefgh1234",
        "basic QWxhZGRpbjpvcGVu",
        "https://u:pa55@host/x",
        "--token s3cr3t",
    ]
    + ['"name": "DB", "value": "v4lue"', '"auth": "dXNlcjpw"', "eyJhbGciOi.eyJzdWIiOi.sig", "ghp_" + "a" * 24]
    + [
        "AKIA" + "B" * 16,
        "-----BEGIN RSA PRIVATE KEY-----",
        "MIIE",
        "-----END RSA PRIVATE KEY-----",
        "\u212a",
    ]
    + ["api_KEY: x", "PaSsWoRd", " ", "\n", "=", ":", '"', "x", "pod-7", "/var/run/netns/cni-1"]
)
TEXTS = st.lists(FRAGMENTS, max_size=8).map("".join) | st.text(max_size=30)
KEYS = st.sampled_from(
    ["env", "envs", "password", "name", "value", "auth", "Authorization", "db_auth", "x", "cmdline"]
)
DOCUMENTS = st.recursive(
    TEXTS | st.integers() | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=800)
@given(DOCUMENTS)
def test_redaction_that_passes_over_plain_text_removes_what_every_rule_would(document: object) -> None:
    fast, plain = redact.Redactor(), PlainRedactor()
    assert fast.scrub_echoes(fast.walk(document)) == plain.scrub_echoes(plain.walk(document))
    assert (fast.counts, fast.removed) == (plain.counts, plain.removed)


def test_pipe_ends_written_out_are_what_asdict_gives() -> None:
    """PipeEnd and PipePeer write their dicts field by field; a scan of this machine's /proc is the input."""
    import dataclasses

    from probes.readers.procfs.procs import scan_runtime

    ends = [end for proc in scan_runtime("/proc").processes for end in proc.pipes]
    ends.append(pipes.PipeEnd(3, 99, "write", 4096, None, [pipes.PipePeer(7, "runc:[2:INIT]", 4, "read")]))
    assert [e.to_dict() for e in ends] == [dataclasses.asdict(e) for e in ends]


# -- memory of the hashes ----------------------------------------------------------------------------------

DIGEST_MEMORY = r"""
import hashlib, sys, threading
from pathlib import Path
from probes.readers.host import packages

files = [Path(p) for p in sys.argv[1:]]
def peak():
    return int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) << 10
before = peak()
got = {}
threads = [threading.Thread(target=lambda f=f: got.__setitem__(f, packages.file_digest(f, "md5"))) for f in files]
for t in threads:
    t.start()
for t in threads:
    t.join()
grown = peak() - before
assert all(got[f] == hashlib.md5(f.read_bytes()).hexdigest() for f in files)
print(grown, packages._HASHING._initial_value, packages.DIGEST_BLOCK)
"""


def test_files_hashed_together_hold_one_buffer_each_of_those_hashing_at_once(tmp_path: Path) -> None:
    """Six 24 MiB files hashed at once (as the troubleshooter's probes ask for the runtime's binaries) grow
    the peak by no more than one DIGEST_BLOCK per file hashed at a time, and hash to the same digests."""
    import subprocess
    import sys

    files = []
    for i in range(6):
        path = tmp_path / f"binary{i}"
        path.write_bytes(os.urandom(1 << 20) * 24)
        files.append(str(path))
    out = subprocess.run(
        [sys.executable, "-c", DIGEST_MEMORY, *files], capture_output=True, text=True, check=True
    ).stdout.split()
    grown, at_once, block = (int(v) for v in out)
    assert 1 <= at_once <= 4
    # The interpreter's own growth while the threads start is a few MiB at most.
    assert grown <= at_once * block + (6 << 20), f"peak grew {grown >> 20} MiB for {at_once} at a time"


def test_a_fifo_or_a_device_has_no_digest_and_blocks_nothing(tmp_path: Path) -> None:
    """A FIFO where a binary should be (open would wait for a writer for ever, and with it every hash after
    it) and a device (its read never ends) are not regular files: no digest, at once."""
    import threading

    fifo = tmp_path / "containerd"
    os.mkfifo(fifo)
    got: dict[str, object] = {}
    thread = threading.Thread(target=lambda: got.update(fifo=packages.file_digest(fifo, "md5")), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "hashing a FIFO blocked"
    assert got["fifo"] is None
    assert packages.file_digest(Path("/dev/zero"), "md5") is None
    plain = tmp_path / "plain"
    plain.write_bytes(b"x" * 100)
    assert packages.file_digest(plain, "md5") == hashlib.md5(b"x" * 100).hexdigest()
