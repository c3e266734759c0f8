"""containerd's config.toml against what the node needs: registry config, cgroup driver, sandbox image, CNI dirs.

The file is the one the node's containerd uses (see :mod:`probes.readers.host.containerd_config` for how it is found;
``NODEDOC_CONTAINERD_CONFIG`` names it explicitly). A config that does not parse is a finding with the line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.api import (
    BY_HAND,
    CHANGES_MACHINE,
    NO_CRICTL,
    NO_KUBELET,
    NO_SYSTEMD,
    REPLACES_CONFIG,
    SHOWS_ONLY,
    Finding,
    Need,
    Outcome,
    Probe,
    Remedy,
    Severity,
    untested,
)
from probes.compat import tomllib
from probes.errors import NodedocError
from probes.knowledge import known_issues
from probes.knowledge.deprecations import fixes
from probes.node import NodeContext
from probes.readers.host import binaries
from probes.readers.host.config_lint import misplaced_in_v3, removed_settings
from probes.readers.host.containerd_config import (
    CniNetwork,
    ContainerdConfig,
    read_cni,
    split_keys,
    table_spans,
)
from probes.readers.host.kubelet_config import KubeletConfig
from probes.readers.host.kubelet_config import read as read_kubelet
from probes.readers.host.registry_migration import (
    CERTS_DIR,
    MigrationStep,
    RegistryMigration,
    registry_migration,
)
from probes.readers.host.systemd_unit import search_path
from probes.shell import quote, words
from probes.versions import Version, try_parse

RELEASES = "https://github.com/containerd/containerd/blob/main/RELEASES.md#deprecated-config-properties"
#: Why each kind of registry migration step was not run on the lab.
MIGRATION_WHY = {"write": CHANGES_MACHINE, "edit": BY_HAND, "credentials": NO_KUBELET, "restart": NO_SYSTEMD}
#: The lab test that moves a lab's deprecated mirrors to hosts.toml as printed and pulls through it.
PROVEN_REGISTRY = "tests/test_remedies_lab.py::test_deprecated_registry_moved_to_hosts_toml_as_printed"


def _file_text(node: NodeContext, config: ContainerdConfig) -> str | None:
    try:
        return node.host_path(config.path).read_text() if config.path else None
    except (OSError, UnicodeDecodeError):
        return None


def registry_edit(text: str | None, table: str, deprecated: set[str], certs: str) -> str | None:
    """sed expressions that delete the deprecated registry tables from ``text`` and set config_path, or
    None when the file holds them in a form line edits cannot remove safely (inline tables, dotted keys, a
    config_path already set). The result is checked by parsing the edited text."""
    if text is None:
        return None
    base = split_keys(table)
    spans = table_spans(text)
    gone = [
        (a, b)
        for keys, a, b in spans
        if keys[: len(base)] == base and keys[len(base) : len(base) + 1] and keys[len(base)] in deprecated
    ]
    header = next((b for keys, _a, b in spans if keys == base), None)
    lines = text.splitlines()
    kept = [line for n, line in enumerate(lines, 1) if not any(a <= n <= b for a, b in gone)]
    setting = f'config_path = "{certs}"'
    if header is not None:
        at = header - sum(b - a + 1 for a, b in gone if b < header)
        kept.insert(at, setting)
        expressions = [f"{header}a {setting}"]
    else:
        kept += [f"[{table}]", setting]
        expressions = [f"$a [{table}]", f"$a {setting}"]
    try:
        registry = tomllib.loads("\n".join(kept) + "\n")
        for key in base:
            registry = registry[key]
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        return None
    if not isinstance(registry, dict) or deprecated & set(registry) or registry.get("config_path") != certs:
        return None
    # Appends first: `d` ends sed's cycle, so an `a` after it never runs when the last line is deleted.
    expressions = expressions + [f"{a},{b}d" for a, b in gone]
    return " ".join(f"-e {shlex.quote(e)}" for e in expressions)


def _containerd_version(node: NodeContext) -> Version | None:
    """The version of the containerd that reads this config: the live runtime's when it answers (it may not be
    the binary on PATH, as on a node mid-upgrade), else the binary the unit's PATH finds."""
    if not node.post_mortem:
        try:
            facts = node.runtime_facts()
        except NodedocError:
            facts = None
        if facts is not None and facts.name == "containerd" and try_parse(facts.version):
            return try_parse(facts.version)
    unit = node.containerd_unit()
    path = binaries.which(node.host_root, "containerd", search_path(unit))
    return node.binary("containerd", path).version if path else None


