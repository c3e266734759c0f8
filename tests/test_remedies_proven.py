"""Every printed step with a command, in the probes whose faults the lab can reproduce, names the lab test
that runs it as printed (and that test exists), or says it was not tested on a node."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from probes.api import NOT_TESTED, untested

REPO = Path(__file__).resolve().parent.parent
#: The probes whose faults the lab reproduces (seed 002's snapshots probe is proven by its own tests).
LAB_FAULTABLE = ["network", "runc", "config", "service", "host"]


def remedy_calls(module_name: str) -> list[tuple[int, str | None]]:
    """(line, proven test id or None) of each ``Remedy(...)`` with a command in a probe module."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text())
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Remedy"):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        command = node.args[1] if len(node.args) > 1 else keywords.get("command")
        if command is None or (isinstance(command, ast.Constant) and command.value is None):
            continue
        proven = keywords.get("proven")
        if isinstance(proven, ast.Name):
            value = getattr(module, proven.id)
        elif isinstance(proven, ast.Constant):
            value = proven.value
        else:
            value = None
        found.append((node.lineno, value or None))
    return found


def collected_tests(files: set[str]) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *sorted(files)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return {line.split("[", 1)[0] for line in out.stdout.splitlines() if "::" in line}


def test_every_step_with_a_command_names_an_existing_lab_test() -> None:
    calls = {name: remedy_calls(f"probes.builtin.{name}") for name in LAB_FAULTABLE}
    unproven = [
        f"probes/builtin/{name}.py:{line}" for name, found in calls.items() for line, p in found if not p
    ]
    assert not unproven, (
        f"steps with a command that name no proving test (use proven= or untested()): {unproven}"
    )
    proofs = {p for found in calls.values() for _line, p in found if p}
    assert len(proofs) >= 3  # network, seed 003, the host sysctl (and more as they are proven)
    missing = proofs - collected_tests({p.split("::")[0] for p in proofs})
    assert not missing, f"proven= names tests that do not exist: {sorted(missing)}"


@pytest.mark.parametrize("disrupts", [True, False])
def test_an_untested_step_says_so_and_why(disrupts: bool) -> None:
    step = untested("Restart it", "systemctl restart containerd", "the lab has no systemd", disrupts)
    assert NOT_TESTED in step.text and "the lab has no systemd" in step.text
    assert (step.command, step.proven, step.disrupts_pods) == ("systemctl restart containerd", "", disrupts)
