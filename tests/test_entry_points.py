"""probes.entry_points finds what importlib.metadata finds, in its order, on every interpreter nodedoc supports.

Each interpreter runs the same script twice over: with this machine's own ``sys.path`` (pip's and the
editable install's distributions), and with crafted ``sys.path`` entries that aim at the edges: two
spellings of one distribution name (the first on the path wins), an ``.egg-info`` file, comments, blank
lines and lines before any section, a metadata directory without ``entry_points.txt``, an upper-case
suffix, a zip on the path, a malformed line (read one distribution at a time: that distribution is one
entry point whose load says why, in the group it has a section for).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_zipapp import PYTHONS, interpreter

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ["nodedoc.probes", "console_scripts", "pytest11", "demo.group", "absent.group"]

SCRIPT = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
from probes.compat import entry_points_in as from_importlib_metadata
from probes.entry_points import entry_points_in
groups = json.loads(sys.argv[2])
fast = {group: [(e.name, e.value, e.group) for e in entry_points_in(group)] for group in groups}
imported = "importlib.metadata" in sys.modules
slow = {group: [(e.name, e.value, e.group) for e in from_importlib_metadata(group)] for group in groups}
print(json.dumps([fast, imported, slow]))
"""


def distribution(site: Path, dirname: str, text: str | None) -> None:
    meta = site / dirname
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dirname.split('-')[0]}\nVersion: 1\n")
    if text is not None:
        (meta / "entry_points.txt").write_text(text)


def crafted(tmp_path: Path) -> list[list[str]]:
    """sys.path prefixes: each a case the fast reader must read as importlib.metadata does, or hand over."""
    first, second = tmp_path / "first", tmp_path / "second"
    text = "# a comment\n\n[demo.group]\n  one = pkg.mod:Obj  \n#two = x:y\n"
    distribution(first, "Demo_Probes-1.0.dist-info", text + "[console_scripts]\ndemo = pkg:main\n")
    distribution(second, "demo.probes-2.0.dist-info", "[demo.group]\nshadowed = other:Obj\n")
    distribution(second, "zzz-1.0.egg-info", "[demo.group]\nlast=z:z\n")
    distribution(second, "noentries-1.0.dist-info", None)
    (second / "single-1.0.egg-info").write_text("Metadata-Version: 1.0\nName: single\n")
    upper = tmp_path / "upper"
    distribution(upper, "Loud-1.0.DIST-INFO", "[demo.group]\nloud = l:l\n")
    stray = tmp_path / "stray"  # a line before any section: passed over (3.9's configparser raises)
    distribution(stray, "stray-1.0.dist-info", "stray = before.any:section\n[demo.group]\ns = s:s\n")
    broken = tmp_path / "broken"
    distribution(broken, "bad-1.0.dist-info", "[demo.group]\nno equals sign here\n")
    archive = tmp_path / "dists.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: zipped\nVersion: 1\n")
        zf.writestr("zipped-1.0.dist-info/entry_points.txt", "[demo.group]\nzipped = zz:zz\n")
    return [
        [],
        [str(first), str(second)],
        [str(second), str(first), str(second)],
        [str(upper), str(first)],
        [str(archive), str(first)],
        ["", str(tmp_path / "missing"), str(first)],
        [str(stray), str(first)],
        [str(broken)],
    ]


