"""The versions probe with fake binaries under a temporary host root, on this machine, and on the lab."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from gobinaries import write_go_binary
from test_binaries import unpacked_runc

from probes.api import NOT_TESTED, Severity
from probes.builtin.versions import VersionsProbe
from probes.knowledge import known_issues
from probes.node import NodeContext


def run(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    containerd: str | None = None,
    runc: str | None = None,
    kubelet: str | None = None,
    today: dt.date = dt.date(2024, 3, 1),
) -> tuple[list, dict]:
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    if containerd:
        write_go_binary(
            root, "/usr/bin/containerd", "containerd", containerd, "7c3aca7a610df76212171d200ca3811ff6096eb8"
        )
    if runc:
        write_go_binary(root, "/usr/sbin/runc", "runc", runc, "v1.1.12-0-g51d5e946")
    if kubelet:
        write_go_binary(root, "/usr/bin/kubelet", "kubelet", kubelet)
    (root / "proc").mkdir(exist_ok=True)
    probe = VersionsProbe()
    probe.today = today
    outcome = probe.run(NodeContext(host_root=root, proc_root=root / "proc"))
    return outcome.findings, outcome.facts


def issues(findings: list) -> dict[str, Severity]:
    return {f.subject["issue"]: f.severity for f in findings if f.id == "versions.known-issue"}


@pytest.mark.parametrize(
    ("containerd", "runc", "expect"),
    [
        pytest.param(
            "v1.6.14", "1.1.12", {"containerd-7843": Severity.CRITICAL}, id="seed001-containerd-1.6.14"
        ),
        pytest.param("v1.6.15", "1.1.12", {}, id="containerd-1.6.15"),
        pytest.param(
            "v1.6.28",
            "1.0.0-rc93",
            {"runc-seccomp-pipe-deadlock": Severity.CRITICAL, "CVE-2024-21626": Severity.CRITICAL},
            id="runc-rc93",
        ),
        pytest.param("v1.6.28", "1.1.5+ds1-1+deb12u1", {}, id="runc-debian-build-in-fixed-builds"),
        pytest.param("v1.6.28", "1.1.5+ds1-2", {"CVE-2024-21626": Severity.CRITICAL}, id="runc-other-build"),
        pytest.param("v1.6.14+k3s1", "1.1.12", {}, id="k3s-early-7843-fix"),
        pytest.param("v1.6.14-k3s2", "1.1.12", {}, id="k3s-later-build"),
        pytest.param("v1.6.13-k3s1", "1.1.12", {"containerd-7843": Severity.CRITICAL}, id="k3s-before-fix"),
    ],
)
def test_known_issues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, containerd: str, runc: str, expect: dict[str, Severity]
) -> None:
    findings, facts = run(tmp_path, monkeypatch, containerd=containerd, runc=runc)
    tracked = {"containerd-7843", "runc-seccomp-pipe-deadlock", "CVE-2024-21626"}
    assert {k: v for k, v in issues(findings).items() if k in tracked} == expect
    assert facts["versions"]["containerd"]["version"] == containerd
    for f in findings:
        if f.id == "versions.known-issue":
            assert f.subject["component"] in ("containerd", "runc") and f.evidence["affected_range"]
            assert all(r.command for r in f.remediation)


def debian_tree(root: Path, package: str, binary: str, *, changelog: bool = True, status: str = "") -> None:
    """This machine's real Debian package of ``binary`` under ``root``: the file, its dpkg records and
    (unless ``changelog`` is False, as in images that drop /usr/share/doc) its changelog."""
    real = Path(binary).resolve()
    if not real.is_file() or not Path(f"/var/lib/dpkg/info/{package}.list").is_file():
        pytest.fail(f"Debian's {package} is not installed here (scripts/install-deps installs it)")
    files = [real, Path(f"/var/lib/dpkg/info/{package}.list"), Path(f"/var/lib/dpkg/info/{package}.md5sums")]
    if changelog:
        files.append(Path(f"/usr/share/doc/{package}/changelog.Debian.gz"))
    for f in files:
        target = root / str(f).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    stanza = next(
        s for s in Path("/var/lib/dpkg/status").read_text().split("\n\n") if f"Package: {package}\n" in s
    )
    (root / "var/lib/dpkg/status").write_text(status or stanza + "\n")


def debian_runc_version() -> str:
    status = Path("/var/lib/dpkg/status").read_text().split("\n\n")
    stanza = next(s for s in status if "Package: runc\n" in s)
    return next(line.split(": ", 1)[1] for line in stanza.splitlines() if line.startswith("Version: "))


def by_issue(findings: list, finding_id: str) -> dict[str, object]:
    return {f.subject["issue"]: f for f in findings if f.id == finding_id}


def test_debian_runc_fix_read_from_its_changelog_the_rest_stays_critical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian_tree(tmp_path, "runc", "/usr/sbin/runc")
    findings, facts = run(tmp_path, monkeypatch)
    runc = facts["versions"]["runc"]
    assert runc["version"] == debian_runc_version() and runc["binary"]["package"]["checksum"] == "matches"
    assert "dpkg package runc" in runc["source"] and "/var/lib/dpkg/info/runc.list" in runc["source"]
    fixed = by_issue(findings, "versions.backported-fix")
    affected = by_issue(findings, "versions.known-issue")
    if debian_runc_version() == "1.1.5+ds1-1+deb12u1":
        leaky = fixed["CVE-2024-21626"]
        assert leaky.evidence["fix_evidence_from"] == "/usr/share/doc/runc/changelog.Debian.gz"
        assert "internally leaked fds" in leaky.evidence["fix_evidence"]
        assert "CVE-2024-21626" not in affected
    for cve in ("CVE-2025-31133", "CVE-2025-52565", "CVE-2025-52881"):
        if cve in affected:
            assert affected[cve].severity is Severity.CRITICAL
            assert "names no fix for " + cve in affected[cve].summary
        else:
            assert cve in fixed, f"{cve}: neither affected nor shown fixed"


def binary_name(root: Path, runc: str) -> None:
    """containerd's config under ``root`` names ``runc`` as the runtime's BinaryName."""
    config = root / "etc/containerd/config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        f'BinaryName = "{runc}"\n'
    )


def test_packaged_runc_is_upgraded_through_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's runc, which containerd runs: the upgrade is of that package, not a second runc on PATH; the
    least release to take is the whole knowledge base's, and the step says it was not run on a node."""
    debian_tree(tmp_path, "runc", "/usr/sbin/runc")
    findings, _ = run(tmp_path, monkeypatch)
    affected = by_issue(findings, "versions.known-issue")
    if "CVE-2025-31133" not in affected:
        pytest.skip(f"this machine's runc {debian_runc_version()} carries the 2025 fixes")
    breakout = affected["CVE-2025-31133"]
    [upgrade] = [
        r for r in breakout.remediation if r.command and "runc" in r.command and "changelog" not in r.command
    ]
    assert upgrade.command == "apt-get install --only-upgrade runc"
    assert "/usr/sbin/runc" in upgrade.text and "1.2.8+, 1.3.3+ or 1.4.0+" in upgrade.text
    assert "not tested on a node" in upgrade.text
    assert (
        "The least to upgrade to that no warning or critical known issue affects: 1.2.8+" in breakout.summary
    )
    assert not [r for r in breakout.remediation if r.command and "install -m" in r.command]


