"""The deprecations probe: containerd's own deprecation warnings, one finding each, with the fix.

Unit tests merge the two sources as recorded from Debian's containerd 2.1.9; the lab tests run the probe against
live 1.7.24 and 2.1.9 builds with deprecated configs and compare with `ctr deprecations list` (run by the test).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest
from fixtures.containerd_builds import bare_containerd, build_bin, ctr_deprecation_ids

from probes.api import Severity
from probes.builtin.deprecations import DeprecationsProbe, gather
from probes.builtin.runtime import RuntimeProbe
from probes.knowledge.deprecations import CONDITION, fixes, from_condition
from probes.node import NodeContext
from probes.readers.cri.runtime import RuntimeCondition
from probes.readers.introspection.client import Deprecation

MIRRORS = "io.containerd.deprecation/cri-registry-mirrors"
CONFIGS = "io.containerd.deprecation/cri-registry-configs"
# Recorded from Debian's containerd 2.1.9+ds1-5 (CRI Status) with registry mirrors and configs set.
RECORDED_CONDITION = RuntimeCondition(
    type=CONDITION,
    status=False,
    reason="ContainerdHasDeprecationWarnings",
    message=json.dumps(
        {
            CONFIGS: 'The `configs` property of `[plugins."io.containerd.grpc.v1.cri".registry]` is deprecated '
            "since containerd v1.5 and will be removed in containerd v2.3.Use `config_path` instead.",
            MIRRORS: 'The `mirrors` property of `[plugins."io.containerd.grpc.v1.cri".registry]` is deprecated '
            "since containerd v1.5 and will be removed in containerd v2.1.Use `config_path` instead.",
        }
    ),
)
WHEN = dt.datetime(2026, 11, 24, 11, 39, 41, tzinfo=dt.UTC)

# Every id containerd's pkg/deprecation defines at v1.7.24, v2.0.0, v2.1.9 and main.
UPSTREAM_IDS = [
    "pull-schema-1-image",
    "go-plugin-library",
    "cri-systemd-cgroup-v1",
    "cri-untrusted-workload-runtime",
    "cri-default-runtime",
    "cri-runtime-engine",
    "cri-runtime-root",
    "cri-registry-mirrors",
    "cri-registry-auths",
    "cri-registry-configs",
    "cri-api-v1alpha2",
    "aufs-snapshotter",
    "restart-logpath",
    "runtime-v1",
    "runtime-runc-v1",
    "cri-criu-path",
    "tracing-processor-config",
    "tracing-service-config",
    "cri-cni-bin-dir",
    "nri-v010-plugin",
]


def test_every_upstream_id_has_a_fix() -> None:
    table = fixes()
    assert sorted(table) == sorted(UPSTREAM_IDS)
    for fix in table.values():
        assert fix.fix and fix.command and fix.references, fix.id
        if fix.v2_table:
            assert fix.v2_table.startswith("plugins."), fix.id
        if fix.v3_table:
            assert "'" in fix.v3_table and '"' not in fix.v3_table, fix.id


@pytest.mark.parametrize(
    ("server", "condition", "expect"),
    [
        pytest.param(
            [Deprecation(MIRRORS, "m", WHEN), Deprecation(CONFIGS, "c", WHEN)],
            from_condition([RECORDED_CONDITION])[0],
            {MIRRORS: 2, CONFIGS: 2},
            id="both-sources-one-entry-each",
        ),
        pytest.param([Deprecation(MIRRORS, "m", WHEN)], {}, {MIRRORS: 1}, id="introspection-only"),
        pytest.param(
            [], from_condition([RECORDED_CONDITION])[0], {MIRRORS: 1, CONFIGS: 1}, id="condition-only"
        ),
        pytest.param(
            [Deprecation(MIRRORS, "m", WHEN), Deprecation(CONFIGS, "c", None)],
            {MIRRORS: "m"},
            {MIRRORS: 2, CONFIGS: 1},
            id="ignored-id-left-out-of-the-condition",
        ),
        pytest.param([], {}, {}, id="none"),
    ],
)
def test_gather_merges_without_duplicates(server: list, condition: dict, expect: dict) -> None:
    merged = gather(server, condition)
    assert {k: len(v.sources) for k, v in merged.items()} == expect
    for entry in merged.values():
        assert entry.message
        if entry.id in {d.id for d in server if d.last_occurrence}:
            assert entry.last_occurrence == WHEN.isoformat()


def test_condition_parsing() -> None:
    ids, problem = from_condition([RECORDED_CONDITION])
    assert problem is None and sorted(ids) == [CONFIGS, MIRRORS]
    assert from_condition([replace(RECORDED_CONDITION, status=True, message="")]) == ({}, None)
    ids, problem = from_condition([replace(RECORDED_CONDITION, message="not json")])
    assert ids == {} and problem and "not a JSON object" in problem


def run_probes(endpoint: str) -> tuple[list, list]:
    node = NodeContext(endpoint=endpoint, timeout=5.0)
    deprecations = DeprecationsProbe().run(node)
    runtime = RuntimeProbe().run(node)
    return deprecations.findings, runtime.findings


@pytest.mark.lab
@pytest.mark.root
def test_the_lab_runtime(lab) -> None:
    """The lab's own containerd: 1.6 cannot report (said so, as info); a newer one reports none."""
    findings, runtime = run_probes(lab.endpoint)
    [finding] = findings
    version = runtime[0].evidence["version"]
    if version.startswith("1.6"):
        assert finding.id == "deprecations.not-reported" and finding.severity is Severity.INFO
    else:
        assert finding.id == "deprecations.none" and finding.severity is Severity.OK


