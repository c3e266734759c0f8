"""Anonymous pipes held by processes: which fds are pipes, their capacity and how many bytes wait in them.

Capacity (``F_GETPIPE_SZ``) and bytes waiting (``FIONREAD``) need an fd of the pipe in this process. It is
taken with ``pidfd_getfd(2)``, which duplicates the process's own open file: the pipe gains no reader or
writer, so nothing it does changes (a blocked writer stays blocked, a reader sees EOF when it would have).
When that is refused (old kernel, LSM), ``/proc/PID/fd/N`` is opened ``O_RDONLY|O_NONBLOCK``: that adds a
reader for a moment, which never blocks and never wakes a writer into success. Nothing is ever read.

Only links of the form ``pipe:[inode]`` are touched. A named FIFO (a path) is never opened: opening
``exec.fifo`` would let a created-but-not-started ``runc init`` go on and start its container.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import struct
import termios
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: fcntl command for a pipe's capacity in bytes (F_SETPIPE_SZ is 1031).
F_GETPIPE_SZ = 1032
#: ioctl for the bytes waiting to be read.
FIONREAD = getattr(termios, "FIONREAD", 0x541B)
#: pidfd_getfd(2): the same number on every architecture (unified syscall table, Linux 5.6+).
SYS_PIDFD_GETFD = 438

_PIPE_PREFIX = "pipe:["

_libc: Any = None


@dataclass(frozen=True)
class PipeState:
    """What the kernel says about one pipe, measured through one of its holders' fds."""

    inode: int
    capacity: int | None
    bytes_waiting: int | None
    error: str = ""

    @property
    def full(self) -> bool:
        return (
            self.capacity is not None
            and self.bytes_waiting is not None
            and self.bytes_waiting >= self.capacity
        )


@dataclass(frozen=True)
class PipePeer:
    """Another holder of the same pipe."""

    pid: int
    comm: str
    fd: int
    end: str

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, written out: a scan has thousands of them in a report.
        return {"pid": self.pid, "comm": self.comm, "fd": self.fd, "end": self.end}


@dataclass
class PipeEnd:
    """One pipe fd of a process: the pipe, which end this fd is, and who else holds the pipe."""

    fd: int
    inode: int
    end: str
    capacity: int | None = None
    bytes_waiting: int | None = None
    peers: list[PipePeer] = field(default_factory=list)

    @property
    def full(self) -> bool:
        return (
            self.capacity is not None
            and self.bytes_waiting is not None
            and self.bytes_waiting >= self.capacity
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fd": self.fd,
            "inode": self.inode,
            "end": self.end,
            "capacity": self.capacity,
            "bytes_waiting": self.bytes_waiting,
            "peers": [p.to_dict() for p in self.peers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipeEnd:
        return cls(
            fd=data["fd"],
            inode=data["inode"],
            end=data["end"],
            capacity=data.get("capacity"),
            bytes_waiting=data.get("bytes_waiting"),
            peers=[PipePeer(**peer) for peer in data.get("peers") or []],
        )


def pipe_fds(proc_root: Path | str, pid: int) -> dict[int, int]:
    """fd number → pipe inode for every anonymous pipe ``pid`` holds.

    Raises FileNotFoundError/ProcessLookupError when the process is gone and PermissionError when its
    fds cannot be read; the scanner counts those.
    """
    base = f"{proc_root}/{pid}/fd"
    found: dict[int, int] = {}
    for name in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{name}")
        except FileNotFoundError:
            continue  # closed since the listing
        if target.startswith(_PIPE_PREFIX):
            found[int(name)] = int(target[len(_PIPE_PREFIX) : -1])
    return found


def pipe_end(proc_root: Path | str, pid: int, fd: int) -> str:
    """``read`` or ``write`` from the fd's open flags in fdinfo; ``unknown`` when it cannot be read."""
    try:
        with open(f"{proc_root}/{pid}/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"flags:"):
                    mode = int(line.split()[1], 8) & os.O_ACCMODE
                    return {os.O_RDONLY: "read", os.O_WRONLY: "write"}.get(mode, "read-write")
    except (OSError, ValueError, IndexError):
        pass
    return "unknown"


def _pidfd_getfd(pid: int, fd: int) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        dup = int(_libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0))
        if dup < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return dup
    finally:
        os.close(pidfd)


def _open_pipe(proc_root: Path | str, pid: int, fd: int, method: str) -> int:
    """An fd of the same pipe in this process, without changing the pipe's readers or writers if possible.

    ``method``: ``pidfd`` (pidfd_getfd only), ``proc-open`` (open /proc/PID/fd/N only) or ``auto`` (pidfd_getfd
    when ``proc_root`` is this process's /proc, else or when refused, proc-open).
    """
    if method == "pidfd" or (method == "auto" and str(proc_root) == "/proc"):
        try:
            return _pidfd_getfd(pid, fd)
        except (OSError, AttributeError):
            if method == "pidfd":
                raise
    # Re-check it is still an anonymous pipe: fd numbers are reused, and a FIFO must never be opened.
    path = f"{proc_root}/{pid}/fd/{fd}"
    if not os.readlink(path).startswith(_PIPE_PREFIX):
        raise FileNotFoundError(f"{path} is no longer a pipe")
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)


def measure_pipe(proc_root: Path | str, pid: int, fd: int, inode: int, method: str = "auto") -> PipeState:
    """Capacity and bytes waiting of the pipe ``pid`` holds as ``fd``.

    Raises OSError when the process or fd is gone or may not be looked at.
    """
    own = _open_pipe(proc_root, pid, fd, method)
    try:
        if os.fstat(own).st_ino != inode:
            raise FileNotFoundError(f"fd {fd} of pid {pid} is no longer pipe {inode}")
        capacity = fcntl.fcntl(own, F_GETPIPE_SZ)
        waiting = struct.unpack("i", fcntl.ioctl(own, FIONREAD, b"\0\0\0\0"))[0]
        return PipeState(inode=inode, capacity=capacity, bytes_waiting=waiting)
    finally:
        os.close(own)


def measure_pipes(proc_root: Path | str, holders: dict[int, list[tuple[int, int]]]) -> dict[int, PipeState]:
    """Measure each pipe once, through the first holder ``(pid, fd)`` that still has it."""
    states: dict[int, PipeState] = {}
    for inode, fds in holders.items():
        error = ""
        for pid, fd in fds:
            try:
                states[inode] = measure_pipe(proc_root, pid, fd, inode)
                break
            except OSError as exc:
                error = f"pid {pid} fd {fd}: {exc.strerror or exc}"
        else:
            states[inode] = PipeState(inode=inode, capacity=None, bytes_waiting=None, error=error)
    return states
