"""Stand-ins for runtime processes, built from pipe_hog.c: a hung runc init, fake containerd/shim/runc.

``nodedoc demo --fault runc-init`` runs the hung init beside a lab; the tests (tests/fixtures/pipe_hog.py)
use all of them. Shipped in the package, so the demo works from an installed wheel. Every process started
here is killed by pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from probes.errors import NodedocError

SOURCE = Path(__file__).with_name("pipe_hog.c")
SOFT_LIMIT = Path("/proc/sys/fs/pipe-user-pages-soft")
#: Processes on one machine (test runs from several worktrees, a demo) take turns with the soft limit.
SOFT_LIMIT_LOCK = Path("/run/lock/nodedoc-pipe-user-pages-soft.lock")
_held = 0
NOBODY = 65534


class StandInError(NodedocError):
    """A stand-in process did not start or reach the state it stands in for."""


class GccMissing(StandInError):
    """The stand-ins are compiled here; without gcc they cannot be."""


@contextlib.contextmanager
def built() -> Iterator[Path]:
    """Compile pipe_hog.c into a fresh world-readable directory under /tmp (uid 65534 must run it)."""
    if shutil.which("gcc") is None:
        raise GccMissing("gcc is needed to build the stand-in runc init (apt-get install gcc libc6-dev)")
    directory = Path(tempfile.mkdtemp(prefix="nodedoc-hog-", dir="/tmp"))
    try:
        directory.chmod(0o755)
        binary = directory / "pipe_hog"
        subprocess.run(["gcc", "-O1", "-o", str(binary), str(SOURCE)], check=True, capture_output=True)
        binary.chmod(0o755)
        yield binary
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def children_of(pid: int, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if text:
            return [int(t) for t in text]
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} started no child")


def kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


@contextlib.contextmanager
def soft_limit_held() -> Iterator[None]:
    """Exclusive use of fs.pipe-user-pages-soft among processes that change it, and its value put back.

    Without it, two runs that each lower and restore the limit can interleave and leave it lowered for
    good (the second saves the first's lowered value as "the original"). Re-entrant within a process."""
    global _held
    if _held:
        yield
        return
    SOFT_LIMIT_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(SOFT_LIMIT_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        original = SOFT_LIMIT.read_text().strip()
        _held += 1
        try:
            yield
        finally:
            _held -= 1
            SOFT_LIMIT.write_text(original)


@dataclass(frozen=True)
class HungInit:
    pid: int
    fd: int
    capacity: int
    uid: int
    #: The stand-in's parent (its "runc create"): it ends as the stand-in ends (-9 after ``kill -9 PID``).
    process: subprocess.Popen | None = field(default=None, compare=False, repr=False)


@contextlib.contextmanager
def hung_init(binary: Path, soft_limit: int = 64, name: str = "runc:[2:INIT]") -> Iterator[HungInit]:
    """Lower fs.pipe-user-pages-soft, start ``name`` as uid 65534 making pipes until one comes out shrunken,
    writing more than it holds into it. Kills it and restores the limit, whatever happens."""
    with soft_limit_held(), _hung_init(binary, soft_limit, name) as init:
        yield init


@contextlib.contextmanager
def _hung_init(binary: Path, soft_limit: int, name: str) -> Iterator[HungInit]:
    """The hung init is started the way runc starts a real one: as the child of a process named ``runc``
    (``runc create``) running the same binary, which waits for it and ends as it ends. nodedoc recognises
    a runc init by that ancestry and executable, not by its name alone (issue 13)."""
    proc: subprocess.Popen | None = None
    pid = 0
    runc = binary.with_name("runc")  # run through this link, the parent's comm is "runc"
    try:
        if not runc.is_symlink():
            runc.symlink_to(binary.name)
        SOFT_LIMIT.write_text(str(soft_limit))
        proc = subprocess.Popen(
            [str(runc)],
            env={"HOG_IDLE": "1", "HOG_RUNC": "1", "HOG_SPAWN": f"{binary} {name}"},
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if len(line) != 3:
            raise StandInError(
                f"pipe_hog did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        pid, fd, capacity = (int(x) for x in line)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}/wchan").read_text() not in ("anon_pipe_write", "pipe_write", "pipe_wait"):
            if time.monotonic() > deadline:
                raise StandInError("pipe_hog never blocked writing")
            time.sleep(0.02)
        yield HungInit(pid=pid, fd=fd, capacity=capacity, uid=NOBODY, process=proc)
    finally:
        if pid:
            kill_pid(pid)  # the parent then ends as its child did
        if proc is not None:
            stop(proc)


@contextlib.contextmanager
def idle(
    binary: Path,
    directory: Path,
    name: str,
    args: list[str],
    spawn: list[str] | None = None,
    spawn_name: str | None = None,
) -> Iterator[tuple[subprocess.Popen, int | None]]:
    """Start the idle stand-in as ``name`` (a symlink, so that is its comm) with ``args``; with ``spawn``,
    it first starts a child ``spawn_name`` with those arguments. Yields the process and the child's pid."""
    link = directory / name
    if not link.exists():
        link.symlink_to(binary)
    env = {"HOG_IDLE": "1", "PATH": "/usr/bin:/bin"}
    if spawn is not None:
        child_link = directory / (spawn_name or "child")
        if not child_link.exists():
            child_link.symlink_to(binary)
        env["HOG_SPAWN"] = " ".join([str(child_link), *spawn])
    proc = subprocess.Popen([str(link), *args], env=env)
    child = None
    try:
        if spawn is not None:
            child = children_of(proc.pid)[0]
        yield proc, child
    finally:
        if child is not None:
            kill_pid(child)
        stop(proc)
