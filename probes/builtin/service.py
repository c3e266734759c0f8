"""How containerd is installed and started: its systemd unit as systemd sees it, and the binaries on the node.

Catches the unit that kills every container when containerd restarts (KillMode), the unit that starts one
binary while PATH finds another (seed 001: /usr/bin vs /usr/local/bin), a shim or runc of another version
than the containerd that uses it. Where this machine's own / has no systemd (k3s/RKE2 supervise containerd
themselves; containers), unit findings are only informational and the binaries are still checked; a foreign
--host-root's unit is judged at full severity, as what systemd there would start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.api import (
    BY_HAND,
    CHANGES_MACHINE,
    NO_CRICTL,
    NO_SYSTEMD,
    SHOWS_ONLY,
    Finding,
    Need,
    Outcome,
    Probe,
    Severity,
    untested,
)
from probes.errors import NodedocError
from probes.knowledge import known_issues
from probes.node import CONTAINERD_UNIT as UNIT
from probes.node import RUNTIME_PROGRAMS, NodeContext
from probes.readers.host import binaries
from probes.readers.host.binaries import Binary
from probes.readers.host.systemd_unit import Unit, parse_exec, read_unit, search_path, systemd_running
from probes.shell import printf_text, quote, systemd_word

DROPIN_DIR = "/etc/systemd/system/containerd.service.d"
SUPERVISOR_UNITS = ("k3s.service", "k3s-agent.service", "rke2-server.service", "rke2-agent.service")
#: Unreadable unit lines named one by one in the finding's summary; the evidence lists them all.
MAX_LINES_NAMED = 10
LIMITS = ("LimitNOFILE", "LimitNPROC", "LimitCORE", "LimitMEMLOCK", "TasksMax")


def _dropin_command(name: str, *lines: str) -> str:
    """Write a drop-in holding ``lines`` under ``[Service]``; a line may carry a path from the node, so the
    text goes to printf as one quoted word with its ``\\`` and ``%`` escaped."""
    body = printf_text("\n".join(["[Service]", *lines]) + "\n")
    return f"mkdir -p {DROPIN_DIR} && printf {body} > {DROPIN_DIR}/{name} && systemctl daemon-reload"


def _edit_at(origin: str) -> str:
    """``$EDITOR`` at a unit line: ``origin`` is ``FILE:LINE``."""
    file, _, line = origin.rpartition(":")
    return f"$EDITOR +{line} {quote(file)}" if file and line.isdigit() else f"$EDITOR {quote(origin)}"


def _same_version(a: Binary, b: Binary) -> bool:
    return a.version is not None and b.version is not None and a.version.same_upstream(b.version)


def _newer(a: Binary, b: Binary) -> Binary:
    if a.version is None:
        return b
    if b.version is None:
        return a
    return a if a.version >= b.version else b


def _describe(b: Binary) -> dict[str, Any]:
    return {
        "path": b.path,
        "real": b.real,
        "version": b.version_text,
        "version_from": b.source or None,
        "error": b.error or None,
    }


class ServiceProbe(Probe):
    id = "service"
    title = "containerd service and binaries"
    description = (
        "The containerd systemd unit with its drop-ins (ExecStart, KillMode, Delegate, OOMScoreAdjust, "
        "limits) and the containerd, shim, ctr and runc binaries on the node with their versions."
    )
    needs = frozenset({Need.HOST_FILES})
    timeout = 30.0

    def run(self, node: NodeContext) -> Outcome:
        findings: list[Finding] = []
        facts: dict[str, Any] = {}
        unit = node.containerd_unit()
        # A copied tree's unit is judged as what systemd there would use: at full severity. Only a live root
        # without systemd (a container, k3s's own supervision) makes unit findings information; a node's /
        # mounted at /host with its /proc is live, and judged as the node itself is.
        booted = systemd_running(node.host_root) or not node.live_root
        facts["systemd_running"] = systemd_running(node.host_root)
        facts["unit"] = self._unit_facts(unit)
        if unit.masked:
            findings.append(
                self.finding(
                    "service.masked",
                    Severity.WARNING if booted else Severity.INFO,
                    "containerd.service is masked",
                    f"{unit.path} links to /dev/null: systemd will not start containerd.",
                    subject={"unit": UNIT, "file": unit.path},
                    evidence={"file": unit.path},
                    remediation=[
                        untested(
                            "Unmask and start it",
                            "systemctl unmask containerd && systemctl start containerd",
                            NO_SYSTEMD,
                        )
                    ],
                )
            )
        elif not unit.exists:
            findings.append(self._no_unit(node, booted))
        else:
            unit_findings = self._unit_checks(node, unit, booted)
            if not booted:
                unit_findings.append(
                    self.finding(
                        "service.systemd-not-running",
                        Severity.INFO,
                        "systemd is not running here",
                        f"{unit.path} exists but nothing starts containerd through it (no /run/systemd/system); its "
                        "settings are checked as what systemd would use, and reported as information only.",
                        subject={"unit": UNIT, "file": unit.path},
                        evidence={"files": unit.files()},
                        remediation=[
                            untested(
                                "See what started containerd", "ps -o pid,ppid,args -C containerd", SHOWS_ONLY
                            )
                        ],
                    )
                )
            if not any(f.severity.rank >= Severity.WARNING.rank for f in unit_findings):
                settings = {k: unit.value("Service", k) for k in ("KillMode", "Delegate", "OOMScoreAdjust")}
                unit_findings.append(
                    self.finding(
                        "service.unit",
                        Severity.OK,
                        "containerd.service is set up as upstream recommends",
                        f"{unit.path}"
                        + (f" + {len(unit.dropins)} drop-in(s)" if unit.dropins else "")
                        + ": "
                        + ", ".join(f"{k}={v}" for k, v in settings.items()),
                        subject={"unit": UNIT, "file": unit.path},
                        evidence={"files": unit.files(), **settings},
                    )
                )
            findings += unit_findings
        findings += self._binary_checks(node, unit, booted, facts)
        return Outcome(findings=findings, facts=facts)

    # -- the unit ---------------------------------------------------------------------------------------

    @staticmethod
    def _unit_facts(unit: Unit) -> dict[str, Any]:
        keys = ("ExecStart", "ExecStartPre", "KillMode", "Delegate", "OOMScoreAdjust", "Environment", *LIMITS)
        settings = {k: [a.value for a in unit.all("Service", k)] for k in keys if unit.all("Service", k)}
        return {"path": unit.path, "masked": unit.masked, "dropins": unit.dropins, "settings": settings}

    def _no_unit(self, node: NodeContext, booted: bool) -> Finding:
        supervisors = [u for u in SUPERVISOR_UNITS if read_unit(node.host_root, u).exists]
        if supervisors:
            why = (
                f"{', '.join(supervisors)} supervises containerd itself; the containerd unit checks do not "
                "apply (k3s/RKE2 run containerd as a child and keep it across their own restarts)."
            )
        elif not booted:
            why = (
                "systemd is not running here (no /run/systemd/system) and no containerd.service exists: "
                "containerd is started by something else (a container entrypoint, a script)."
            )
        elif node.foreign_root:
            why = f"No containerd.service under {node.host_root}: containerd is started some other way there."
        else:
            why = "systemd runs here but has no containerd.service: containerd is started some other way."
        return self.finding(
            "service.no-unit",
            Severity.INFO,
            "No containerd systemd unit",
            why + " Binaries are still checked.",
            subject={"unit": UNIT},
            evidence={
                "searched": [
                    f"{d}/{UNIT}"
                    for d in (
                        "/etc/systemd/system",
                        "/run/systemd/system",
                        "/usr/lib/systemd/system",
                        "/lib/systemd/system",
                    )
                ],
                "supervisors": supervisors,
                "systemd_running": booted,
            },
            remediation=[
                untested("See how containerd was started", "ps -o pid,ppid,args -C containerd", SHOWS_ONLY)
            ],
        )

    def _unit_checks(self, node: NodeContext, unit: Unit, booted: bool) -> list[Finding]:
        found: list[Finding] = []
        note = "" if booted else " (systemd is not running here, so this unit does not start containerd now)"

        def sev(severity: Severity) -> Severity:
            return severity if booted else Severity.INFO

        subject = {"unit": UNIT, "file": unit.path}
        if unit.problems:
            found.append(self._syntax(unit, sev(Severity.WARNING), note))
        starts = unit.all("Service", "ExecStart")
        service_type = unit.value("Service", "Type", "simple")
        if not starts:
            found.append(
                self.finding(
                    "service.exec-missing",
                    sev(Severity.CRITICAL),
                    "The unit has no ExecStart",
                    f"No ExecStart= survives the unit and its drop-ins{note}: a drop-in reset it without a new one.",
                    subject=subject,
                    evidence={"files": unit.files()},
                    remediation=[
                        untested(
                            "Set the binary in a drop-in",
                            _dropin_command("override.conf", "ExecStart=", "ExecStart=/usr/bin/containerd"),
                            NO_SYSTEMD,
                        )
                    ],
                )
            )
            return found
        if len(starts) > 1 and service_type != "oneshot":
            found.append(
                self.finding(
                    "service.exec-duplicate",
                    sev(Severity.CRITICAL),
                    "Several ExecStart= lines: systemd refuses the unit",
                    f"{len(starts)} ExecStart= lines for a Type={service_type} service{note}; a drop-in that changes "
                    "ExecStart must first reset it with an empty `ExecStart=`.",
                    subject=subject,
                    evidence={"ExecStart": [a.origin + " " + a.value for a in starts]},
                    remediation=[
                        untested(
                            "Reset ExecStart in the drop-in before setting it",
                            _dropin_command(
                                "override.conf", "ExecStart=", f"ExecStart={starts[-1].value.lstrip('-@+!:')}"
                            ),
                            NO_SYSTEMD,
                        )
                    ],
                )
            )
        command = parse_exec(starts[-1])
        if command is not None:
            found += self._exec_binary(node, unit, command, sev, note)
        found += self._settings(unit, sev, note)
        return found

    def _syntax(self, unit: Unit, severity: Severity, note: str) -> Finding:
        """Every unreadable line in one finding that names them (a garbage file is one problem, not 74)."""
        problems = unit.problems
        lines = ", ".join(p.origin for p in problems[:MAX_LINES_NAMED])
        more = f" and {len(problems) - MAX_LINES_NAMED} more" if len(problems) > MAX_LINES_NAMED else ""
        return self.finding(
            "service.unit-syntax",
            severity,
            f"{len(problems)} unreadable line{'s' if len(problems) != 1 else ''} in the unit",
            f"systemd ignores what it cannot parse{note}: {lines}{more}. First: {problems[0]}.",
            subject={"unit": UNIT, "file": unit.path},
            evidence={
                "lines": [p.origin for p in problems],
                "problems": [str(p) for p in problems[:MAX_LINES_NAMED]],
            },
            remediation=[
                untested(
                    "Check the unit as systemd parses it",
                    "systemd-analyze verify containerd.service",
                    NO_SYSTEMD,
                )
            ],
        )

    def _exec_binary(self, node: NodeContext, unit: Unit, command: Any, sev: Any, note: str) -> list[Finding]:
        found = []
        subject = {"unit": UNIT, "binary": command.binary}
        if "#" in command.args:
            found.append(
                self.finding(
                    "service.exec-comment",
                    sev(Severity.WARNING),
                    "A '#' comment inside ExecStart",
                    f"systemd has no end-of-line comments: containerd gets {list(command.args)} as arguments.",
                    subject=subject,
                    evidence={"line": command.origin},
                    remediation=[
                        untested(
                            "Move the comment to its own line (in the file named)",
                            _edit_at(command.origin),
                            BY_HAND,
                        )
                    ],
                )
            )
        if not binaries.is_executable(node.host_root, command.binary):
            other = binaries.which(node.host_root, "containerd", search_path(unit))
            fix = other or "/usr/local/bin/containerd"
            found.append(
                self.finding(
                    "service.exec-missing",
                    sev(Severity.CRITICAL),
                    "The unit starts a containerd that does not exist",
                    f"ExecStart runs {command.binary}, which is not an executable file{note}.",
                    subject=subject,
                    evidence={"ExecStart": command.origin, "binary": command.binary, "found_on_path": other},
                    remediation=[
                        untested(
                            f"Point the unit at {fix}",
                            _dropin_command("override.conf", "ExecStart=", f"ExecStart={systemd_word(fix)}"),
                            NO_SYSTEMD,
                        ),
                        untested(
                            "Restart containerd (safe with KillMode=process)",
                            "systemctl restart containerd",
                            NO_SYSTEMD,
                        ),
                    ],
                )
            )
        return found

    def _settings(self, unit: Unit, sev: Any, note: str) -> list[Finding]:
        check = UnitCheck(self, unit, sev, note)
        return [f for setting in SETTING_CHECKS if (f := setting(check)) is not None]

    # -- the binaries -----------------------------------------------------------------------------------

    def _binary_checks(
        self, node: NodeContext, unit: Unit, booted: bool, facts: dict[str, Any]
    ) -> list[Finding]:
        host = node.host_root
        search = search_path(unit)
        wanted = node.runtime_binary_paths()
        described = iter(node.binaries(wanted))
        found: dict[str, list[Binary]] = {name: [] for name in RUNTIME_PROGRAMS}
        for name, _path in wanted:
            found[name].append(next(described))
        facts["binaries"] = {name: [_describe(b) for b in items] for name, items in found.items()}
        findings: list[Finding] = []
        if not found["containerd"]:
            findings.append(
                self.finding(
                    "service.no-containerd",
                    Severity.INFO,
                    "No containerd binary on the node",
                    f"No containerd in {', '.join(search)} or {', '.join(binaries.EXTRA_DIRS)} (k3s/RKE2 embed it).",
                    subject={"binary": "containerd"},
                    evidence={"searched": list(search + binaries.EXTRA_DIRS)},
                    remediation=[
                        untested(
                            "Find the runtime's binary", "ps -o pid,args -C containerd,k3s,rke2", SHOWS_ONLY
                        )
                    ],
                )
            )
            return findings
        starts = unit.all("Service", "ExecStart") if unit.exists and not unit.masked else []
        command = parse_exec(starts[-1]) if starts else None
        on_path = binaries.which(host, "containerd", search)
        path_bin = node.binary("containerd", on_path) if on_path else None
        unit_bin = None
        if command and binaries.is_executable(host, command.binary):
            unit_bin = node.binary("containerd", command.binary)
        in_use = unit_bin or path_bin or found["containerd"][0]
        facts["containerd_in_use"] = _describe(in_use)
        if unit_bin and path_bin and unit_bin.real != path_bin.real:
            findings.append(self._mismatch(unit_bin, path_bin, command.origin if command else "", booted))
        findings += self._stale(found["containerd"], {b.real for b in (unit_bin, path_bin) if b})
        findings += self._shim(node, in_use, search)
        findings += self._runc(node, in_use, search)
        if not any(f.severity.rank >= Severity.WARNING.rank for f in findings):
            findings.append(
                self.finding(
                    "service.binaries",
                    Severity.OK,
                    "containerd, shim and runc binaries agree",
                    f"containerd {in_use.version_text} at {in_use.path}; "
                    + "; ".join(
                        f"{n}: {', '.join(b.path + ' ' + b.version_text for b in bs) or 'none'}"
                        for n, bs in found.items()
                        if n != "containerd"
                    ),
                    subject={"binary": "containerd", "path": in_use.path},
                    evidence=facts["binaries"],
                )
            )
        return findings

    def _mismatch(self, unit_bin: Binary, path_bin: Binary, origin: str, booted: bool) -> Finding:
        same = _same_version(unit_bin, path_bin)
        newer = _newer(unit_bin, path_bin)
        if newer is path_bin:
            fix = [
                untested(
                    f"Point the unit at {path_bin.path}",
                    _dropin_command(
                        "override.conf", "ExecStart=", f"ExecStart={systemd_word(path_bin.path)}"
                    ),
                    NO_SYSTEMD,
                ),
                untested(
                    "Restart containerd (safe with KillMode=process)",
                    "systemctl restart containerd",
                    NO_SYSTEMD,
                ),
            ]
        else:
            fix = [
                untested(
                    f"Move the older {path_bin.path} out of PATH so ctr, scripts and people see the same one",
                    f"mv {quote(path_bin.path)} {quote(path_bin.path + '.old')}",
                    CHANGES_MACHINE,
                )
            ]
        severity = Severity.INFO if same or not booted else Severity.WARNING
        return self.finding(
            "service.binary-mismatch",
            severity,
            "The unit starts a different containerd than PATH finds",
            f"systemd starts {unit_bin.path} ({unit_bin.version_text}) but `containerd` on PATH is {path_bin.path} "
            f"({path_bin.version_text})"
            + (": same version." if same else ": `containerd --version` does not show what runs."),
            subject={"binary": "containerd", "unit_binary": unit_bin.path, "path_binary": path_bin.path},
            evidence={"unit": _describe(unit_bin), "path": _describe(path_bin), "ExecStart": origin},
            remediation=fix,
        )

    def _stale(self, all_bins: list[Binary], in_use: set[str]) -> list[Finding]:
        stale = [b for b in all_bins if b.real not in in_use]
        if not stale:
            return []
        return [
            self.finding(
                "service.stale-binary",
                Severity.INFO,
                "Other containerd binaries are installed",
                "Not started by the unit nor first on PATH: "
                + ", ".join(f"{b.path} ({b.version_text})" for b in stale),
                subject={"binary": "containerd", "paths": [b.path for b in stale]},
                evidence={"stale": [_describe(b) for b in stale]},
                remediation=[
                    untested(
                        f"Move {b.path} aside once the node is known good",
                        f"mv {quote(b.path)} {quote(b.path + '.old')}",
                        CHANGES_MACHINE,
                    )
                    for b in stale
                ],
            )
        ]

    def _shim(self, node: NodeContext, containerd: Binary, search: tuple[str, ...]) -> list[Finding]:
        host = node.host_root
        path = binaries.which(host, "containerd-shim-runc-v2", search)
        beside = str(Path(containerd.path).parent / "containerd-shim-runc-v2")
        if path is None and binaries.is_executable(host, beside):
            path = beside  # containerd falls back to its own directory when PATH has no shim
        if path is None:
            return [
                self.finding(
                    "service.shim-missing",
                    Severity.WARNING,
                    "containerd-shim-runc-v2 not found",
                    f"No containerd-shim-runc-v2 on PATH ({':'.join(search)}) or beside {containerd.path}: "
                    "every container start fails.",
                    subject={"binary": "containerd-shim-runc-v2"},
                    evidence={"searched": list(search) + [beside]},
                    remediation=[
                        untested(
                            "Install the shim from the same containerd release",
                            f"install -m 755 bin/containerd-shim-runc-v2 {quote(f'{Path(containerd.path).parent}/')}",
                            CHANGES_MACHINE,
                        )
                    ],
                )
            ]
        shim = node.binary("containerd-shim-runc-v2", path)
        if shim.version is None or containerd.version is None or _same_version(shim, containerd):
            return []
        matching = beside if binaries.is_executable(host, beside) and beside != path else None
        fix = (
            untested(
                f"Move the stale shim out of PATH so {beside} is used",
                f"mv {quote(path)} {quote(path + '.old')}",
                CHANGES_MACHINE,
            )
            if matching
            else untested(
                "Install the shim from the same release as containerd",
                f"install -m 755 bin/containerd-shim-runc-v2 {quote(f'{Path(path).parent}/')}",
                CHANGES_MACHINE,
            )
        )
        return [
            self.finding(
                "service.shim-mismatch",
                Severity.WARNING,
                "The shim and containerd are different versions",
                f"containerd {containerd.version_text} ({containerd.path}) starts containerd-shim-runc-v2 "
                f"{shim.version_text} ({shim.path}); a shim from another release is untested with it.",
                subject={"binary": "containerd-shim-runc-v2", "path": shim.path},
                evidence={"containerd": _describe(containerd), "shim": _describe(shim)},
                remediation=[
                    fix,
                    untested(
                        "New containers use it at once; running ones keep their shim until restarted",
                        "crictl ps",
                        NO_CRICTL,
                    ),
                ],
            )
        ]

    def _runc(self, node: NodeContext, containerd: Binary, search: tuple[str, ...]) -> list[Finding]:
        host = node.host_root
        try:
            config = node.containerd_config()
            binary_name = config.runtime_option("BinaryName", "")
        except NodedocError:
            config, binary_name = None, None
        configured = binary_name.value if binary_name and isinstance(binary_name.value, str) else ""
        runtime_path = (
            configured if configured.startswith("/") else binaries.which(host, configured or "runc", search)
        )
        shell_path = binaries.which(host, "runc")
        if not runtime_path or not binaries.is_executable(host, runtime_path):
            if configured:
                return [
                    self.finding(
                        "service.runc-missing",
                        Severity.CRITICAL,
                        "The runc containerd is configured with does not exist",
                        f"BinaryName = {configured!r} in {config.path if config else 'config.toml'} is not an executable.",
                        subject={"binary": "runc", "path": configured},
                        evidence={
                            "BinaryName": configured,
                            "table": binary_name.table if binary_name else None,
                        },
                        remediation=[
                            untested(
                                "Fix BinaryName (or remove it to use runc from PATH), then restart",
                                f"$EDITOR {quote(config.edit_target) if config else '/etc/containerd/config.toml'}",
                                BY_HAND,
                            )
                        ],
                    )
                ]
            return []
        runtime_runc = node.binary("runc", runtime_path)
        if not shell_path or binaries.host_realpath(host, shell_path) == runtime_runc.real:
            return []
        shell_runc = node.binary("runc", shell_path)
        if _same_version(runtime_runc, shell_runc):
            return []
        why = f"BinaryName = {configured!r}" if configured else f"containerd's PATH {':'.join(search)}"
        return [
            self.finding(
                "service.runc-mismatch",
                Severity.WARNING,
                "containerd uses a different runc than PATH finds",
                f"containerd runs {runtime_runc.path} ({runtime_runc.version_text}, from {why}) but `runc` on PATH is "
                f"{shell_runc.path} ({shell_runc.version_text}): `runc --version` does not show what runs containers.",
                subject={"binary": "runc", "runtime_path": runtime_runc.path, "path": shell_runc.path},
                evidence={"containerd_runc": _describe(runtime_runc), "path_runc": _describe(shell_runc)},
                remediation=[
                    untested(
                        f"Make both the same file: replace {shell_runc.path} with a link to the runc in use",
                        f"ln -sf {quote(runtime_runc.path)} {quote(shell_runc.path)}",
                        CHANGES_MACHINE,
                    )
                ],
            )
        ]


# -- the unit's settings: one check each, its finding's words with it -------------------------------------


@dataclass(frozen=True)
class UnitCheck:
    """The containerd unit as each setting check sees it; ``sev`` lowers severities where systemd does not run."""

    probe: ServiceProbe
    unit: Unit
    sev: Callable[[Severity], Severity]
    note: str

    @property
    def subject(self) -> dict[str, Any]:
        return {"unit": UNIT, "file": self.unit.path}


def killmode(check: UnitCheck) -> Finding | None:
    """KillMode other than process: a containerd restart kills every container."""
    killmode = check.unit.get("Service", "KillMode")
    value = killmode.value if killmode else "control-group"
    if value == "process":
        return None
    entry = known_issues.issue("containerd-killmode")
    where = killmode.origin if killmode else "not set: systemd's default is control-group"
    return check.probe.finding(
        "service.killmode",
        check.sev(Severity.CRITICAL),
        f"KillMode={value}: restarting containerd kills the containers",
        f"With KillMode={value}, stopping or restarting containerd kills every shim and container in its "
        f"cgroup{check.note}. Upstream's unit has KillMode=process.",
        subject=check.subject,
        evidence={"KillMode": value, "set_at": where, "files": check.unit.files()},
        remediation=[
            untested(
                "Set KillMode=process in a drop-in",
                _dropin_command("10-killmode.conf", "KillMode=process"),
                NO_SYSTEMD,
            )
        ],
        references=list(entry.references),
    )


def delegate(check: UnitCheck) -> Finding | None:
    """Delegate=yes missing: systemd may reset the container cgroups' controllers."""
    delegate = check.unit.get("Service", "Delegate")
    if delegate is not None and delegate.value.lower() in ("yes", "true", "1", "on"):
        return None
    return check.probe.finding(
        "service.delegate",
        check.sev(Severity.WARNING),
        "Delegate=yes is missing",
        "Without Delegate=yes systemd treats the container cgroups under containerd as its own and may "
        f"reset their controllers{check.note}. Upstream's unit sets Delegate=yes.",
        subject=check.subject,
        evidence={"Delegate": delegate.value if delegate else None},
        remediation=[
            untested(
                "Set Delegate=yes in a drop-in",
                _dropin_command("20-delegate.conf", "Delegate=yes"),
                NO_SYSTEMD,
            ),
            untested("Restart containerd to apply it", "systemctl restart containerd", NO_SYSTEMD),
        ],
    )


