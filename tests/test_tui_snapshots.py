"""Every screen in its important states, drawn from node data recorded on the real lab
(tests/record_sessions.py). Each docstring says what the picture must show."""

from __future__ import annotations

# The project fixtures (conftest.py may import them for every module instead).


def test_dashboard_healthy(compare) -> None:
    """Dashboard of a healthy lab node: node bar "● connected" with containerd 1.6.20~ds1 (CRI v1);
    runtime panel with RuntimeReady/NetworkReady true; counts 3 ready, 0 not ready, 3 containers, 1 image,
    snapshots by kind; no CRIT/WARN/UNKN lines in "Worst findings", which ends "probes: 8 ran, 0 not applicable,
    0 could not run"; the "Where next" keys."""
    assert compare("healthy")


def test_dashboard_small_terminal(compare) -> None:
    """The healthy dashboard at 80×24: every panel still readable, nothing cut but long values."""
    assert compare("healthy", size=(80, 24))


def test_dashboard_unreachable(compare) -> None:
    """Runtime unreachable: red node bar "✗ RUNTIME UNREACHABLE", a panel giving the reason (no socket at
    /tmp/ndrec/gone.sock) and offering m for post-mortem mode; counts say pods unknown; "Worst findings" opens
    with UNKN "1 probe could not run: network" (it needs the runtime), then CRIT "The container runtime cannot be
    reached"; "m Post-mortem" in the footer; no traceback."""
    assert compare("unreachable")


def test_dashboard_post_mortem(compare) -> None:
    """After m on the unreachable node: node bar "◆ post-mortem" and "disk only", no unreachable panel,
    the snapshot counts read from the containerd root. The findings are the recording's, taken while the
    runtime was unreachable (so still UNKN for network): a recording cannot re-run its probes."""
    assert compare("unreachable", press=["m"])


def test_pods_healthy(compare) -> None:
    """Pods table: lab-pod-0..2 in nodedoc-lab, ready, with their 10.x IPs and 1 container each; no marks in
    the "!" column; the status line says 3 pods, sorted by NAME, auto-refresh off."""
    assert compare("healthy", press=["p"])


def test_pods_broken_network_marked(compare) -> None:
    """Broken network: 4 pods; web-broken-net carries a red "C" mark in the "!" column (a critical finding)
    while the three lab pods carry none."""
    assert compare("broken-network", press=["p"])


def test_pods_filtered(compare) -> None:
    """Live filter: "/" opened the filter box with "pod-1" typed; only lab-pod-1 is listed and the status line
    says "1 of 3 pods" and the filter."""
    assert compare("healthy", press=["p", "slash", "p", "o", "d", "minus", "1"])


def test_pod_detail_broken_network(compare) -> None:
    """Pod detail of web-broken-net (found with the filter "web"): its CRI IP shown beside the namespace
    with verdict "MISSING in namespace"; no containers; the sandbox's snapshot chain with the pause layer
    verified ok; its shim process."""
    assert compare("broken-network", press=["p", "slash", "w", "e", "b", "enter", "enter"])


def test_pod_detail_healthy(compare) -> None:
    """Pod detail of lab-pod-0: CRI IP and namespace IP agree (verdict ok); container "app" running on
    localhost/pause:lab with 0 restarts; snapshot chain active → committed pause layer verified ok."""
    assert compare("healthy", press=["p", "enter"])


def test_pod_detail_damaged_snapshot(compare) -> None:
    """Pod detail of lab-pod-0 on the damaged-snapshot recording: the pause layer #1 "damaged" with "/pause
    missing", and under it the fix the findings screen gives, once for the two findings that share it
    (snapshot.entrypoint-missing, snapshot.files-missing): the tar restore of the member pause from the
    node's blob into snapshots/1/fs."""
    assert compare("damaged-snapshot", press=["p", "enter"])


def test_snapshots_damaged(compare) -> None:
    """Damaged snapshot after V (verify all): the pause layer's snapshot marked "damaged" in the tree; the
    detail pane lists "/pause missing" in red; the file browser shows a red ✗ row "pause" (missing)."""
    assert compare("damaged-snapshot", press=["s", "V"])


def test_snapshots_healthy(compare) -> None:
    """Snapshots of the healthy lab: images → localhost/pause:lab → L0 #1 committed; active snapshots with
    their sandbox/container names; the detail of #1 and its files (pause)."""
    assert compare("healthy", press=["s"])


def test_processes_blocked_init(compare) -> None:
    """Processes with a runc init hung on a shrunken pipe: the runc:[2:INIT] row in red with "S BLOCKED" and
    wchan anon_pipe_write; the status line counts 1 runc init BLOCKED; the uid 65534 line says OVER SOFT."""
    assert compare("blocked-init", press=["x"])


def test_processes_blocked_init_pipes(compare) -> None:
    """The hung init selected: its pipe with capacity 8192 marked "shrunk", bytes waiting "8192 FULL",
    and its peer (the reading end's holder)."""
    assert compare("blocked-init", press=["x", "down", "down", "down", "down"])


def test_findings_blocked_init(compare) -> None:
    """Findings grouped by severity with CRITICAL first: "runc init … hung on a pipe" selected; the detail
    pane shows its evidence, remediation with sysctl and kill -9 commands, and the runc references."""
    assert compare("blocked-init", press=["f"])


def test_findings_unreachable(compare) -> None:
    """Findings when the runtime is gone: CRITICAL "The container runtime cannot be reached" with the
    socket error, remediation (systemctl status containerd, journalctl, post-mortem command), and the
    probes that could not run listed under NOT RUN with their reasons."""
    assert compare("unreachable", press=["f"])


def test_help(compare) -> None:
    """Help over the pods screen: the pods keys (/, o, a, r) and the app keys (d p s x f w e r ? q)."""
    assert compare("healthy", press=["p", "question_mark"])
