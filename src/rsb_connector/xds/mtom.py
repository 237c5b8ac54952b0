"""MTOM/XOP over ``multipart/related``: a streaming writer and an incremental, byte-exact parser.

Writing: :class:`MtomWriter` yields the multipart body in chunks (sync or async), reading attachments from bytes,
paths or streams 64 KiB at a time, so a 100 MB document never sits in memory.

Reading: :class:`MtomParser` is fed the body as it arrives from the network. The root part (the SOAP envelope) is
held in memory up to a limit; each attachment is written to a spool file while its SHA-1, SHA-256 and size are
computed. Attachments are byte-exact: the CRLF before a boundary belongs to the delimiter, never to the content.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path
from typing import BinaryIO

from rsb_connector.errors import ProtocolError
from rsb_connector.metadata.content import CHUNK_SIZE, ContentDigest, ContentSource, DigestingWriter, iter_chunks
from rsb_connector.xds.xop import href_to_cid

__all__ = [
    "DEFAULT_START_CID",
    "MtomMessage",
    "MtomParser",
    "MtomWriter",
    "OutgoingAttachment",
    "ReceivedAttachment",
    "is_mtom",
    "new_boundary",
    "new_cid",
    "parse_content_type",
]

DEFAULT_START_CID = "root.message@rsb"
"""Content-ID of the root part written by :class:`MtomWriter` unless told otherwise."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PARAM = re.compile(
    r"""\s*;\s*(?P<name>[!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^;\s]*))\s*""",
    re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type into its lower-cased media type and its parameters.

    Parameter names are lower-cased; values are unquoted (``"..."`` with backslash escapes) and kept as written.
    Parameters that cannot be read are skipped rather than guessed.

    >>> parse_content_type('multipart/related; type="application/xop+xml"; boundary=abc')
    ('multipart/related', {'type': 'application/xop+xml', 'boundary': 'abc'})
    """
    media, _, rest = value.partition(";")
    params: dict[str, str] = {}
    text = ";" + rest if rest else ""
    position = 0
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None:
            next_semicolon = text.find(";", position + 1)
            if next_semicolon == -1:
                break
            position = next_semicolon
            continue
        quoted = match.group("quoted")
        params[match.group("name").lower()] = (
            _ESCAPE.sub(r"\1", quoted) if quoted is not None else match.group("token") or ""
        )
        position = match.end()
        if position < len(text) and text[position] != ";":
            next_semicolon = text.find(";", position)
            if next_semicolon == -1:
                break
            position = next_semicolon
    return media.strip().lower(), params


def is_mtom(content_type: str) -> bool:
    """True for ``multipart/related`` with ``type="application/xop+xml"`` (an MTOM message)."""
    media, params = parse_content_type(content_type)
    return media == "multipart/related" and params.get("type", "").strip().lower() == "application/xop+xml"


def new_cid() -> str:
    """A fresh Content-ID (without angle brackets): ``<uuid4>@rsb``."""
    return f"{uuid.uuid4()}@rsb"


def new_boundary() -> str:
    """A fresh MIME boundary: long and random, so it never occurs inside a document."""
    return f"MIMEBoundary_{uuid.uuid4().hex}{uuid.uuid4().hex}"


def _param(value: str) -> str:
    if _TOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ============================================================================================== writing


@dataclass(slots=True)
class OutgoingAttachment:
    """One attachment to send.

    Attributes:
        cid: its Content-ID without angle brackets (the ``xop:Include`` says ``cid:<cid>``, percent-encoded).
        content: bytes, a path, or a binary stream (read from its current position, once).
        content_type: the part's media type.
    """

    cid: str
    content: ContentSource
    content_type: str = "application/octet-stream"


class MtomWriter:
    """The body of an MTOM message: the root part (SOAP envelope with ``xop:Include``) and the attachments.

    Iterate it (``for chunk in writer`` or ``async for chunk in writer``) to get the bytes; pass
    :attr:`content_type` (and :attr:`content_length` when known) as HTTP headers. Attachments given as bytes or
    paths can be iterated again (e.g. on a retry); a stream is read once.
    """

    def __init__(
        self,
        root_xml: bytes,
        attachments: Sequence[OutgoingAttachment],
        *,
        action: str | None = None,
        boundary: str | None = None,
        start_cid: str | None = None,
    ) -> None:
        """Prepare the message.

        Args:
            root_xml: the serialized SOAP envelope (UTF-8).
            attachments: the parts that ``xop:Include`` elements point at.
            action: the SOAP action, repeated as the ``action`` parameter of the Content-Type.
            boundary: the MIME boundary (a new random one when ``None``).
            start_cid: Content-ID of the root part (:data:`DEFAULT_START_CID` when ``None``).
        """
        self.root_xml = bytes(root_xml)
        self.attachments = list(attachments)
        self.action = action
        self.boundary = boundary or new_boundary()
        self.start_cid = (start_cid or DEFAULT_START_CID).strip("<>")
        seen: set[str] = {self.start_cid}
        for attachment in self.attachments:
            cid = attachment.cid.strip("<>")
            if cid in seen:
                raise ValueError(f"Content-ID <{cid}> is used twice in one MTOM message")
            seen.add(cid)
        parts = [
            "multipart/related",
            'type="application/xop+xml"',
            f'start="<{self.start_cid}>"',
            'start-info="application/soap+xml"',
        ]
        if action:
            parts.append(f"action={_param(action)}")
        parts.append(f"boundary={_param(self.boundary)}")
        self.content_type: str = "; ".join(parts)
        """The HTTP Content-Type of the message."""
        self.content_length: int | None = self._compute_length()
        """Total body length in bytes, or ``None`` when an attachment is a stream of unknown size."""

    def _root_head(self) -> bytes:
        return (
            f"--{self.boundary}\r\n"
            'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{self.start_cid}>\r\n"
            "\r\n"
        ).encode("ascii")

    def _attachment_head(self, attachment: OutgoingAttachment) -> bytes:
        return (
            f"\r\n--{self.boundary}\r\n"
            f"Content-Type: {attachment.content_type}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{attachment.cid.strip('<>')}>\r\n"
            "\r\n"
        ).encode("ascii")

    def _tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode("ascii")

    def _compute_length(self) -> int | None:
        total = len(self._root_head()) + len(self.root_xml) + len(self._tail())
        for attachment in self.attachments:
            content = attachment.content
            if isinstance(content, bytes | bytearray):
                size = len(content)
            elif isinstance(content, memoryview):
                size = content.nbytes
            elif isinstance(content, os.PathLike):
                size = Path(content).stat().st_size
            else:
                return None
            total += len(self._attachment_head(attachment)) + size
        return total

    def __iter__(self) -> Iterator[bytes]:
        """The body, chunk by chunk (attachments in pieces of at most 64 KiB)."""
        yield self._root_head() + self.root_xml
        for attachment in self.attachments:
            yield self._attachment_head(attachment)
            yield from iter_chunks(attachment.content, CHUNK_SIZE)
        yield self._tail()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, for async HTTP clients and servers.

        Files are read synchronously in 64 KiB pieces (a local read of that size does not stall an event loop).
        """
        for chunk in self:
            yield chunk

    def to_bytes(self) -> bytes:
        """The whole body in memory (for tests and small messages)."""
        return b"".join(self)


