"""The findings report: redaction in every format, the walkthrough section, 0600 files, HTML in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.pipe_hog import soft_limit_held

from probes.api import Finding, ProbeResult, ProbeStatus, Severity
from probes.node import NodeContext
from probes.readers.cri.inventory import PodContainer
from tui.redact import MARK, redact_document
from tui.report import render, report_of
from tui.report.model import Inventory

SECRET = "s3cr3t-Value-42"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2RlZG9jIn0.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(
    ("doc", "kind", "kept"),
    [
        pytest.param(
            {"containers": {"items": [{"env": {"DB_PASSWORD": SECRET, "MODE": "x"}}]}},
            "container env value",
            "DB_PASSWORD",
            id="env-map",
        ),
        pytest.param(
            {"config": {"envs": [{"key": "API", "value": SECRET}]}},
            "container env value",
            "API",
            id="cri-config-envs",
        ),
        pytest.param(
            {"runtimeSpec": {"process": {"env": ["PATH=/bin", f"TOKEN={SECRET}"]}}},
            "container env value",
            "TOKEN=",
            id="runtime-spec-env",
        ),
        pytest.param(
            {"annotations": {"last-applied": json.dumps({"env": [{"name": "PW", "value": SECRET}]})}},
            "env value",
            '"name": "PW"',
            id="embedded-pod-json",
        ),
        pytest.param(
            {"cmdline": f"curl -H 'Authorization: Bearer {SECRET}' https://x"},
            "token",
            "Bearer",
            id="bearer-header",
        ),
        pytest.param(
            {"evidence": {"url": f"https://admin:{SECRET}@registry.local/v2/"}},
            "password",
            "https://admin:",
            id="url-password",
        ),
        pytest.param({"text": f"login with password={SECRET} now"}, "password", "password=", id="key-equals"),
        pytest.param(
            {"cmdline": f"app --db-password {SECRET} --port 80"}, "password", "--port 80", id="flag"
        ),
        pytest.param(
            {"auths": {"registry.local": {"auth": SECRET}}},
            "registry credential",
            "registry.local",
            id="docker-auth-key",
        ),
        pytest.param(
            {"raw": '{"auths":{"r":{"auth":"' + SECRET + '"}}}'},
            "registry credential",
            '"auths"',
            id="docker-auth-in-text",
        ),
        pytest.param({"note": f"saw {JWT} in the log"}, "token", "saw", id="jwt"),
        pytest.param({"secret_key": SECRET, "count": 3}, "password or token", "count", id="sensitive-key"),
        pytest.param(
            {"key": f"-----BEGIN RSA PRIVATE KEY-----\n{SECRET}\n-----END RSA PRIVATE KEY-----"},
            "private key",
            "BEGIN RSA",
            id="private-key",
        ),
    ],
)
def test_redaction_rules(doc: dict, kind: str, kept: str) -> None:
    cleaned, summary = redact_document(doc)
    text = json.dumps(cleaned)
    assert SECRET not in text and JWT not in text
    assert MARK in text and kept in text.replace('\\"', '"')
    assert summary["enabled"] and summary["values"] >= 1 and summary["kinds"].get(kind, 0) >= 1, summary


def test_a_redacted_value_is_scrubbed_wherever_else_it_appears() -> None:
    doc = {"env": {"DB_PASSWORD": SECRET}, "facts": {"cmdline": f"psql -W{SECRET}", "other": [f"x{SECRET}y"]}}
    cleaned, summary = redact_document(doc)
    assert SECRET not in json.dumps(cleaned)
    assert summary["kinds"]["repeat of a redacted value"] == 2


def test_ordinary_text_is_left_alone() -> None:
    doc = {
        "summary": "uid 0 holds 20000 pages over fs.pipe-user-pages-soft",
        "evidence": {"pid": 42, "tokens": 3},
    }
    cleaned, summary = redact_document(doc)
    assert cleaned == doc and summary["values"] == 0


def fake_results() -> list[ProbeResult]:
    finding = Finding(
        id="demo.finding",
        probe="demo",
        severity=Severity.WARNING,
        title="A <b>title</b> & more",
        summary="Something needs doing.",
        subject={"kind": "pod", "name": "web"},
        evidence={"cmdline": f"app --password {SECRET}", "list": [1, 2]},
    )
    return [ProbeResult(probe="demo", title="Demo", status=ProbeStatus.OK, findings=[finding])]


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_report_without_a_runtime_redacts_and_says_so(fmt: str) -> None:
    node = NodeContext(endpoint="unix:///nonexistent/nodedoc.sock", timeout=0.2)
    app = PodContainer("c" * 64, "app", "web", "ns", "s" * 64, "running", "img", env={"DB_PASSWORD": SECRET})
    containers = Inventory((app,))
    text = render(report_of(node, fake_results(), containers=containers), fmt)
    assert SECRET not in text and "DB_PASSWORD" in text
    assert "Redacted 2 value(s)" in text if fmt != "json" else json.loads(text)["redaction"]["values"] == 2
    raw = render(report_of(node, fake_results(), containers=containers, redact=False), fmt)
    assert SECRET in raw
    if fmt != "json":
        assert "NOT REDACTED" in raw
    if fmt == "html":
        assert "A &lt;b&gt;title&lt;/b&gt; &amp; more" in text
        assert "<script" not in text and "<link" not in text and " src=" not in text


# -- on the lab ----------------------------------------------------------------------------------------


def nodedoc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ),
    )


def lab_args(lab) -> list[str]:
    return [
        "--endpoint",
        lab.endpoint,
        "--containerd-root",
        str(lab.root),
        "--containerd-state",
        str(lab.state),
    ]


@pytest.mark.lab
@pytest.mark.root
@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_lab_report_has_no_trace_of_the_password(lab, tmp_path: Path, fmt: str) -> None:
    out_file = tmp_path / f"report.{fmt}"
    done = nodedoc(
        "report",
        *lab_args(lab),
        "--format",
        fmt,
        "--output",
        str(out_file),
        "--probe",
        "runtime",
        "--probe",
        "network",
    )
    assert done.returncode == 0, done.stderr
    assert out_file.stat().st_mode & 0o777 == 0o600
    text = out_file.read_text()
    assert lab.db_password not in text
    assert text.count("DB_PASSWORD") >= len([p for p in lab.pods if p.container_id])
    raw = nodedoc("report", *lab_args(lab), "--format", fmt, "--no-redact", "--probe", "runtime")
    assert raw.returncode == 0, raw.stderr
    assert lab.db_password in raw.stdout


@pytest.mark.every_runtime
@pytest.mark.lab
@pytest.mark.root
def test_cri_verbose_info_is_redacted_wherever_it_appears(lab) -> None:
    """The runtime's own verbose container status (config.envs and runtimeSpec.process.env) put in facts."""
    with lab.client() as client:
        ids = [p.container_id for p in lab.pods if p.container_id]
        statuses = client.container_statuses(ids)
    verbose = [json.loads(dict(s.info)["info"]) for s in statuses.values()]
    assert lab.db_password in json.dumps(verbose)  # the raw info really holds it
    result = ProbeResult(probe="demo", title="Demo", status=ProbeStatus.OK, facts={"verbose": verbose})
    node = NodeContext(endpoint=lab.endpoint, containerd_root=lab.root, containerd_state=lab.state)
    report = report_of(node, [result])
    for fmt in ("json", "md", "html"):
        assert lab.db_password not in render(report, fmt)
    doc = report.to_document()
    assert doc["redaction"]["kinds"]["container env value"] >= 2 * len(ids)
    assert any(
        e.startswith("DB_PASSWORD=")
        for v in doc["facts"]["demo"]["verbose"]
        for e in v["runtimeSpec"]["process"]["env"]
    )


