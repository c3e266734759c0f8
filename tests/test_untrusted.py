"""The one function that makes node text inert before a terminal or a report shows it."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.api import Finding, Remedy, Severity
from tui.untrusted import has_unsafe, neutralise, neutralise_bytes, neutralise_data


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param("esc\x1b[31mRED", "esc\\x1b[31mRED", id="csi-colour"),
        pytest.param("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title", id="osc-title"),
        pytest.param("one\x9b31mtwo", "one\\x9b31mtwo", id="c1-csi"),
        pytest.param("gnp\u202eexe.sh", "gnp\\u202eexe.sh", id="bidi-override"),
        pytest.param("a\u2066b\u2069", "a\\u2066b\\u2069", id="bidi-isolate"),
        pytest.param("line\nforged", "line\\nforged", id="newline"),
        pytest.param("over\rwrite", "over\\rwrite", id="carriage-return"),
        pytest.param("nul\x00byte", "nul\\x00byte", id="nul"),
        pytest.param("del\x7f", "del\\x7f", id="del"),
        pytest.param("sep\u2028x", "sep\\u2028x", id="line-separator"),
        pytest.param("[reverse]FAKE-OK", "[reverse]FAKE-OK", id="markup-untouched"),
        pytest.param("café 日本 ✓", "café 日本 ✓", id="plain-unicode-untouched"),
        pytest.param("bad\udcffname", "bad\\xffname", id="non-utf8-byte"),
    ],
)
def test_single_line_fields_show_escapes(raw: str, shown: str) -> None:
    assert neutralise(raw) == shown
    assert has_unsafe(raw) == (raw != shown)


def test_prose_keeps_newlines_and_tabs_but_not_escapes() -> None:
    assert neutralise("a\n\tb\x1b[2J", multiline=True) == "a\n\tb\\x1b[2J"


def test_bytes_that_are_not_utf8() -> None:
    assert neutralise_bytes(b"caf\xe9\x1b") == "caf\\xe9\\x1b"


def test_data_copies_dataclasses_and_keeps_enums_and_prose() -> None:
    finding = Finding(
        id="snapshot.files-changed",
        probe="snapshots",
        severity=Severity.WARNING,
        title="files changed in \x1b[31m",
        summary="first line\nsecond \u202e",
        subject={"kind": "snapshot", "name": "esc\x1b[31mRED\n"},
        evidence={"paths": ["/a\x1bb"], "count": 2},
        remediation=[Remedy(text="do\nthis", command="rm '/x\x1b'")],
        references=["note"],
    )
    clean = neutralise_data(finding)
    assert clean.severity is Severity.WARNING
    assert clean.summary == "first line\\nsecond \\u202e"  # probes put node names in summaries
    assert clean.subject["name"] == "esc\\x1b[31mRED\\n"
    assert clean.evidence == {"paths": ["/a\\x1bb"], "count": 2}
    assert clean.remediation[0] == Remedy(text="do\\nthis", command="rm '/x\\x1b'")
    assert neutralise_data({"note": "two\nlines\x1b"}) == {"note": "two\nlines\\x1b"}  # the operator's prose
    assert finding.subject["name"] == "esc\x1b[31mRED\n"  # the original is untouched (JSON stays exact)
    assert dataclasses.asdict(clean).keys() == dataclasses.asdict(finding).keys()


@given(st.text())
def test_output_never_holds_a_control_or_bidi_character(text: str) -> None:
    out = neutralise(text)
    assert not has_unsafe(out)
    assert neutralise(out) == out  # idempotent: showing it twice changes nothing
    assert all(not (0 <= ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) for c in out)
