"""The config probe's findings about containerd 2.x: settings 2.0 removed, v2 tables left in a v3 file.

Kept apart from :mod:`probes.builtin.config` so that module stays readable; the facts are in
:mod:`probes.config_lint` and the fixes in ``probes/data/deprecations.toml``.
"""

from __future__ import annotations

from typing import Any

from probes.api import Finding, Probe, Remedy, Severity
from probes.config_lint import misplaced_in_v3, removed_settings
from probes.containerd_config import ContainerdConfig
from probes.deprecation_table import fixes
from probes.versions import Version

RELEASES = "https://github.com/containerd/containerd/blob/main/RELEASES.md#deprecated-config-properties"


def upgrade_findings(
    probe: Probe, config: ContainerdConfig, containerd: Version | None, subject: dict[str, Any]
) -> list[Finding]:
    if config.path is None:
        return []
    return _removed(probe, config, containerd, subject) + _misplaced(probe, config, subject)


def _removed(
    probe: Probe, config: ContainerdConfig, containerd: Version | None, subject: dict[str, Any]
) -> list[Finding]:
    found = []
    on_2 = containerd is not None and containerd.release[0] >= 2
    for setting in removed_settings(config):
        fix = fixes()[setting.deprecation]
        effect = (
            f'containerd {containerd.raw if containerd else ""} ignores it (its log says "Ignoring unknown key in '
            'TOML for plugin"), so the setting has no effect'
            if on_2
            else "containerd 2.0 removed it: after the upgrade it is ignored and the setting has no effect"
        )
        found.append(
            probe.finding(
                "config.removed-setting",
                Severity.WARNING,
                f"{setting.key} was removed in containerd 2.0",
                f"[{setting.table}] {setting.key} = {setting.value!r} ({fix.what}, deprecated since {fix.deprecated}): "
                f"{effect}. {fix.fix}",
                subject={**subject, "setting": f"{setting.table}.{setting.key}"},
                evidence={
                    "table": setting.table,
                    "key": setting.key,
                    "value": setting.value,
                    "deprecation": f"io.containerd.deprecation/{setting.deprecation}",
                    "containerd": containerd.raw if containerd else None,
                },
                remediation=[
                    Remedy(
                        f"In [{setting.table}] of {config.edit_target}: {fix.fix}",
                        f"$EDITOR {config.edit_target}",
                    )
                ],
                references=[*fix.references, RELEASES][:3],
            )
        )
    return found


def _misplaced(probe: Probe, config: ContainerdConfig, subject: dict[str, Any]) -> list[Finding]:
    misplaced = misplaced_in_v3(config)
    if not misplaced:
        return []
    old = config.table_name("io.containerd.grpc.v1.cri")
    moves = "; ".join(f"{m.key} → [{m.belongs_in}]" for m in misplaced)
    return [
        probe.finding(
            "config.v2-table-in-v3",
            Severity.WARNING,
            "Version 3 config sets CRI keys where containerd 2.x does not read them",
            f"{config.path} is version 3, where [{old}] holds only the streaming server's settings; containerd "
            f"2.x ignores the rest there without a word (SystemdCgroup there leaves runc on cgroupfs). Move: {moves}.",
            subject={**subject, "table": old},
            evidence={
                "table": old,
                "keys": [m.key for m in misplaced],
                "belongs_in": [m.belongs_in for m in misplaced],
            },
            remediation=[
                Remedy(
                    f"In {config.edit_target}: move each key to the table named, then check what containerd reads",
                    f"$EDITOR {config.edit_target} && containerd --config {config.path} config dump",
                )
            ],
            references=["https://github.com/containerd/containerd/blob/main/docs/cri/config.md"],
        )
    ]
