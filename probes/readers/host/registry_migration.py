"""Moving containerd's deprecated CRI registry settings (``mirrors``, ``configs``, ``auths``) to hosts.toml.

Both the config probe (which reads the file) and the deprecations probe (which reads what containerd reports)
give these steps, computed from the node's own config so the commands are exact. This module derives them
from the config; the probes turn them into remedies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from probes.readers.host.containerd_config import ContainerdConfig
from probes.shell import heredoc_delimiter, quote, toml_string

CERTS_DIR = "/etc/containerd/certs.d"
DEPRECATED_KEYS = ("mirrors", "configs", "auths")
#: What a registry host (with its port) may be as the name of its directory under certs.d.
_HOST = re.compile(r"_default|[A-Za-z0-9\[][A-Za-z0-9._:\[\]-]*")


def _tls_lines(tls: dict[str, Any], indent: str) -> list[str]:
    lines = []
    if tls.get("insecure_skip_verify"):
        lines.append(f"{indent}skip_verify = true")
    if tls.get("ca_file"):
        lines.append(f"{indent}ca = {toml_string(str(tls['ca_file']))}")
    if tls.get("cert_file") and tls.get("key_file"):
        pair = f"{toml_string(str(tls['cert_file']))}, {toml_string(str(tls['key_file']))}"
        lines.append(f"{indent}client = [[{pair}]]")
    return lines


def hosts_toml(registry: str, mirror: dict[str, Any], tls: dict[str, Any]) -> str:
    """The hosts.toml that replaces a deprecated ``mirrors`` / ``configs.tls`` entry for one registry.

    TLS settings go with each mirror; a registry with TLS settings and no mirror gets them at the top level,
    where they apply to its own server. Names and paths from the config are written as TOML strings, so each
    stays the one value it was whatever quotes or newlines it holds.
    """
    server = "https://registry-1.docker.io" if registry == "docker.io" else f"https://{registry}"
    lines = [] if registry == "*" else [f"server = {toml_string(server)}"]
    endpoints = mirror.get("endpoint", []) or []
    if not endpoints:
        lines += _tls_lines(tls, "")
    if lines:
        lines.append("")
    for endpoint in endpoints:
        lines.append(f"[host.{toml_string(str(endpoint))}]")
        lines.append('  capabilities = ["pull", "resolve"]')
        lines += _tls_lines(tls, "  ")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class MigrationStep:
    """One step of the move: what to do, the exact command, and its kind: ``write`` (a hosts.toml), ``edit``
    (config.toml by hand), ``credentials`` (moved to the cluster), ``restart`` (containerd)."""

    text: str
    command: str | None
    kind: str


@dataclass
class RegistryMigration:
    """The deprecated registry settings a config has, and the steps that replace them."""

    table: str
    deprecated: dict[str, Any]
    config_path: Any
    mirrors: dict[str, Any]
    configs: dict[str, Any]
    tls_conflict: list[str]
    steps: list[MigrationStep] = field(default_factory=list)


def registry_migration(config: ContainerdConfig) -> RegistryMigration | None:
    """None when the config sets none of ``mirrors``, ``configs``, ``auths``."""
    registry, table = config.registry()
    deprecated = {k: registry[k] for k in DEPRECATED_KEYS if registry.get(k)}
    if not deprecated:
        return None
    config_path = registry.get("config_path")
    mirrors = deprecated.get("mirrors", {}) if isinstance(deprecated.get("mirrors"), dict) else {}
    configs = deprecated.get("configs", {}) if isinstance(deprecated.get("configs"), dict) else {}
    tls_conflict = [name for name, c in configs.items() if isinstance(c, dict) and c.get("tls")]
    certs = config_path or CERTS_DIR
    steps = []
    for name in sorted(set(mirrors) | set(tls_conflict)):
        folder = "_default" if name == "*" else name
        if not _HOST.fullmatch(folder):
            steps.append(
                MigrationStep(
                    f"Write the hosts.toml for {name!r} by hand: it is not a registry host name, so nodedoc "
                    f"prints no directory under {certs} for it",
                    None,
                    "write",
                )
            )
            continue
        tls = configs.get(name, {}).get("tls", {}) if isinstance(configs.get(name), dict) else {}
        body = hosts_toml(
            name, mirrors.get(name, {}) if isinstance(mirrors.get(name), dict) else {}, tls or {}
        )
        end = heredoc_delimiter(body)
        steps.append(
            MigrationStep(
                f"Write {certs}/{folder}/hosts.toml for {name}",
                f"mkdir -p {quote(f'{certs}/{folder}')} && cat > {quote(f'{certs}/{folder}/hosts.toml')} "
                f"<<'{end}'\n{body}{end}",
                "write",
            )
        )
    steps.append(
        MigrationStep(
            f"In [{table}] of {config.edit_target}: delete the {'/'.join(deprecated)} tables and set "
            f'config_path = "{certs}"',
            f"$EDITOR {quote(config.edit_target)}",
            "edit",
        )
    )
    if "auths" in deprecated or any(isinstance(c, dict) and c.get("auth") for c in configs.values()):
        steps.append(
            MigrationStep(
                "Registry credentials have no hosts.toml form: use imagePullSecrets or a kubelet "
                "credential provider",
                "kubectl create secret docker-registry <name> ...",
                "credentials",
            )
        )
    if config.flavour != "containerd":
        steps.insert(
            0,
            MigrationStep(
                f"On {config.flavour}, mirrors belong in registries.yaml, which it turns into hosts.toml",
                f"$EDITOR /etc/rancher/{config.flavour}/registries.yaml",
                "edit",
            ),
        )
    steps.append(
        MigrationStep(
            "Restart containerd and check no deprecation remains",
            "systemctl restart containerd && ctr deprecations list",
            "restart",
        )
    )
    return RegistryMigration(table, deprecated, config_path, mirrors, configs, tls_conflict, steps)
