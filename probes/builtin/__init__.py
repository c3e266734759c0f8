"""Built-in probes, registered through the same nodedoc.probes entry points as third-party ones."""
