"""Every bad input answers with one line on stderr and the documented exit code (3), never a traceback.

``nodedoc runbook validate`` is the one exception by design: it reports each file and exits 1 when any
is invalid (the command ran; the runbooks are bad).
"""

from __future__ import annotations

import subprocess

import pytest
from nodedoc_cli import nodedoc

CANNOT_RUN = 3


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""
    return proc.stderr.strip()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "1e9", "soon"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_timeout_must_be_finite_seconds_above_zero(value, where):
    args = [f"--timeout={value}", "check"] if where == "before" else ["check", f"--timeout={value}"]
    proc = nodedoc(*args)
    assert proc.returncode == CANNOT_RUN
    assert one_line(proc).startswith("nodedoc") and f"argument --timeout: '{value}'" in proc.stderr


@pytest.mark.parametrize("value", ["unix://", "", "tcp://127.0.0.1:1234"])
def test_endpoint_must_name_a_unix_socket(value):
    proc = nodedoc("pods", f"--endpoint={value}")
    assert proc.returncode == CANNOT_RUN
    line = one_line(proc)
    assert "argument --endpoint/-r" in line and ("names no socket" in line or "unix sockets only" in line)


@pytest.mark.parametrize(
    "command", [["report", "--output"], ["check", "--output"], ["runbook", "run", "x", "--report"]]
)
def test_output_to_a_directory_or_into_a_missing_one(tmp_path, command):
    for target, words in ((tmp_path, "is a directory"), (tmp_path / "missing" / "r.md", "does not exist")):
        proc = nodedoc(*command, str(target))
        assert proc.returncode == CANNOT_RUN
        assert words in one_line(proc)
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("option", ["--host-root", "--containerd-root", "--containerd-state"])
def test_named_directories_must_exist(tmp_path, option):
    for target, words in ((tmp_path / "typo", "no such directory"), (tmp_path / "f", "not a directory")):
        (tmp_path / "f").touch()
        proc = nodedoc("check", option, str(target))
        assert proc.returncode == CANNOT_RUN
        assert one_line(proc).endswith(f"argument {option}: {target}: {words} (see nodedoc check --help)")


def test_pods_label_without_a_value_is_exit_3():
    proc = nodedoc("pods", "--label", "novalue", "--endpoint", "unix:///nonexistent/cri.sock")
    assert proc.returncode == CANNOT_RUN
    assert one_line(proc) == "nodedoc: --label 'novalue' must be KEY=VALUE"


def test_pods_bad_regex_is_exit_3():
    proc = nodedoc("pods", "--name", "(", "--endpoint", "unix:///nonexistent/cri.sock")
    assert proc.returncode == CANNOT_RUN and "--name '(' is not a valid regular expression" in one_line(proc)


def test_unknown_command_is_one_line_not_usage():
    proc = nodedoc("bogus")
    assert proc.returncode == CANNOT_RUN and "invalid choice: 'bogus'" in one_line(proc)


def test_the_troubleshooter_without_a_terminal_says_so_and_exits():
    """Piped (no tty), it used to hang writing escape codes; now one line and exit 3, within seconds."""
    proc = nodedoc("--endpoint", "unix:///nonexistent/cri.sock", timeout=30)
    assert proc.returncode == CANNOT_RUN
    assert one_line(proc).startswith("nodedoc: the troubleshooter needs a terminal")


def chain(steps: int) -> str:
    lines = ['id = "long"', 'title = "A long chain"', 'symptoms = ["many steps"]', 'start = "s0"']
    for i in range(steps - 1):
        lines += [f"[steps.s{i}]", 'kind = "question"', f'title = "Step {i}"', 'ask = "On?"']
        lines += [f"[[steps.s{i}.choices]]", 'id = "on"', 'label = "On"', f'next = "s{i + 1}"']
    lines += [f"[steps.s{steps - 1}]", 'kind = "conclusion"', 'title = "End"', 'diagnosis = "done"']
    lines += ['severity = "info"', 'summary = "The end."']
    return "\n".join(lines) + "\n"


def test_a_runbook_of_5000_chained_steps_validates(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(chain(5000))
    proc = nodedoc("runbook", "validate", str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == f"ok  {path} (long: 5000 steps)\n"
    looped = tmp_path / "loop.toml"
    looped.write_text(chain(5000).replace('next = "s4999"', 'next = "s0"'))
    proc = nodedoc("runbook", "validate", str(looped))
    assert proc.returncode == 1 and "cycle: s0 -> s1 -> s2" in proc.stdout and "s4998 -> s0" in proc.stdout


def test_validate_a_directory_reads_its_runbooks_and_names_missing_files(tmp_path):
    rundir = tmp_path / "runbooks"
    rundir.mkdir(mode=0o755)
    (rundir / "short.toml").write_text(chain(3))
    proc = nodedoc("runbook", "validate", str(rundir), str(tmp_path / "gone.toml"))
    assert proc.returncode == 1
    assert f"ok  {rundir / 'short.toml'} (long: 3 steps)" in proc.stdout
    assert f"bad {tmp_path / 'gone.toml'}: no such file" in proc.stdout
    assert "world-writable" not in proc.stdout


def test_meta_db_that_is_a_directory_is_one_line(tmp_path):
    (tmp_path / "io.containerd.metadata.v1.bolt" / "meta.db").mkdir(parents=True)
    proc = nodedoc("--containerd-root", str(tmp_path), "snapshots")
    assert proc.returncode == CANNOT_RUN
    assert one_line(proc).endswith("meta.db: is a directory, not a bolt file")