def test_unpackaged_runc_is_replaced_where_containerd_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream runc containerd's config names (BinaryName), beside another on PATH: the step replaces that
    very file, never installs one elsewhere; the path is quoted as the node gave it."""
    configured = "/opt/run c/runc"
    write_go_binary(tmp_path, configured, "runc", "1.1.12", "v1.1.12-0-g51d5e946")
    write_go_binary(tmp_path, "/usr/sbin/runc", "runc", "1.3.3", "v1.3.3-0-g1234567")
    binary_name(tmp_path, configured)
    findings, facts = run(tmp_path, monkeypatch)
    assert facts["versions"]["runc"]["path"] == configured
    breakout = by_issue(findings, "versions.known-issue")["CVE-2025-31133"]
    [upgrade] = [r for r in breakout.remediation if r.command]
    assert upgrade.command == "install -m 755 runc.amd64 '/opt/run c/runc'"
    assert f"replace {configured} itself" in upgrade.text and "not tested on a node" in upgrade.text


def test_runc_from_an_unpacked_package_is_replaced_not_apt_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Debian's runc unpacked (dpkg-deb -R) and named by BinaryName: its build and changelog are the package's,
    but apt would upgrade some other runc, so the step replaces that file."""
    binary = unpacked_runc(tmp_path, "/opt/runc-deb")
    binary_name(tmp_path, binary)
    findings, facts = run(tmp_path, monkeypatch)
    assert facts["versions"]["runc"]["package"] == debian_runc_version()
    affected = by_issue(findings, "versions.known-issue")
    if "CVE-2025-31133" not in affected:
        pytest.skip(f"this machine's runc {debian_runc_version()} carries the 2025 fixes")
    [upgrade] = [
        r for r in affected["CVE-2025-31133"].remediation if r.command and "changelog" not in r.command
    ]
    assert upgrade.command == f"install -m 755 runc.amd64 {binary}"
    # Its changelog is the unpacked tree's: shown by path, and not claimed as run by the lab test.
    [changelog] = [
        r for r in affected["CVE-2025-31133"].remediation if r.command and "changelog" in r.command
    ]
    assert changelog.command.startswith("zless /opt/runc-deb/")
    assert NOT_TESTED in changelog.text and not changelog.proven