# ============================================================================================== reading


@dataclass(frozen=True, slots=True)
class ReceivedAttachment:
    """An attachment spooled to disk.

    Attributes:
        cid: its Content-ID without angle brackets.
        content_type: the part's Content-Type header (``application/octet-stream`` when absent).
        path: the spool file holding exactly the part's bytes.
        digest: SHA-1, SHA-256 and size, computed while the file was written.
    """

    cid: str
    content_type: str
    path: Path
    digest: ContentDigest

    def read_bytes(self) -> bytes:
        """The whole content (small attachments only)."""
        return self.path.read_bytes()


@dataclass(slots=True)
class MtomMessage:
    """A received MTOM message: the root part's bytes and the spooled attachments.

    The spool files belong to the caller from here on: move them or call :meth:`discard`.
    """

    root: bytes
    root_content_type: str
    attachments: dict[str, ReceivedAttachment] = field(default_factory=dict)

    def attachment(self, href: str) -> ReceivedAttachment:
        """The attachment an ``xop:Include/@href`` (``cid:...``, possibly percent-encoded) or a bare Content-ID names.

        Raises:
            ProtocolError: no part has that Content-ID.
        """
        raw = href.strip()
        if raw[:4].lower() == "cid:":
            raw = raw[4:]
        raw = raw.strip("<>")
        found = self.attachments.get(raw)
        if found is None:
            found = self.attachments.get(href_to_cid(href))
        if found is None:
            raise ProtocolError(f"the message refers to {href!r}, but no MIME part has that Content-ID")
        return found

    def discard(self) -> None:
        """Delete every spooled attachment file."""
        for attachment in self.attachments.values():
            with contextlib.suppress(FileNotFoundError):
                attachment.path.unlink()


