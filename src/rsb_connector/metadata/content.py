"""Hash (SHA-1, as XDS wants) and size of document content, computed without loading it into memory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeAlias

__all__ = ["CHUNK_SIZE", "ContentDigest", "ContentSource", "DigestingWriter", "digest", "iter_chunks"]

CHUNK_SIZE = 1 << 16

ContentSource: TypeAlias = bytes | bytearray | memoryview | os.PathLike[str] | BinaryIO
"""Document content: bytes in memory, a path to a file, or a binary stream (read from its current position)."""


@dataclass(frozen=True, slots=True)
class ContentDigest:
    """SHA-1 (lower-case hex, the XDS ``hash`` slot), SHA-256 (content address) and size in bytes."""

    sha1: str
    sha256: str
    size: int


def iter_chunks(source: ContentSource, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the content in chunks; a path is opened and closed here, a stream is read to its end."""
    if isinstance(source, bytes | bytearray | memoryview):
        view = memoryview(source)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    if isinstance(source, os.PathLike):
        with Path(source).open("rb") as fh:
            yield from iter_chunks(fh, chunk_size)
        return
    while chunk := source.read(chunk_size):
        yield chunk


class DigestingWriter:
    """Hashes what passes through it; usable on its own or wrapped around a sink while writing."""

    def __init__(self) -> None:
        self._sha1 = hashlib.sha1(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._size = 0

    def update(self, chunk: bytes) -> None:
        self._sha1.update(chunk)
        self._sha256.update(chunk)
        self._size += len(chunk)

    def result(self) -> ContentDigest:
        return ContentDigest(self._sha1.hexdigest(), self._sha256.hexdigest(), self._size)


def digest(source: ContentSource) -> ContentDigest:
    """SHA-1, SHA-256 and size of ``source``, streaming (a large file is never held in memory).

    A stream is consumed; when it is seekable it is put back where it was.
    """
    position: int | None = None
    if not isinstance(source, bytes | bytearray | memoryview | os.PathLike):
        try:
            position = source.tell() if source.seekable() else None
        except (OSError, AttributeError):
            position = None
    writer = DigestingWriter()
    for chunk in iter_chunks(source):
        writer.update(chunk)
    if position is not None and not isinstance(source, bytes | bytearray | memoryview | os.PathLike):
        source.seek(position)
    return writer.result()