class ConfigProbe(Probe):
    id = "config"
    title = "containerd configuration"
    description = (
        "containerd's config.toml (v2/v3, imports, k3s/RKE2 templates): deprecated registry config, "
        "cgroup driver against the kubelet's, sandbox image, snapshotter, CNI directories."
    )
    needs = frozenset({Need.HOST_FILES})

    def run(self, node: NodeContext) -> Outcome:
        config = node.containerd_config()
        kubelet = read_kubelet(node.host_root)
        facts: dict[str, Any] = {
            "path": config.path,
            "source": config.source,
            "flavour": config.flavour,
            "imports": config.imports,
            "template": config.template,
        }
        subject = {"file": config.path or "(defaults)"}
        if config.problem:
            p = config.problem
            return Outcome(
                findings=[
                    self.finding(
                        "config.parse-error",
                        Severity.CRITICAL,
                        "containerd's config does not parse",
                        f"{p.describe()}: containerd refuses to start with it.",
                        subject={"file": p.path, "line": p.line},
                        evidence={"file": p.path, "line": p.line, "column": p.column, "message": p.message},
                        remediation=[
                            untested(
                                f"Fix line {p.line} of {p.path}" if p.line else f"Fix {p.path}",
                                f"$EDITOR +{p.line} {quote(p.path)}"
                                if p.line
                                else f"$EDITOR {quote(p.path)}",
                                BY_HAND,
                            ),
                            untested(
                                "Check the result as containerd reads it",
                                "containerd config dump >/dev/null",
                                SHOWS_ONLY,
                            ),
                        ],
                    )
                ],
                facts=facts,
            )
        facts["version"] = config.version
        findings = [self._source(config)]
        findings += self._version(node, config, subject)
        findings += self._registry(config, subject, _file_text(node, config))
        findings += self._cgroup_driver(config, kubelet, subject, facts)
        findings += self._images(config, subject, facts)
        findings += self._cni(node, config, kubelet, subject, facts)
        findings += self._flags(config, subject)
        findings += self._removed(config, _containerd_version(node), subject)
        findings += self._misplaced(config, subject)
        return Outcome(findings=findings, facts=facts)

    def _source(self, config: ContainerdConfig) -> Finding:
        if config.path is None:
            return self.finding(
                "config.defaults",
                Severity.INFO,
                "No containerd config file: containerd runs on its defaults",
                "No config.toml in the standard, k3s or RKE2 locations and none named by the running containerd "
                "or NODEDOC_CONTAINERD_CONFIG; the checks below use containerd's defaults.",
                subject={"file": None},
                evidence={"source": config.source},
                remediation=[
                    untested(
                        "Write the defaults out to edit them",
                        "mkdir -p /etc/containerd && containerd config default > /etc/containerd/config.toml",
                        REPLACES_CONFIG,
                    )
                ],
            )
        text = f"{config.path} (version {config.version}, found via {config.source})"
        if config.imports:
            text += f" with imports {', '.join(config.imports)}"
        remedies = []
        if config.template:
            text += f"; {config.flavour} regenerates it at start: edits belong in {config.template}"
            remedies.append(
                untested(
                    f"Edit the template, not the generated file ({config.flavour} overwrites it)",
                    f"cp {quote(config.path)} {quote(config.template)} && $EDITOR {quote(config.template)}",
                    BY_HAND,
                )
            )
        return self.finding(
            "config.file",
            Severity.OK,
            "containerd config read",
            text,
            subject={"file": config.path},
            evidence={"source": config.source, "imports": config.imports},
            remediation=remedies,
        )

    def _version(self, node: NodeContext, config: ContainerdConfig, subject: dict[str, Any]) -> list[Finding]:
        ctd = _containerd_version(node)
        if config.path is None or ctd is None:
            return []
        if config.version >= 3 and ctd.release[0] < 2:
            return [
                self.finding(
                    "config.version-unsupported",
                    Severity.CRITICAL,
                    "Config version 3 needs containerd 2.0",
                    f"{config.path} says version = 3 but containerd is {ctd.raw}: it does not start with it.",
                    subject=subject,
                    evidence={"version": config.version, "containerd": ctd.raw},
                    remediation=[
                        untested(
                            "Use a version 2 config for containerd 1.x",
                            f"containerd config default > {quote(config.edit_target)}",
                            REPLACES_CONFIG,
                        )
                    ],
                )
            ]
        if config.version < 3 and ctd.release[0] >= 2:
            return [
                self.finding(
                    "config.migrated-in-memory",
                    Severity.INFO,
                    f"Version {config.version} config on containerd {ctd.upstream}: migrated at every start",
                    f"containerd {ctd.raw} reads {config.path} (version {config.version}) by migrating it to version 3 in "
                    'memory each time it starts (its log: "Configuration migrated from version '
                    f'{config.version}"). It works; writing the migrated file out makes what runs the same as what '
                    "you read.",
                    subject=subject,
                    evidence={"version": config.version, "containerd": ctd.raw},
                    remediation=[
                        untested(
                            "Write the version 3 form next to it with the 2.x binary, compare, then replace the file",
                            f"containerd --config {quote(config.path)} config migrate > {quote(f'{config.path}.v3')}",
                            "the upgrade test runs it with the lab's paths, not as printed",
                        )
                    ],
                    references=[
                        "https://github.com/containerd/containerd/blob/main/docs/PLUGINS.md#version-header"
                    ],
                )
            ]
        return []

    def _registry(self, config: ContainerdConfig, subject: dict[str, Any], text: str | None) -> list[Finding]:
        registry = RegistryCheck.read(self, config, subject, text)
        if registry is None:
            return []
        found = next((f for check in REGISTRY_CHECKS if (f := check(registry)) is not None), None)
        return [found] if found else []

    def _cgroup_driver(
        self, config: ContainerdConfig, kubelet: KubeletConfig, subject: dict[str, Any], facts: dict[str, Any]
    ) -> list[Finding]:
        setting = config.systemd_cgroup()
        containerd_driver = "systemd" if setting.value is True else "cgroupfs"
        facts["systemd_cgroup"] = setting.value
        facts["kubelet_cgroup_driver"] = kubelet.cgroup_driver.value if kubelet.cgroup_driver else None
        where = f"[{setting.table}] {setting.key}" + (
            " (not set: false)" if setting.default else f" = {setting.value}"
        )
        if not kubelet.present or kubelet.cgroup_driver is None:
            return [
                self.finding(
                    "config.cgroup-driver",
                    Severity.INFO,
                    f"containerd uses the {containerd_driver} cgroup driver",
                    f"{where}; no kubelet config on this node to compare with.",
                    subject=subject,
                    evidence={"SystemdCgroup": setting.value, "table": setting.table},
                )
            ]
        kube = kubelet.cgroup_driver
        if kube.value == containerd_driver:
            return [
                self.finding(
                    "config.cgroup-driver",
                    Severity.OK,
                    f"containerd and the kubelet both use {containerd_driver}",
                    f"{where}; kubelet cgroupDriver {kube.value} ({kube.origin}).",
                    subject=subject,
                    evidence={
                        "SystemdCgroup": setting.value,
                        "kubelet": kube.value,
                        "kubelet_origin": kube.origin,
                    },
                )
            ]
        entry = known_issues.issue("cgroup-driver-mismatch")
        want_systemd = kube.value == "systemd"
        return [
            self.finding(
                "config.cgroup-driver-mismatch",
                Severity.CRITICAL,
                "containerd and the kubelet use different cgroup drivers",
                f"containerd: {containerd_driver} ({where}); kubelet: {kube.value} ({kube.origin}). Pods fail with "
                '`expected cgroupsPath to be of format "slice:prefix:name"` or land in unmanaged cgroups.',
                subject=subject,
                evidence={
                    "SystemdCgroup": setting.value,
                    "table": setting.table,
                    "kubelet": kube.value,
                    "kubelet_origin": kube.origin,
                },
                remediation=[
                    untested(
                        f"Set SystemdCgroup = {'true' if want_systemd else 'false'} under [{setting.table}] "
                        f"in {config.edit_target} to match the kubelet",
                        f"$EDITOR {quote(config.edit_target)}",
                        BY_HAND,
                    ),
                    untested(
                        "Restart containerd, then the kubelet",
                        "systemctl restart containerd kubelet",
                        NO_SYSTEMD,
                    ),
                ],
                references=list(entry.references),
            )
        ]

    def _images(
        self, config: ContainerdConfig, subject: dict[str, Any], facts: dict[str, Any]
    ) -> list[Finding]:
        sandbox, snapshotter = config.sandbox_image(), config.snapshotter()
        facts["sandbox_image"], facts["snapshotter"] = sandbox.value, snapshotter.value
        return [
            self.finding(
                "config.images",
                Severity.INFO,
                f"Sandbox image {sandbox.value}, snapshotter {snapshotter.value}",
                f"sandbox image {sandbox.value}{' (default)' if sandbox.default else ''} from [{sandbox.table}]; "
                f"snapshotter {snapshotter.value}{' (default)' if snapshotter.default else ''}. The sandbox image must be "
                "pullable or already present, else every RunPodSandbox fails.",
                subject={**subject, "sandbox_image": sandbox.value},
                evidence={"sandbox_image": sandbox.value, "snapshotter": snapshotter.value},
                remediation=[
                    untested(
                        "Check the sandbox image is present",
                        f"crictl inspecti {quote(sandbox.value)} >/dev/null && echo present",
                        NO_CRICTL,
                    )
                ],
            )
        ]

    def _cni(
        self,
        node: NodeContext,
        config: ContainerdConfig,
        kubelet: KubeletConfig,
        subject: dict[str, Any],
        facts: dict[str, Any],
    ) -> list[Finding]:
        cni = CniCheck.read(self, node, config, kubelet, subject)
        facts["cni"] = cni.facts
        findings = [f for check in CNI_CHECKS if (f := check(cni)) is not None]
        return findings or [cni_in_place(cni)]

    def _flags(self, config: ContainerdConfig, subject: dict[str, Any]) -> list[Finding]:
        found = []
        notes = {
            "disable_apparmor": "AppArmor profiles are not applied to containers",
            "restrict_oom_score_adj": "containers cannot lower their oom_score_adj below containerd's "
            "(needed where the runtime itself runs with a raised score)",
        }
        for key, meaning in notes.items():
            setting = config.runtime_flag(key)
            if setting.value is True:
                found.append(
                    self.finding(
                        f"config.{key.replace('_', '-')}",
                        Severity.INFO,
                        f"{key} = true",
                        f"[{setting.table}] {key} = true: {meaning}.",
                        subject={**subject, "setting": key},
                        evidence={"table": setting.table, key: True},
                        remediation=[
                            untested(
                                f"Remove {key} from {config.edit_target} if it was not deliberate",
                                f"$EDITOR {quote(config.edit_target)}",
                                BY_HAND,
                            )
                        ],
                    )
                )
        return found

    # -- what containerd 2.x does differently (see probes.readers.host.config_lint) --------------------

    def _removed(
        self, config: ContainerdConfig, containerd: Version | None, subject: dict[str, Any]
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
                self.finding(
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
                        untested(
                            f"In [{setting.table}] of {config.edit_target}: {fix.fix}",
                            f"$EDITOR {quote(config.edit_target)}",
                            BY_HAND,
                        )
                    ],
                    references=[*fix.references, RELEASES][:3],
                )
            )
        return found

    def _misplaced(self, config: ContainerdConfig, subject: dict[str, Any]) -> list[Finding]:
        misplaced = misplaced_in_v3(config)
        if not misplaced:
            return []
        old = config.table_name("io.containerd.grpc.v1.cri")
        moves = "; ".join(f"{m.key} → [{m.belongs_in}]" for m in misplaced)
        return [
            self.finding(
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
                    untested(
                        f"In {config.edit_target}: move each key to the table named, then check what containerd reads",
                        f"$EDITOR {quote(config.edit_target)} && containerd --config {quote(config.path)} config dump",
                        BY_HAND,
                    )
                ],
                references=["https://github.com/containerd/containerd/blob/main/docs/cri/config.md"],
            )
        ]


