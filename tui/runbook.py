"""Guided runbooks: TOML decision trees from a symptom to a diagnosis, and the session that walks one.

A runbook has an id, a title, the symptoms it is for, and steps keyed by id. Each step is one of:

- ``question``: ``ask`` with ``choices`` (``{id, label, next}``);
- ``probe``: runs ``probes`` and branches on which findings appeared (``branches`` of ``{when, next}``,
  first match wins, then ``otherwise``). When no branch matched and a probe could not run (or none of
  them ran), the step goes to its ``unavailable`` step, else to the built-in :data:`COULD_NOT_RUN`
  conclusion: never to ``otherwise``'s "no fault found" on what was not looked at;
- ``instruction``: ``text`` and exact ``commands`` to run or look at, then ``next``;
- ``conclusion``: ``diagnosis``, ``severity``, ``summary``, ``remediation`` and ``references``; with
  ``remediation_from`` (finding ids, ``*`` globs) its remediation is those findings' own steps, concrete
  and as proven on the lab, and ``remediation`` is shown only when no such finding was seen on the path.

Loading validates every file (unknown step ids, unreachable steps, cycles, unknown probes, missing
fields) and keeps going: a bad runbook is reported as a :class:`RunbookProblem` and the others load.
The engine never prints: the CLI and the walkthrough screen drive a :class:`RunbookSession`.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from probes.api import Finding, ProbeResult, ProbeStatus, Remedy, Severity, sort_worst_first
from probes.compat import tomllib
from probes.errors import NodedocError
from probes.shell import quote
from tui.report.model import Conclusion, WalkStep, Walkthrough
from tui.report.output import write_private

# Read through importlib.resources, so the built-ins load from a wheel and from the one-file nodedoc.pyz.
BUILTIN_DIR = resources.files("tui") / "runbooks"
SYSTEM_DIR = Path("/etc/nodedoc/runbooks")
SESSION_SCHEMA = "nodedoc.runbook-session/v1"
STEP_KINDS = ("question", "probe", "instruction", "conclusion")
#: Fields each step kind must have (besides ``kind``); ``title`` and ``why`` are shown for every step.
REQUIRED = {
    "question": ("title", "ask", "choices"),
    "probe": ("title", "probes", "otherwise"),
    "instruction": ("title", "text", "next"),
    "conclusion": ("title", "diagnosis", "severity", "summary"),
}


class RunbookError(NodedocError):
    """A runbook cannot be loaded, or a session cannot go where it was asked to."""


def user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nodedoc" / "runbooks"


def search_dirs() -> list[Traversable]:
    """Built-ins first; a later directory's runbook replaces an earlier one with the same id."""
    return [BUILTIN_DIR, SYSTEM_DIR, user_dir()]


# -- the model -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    next: str


@dataclass(frozen=True)
class Branch:
    """Go to ``next`` when a finding matching one of ``when`` (ids, ``*`` globs) is at least ``at_least``."""

    when: tuple[str, ...]
    next: str
    at_least: Severity = Severity.WARNING
    #: Only findings whose subject has these values (``{ issue = "containerd-7843" }``).
    subject: tuple[tuple[str, str], ...] = ()

    def matches(self, finding: Finding) -> bool:
        return (
            finding.severity.rank >= self.at_least.rank
            and any(fnmatch.fnmatchcase(finding.id, pattern) for pattern in self.when)
            and all(str(finding.subject.get(k)) == v for k, v in self.subject)
        )


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    title: str
    why: str = ""
    ask: str = ""
    choices: tuple[Choice, ...] = ()
    probes: tuple[str, ...] = ()
    branches: tuple[Branch, ...] = ()
    otherwise: str = ""
    unavailable: str = ""
    text: str = ""
    commands: tuple[str, ...] = ()
    next: str = ""
    diagnosis: str = ""
    severity: Severity = Severity.OK
    summary: str = ""
    remediation: tuple[Remedy, ...] = ()
    #: Finding ids (globs) whose own remediation this conclusion shows, so both say the same fix.
    remediation_from: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    def targets(self) -> list[str]:
        """The step ids this step can lead to."""
        if self.kind == "question":
            return [c.next for c in self.choices]
        if self.kind == "probe":
            return [b.next for b in self.branches] + [t for t in (self.otherwise, self.unavailable) if t]
        if self.kind == "instruction":
            return [self.next]
        return []

    def choice(self, choice_id: str) -> Choice:
        for c in self.choices:
            if c.id == choice_id:
                return c
        raise RunbookError(
            f"step {self.id!r} has no choice {choice_id!r}; choices: {', '.join(c.id for c in self.choices)}"
        )


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    symptoms: tuple[str, ...]
    description: str
    start: str
    steps: dict[str, Step]
    source: Traversable

    def step(self, step_id: str) -> Step:
        if step_id == COULD_NOT_RUN.id and step_id not in self.steps:
            return COULD_NOT_RUN
        try:
            return self.steps[step_id]
        except KeyError:
            raise RunbookError(f"runbook {self.id!r} has no step {step_id!r}") from None

    @property
    def builtin(self) -> bool:
        return str(self.source).startswith(str(BUILTIN_DIR).rstrip("/") + "/")

    def probes(self) -> list[str]:
        return sorted({p for s in self.steps.values() for p in s.probes})


