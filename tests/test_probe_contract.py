"""The contract every registered probe keeps: on a node with nothing on it, ``run`` returns findings or
says, with a typed one-line error, why it cannot look; it never crashes."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.api import Finding, Outcome, Severity
from probes.errors import NodedocError
from probes.node import NodeContext
from probes.registry import available


def empty_node(tmp_path: Path) -> NodeContext:
    """No runtime socket, an empty containerd root, an empty host root and an empty procfs."""
    for name in ("host", "root", "state", "proc"):
        (tmp_path / name).mkdir()
    return NodeContext(
        endpoint=f"unix://{tmp_path}/nobody.sock",
        containerd_root=tmp_path / "root",
        containerd_state=tmp_path / "state",
        host_root=tmp_path / "host",
        proc_root=tmp_path / "proc",
        timeout=0.5,
    )


@pytest.mark.parametrize("probe_id", sorted(available()))
def test_every_probe_returns_on_an_empty_node(probe_id: str, tmp_path: Path) -> None:
    probe = available()[probe_id].load()()
    node = empty_node(tmp_path)
    try:
        outcome = probe.run(node)
    except NodedocError as exc:  # a typed reason it cannot look (the runner skips it with this message)
        assert str(exc) and "\n" not in str(exc)
        return
    finally:
        node.close()
    findings = outcome.findings if isinstance(outcome, Outcome) else outcome
    assert isinstance(findings, list)
    for finding in findings:
        assert isinstance(finding, Finding) and finding.probe == probe_id
        assert isinstance(finding.severity, Severity) and finding.title and finding.summary


def test_a_node_named_with_strings_is_read_as_paths(tmp_path) -> None:
    """A caller that is not the CLI may name the directories as strings; the node reads them as paths."""
    from probes.node import NodeContext

    node = NodeContext(containerd_root=str(tmp_path), containerd_state=str(tmp_path), host_root=str(tmp_path))
    assert node.containerd_root == tmp_path and node.containerd_state == tmp_path
    assert node.proc_root == tmp_path / "proc" and node.root() == tmp_path
