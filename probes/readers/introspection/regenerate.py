"""Regenerate the containerd introspection stubs from introspection.proto.

Usage, from the repository root: ``python -m probes.readers.introspection.regenerate``.
Needs grpcio-tools (a test-only dependency), imported only when generating.
"""

from __future__ import annotations

import sys
from pathlib import Path

from probes.readers.cri.regenerate import REPO_ROOT
from probes.readers.cri.regenerate import generate as generate_from

PROTO = Path("probes") / "readers" / "introspection" / "introspection.proto"


def generate(out_dir: Path) -> list[Path]:
    """Compile introspection.proto into ``out_dir/probes/readers/introspection/`` and return the generated files."""
    return generate_from(out_dir, PROTO)


def main() -> int:
    for path in generate(REPO_ROOT):
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