def modprobe_overlay(check: UnitCheck) -> Finding | None:
    """The unit does not load the overlay module before containerd starts."""
    pre = [parse_exec(a) for a in check.unit.all("Service", "ExecStartPre")]
    if any(c and c.binary.endswith("modprobe") and "overlay" in c.args for c in pre):
        return None
    return check.probe.finding(
        "service.modprobe-overlay",
        Severity.INFO,
        "The unit does not load the overlay module",
        "Upstream's unit runs `-/sbin/modprobe overlay` before containerd; the host probe says whether "
        "overlay is available.",
        subject=check.subject,
        evidence={"ExecStartPre": [a.value for a in check.unit.all("Service", "ExecStartPre")]},
        remediation=[
            untested(
                "Add it in a drop-in",
                _dropin_command("30-overlay.conf", "ExecStartPre=-/sbin/modprobe overlay"),
                NO_SYSTEMD,
            )
        ],
    )


def oom_score_adjust(check: UnitCheck) -> Finding | None:
    """containerd not protected from the OOM killer (OOMScoreAdjust above -500)."""
    oom = check.unit.get("Service", "OOMScoreAdjust")
    try:
        oom_value = int(oom.value) if oom else None
    except ValueError:
        oom_value = None
    if oom_value is not None and oom_value <= -500:
        return None
    return check.probe.finding(
        "service.oom-score-adjust",
        Severity.INFO,
        "containerd is not protected from the OOM killer",
        f"OOMScoreAdjust is {oom.value if oom else 'not set'}; upstream's unit sets -999 so the kernel "
        "kills containers before the runtime that manages them.",
        subject=check.subject,
        evidence={"OOMScoreAdjust": oom.value if oom else None},
        remediation=[
            untested(
                "Set it in a drop-in",
                _dropin_command("40-oom.conf", "OOMScoreAdjust=-999"),
                NO_SYSTEMD,
            )
        ],
    )


