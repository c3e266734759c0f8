"""The container runtime's processes from /proc: containerd, its shims, runc invocations and runc inits.

One pass over /proc reads every process's ``stat`` (comm, state, parent, start time) and its pipe fds, so
that the runtime's processes can be shown with their parent chain, and every pipe with its other holders
and its owner's pipe budget. Only the runtime's processes get their cmdline, wchan and fd ends read.

A process that exits during the scan, or whose fds cannot be read, is skipped and counted, never an error.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
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
    kind: str  # containerd | shim | runc | runc-init | impostor
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
    #: Why a process named like the runtime is not part of it (kind ``impostor``).
    not_runtime_because: str = ""

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
    unmask_impostors(root, processes)
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


# -- names are not proof ------------------------------------------------------------------------------
#
# A process chooses its own comm (prctl PR_SET_NAME): a container workload can call itself runc:[2:INIT],
# runc, containerd-shim or containerd. Taken at its word it would fake a hung runc init (a critical
# finding) or hide a missing containerd. So a process named like the runtime is one only when:
#   - neither it nor an ancestor is a process a shim recorded for its containers (<bundle>/init.pid for
#     a container's init, <bundle>/<exec-id>.pid for an exec): those, and all below them, are workloads;
#   - for a runc init: its parent is runc (``runc create``/``run``/``exec``, whose init it is) or, once
#     that runc is gone, a shim; and its executable is its runc parent's (runc re-executes itself, or
#     a sealed copy of itself, as init).

#: A sealed copy of runc is a few MiB; an executable larger than this is not hashed to compare.
MAX_EXE_COMPARED = 64 * 1024 * 1024


def unmask_impostors(root: str, processes: list[RuntimeProcess]) -> None:
    """Mark ``impostor`` (with the reason) each process that is named like the runtime but is not it."""
    workloads = workload_pids(root, [p for p in processes if p.kind == "shim"])
    by_pid = {p.pid: p for p in processes}
    for proc in processes:
        why = _workload_reason(proc, workloads) or (
            _runc_init_reason(root, proc, by_pid) if proc.kind == "runc-init" else ""
        )
        if why:
            proc.kind, proc.not_runtime_because = "impostor", why


def workload_pids(root: str, shims: list[RuntimeProcess]) -> dict[int, str]:
    """Pids the shims recorded for their containers' processes → the file recording it.

    A shim runs in its task's bundle; its siblings are the other tasks' bundles. Read through the shim's
    ``cwd`` link, so this works whatever containerd's state directory is.
    """
    out: dict[int, str] = {}
    seen: set[str] = set()
    for shim in shims:
        try:
            tasks = os.path.dirname(os.readlink(f"{root}/{shim.pid}/cwd"))
        except OSError:
            continue
        if (
            tasks in seen or "io.containerd.runtime." not in tasks
        ):  # read, or not a task bundle: unknown layout
            continue
        try:
            bundles = os.listdir(f"{root}/{shim.pid}/cwd/..")
        except OSError:
            continue
        seen.add(tasks)
        for bundle in bundles:
            here = f"{root}/{shim.pid}/cwd/../{bundle}"
            try:
                # init.pid and <exec-id>.pid are the container's; shim.pid (runtime v1) is the shim's own
                names = [n for n in os.listdir(here) if n.endswith(".pid") and n != "shim.pid"]
            except OSError:
                continue
            for name in names:
                pid = _read_pid_file(f"{here}/{name}")
                if pid:
                    out[pid] = f"{tasks}/{bundle}/{name}"
    return out


def _read_pid_file(path: str) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        text = os.read(fd, 32).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    return int(text) if text.isdigit() else None


def _workload_reason(proc: RuntimeProcess, workloads: dict[int, str]) -> str:
    for pid in (proc.pid, *proc.ancestors):
        if pid in workloads:
            whose = "it is" if pid == proc.pid else f"it runs under pid {pid},"
            return (
                f"{whose} a container's workload (recorded in {workloads[pid]}), only named like the runtime"
            )
    return ""


def _runc_init_reason(root: str, proc: RuntimeProcess, by_pid: dict[int, RuntimeProcess]) -> str:
    parent = by_pid.get(proc.ppid)
    if parent is None or parent.kind not in ("runc", "shim"):
        return (
            f"its parent (pid {proc.ppid}) is neither runc nor a containerd shim: only named like runc init"
        )
    if parent.kind == "runc" and same_executable(root, proc.pid, parent.pid) is False:
        return f"its executable is not its runc parent's (pid {parent.pid}): only named like runc init"
    return ""


def same_executable(root: str, pid: int, other: int) -> bool | None:
    """Whether two processes run the same program (same file, or the same bytes: runc's sealed copy).
    None when either executable cannot be read."""
    try:
        a, b = os.stat(f"{root}/{pid}/exe"), os.stat(f"{root}/{other}/exe")
    except OSError:
        return None
    if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
        return True
    if a.st_size != b.st_size:
        return False
    digests = [_exe_digest(f"{root}/{p}/exe") for p in (pid, other)]
    return None if None in digests else digests[0] == digests[1]


def _exe_digest(path: str) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_EXE_COMPARED:
            return None
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
        return digest.hexdigest()
    finally:
        os.close(fd)