class _State(Enum):
    PREAMBLE = auto()
    AFTER_DELIMITER = auto()
    HEADERS = auto()
    BODY = auto()
    EPILOGUE = auto()
    FAILED = auto()


_MAX_HEADER_BYTES = 16 * 1024
_MAX_BOUNDARY_LINE = 1024
_WRITE_BUFFER = 1 << 20


class _Spool:
    """An attachment being written to its spool file while hashed."""

    def __init__(self, cid: str, content_type: str, spool_dir: Path, limit: int | None) -> None:
        fd, name = tempfile.mkstemp(prefix="mtom-", suffix=".part", dir=spool_dir)
        self.path = Path(name)
        self.cid = cid
        self.content_type = content_type
        self.limit = limit
        self.file: BinaryIO = os.fdopen(fd, "wb", buffering=_WRITE_BUFFER)
        self.digest = DigestingWriter()
        self.size = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.limit is not None and self.size > self.limit:
            raise ProtocolError(f"MTOM attachment <{self.cid}> is larger than the limit of {self.limit} bytes")
        self.digest.update(data)
        self.file.write(data)

    def finish(self) -> ReceivedAttachment:
        self.file.close()
        return ReceivedAttachment(self.cid, self.content_type, self.path, self.digest.result())

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    current: str | None = None
    for raw_line in block.decode("latin-1").split("\r\n"):
        if not raw_line:
            continue
        if raw_line[0] in " \t" and current is not None:
            headers[current] += " " + raw_line.strip()
            continue
        name, colon, value = raw_line.partition(":")
        if not colon or not name.strip():
            raise ProtocolError(f"malformed MIME part header line {raw_line[:80]!r}")
        current = name.strip().lower()
        headers[current] = value.strip()
    return headers


