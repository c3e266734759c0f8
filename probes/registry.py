"""Finding probes through the ``nodedoc.probes`` entry points and running them, each isolated.

Built-in probes register through the same entry-point group a third party uses. A probe is imported
only when it is run; one that fails to import, raises, or overruns its timeout becomes an ``error``
result with the reason, and one whose needs are unmet is ``skipped`` with the reason.

Every error and every skip leaves the verdict unknown (:attr:`ProbeResult.could_not_run`), except a skip
for :class:`probes.node.NotApplicable`: what this run does not look at (post-mortem mode, a copied tree).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from probes.api import Finding, Outcome, Probe, ProbeResult, ProbeStatus
from probes.entry_points import entry_points_in
from probes.errors import NodedocError
from probes.node import NeedUnmet, NodeContext, NotApplicable

GROUP = "nodedoc.probes"


class EntryPoint(Protocol):
    """An entry point as :mod:`probes.entry_points` or importlib.metadata gives it."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


@dataclass(frozen=True)
class ProbeRef:
    """A probe known by name, not yet imported."""

    id: str
    entry_point: EntryPoint | None = None
    cls: type[Probe] | None = None

    def load(self) -> type[Probe]:
        if self.cls is not None:
            return self.cls
        assert self.entry_point is not None
        loaded = self.entry_point.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Probe)):
            raise TypeError(f"entry point {self.entry_point.value} is not a nodedoc Probe class")
        return loaded


def available() -> dict[str, ProbeRef]:
    """Every registered probe by id, in a stable order, without importing any of them."""
    refs: dict[str, ProbeRef] = {}
    for ep in sorted(entry_points_in(GROUP), key=lambda e: e.name):
        refs.setdefault(ep.name, ProbeRef(ep.name, ep))
    return refs


def select(ids: Iterable[str] | None = None) -> list[ProbeRef]:
    """The probes named (all when none are); an unknown id is a ValueError naming the known ones."""
    refs = available()
    if not ids:
        return list(refs.values())
    chosen = []
    for pid in ids:
        if pid not in refs:
            raise ValueError(f"unknown probe {pid!r}; known probes: {', '.join(refs) or 'none'}")
        chosen.append(refs[pid])
    return chosen


def _describe(exc: BaseException) -> str:
    """One line: a typed reader error's own message, else the exception's type and first line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, NodedocError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_one(ref: ProbeRef, node: NodeContext) -> ProbeResult:
    """Run one probe in this thread: needs, then ``run``; never raises."""
    start = time.monotonic()

    def done(
        status: ProbeStatus,
        reason: str = "",
        outcome: Outcome | None = None,
        title: str = "",
        not_applicable: bool = False,
    ) -> ProbeResult:
        outcome = outcome or Outcome()
        return ProbeResult(
            probe=ref.id,
            title=title or ref.id,
            status=status,
            reason=reason,
            duration_ms=(time.monotonic() - start) * 1000,
            findings=outcome.findings,
            facts=outcome.facts,
            not_applicable=not_applicable,
        )

    def skipped(exc: NeedUnmet, prefix: str = "") -> ProbeResult:
        return done(
            ProbeStatus.SKIPPED, prefix + str(exc), title=title, not_applicable=isinstance(exc, NotApplicable)
        )

    try:
        cls = ref.load()
    except Exception as exc:  # a broken plugin is a result, not a crash
        return done(ProbeStatus.ERROR, f"could not load probe: {_describe(exc)}")
    title = getattr(cls, "title", ref.id)
    for need in sorted(cls.needs):
        why = node.unmet_need(need)
        if why:
            return skipped(why, f"needs {need}: ")
    try:
        out = cls().run(node)
    except NeedUnmet as exc:
        return skipped(exc)
    except Exception as exc:
        return done(ProbeStatus.ERROR, _describe(exc), title=title)
    outcome = out if isinstance(out, Outcome) else Outcome(findings=list(out))
    bad = [f for f in outcome.findings if not isinstance(f, Finding)]
    if bad:
        return done(ProbeStatus.ERROR, f"returned {len(bad)} value(s) that are not findings", title=title)
    return done(ProbeStatus.OK, outcome=outcome, title=title)


def _timeout_of(ref: ProbeRef) -> float:
    try:
        return float(ref.load().timeout)
    except Exception:
        return 15.0


def run_probes(
    node: NodeContext,
    refs: Iterable[ProbeRef] | None = None,
    on_result: Callable[[ProbeResult], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> list[ProbeResult]:
    """Run probes concurrently, each in a daemon thread with its own timeout; results in input order.

    A probe that overruns its timeout is reported as an error and left behind (its thread is a daemon,
    so it never keeps nodedoc from exiting). ``on_start`` is called first in each probe's thread (the
    troubleshooter lowers the thread's scheduling priority there).
    """
    refs = list(refs if refs is not None else available().values())
    results: dict[str, ProbeResult] = {}
    lock = threading.Lock()

    def target(ref: ProbeRef) -> None:
        if on_start is not None:
            on_start()
        result = run_one(ref, node)
        with lock:
            late = ref.id in results  # already reported as timed out
            if not late:
                results[ref.id] = result
        if on_result and not late:
            on_result(result)

    started = time.monotonic()
    started_threads = []
    for ref in refs:
        thread = threading.Thread(target=target, args=(ref,), name=f"probe:{ref.id}", daemon=True)
        thread.start()
        started_threads.append((ref, thread))
    # Each thread imports its own probe; the timeouts are read once all have started, so a probe late in
    # the list does not wait for the ones before it to be imported here first.
    threads = [(ref, thread, _timeout_of(ref)) for ref, thread in started_threads]
    for ref, thread, limit in threads:
        thread.join(max(0.0, started + limit - time.monotonic()))
        with lock:
            if ref.id not in results:
                results[ref.id] = ProbeResult(
                    probe=ref.id,
                    title=ref.id,
                    status=ProbeStatus.ERROR,
                    reason=f"timed out after {limit:g}s",
                    duration_ms=(time.monotonic() - started) * 1000,
                )
                if on_result:
                    on_result(results[ref.id])
    return [results[ref.id] for ref in refs]
