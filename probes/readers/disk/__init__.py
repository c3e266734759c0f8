"""containerd's own files under its root: the bbolt metadata and snapshot databases, the content store, overlay mounts and layer verification."""
