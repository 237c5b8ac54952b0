"""XOP (XML-binary Optimized Packaging): ``xop:Include`` references to MTOM attachments.

``href`` values are ``cid:`` URLs (RFC 2392) and may be percent-encoded: ``cid:doc%401@rsb`` names the MIME part
whose Content-ID is ``<doc@1@rsb>``. Matching always compares the percent-decoded form.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from urllib.parse import quote, unquote

from lxml import etree

from rsb_connector.errors import ProtocolError
from rsb_connector.xds.constants import XOP

__all__ = ["XOP_INCLUDE", "build_include", "cid_to_href", "href_to_cid", "resolve_for_validation", "xop_includes"]

XOP_INCLUDE = f"{{{XOP}}}Include"
"""Clark name of ``xop:Include``."""

_SAFE = "@!$&'()*+,;=:~"


def href_to_cid(href: str) -> str:
    """The Content-ID named by an ``xop:Include/@href``: ``cid:`` prefix and angle brackets removed, unquoted."""
    text = href.strip()
    if text[:4].lower() == "cid:":
        text = text[4:]
    return unquote(text).strip().strip("<>")


def cid_to_href(cid: str) -> str:
    """The ``cid:`` URL of a Content-ID (percent-encoding what a URL may not hold)."""
    return "cid:" + quote(cid.strip("<>"), safe=_SAFE)


def build_include(cid: str) -> etree._Element:
    """A new ``xop:Include`` element pointing at the attachment whose Content-ID is ``cid``."""
    include = etree.Element(XOP_INCLUDE, nsmap={"xop": XOP})
    include.set("href", cid_to_href(cid))
    return include


def xop_includes(root: etree._Element) -> list[tuple[etree._Element, str]]:
    """Every ``xop:Include`` under (and including) ``root``, with the decoded Content-ID it points at.

    Raises:
        ProtocolError: an ``xop:Include`` has no ``href``.
    """
    found: list[tuple[etree._Element, str]] = []
    for include in root.iter(XOP_INCLUDE):
        href = include.get("href")
        if not href or not href.strip():
            raise ProtocolError("an xop:Include has no href: it must name an MTOM part as cid:<content-id>")
        found.append((include, href_to_cid(href)))
    return found


def _lookup(attachments: Mapping[str, bytes], cid: str) -> bytes:
    if cid in attachments:
        return attachments[cid]
    for key, value in attachments.items():
        if href_to_cid(key) == cid:
            return value
    raise ProtocolError(f"xop:Include points at cid:{cid}, but no MIME part has that Content-ID")


def resolve_for_validation(root: etree._Element, attachments: Mapping[str, bytes]) -> etree._Element:
    """A copy of ``root`` with each ``xop:Include`` replaced by the base64 text of its attachment.

    This is the XOP-resolved infoset the XSDs describe (``xdsb:Document`` is base64): use it for schema
    validation of small documents only; the original tree is left untouched.

    Raises:
        ProtocolError: an ``xop:Include`` points at a Content-ID not in ``attachments``.
    """
    resolved = copy.deepcopy(root)
    for include, cid in xop_includes(resolved):
        data = _lookup(attachments, cid)
        parent = include.getparent()
        encoded = base64.b64encode(data).decode("ascii")
        if parent is None:
            raise ProtocolError("xop:Include cannot be the root element")
        previous = include.getprevious()
        tail = include.tail or ""
        if previous is not None:
            previous.tail = (previous.tail or "") + encoded + tail
        else:
            parent.text = (parent.text or "") + encoded + tail
        parent.remove(include)
    return resolved