# -- registry: deprecated mirrors/configs/auths and their conflict with config_path; one check per finding -


@dataclass(frozen=True)
class RegistryCheck:
    """The CRI plugin's registry settings as every registry check sees them, with the migration's steps."""

    probe: ConfigProbe
    subject: dict[str, Any]
    migration: RegistryMigration
    steps: list[Remedy]
    references: list[str]

    @classmethod
    def read(
        cls, probe: ConfigProbe, config: ContainerdConfig, subject: dict[str, Any], text: str | None
    ) -> RegistryCheck | None:
        """None when the config sets no deprecated registry table."""
        migration = registry_migration(config)
        if migration is None:
            return None
        if not migration.config_path and config.flavour == "containerd":
            steps = [proven_step(step, config, migration, text) for step in migration.steps]
        else:
            steps = [untested(step.text, step.command, MIGRATION_WHY[step.kind]) for step in migration.steps]
        entry = known_issues.issue("containerd-deprecated-registry-config")
        return cls(probe, subject, migration, steps, list(entry.references))

    @property
    def evidence(self) -> dict[str, Any]:
        m = self.migration
        return {
            "table": m.table,
            "set": sorted(m.deprecated),
            "config_path": m.config_path,
            "registries": sorted(set(m.mirrors) | set(m.configs)),
        }


