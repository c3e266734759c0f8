"""`nodedoc check` with the snapshots probe: seed 002 found in one step, live and post-mortem."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from probes.readers.disk.containerd_store import ContainerdDisk

pytestmark = [pytest.mark.lab, pytest.mark.every_runtime]


def check(*args: str, quick: bool = False) -> tuple[int, dict]:
    extra = ["--quick"] if quick else []
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", *args, "check", "--format", "json", "--probe", "snapshots", *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode in (0, 1, 2), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_missing_pause_through_check_live_quick_and_post_mortem(lab, tmp_path):
    live = ("--endpoint", lab.endpoint, "--containerd-root", str(lab.root))
    code, doc = check(*live)
    assert code == 0 and [f["id"] for f in doc["findings"]] == ["snapshot.ok"]
    (pause,) = [
        s
        for s in ContainerdDisk(lab.root).snapshots()
        if s.kind == "committed" and lab.image in s.image_names
    ]
    target, aside = pause.fs_dir / "pause", lab.dir / "pause.aside"
    os.rename(target, aside)
    try:
        for quick in (False, True):
            code, doc = check(*live, quick=quick)
            (finding,) = [f for f in doc["findings"] if f["id"] == "snapshot.files-missing"]
            assert code == 2 and finding["severity"] == "critical"
            assert finding["subject"]["snapshot_id"] == pause.id and finding["subject"]["image"] == lab.image
            assert "/pause" in finding["summary"]
        quick_facts = doc["facts"]["snapshots"]
        assert quick_facts["quick"] is True and sum(quick_facts["verified"].values()) == 1
        copy = tmp_path / "root"
        subprocess.run(["cp", "-a", str(lab.root), str(copy)], capture_output=True, timeout=120)
        code, doc = check("--containerd-root", str(copy))
        assert code == 2 and doc["options"]["post_mortem"] is True
        assert [
            f["subject"]["snapshot_id"] for f in doc["findings"] if f["id"] == "snapshot.files-missing"
        ] == [pause.id]
    finally:
        os.rename(aside, target)
    code, doc = check(*live)
    assert code == 0
