"""The readers of the node, one subpackage per source of truth: ``cri`` (the runtime's API), ``disk``
(containerd's own files under its root), ``procfs`` (processes, their pipes and network namespaces) and
``host`` (binaries, unit files and configuration). A reader returns data or raises a
:class:`probes.errors.NodedocError`; it knows nothing of probes, findings or screens."""