def proven_step(
    step: MigrationStep, config: ContainerdConfig, migration: RegistryMigration, text: str | None
) -> Remedy:
    """The lab-proven form of a migration step: the hosts.toml write as is, the edit as an exact sed."""
    if step.kind == "write":
        return Remedy(step.text, step.command, proven=PROVEN_REGISTRY) if step.command else Remedy(step.text)
    edit = None
    if step.kind == "edit" and config.path:
        edit = registry_edit(text, migration.table, set(migration.deprecated), CERTS_DIR)
    if edit:
        return Remedy(
            f"{step.text} (sed keeps the old file as {config.path}.nodedoc.bak)",
            f"sed -i.nodedoc.bak {edit} {quote(config.path)}",
            proven=PROVEN_REGISTRY,
        )
    return untested(step.text, step.command, MIGRATION_WHY[step.kind])


def registry_conflict(reg: RegistryCheck) -> Finding | None:
    """``mirrors`` or ``configs.tls`` beside ``config_path``: containerd refuses to load the CRI plugin."""
    m = reg.migration
    conflict = []
    if m.config_path and m.mirrors:
        conflict.append("`mirrors` cannot be set when `config_path` is provided")
    if m.config_path and m.tls_conflict:
        conflict.append("`configs.tls` cannot be set when `config_path` is provided")
    if not conflict:
        return None
    return reg.probe.finding(
        "config.registry-conflict",
        Severity.CRITICAL,
        "Registry mirrors and config_path are both set",
        f"In [{m.table}]: {'; '.join(conflict)} — containerd does not load its CRI plugin, so the kubelet "
        "cannot reach the runtime.",
        subject=reg.subject,
        evidence=reg.evidence,
        remediation=reg.steps,
        references=reg.references,
    )


