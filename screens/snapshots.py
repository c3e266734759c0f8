"""Images → layers → committed snapshots, active snapshots with their container, a file browser inside a
snapshot, and verification against the layer blobs with a progress bar (ETA, cancellable)."""

from __future__ import annotations

import threading
import time

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, ProgressBar, Static, Tree

from probes.errors import NodedocError
from probes.readers.disk.catalog import SnapshotCatalog, SnapshotRow, VerifyResult
from tui.format import human_bytes
from tui.messages import CatalogRead, FilesRead, SnapshotVerified, Unavailable, VerificationEnded
from tui.untrusted import neutralise
from tui.widgets import NodeScreen, node_text, state_text

#: Seconds between two progress bar updates from the verifying thread.
PROGRESS_EVERY_S = 0.1


class SnapshotsScreen(NodeScreen):
    TITLE_TEXT = "Snapshots"
    BINDINGS = [
        Binding("v", "verify_selected", "Verify", id="snap.verify"),
        Binding("V", "verify_all", "Verify all", id="snap.verify-all"),
        Binding("c", "cancel_verify", "Cancel", id="snap.cancel"),
        Binding("backspace", "parent_dir", "Up dir", id="snap.up"),
        Binding("r", "refresh", "Refresh", id="snap.refresh"),
    ]

    def compose(self) -> ComposeResult:
        yield from self.compose_top()
        with Horizontal(id="snap-body"):
            yield Tree("snapshots", id="snap-tree")
            with Vertical(id="snap-right"):
                yield Static("select a snapshot", id="snap-detail", classes="section")
                yield DataTable(id="snap-files", cursor_type="row")
        with Horizontal(id="verify-bar", classes="-hidden"):
            yield Static("verifying", id="verify-label")
            yield ProgressBar(id="verify-progress", show_eta=True)
        yield from self.compose_bottom()

    def on_mount(self) -> None:
        self.catalog = SnapshotCatalog()
        self.verified: dict[int, VerifyResult] = {}
        self.selected: int | None = None
        self.cwd = "/"
        self.cancel_event = threading.Event()
        self.verifying = False
        self.query_one("#snap-files").border_title = "files"
        table = self.query_one("#snap-files", DataTable)
        for column in ("", "NAME", "TYPE", "MODE", "SIZE"):
            table.add_column(column, key=column or "mark")
        self.query_one(Tree).show_root = False

    # -- reading -------------------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.refresh_data()

    def refresh_data(self) -> None:
        self.query_one("#snap-detail", Static).update("reading the containerd root…")
        self.load()

    @work(thread=True, exclusive=True, group="snapshots", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(CatalogRead(self.session.snapshot_catalog()))
        except NodedocError as exc:
            self.post_message(Unavailable("snapshots", str(exc)))

    @on(Unavailable)
    def _unavailable(self, message: Unavailable) -> None:
        self.query_one("#snap-detail", Static).update(
            node_text(f"snapshots not available: {message.reason}", style="yellow")
        )

    @on(CatalogRead)
    def _loaded(self, message: CatalogRead) -> None:
        self.catalog = message.catalog
        self._build_tree()
        if self.selected is None and self.catalog.snapshots:
            self._select(self.catalog.snapshots[0].id)

    def _label(self, snap: SnapshotRow, prefix: str) -> Text:
        result = self.verified.get(snap.id)
        status = state_text(result.status) if result else Text("")
        return Text.assemble(prefix, f"#{snap.id} ", (snap.kind, "dim"), " ", status)

    def _build_tree(self) -> None:
        tree: Tree[int] = self.query_one(Tree)
        tree.clear()
        images = tree.root.add(f"images ({len(self.catalog.images)})", expand=True)
        for image in self.catalog.images:
            node = images.add(node_text(image.name), expand=True)
            if image.error:
                node.add_leaf(node_text(image.error, style="yellow"))
            for layer in image.layers:
                snap = self.catalog.by_id(layer.snapshot) if layer.snapshot is not None else None
                if snap is None:
                    node.add_leaf(Text(f"L{layer.index} not unpacked", style="dim"))
                else:
                    node.add_leaf(self._label(snap, f"L{layer.index} "), data=snap.id)
        active = [s for s in self.catalog.snapshots if s.kind != "committed"]
        group = tree.root.add(f"active ({len(active)})", expand=True)
        for snap in active:
            owner = (snap.owner_names or ["?"])[0]
            group.add_leaf(Text.assemble(self._label(snap, ""), " ", neutralise(owner)[:40]), data=snap.id)
        tree.root.expand()

    # -- selection and files ----------------------------------------------------------------------------

    @on(Tree.NodeHighlighted, "#snap-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[int]) -> None:
        if event.node.data is not None:
            self._select(event.node.data)

    def _select(self, snapshot_id: int, path: str = "/") -> None:
        self.selected, self.cwd = snapshot_id, path
        self._detail()
        self.list_files(snapshot_id, path)

    @work(thread=True, exclusive=True, group="snap-files", exit_on_error=False)
    def list_files(self, snapshot_id: int, path: str) -> None:
        self.post_message(FilesRead(snapshot_id, path, self.session.snapshot_files(snapshot_id, path)))

    @on(FilesRead)
    def _files(self, message: FilesRead) -> None:
        if message.snapshot_id != self.selected:
            return
        table = self.query_one("#snap-files", DataTable)
        table.clear()
        table.border_title = node_text(f"files in #{message.snapshot_id}:{message.path}")
        result = self.verified.get(message.snapshot_id)
        problems = result.problem_paths() if result else {}
        present = set()
        for e in message.entries:
            present.add(e.path)
            problem = problems.get(e.path)
            style = "bold red" if problem else ""
            table.add_row(
                Text("✗" if problem else " ", style=style),
                node_text(e.name + ("/" if e.type == "dir" else ""), style=style),
                Text(e.type + (f" ({problem})" if problem else ""), style=style),
                f"{e.mode:o}" if e.mode is not None else "-",
                human_bytes(e.size) if e.size is not None else "-",
                key=e.path,
            )
        prefix = message.path.rstrip("/") + "/"
        for path, problem in sorted(problems.items()):
            if path.startswith(prefix) and "/" not in path[len(prefix) :] and path not in present:
                table.add_row(
                    Text("✗", style="bold red"),
                    node_text(path[len(prefix) :], style="bold red"),
                    node_text(problem, style="bold red"),
                    "-",
                    "-",
                    key=path,
                )

    @on(DataTable.RowSelected, "#snap-files")
    def _open_dir(self, event: DataTable.RowSelected) -> None:
        row = self.query_one("#snap-files", DataTable).get_row(event.row_key)
        if str(row[1]).endswith("/") and self.selected is not None:
            self._select(self.selected, str(event.row_key.value))

    def action_parent_dir(self) -> None:
        if self.selected is not None and self.cwd != "/":
            self._select(self.selected, self.cwd.rsplit("/", 1)[0] or "/")

    def _detail(self) -> None:
        snap = self.catalog.by_id(self.selected) if self.selected is not None else None
        panel = self.query_one("#snap-detail", Static)
        if snap is None:
            panel.update("select a snapshot")
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold")
        grid.add_column(overflow="fold")
        grid.add_row("snapshot", f"#{snap.id} {snap.kind}  parent #{snap.parent_id}")
        grid.add_row("images", node_text(", ".join(snap.images) or "-"))
        if snap.layer_digest:
            grid.add_row("layer", f"L{snap.layer} {snap.layer_digest[:19]}…")
        if snap.owner_names:
            grid.add_row("container", node_text(", ".join(snap.owner_names)))
        grid.add_row("mounted", node_text(", ".join(snap.mounted_at) or "no"))
        result = self.verified.get(snap.id)
        if result:
            problems = result.check.missing + result.check.changed if result.check else []
            line = Text.assemble(state_text(result.status), " ", neutralise(result.reason))
            for p in problems[:4]:
                line.append("\n" + neutralise(p), style="bold red")
            grid.add_row("verified", line)
        else:
            grid.add_row("verified", Text("not yet (v verifies)", style="dim"))
        panel.update(grid)

    # -- verifying -----------------------------------------------------------------------------------

    def action_verify_selected(self) -> None:
        if self.selected is not None:
            self._start_verify([self.selected])

    def action_verify_all(self) -> None:
        self._start_verify(None)

    def _start_verify(self, ids: list[int] | None) -> None:
        if self.verifying:
            self.notify("A verification is already running (c cancels it).")
            return
        self.verifying = True
        self.cancel_event = threading.Event()
        bar = self.query_one("#verify-progress", ProgressBar)
        bar.update(total=None, progress=0)
        self.query_one("#verify-label", Static).update(
            "verifying all committed snapshots" if ids is None else f"verifying #{ids[0]}"
        )
        self.query_one("#verify-bar").remove_class("-hidden")
        self.verify(ids, self.cancel_event)

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def verify(self, ids: list[int] | None, cancel: threading.Event) -> None:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S or done >= total:
                last[0] = now
                self.app.call_from_thread(self._progress, done, total)

        error = ""
        try:
            self.session.verify(ids, progress, cancel, self._post_verified)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            if not cancel.is_set():
                raise
        finally:
            self.post_message(VerificationEnded(error))

    def _post_verified(self, result: VerifyResult) -> None:
        self.post_message(SnapshotVerified(result))

    def _progress(self, done: int, total: int) -> None:
        self.query_one("#verify-progress", ProgressBar).update(total=max(total, 1), progress=done)

    @on(SnapshotVerified)
    def _verified(self, message: SnapshotVerified) -> None:
        self.verified[message.result.id] = message.result
        if message.result.id == self.selected:
            self._detail()
            self.list_files(self.selected, self.cwd)

    @on(VerificationEnded)
    def _verify_ended(self, message: VerificationEnded) -> None:
        self.verifying = False
        self.query_one("#verify-bar").add_class("-hidden")
        self._build_tree()
        bad = [r for r in self.verified.values() if r.status not in ("ok", "unverifiable")]
        if self.cancel_event.is_set():
            self.notify("Verification cancelled.", severity="warning")
        elif not message.error:
            self.notify(
                f"Verified: {len(bad)} damaged snapshot(s)." if bad else "Verified: all match their layers.",
                severity="error" if bad else "information",
            )

    def action_cancel_verify(self) -> None:
        if self.verifying:
            self.cancel_event.set()