@pytest.mark.parametrize("minor", PYTHONS)
def test_the_entry_points_read_are_importlib_metadatas(minor: str, tmp_path: Path) -> None:
    python = interpreter(minor)
    fast_cases = 0
    for prefix in crafted(tmp_path):
        proc = subprocess.run(
            [str(python), "-c", SCRIPT, json.dumps(prefix), json.dumps(GROUPS)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if prefix == [str(tmp_path / "broken")]:
            # importlib.metadata raises for the whole group on a line without "=" (ValueError, TypeError
            # on 3.13); nodedoc reads each distribution on its own then, and the malformed one is an entry
            # point of its own in the group it has a section for, and nowhere else
            assert proc.returncode == 0, proc.stderr
            fast, _imported, slow = json.loads(proc.stdout)
            assert fast == slow
            assert fast["demo.group"] == [["bad", "", "demo.group"]]
            assert all(name != "bad" for name, _v, _g in fast["console_scripts"] + fast["absent.group"])
            continue
        if minor == "3.9" and str(tmp_path / "stray") in prefix:
            # 3.9's configparser raises on the line before any section: that distribution is unreadable
            assert proc.returncode == 0, proc.stderr
            fast, _imported, slow = json.loads(proc.stdout)
            assert fast == slow and ["stray", "", "demo.group"] in fast["demo.group"]
            continue
        assert proc.returncode == 0, proc.stderr
        fast, imported, slow = json.loads(proc.stdout)
        assert fast == slow, prefix
        if str(tmp_path / "first") in prefix:
            assert fast["demo.group"], prefix  # something to compare
        if minor == f"{sys.version_info[0]}.{sys.version_info[1]}":
            assert fast["nodedoc.probes"], prefix  # installed for this interpreter: its own probes
        fast_cases += not imported
    if minor in ("3.11", "3.12", "3.13"):
        assert fast_cases >= 4  # the plain cases are read without importlib.metadata


def test_a_malformed_plugin_is_an_error_result_and_the_other_probes_run(tmp_path: Path) -> None:
    """check with a plugin distribution whose entry_points.txt is malformed: that plugin is an error result
    naming the distribution (the verdict unknown), a malformed distribution of another group is
    passed over, and the built-in probes still run."""
    site = tmp_path / "site"
    distribution(site, "bad_plugin-1.0.dist-info", "[nodedoc.probes]\nbroken\n")
    distribution(site, "other-1.0.dist-info", "[console_scripts]\nno equals\n")
    proc = subprocess.run(
        [sys.executable, "-m", "tui.cli", "check", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])},
    )
    assert proc.returncode in (2, 3), proc.stderr  # 3: could not run; 2 (a critical finding) still wins
    report = json.loads(proc.stdout)
    assert report["verdict"]["unknown"]
    assert "bad_plugin" in [p["id"] for p in report["verdict"]["could_not_run"]]
    probes = {p["id"]: p for p in report["probes"]}
    assert probes["bad_plugin"]["status"] == "error"
    assert (
        "entry points of the installed distribution bad_plugin cannot be read"
        in probes["bad_plugin"]["reason"]
    )
    assert "other" not in probes
    assert probes["host"]["status"] == "ok"


FALLBACK = """
import json, sys
sys.path[:0] = json.loads(sys.argv[1])
from probes.compat import entry_points_in
print(json.dumps([(e.name, e.value) for e in entry_points_in("nodedoc.probes")]))
"""


def test_read_one_distribution_at_a_time_nothing_is_lost_and_nothing_unrelated_is_judged(
    tmp_path: Path,
) -> None:
    """When one distribution's file is malformed: two distributions without METADATA (named by their
    directories, as importlib.metadata names them) both keep their probes; a distribution whose file is not
    UTF-8 and has no nodedoc.probes section is passed over; the malformed one with a section is reported."""
    site = tmp_path / "site"
    for dirname, text in (
        ("q_plugin-1.0.dist-info", "[nodedoc.probes]\nq = probes.builtin.host:HostProbe\n"),
        ("r_plugin-1.0.dist-info", "[nodedoc.probes]\nr = probes.builtin.host:HostProbe\n"),
    ):
        (site / dirname).mkdir(parents=True)
        (site / dirname / "entry_points.txt").write_text(text)
    distribution(site, "bad-1.0.dist-info", "[nodedoc.probes]\nno equals sign\n")
    binary = site / "binary-1.0.dist-info"
    binary.mkdir()
    (binary / "METADATA").write_text("Metadata-Version: 2.1\nName: binary\nVersion: 1\n")
    (binary / "entry_points.txt").write_bytes(b"[console_scripts]\nx = y:z\n\xff\xfe\n")
    proc = subprocess.run(
        [sys.executable, "-c", FALLBACK, json.dumps([str(site)])],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    found = dict(json.loads(proc.stdout))
    assert found["q"] == found["r"] == "probes.builtin.host:HostProbe"
    assert found["bad"] == ""
    assert "binary" not in found
