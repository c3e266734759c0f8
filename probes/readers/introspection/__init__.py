"""containerd's own introspection API (not CRI): our slice of its proto, the stubs, and the client.

Regenerate the stubs with ``python -m probes.readers.introspection.regenerate``.
"""