def test_without_the_changelog_the_knowledge_base_build_list_is_the_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian_tree(tmp_path, "runc", "/usr/sbin/runc", changelog=False)
    findings, _ = run(tmp_path, monkeypatch)
    if debian_runc_version() != "1.1.5+ds1-1+deb12u1":
        pytest.skip(
            f"the knowledge base's Debian build is 1.1.5+ds1-1+deb12u1; this is {debian_runc_version()}"
        )
    leaky = by_issue(findings, "versions.backported-fix")["CVE-2024-21626"]
    assert leaky.evidence["fix_evidence_from"] == "https://security-tracker.debian.org/tracker/CVE-2024-21626"


def test_unknown_build_without_changelog_keeps_the_critical(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stanza = "Package: runc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.1.5+ds1-1\n"
    debian_tree(tmp_path, "runc", "/usr/sbin/runc", changelog=False, status=stanza)
    findings, facts = run(tmp_path, monkeypatch)
    assert facts["versions"]["runc"]["version"] == "1.1.5+ds1-1"
    leaky = by_issue(findings, "versions.known-issue")["CVE-2024-21626"]
    assert leaky.severity is Severity.CRITICAL
    assert "no /usr/share/doc/runc/changelog.Debian.gz on the node" in leaky.summary
    assert leaky.remediation[-1].command == "apt changelog runc | less"


@pytest.mark.parametrize(
    ("kubelet", "containerd", "expect"),
    [
        pytest.param("v1.26.0", "v1.6.14", Severity.WARNING, id="1.26-with-1.6.14"),
        pytest.param("v1.26.0", "v1.6.28", Severity.OK, id="1.26-with-1.6.28"),
        pytest.param("v1.30.2", "v1.5.18", Severity.WARNING, id="1.30-with-1.5"),
        pytest.param("v1.26.0", "1.6.14~ds1-1", Severity.WARNING, id="1.26-with-distribution-1.6.14"),
    ],
)
def test_combination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kubelet: str, containerd: str, expect: Severity
) -> None:
    findings, facts = run(tmp_path, monkeypatch, containerd=containerd, runc="1.1.12", kubelet=kubelet)
    combo = next(
        f for f in findings if f.id in ("versions.unsupported-combination", "versions.supported-combination")
    )
    assert combo.severity is expect
    assert facts["versions"]["kubelet"]["version"] == kubelet
    if combo.severity is Severity.WARNING:  # the upgrade it advises is to releases the KB does not flag
        advised = re.findall(r"(\d+\.\d+\.\d+)\+", combo.remediation[0].text)
        assert advised
        for version in advised:
            assert not [
                m.issue.id
                for m in known_issues.known_issues_for("containerd", version)
                if m.affected and m.issue.severity.rank >= Severity.WARNING.rank
            ], version


@pytest.mark.parametrize(
    ("containerd", "today", "expect"),
    [
        pytest.param("v1.6.28", dt.date(2025, 9, 1), Severity.WARNING, id="1.6-after-eol"),
        pytest.param("v1.6.28", dt.date(2025, 8, 1), None, id="1.6-before-eol"),
        pytest.param("1.6.20~ds1", dt.date(2025, 9, 1), Severity.INFO, id="debian-1.6-after-eol"),
    ],
)
def test_eol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, containerd: str, today: dt.date, expect: Severity | None
) -> None:
    findings, _ = run(tmp_path, monkeypatch, containerd=containerd, runc="1.1.12", today=today)
    eol = next((f for f in findings if f.id == "versions.eol"), None)
    assert (eol.severity if eol else None) is expect