def deprecated_registry(reg: RegistryCheck) -> Finding | None:
    """Deprecated registry tables alone: they still work on 1.x and are ignored by 2.x."""
    m = reg.migration
    return reg.probe.finding(
        "config.deprecated-registry",
        Severity.WARNING,
        "Deprecated registry mirrors/configs/auths",
        f"[{m.table}] sets {', '.join(sorted(m.deprecated))}, deprecated since containerd 1.5 and removed in 2.x; "
        f"replace them with config_path and one hosts.toml per registry.",
        subject=reg.subject,
        evidence=reg.evidence,
        remediation=reg.steps,
        references=reg.references,
    )


#: The registry checks, tried in order: the first that finds something is the finding.
REGISTRY_CHECKS: tuple[Callable[[RegistryCheck], Finding | None], ...] = (
    registry_conflict,
    deprecated_registry,
)


# -- CNI: the network config containerd loads and the plugins it names; one check per finding --------------


@dataclass(frozen=True)
class CniCheck:
    """The CNI conf dir and bin dirs containerd is configured with, as every CNI check sees them."""

    probe: ConfigProbe
    host: Path
    config: ContainerdConfig
    subject: dict[str, Any]
    conf_dir: Any
    bin_dirs: Any
    networks: list[CniNetwork]
    kubelet_present: bool

    @classmethod
    def read(
        cls,
        probe: ConfigProbe,
        node: NodeContext,
        config: ContainerdConfig,
        kubelet: KubeletConfig,
        subject: dict[str, Any],
    ) -> CniCheck:
        conf_dir, bin_dirs = config.cni_conf_dir(), config.cni_bin_dirs()
        networks = read_cni(node.host_root, conf_dir.value)
        return cls(probe, node.host_root, config, subject, conf_dir, bin_dirs, networks, kubelet.present)

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "bin_dirs": self.bin_dirs.value,
            "conf_dir": self.conf_dir.value,
            "networks": [{"file": n.file, "types": list(n.types)} for n in self.networks],
        }

    @property
    def existing_bin_dirs(self) -> list[Any]:
        return [d for d in self.bin_dirs.value if binaries.local(self.host, str(d)).is_dir()]


