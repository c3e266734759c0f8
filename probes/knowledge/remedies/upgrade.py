"""Upgrading the very runtime binary a node runs, as a command to paste.

containerd runs the runc its config names (BinaryName) or its unit's PATH finds. Installing a new runc
somewhere else (``install runc.amd64 /usr/local/sbin/runc`` beside Debian's ``/usr/sbin/runc``) adds a second
one that ``runc --version`` may show while containerd keeps the old one. So the step upgrades the package that
installed that binary when a package database names it, and otherwise replaces that file itself. Neither
is run by a test: the tests never change the machine's binaries or packages.
"""

from __future__ import annotations

from probes.api import CHANGES_MACHINE, Remedy, untested
from probes.knowledge import known_issues
from probes.readers.host.packages import PackageRecord
from probes.shell import quote
from probes.versions import Version

#: How each package manager upgrades one installed package.
UPGRADE = {"dpkg": "apt-get install --only-upgrade {}", "rpm": "dnf upgrade {}"}


def upgrade_in_place(
    component: str, version: Version, path: str, package: PackageRecord | None, why: str
) -> Remedy:
    """The upgrade of ``component`` at ``path`` (a host path), which ``package`` installed if not None; ``why``
    is the knowledge base's words for the fix."""
    floors = known_issues.describe_floors(known_issues.upgrade_floors(component, version))
    target = (
        f"a release no warning or critical issue in nodedoc's knowledge base affects ({floors}), or a build whose "
        "changelog names the fixes"
        if floors
        else "a build whose changelog names the fixes"
    )
    running = "the runc containerd runs" if component == "runc" else f"the {component} that runs"
    if package is not None and package.manager in UPGRADE and package.prefix == "/":
        return untested(
            f"{why}: upgrade the {package.name} package, which installed {path}, {running}, to {target}; a "
            f"second {component} put elsewhere on PATH would change nothing containerd does",
            UPGRADE[package.manager].format(quote(package.name)),
            CHANGES_MACHINE,
        )
    # Not installed by the package manager (an upstream binary, or a package unpacked without installing it):
    # the package manager would upgrade some other copy, if any.
    replace = f"{why}: replace {path} itself, {running}, which the package manager did not install, with"
    if component != "runc":  # runc's release is one binary; others come as archives of several
        return Remedy(
            f"{replace} that file from {target}; installing it anywhere else leaves the old one running"
        )
    return untested(
        f"{replace} the new release's binary ({target}; the release's runc.arm64 on arm64); installing it "
        "anywhere else leaves containerd on the old one",
        f"install -m 755 runc.amd64 {quote(path)}",
        CHANGES_MACHINE,
    )


def issue_steps(
    issue: known_issues.KnownIssue, version: Version, path: str | None, package: PackageRecord | None
) -> list[Remedy]:
    """A known issue's steps for this node: each step with no command (the upgrade itself) becomes the upgrade
    of the binary at ``path``; without a path it stays words."""
    return [
        upgrade_in_place(issue.component, version, path, package, step.text)
        if step.command is None and path
        else step
        for step in issue.remediation
    ]
