"""A short command imports only what it runs: --help no grpc, rich or Textual; pods no rich or Textual.

Speed itself is measured by benchmarks/startup.py; these check the structure that makes it fast.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tui.cli import COMMANDS, build_parser, command_named
from tui.columns import cell_width, render_columns

HEAVY = ("grpc", "google", "rich", "textual", "probes.registry", "tui.lab")

PROBE = """
import json, sys
from tui.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] if not m.startswith(("probes.", "tui.")) else m for m in sys.modules})
sys.stderr.write("\\n" + json.dumps({"code": code, "modules": heavy}) + "\\n")
"""


def imported_by(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60)
    last = json.loads(proc.stderr.strip().splitlines()[-1])
    return last["code"], set(last["modules"])


def test_help_imports_nothing_heavy():
    code, modules = imported_by("--help")
    assert code == 0
    assert not modules & set(HEAVY), modules & set(HEAVY)
    assert not any(m.startswith("tui.commands.") for m in modules), "no subcommand module for --help"


def test_pods_imports_grpc_but_not_rich_or_textual():
    code, modules = imported_by("pods", "--endpoint", "unix:///nonexistent/nodedoc-test.sock")
    assert code == 3  # nothing answers there: one line, exit 3
    assert "grpc" in modules  # it did reach for the runtime
    assert not modules & {"rich", "textual", "tui.lab", "probes.registry"}
    assert not {m for m in modules if m.startswith("tui.commands.")} - {"tui.commands.pods"}


def test_check_imports_neither_textual_nor_the_lab():
    code, modules = imported_by("check", "--probe", "no-such-probe")
    assert code == 3
    assert not modules & {"textual", "tui.lab"}


def test_top_level_help_is_each_commands_own():
    """The help listed without importing a command is the one its module registers."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == COMMANDS


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["pods", "-o", "json"], "pods"),
        (["--endpoint", "unix:///x.sock", "check", "--quick"], "check"),
        (["--containerd-config", "pods", "snapshots"], "snapshots"),  # an option's value is not the command
        (["--timeout=3", "-r", "procs", "report"], "report"),
        (["--host-root", "/"], None),
        (["--help"], None),
    ],
)
def test_the_command_is_found_past_option_values(argv, expected):
    assert command_named(argv, build_parser([])) == expected


def test_a_command_after_top_level_options_gets_its_own_parser():
    args = build_parser(["--timeout", "3", "pods", "-o", "json"]).parse_args(
        ["--timeout", "3", "pods", "-o", "json"]
    )
    assert (args.command, args.output, args.timeout) == ("pods", "json", 3.0)


def test_columns_align_wide_characters_and_highlight_only_with_colour():
    text = render_columns(["NAME", "IP"], [["日本", "10.0.0.1"], ["abcdef", "-"]], highlighted=[True, False])
    lines = text.splitlines()
    cells = ("IP", "10.0.0.1", "-")
    assert [cell_width(lines[i][: lines[i].index(cells[i])]) for i in range(3)] == [8, 8, 8]
    assert cell_width("日本") == 4 and "\x1b" not in text
    coloured = render_columns(["NAME"], [["a"], ["b"]], highlighted=[True, False], colour=True)
    assert coloured.splitlines()[1].startswith("\x1b[33m") and "\x1b[33m" not in coloured.splitlines()[2]


def test_a_command_run_as_the_program_ends_at_once_with_all_its_output_and_its_status(tmp_path):
    """Called as the program, main ends the process itself after flushing (no interpreter teardown): the
    output is all there, in a pipe and in a file, and the exit status is the command's."""
    import contextlib
    import io

    from tui.cli import main

    expected = io.StringIO()
    with contextlib.redirect_stdout(expected):
        assert main(["runbook", "list"]) == 0
    piped = subprocess.run(
        [sys.executable, "-m", "tui.cli", "runbook", "list"], capture_output=True, text=True
    )
    assert (piped.returncode, piped.stdout) == (0, expected.getvalue()) and piped.stdout
    out = tmp_path / "out.txt"
    with out.open("w") as handle:
        code = subprocess.run([sys.executable, "-m", "tui.cli", "runbook", "list"], stdout=handle).returncode
    assert (code, out.read_text()) == (0, expected.getvalue())
    failed = subprocess.run(
        [sys.executable, "-m", "tui.cli", "check", "--probe", "no-such-probe"], capture_output=True
    )
    assert failed.returncode == 3 and b"unknown probe" in failed.stderr