def no_network_config(cni: CniCheck) -> Finding | None:
    """No network config in the conf dir: NetworkReady stays false."""
    if cni.networks:
        return None
    conf_dir = cni.conf_dir
    state = (
        "does not exist"
        if not binaries.local(cni.host, conf_dir.value).is_dir()
        else "has no .conf/.conflist/.json file"
    )
    pods_note = (
        "" if cni.kubelet_present else " (no kubelet on this node; pods started through CRI get no network)"
    )
    return cni.probe.finding(
        "config.cni-conf-dir",
        Severity.WARNING if cni.kubelet_present else Severity.INFO,
        "No CNI network config",
        f"CNI conf dir {conf_dir.value} {state}{pods_note}: the runtime reports NetworkReady=false until a "
        "network add-on writes one.",
        subject={**cni.subject, "dir": conf_dir.value},
        evidence={"conf_dir": conf_dir.value, "table": conf_dir.table},
        remediation=[
            untested(
                "Check the network add-on's pods (it writes the config)",
                "kubectl -n kube-system get pods -o wide --field-selector spec.nodeName=<node>",
                NO_KUBELET,
            ),
            untested(
                "Or point conf_dir at the right directory",
                f"$EDITOR {quote(cni.config.edit_target)}",
                BY_HAND,
            ),
        ],
    )


def no_plugin_dir(cni: CniCheck) -> Finding | None:
    """None of the CNI bin dirs exists: no pod network can be set up."""
    if cni.existing_bin_dirs:
        return None
    bin_dirs = cni.bin_dirs
    return cni.probe.finding(
        "config.cni-bin-dir",
        Severity.WARNING if cni.networks else Severity.INFO,
        "CNI plugin directory missing",
        f"CNI bin dir {', '.join(map(str, bin_dirs.value))} does not exist: no pod network can be set up.",
        subject={**cni.subject, "dir": bin_dirs.value},
        evidence={"bin_dirs": bin_dirs.value, "table": bin_dirs.table},
        remediation=[
            untested(
                "Install the CNI plugins (Debian: /usr/lib/cni) and point bin_dir at them",
                "apt-get install -y containernetworking-plugins",
                CHANGES_MACHINE,
            )
        ],
    )


def plugin_missing(cni: CniCheck) -> Finding | None:
    """The config containerd loads (the first: max_conf_num = 1) names plugins the bin dirs lack."""
    existing = cni.existing_bin_dirs
    if not existing or not cni.networks:
        return None
    first = cni.networks[0]
    missing = [
        t
        for t in first.types
        if t and not any(binaries.is_executable(cni.host, f"{str(d).rstrip('/')}/{t}") for d in existing)
    ]
    if not (first.error or missing):
        return None
    return cni.probe.finding(
        "config.cni-plugin-missing",
        Severity.WARNING,
        "The CNI config names plugins that are not installed",
        f"{first.file}: "
        + (first.error or f"plugins {missing} are not in {', '.join(map(str, existing))}")
        + ": every pod start fails with `failed to find plugin`.",
        subject={**cni.subject, "cni_config": first.file},
        evidence={"types": list(first.types), "bin_dirs": existing},
        remediation=[
            untested(
                "Install the missing plugins into the bin dir",
                f"ls {words(existing)}",
                SHOWS_ONLY,
            )
        ],
    )


def cni_in_place(cni: CniCheck) -> Finding:
    """What the CNI checks say when none found anything."""
    first = cni.networks[0]
    return cni.probe.finding(
        "config.cni",
        Severity.OK,
        "CNI config and plugins in place",
        f"{first.file} ({', '.join(first.types)}) with plugins in {', '.join(map(str, cni.existing_bin_dirs))}.",
        subject={**cni.subject, "cni_config": first.file},
        evidence=cni.facts,
    )


#: The CNI checks, each returning its finding or None.
CNI_CHECKS: tuple[Callable[[CniCheck], Finding | None], ...] = (
    no_network_config,
    no_plugin_dir,
    plugin_missing,
)
