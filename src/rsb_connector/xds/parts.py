"""How a document's bytes travel inside an XDS message: as an MTOM attachment or inline base64.

Shared by ITI-41 (``xdsb:Document`` in a Provide and Register request) and ITI-43 (``xdsb:Document`` in a
Retrieve response).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["DocumentPart", "Inline", "XopRef"]


@dataclass(frozen=True, slots=True)
class XopRef:
    """The document is an MTOM attachment: ``xop:Include href="cid:<cid>"``.

    Attributes:
        cid: the attachment's Content-ID without ``cid:`` and without angle brackets, percent-decoded.
    """

    cid: str


@dataclass(frozen=True, slots=True)
class Inline:
    """The document is inline in the XML, as base64 text (``data`` holds the decoded bytes)."""

    data: bytes


DocumentPart: TypeAlias = XopRef | Inline
"""Where a document's bytes are: an MTOM attachment or inline."""
