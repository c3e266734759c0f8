"""Pipe readers against real pipes held by real child processes: size, fill, ends, budgets."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.readers.procfs.pipe_accounting import kernel_shrunk_pages, read_credentials, read_pipe_limits
from probes.readers.procfs.pipes import F_GETPIPE_SZ, measure_pipe, measure_pipes, pipe_end, pipe_fds
from probes.readers.procfs.procs import scan_runtime

F_SETPIPE_SZ = 1031
PAGE = os.sysconf("SC_PAGE_SIZE")
METHODS = [pytest.param("pidfd", id="pidfd_getfd"), pytest.param("proc-open", id="open-proc-fd")]


def _wait_wchan(pid: int, wanted: set[str], timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    wchan = ""
    while time.monotonic() < deadline:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
        if wchan in wanted:
            return wchan
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} never slept in {wanted}; wchan {wchan!r}")


@pytest.fixture
def holder() -> Iterator:
    """Start a `sleep` that holds the given fds (same numbers), then kill it."""
    started: list[subprocess.Popen] = []

    def start(*fds: int, user: int | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            ["sleep", "60"],
            pass_fds=fds,
            user=user,
            group=user,
            extra_groups=[] if user is not None else None,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _pipe(size: int | None = None) -> tuple[int, int]:
    r, w = os.pipe()
    if size is not None:
        fcntl.fcntl(w, F_SETPIPE_SZ, size)
    return r, w


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("size", "written"),
    [
        pytest.param(PAGE, 100, id="one-page"),
        pytest.param(2 * PAGE, 2 * PAGE, id="two-pages-full"),
        pytest.param(None, 0, id="default-empty"),
        pytest.param(16 * PAGE * 4, 70000, id="enlarged"),
    ],
)
def test_measure_pipe_reads_capacity_and_fill_of_another_process(holder, method, size, written) -> None:
    r, w = _pipe(size)
    expected = fcntl.fcntl(w, F_GETPIPE_SZ)
    os.write(w, b"x" * written)
    child = holder(r, w)
    inode = os.fstat(r).st_ino
    os.close(r)
    os.close(w)
    state = measure_pipe("/proc", child.pid, w, inode, method=method)
    assert (state.capacity, state.bytes_waiting) == (expected, written)
    assert state.full == (written >= expected)


def test_pipe_fds_and_ends_skip_named_fifos(holder, tmp_path: Path) -> None:
    fifo = tmp_path / "exec.fifo"
    os.mkfifo(fifo)
    fifo_fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    r, w = _pipe()
    child = holder(r, w, fifo_fd)
    inode = os.fstat(r).st_ino
    for fd in (r, w, fifo_fd):
        os.close(fd)
    fds = pipe_fds("/proc", child.pid)
    assert fds == {r: inode, w: inode}
    assert (pipe_end("/proc", child.pid, r), pipe_end("/proc", child.pid, w)) == ("read", "write")


@pytest.mark.parametrize("method", METHODS)
def test_measuring_leaves_a_blocked_writer_blocked(method) -> None:
    r, w = _pipe()
    writer = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.write({w}, b'x' * 200000)"], pass_fds=(w,)
    )
    try:
        os.close(w)
        wchan = _wait_wchan(writer.pid, {"anon_pipe_write", "pipe_write", "pipe_wait"})
        state = measure_pipe("/proc", writer.pid, w, os.fstat(r).st_ino, method=method)
        assert state.full and state.bytes_waiting == 65536
        time.sleep(0.1)
        assert writer.poll() is None
        assert Path(f"/proc/{writer.pid}/wchan").read_text() == wchan
    finally:
        writer.kill()
        writer.wait()
        os.close(r)


def test_measuring_a_gone_process_is_an_error_state_not_a_crash() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    with pytest.raises(OSError):
        measure_pipe("/proc", gone.pid, 0, 1)
    states = measure_pipes("/proc", {1234: [(gone.pid, 3)]})
    assert states[1234].capacity is None and str(gone.pid) in states[1234].error


@pytest.mark.parametrize(
    ("release", "pages"),
    [
        pytest.param("5.4.0-150-generic", 1, id="5.4"),
        pytest.param("5.13.19", 1, id="5.13"),
        pytest.param("5.14.0-362.el9.x86_64", 2, id="5.14-rhel9"),
        pytest.param("6.18.44-fc-v669", 2, id="6.18"),
        pytest.param("4.19.0-26-amd64", 1, id="4.19"),
    ],
)
def test_shrunk_pipe_size_by_kernel(release: str, pages: int) -> None:
    assert kernel_shrunk_pages(release) == pages


def test_pipe_limits_are_the_sysctls() -> None:
    limits = read_pipe_limits("/proc")
    sysctl = Path("/proc/sys/fs")
    assert limits.soft_pages == int((sysctl / "pipe-user-pages-soft").read_text())
    assert limits.hard_pages == int((sysctl / "pipe-user-pages-hard").read_text())
    assert limits.max_size == int((sysctl / "pipe-max-size").read_text())
    assert limits.shrunk_bytes == kernel_shrunk_pages(os.uname().release) * PAGE


@pytest.mark.root
def test_pipes_of_an_unprivileged_uid_are_counted_against_it(holder) -> None:
    """Three pipes, one set to the shrunken size, held only by a uid 65534 process."""
    limits = read_pipe_limits()
    pipes = [_pipe(), _pipe(), _pipe(limits.shrunk_bytes)]
    child = holder(*[fd for pair in pipes for fd in pair], user=65534)
    for pair in pipes:
        os.close(pair[0])
        os.close(pair[1])
    creds = read_credentials("/proc", child.pid)
    assert (creds.uid, creds.privileged) == (65534, False)
    assert read_credentials("/proc", os.getpid()).privileged
    user = next(u for u in scan_runtime().users if u.uid == 65534)
    assert child.pid in user.pids and user.privilege == "none"
    assert (user.pipes, user.shrunk_pipes) == (3, 1)
    assert user.pages == 2 * 16 + limits.shrunk_pages