REGISTRY_V2 = (
    '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]\n  endpoint = ["https://mirror.example"]\n'
    '[plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".tls]\n  insecure_skip_verify = true\n'
)
IGNORE_CONFIGS_V2 = f'[plugins."io.containerd.grpc.v1.cri"]\n  ignore_deprecation_warnings = ["{CONFIGS}"]\n'
BIN_DIR_V3 = "[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dir = '/usr/lib/cni'\n"


@pytest.mark.lab
@pytest.mark.root
@pytest.mark.parametrize(
    ("series", "config", "version", "warnings", "infos"),
    [
        pytest.param("1.7", REGISTRY_V2, 2, {MIRRORS, CONFIGS}, set(), id="1.7-registry"),
        pytest.param("2", REGISTRY_V2, 2, {MIRRORS, CONFIGS}, set(), id="2.1-registry"),
        pytest.param("2", IGNORE_CONFIGS_V2 + REGISTRY_V2, 2, {MIRRORS}, {CONFIGS}, id="2.1-ignored"),
        pytest.param(
            "2", BIN_DIR_V3, 3, {"io.containerd.deprecation/cri-cni-bin-dir"}, set(), id="2.1-v3-cni-bin-dir"
        ),
    ],
)
def test_live_deprecations_one_finding_each(
    series: str, config: str, version: int, warnings: set, infos: set
) -> None:
    bin_dir = build_bin(series)
    with bare_containerd(bin_dir, config, version=version) as ctd:
        assert ctr_deprecation_ids(bin_dir, ctd.socket) == warnings | infos  # what containerd itself lists
        findings, runtime = run_probes(ctd.endpoint)
        reported = [f for f in findings if f.id == "containerd.deprecation"]
        assert len(reported) == len({f.subject["name"] for f in reported})  # one finding per id
        by_severity = {s: {f.subject["name"] for f in reported if f.severity is s} for s in Severity}
        assert by_severity[Severity.WARNING] == warnings and by_severity[Severity.INFO] == infos
        # The CRI condition carries the same ids: the runtime probe says only that the node stays Ready.
        condition = [f for f in runtime if f.subject.get("condition") == CONDITION]
        assert [(f.id, f.severity) for f in condition] == [("runtime.condition-false", Severity.INFO)] * bool(
            warnings
        )
        for finding in reported:
            assert finding.evidence["last_occurrence"]  # from the introspection list
            assert (len(finding.evidence["sources"]) == 2) is (finding.severity is Severity.WARNING)
            assert str(ctd.config) in finding.summary
        steps = "\n".join(f"{r.text}\n{r.command}" for f in reported for r in f.remediation)
        if MIRRORS in warnings:
            assert "/etc/containerd/certs.d/docker.io/hosts.toml" in steps
            assert '[host."https://mirror.example"]' in steps and "skip_verify" in steps
        if version == 3:
            assert 'replace bin_dir = "/usr/lib/cni" with bin_dirs = ["/usr/lib/cni"]' in steps
            assert "plugins.'io.containerd.cri.v1.runtime'.cni" in steps