@dataclass(frozen=True)
class RunbookProblem:
    """Why one runbook file was refused: the file, the step (when one is to blame) and what is wrong."""

    path: Traversable
    message: str
    step: str = ""

    def __str__(self) -> str:
        where = f"{self.path}: step {self.step!r}" if self.step else str(self.path)
        return f"{where}: {self.message}"


@dataclass
class Catalog:
    """The runbooks that loaded, the problems of those that did not, and which loaded ones replaced others."""

    runbooks: dict[str, Runbook] = field(default_factory=dict)
    problems: list[RunbookProblem] = field(default_factory=list)
    replaced: list[tuple[Traversable, Traversable]] = field(default_factory=list)

    def get(self, runbook_id: str) -> Runbook:
        try:
            return self.runbooks[runbook_id]
        except KeyError:
            known = ", ".join(self.runbooks) or "none"
            raise RunbookError(f"no runbook {runbook_id!r}; known runbooks: {known}") from None


# -- parsing and validation ---------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str, step: str = "") -> None:
        super().__init__(message)
        self.step = step


def _text(table: dict[str, Any], key: str, step: str = "", required: bool = False) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise _Invalid(f"{key!r} must be a string", step)
    if required and not value.strip():
        raise _Invalid(f"missing field {key!r}", step)
    return value.strip()


def _strings(table: dict[str, Any], key: str, step: str = "") -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f"{key!r} must be a list of strings", step)
    return tuple(v for v in value if v.strip())


def _severity(value: Any, step: str, key: str = "severity") -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise _Invalid(
            f"{key} {value!r} is not one of {', '.join(s.value for s in Severity)}", step
        ) from None


def _tables(table: dict[str, Any], key: str, step: str) -> list[dict[str, Any]]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise _Invalid(f"{key!r} must be a list of tables", step)
    return value


