"""What nodedoc knows beyond the node it reads: the issues each runtime release has, what to change for each
deprecation containerd reports, and how to fix what a probe found with the node's own paths and ids.

- :mod:`probes.knowledge.known_issues` the known issues and the containerd ↔ Kubernetes table
  (``data/known_issues.toml``, ``data/compatibility.toml``);
- :mod:`probes.knowledge.deprecations` the fix for each containerd deprecation id (``data/deprecations.toml``);
- :mod:`probes.knowledge.remedies` remediation steps built from what a probe found.

Probes import it; readers never do (a reader returns data, it does not judge).
"""
