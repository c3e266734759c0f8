"""Per-user pipe accounting against ``fs.pipe-user-pages-soft`` and ``-hard``.

The kernel charges each pipe's pages to the real uid of the process that created it. When a uid's total
is over the soft limit and the creating process has neither CAP_SYS_RESOURCE nor CAP_SYS_ADMIN, a new pipe
gets 2 pages (1 page before Linux 5.14) instead of 16. Container root is host uid 0, so every container
running as root shares one budget with the host's root.

/proc does not show the creator, so the totals here are an estimate: each pipe is counted once, against
the real uid of its oldest holder (usually the creator, which made the pipe before handing an end on).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from probes.readers.procfs.pipes import PipeState

PIPE_DEF_PAGES = 16
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24
_PRIVILEGE_MASK = (1 << CAP_SYS_ADMIN) | (1 << CAP_SYS_RESOURCE)

SYSCTL_SOFT = "fs/pipe-user-pages-soft"
SYSCTL_HARD = "fs/pipe-user-pages-hard"
SYSCTL_MAX_SIZE = "fs/pipe-max-size"


@dataclass(frozen=True)
class PipeLimits:
    """The pipe sysctls and what a shrunken pipe looks like on this kernel."""

    soft_pages: int | None
    hard_pages: int | None
    max_size: int | None
    page_size: int
    kernel: str
    shrunk_pages: int

    @property
    def shrunk_bytes(self) -> int:
        return self.shrunk_pages * self.page_size

    @property
    def default_bytes(self) -> int:
        return PIPE_DEF_PAGES * self.page_size

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["shrunk_bytes"] = self.shrunk_bytes
        data["default_bytes"] = self.default_bytes
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipeLimits:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Credentials:
    """A process's real uid and whether it may exceed the soft limit without its pipes shrinking."""

    uid: int
    cap_eff: int

    @property
    def privileged(self) -> bool:
        """Holds CAP_SYS_RESOURCE or CAP_SYS_ADMIN: its new pipes are never shrunk."""
        return bool(self.cap_eff & _PRIVILEGE_MASK)


@dataclass
class UserPipeUsage:
    """One uid's pipes: how many, how many pages, how many shrunken, against the limits."""

    uid: int
    pipes: int = 0
    pages: int = 0
    shrunk_pipes: int = 0
    unmeasured_pipes: int = 0
    pids: list[int] = field(default_factory=list)
    privileged_pids: list[int] = field(default_factory=list)
    soft_limit: int | None = None
    hard_limit: int | None = None

    @property
    def over_soft(self) -> bool:
        return bool(self.soft_limit) and self.pages > (self.soft_limit or 0)

    @property
    def over_hard(self) -> bool:
        return bool(self.hard_limit) and self.pages > (self.hard_limit or 0)

    @property
    def privilege(self) -> str:
        """``all``, ``some`` or ``none`` of the uid's pipe holders have CAP_SYS_RESOURCE/CAP_SYS_ADMIN."""
        if not self.privileged_pids:
            return "none"
        return "all" if len(self.privileged_pids) == len(self.pids) else "some"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(over_soft=self.over_soft, over_hard=self.over_hard, privilege=self.privilege)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UserPipeUsage:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def kernel_shrunk_pages(release: str) -> int:
    """Pages a pipe gets once its user is over the soft limit: 1 before Linux 5.14, 2 from 5.14."""
    match = re.match(r"(\d+)\.(\d+)", release)
    if not match:
        return 2
    return 2 if (int(match[1]), int(match[2])) >= (5, 14) else 1


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_pipe_limits(proc_root: Path | str = "/proc") -> PipeLimits:
    """The pipe sysctls (None where unreadable), page size and kernel release."""
    sysctl = Path(proc_root) / "sys"
    try:
        release = (sysctl / "kernel/osrelease").read_text().strip()
    except OSError:
        release = os.uname().release
    return PipeLimits(
        soft_pages=_read_int(sysctl / SYSCTL_SOFT),
        hard_pages=_read_int(sysctl / SYSCTL_HARD),
        max_size=_read_int(sysctl / SYSCTL_MAX_SIZE),
        page_size=os.sysconf("SC_PAGE_SIZE"),
        kernel=release,
        shrunk_pages=kernel_shrunk_pages(release),
    )


def _first_number(line: bytes, base: int) -> int | None:
    """The first value after ``Key:`` on a status line, None when it is not a number."""
    parts = line.split()
    try:
        return int(parts[1], base)
    except (IndexError, ValueError):
        return None


def read_credentials(proc_root: Path | str, pid: int) -> Credentials:
    """Real uid and effective capabilities from /proc/PID/status; OSError when the process is gone."""
    with open(f"{proc_root}/{pid}/status", "rb") as f:
        text = f.read()
    uid = cap = None
    for line in text.splitlines():
        if line.startswith(b"Uid:"):
            uid = _first_number(line, 10)
        elif line.startswith(b"CapEff:"):
            cap = _first_number(line, 16)
    if uid is None:
        raise FileNotFoundError(f"{proc_root}/{pid}/status has no readable Uid line")
    return Credentials(uid=uid, cap_eff=cap or 0)


def account_pipes(
    holders: dict[int, list[tuple[int, int]]],
    states: dict[int, PipeState],
    credentials: dict[int, Credentials],
    start_ticks: dict[int, int],
    limits: PipeLimits,
) -> list[UserPipeUsage]:
    """Pipes and pages per uid, each pipe charged to its oldest holder's real uid; busiest uid first."""
    usage: dict[int, UserPipeUsage] = {}

    def user(uid: int) -> UserPipeUsage:
        if uid not in usage:
            usage[uid] = UserPipeUsage(uid=uid, soft_limit=limits.soft_pages, hard_limit=limits.hard_pages)
        return usage[uid]

    for pid, creds in credentials.items():
        entry = user(creds.uid)
        entry.pids.append(pid)
        if creds.privileged:
            entry.privileged_pids.append(pid)
    for inode, fds in holders.items():
        pids = [pid for pid, _fd in fds if pid in credentials]
        if not pids:
            continue
        oldest = min(pids, key=lambda p: (start_ticks.get(p, 0), p))
        entry = user(credentials[oldest].uid)
        entry.pipes += 1
        state = states.get(inode)
        if state is None or state.capacity is None:
            entry.unmeasured_pipes += 1
            entry.pages += PIPE_DEF_PAGES  # the likeliest size; counted so the total is not low
            continue
        pages = max(1, state.capacity // limits.page_size)
        entry.pages += pages
        if pages == limits.shrunk_pages:
            entry.shrunk_pipes += 1
    for entry in usage.values():
        entry.pids.sort()
        entry.privileged_pids.sort()
    return sorted(usage.values(), key=lambda u: (-u.pages, u.uid))


def holders_of_uid(usage: Iterable[UserPipeUsage], uid: int) -> UserPipeUsage | None:
    return next((u for u in usage if u.uid == uid), None)
