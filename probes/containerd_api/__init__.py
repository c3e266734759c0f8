"""nodedoc's own slices of containerd's gRPC API (not CRI), compiled by ``python -m probes.containerd_api.regenerate``."""
