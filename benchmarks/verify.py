"""Benchmark: nodedoc's snapshot verification against `tar -tzvf` of the blob plus `find` over the folder.

Generates a gzip layer (default 1 GiB compressed, ~50,000 files of random data) and the same files
unpacked into a snapshot-shaped folder (``snapshots/1/fs``), then times, from one run each:

- nodedoc: ``verify_layer`` given the blob's digest and diff_id, as ``nodedoc snapshots --verify`` is (stream,
  sha256 of the blob and of the tar checked against them, full tree scan, comparison) in a child process;
- baseline: ``tar -tzvf BLOB > /dev/null`` then ``find FS -printf '%m %s %y %l\\n' > /dev/null``.

Prints both times, the ratio (target ≤ 0.4×) and nodedoc's peak memory (max RSS of its process). Then the
content mode, ``verify_layer(deep=True)`` (every regular file's bytes hashed against its tar member's),
against ``tar -xzOf BLOB | sha256sum`` plus ``sha256sum`` of every file of the folder (target ≤ 1.5×).
Usage: python benchmarks/verify.py [--size-mib 1024] [--files 50000] [--dir /tmp/nodedoc-verify-bench] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

TARGET = 0.4
DEEP_TARGET = 1.5

CHILD = """
import json, sys, time
from pathlib import Path
from probes.readers.disk.layer_verify import verify_layer
digests = json.loads(Path(sys.argv[3]).read_text())
t = time.monotonic()
check = verify_layer(
    Path(sys.argv[1]), Path(sys.argv[2]), deep=sys.argv[4:] == ["--deep"], **digests
)
from probes.readers.disk.layer_verify import inflate_lib
diffs = len(check.missing) + len(check.changed) + len(check.extra)
print(time.monotonic() - t, check.entries, diffs, inflate_lib.__name__)
"""


class Hashing:
    """A writable file that also hashes what goes through it (the blob's digest, the tar's diff_id)."""

    def __init__(self, f: Any) -> None:
        self.f, self.sha = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return int(self.f.write(data))

    def flush(self) -> None:
        self.f.flush()

    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


def generate(work: Path, size_mib: int, files: int) -> tuple[Path, Path, Path]:
    """The blob, the unpacked folder and a JSON file of the blob's digest and diff_id."""
    blob, fs, digests = work / "layer.tar.gz", work / "snapshots" / "1" / "fs", work / "digests.json"
    if blob.exists() and fs.is_dir() and digests.exists():
        return blob, fs, digests
    shutil.rmtree(work, ignore_errors=True)
    fs.mkdir(parents=True)
    per_file = max(1, size_mib * 1024 * 1024 // files)
    rand = os.urandom(4 * 1024 * 1024)
    with (
        open(blob, "wb") as raw,
        gzip.GzipFile(fileobj=(compressed := Hashing(raw)), mode="wb", compresslevel=1) as gz,
        tarfile.open(fileobj=(tar := Hashing(gz)), mode="w|", format=tarfile.PAX_FORMAT) as tf,
    ):
        for i in range(files):
            d = f"d{i // 100:04d}"
            if i % 100 == 0:
                (fs / d).mkdir()
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            name = f"{d}/f{i:06d}"
            if i % 50 == 49:
                ti = tarfile.TarInfo(name)
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, f"f{i - 1:06d}", 0o777
                tf.addfile(ti)
                os.symlink(ti.linkname, fs / name)
                continue
            size = per_file + (i % 7) * 13
            off = (i * 1_000_003) % (len(rand) - size)
            data = rand[off : off + size]
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode = size, 0o644
            tf.addfile(ti, io.BytesIO(data))
            (fs / name).write_bytes(data)
            os.chmod(fs / name, 0o644)
    digests.write_text(json.dumps({"digest": compressed.digest(), "diff_id": tar.digest()}))
    return blob, fs, digests


def child(
    repo: Path, blob: Path, fs: Path, digests: Path, *flags: str
) -> tuple[float, float, int, int, str, float]:
    """Wall and CPU seconds, paths, differences, inflate module and peak MiB (the largest of the child
    processes so far) of one verification in its own process."""
    before, cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, cpu_of_children()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(blob), str(fs), str(digests), *flags],
        check=True,
        capture_output=True,
        text=True,
        cwd=repo,
    ).stdout.split()
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return float(out[0]), cpu_of_children() - cpu, int(out[1]), int(out[2]), out[3], peak


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: str) -> tuple[float, float]:
    """Wall and CPU seconds of a shell pipeline (CPU is what a loaded machine cannot distort)."""
    t, cpu = time.monotonic(), cpu_of_children()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t, cpu_of_children() - cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/nodedoc-verify-bench"))
    ap.add_argument(
        "--keep", action="store_true", help="keep the generated layer and folder for the next run"
    )
    args = ap.parse_args()
    t = time.monotonic()
    blob, fs, digests = generate(args.dir, args.size_mib, args.files)
    print(
        f"data: {blob.stat().st_size / 2**20:.0f} MiB gzip blob, {args.files} files "
        f"(prepared in {time.monotonic() - t:.1f}s)"
    )
    repo = Path(__file__).resolve().parent.parent
    try:
        subprocess.run(["cat", str(blob)], check=True, stdout=subprocess.DEVNULL)  # same page cache for both
        ours, ours_cpu, entries, diffs, inflate, peak_mib = child(repo, blob, fs, digests)
        tar_s, tar_cpu = timed(f"tar -tzvf {blob}")
        find_s, find_cpu = timed(f"find {fs} -printf '%m %s %y %l\\n'")
        base, base_cpu = tar_s + find_s, tar_cpu + find_cpu
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(
            f"nodedoc verify: {ours:.2f}s wall, {ours_cpu:.2f}s CPU ({entries} paths checked, {diffs} "
            f"differences; blob sha256, diff_id sha256, type/mode/size/link per path; inflate: {inflate})"
        )
        print(
            f"tar -tzvf + find: {base:.2f}s wall, {base_cpu:.2f}s CPU (tar {tar_s:.2f}s + find {find_s:.2f}s)"
        )
        verdict = "met" if ours / base <= TARGET else "NOT met"
        print(
            f"ratio: {ours / base:.2f}x wall (target <= {TARGET}x: {verdict}), {ours_cpu / base_cpu:.2f}x CPU"
        )
        print(f"peak memory of the verifying process: {peak_mib:.0f} MiB")
        deep, deep_cpu, _entries, deep_diffs, _inflate, deep_peak = child(repo, blob, fs, digests, "--deep")
        extract_s, extract_cpu = timed(f"tar -xzOf {blob} | sha256sum")
        sums_s, sums_cpu = timed(f"find {fs} -type f -print0 | xargs -0 sha256sum")
        deep_base, deep_base_cpu = extract_s + sums_s, extract_cpu + sums_cpu
        print(
            f"nodedoc verify --deep: {deep:.2f}s wall, {deep_cpu:.2f}s CPU ({deep_diffs} differences; "
            "every file's bytes hashed)"
        )
        print(
            f"tar -xzOf | sha256sum + sha256sum of the folder: {deep_base:.2f}s wall, {deep_base_cpu:.2f}s CPU "
            f"(tar {extract_s:.2f}s + sha256sum {sums_s:.2f}s)"
        )
        verdict = "met" if deep / deep_base <= DEEP_TARGET else "NOT met"
        print(
            f"ratio, deep: {deep / deep_base:.2f}x wall (target <= {DEEP_TARGET}x: {verdict}), "
            f"{deep_cpu / deep_base_cpu:.2f}x CPU"
        )
        print(f"peak memory, largest verifying process so far: {deep_peak:.0f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