def parse_step(step_id: str, table: Any) -> Step:
    if not isinstance(table, dict):
        raise _Invalid("must be a table", step_id)
    kind = table.get("kind")
    if not kind:
        raise _Invalid("missing field 'kind'", step_id)
    if kind not in STEP_KINDS:
        raise _Invalid(f"kind {kind!r} is not one of {', '.join(STEP_KINDS)}", step_id)
    for key in REQUIRED[kind]:
        if key not in table or table[key] in ("", [], None):
            raise _Invalid(
                f"missing field {key!r} (a {kind} step needs {', '.join(REQUIRED[kind])})", step_id
            )
    kw: dict[str, Any] = {
        "id": step_id,
        "kind": kind,
        "title": _text(table, "title", step_id, required=True),
        "why": _text(table, "why", step_id),
    }
    if kind == "question":
        kw["ask"] = _text(table, "ask", step_id, required=True)
        choices = []
        for i, c in enumerate(_tables(table, "choices", step_id)):
            for key in ("id", "label", "next"):
                if not isinstance(c.get(key), str) or not c[key].strip():
                    raise _Invalid(f"choice {i + 1} is missing field {key!r}", step_id)
            choices.append(Choice(c["id"], c["label"].strip(), c["next"]))
        ids = [c.id for c in choices]
        if len(set(ids)) != len(ids):
            raise _Invalid(f"duplicate choice ids in {ids}", step_id)
        kw["choices"] = tuple(choices)
    elif kind == "probe":
        kw["probes"] = _strings(table, "probes", step_id)
        branches = []
        for i, b in enumerate(_tables(table, "branches", step_id)):
            if not b.get("when") or not isinstance(b.get("next"), str) or not b["next"]:
                raise _Invalid(f"branch {i + 1} needs 'when' (finding ids) and 'next'", step_id)
            at_least = _severity(b.get("at_least", "warning"), step_id, "at_least")
            subject = b.get("subject", {})
            if not isinstance(subject, dict):
                raise _Invalid(f"branch {i + 1}: 'subject' must be a table of values", step_id)
            pairs = tuple((str(k), str(v)) for k, v in subject.items())
            branches.append(Branch(_strings(b, "when", step_id), b["next"], at_least, pairs))
        kw["branches"] = tuple(branches)
        kw["otherwise"] = _text(table, "otherwise", step_id, required=True)
        kw["unavailable"] = _text(table, "unavailable", step_id)
    elif kind == "instruction":
        kw["text"] = _text(table, "text", step_id, required=True)
        kw["commands"] = _strings(table, "commands", step_id)
        kw["next"] = _text(table, "next", step_id, required=True)
    else:
        kw["diagnosis"] = _text(table, "diagnosis", step_id, required=True)
        kw["severity"] = _severity(table.get("severity"), step_id)
        kw["summary"] = _text(table, "summary", step_id, required=True)
        kw["references"] = _strings(table, "references", step_id)
        remedies = []
        for i, r in enumerate(_tables(table, "remediation", step_id)):
            if not isinstance(r.get("text"), str) or not r["text"].strip():
                raise _Invalid(f"remediation {i + 1} is missing field 'text'", step_id)
            command = r.get("command")
            remedies.append(
                Remedy(
                    r["text"].strip(),
                    command.strip() if command else None,
                    disrupts_pods=bool(r.get("disrupts_pods", False)),
                    proven=str(r.get("proven") or ""),
                )
            )
        kw["remediation"] = tuple(remedies)
        kw["remediation_from"] = _strings(table, "remediation_from", step_id)
    return Step(**kw)


def _check_graph(start: str, steps: dict[str, Step]) -> None:
    """Unknown targets, then cycles, then unreachable steps (each an error naming the step)."""
    for step in steps.values():
        for target in step.targets():
            if target not in steps:
                raise _Invalid(f"leads to unknown step {target!r}", step.id)
    # Depth-first with an explicit stack: a runbook may chain thousands of steps (no recursion limit).
    colour: dict[str, int] = {start: 1}  # 1 on the current path, 2 done
    path: list[str] = [start]
    pending: list[Iterator[str]] = [iter(steps[start].targets())]
    while pending:
        step_id = path[-1]
        following = next(pending[-1], None)
        if following is None:
            colour[step_id] = 2
            path.pop()
            pending.pop()
        elif colour.get(following) == 1:
            loop = " -> ".join([*path[path.index(following) :], following])
            raise _Invalid(f"cycle: {loop}", step_id)
        elif following not in colour:
            colour[following] = 1
            path.append(following)
            pending.append(iter(steps[following].targets()))
    unreachable = [s for s in steps if s not in colour]
    if unreachable:
        raise _Invalid(f"unreachable from {start!r}", unreachable[0])


def parse_runbook(
    data: dict[str, Any], source: Traversable, known_probes: Iterable[str] | None = None
) -> Runbook:
    """Build and validate a runbook from its parsed TOML; raises :class:`RunbookError` naming file and step."""
    try:
        for key in ("id", "title", "symptoms", "steps"):
            if not data.get(key):
                raise _Invalid(f"missing field {key!r}")
        steps_table = data["steps"]
        if not isinstance(steps_table, dict):
            raise _Invalid("'steps' must be a table of steps keyed by id ([steps.<id>])")
        steps = {sid: parse_step(sid, table) for sid, table in steps_table.items()}
        start = _text(data, "start") or next(iter(steps))
        if start not in steps:
            raise _Invalid(f"start step {start!r} does not exist")
        if known_probes is not None:
            known = set(known_probes)
            for step in steps.values():
                for probe in step.probes:
                    if probe not in known:
                        raise _Invalid(
                            f"unknown probe {probe!r}; known probes: {', '.join(sorted(known))}", step.id
                        )
        _check_graph(start, steps)
        return Runbook(
            id=_text(data, "id", required=True),
            title=_text(data, "title", required=True),
            symptoms=_strings(data, "symptoms"),
            description=_text(data, "description"),
            start=start,
            steps=steps,
            source=source,
        )
    except _Invalid as exc:
        problem = RunbookProblem(source, str(exc), exc.step)
        raise RunbookError(str(problem)) from None


