"""The container runtime's processes from /proc: containerd, its shims, runc invocations and runc inits.

One pass over /proc reads every process's ``stat`` (comm, state, parent, start time) and its pipe fds, so
that the runtime's processes can be shown with their parent chain, and every pipe with its other holders
and its owner's pipe budget. Only the runtime's processes get their cmdline, wchan and fd ends read.

A process that exits during the scan, or whose fds cannot be read, is skipped and counted, never an error.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.errors import NodedocError
from probes.readers.procfs.pipe_accounting import (
    Credentials,
    PipeLimits,
    UserPipeUsage,
    account_pipes,
    read_credentials,
    read_pipe_limits,
)
from probes.readers.procfs.pipes import PipeEnd, PipePeer, PipeState, measure_pipes, pipe_end, pipe_fds

#: comm of runc's init stages (nsexec names them; 15 characters at most).
RUNC_INIT_COMMS = frozenset({"runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]"})
#: containerd-shim, containerd-shim-runc-v2 and -runhcs all show as this 15-character comm.
SHIM_COMM = "containerd-shim"
RUNC_SUBCOMMANDS = frozenset(
    {
        "checkpoint",
        "create",
        "delete",
        "events",
        "exec",
        "features",
        "init",
        "kill",
        "list",
        "pause",
        "ps",
        "restore",
        "resume",
        "run",
        "spec",
        "start",
        "state",
        "update",
    }
)
#: runc options that take a value (global and per subcommand), so the container id can be told apart.
_RUNC_VALUE_OPTIONS = frozenset(
    {
        "--root",
        "--log",
        "--log-format",
        "--criu",
        "--rootless",
        "-b",
        "--bundle",
        "--console-socket",
        "--pid-file",
        "--preserve-fds",
        "--cwd",
        "-e",
        "--env",
        "-p",
        "--process",
        "--process-label",
        "--apparmor",
        "-u",
        "--user",
        "-c",
        "--cap",
        "--cgroup",
        "--additional-gids",
        "-g",
        "--format",
        "-f",
    }
)
_CONTAINER_ID = re.compile(r"[0-9a-f]{64}")


class ProcfsUnreadable(NodedocError):
    """The proc filesystem itself cannot be listed."""


@dataclass
class RuntimeProcess:
    """One process of the container runtime, as the on-call engineer needs to see it."""

    pid: int
    ppid: int
    kind: str  # containerd | shim | runc | runc-init
    comm: str
    state: str
    age_s: float
    cmdline: list[str] = field(default_factory=list)
    uid: int | None = None
    privileged: bool | None = None
    wchan: str = ""
    ancestors: list[int] = field(default_factory=list)
    container_id: str | None = None
    container_id_from: str | None = None  # runc-args | shim-args | cgroup | parent
    runc_command: str | None = None
    shim_namespace: str | None = None
    shim_address: str | None = None
    pipes: list[PipeEnd] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "pipes"}
        data["age_s"] = round(self.age_s, 1)
        data["pipes"] = [p.to_dict() for p in self.pipes]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeProcess:
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data and name != "pipes"}
        return cls(**fields, pipes=[PipeEnd.from_dict(p) for p in data.get("pipes") or []])


@dataclass
class RuntimeScan:
    """Everything one pass over /proc found: the runtime's processes, pipe budgets and what was skipped."""

    processes: list[RuntimeProcess]
    users: list[UserPipeUsage]
    limits: PipeLimits
    scanned: int
    vanished: int
    fds_unreadable: int
    pipes: int
    duration_ms: float
    comms: dict[int, str] = field(default_factory=dict, repr=False)

    def of_kind(self, kind: str) -> list[RuntimeProcess]:
        return [p for p in self.processes if p.kind == kind]

    def by_pid(self, pid: int) -> RuntimeProcess | None:
        return next((p for p in self.processes if p.pid == pid), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "processes": [p.to_dict() for p in self.processes],
            "users": [u.to_dict() for u in self.users],
            "limits": self.limits.to_dict(),
            "scanned": self.scanned,
            "vanished": self.vanished,
            "fds_unreadable": self.fds_unreadable,
            "pipes": self.pipes,
            "duration_ms": round(self.duration_ms, 1),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeScan:
        return cls(
            processes=[RuntimeProcess.from_dict(p) for p in data["processes"]],
            users=[UserPipeUsage.from_dict(u) for u in data["users"]],
            limits=PipeLimits.from_dict(data["limits"]),
            scanned=data["scanned"],
            vanished=data["vanished"],
            fds_unreadable=data["fds_unreadable"],
            pipes=data["pipes"],
            duration_ms=data["duration_ms"],
        )


@dataclass(frozen=True)
class _Stat:
    comm: str
    state: str
    ppid: int
    start_ticks: int


def _read_stat(proc_root: str, pid: int) -> _Stat:
    fd = os.open(f"{proc_root}/{pid}/stat", os.O_RDONLY)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    close = data.rfind(b")")
    rest = data[close + 2 :].split()
    return _Stat(
        comm=data[data.find(b"(") + 1 : close].decode(errors="replace"),
        state=rest[0].decode(),
        ppid=int(rest[1]),
        start_ticks=int(rest[19]),
    )


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def _read_cmdline(proc_root: str, pid: int) -> list[str]:
    raw = _read_text(f"{proc_root}/{pid}/cmdline")
    return raw.rstrip("\0").split("\0") if raw else []


def classify(comm: str, cmdline: list[str] | None) -> str | None:
    """Which runtime part a process is from its comm (and cmdline for runc), None when none."""
    if comm in RUNC_INIT_COMMS:
        return "runc-init"
    if comm == "containerd":
        return "containerd"
    if comm.startswith(SHIM_COMM):
        return "shim"
    if comm == "runc":
        return "runc-init" if runc_subcommand(cmdline or []) == "init" else "runc"
    return None


def runc_subcommand(argv: list[str]) -> str | None:
    """The runc subcommand in a runc command line, skipping global options and their values."""
    args = iter(argv[1:])
    for arg in args:
        if arg.startswith("-"):
            if "=" not in arg and arg in _RUNC_VALUE_OPTIONS:
                next(args, None)
            continue
        return arg if arg in RUNC_SUBCOMMANDS else None
    return None


def runc_container_id(argv: list[str]) -> str | None:
    """The container id a runc invocation names: its first positional argument after the subcommand."""
    seen_sub = False
    args = iter(argv[1:])
    for arg in args:
        if arg.startswith("-"):
            if "=" not in arg and arg in _RUNC_VALUE_OPTIONS:
                next(args, None)
            continue
        if not seen_sub:
            seen_sub = True
            continue
        return arg
    return None


def shim_args(argv: list[str]) -> dict[str, str]:
    """``-namespace``, ``-id``, ``-address``, ``-workdir`` of a containerd shim's command line."""
    found: dict[str, str] = {}
    for i, arg in enumerate(argv[1:], start=1):
        key = arg.lstrip("-")
        if arg.startswith("-") and key in {"namespace", "id", "address", "workdir"} and i + 1 < len(argv):
            found[key] = argv[i + 1]
    return found


def _uptime(proc_root: str) -> float:
    try:
        return float(_read_text(f"{proc_root}/uptime").split()[0])
    except (OSError, ValueError, IndexError):
        return time.clock_gettime(time.CLOCK_BOOTTIME)


def _cgroup_container_id(proc_root: str, pid: int) -> str | None:
    try:
        ids = _CONTAINER_ID.findall(_read_text(f"{proc_root}/{pid}/cgroup"))
    except OSError:
        return None
    return ids[-1] if ids else None


def scan_runtime(proc_root: Path | str = "/proc") -> RuntimeScan:
    """Read the runtime's process tree, every pipe's size and fill, and each uid's pipe budget."""
    started = time.monotonic()
    root = str(proc_root)
    try:
        names = os.listdir(root)
    except OSError as exc:
        raise ProcfsUnreadable(f"cannot list {root}: {exc.strerror or exc}") from None
    ticks = os.sysconf("SC_CLK_TCK")
    uptime = _uptime(root)
    stats: dict[int, _Stat] = {}
    fds_of: dict[int, dict[int, int]] = {}
    holders: dict[int, list[tuple[int, int]]] = {}
    vanished = unreadable = 0
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            stats[pid] = _read_stat(root, pid)
        except (FileNotFoundError, ProcessLookupError):
            vanished += 1
            continue
        except (OSError, ValueError, IndexError):
            unreadable += 1
            continue
        try:
            fds = pipe_fds(root, pid)
        except (FileNotFoundError, ProcessLookupError):
            vanished += 1
            del stats[pid]
            continue
        except OSError:
            unreadable += 1
            continue
        if fds:
            fds_of[pid] = fds
            for fd, inode in fds.items():
                holders.setdefault(inode, []).append((pid, fd))

    credentials: dict[int, Credentials] = {}
    for pid in list(fds_of):
        try:
            credentials[pid] = read_credentials(root, pid)
        except OSError:
            vanished += 1
            fds_of.pop(pid)
    holders = {
        inode: kept
        for inode, fds in holders.items()
        if (kept := [(pid, fd) for pid, fd in fds if pid in fds_of])
    }
    states = measure_pipes(root, holders)
    limits = read_pipe_limits(root)
    users = account_pipes(holders, states, credentials, {p: s.start_ticks for p, s in stats.items()}, limits)

    processes: list[RuntimeProcess] = []
    for pid, st in stats.items():
        kind = classify(st.comm, None)
        if kind is None:
            continue
        proc = _runtime_process(root, pid, st, kind, stats, uptime, ticks, credentials)
        if proc is None:
            vanished += 1
            continue
        proc.pipes = _pipe_ends(root, pid, fds_of.get(pid, {}), states, holders, stats)
        processes.append(proc)
    _assign_container_ids(root, processes)
    processes.sort(key=lambda p: (p.ancestors[::-1], p.pid))
    return RuntimeScan(
        processes=processes,
        users=users,
        limits=limits,
        scanned=len(stats),
        vanished=vanished,
        fds_unreadable=unreadable,
        pipes=len(holders),
        duration_ms=(time.monotonic() - started) * 1000,
        comms={pid: st.comm for pid, st in stats.items()},
    )


def _runtime_process(
    root: str,
    pid: int,
    st: _Stat,
    kind: str,
    stats: dict[int, _Stat],
    uptime: float,
    ticks: int,
    credentials: dict[int, Credentials],
) -> RuntimeProcess | None:
    try:
        cmdline = _read_cmdline(root, pid)
        wchan = _read_text(f"{root}/{pid}/wchan").strip()
        creds = credentials.get(pid) or read_credentials(root, pid)
    except OSError:
        return None
    if kind == "runc":
        kind = classify(st.comm, cmdline) or "runc"
    ancestors: list[int] = []
    parent = st.ppid
    while parent in stats and parent not in ancestors and parent != pid:
        ancestors.append(parent)
        parent = stats[parent].ppid
    proc = RuntimeProcess(
        pid=pid,
        ppid=st.ppid,
        kind=kind,
        comm=st.comm,
        state=st.state,
        age_s=max(0.0, uptime - st.start_ticks / ticks),
        cmdline=cmdline,
        uid=creds.uid,
        privileged=creds.privileged,
        wchan="" if wchan == "0" else wchan,
        ancestors=ancestors,
    )
    if kind == "shim":
        args = shim_args(cmdline)
        proc.shim_namespace = args.get("namespace")
        proc.shim_address = args.get("address")
        shim_id = args.get("id") or (os.path.basename(args["workdir"]) if "workdir" in args else None)
        if shim_id:
            proc.container_id, proc.container_id_from = shim_id, "shim-args"
    elif kind == "runc":
        proc.runc_command = runc_subcommand(cmdline)
        cid = runc_container_id(cmdline)
        if cid:
            proc.container_id, proc.container_id_from = cid, "runc-args"
    return proc


def _pipe_ends(
    root: str,
    pid: int,
    fds: dict[int, int],
    states: dict[int, PipeState],
    holders: dict[int, list[tuple[int, int]]],
    stats: dict[int, _Stat],
) -> list[PipeEnd]:
    ends = []
    for fd, inode in sorted(fds.items()):
        state = states.get(inode)
        peers = [
            PipePeer(pid=p, comm=stats[p].comm if p in stats else "", fd=f, end=pipe_end(root, p, f))
            for p, f in holders.get(inode, [])
            if p != pid
        ]
        ends.append(
            PipeEnd(
                fd=fd,
                inode=inode,
                end=pipe_end(root, pid, fd),
                capacity=state.capacity if state else None,
                bytes_waiting=state.bytes_waiting if state else None,
                peers=peers,
            )
        )
    return ends


def _assign_container_ids(root: str, processes: list[RuntimeProcess]) -> None:
    """runc inits name no container: take the nearest runc invocation's, else the cgroup's, else the shim's."""
    by_pid = {p.pid: p for p in processes}
    for proc in processes:
        if proc.container_id or proc.kind not in ("runc-init", "runc"):
            continue
        ancestors = [by_pid[a] for a in proc.ancestors if a in by_pid]
        runc_parent = next((a for a in ancestors if a.kind == "runc" and a.container_id), None)
        if runc_parent:
            proc.container_id, proc.container_id_from = runc_parent.container_id, "parent"
            continue
        cgroup_id = _cgroup_container_id(root, proc.pid)
        if cgroup_id:
            proc.container_id, proc.container_id_from = cgroup_id, "cgroup"
            continue
        shim = next((a for a in ancestors if a.kind == "shim" and a.container_id), None)
        if shim:
            proc.container_id, proc.container_id_from = shim.container_id, "shim"
