"""What to do about a damaged snapshot, as commands to paste: the node's own paths, ids and image names.

The first remedy puts back exactly the damaged paths from the intact layer blob into the snapshot's
``fs`` directory with GNU tar: only the named members, with the layer's numeric owners, modes and
xattrs; no pod is touched and the next sandbox mounts the repaired layer (seed 002). It is refused,
saying why, when writing there could leave the snapshot: a path that runs through a symlink or a
non-directory, or something tar cannot recreate (an overlay whiteout or opaque marker).

The alternative recreates the snapshot: drain, remove every sandbox using it, remove and pull the image.
Removing and pulling alone changes nothing while pods hold the snapshot: containerd keeps a committed
snapshot that an active one has as its parent, and the pull reuses it under the same chain ID, damaged.

``proven`` names the lab test that runs the step as printed; steps no lab can run say so.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from probes.api import NO_KUBELET, Remedy, untested
from probes.readers.disk.layer_verify import Difference, LayerCheck

DEFAULT_ENDPOINT = "unix:///run/containerd/containerd.sock"
DEFAULT_SOCKET = "/run/containerd/containerd.sock"
PROOFS = "tests/test_remedy_snapshots.py"
PROVEN_RESTORE = f"{PROOFS}::test_restore_from_blob_repairs_without_touching_pods"
PROVEN_RECREATE = f"{PROOFS}::test_remove_sandboxes_then_rmi_and_pull_recreates_the_snapshot"
PROVEN_FETCH = f"{PROOFS}::test_discarded_layers_fetch_the_blob_then_restore"
PROVEN_REPULL = f"{PROOFS}::test_after_rmi_the_damage_is_still_reported_and_repaired"
TAR_FLAGS = {"gzip": "-z", "zstd": "--zstd", "none": ""}


def crictl(endpoint: str) -> str:
    """``crictl`` aimed at the runtime nodedoc talked to (the flag only when it is not the default)."""
    if not endpoint or endpoint == DEFAULT_ENDPOINT:
        return "crictl"
    return f"crictl --runtime-endpoint {shlex.quote(endpoint)}"


def ctr(socket: str, namespace: str) -> str:
    """``ctr`` on containerd's socket and the namespace the image lives in."""
    address = "" if not socket or socket == DEFAULT_SOCKET else f" --address {shlex.quote(socket)}"
    return f"ctr{address} --namespace {shlex.quote(namespace)}"


def unsafe_path(fs_dir: Path, path: str) -> str:
    """Why writing ``path`` (absolute inside the snapshot) under ``fs_dir`` could leave it; "" when safe.

    Every ancestor that exists must be a real directory: tar follows a symlinked directory, so a
    snapshot whose ``/usr`` became a link to ``/`` would have tar write on the host.
    """
    parts = [p for p in path.split("/") if p]
    current = fs_dir
    for part in parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return ""  # tar creates the rest inside the snapshot
        except OSError as exc:
            return f"cannot look at {current}: {exc.strerror}"
        if stat.S_ISLNK(mode):
            return (
                f"{current} is a symlink (to {os.readlink(current)}): tar would follow it out of the snapshot"
            )
        if not stat.S_ISDIR(mode):
            return f"{current} is not a directory, where the layer has one"
    return ""


def _refusal(d: Difference, fs_dir: Path) -> str:
    if not d.member:
        return f"{d.path} has no member name in the layer"
    if d.member.startswith("-"):
        return f"{d.path}'s member name {d.member!r} would read as a tar option"
    if "whiteout" in (d.expected, d.actual) or d.problem == "opaque":
        return f"{d.path} is an overlay whiteout or opaque marker, which tar cannot recreate"
    if d.problem == "type" and d.actual == "dir":
        return f"a directory stands at {d.path} where the layer has a {d.expected}"
    return unsafe_path(fs_dir, d.path)


def restore_from_blob(check: LayerCheck, snapshot_id: int) -> Remedy:
    """Put back the missing and changed paths from the layer blob, remove paths the layer never had.

    A refused restore is still a step: its text says why, and it has no command.
    """
    fs_dir = Path(check.fs_dir)
    damaged = check.missing + check.changed
    reasons = [r for r in (_refusal(d, fs_dir) for d in damaged) if r]
    reasons += [r for r in (unsafe_path(fs_dir, d.path) for d in check.extra) if r]
    flag = TAR_FLAGS.get(check.compression)
    if flag is None:
        reasons.append(f"the blob's compression {check.compression!r} is not one tar reads")
    if reasons:
        return Remedy(
            f"Restoring snapshot {snapshot_id} from its layer blob is refused: {'; '.join(reasons[:3])}. "
            "Use the alternative below."
        )
    parts: list[str] = []
    if damaged:
        missing = sorted({d.member for d in check.missing})
        changed = sorted({d.member for d in check.changed} - set(missing))
        tar = ["tar", "-x"] + ([flag] if flag else []) + ["-f", check.blob, "-C", str(fs_dir)]
        tar += ["--same-owner", "--same-permissions", "--numeric-owner", "--xattrs", "--xattrs-include=*"]
        tar += ["--no-wildcards", "--no-unquote", *missing]
        if changed:
            tar += ["--no-recursion", *changed]
        parts.append(shlex.join(tar))
    extra = sorted({str(fs_dir) + d.path for d in check.extra})
    if extra:
        parts.append(shlex.join(["rm", "-rf", "--", *extra]))
    paths = [d.path for d in damaged] + [f"{d.path} (not in the layer)" for d in check.extra]
    return Remedy(
        f"Restore {', '.join(paths[:5])}{' …' if len(paths) > 5 else ''} in snapshot {snapshot_id} from the "
        "intact layer blob, as root: tar writes only those members, with the layer's numeric owners, "
        "modes and xattrs, into the snapshot's fs directory. No running pod is touched; the next "
        "sandbox mounts the repaired layer",
        " && ".join(parts),
        disrupts_pods=False,
        proven=PROVEN_RESTORE,
    )