class MtomParser:
    """Incremental parser of a ``multipart/related`` (MTOM/XOP) body.

    Feed it chunks as they arrive, then :meth:`close` it. On any error (``ProtocolError`` from :meth:`feed` or
    :meth:`close`) the spool files already written are deleted; :meth:`discard` does the same on the caller's
    own errors.
    """

    def __init__(
        self,
        content_type: str,
        *,
        spool_dir: Path,
        max_root_bytes: int = 10 * 1024 * 1024,
        max_attachment_bytes: int | None = None,
        max_parts: int = 1000,
    ) -> None:
        """Set up for a message of the given Content-Type.

        Args:
            content_type: the HTTP Content-Type (``multipart/related`` with a ``boundary``; ``start`` optional:
                without it the first part is the root).
            spool_dir: an existing directory where attachments are written.
            max_root_bytes: largest accepted root part (and preamble).
            max_attachment_bytes: largest accepted attachment, or ``None`` for no limit.
            max_parts: most MIME parts accepted.

        Raises:
            ProtocolError: the Content-Type is not ``multipart/related`` or has no boundary.
        """
        media, params = parse_content_type(content_type)
        if media != "multipart/related":
            raise ProtocolError(f"expected a multipart/related (MTOM) message, got Content-Type {media or '(none)'!r}")
        boundary = params.get("boundary", "")
        if not boundary:
            raise ProtocolError("the multipart/related Content-Type has no boundary parameter")
        if len(boundary) > 200:
            raise ProtocolError("the MIME boundary is longer than 200 characters")
        self.boundary = boundary
        self.start = params.get("start", "").strip().strip("<>") or None
        self.spool_dir = Path(spool_dir)
        self.max_root_bytes = max_root_bytes
        self.max_attachment_bytes = max_attachment_bytes
        self.max_parts = max_parts
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._keep = len(self._delimiter) - 1
        # A virtual CRLF in front lets the first boundary line match the same delimiter as the others.
        self._buffer = bytearray(b"\r\n")
        self._state = _State.PREAMBLE
        self._preamble_size = 0
        self._parts = 0
        self._root: bytearray | None = None
        self._root_content_type = ""
        self._root_cid: str | None = None
        self._in_root = False
        self._spool: _Spool | None = None
        self._attachments: dict[str, ReceivedAttachment] = {}
        self._seen_cids: set[str] = set()

    # ------------------------------------------------------------------------------------------- public

    def feed(self, chunk: bytes) -> None:
        """Consume the next piece of the body.

        Raises:
            ProtocolError: the body is malformed or over a limit (spool files are deleted).
        """
        if self._state is _State.FAILED:
            raise ProtocolError("the MTOM parser already failed or was discarded")
        if self._state is _State.EPILOGUE or not chunk:
            return
        self._buffer += chunk
        try:
            self._process()
        except BaseException:
            self.discard()
            raise

    def close(self) -> MtomMessage:
        """Finish: check the message is complete and return it.

        Raises:
            ProtocolError: truncated (no closing boundary), no root part, or the start part is missing
                (spool files are deleted).
        """
        try:
            return self._finish()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Delete every spool file written so far (idempotent); the parser cannot be used afterwards."""
        if self._spool is not None:
            self._spool.abort()
            self._spool = None
        for attachment in self._attachments.values():
            with contextlib.suppress(FileNotFoundError):
                attachment.path.unlink()
        self._attachments.clear()
        self._buffer = bytearray()
        self._state = _State.FAILED

    # ------------------------------------------------------------------------------------------- internals

    def _finish(self) -> MtomMessage:
        if self._state is _State.FAILED:
            raise ProtocolError("the MTOM parser already failed or was discarded")
        if self._state is _State.PREAMBLE:
            raise ProtocolError(
                f"the body is not multipart: the boundary {self.boundary!r} from the Content-Type never appears "
                "(a message labelled MTOM without a multipart body?)"
            )
        if self._state is not _State.EPILOGUE:
            raise ProtocolError("the multipart body ended before its closing boundary: the message is truncated")
        if self._root is None:
            if self.start is not None:
                raise ProtocolError(f"the start part <{self.start}> named by the Content-Type is missing")
            raise ProtocolError("the multipart body has no root part")
        message = MtomMessage(bytes(self._root), self._root_content_type, dict(self._attachments))
        self._attachments.clear()
        self._state = _State.FAILED  # used up: a second close() or feed() is an error
        return message

    def _process(self) -> None:
        while True:
            state = self._state
            if state is _State.BODY:
                if not self._body():
                    return
            elif state is _State.AFTER_DELIMITER:
                if not self._after_delimiter():
                    return
            elif state is _State.HEADERS:
                if not self._headers():
                    return
            elif state is _State.PREAMBLE:
                if not self._preamble():
                    return
            else:  # EPILOGUE: ignore everything after the closing delimiter
                self._buffer.clear()
                return

    def _preamble(self) -> bool:
        buffer = self._buffer
        index = buffer.find(self._delimiter)
        if index == -1:
            drop = max(0, len(buffer) - self._keep)
            self._preamble_size += drop
            del buffer[:drop]
            if self._preamble_size > self.max_root_bytes:
                raise ProtocolError(
                    f"no MIME boundary {self.boundary!r} in the first {self.max_root_bytes} bytes: "
                    "the body is not the multipart message its Content-Type announces"
                )
            return False
        del buffer[: index + len(self._delimiter)]
        self._state = _State.AFTER_DELIMITER
        return True

    def _after_delimiter(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        if buffer[:2] == b"--":
            self._state = _State.EPILOGUE
            buffer.clear()
            return False
        end = buffer.find(b"\r\n")
        if end == -1:
            if len(buffer) > _MAX_BOUNDARY_LINE:
                raise ProtocolError("malformed MIME boundary line: no line end after the boundary")
            return False
        if buffer[:end].strip(b" \t"):
            raise ProtocolError("malformed MIME boundary line: unexpected characters after the boundary")
        del buffer[: end + 2]
        self._state = _State.HEADERS
        return True

    def _headers(self) -> bool:
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        if buffer[:2] == b"\r\n":
            block = b""
            del buffer[:2]
        else:
            end = buffer.find(b"\r\n\r\n")
            if end == -1:
                if len(buffer) > _MAX_HEADER_BYTES:
                    raise ProtocolError(f"MIME part headers longer than {_MAX_HEADER_BYTES} bytes")
                return False
            block = bytes(buffer[:end])
            del buffer[: end + 4]
        self._start_part(_parse_headers(block))
        self._state = _State.BODY
        return True

    def _start_part(self, headers: dict[str, str]) -> None:
        self._parts += 1
        if self._parts > self.max_parts:
            raise ProtocolError(f"the multipart message has more than {self.max_parts} parts")
        encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
        if encoding not in {"binary", "8bit", "7bit"}:
            raise ProtocolError(
                f"MIME part #{self._parts} uses Content-Transfer-Encoding {encoding!r}: MTOM parts must be binary"
            )
        cid = headers.get("content-id", "").strip().strip("<>").strip() or None
        content_type = headers.get("content-type", "").strip()
        is_root = (cid == self.start) if self.start is not None else self._parts == 1
        if is_root and self._root is None:
            self._root = bytearray()
            self._root_content_type = content_type
            self._root_cid = cid
            self._in_root = True
            if cid is not None:
                self._seen_cids.add(cid)
            return
        if cid is None:
            raise ProtocolError(f"MIME part #{self._parts} has no Content-ID: an xop:Include cannot refer to it")
        if cid in self._seen_cids:
            raise ProtocolError(f"two MIME parts have the same Content-ID <{cid}>")
        self._seen_cids.add(cid)
        self._in_root = False
        self._spool = _Spool(cid, content_type or "application/octet-stream", self.spool_dir, self.max_attachment_bytes)

    def _emit(self, data: bytes) -> None:
        if self._in_root:
            assert self._root is not None
            if len(self._root) + len(data) > self.max_root_bytes:
                raise ProtocolError(f"the MTOM root part is larger than the limit of {self.max_root_bytes} bytes")
            self._root += data
        elif self._spool is not None:
            self._spool.write(data)

    def _end_part(self) -> None:
        if self._in_root:
            self._in_root = False
            return
        if self._spool is not None:
            spool = self._spool
            self._spool = None
            try:
                attachment = spool.finish()
            except OSError as exc:
                spool.abort()
                raise ProtocolError(f"could not store MTOM attachment <{spool.cid}>: {exc.strerror}") from None
            self._attachments[attachment.cid] = attachment

    def _body(self) -> bool:
        buffer = self._buffer
        index = buffer.find(self._delimiter)
        if index == -1:
            flush = len(buffer) - self._keep
            if flush > 0:
                with memoryview(buffer) as view:
                    chunk = bytes(view[:flush])  # the one copy; no buffer export outlives this block
                del buffer[:flush]
                self._emit(chunk)
            return False
        with memoryview(buffer) as view:
            chunk = bytes(view[:index])
        del buffer[: index + len(self._delimiter)]
        self._emit(chunk)
        self._end_part()
        self._state = _State.AFTER_DELIMITER
        return True