def test_this_machine_verdicts_rest_on_its_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian 12's runc and containerd, read from the live root: every warning or critical is an issue the
    package's own changelog names no fix for, and every fix shown cites where it was found."""
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    outcome = VersionsProbe().run(NodeContext(endpoint="unix:///nonexistent/nodedoc-test.sock"))
    versions = outcome.facts["versions"]
    assert "kernel" in versions and versions["runc"]["binary"]["package"]["manager"] == "dpkg"
    for f in outcome.findings:
        if f.id == "versions.known-issue" and versions[f.subject["component"]].get("package"):
            assert "names no fix for " + f.subject["issue"] in f.summary, f.summary
        if f.id == "versions.backported-fix":
            assert f.evidence["fix_evidence_from"]


@pytest.mark.lab
def test_lab_versions(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        lab = request.getfixturevalue("lab")
    except pytest.FixtureLookupError:
        pytest.skip("no `lab` fixture in tests/conftest.py yet")
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    outcome = VersionsProbe().run(NodeContext(endpoint=lab.endpoint))
    ctd = outcome.facts["versions"]["containerd"]
    assert ctd["source"] == "CRI Version" and ctd["cri_api"] == "v1"
    serious = [f for f in outcome.findings if f.severity.rank >= Severity.WARNING.rank]
    assert {f.id for f in serious} <= {"versions.known-issue"}
    for f in serious:  # Debian's builds: each verdict says what nodedoc looked at for a backport
        if "~ds" in f.subject["version"] or "+ds" in f.subject["version"]:
            assert f.evidence["distribution_build"], f.subject


#: containerd's 2024-2025 CVEs that Debian backported into 1.6.20~ds1-1+deb12u3 and 1.7.24~ds1-6+deb13u1.
BACKPORTED_2025 = ("CVE-2024-40635", "CVE-2024-25621", "CVE-2025-64329")


@pytest.mark.lab
@pytest.mark.every_runtime
def test_each_lab_build_is_judged_by_its_own_package(lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The containerd the lab runs, wherever it is: Debian 12's installed package (1.6), or Debian's 1.7 and
    2.x packages unpacked in the cache with their DEBIAN/control and md5sums (dpkg-deb -R). Its exact build
    and changelog are read, so the fixes Debian backported into 1.6.20 and 1.7.24 are reported as such
    (info), never as known issues; 2.1.9 has them upstream."""
    monkeypatch.delenv("NODEDOC_CONTAINERD_CONFIG", raising=False)
    outcome = VersionsProbe().run(NodeContext(endpoint=lab.endpoint))
    ctd = outcome.facts["versions"]["containerd"]
    assert ctd["package"] == lab.build.version and ctd["binary"]["package"]["checksum"] == "matches"
    assert Path(ctd["path"]).resolve() == lab.build.containerd.resolve()
    fixed = by_issue(outcome.findings, "versions.backported-fix")
    affected = {
        i
        for i, f in by_issue(outcome.findings, "versions.known-issue").items()
        if f.subject["component"] == "containerd"
    }
    for cve in BACKPORTED_2025:
        assert cve not in affected, (cve, lab.build.version)
        if lab.build.upstream_version.startswith(("1.6.", "1.7.")):
            assert fixed[cve].severity is Severity.INFO and fixed[cve].evidence["fix_evidence_from"].endswith(
                "/usr/share/doc/containerd/changelog.Debian.gz"
            ), fixed[cve].evidence
        else:
            assert cve not in fixed  # fixed upstream: nothing to say


RPM_SPEC = """Name: runc
Version: 1.1.5
Release: 7.nodedoctest
Summary: Debian's runc binary, packaged as an RPM for nodedoc's tests
License: Apache-2.0
%description
A real rpmdb entry for a real runc binary.
%install
mkdir -p %{buildroot}/usr/sbin
cp /usr/sbin/runc %{buildroot}/usr/sbin/runc
%files
/usr/sbin/runc
%changelog
* Fri Feb 02 2024 A Packager <a@example.org> - 1.1.5-7.nodedoctest
- Backport the fix for CVE-2024-21626 (leaked file descriptors)
* Wed Mar 29 2023 A Packager <a@example.org> - 1.1.5-1.nodedoctest
- New upstream version 1.1.5
"""


@pytest.fixture(scope="module")
def rpm_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A host root whose /usr/sbin/runc was installed by rpm into an sqlite rpmdb (rpm 4.16+ format)."""
    if not (shutil.which("rpmbuild") and shutil.which("rpm")):
        pytest.fail("rpm and rpmbuild are not installed (scripts/install-deps installs Debian's rpm)")
    work = tmp_path_factory.mktemp("rpm")
    (work / "runc.spec").write_text(RPM_SPEC)
    quiet = {"capture_output": True, "text": True, "timeout": 300, "check": True}
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {work}/top", "--define", "debug_package %{nil}"]
        + ["--define", "__brp_strip /bin/true", "--define", "__strip /bin/true", str(work / "runc.spec")],
        **quiet,
    )
    [package] = (work / "top/RPMS").rglob("*.rpm")
    root = work / "root"
    subprocess.run(
        ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"]
        + ["-i", "--nodeps", "--noscripts", "--ignorearch", str(package)],
        **quiet,
    )
    return root


def test_rpm_package_and_its_changelog_are_read_from_the_rpmdb(rpm_node: Path, monkeypatch) -> None:
    findings, facts = run(rpm_node, monkeypatch)
    runc = facts["versions"]["runc"]
    assert runc["version"] == "1.1.5-7.nodedoctest"
    assert runc["binary"]["package"] == {
        "manager": "rpm",
        "package": "runc",
        "version": "1.1.5-7.nodedoctest",
        "file_listed_in": "/var/lib/rpm/rpmdb.sqlite",
        "version_from": "/var/lib/rpm/rpmdb.sqlite",
        "checksum": "matches",
    }
    leaky = by_issue(findings, "versions.backported-fix")["CVE-2024-21626"]
    assert leaky.evidence["fix_evidence_from"] == "/var/lib/rpm/rpmdb.sqlite (runc changelog)"
    assert "leaked file descriptors" in leaky.evidence["fix_evidence"]
    breakout = by_issue(findings, "versions.known-issue")["CVE-2025-31133"]
    assert breakout.severity is Severity.CRITICAL and "names no fix for CVE-2025-31133" in breakout.summary
    assert breakout.remediation[-1].command == "rpm -q --changelog runc | less"


def test_an_rpm_database_nodedoc_cannot_read_is_named(tmp_path: Path, monkeypatch) -> None:
    write_go_binary(tmp_path, "/usr/sbin/runc", "runc", "1.1.12", "v1.1.12-0-g51d5e946")
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    (tmp_path / "var/lib/rpm/Packages").write_bytes(b"\x00" * 4096)
    _, facts = run(tmp_path, monkeypatch)
    said = facts["versions"]["runc"]["binary"]["version_from"]
    assert any(
        "/var/lib/rpm/Packages is in Berkeley DB format, which nodedoc does not read" in s for s in said
    )


def test_the_changelog_step_shows_the_changelog_nodedoc_read() -> None:
    """On this machine's own Debian runc and containerd: where a distribution build is judged on its upstream
    number (its changelog names no fix) or its branch is past end of life, the step printed to read that
    changelog opens the very file nodedoc read, run as printed (zless prints it when its output is not a
    terminal)."""
    from conftest import skip_or_fail

    from probes.registry import run_probes, select

    [result] = run_probes(NodeContext(), select(["versions"]))
    steps = {
        (f.subject["component"], f.subject["version"], r.command): r
        for f in result.findings
        for r in f.remediation
        if r.proven == known_issues.CHANGELOG_PROOF
    }
    if not steps:
        skip_or_fail("no distribution build here whose changelog names no fix for a known issue")
    for (component, version, command), step in steps.items():
        assert command.startswith("zless /usr/share/doc/") and command.endswith("/changelog.Debian.gz")
        assert NOT_TESTED not in step.text
        assert f"up to {version}" in step.text or "still supports this build" in step.text
        shown = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        package = command.split("/")[4]
        # A Debian changelog starts with its newest entry: "<package> (<version>) <suite>; urgency=...".
        assert shown.stdout.startswith(f"{package} ({version}) "), (component, shown.stdout[:200])