def recreate_snapshot(
    *,
    snapshot_id: int,
    chain_id: str,
    images: list[str],
    sandbox_ids: list[str],
    endpoint: str,
    node_name: str,
) -> list[Remedy]:
    """The alternative that disrupts pods: drain, remove every sandbox on the snapshot, remove and pull."""
    cri = crictl(endpoint)
    node = shlex.quote(node_name or "NODE")
    named = [i for i in images if not i.startswith("sha256:")] or images
    steps = [
        untested(
            f"Alternative, which stops the pods on this node: recreate snapshot {snapshot_id}. Removing and "
            "pulling the image alone changes nothing while pods hold the snapshot: containerd keeps a "
            f"committed snapshot that an active one has as its parent, and the pull reuses it under the same "
            f"chain ID ({chain_id}), damaged. First drain the node ({node_name or 'NODE'} is this machine's "
            f"hostname; use the Kubernetes node name if it differs)",
            f"kubectl drain {node} --ignore-daemonsets --delete-emptydir-data",
            NO_KUBELET,
            disrupts_pods=True,
        ),
        untested(
            "Stop the kubelet, so it does not start the DaemonSet pods again on the damaged snapshot "
            "(running containers keep running)",
            "systemctl stop kubelet",
            NO_KUBELET,
        ),
    ]
    if sandbox_ids:
        ids = " ".join(shlex.quote(i) for i in sandbox_ids)
        steps.append(
            Remedy(
                f"Remove every pod sandbox that uses snapshot {snapshot_id} ({len(sandbox_ids)}): this stops "
                "and deletes those pods, their containers with them",
                f"{cri} stopp {ids} && {cri} rmp {ids}",
                disrupts_pods=True,
                proven=PROVEN_RECREATE,
            )
        )
    if named:
        names = " ".join(shlex.quote(i) for i in named)
        pulls = " && ".join(f"{cri} pull {shlex.quote(i)}" for i in named)
        steps.append(
            Remedy(
                f"Remove the image: with nothing holding snapshot {snapshot_id} any more containerd deletes it; "
                "the pull then unpacks the layer afresh from the registry (no running pod uses it by now)",
                f"{cri} rmi {names} && {pulls}",
                disrupts_pods=False,
                proven=PROVEN_RECREATE,
            )
        )
    steps.append(
        untested(
            "Start the kubelet and let pods schedule here again (it starts the node's pods anew)",
            f"systemctl start kubelet && kubectl uncordon {node}",
            NO_KUBELET,
        )
    )
    return steps


def _socket(endpoint: str) -> str:
    return endpoint.removeprefix("unix://") if endpoint.startswith("unix://") else DEFAULT_SOCKET


def refetch_blob(*, endpoint: str, namespace: str, digest: str, image: str) -> Remedy:
    """The layer blob itself is corrupt: remove it from the content store and fetch the image's content anew,
    on the containerd nodedoc talked to."""
    ctr_ = ctr(_socket(endpoint), namespace)
    return untested(
        "Fetch the blob anew: remove the corrupt one from the content store, then fetch "
        "the image's content again from its registry",
        f"{ctr_} content rm {shlex.quote(digest)} && {ctr_} content fetch {shlex.quote(image)}",
        "no lab test corrupts a layer blob yet",
    )


def bring_layers_back(
    *,
    image: str,
    namespace: str,
    endpoint: str,
    hosts_dir: str,
    image_present: bool,
    nodedoc_args: list[str],
) -> list[Remedy]:
    """The layer blobs are gone (discarded after unpacking, or removed with the image): fetch them again
    from the registry, then let nodedoc verify the layers and print the exact restore."""
    steps = []
    if not image_present:
        steps.append(
            Remedy(
                f"Pull {image} again so the node has its image record (the pull reuses the existing snapshot, so "
                "it neither repairs it nor fetches the layer; running pods untouched)",
                f"{crictl(endpoint)} pull {shlex.quote(image)}",
                proven=PROVEN_REPULL,
            )
        )
    socket = _socket(endpoint)
    hosts = f" --hosts-dir {shlex.quote(hosts_dir)}" if hosts_dir else ""
    steps += [
        Remedy(
            f"Fetch {image}'s layer blobs back into the content store from its registry"
            + (f" (with the registry hosts of CRI's config_path, {hosts_dir})" if hosts_dir else "")
            + "; running pods untouched",
            f"{ctr(socket, namespace)} content fetch{hosts} {shlex.quote(image)}",
            proven=PROVEN_FETCH,
        ),
        Remedy(
            "Check again: with the blobs back nodedoc compares each layer with its snapshot and prints the "
            "restore command for exactly the damaged paths (run it, then check once more); it only reads",
            shlex.join(["nodedoc", *nodedoc_args, "check", "--probe", "snapshots"]),
            proven=PROVEN_FETCH,
        ),
    ]
    return steps