@pytest.mark.lab
@pytest.mark.root
def test_check_redacts_too(lab) -> None:
    done = nodedoc("check", *lab_args(lab), "--format", "json", "--probe", "runtime")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert lab.db_password not in done.stdout and doc["redaction"]["enabled"]
    assert doc["schema"] == "nodedoc.report/v1" and {
        "generated_at",
        "node",
        "runtime",
        "probes",
        "findings",
    } <= set(doc)


@pytest.mark.lab
@pytest.mark.root
def test_html_report_renders_in_headless_chromium(lab, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    report, png = tmp_path / "report.html", tmp_path / "report.png"
    session = tmp_path / "walk.json"
    with soft_limit_held():  # a healthy walk: not while another test run has lowered the pipe limit
        walked = nodedoc(
            "runbook",
            "run",
            "node-notready",
            *lab_args(lab),
            "--answer",
            "pleg-in-kubelet-log=none",
            "--note",
            "check-runtime=seen at 03:10",
            "--save",
            str(session),
        )
    assert walked.returncode == 0, walked.stderr
    done = nodedoc(
        "report",
        *lab_args(lab),
        "--format",
        "html",
        "--output",
        str(report),
        "--runbook-session",
        str(session),
    )
    assert done.returncode == 0, done.stderr
    html = report.read_text()
    assert "Walkthrough" in html and "seen at 03:10" in html and lab.db_password not in html
    run = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            "--window-size=1200,1600",
            f"file://{report}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.exists(), run.stderr[-2000:]
    assert png.stat().st_size > 20_000  # a blank page is a few KB
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not [line for line in console if "Uncaught" in line or "Content Security Policy" in line], console
