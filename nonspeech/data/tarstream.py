"""A lean reader of tar archives for webdataset shards: regular members of ustar, GNU and PAX archives.

Python's tarfile spends most of a shard read on header objects and copies; this walks a whole shard
held in one buffer (a memory map or the bytes of a download) and yields (name, memoryview) pairs
straight from the 512-byte headers, verifying each header's checksum.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator

BLOCK = 512
REGULAR = (b"0", b"\0", b"7")
Archive = bytes | memoryview | mmap.mmap


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the high bit is set."""
    if field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    return int(field.rstrip(b"\0 ").strip() or b"0", 8)


def _header_name(header: bytes) -> str:
    name = header[:100].split(b"\0", 1)[0]
    prefix = header[345:500].split(b"\0", 1)[0] if header[257:262] == b"ustar" else b""
    return (prefix + b"/" + name if prefix else name).decode()


def _pax_path(records: bytes) -> str | None:
    """The `path` record of a PAX extended header, if it has one."""
    while records:
        length = int(records.split(b" ", 1)[0])
        key, _, value = records[:length].split(b" ", 1)[1].partition(b"=")
        if key == b"path":
            return value[:-1].decode()
        records = records[length:]
    return None


def tar_members(archive: Archive, source: str) -> Iterator[tuple[str, memoryview]]:
    """(name, data) of each regular file of a tar archive in memory, in order; ValueError on a corrupt archive."""
    view, offset, long_name = memoryview(archive), 0, None
    while offset + BLOCK <= len(view):
        header = bytes(view[offset:offset + BLOCK])
        if not any(header):
            return
        checksum = header[148:156]
        if _number(checksum) != sum(header) - sum(checksum) + 256:  # the checksum field counts as spaces
            raise ValueError(f"{source}: corrupt tar header (checksum mismatch)")
        size, kind = _number(header[124:136]), header[156:157]
        start = offset + BLOCK
        if start + size > len(view):
            raise ValueError(f"{source}: truncated tar member")
        data, offset = view[start:start + size], start + size + (-size % BLOCK)
        if kind == b"L":
            long_name = bytes(data).split(b"\0", 1)[0].decode()
        elif kind == b"x":
            long_name = _pax_path(bytes(data)) or long_name
        elif kind in REGULAR:
            yield long_name or _header_name(header), data
            long_name = None


def tar_samples(archive: Archive, source: str) -> Iterator[dict]:
    """webdataset samples: consecutive members sharing a key (name up to the basename's first dot), keyed by
    extension, with `__key__` and `__url__`."""
    sample: dict = {}
    for name, data in tar_members(archive, source):
        dot = name.find(".", name.rfind("/") + 1)
        key, extension = (name[:dot], name[dot + 1:].lower()) if dot >= 0 else (name, "")
        if sample.get("__key__") != key:
            if sample:
                yield sample
            sample = {"__key__": key, "__url__": source}
        sample[extension] = data
    if sample:
        yield sample
