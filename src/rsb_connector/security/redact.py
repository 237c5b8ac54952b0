"""Redaction of protocol text shown to people: reports, the hub's connector-validation records.

:func:`redact` turns a SOAP envelope, a FHIR JSON body or an HTTP exchange written out as text into something safe
to keep and show: document content replaced by its size, security tokens (WS-Security binary tokens, signature
values, certificates, bearer tokens, client assertions, issued access tokens) replaced, every SSIN-like run of 11
digits masked (:func:`~rsb_connector.identifiers.mask_ssin`), and the text cut to a size limit.

It lives in the security layer (below the hub and the conformance suite) so that both use the one implementation:
:func:`rsb_connector.conformance.results.excerpt` is this function with the report's default limit.
"""

from __future__ import annotations

import re
from typing import Final

from ..identifiers import mask_ssin

__all__ = ["redact"]

_BASE64_DOCUMENT: Final = re.compile(r"(<(?:\w+:)?Document\b[^>]*>)([A-Za-z0-9+/=\s]{64,})(</(?:\w+:)?Document>)")
_JSON_DATA: Final = re.compile(r'("data"\s*:\s*")([A-Za-z0-9+/=]{16,})(")')
_SECURITY_BLOBS: Final = re.compile(
    r"(<(?:\w+:)?(?:BinarySecurityToken|SignatureValue|X509Certificate)\b[^>]*>)([A-Za-z0-9+/=\s]{40,})(</)"
)
_BEARER: Final = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")
_ASSERTION: Final = re.compile(r"(client_assertion=)[A-Za-z0-9._~+/=%-]+")
_TOKEN_JSON: Final = re.compile(r'("access_token"\s*:\s*")[^"]+(")')


def redact(text: str, limit: int | None = None) -> str:
    """``text`` made fit to show: document content replaced by its size, tokens and client assertions replaced,
    every SSIN-like run masked, and cut to ``limit`` characters (``None``: not cut).

    Base64 document content is recognised inside ``<Document>`` elements (64 characters or more) and in JSON
    ``"data"`` members (16 or more); callers that know the structure of what they show should replace shorter
    content themselves before calling this.
    """
    text = _BASE64_DOCUMENT.sub(
        lambda m: f"{m.group(1)}[document content: {len(m.group(2))} base64 characters]{m.group(3)}", text
    )
    text = _JSON_DATA.sub(
        lambda m: f"{m.group(1)}[document content: {len(m.group(2))} base64 characters]{m.group(3)}", text
    )
    text = _SECURITY_BLOBS.sub(lambda m: f"{m.group(1)}[{len(m.group(2))} base64 characters]{m.group(3)}", text)
    text = _BEARER.sub(r"\1[token]", text)
    text = _ASSERTION.sub(r"\1[signed assertion]", text)
    text = _TOKEN_JSON.sub(r"\1[token]\2", text)
    text = mask_ssin(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + f"\n… [{len(text) - limit} more characters]"
    return text
