"""The one place that parses XML arriving from the wire.

Every byte string that came from a peer goes through :func:`parse_xml`: DTDs (any ``<!DOCTYPE``), entity
declarations and external references are refused outright, nothing is fetched from the network or the file system,
and the input is bounded in size, depth and (optionally) element count. A refusal raises :class:`UnsafeXmlError`,
whose message says what was wrong without echoing the document or a stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from rsb_connector.errors import ProtocolError

__all__ = ["DEFAULT_LIMITS", "UnsafeXmlError", "XmlLimits", "make_parser", "parse_xml"]


class UnsafeXmlError(ProtocolError):
    """XML from a peer was refused: a DTD or entity, too large, too deep, too many elements, or malformed."""


@dataclass(frozen=True, slots=True)
class XmlLimits:
    """Bounds applied to wire XML.

    Attributes:
        max_bytes: largest accepted document, in bytes (10 MiB: a SOAP root part; attachments travel apart).
        max_depth: deepest element nesting accepted (the root element is depth 1).
        max_elements: most elements accepted, or ``None`` for no element-count limit.
    """

    max_bytes: int = 10 * 1024 * 1024
    max_depth: int = 100
    max_elements: int | None = None


DEFAULT_LIMITS = XmlLimits()
"""The limits :func:`parse_xml` applies when none are given."""


def make_parser() -> etree.XMLParser:
    """A new hardened lxml parser: no entity resolution, no DTD loading, no network, no huge trees.

    Comments, processing instructions and whitespace are kept as they are (signatures depend on them).
    Parsers are not thread-safe: make one per use.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        remove_blank_text=False,
    )


def _first_error(exc: etree.XMLSyntaxError) -> str:
    message = str(exc.msg or exc).strip() or "the document is not well-formed XML"
    return message.splitlines()[0]


def parse_xml(data: bytes, *, limits: XmlLimits = DEFAULT_LIMITS) -> etree._Element:
    """Parse XML received from a peer, refusing anything unsafe.

    Args:
        data: the raw document bytes (the encoding comes from the XML declaration or the BOM).
        limits: size, depth and element-count bounds.

    Returns:
        The root element.

    Raises:
        UnsafeXmlError: the document has a DTD (any ``<!DOCTYPE``, hence any entity declaration or external
            reference), exceeds a limit, or is not well-formed XML.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes bytes, not text: let the XML declaration give the encoding")
    size = len(data)
    if size > limits.max_bytes:
        raise UnsafeXmlError(f"XML document too large: {size} bytes, the limit is {limits.max_bytes}")
    if size == 0:
        raise UnsafeXmlError("malformed XML: the document is empty")
    try:
        root = etree.fromstring(bytes(data), parser=make_parser())
    except etree.XMLSyntaxError as exc:
        raise UnsafeXmlError(f"malformed XML: {_first_error(exc)}") from None
    docinfo: Any = root.getroottree().docinfo  # lxml-stubs lack DocInfo.doctype / system_url
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.system_url:
        raise UnsafeXmlError(
            "XML with a document type declaration (<!DOCTYPE>) is refused: DTDs and entities are not allowed"
        )
    _check_shape(root, limits)
    return root


def _check_shape(root: etree._Element, limits: XmlLimits) -> None:
    """Walk the tree once, enforcing depth and element count (and refusing entity references)."""
    max_depth = limits.max_depth
    max_elements = limits.max_elements
    count = 0
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if isinstance(element, etree._Entity):
            raise UnsafeXmlError("XML with entity references is refused")
        if not isinstance(element.tag, str):
            continue
        count += 1
        if depth > max_depth:
            raise UnsafeXmlError(f"XML nested too deeply: more than {max_depth} levels")
        if max_elements is not None and count > max_elements:
            raise UnsafeXmlError(f"XML has too many elements: more than {max_elements}")
        stack.extend((child, depth + 1) for child in element)
