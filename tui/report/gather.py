"""What a report needs from the run besides the probe results: which node, which options, the inventory.

The one place of the report package that touches the node, and only through :class:`probes.node.NodeContext`'s
typed accessors: its identity and the options it was started with (no read of the node's state), and the
container inventory (one ``ListContainers`` and a status per container, asked only for a report that
shows it). The findings, the verdict and the runtime block are the probes' (:mod:`tui.report.model`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from probes.api import ProbeResult
from probes.errors import NodedocError
from probes.node import NodeContext
from tui.report.model import Inventory, NodeIdentity, Report, RunOptions, Walkthrough, build_report


def identity_of(node: NodeContext) -> NodeIdentity:
    """The node's Kubernetes name, hostname, kernel and OS (under ``--host-root`` when given)."""
    facts = node.node_facts()
    return NodeIdentity(name=node.node_name(), hostname=facts.hostname, kernel=facts.kernel, os=facts.os)


def options_of(node: NodeContext) -> RunOptions:
    """Where this run was told, or found, to look."""
    return RunOptions(
        endpoint=node.endpoint,
        containerd_root=str(node.containerd_root) if node.containerd_root else None,
        containerd_state=str(node.containerd_state) if node.containerd_state else None,
        host_root=str(node.host_root),
        post_mortem=node.post_mortem,
    )


def inventory_of(node: NodeContext) -> Inventory:
    """Every container the runtime knows, or why they could not be listed (post-mortem: no runtime)."""
    if node.post_mortem:
        return Inventory(error="post-mortem mode: no live runtime")
    try:
        return Inventory(tuple(node.container_inventory()))
    except (NodedocError, ValueError) as exc:
        return Inventory(error=str(exc))


def report_of(
    node: NodeContext,
    results: list[ProbeResult],
    *,
    walkthrough: Walkthrough | dict[str, Any] | None = None,
    redact: bool = True,
    containers: Inventory | None = None,
    now: dt.datetime | None = None,
) -> Report:
    """The report of ``results`` on ``node``; ``walkthrough`` a runbook session (typed, or its saved
    document); ``containers`` defaults to asking the runtime."""
    if isinstance(walkthrough, dict):
        walkthrough = Walkthrough.from_document(walkthrough)
    return build_report(
        results,
        identity_of(node),
        options_of(node),
        containers=containers if containers is not None else inventory_of(node),
        walkthrough=walkthrough,
        now=now,
        redact=redact,
    )
