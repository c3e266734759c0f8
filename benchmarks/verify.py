"""Benchmark: nodedoc's snapshot verification against `tar -tzvf` of the blob plus `find` over the folder.

Generates a gzip layer (default 1 GiB compressed, ~50,000 files of random data) and the same files
unpacked into a snapshot-shaped folder (``snapshots/1/fs``), then times, from one run each:

- nodedoc: ``verify_layer`` (stream + sha256 of blob and tar, full tree scan, comparison) in a child process;
- baseline: ``tar -tzvf BLOB > /dev/null`` then ``find FS -printf '%m %s %y %l\\n' > /dev/null``.

Prints both times, the ratio (target ≤ 0.4×) and nodedoc's peak memory (max RSS of its process).
Usage: python benchmarks/verify.py [--size-mib 1024] [--files 50000] [--dir /tmp/nodedoc-verify-bench] [--keep]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

TARGET = 0.4

CHILD = """
import sys, time
from pathlib import Path
from probes.readers.disk.layer_verify import verify_layer
t = time.monotonic()
check = verify_layer(Path(sys.argv[1]), Path(sys.argv[2]))
from probes.readers.disk.layer_verify import inflate_lib
diffs = len(check.missing) + len(check.changed) + len(check.extra)
print(time.monotonic() - t, check.entries, diffs, inflate_lib.__name__)
"""


def generate(work: Path, size_mib: int, files: int) -> tuple[Path, Path]:
    blob, fs = work / "layer.tar.gz", work / "snapshots" / "1" / "fs"
    if blob.exists() and fs.is_dir():
        return blob, fs
    shutil.rmtree(work, ignore_errors=True)
    fs.mkdir(parents=True)
    per_file = max(1, size_mib * 1024 * 1024 // files)
    rand = os.urandom(4 * 1024 * 1024)
    with (
        gzip.open(blob, "wb", compresslevel=1) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tf,
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
    return blob, fs


def timed(cmd: str) -> float:
    t = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


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
    blob, fs = generate(args.dir, args.size_mib, args.files)
    print(
        f"data: {blob.stat().st_size / 2**20:.0f} MiB gzip blob, {args.files} files "
        f"(prepared in {time.monotonic() - t:.1f}s)"
    )
    repo = Path(__file__).resolve().parent.parent
    try:
        subprocess.run(["cat", str(blob)], check=True, stdout=subprocess.DEVNULL)  # same page cache for both
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(blob), str(fs)],
            check=True,
            capture_output=True,
            text=True,
            cwd=repo,
        ).stdout.split()
        ours, entries, diffs, inflate = float(out[0]), int(out[1]), int(out[2]), out[3]
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        tar_s = timed(f"tar -tzvf {blob}")
        find_s = timed(f"find {fs} -printf '%m %s %y %l\\n'")
        base = tar_s + find_s
        print(
            f"nodedoc verify: {ours:.2f}s ({entries} paths checked, {diffs} differences; blob sha256, "
            f"diff_id sha256, type/mode/size/link per path; inflate: {inflate})"
        )
        print(f"tar -tzvf + find: {base:.2f}s (tar {tar_s:.2f}s + find {find_s:.2f}s)")
        verdict = "met" if ours / base <= TARGET else "NOT met"
        print(f"ratio: {ours / base:.2f}x (target <= {TARGET}x: {verdict})")
        print(f"peak memory of the verifying process: {peak_mib:.0f} MiB")
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