def low_limits(check: UnitCheck) -> Finding | None:
    """Process or file limits below 65536, which containers and shims inherit."""
    limits = {k: check.unit.value("Service", k) for k in LIMITS if check.unit.value("Service", k) is not None}
    low = {
        k: v
        for k, v in limits.items()
        if v
        and v != "infinity"
        and v.split(":")[-1].isdigit()
        and int(v.split(":")[-1]) < 65536
        and k in ("LimitNOFILE", "LimitNPROC", "TasksMax")
    }
    if not low:
        return None
    return check.probe.finding(
        "service.limits",
        Severity.WARNING,
        "Low process or file limits for containerd",
        f"{', '.join(f'{k}={v}' for k, v in low.items())}: containers and shims inherit containerd's limits "
        "and hit them under load.",
        subject=check.subject,
        evidence={"limits": limits},
        remediation=[
            untested(
                "Raise them in a drop-in",
                _dropin_command("50-limits.conf", *(f"{k}=infinity" for k in low)),
                NO_SYSTEMD,
            ),
            untested("Restart containerd to apply them", "systemctl restart containerd", NO_SYSTEMD),
        ],
    )


#: The unit settings checked, each returning its finding or None.
SETTING_CHECKS: tuple[Callable[[UnitCheck], Finding | None], ...] = (
    killmode,
    delegate,
    modprobe_overlay,
    oom_score_adjust,
    low_limits,
)
