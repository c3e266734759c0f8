"""Who may import whom: node → readers → probes → findings → screens, report, runbook.

Read from the code's own import statements (including imports inside functions), so a probe that
reaches into another probe, or a reader that reaches up into the probes, fails here by name.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: What a built-in probe may import from nodedoc: the probe API, the node, the errors, the readers, what
#: nodedoc knows beyond the node (probes.knowledge: known issues, what to change for each deprecation, the
#: remedies it prints), the version parsing, and the quoting of node values in their commands.
PROBE_MAY_IMPORT = (
    "probes.api",
    "probes.node",
    "probes.errors",
    "probes.readers",
    "probes.knowledge",
    "probes.versions",
    "probes.compat",
    "probes.shell",
)

#: What a reader may import from nodedoc: the errors, other readers, version parsing, the standard
#: library's newer parts for older Pythons (probes.compat), and the quoting of node values in the commands
#: the readers that derive fix steps write (probes.shell, standard library only).
READER_MAY_IMPORT = ("probes.errors", "probes.readers", "probes.versions", "probes.compat", "probes.shell")


def nodedoc_imports(path: Path) -> list[str]:
    """Every module of this project that ``path`` imports, in the order written."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "probes":
                found += [f"probes.{alias.name}" for alias in node.names]
            else:
                found.append(node.module)
    return [name for name in found if name.split(".")[0] in {"probes", "tui", "screens"}]


def _allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _modules(folder: str) -> list[Path]:
    return sorted(p for p in (REPO / folder).rglob("*.py") if "cri_pb2" not in p.name)


@pytest.mark.parametrize("path", _modules("probes/builtin"), ids=lambda p: p.stem)
def test_a_builtin_probe_imports_readers_and_the_api_only(path: Path) -> None:
    wrong = [m for m in nodedoc_imports(path) if not _allowed(m, PROBE_MAY_IMPORT)]
    assert wrong == [], f"{path.relative_to(REPO)} imports {wrong}: a probe reads the node through readers"


@pytest.mark.parametrize(
    "path", _modules("probes/readers"), ids=lambda p: str(p.relative_to(REPO / "probes/readers"))
)
def test_a_reader_knows_nothing_of_probes(path: Path) -> None:
    wrong = [m for m in nodedoc_imports(path) if not _allowed(m, READER_MAY_IMPORT)]
    assert wrong == [], f"{path.relative_to(REPO)} imports {wrong}: a reader returns data, it does not judge"


def test_the_check_sees_an_import_of_another_probe(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def run(node):\n    from probes.builtin.service import ServiceProbe\n    return ServiceProbe\n"
    )
    assert [m for m in nodedoc_imports(probe) if not _allowed(m, PROBE_MAY_IMPORT)] == [
        "probes.builtin.service"
    ]


@pytest.mark.parametrize("folder", ["probes", "tui"])
def test_only_the_app_imports_screens(folder: str) -> None:
    importers = [
        str(p.relative_to(REPO))
        for p in _modules(folder)
        if any(m.split(".")[0] == "screens" for m in nodedoc_imports(p))
    ]
    # The two Apps: the troubleshooter, and `nodedoc fleet --tui`'s one-screen app.
    assert importers in ([], ["tui/app.py", "tui/fleet_app.py"])


@pytest.mark.parametrize(
    "module",
    ["tui.session", "tui.runbook", "tui.report", "tui.commands.check", "tui.fleet", "tui.commands.npd"],
)
def test_headless_engines_never_import_textual(module: str) -> None:
    """The session, the runbook engine and the report run without Textual (the CLI uses them headless)."""
    code = f"import sys, {module}\nprint(sorted(k for k in sys.modules if k.split('.')[0] == 'textual'))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


#: What the report's model and writers may import: the probe API (findings, results), the inventory's plain
#: dataclass, the errors, and the terminal side's formatting, redaction and neutralising of node text.
REPORT_MAY_IMPORT = (
    "probes.api",
    "probes.errors",
    "probes.readers.cri.inventory",
    "tui.report",
    "tui.format",
    "tui.redact",
    "tui.untrusted",
)


@pytest.mark.parametrize(
    "path",
    [p for p in _modules("tui/report") if p.name != "gather.py"],
    ids=lambda p: p.stem,
)
def test_the_report_is_built_from_probe_results_only(path: Path) -> None:
    """Only ``tui/report/gather.py`` touches the node (its identity, the options, the inventory); the model
    and the writers know nothing of NodeContext, the readers that read it, or the probe runner."""
    wrong = [m for m in nodedoc_imports(path) if not _allowed(m, REPORT_MAY_IMPORT)]
    assert wrong == [], f"{path.relative_to(REPO)} imports {wrong}: the report is made of probe results"
