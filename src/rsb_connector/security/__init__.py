"""Security binding: identities, the development PKI, trust, WS-Security, JWT, and the one hardened XML parser.

- :class:`Identity` (PKCS#12 or PEM) and :class:`Principal` (who a certificate names);
- :func:`init_pki` / :func:`load_pki`: the development PKI of ``rsb hub pki init``;
- :class:`TrustStore` and :class:`ReplayCache`: which certificates are believed, which messages were seen;
- :func:`sign_envelope` / :class:`WsSecurityVerifier`: WS-Security on SOAP;
- :func:`make_client_assertion` / :func:`verify_client_assertion`, :func:`issue_access_token` /
  :func:`verify_access_token`: OAuth2 ``private_key_jwt`` and the hub's bearer tokens;
- :func:`parse_xml`: XML from the wire, DTDs and entities refused, with size limits.

The names are loaded on first use, so importing the parser does not load the cryptography stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rsb_connector.security.xml import DEFAULT_LIMITS, UnsafeXmlError, XmlLimits, parse_xml

if TYPE_CHECKING:
    from rsb_connector.security.identity import Identity, IdentityError, Principal
    from rsb_connector.security.jwt import (
        JwtError,
        issue_access_token,
        make_client_assertion,
        verify_access_token,
        verify_client_assertion,
    )
    from rsb_connector.security.pki import PkiDescription, PkiError, init_pki, load_pki
    from rsb_connector.security.trust import ReplayCache, TrustStore, UntrustedCertificate
    from rsb_connector.security.wssec import VerifiedMessage, WsSecurityError, WsSecurityVerifier, sign_envelope

__all__ = [
    "DEFAULT_LIMITS",
    "Identity",
    "IdentityError",
    "JwtError",
    "PkiDescription",
    "PkiError",
    "Principal",
    "ReplayCache",
    "TrustStore",
    "UnsafeXmlError",
    "UntrustedCertificate",
    "VerifiedMessage",
    "WsSecurityError",
    "WsSecurityVerifier",
    "XmlLimits",
    "init_pki",
    "issue_access_token",
    "load_pki",
    "make_client_assertion",
    "parse_xml",
    "sign_envelope",
    "verify_access_token",
    "verify_client_assertion",
]

_LAZY = {
    "Identity": "identity",
    "IdentityError": "identity",
    "Principal": "identity",
    "JwtError": "jwt",
    "issue_access_token": "jwt",
    "make_client_assertion": "jwt",
    "verify_access_token": "jwt",
    "verify_client_assertion": "jwt",
    "PkiDescription": "pki",
    "PkiError": "pki",
    "init_pki": "pki",
    "load_pki": "pki",
    "ReplayCache": "trust",
    "TrustStore": "trust",
    "UntrustedCertificate": "trust",
    "VerifiedMessage": "wssec",
    "WsSecurityError": "wssec",
    "WsSecurityVerifier": "wssec",
    "sign_envelope": "wssec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rsb_connector.security' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rsb_connector.security.{module}"), name)
    globals()[name] = value
    return value
