"""The protobuf wire format as containerd stores it in bolt values: varints and ``Any`` messages.

Kept apart from :mod:`probes.readers.disk.containerd_store` so that a reader of a few records
(:mod:`probes.readers.disk.sandbox_locations`) need not import the whole store.
"""

from __future__ import annotations


def uvarint(data: bytes) -> int:
    """Go's ``binary.Uvarint``; raises ValueError when the bytes are not one."""
    value, shift = 0, 0
    for i, b in enumerate(data):
        if i >= 10:
            break
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value
        shift += 7
    raise ValueError("bad uvarint")


def varint(data: bytes) -> int:
    """Go's ``binary.Varint`` (zig-zag)."""
    u = uvarint(data)
    return ~(u >> 1) if u & 1 else u >> 1


def proto_any(data: bytes) -> tuple[str, bytes]:
    """(type URL, value) of a protobuf ``Any``: fields 1 and 2, both length-delimited."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        n, shift = 0, 0
        while i < len(data):
            b = data[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        if tag & 7 != 2:
            break
        out[tag >> 3] = data[i : i + n]
        i += n
    return out.get(1, b"").decode(errors="replace"), out.get(2, b"")
