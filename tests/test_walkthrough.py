"""Snapshots of the walkthrough screen (w), driven like an engineer would, on recordings of the real lab."""

from __future__ import annotations

from typing import Any

from textual.widgets import OptionList
from tui_snapshot import settle

# The project's snapshot fixtures, until tests/conftest.py imports them for every module.


async def choose(pilot: Any, prefix: str) -> None:
    """Highlight the first option whose id starts with ``prefix`` and press Enter on it."""
    options = pilot.app.screen.query_one("#walk-choices", OptionList)
    index = next(
        i for i in range(options.option_count) if (options.get_option_at_index(i).id or "").startswith(prefix)
    )
    options.highlighted = index
    options.focus()
    await pilot.press("enter")
    await settle(pilot)


def walk_to(*prefixes: str):
    async def then(pilot: Any) -> None:
        for prefix in prefixes:
            await choose(pilot, prefix)

    return then


def test_question(compare) -> None:
    """The first question of "Pod stuck in ContainerCreating": the breadcrumb names the runbook and the
    step, the step says why it asks, and the four error texts are the choices, the first highlighted."""
    assert compare("healthy", press=["w"], then=walk_to("runbook:pod-sandbox-create"))


def test_probe_step_with_findings(compare) -> None:
    """After answering the /pause error, the snapshot check ran on the damaged-snapshot recording: the
    breadcrumb shows the answer [pause-missing], the findings list snapshot.files-missing as CRIT, and the
    line under them says it leads to "Files are missing from an unpacked image layer"."""
    assert compare(
        "damaged-snapshot", press=["w"], then=walk_to("runbook:pod-sandbox-create", "choice:pause-missing")
    )


def test_conclusion(compare) -> None:
    """The conclusion of the same walk: CRIT, the diagnosis (the pause image's snapshot lost /pause), the
    finding behind it with its commands, and the runbook's remediation steps."""
    assert compare(
        "damaged-snapshot",
        press=["w"],
        then=walk_to("runbook:pod-sandbox-create", "choice:pause-missing", "continue"),
    )


def test_note_and_back(compare) -> None:
    """On the flushed-address recording, a note was added to the first (probe) step, the walk went on to
    its conclusion and the engineer pressed b: the probe step is current again with its findings re-run
    (network.netns-ip-missing as CRIT), the note under them and ✎ after the step in the breadcrumb."""

    async def then(pilot: Any) -> None:
        await walk_to("runbook:restart-lost-pods")(pilot)
        await pilot.press("n")
        for key in "pod 2 stopped answering at 10:02":
            await pilot.press("space" if key == " " else key)
        await pilot.press("enter")
        await settle(pilot)
        await choose(pilot, "continue")
        await pilot.press("b")
        await settle(pilot)

    assert compare("broken-network", press=["w"], then=then)