def _writable_by_others(path: Path) -> str | None:
    """Why a runbook file may not be trusted: it or its directory is world-writable."""
    for target, what in ((path.parent, "directory"), (path, "file")):
        try:
            mode = target.stat().st_mode
        except OSError:
            continue
        if mode & stat.S_IWOTH:
            # the name is chosen by whoever could write there: one word in the command to paste
            return f"refused: its {what} {target} is world-writable (chmod o-w {quote(target)})"
    return None


def load_runbook(path: Traversable | str, known_probes: Iterable[str] | None = None) -> Runbook:
    """One runbook file, validated; raises :class:`RunbookError` with the file (and step) in the message."""
    path = Path(path) if isinstance(path, str) else path
    if path.is_dir():
        raise RunbookError(f"{path}: is a directory (validate reads the *.toml files in it)")
    if not path.is_file():
        raise RunbookError(f"{path}: no such file")
    unsafe = _writable_by_others(path) if isinstance(path, Path) else ""  # a built-in inside nodedoc.pyz
    if unsafe:
        raise RunbookError(f"{path}: {unsafe}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RunbookError(f"{path}: not valid TOML: {exc}") from None
    return parse_runbook(data, path, known_probes)


def known_probe_ids() -> list[str]:
    from probes.registry import available

    return list(available())


def load_catalog(
    dirs: Iterable[Traversable | str] | None = None,
    files: Iterable[Traversable | str] = (),
    known_probes: Iterable[str] | None = None,
) -> Catalog:
    """Every runbook in ``dirs`` (default: built-in, /etc/nodedoc/runbooks, ~/.config/nodedoc/runbooks)
    and ``files``; a bad one becomes a problem and the rest still load."""
    known = list(known_probes) if known_probes is not None else known_probe_ids()
    catalog = Catalog()
    paths: list[Traversable] = []
    for directory in search_dirs() if dirs is None else dirs:
        directory = Path(directory) if isinstance(directory, str) else directory
        if not directory.is_dir():
            continue
        paths += sorted((p for p in directory.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    paths += [Path(f) if isinstance(f, str) else f for f in files]
    for path in paths:
        try:
            runbook = load_runbook(path, known)
        except RunbookError as exc:
            catalog.problems.append(RunbookProblem(path, str(exc).removeprefix(f"{path}: ")))
            continue
        if runbook.id in catalog.runbooks:
            catalog.replaced.append((catalog.runbooks[runbook.id].source, path))
        catalog.runbooks[runbook.id] = runbook
    return catalog


# -- walking ------------------------------------------------------------------------------------------


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class StepRecord:
    """One step on the path taken: when it was entered and left, the answer or probe results, a note."""

    step: str
    entered_at: str
    left_at: str = ""
    answer: str = ""
    answer_label: str = ""
    results: list[ProbeResult] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    note: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepRecord:
        return cls(
            step=data["step"],
            entered_at=data.get("entered_at", ""),
            left_at=data.get("left_at", ""),
            answer=data.get("answer", ""),
            answer_label=data.get("answer_label", ""),
            results=[ProbeResult.from_record(r) for r in data.get("probes") or []],
            matched=list(data.get("matched") or []),
            note=data.get("note", ""),
        )


#: Where a probe step goes when a probe it needs could not run and the runbook names no ``unavailable``.
COULD_NOT_RUN = Step(
    id="nodedoc.could-not-run",
    kind="conclusion",
    title="A probe this step needs could not run",
    diagnosis="Verdict unknown: a probe could not run",
    severity=Severity.WARNING,
    summary=(
        "No branch matched, but at least one probe of the last step errored, timed out, could not look "
        "where it should, or does not apply to this run: nothing it would have found is ruled out. The "
        "probe results on the path say which and why; fix that (run nodedoc as root, start the runtime, "
        "name --containerd-root or --host-root) and walk the runbook again."
    ),
)


def choose_branch(step: Step, results: list[ProbeResult]) -> tuple[str, list[str]]:
    """Where a probe step goes with these results, and the ids of the findings that decided it."""
    findings = [f for r in results for f in r.findings]
    for branch in step.branches:
        hits = [f for f in findings if branch.matches(f)]
        if hits:
            return branch.next, sorted({f.id for f in hits})
    if any(r.could_not_run for r in results) or (
        results and all(r.status is not ProbeStatus.OK for r in results)
    ):
        return step.unavailable or COULD_NOT_RUN.id, []
    return step.otherwise, []


class RunbookSession:
    """A walk through one runbook: the path taken, with answers, probe results, notes and timestamps.

    The session is the only state: the CLI and the screen call :meth:`answer`, :meth:`record_probes`,
    :meth:`proceed`, :meth:`back` and :meth:`add_note`, and read :attr:`current` and :attr:`path`.
    """

    def __init__(self, runbook: Runbook, started_at: str | None = None) -> None:
        self.runbook = runbook
        self.started_at = started_at or now_iso()
        self.records: list[StepRecord] = [StepRecord(runbook.start, self.started_at)]

    # -- where we are ---------------------------------------------------------------------------------

    @property
    def record(self) -> StepRecord:
        return self.records[-1]

    @property
    def current(self) -> Step:
        return self.runbook.step(self.record.step)

    @property
    def finished(self) -> bool:
        return self.current.kind == "conclusion"

    @property
    def conclusion(self) -> Step | None:
        return self.current if self.finished else None

    @property
    def path(self) -> list[Step]:
        return [self.runbook.step(r.step) for r in self.records]

    def findings(self) -> list[Finding]:
        """Every finding worse than ok seen on the path, worst first, each once."""
        seen: dict[tuple[str, str], Finding] = {}
        for record in self.records:
            for result in record.results:
                for f in result.findings:
                    if f.severity is not Severity.OK:
                        seen.setdefault((f.id, json.dumps(f.subject, sort_keys=True, default=str)), f)
        return sort_worst_first(list(seen.values()))

    def decisive_findings(self) -> list[Finding]:
        """The findings whose ids sent the walk down a branch."""
        matched = {(i, r.step) for r in self.records for i in r.matched}
        out = []
        for record in self.records:
            for result in record.results:
                out += [f for f in result.findings if (f.id, record.step) in matched]
        return sort_worst_first(out)

    def remediation(self) -> list[Remedy]:
        """The conclusion's steps: those of the findings it names (``remediation_from``) seen on the path,
        worst finding first, each command once; else the runbook's own ``remediation``."""
        step = self.conclusion
        if step is None:
            return []
        out: list[Remedy] = []
        seen: set[str] = set()
        for f in self.findings():
            if not any(fnmatch.fnmatchcase(f.id, pattern) for pattern in step.remediation_from):
                continue
            for remedy in f.remediation:
                key = remedy.command or remedy.text
                if key not in seen:
                    seen.add(key)
                    out.append(remedy)
        return out or list(step.remediation)

    # -- moving ---------------------------------------------------------------------------------------

    def _advance(self, target: str) -> Step:
        self.record.left_at = now_iso()
        self.records.append(StepRecord(target, self.record.left_at))
        return self.current

    def _expect(self, kind: str) -> Step:
        step = self.current
        if step.kind != kind:
            raise RunbookError(f"step {step.id!r} is a {step.kind} step, not a {kind} step")
        return step

    def answer(self, choice_id: str) -> Step:
        step = self._expect("question")
        choice = step.choice(choice_id)
        self.record.answer, self.record.answer_label = choice.id, choice.label
        return self._advance(choice.next)

    def record_probes(self, results: list[ProbeResult]) -> Step:
        step = self._expect("probe")
        target, matched = choose_branch(step, results)
        self.record.results, self.record.matched = list(results), matched
        return self._advance(target)

    def proceed(self) -> Step:
        step = self._expect("instruction")
        return self._advance(step.next)

    def back(self) -> Step:
        """Return to the previous step, forgetting its answer (the note stays); the first step stays put."""
        if len(self.records) > 1:
            self.records.pop()
            record = self.record
            record.left_at, record.answer, record.answer_label = "", "", ""
            record.results, record.matched = [], []
        return self.current

    def back_to(self, index: int) -> Step:
        """Return to the step at ``index`` on the path (the breadcrumb), to change its answer."""
        while len(self.records) - 1 > max(0, index):
            self.back()
        return self.current

    def add_note(self, text: str, index: int | None = None) -> None:
        record = self.records[-1 if index is None else index]
        record.note = f"{record.note}\n{text}".strip() if record.note else text.strip()

    # -- saving ---------------------------------------------------------------------------------------

    def walkthrough(self) -> Walkthrough:
        """The walk so far as the report carries it: every step with its answer or probe results and note,
        and the conclusion with its remediation (the findings' own steps, see :meth:`remediation`)."""
        conclusion = self.conclusion
        return Walkthrough(
            schema=SESSION_SCHEMA,
            runbook_id=self.runbook.id,
            runbook_title=self.runbook.title,
            runbook_source=str(self.runbook.source),
            started_at=self.started_at,
            finished=self.finished,
            path=tuple(
                WalkStep(
                    step=r.step,
                    kind=s.kind,
                    title=s.title,
                    entered_at=r.entered_at,
                    left_at=r.left_at,
                    answer=r.answer,
                    answer_label=r.answer_label,
                    probes=tuple(r.results),
                    matched=tuple(r.matched),
                    note=r.note,
                )
                for r, s in zip(self.records, self.path)
            ),
            conclusion=None
            if conclusion is None
            else Conclusion(
                step=conclusion.id,
                diagnosis=conclusion.diagnosis,
                severity=conclusion.severity,
                summary=conclusion.summary,
                remediation=tuple(self.remediation()),
                references=tuple(conclusion.references),
                findings=tuple(f.id for f in self.decisive_findings()),
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The session as saved (``nodedoc runbook run --save``) and read back by :meth:`from_dict`."""
        return self.walkthrough().to_document()

    @classmethod
    def from_dict(cls, data: dict[str, Any], catalog: Catalog) -> RunbookSession:
        if data.get("schema") != SESSION_SCHEMA:
            raise RunbookError(
                f"not a runbook session (schema {data.get('schema')!r}, want {SESSION_SCHEMA})"
            )
        runbook = catalog.get(data["runbook"]["id"])
        session = cls(runbook, data.get("started_at"))
        session.records = [StepRecord.from_dict(r) for r in data.get("path") or []] or session.records
        for record in session.records:
            runbook.step(record.step)  # the runbook changed since: say so now, not half-way
        return session

    def save(self, path: os.PathLike[str] | str) -> None:
        write_private(path, json.dumps(self.to_dict(), indent=2, default=str) + "\n")


def load_session_document(path: os.PathLike[str] | str) -> dict[str, Any]:
    """A saved session as a plain document (for the report), checked to be one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunbookError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RunbookError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != SESSION_SCHEMA:
        raise RunbookError(f"{path}: not a nodedoc runbook session (want schema {SESSION_SCHEMA})")
    return data


ProbeRunner = Callable[[Any, list[str]], list[ProbeResult]]


def run_step_probes(node: Any, probe_ids: list[str]) -> list[ProbeResult]:
    """Run a probe step's probes on the node (fresh: earlier cached reads are dropped first)."""
    from probes.registry import run_probes, select

    try:
        refs = select(probe_ids)
    except ValueError as exc:
        raise RunbookError(str(exc)) from None
    fresh = node.fresh()
    try:
        return run_probes(fresh, refs)
    finally:
        fresh.close()


def walk(
    session: RunbookSession,
    node: Any,
    answers: dict[str, str] | None = None,
    ask: Callable[[Step], str] | None = None,
    on_step: Callable[[RunbookSession, Step], None] | None = None,
    runner: ProbeRunner = run_step_probes,
) -> Step:
    """Walk headless to a conclusion: questions from ``answers`` (step id -> choice id) or ``ask``.

    ``on_step`` is told of each step as it is entered (and again for a probe step once its probes ran),
    so the CLI can print as it goes. Raises :class:`RunbookError` when a question has no answer.
    """
    answers = dict(answers or {})
    step = session.current
    if on_step:
        on_step(session, step)
    while not session.finished:
        if step.kind == "question":
            if step.id in answers:
                choice = answers.pop(step.id)
            elif ask is not None:
                choice = ask(step)
            else:
                raise RunbookError(
                    f"step {step.id!r} asks: {step.ask} - give --answer {step.id}=<choice> "
                    f"(choices: {', '.join(c.id for c in step.choices)})"
                )
            step = session.answer(choice)
        elif step.kind == "probe":
            step = session.record_probes(runner(node, list(step.probes)))
        else:
            step = session.proceed()
        if on_step:
            on_step(session, step)
    return step
