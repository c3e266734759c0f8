"""The runbook engine: loading and validating TOML runbooks, walking a session, the CLI's list/validate/run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from probes.api import Finding, ProbeResult, ProbeStatus, Remedy, Severity
from tui.runbook import (
    BUILTIN_DIR,
    RunbookError,
    RunbookSession,
    load_catalog,
    load_runbook,
    walk,
)

PROBES = ["runtime", "network", "snapshots", "runc"]

GOOD = """
id = "tiny"
title = "Tiny"
symptoms = ["something odd"]

[steps.ask]
kind = "question"
title = "Which?"
ask = "Pick one"
[[steps.ask.choices]]
id = "a"
label = "A"
next = "probe"
[[steps.ask.choices]]
id = "b"
label = "B"
next = "fine"

[steps.probe]
kind = "probe"
title = "Look"
probes = ["runtime"]
otherwise = "fine"
[[steps.probe.branches]]
when = ["runtime.unreachable"]
next = "broken"

[steps.broken]
kind = "conclusion"
title = "Broken"
diagnosis = "It is broken"
severity = "critical"
summary = "Very."

[steps.fine]
kind = "conclusion"
title = "Fine"
diagnosis = "No fault found"
severity = "ok"
summary = "All good."
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message", "step"),
    [
        pytest.param(
            GOOD.replace('next = "broken"', 'next = "nowhere"'),
            "unknown step 'nowhere'",
            "probe",
            id="unknown-step",
        ),
        pytest.param(
            GOOD + '\n[steps.lonely]\nkind = "conclusion"\ntitle = "x"\ndiagnosis = "x"\n'
            'severity = "ok"\nsummary = "x"\n',
            "unreachable",
            "lonely",
            id="unreachable-step",
        ),
        pytest.param(
            GOOD.replace('next = "broken"', 'next = "ask"'), "cycle: ask -> probe -> ask", "probe", id="cycle"
        ),
        pytest.param(
            GOOD.replace('probes = ["runtime"]', 'probes = ["telepathy"]'),
            "unknown probe 'telepathy'",
            "probe",
            id="unknown-probe",
        ),
        pytest.param(
            GOOD.replace('diagnosis = "It is broken"\n', ""),
            "missing field 'diagnosis'",
            "broken",
            id="missing-step-field",
        ),
        pytest.param(
            GOOD.replace('symptoms = ["something odd"]\n', ""),
            "missing field 'symptoms'",
            "",
            id="missing-top-field",
        ),
        pytest.param(
            GOOD.replace('kind = "probe"', 'kind = "guess"'),
            "kind 'guess' is not one of",
            "probe",
            id="unknown-kind",
        ),
        pytest.param(
            GOOD.replace('severity = "critical"', 'severity = "dire"'),
            "severity 'dire'",
            "broken",
            id="bad-severity",
        ),
        pytest.param(
            GOOD.replace('label = "B"\n', ""),
            "choice 2 is missing field 'label'",
            "ask",
            id="choice-without-label",
        ),
        pytest.param(GOOD.replace("[steps.ask]", "[steps.ask"), "not valid TOML", "", id="not-toml"),
    ],
)
def test_malformed_runbook_is_rejected_and_the_rest_load(
    tmp_path: Path, text: str, message: str, step: str
) -> None:
    write(tmp_path, "good.toml", GOOD.replace('id = "tiny"', 'id = "good"'))
    bad = write(tmp_path, "bad.toml", text)
    catalog = load_catalog(dirs=[tmp_path], known_probes=PROBES)
    assert list(catalog.runbooks) == ["good"]
    [problem] = catalog.problems
    assert problem.path == bad and message in str(problem)
    assert str(bad) in str(problem)
    if step:
        assert f"step {step!r}" in str(problem)
    with pytest.raises(RunbookError, match=str(bad)):
        load_runbook(bad, PROBES)


