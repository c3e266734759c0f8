"""A systemd unit as systemd sees it: the unit file plus its drop-ins, read from the host's files.

Lookup follows systemd's unit search path (first directory holding the unit wins; a link to /dev/null masks
it). Drop-ins are ``<unit>.d/*.conf`` from every directory; a drop-in name in a higher-priority directory
hides the same name lower down, and the survivors apply in file-name order after the unit file. An empty
assignment (``ExecStartPre=``) resets a list setting; any other assignment of a single-value setting
overrides the earlier one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from probes.readers.host.binaries import DEFAULT_PATH, host_realpath, local

#: systemd's system unit search path, highest priority first (the runtime / generator dirs left out).
UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)

#: Settings that accumulate (each assignment appends; an empty one resets).
LIST_SETTINGS = frozenset(
    {
        "ExecStart",
        "ExecStartPre",
        "ExecStartPost",
        "ExecStop",
        "ExecStopPost",
        "ExecReload",
        "ExecCondition",
        "Environment",
        "EnvironmentFile",
        "After",
        "Before",
        "Wants",
        "Requires",
        "WantedBy",
        "RequiredBy",
        "Documentation",
        "ReadWritePaths",
        "ReadOnlyPaths",
        "DeviceAllow",
    }
)


@dataclass(frozen=True)
class Assignment:
    """One ``Key=value`` line: where it came from, for evidence."""

    value: str
    file: str
    line: int

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class UnitProblem:
    """A line or file of the unit that systemd could not use, and where it is."""

    file: str
    line: int | None
    problem: str

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def __str__(self) -> str:
        return f"{self.origin}: {self.problem}"


@dataclass
class Unit:
    """The merged unit: every section's settings after the unit file and drop-ins are applied."""

    name: str
    path: str | None = None
    masked: bool = False
    dropins: list[str] = field(default_factory=list)
    settings: dict[tuple[str, str], list[Assignment]] = field(default_factory=dict)
    problems: list[UnitProblem] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.path is not None

    def all(self, section: str, key: str) -> list[Assignment]:
        """Every effective assignment of a list setting (after resets); for a scalar, the last one."""
        return list(self.settings.get((section, key), []))

    def get(self, section: str, key: str) -> Assignment | None:
        values = self.settings.get((section, key))
        return values[-1] if values else None

    def value(self, section: str, key: str, default: str | None = None) -> str | None:
        found = self.get(section, key)
        return found.value if found else default

    def files(self) -> list[str]:
        return ([self.path] if self.path else []) + self.dropins

    def apply(self, text: str, file: str) -> None:
        """Apply one file's assignments on top of what is there."""
        section = ""
        pending = ""
        start = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip() if not pending else raw.rstrip()
            if not pending:
                start = number
            if not pending and (not line or line[0] in "#;"):
                continue
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = (pending + line).strip(), ""
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
                continue
            if "=" not in line:
                self.problems.append(UnitProblem(file, start, f"not a Key=value line: {line[:60]!r}"))
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            self._assign(section, key, Assignment(value, file, start))

    def _assign(self, section: str, key: str, assignment: Assignment) -> None:
        slot = (section, key)
        if key in LIST_SETTINGS:
            if assignment.value == "":
                self.settings[slot] = []
            else:
                self.settings.setdefault(slot, []).append(assignment)
        elif assignment.value == "":
            self.settings.pop(slot, None)
        else:
            self.settings[slot] = [assignment]


def read_unit(host_root: Path, name: str, dirs: tuple[str, ...] = UNIT_DIRS) -> Unit:
    """Read ``name`` (``containerd.service``) with its drop-ins; ``Unit.exists`` is False when none is found."""
    unit = Unit(name=name)
    for directory in dirs:
        candidate = f"{directory}/{name}"
        here = local(host_root, candidate)
        if not (here.exists() or here.is_symlink()):
            continue
        real = host_realpath(host_root, candidate)
        unit.path = candidate
        if real == "/dev/null":
            unit.masked = True
            return unit
        try:
            unit.apply(local(host_root, real).read_text(encoding="utf-8", errors="replace"), candidate)
        except OSError as exc:
            unit.problems.append(UnitProblem(candidate, None, f"cannot read: {exc.strerror or exc}"))
        break
    for dropin in _dropins(host_root, name, dirs):
        unit.dropins.append(dropin)
        try:
            text = local(host_root, host_realpath(host_root, dropin)).read_text(
                encoding="utf-8", errors="replace"
            )
        except OSError as exc:
            unit.problems.append(UnitProblem(dropin, None, f"cannot read: {exc.strerror or exc}"))
            continue
        unit.apply(text, dropin)
    return unit


def _dropins(host_root: Path, name: str, dirs: tuple[str, ...]) -> list[str]:
    """The effective drop-in files in the order systemd applies them."""
    chosen: dict[str, str] = {}
    for directory in dirs:  # highest priority first: the first one of a file name wins
        here = local(host_root, f"{directory}/{name}.d")
        if not here.is_dir():
            continue
        for conf in sorted(here.glob("*.conf")):
            chosen.setdefault(conf.name, f"{directory}/{name}.d/{conf.name}")
    return [chosen[n] for n in sorted(chosen) if host_realpath(host_root, chosen[n]) != "/dev/null"]


@dataclass(frozen=True)
class ExecCommand:
    """An Exec*= line: its binary, arguments and prefixes (``-`` ignore failure, ``@``, ``+``, ``!``, ``:``)."""

    binary: str
    args: tuple[str, ...]
    ignore_failure: bool
    origin: str


def parse_exec(assignment: Assignment) -> ExecCommand | None:
    """Split an Exec*= value like systemd does (near enough: shell-like quoting, no variable expansion)."""
    value = assignment.value
    prefixes = ""
    while value and value[0] in "-@+!:|":
        prefixes += value[0]
        value = value[1:]
    try:
        words = shlex.split(value)  # systemd has no inline comments: '#' mid-line is an argument
    except ValueError:
        words = value.split()
    if not words:
        return None
    if "@" in prefixes:  # @ takes argv[0] as the second word
        words = words[:1] + words[2:]
    return ExecCommand(
        binary=words[0], args=tuple(words[1:]), ignore_failure="-" in prefixes, origin=assignment.origin
    )


def search_path(unit: Unit) -> tuple[str, ...]:
    """The PATH the unit's service gets (``Environment=PATH=...``), else systemd's default."""
    for assignment in reversed(unit.all("Service", "Environment")):
        try:
            words = shlex.split(assignment.value)
        except ValueError:
            words = assignment.value.split()
        for word in words:
            if word.startswith("PATH="):
                return tuple(p for p in word[5:].split(":") if p)
    return DEFAULT_PATH


def systemd_running(host_root: Path) -> bool:
    """systemd's own test (sd_booted): /run/systemd/system exists when systemd is PID 1."""
    return (host_root / "run/systemd/system").is_dir()
