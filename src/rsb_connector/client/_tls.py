"""TLS settings of the clients: which server certificates to trust and which client certificate to present.

``httpx`` takes an :class:`ssl.SSLContext`; :func:`ssl_context` builds one from what people have at hand: a CA file
(the development PKI's ``ca.pem``) and an :class:`~rsb_connector.security.identity.Identity` (or PEM file paths) for
mutual TLS. OpenSSL loads client certificates from files only, so an identity's certificate chain and key are
written to a private temporary directory (mode 0700, the key encrypted with a one-time password), loaded, and
deleted at once.
"""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from pathlib import Path
from typing import TypeAlias

from cryptography.hazmat.primitives import serialization

from ..security.identity import Identity

__all__ = ["CertArg", "VerifyArg", "ssl_context"]

VerifyArg: TypeAlias = bool | str | os.PathLike[str] | ssl.SSLContext
"""``True`` (the usual public CAs), ``False`` (no check: never in production), a CA file, or a ready context."""
CertArg: TypeAlias = Identity | tuple[str, str] | tuple[str, str, str | None] | None
"""A client certificate: an identity, or ``(cert_file, key_file[, password])``."""


def _load_identity(context: ssl.SSLContext, identity: Identity) -> None:
    password = secrets.token_urlsafe(24)
    chain = [identity.certificate, *(c for c in identity.intermediates if c.issuer != c.subject)]
    with tempfile.TemporaryDirectory(prefix="rsb-tls-") as tmp:
        cert_file = Path(tmp) / "cert.pem"
        key_file = Path(tmp) / "key.pem"
        cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(
                identity.private_key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.BestAvailableEncryption(password.encode()),
                )
            )
        context.load_cert_chain(cert_file, key_file, password)


def ssl_context(verify: VerifyArg = True, cert: CertArg = None) -> ssl.SSLContext | bool:
    """What to give ``httpx`` as ``verify``: ``verify`` itself when there is nothing to add, else a context that
    trusts ``verify`` and presents ``cert``."""
    if cert is None and isinstance(verify, bool | ssl.SSLContext):
        return verify
    if isinstance(verify, ssl.SSLContext):
        context = verify
    elif verify is True:
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
    elif verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=os.fspath(verify))
    if isinstance(cert, Identity):
        _load_identity(context, cert)
    elif cert is not None:
        certfile, keyfile, *rest = cert
        context.load_cert_chain(certfile, keyfile, rest[0] if rest else None)
    return context
