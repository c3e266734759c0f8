"""Probe ``deprecations``: what containerd itself reports as deprecated, one finding each with the fix.

Two sources say the same thing: the introspection service's ``Server.deprecations`` (containerd 1.7.9+,
what ``ctr deprecations list`` prints: id, message, last occurrence) and, on 1.7.24+ and 2.x, the CRI condition
``ContainerdHasNoDeprecationWarnings=false`` whose message is a JSON object of the same ids (less the ones
``ignore_deprecation_warnings`` names). Each id becomes one finding, whichever sources carry it. The fix comes
from ``probes/knowledge/data/deprecations.toml`` and, for the registry and CNI settings, from the node's own config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes.api import (
    BY_HAND,
    CHANGES_MACHINE,
    NO_KUBELET,
    NO_SYSTEMD,
    SHOWS_ONLY,
    Finding,
    Need,
    Outcome,
    Probe,
    Remedy,
    Severity,
    untested,
)
from probes.errors import CriError, NodedocError
from probes.knowledge.deprecations import CONDITION, DeprecationFix, fixes, from_condition, short_id
from probes.node import NeedUnmet, NodeContext, NotApplicable
from probes.readers.cri.runtime import RuntimeFacts
from probes.readers.host.containerd_config import ContainerdConfig
from probes.readers.host.registry_migration import registry_migration
from probes.readers.introspection.client import read_server
from probes.shell import quote
from probes.versions import parse, try_parse

#: The first release whose introspection ``Server`` answer carries deprecations.
REPORTS_FROM = parse("1.7.9")
INTROSPECTION = "introspection"
RELEASES = "https://github.com/containerd/containerd/blob/main/RELEASES.md#deprecated-features"
#: Why each kind of registry migration step was not run on the lab (as the config probe says).
MIGRATION_WHY = {"write": CHANGES_MACHINE, "edit": BY_HAND, "credentials": NO_KUBELET, "restart": NO_SYSTEMD}


@dataclass
class Reported:
    """One deprecation id and what each source said about it."""

    id: str
    message: str = ""
    last_occurrence: str | None = None
    sources: list[str] = field(default_factory=list)


def gather(server_deprecations: list[Any], condition: dict[str, str]) -> dict[str, Reported]:
    """Merge the introspection list and the CRI condition into one entry per id (introspection first)."""
    merged: dict[str, Reported] = {}
    for dep in server_deprecations:
        entry = merged.setdefault(dep.id, Reported(dep.id))
        entry.message = entry.message or dep.message
        if dep.last_occurrence is not None:
            entry.last_occurrence = dep.last_occurrence.isoformat()
        if INTROSPECTION not in entry.sources:
            entry.sources.append(INTROSPECTION)
    for dep_id, message in condition.items():
        entry = merged.setdefault(dep_id, Reported(dep_id))
        entry.message = entry.message or message
        entry.sources.append(f"CRI condition {CONDITION}")
    return merged


class DeprecationsProbe(Probe):
    id = "deprecations"
    title = "containerd deprecations"
    description = (
        "The deprecation warnings containerd reports (introspection API, CRI condition "
        "ContainerdHasNoDeprecationWarnings), each with what to change in the config before upgrading."
    )
    needs = frozenset({Need.CRI})
    timeout = 10.0

    def run(self, node: NodeContext) -> Outcome:
        try:
            runtime = node.runtime_facts()
        except CriError as exc:
            raise NeedUnmet(f"the runtime cannot be reached: {exc}") from None
        subject = {"kind": "runtime", "name": runtime.name}
        facts: dict[str, Any] = {"runtime": runtime.name, "version": runtime.version}
        if runtime.name != "containerd":
            raise NotApplicable(f"the runtime here is {runtime.name} {runtime.version}, not containerd")
        condition, condition_problem = from_condition(runtime.conditions)
        try:
            server = read_server(runtime.endpoint, max(node.timeout, 2.0))
            server_list, server_error = server.deprecations, ""
        except CriError as exc:
            server_list, server_error = [], str(exc)
        version = try_parse(runtime.version)
        reports_list = version is None or version >= REPORTS_FROM
        has_condition = any(c.type == CONDITION for c in runtime.conditions)
        facts.update(
            introspection_error=server_error or None,
            condition_present=has_condition,
            condition_problem=condition_problem,
        )
        merged = gather(server_list, condition)
        facts["deprecations"] = [vars(r) for r in merged.values()]
        if not merged:
            if server_error and not has_condition:
                raise NeedUnmet(f"containerd's deprecations could not be read: {server_error}")
            if not reports_list and not has_condition:
                return Outcome(findings=[self._not_reported(runtime, subject)], facts=facts)
            return Outcome(findings=[self._none(runtime, subject, server_error, has_condition)], facts=facts)
        config = self._config(node)
        ignored = self._ignored(config)
        findings = [self._deprecation(r, config, ignored, runtime) for r in merged.values()]
        return Outcome(findings=findings, facts=facts)

    # -- reading the config for exact fixes -----------------------------------------------------------

    @staticmethod
    def _config(node: NodeContext) -> ContainerdConfig | None:
        try:
            config = node.containerd_config()
        except NodedocError:
            return None
        return None if config.problem else config

    @staticmethod
    def _ignored(config: ContainerdConfig | None) -> set[str]:
        if config is None:
            return set()
        value = config.ignored_deprecations().value
        return {str(v) for v in value} if isinstance(value, list) else set()

    # -- findings --------------------------------------------------------------------------------------

    def _deprecation(
        self, reported: Reported, config: ContainerdConfig | None, ignored: set[str], runtime: RuntimeFacts
    ) -> Finding:
        short = short_id(reported.id)
        fix = fixes().get(short)
        file = config.edit_target if config else "/etc/containerd/config.toml"
        version = config.version if config else 2
        table = fix.table(version) if fix else ""
        steps = self._steps(short, fix, config, file, table)
        is_ignored = reported.id in ignored
        removal = f"; upstream removes it in containerd {fix.removed}" if fix else ""
        summary = (
            f"containerd {runtime.version} reports {reported.id}: {reported.message or '(no message)'}"
            + (f" Set in [{table}] of {file}." if table else "")
            + removal
            + (
                " The id is in ignore_deprecation_warnings, so the CRI condition leaves it out; it still "
                "breaks the upgrade that removes it."
                if is_ignored
                else ". It works today; the upgrade that removes it does not."
            )
        )
        return self.finding(
            "containerd.deprecation",
            Severity.INFO if is_ignored else Severity.WARNING,
            f"Deprecated: {fix.what if fix else short}",
            summary,
            subject={"kind": "deprecation", "name": reported.id},
            evidence={
                "id": reported.id,
                "message": reported.message,
                "last_occurrence": reported.last_occurrence,
                "sources": reported.sources,
                "table": table or None,
                "key": fix.key if fix else None,
                "deprecated_in": fix.deprecated if fix else None,
                "removed_in": fix.removed if fix else None,
                "ignored": is_ignored,
            },
            remediation=steps,
            references=list(fix.references) if fix else [RELEASES],
        )

    @staticmethod
    def _steps(
        short: str, fix: DeprecationFix | None, config: ContainerdConfig | None, file: str, table: str
    ) -> list[Remedy]:
        restart = untested(
            "Restart containerd (KillMode=process keeps pods running) and check",
            "systemctl restart containerd && ctr deprecations list",
            NO_SYSTEMD,
        )
        if fix is None:
            return [
                untested(
                    "nodedoc has no fix on file for this id: read containerd's message and RELEASES.md",
                    "ctr deprecations list",
                    SHOWS_ONLY,
                )
            ]
        if short.startswith("cri-registry-") and config is not None:
            migration = registry_migration(config)
            if migration is not None:
                return [
                    untested(step.text, step.command, MIGRATION_WHY[step.kind]) for step in migration.steps
                ]
        if short == "cri-cni-bin-dir" and config is not None:
            single = config.cni_bin_dirs()
            if single.key == "bin_dir" and not single.default:
                edit = untested(
                    f'In [{single.table}] of {file}: replace bin_dir = "{single.value[0]}" with '
                    f'bin_dirs = ["{single.value[0]}"]',
                    f"$EDITOR {quote(file)}",
                    BY_HAND,
                )
                return [edit, restart]
        where = f"In [{table}] of {file}: " if table else ""
        command = fix.command.format(config=quote(file))
        steps = [untested(where + fix.fix, command, BY_HAND if "$EDITOR" in command else SHOWS_ONLY)]
        return [*steps, restart] if table else steps

    def _none(
        self, runtime: RuntimeFacts, subject: dict[str, Any], server_error: str, has_condition: bool
    ) -> Finding:
        sources = [] if server_error else [INTROSPECTION]
        if has_condition:
            sources.append(f"CRI condition {CONDITION}")
        return self.finding(
            "deprecations.none",
            Severity.OK,
            "containerd reports no deprecated use",
            f"containerd {runtime.version} reports no deprecation ({', '.join(sources)}).",
            subject=subject,
            evidence={"sources": sources, "introspection_error": server_error or None},
        )

    def _not_reported(self, runtime: RuntimeFacts, subject: dict[str, Any]) -> Finding:
        return self.finding(
            "deprecations.not-reported",
            Severity.INFO,
            f"containerd {runtime.version} does not report deprecations",
            f"containerd reports deprecations from 1.7.9 on; {runtime.version} does not, so nothing here says "
            "whether its config uses what 2.x removed. The config probe's checks of the file still apply.",
            subject=subject,
            evidence={"version": runtime.version, "reports_from": str(REPORTS_FROM)},
            remediation=[
                untested(
                    "Before moving to 2.x, see what containerd 2.x would make of this config",
                    "containerd config migrate  # run with the 2.x binary, on a copy",
                    SHOWS_ONLY,
                )
            ],
            references=[RELEASES],
        )
