"""deploy/: the manifests parse, name only the images, mounts and capabilities the README explains, and every
nodedoc command in them runs against the lab inside nodedoc's image, under the DaemonSet's own security
context (capabilities, read-only root, the node's / read-only at /host, the host's PID namespace), and
answers as documented."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, ctr

from tui.commands.demo import pause_removed
from tui.lab.pipe_hog import soft_limit_held

DEPLOY = REPO / "deploy"
README = (REPO / "README.md").read_text()
NAMESPACE = "nodedoc-deploy-test"
#: What a container gets by default from containerd (its OCI defaults): `drop: ["ALL"]` drops these, and ctr
#: takes no "ALL", so the test drops each by name.
DEFAULT_CAPS = (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP", "SETPCAP",
    "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
)  # fmt: skip


def manifests() -> list[dict]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def pod_specs() -> list[dict]:
    return [d["spec"]["template"]["spec"] for d in manifests() if d.get("kind") == "DaemonSet"]


def monitor() -> dict:
    return json.loads((DEPLOY / "nodedoc-monitor.json").read_text())


def test_manifests_parse_and_kustomize_names_every_file() -> None:
    kinds = sorted(d.get("kind", "") for d in manifests())
    assert kinds == [
        "",
        "ClusterRoleBinding",
        "DaemonSet",
        "DaemonSet",
        "ServiceAccount",
    ]  # "": kustomization
    kustom = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert sorted(kustom["resources"]) == sorted(
        p.name for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    assert kustom["configMapGenerator"][0]["files"] == ["nodedoc-monitor.json"]
    assert (
        {c["type"] for c in monitor()["conditions"]}
        == {r["condition"] for r in monitor()["rules"]}
        == {
            "ContainerdSnapshotDamaged",
            "PodNetworkLost",
            "RuncInitBlocked",
            "ContainerRuntimeMisconfigured",
        }
    )


def test_only_images_mounts_and_capabilities_the_readme_explains() -> None:
    for spec in pod_specs():
        assert spec["hostPID"] is True
        for container in spec.get("initContainers", []) + spec["containers"]:
            assert f"`{container['image']}`" in README, container["image"]
            sc = container.get("securityContext")
            if sc:
                assert (
                    not sc.get("privileged")
                    and sc["readOnlyRootFilesystem"]
                    and not sc["allowPrivilegeEscalation"]
                )
                assert sc["capabilities"]["drop"] == ["ALL"]
                for cap in sc["capabilities"]["add"]:
                    assert f"`{cap}`" in README, cap
            assert container["resources"]["limits"]["memory"] and container["resources"]["limits"]["cpu"]
        for volume in spec["volumes"]:
            if "hostPath" in volume:
                assert f"hostPath `{volume['hostPath']['path']}`" in README
                mounts = [
                    m for c in spec["containers"] for m in c["volumeMounts"] if m["name"] == volume["name"]
                ]
                assert mounts and all(m["readOnly"] for m in mounts)


def test_each_rule_answers_before_npd_gives_up() -> None:
    config = monitor()
    for rule in config["rules"]:
        assert rule["path"] == "/usr/local/bin/nodedoc" and rule["args"][:2] == ["--host-root", "/host"]
        ours = float(rule["args"][rule["args"].index("--timeout") + 1])
        assert (
            ours < float(rule["timeout"].rstrip("s")) <= float(config["pluginConfig"]["timeout"].rstrip("s"))
        )


# -- the commands, run as the DaemonSet runs them -----------------------------------------------------------


@pytest.fixture(scope="module")
def image(lab, nodedoc_image) -> str:
    archive, _ = nodedoc_image
    proc = ctr(lab, NAMESPACE, "images", "import", str(archive))
    assert proc.returncode == 0, proc.stderr
    return ctr(lab, NAMESPACE, "images", "ls", "-q").stdout.split()[0]


def as_daemonset(lab, image: str, container: dict, argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``argv`` in nodedoc's image with ``container``'s security context and the DaemonSet's mounts.
    The lab's socket is not the standard one, so CONTAINER_RUNTIME_ENDPOINT names it, as crictl's
    discovery reads it; everything else nodedoc finds under /host by itself."""
    sc = container["securityContext"]
    assert sc["capabilities"]["drop"] == ["ALL"]
    caps = [f"--cap-drop=CAP_{c}" for c in DEFAULT_CAPS] + [
        f"--cap-add=CAP_{c}" for c in sc["capabilities"]["add"]
    ]
    env = ["--env=NODE_NAME=lab-node", f"--env=CONTAINER_RUNTIME_ENDPOINT=unix:///host{lab.socket}"]
    return ctr(
        lab,
        NAMESPACE,
        "run", "--rm", "--net-host", "--read-only", *caps, *env,
        "--with-ns", f"pid:/proc/{lab.pid}/ns/pid",
        "--mount", "type=bind,src=/,dst=/host,options=rbind:ro",
        image, f"deploy-{os.urandom(3).hex()}", *argv,
    )  # fmt: skip


def npd_container() -> dict:
    [spec] = [
        s
        for s in pod_specs()
        if any("custom-plugin-monitor" in " ".join(c["command"]) for c in s["containers"])
    ]
    return spec["containers"][0]


@pytest.mark.lab
def test_every_rule_answers_ok_on_a_healthy_lab_and_names_seed_002(lab, image) -> None:
    container = npd_container()
    rules = {r["condition"]: r for r in monitor()["rules"]}
    with soft_limit_held():  # no other test's shrunken pipes while the healthy lab is judged
        answers = {c: as_daemonset(lab, image, container, [r["path"], *r["args"]]) for c, r in rules.items()}
    for condition, proc in answers.items():
        assert proc.returncode == 0, f"{condition}: {proc.stdout}{proc.stderr}"
        assert proc.stdout.startswith("ok: ") and len(proc.stdout.strip()) <= 80
    rule = rules["ContainerdSnapshotDamaged"]
    with pause_removed(lab):
        damaged = as_daemonset(lab, image, container, [rule["path"], *rule["args"]])
    assert damaged.returncode == 1 and damaged.stdout.startswith("CRITICAL snapshot."), damaged.stdout
    assert len(damaged.stdout.strip()) <= monitor()["pluginConfig"]["max_output_length"]


@pytest.mark.lab
def test_the_report_daemonset_writes_a_named_report_fleet_reads(lab, image, tmp_path) -> None:
    [spec] = [s for s in pod_specs() if s["containers"][0]["name"] == "report"]
    container = spec["containers"][0]
    loop = container["command"][-1]
    once = loop.split("do ", 1)[1].split(";", 1)[0]  # the loop's body, once: `nodedoc ... report ...`
    proc = as_daemonset(lab, image, container, shlex.split(once))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["node"]["name"] == "lab-node" and doc["schema"].startswith("nodedoc.report/")
    (tmp_path / "r.json").write_text(proc.stdout)
    merged = subprocess.run(
        ["python3", "-m", "tui.cli", "fleet", "--format", "json", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert json.loads(merged.stdout)["nodes"] == 1


def test_debug_example_runs_kubectl_debug_as_the_readme_says() -> None:
    script = (DEPLOY / "debug-node.sh").read_text()
    assert 'kubectl debug "node/$node" -it --profile=sysadmin' in script and "--host-root /host" in script
    assert Path(DEPLOY / "debug-node.sh").stat().st_mode & 0o111
