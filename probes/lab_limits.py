"""Why a printed step was not run on the project's lab node: the reasons :func:`probes.api.untested` gives.

The lab (``tui/lab``) is a real containerd, runc and CNI node without systemd, a kubelet or crictl; its
tests never change the machine's own binaries, packages, filesystems or kernel command line.
"""

NO_SYSTEMD = "the lab runs containerd without systemd"
NO_KUBELET = "the lab has no kubelet or API server"
NO_CRICTL = "the lab has no crictl"
BY_HAND = "it is an edit by hand"
SHOWS_ONLY = "it only shows the state"
CHANGES_MACHINE = "it changes the machine's binaries, packages or disks, which the tests never do"
NOT_AFFECTED = "the lab's runc and containerd are not affected versions"
SHARED_SETTING = "the tests do not turn this machine-wide setting off under the other labs on the machine"
REPLACES_CONFIG = "it replaces the whole config, and with it the lab's private root, state and socket"