@pytest.mark.parametrize(
    ("dir_mode", "file_mode", "what"),
    [
        pytest.param(0o777, 0o644, "directory", id="world-writable-directory"),
        pytest.param(0o1777, 0o644, "directory", id="sticky-world-writable-directory"),
        pytest.param(0o755, 0o666, "file", id="world-writable-file"),
    ],
)
def test_runbooks_anyone_can_write_are_refused(
    tmp_path: Path, dir_mode: int, file_mode: int, what: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    path = write(shared, "tiny.toml", GOOD)
    path.chmod(file_mode)
    shared.chmod(dir_mode)
    catalog = load_catalog(dirs=[BUILTIN_DIR, shared], known_probes=None)
    assert "tiny" not in catalog.runbooks and "pod-sandbox-create" in catalog.runbooks
    [problem] = catalog.problems
    assert f"refused: its {what}" in str(problem) and "world-writable" in str(problem)
    shared.chmod(0o755)
    path.chmod(0o644)
    assert "tiny" in load_catalog(dirs=[shared], known_probes=PROBES).runbooks


def test_builtin_runbooks_load_and_name_real_probes() -> None:
    catalog = load_catalog(dirs=[BUILTIN_DIR])
    assert not catalog.problems, [str(p) for p in catalog.problems]
    assert {"pod-sandbox-create", "restart-lost-pods", "node-notready", "upgrade-runtime"} <= set(
        catalog.runbooks
    )
    for runbook in catalog.runbooks.values():
        assert runbook.symptoms and runbook.builtin
        kinds = {s.kind for s in runbook.steps.values()}
        assert {"conclusion", "probe"} <= kinds, runbook.id
        assert any(s.kind == "conclusion" and s.severity is Severity.OK for s in runbook.steps.values()), (
            f"{runbook.id} has no 'no fault found' conclusion"
        )


def test_a_user_runbook_replaces_a_builtin_with_the_same_id(tmp_path: Path) -> None:
    write(tmp_path, "mine.toml", GOOD.replace('id = "tiny"', 'id = "node-notready"'))
    catalog = load_catalog(dirs=[BUILTIN_DIR, tmp_path], known_probes=PROBES)
    assert catalog.runbooks["node-notready"].source == tmp_path / "mine.toml"
    assert catalog.replaced == [(BUILTIN_DIR / "node-notready.toml", tmp_path / "mine.toml")]


def result(probe: str, *ids_and_severities: tuple[str, Severity], status=ProbeStatus.OK) -> ProbeResult:
    findings = [Finding(id=i, probe=probe, severity=s, title=i, summary=i) for i, s in ids_and_severities]
    return ProbeResult(probe=probe, title=probe, status=status, findings=findings)


@pytest.mark.parametrize(
    ("results", "conclusion", "matched"),
    [
        pytest.param(
            [result("runtime", ("runtime.unreachable", Severity.CRITICAL))],
            "broken",
            ["runtime.unreachable"],
            id="finding-branches",
        ),
        pytest.param([result("runtime", ("runtime.ok", Severity.OK))], "fine", [], id="otherwise"),
        pytest.param(
            [result("runtime", ("runtime.unreachable", Severity.INFO))],
            "fine",
            [],
            id="below-at-least-ignored",
        ),
        pytest.param(
            [result("runtime", status=ProbeStatus.ERROR)],
            "nodedoc.could-not-run",
            [],
            id="error-is-no-all-clear",
        ),
        pytest.param(
            [result("runtime", ("runtime.ok", Severity.OK)), result("snapshots", status=ProbeStatus.SKIPPED)],
            "nodedoc.could-not-run",
            [],
            id="one-probe-skipped-is-no-all-clear",
        ),
        pytest.param(
            [
                result("snapshots", status=ProbeStatus.ERROR),
                result("runtime", ("runtime.unreachable", Severity.CRITICAL)),
            ],
            "broken",
            ["runtime.unreachable"],
            id="a-finding-still-decides",
        ),
    ],
)
def test_walk_branches_on_findings(tmp_path: Path, results, conclusion: str, matched: list[str]) -> None:
    runbook = load_runbook(write(tmp_path, "tiny.toml", GOOD), PROBES)
    session = RunbookSession(runbook)
    seen: list[str] = []
    end = walk(
        session,
        node=None,
        answers={"ask": "a"},
        runner=lambda _node, ids: results,
        on_step=lambda _s, step: seen.append(step.id),
    )
    assert end.id == conclusion and seen == ["ask", "probe", conclusion]
    assert session.records[1].matched == matched
    assert [f.id for f in session.decisive_findings()] == matched


def test_could_not_run_goes_to_the_runbooks_own_unavailable_step_when_it_has_one(tmp_path: Path) -> None:
    text = GOOD.replace('otherwise = "fine"', 'otherwise = "fine"\nunavailable = "broken"')
    runbook = load_runbook(write(tmp_path, "tiny.toml", text), PROBES)
    failed = [result("runtime", status=ProbeStatus.ERROR)]
    end = walk(RunbookSession(runbook), node=None, answers={"ask": "a"}, runner=lambda _n, _ids: failed)
    assert end.id == "broken"


def test_the_cli_exits_3_at_the_could_not_run_conclusion(tmp_path: Path) -> None:
    """A probe step whose probe errors ends at "Verdict unknown", exit 3, never at "No fault found"."""
    user = tmp_path / "config" / "nodedoc" / "runbooks"
    user.mkdir(parents=True)
    write(user, "tiny.toml", GOOD.replace('probes = ["runtime"]', 'probes = ["snapshots"]'))
    root = tmp_path / "root"
    (root / "io.containerd.metadata.v1.bolt" / "meta.db").mkdir(parents=True)  # unreadable: a directory
    out = nodedoc(
        "runbook",
        "run",
        "tiny",
        "--containerd-root",
        str(root),
        "--answer",
        "ask=a",
        env={"XDG_CONFIG_HOME": str(tmp_path / "config")},
    )
    assert out.returncode == 3, out.stdout + out.stderr
    assert "Verdict unknown: a probe could not run" in out.stdout and "No fault found" not in out.stdout
    assert "snapshots: error (bolt file" in out.stdout


@pytest.mark.parametrize(
    ("findings", "shown"),
    [
        pytest.param(
            [("runtime.unreachable", [Remedy("a", "start it", proven="t::p"), Remedy("b", "look")])],
            ["start it", "look"],
            id="the-findings-steps",
        ),
        pytest.param(
            [
                ("runtime.unreachable", [Remedy("a", "start it"), Remedy("b", "look")]),
                ("runtime.other", [Remedy("a", "start it"), Remedy("c", "more")]),
                ("network.ok", [Remedy("x", "not this one")]),
            ],
            ["start it", "more", "look"],  # worst first, then by id
            id="each-command-once-only-named-findings",
        ),
        pytest.param([("runtime.other", [])], ["the runbook's own"], id="fallback-without-a-finding"),
    ],
)
def test_conclusion_takes_its_remediation_from_the_findings(
    tmp_path: Path, findings: list, shown: list[str]
) -> None:
    text = GOOD.replace(
        'summary = "Very."\n',
        'summary = "Very."\nremediation_from = ["runtime.*"]\n'
        '[[steps.broken.remediation]]\ntext = "fallback"\ncommand = "the runbook\'s own"\n',
    ).replace('when = ["runtime.unreachable"]', 'when = ["runtime.*"]')
    session = RunbookSession(load_runbook(write(tmp_path, "tiny.toml", text), PROBES))
    results = [
        ProbeResult(
            probe="runtime",
            title="runtime",
            status=ProbeStatus.OK,
            findings=[
                Finding(id=i, probe="runtime", severity=Severity.CRITICAL, title=i, summary=i, remediation=r)
                for i, r in findings
            ],
        )
    ]
    walk(session, node=None, answers={"ask": "a"}, runner=lambda _node, _ids: results)
    assert session.current.id == "broken"
    assert [r.command for r in session.remediation()] == shown
    saved = session.to_dict()["conclusion"]["remediation"]
    assert [(r["command"], r["proven"]) for r in saved] == [
        (r.command, r.proven) for r in session.remediation()
    ]


def test_session_back_note_and_round_trip(tmp_path: Path) -> None:
    runbook = load_runbook(write(tmp_path, "tiny.toml", GOOD), PROBES)
    catalog = load_catalog(dirs=[tmp_path], known_probes=PROBES)
    session = RunbookSession(runbook)
    session.add_note("first look at 10:00")
    session.answer("a")
    assert session.current.id == "probe"
    session.back()
    assert (
        session.current.id == "ask"
        and session.record.answer == ""
        and session.record.note == "first look at 10:00"
    )
    session.answer("b")
    assert session.finished and session.conclusion.id == "fine"
    saved = tmp_path / "session.json"
    session.save(saved)
    assert saved.stat().st_mode & 0o777 == 0o600
    data = json.loads(saved.read_text())
    assert [p["step"] for p in data["path"]] == ["ask", "fine"]
    assert data["path"][0]["answer_label"] == "B" and data["path"][0]["note"] == "first look at 10:00"
    assert data["path"][0]["entered_at"] and data["path"][0]["left_at"]
    assert data["conclusion"]["diagnosis"] == "No fault found"
    again = RunbookSession.from_dict(data, catalog)
    assert again.to_dict() == data


def test_question_without_answer_names_the_choices(tmp_path: Path) -> None:
    runbook = load_runbook(write(tmp_path, "tiny.toml", GOOD), PROBES)
    with pytest.raises(RunbookError, match=r"--answer ask=<choice> \(choices: a, b\)"):
        walk(RunbookSession(runbook), node=None)
    with pytest.raises(RunbookError, match="no choice 'c'"):
        RunbookSession(runbook).answer("c")


def nodedoc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_cli_validate_reports_each_file(tmp_path: Path) -> None:
    good = write(tmp_path, "good.toml", GOOD)
    bad = write(tmp_path, "bad.toml", GOOD.replace('next = "broken"', 'next = "nowhere"'))
    out = nodedoc("runbook", "validate", str(good), str(bad))
    assert out.returncode == 1, out.stderr
    assert f"ok  {good} (tiny: 4 steps)" in out.stdout
    assert f"bad {bad}: step 'probe': leads to unknown step 'nowhere'" in out.stdout
    assert nodedoc("runbook", "validate", str(good)).returncode == 0
    assert nodedoc("runbook", "validate").returncode == 0


def test_cli_list_shows_user_runbooks_and_skips_bad_ones(tmp_path: Path) -> None:
    user = tmp_path / "nodedoc" / "runbooks"
    user.mkdir(parents=True)
    write(user, "tiny.toml", GOOD)
    write(user, "broken.toml", GOOD.replace('probes = ["runtime"]', 'probes = ["telepathy"]'))
    out = nodedoc("runbook", "list", "--json", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    ids = [r["id"] for r in data["runbooks"]]
    assert "tiny" in ids and "pod-sandbox-create" in ids
    assert any("broken.toml" in p and "unknown probe 'telepathy'" in p for p in data["problems"])


def test_cli_run_without_answer_is_one_line_error() -> None:
    out = nodedoc("runbook", "run", "pod-sandbox-create", "--endpoint", "unix:///nonexistent.sock")
    assert out.returncode == 3
    assert out.stderr.strip().startswith("nodedoc: step 'which-error' asks:")
    assert "Traceback" not in out.stderr
    out = nodedoc("runbook", "run", "no-such-runbook")
    assert out.returncode == 3 and "no runbook 'no-such-runbook'" in out.stderr
