"""Regenerate the CRI stubs from cri.proto.

Usage, from the repository root: ``python -m probes.readers.cri.regenerate``.
Needs grpcio-tools (a test-only dependency), imported only when generating.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PROTO = Path("probes") / "readers" / "cri" / "cri.proto"
GENERATED = ("cri_pb2.py", "cri_pb2.pyi", "cri_pb2_grpc.py")


def generate(out_dir: Path, proto: Path = PROTO) -> list[Path]:
    """Compile ``proto`` (cri.proto unless named) into ``out_dir/<its folder>/`` and return the generated files.

    The module names follow protoc's: ``<stem>_pb2.py``, ``<stem>_pb2.pyi``, ``<stem>_pb2_grpc.py``.
    """
    from importlib import resources

    from grpc_tools import protoc

    out_dir = Path(out_dir).resolve()
    target = out_dir / proto.parent
    target.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{REPO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(REPO_ROOT / proto),
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed with exit code {rc} for {proto}")
    paths = [target / name.replace("cri", proto.stem, 1) for name in GENERATED]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise RuntimeError(f"protoc did not write: {', '.join(missing)}")
    return paths


def main() -> int:
    for path in generate(REPO_ROOT):
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
