"""Fuzzing in CI: every parser fed from the node, on a bounded budget (profile ``ci``, tests/conftest.py).

Only :class:`NodedocError` subclasses may escape a reader; each case ends within 5 s and 128 MiB; a reader
that fails makes the probe's verdict unknown, never an all-clear. ``scripts/fuzz`` runs the same targets for
as long as you like. The regressions the fuzzer found are kept as explicit cases below.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import fuzzing
import pytest
from hypothesis import given, settings

from probes.api import ProbeStatus
from probes.errors import NodedocError
from probes.node import NodeContext
from probes.registry import run_one, select

TARGETS = fuzzing.targets()
#: Targets whose readers tolerate anything (bad lines are skipped or reported as findings): no error expected.
TOLERANT = {"host-files", "procfs", "runbook-toml"}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_nodedoc_errors_escape(name: str) -> None:
    target = TARGETS[name]
    outcomes: Counter[str] = Counter()

    @settings(max_examples=max(10, int(settings.default.max_examples * target.weight)))
    @given(target.strategy())
    def case(example) -> None:
        outcomes[fuzzing.exercise(target.run, example).result] += 1

    case()
    assert outcomes["data"] > 0, outcomes  # the fuzzer reaches the parsers' success paths
    if name not in TOLERANT and name != "runbook-toml":
        assert sum(n for k, n in outcomes.items() if k != "data") > 0, outcomes  # ... and their error paths


@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(TARGETS["containerd-root"].strategy())
def test_a_reader_error_makes_the_snapshot_verdict_unknown(example: tuple[bytes, bytes]) -> None:
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="nd-fuzz-"))
    try:
        root = fuzzing.containerd_root(scratch, *example)
        try:
            fuzzing.read_whole_root(root)
            failed = False
        except NodedocError:
            failed = True
        result = run_one(select(["snapshots"])[0], NodeContext(containerd_root=root, endpoint=None))
        if failed:
            assert result.status in (ProbeStatus.ERROR, ProbeStatus.SKIPPED), (result.status, result.findings)
            assert result.reason and "Traceback" not in result.reason
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- regressions the fuzzer found, kept as explicit cases --------------------------------------------------


def _content_case(manifest: dict, target_digest: str | None = None) -> tuple[dict[str, bytes], str, str]:
    data = json.dumps(manifest).encode()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {digest: data}, target_digest or digest, "application/vnd.oci.image.manifest.v1+json"


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(_content_case({}, "sha256:" + "a" * 63 + "\x00"), id="nul-in-target-digest"),
        pytest.param(
            _content_case({"config": {"digest": "sha256:ab\x00cd", "mediaType": "x"}, "layers": []}),
            id="nul-in-config-digest",
        ),
        pytest.param(_content_case({}, "sha256:../../../../etc/passwd"), id="dotdot-digest"),
        pytest.param(
            _content_case(
                {"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"platform": True}]}
            ),
            id="platform-not-an-object",
        ),
        pytest.param(_content_case({"manifests": 5}), id="manifests-not-an-array"),
    ],
)
def test_content_store_regressions(example) -> None:
    """Issue 13: a NUL byte in an image's target digest raised ValueError('embedded null byte')."""
    assert fuzzing.exercise(fuzzing.resolve_content, example).result == "ContentError"


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(fuzzing._header(b"pax", b"x", -1024) + b"\0" * 1024, id="negative-size-extended-header"),
        pytest.param(fuzzing._header(b"big", b"L", 2**40) + b"\0" * 1024, id="huge-long-name"),
        pytest.param(fuzzing._header(b"neg", b"0", -(2**40)) + b"\0" * 1024, id="negative-size-file"),
        pytest.param(fuzzing.bomb(64 << 20), id="zeros-bomb"),
    ],
)
def test_layer_tar_regressions(blob: bytes) -> None:
    """A negative size in a PAX header sent the tar reader back over the same header forever."""
    outcome = fuzzing.exercise(fuzzing.verify_blob, blob)
    assert outcome.result in ("BlobCorrupt", "data"), outcome
    assert outcome.result == "BlobCorrupt" or blob[:2] == b"\x1f\x8b"
