"""WS-Security 1.1 for SOAP 1.2: sign an envelope, and verify one as strictly as a hub must.

Signing (:func:`sign_envelope`) adds, as the FIRST child of ``soap:Header``::

    <wsse:Security soap:mustUnderstand="1">
      <wsu:Timestamp wsu:Id="TS-…"><wsu:Created>…</wsu:Created><wsu:Expires>…</wsu:Expires></wsu:Timestamp>
      <wsse:BinarySecurityToken ValueType="…#X509v3" EncodingType="…#Base64Binary" wsu:Id="X509-…">…</…>
      <ds:Signature>                       detached: RSA-SHA256, SHA-256 digests, exclusive C14N everywhere
        <ds:SignedInfo> references to the Body, the Timestamp and the WS-Addressing headers (wsu:Id on each)
        <ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI="#X509-…"/></…></ds:KeyInfo>
      </ds:Signature>
    </wsse:Security>

Callers serialize the signed tree ONCE (``rsb_connector.xds.soap.serialize``: no pretty-printing) and send exactly
those bytes: re-indenting or re-serializing with other namespace declarations breaks the signature.

Verification (:class:`WsSecurityVerifier`) refuses, with a :class:`WsSecurityError` carrying a WS-Security fault
code, anything but: exactly one ``wsse:Security`` header holding exactly one ``ds:Signature`` and one
``wsu:Timestamp``; a ``BinarySecurityToken`` referenced by the signature's ``SecurityTokenReference`` whose
certificate chains to the :class:`~rsb_connector.security.trust.TrustStore` and names a principal; a signature
(exclusive C14N, RSA-SHA256/384/512, SHA-256/384/512 digests, exc-C14N as the only transform) that verifies;
references that point at exactly the ONE ``soap:Body`` child of the Envelope, the ONE Timestamp of the Security
header, and otherwise only at direct children of ``soap:Header`` (the WS-Addressing headers) or the token —
with no ``Id`` value used twice anywhere in the document (signature wrapping); a signed Timestamp that is fresh;
and a ``wsa:MessageID`` (and signature value) not seen before in the replay window. Only SIGNED copies are
returned for processing (:class:`VerifiedMessage`): ``body`` and the addressing values come from what was signed.

Fault codes (``wsse:`` = the WS-Security 1.0 secext namespace, for the SOAP fault Subcode):

=================================  ====================================================================
``wsse:InvalidSecurity``           no or several Security headers / signatures; the signature does not
                                   cover the Body or the Timestamp (an unsigned message); references
                                   elsewhere or ambiguous ids (wrapping); malformed Timestamp; a replayed
                                   ``wsa:MessageID`` or signature (replay is reported as InvalidSecurity,
                                   like WSS4J does)
``wsse:UnsupportedAlgorithm``      a C14N, signature, digest or transform algorithm outside the pinned set
``wsse:SecurityTokenUnavailable``  the SecurityTokenReference does not lead to a BinarySecurityToken
``wsse:InvalidSecurityToken``      the token is not an X.509 certificate, does not chain to a trusted CA,
                                   is expired, or its subject names no principal
``wsse:FailedCheck``               a digest or the signature value does not verify (tampering)
``wsse:MessageExpired``            Timestamp expired, created in the future (beyond the clock skew), or
                                   with a lifetime above ``ttl_max``
=================================  ====================================================================

The XML-DSig processing is done here, on purpose narrow, with lxml's exclusive C14N and ``cryptography``: a fixed
``ds:Signature`` shape (SignedInfo, SignatureValue, KeyInfo), same-document ``#id`` references resolved by this
module (never by a generic resolver), one exclusive C14N transform (an ``ec:InclusiveNamespaces`` PrefixList is
honoured, with the namespaces in scope in the whole document, as xmlsec computes it), digests compared in constant
time. A general-purpose XML-DSig library does far more per message (copies, schema validation, generic transforms)
than this profile needs; python-xmlsec interop is tested.
Verified signer certificates are remembered (by DER, within their validity window) so that path building runs
once per signer, not once per message.

QNames in text content: exclusive C14N keeps only the namespace declarations that element and attribute names use,
so the ``wsse`` of a signed fault's ``<soap:Value>wsse:InvalidSecurity</soap:Value>`` would be neither in the signed
copy nor covered by the signature. :func:`sign_envelope` therefore lists the prefixes of a fault's Code and Subcode
values in an ``ec:InclusiveNamespaces PrefixList`` on the Body reference (the remedy the Exclusive C14N
specification gives for QNames in content; WSS4J writes such PrefixLists too): the canonical Body declares them, the
signature covers their binding, and the verifier's signed copy of the Body resolves ``wsse:InvalidSecurity`` to the
WS-Security namespace.

MTOM: the signature covers the XOP document, i.e. a Body holding ``xop:Include`` elements, not the attachment
bytes. Attachments are protected by the hash and size slots inside the signed metadata, which the hub checks
against the received bytes. The base64 inside the Security header (the BinarySecurityToken, the SignatureValue)
must never be MTOM-optimised: only document content goes to attachments.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from xml.sax.saxutils import escape as _escape

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from rsb_connector.errors import RsbError
from rsb_connector.security.identity import MIN_RSA_KEY_SIZE, Identity, IdentityError, Principal, read_principal
from rsb_connector.security.trust import ReplayCache, ReplayCacheFull, TrustStore, UntrustedCertificate
from rsb_connector.security.xml import make_parser
from rsb_connector.xds.constants import SOAP12, WSA, WSSE, WSU
from rsb_connector.xds.soap import SoapMessage, fault_qname_prefixes

__all__ = [
    "BASE64_BINARY",
    "DS",
    "EXC_C14N",
    "FAILED_CHECK",
    "INVALID_SECURITY",
    "INVALID_SECURITY_TOKEN",
    "MESSAGE_EXPIRED",
    "RSA_SHA256",
    "SECURITY_TOKEN_UNAVAILABLE",
    "SHA256",
    "UNSUPPORTED_ALGORITHM",
    "WSSE",
    "WSU",
    "X509V3",
    "ReplayCache",
    "VerifiedMessage",
    "WsSecurityError",
    "WsSecurityVerifier",
    "sign_envelope",
]

DS: Final = "http://www.w3.org/2000/09/xmldsig#"
X509V3: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"

# Fault codes (QNames in the WSSE namespace), not secrets.
INVALID_SECURITY: Final = "wsse:InvalidSecurity"
UNSUPPORTED_ALGORITHM: Final = "wsse:UnsupportedAlgorithm"
SECURITY_TOKEN_UNAVAILABLE: Final = "wsse:SecurityTokenUnavailable"  # noqa: S105
INVALID_SECURITY_TOKEN: Final = "wsse:InvalidSecurityToken"  # noqa: S105
FAILED_CHECK: Final = "wsse:FailedCheck"
MESSAGE_EXPIRED: Final = "wsse:MessageExpired"

_S = f"{{{SOAP12}}}"
_A = f"{{{WSA}}}"
_SE = f"{{{WSSE}}}"
_U = f"{{{WSU}}}"
_D = f"{{{DS}}}"
_WSU_ID = f"{_U}Id"

EC: Final = EXC_C14N
"""Namespace of ``ec:InclusiveNamespaces`` (the exclusive C14N algorithm URI)."""

_KNOWN_SIGNERS: Final = 1024
"""How many verified signer certificates a verifier remembers (then it starts over)."""

_SIGNATURE_HASHES: Final[dict[str, type[hashes.HashAlgorithm]]] = {
    RSA_SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
_DIGEST_FUNCTIONS: Final[dict[str, Callable[[bytes], Any]]] = {
    SHA256: hashlib.sha256,
    "http://www.w3.org/2001/04/xmldsig-more#sha384": hashlib.sha384,
    "http://www.w3.org/2001/04/xmlenc#sha512": hashlib.sha512,
}
# WS-Addressing headers that may appear once each (RelatesTo too: one reply to one message).
_SINGLE_WSA: Final = frozenset(
    f"{_A}{n}" for n in ("Action", "MessageID", "To", "ReplyTo", "From", "FaultTo", "RelatesTo")
)


class WsSecurityError(RsbError):
    """A WS-Security check failed; nothing of the message may be processed.

    Attributes:
        fault_code: the WS-Security fault code as a prefixed QName (``wsse:FailedCheck``...), for the SOAP fault
            Subcode; :attr:`fault_qname` gives it with its namespace.
        message: what was wrong, for a person (never the message content).
    """

    def __init__(self, fault_code: str, message: str) -> None:
        self.fault_code = fault_code
        self.message = message
        super().__init__(f"{fault_code}: {message}")

    @property
    def fault_qname(self) -> etree.QName:
        """The fault code in the WS-Security secext namespace."""
        return etree.QName(WSSE, self.fault_code.partition(":")[2])


@dataclass(frozen=True, slots=True)
class VerifiedMessage:
    """What a verified message says, from the SIGNED parts only.

    Attributes:
        envelope: the original tree as received (for logging/auditing; do not process unsigned parts of it).
        certificate: the signer's certificate (chain-verified); ``chain`` the verified path to the anchor.
        signer: who the certificate names.
        signed_ids: the ``Id`` values the signature covers.
        body: a copy of the signed ``soap:Body`` (what was signed, byte for byte after exclusive C14N).
        created / expires: the signed Timestamp.
        action / message_id / to / relates_to: values of the SIGNED WS-Addressing headers, ``None`` when the
            header is absent or was not signed.
        signed_headers: copies of every signed direct child of ``soap:Header``.
        message: :meth:`soap_message`.
    """

    envelope: etree._Element
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    signer: Principal
    signed_ids: frozenset[str]
    body: etree._Element
    created: datetime
    expires: datetime
    action: str | None
    message_id: str | None
    to: str | None
    relates_to: str | None
    signed_headers: tuple[etree._Element, ...]
    message: SoapMessage = field(repr=False)

    @property
    def payload(self) -> etree._Element | None:
        """The first element child of the signed Body."""
        for child in self.body:
            if isinstance(child.tag, str):
                return child
        return None

    def soap_message(self) -> SoapMessage:
        """The message to process: a :class:`~rsb_connector.xds.soap.SoapMessage` made of the signed copies only
        (a new Envelope holding the signed header blocks and the signed Body, with the WS-Addressing values that
        were signed, ``None`` for any that was not). Process this, never :attr:`envelope`."""
        return self.message


# ------------------------------------------------------------------------------------------------------ signing


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _xsd_datetime(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _elements(parent: etree._Element) -> list[etree._Element]:
    return list(parent.iterchildren(etree.Element))


def _split_envelope(envelope: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    header = body = None
    for child in _elements(envelope):
        if child.tag == f"{_S}Header" and header is None and body is None:
            header = child
        elif child.tag == f"{_S}Body" and body is None:
            body = child
        else:
            return None, None
    return header, body


_ID_ATTRIBUTES = etree.XPath("//@*[local-name()='Id']")


def _id_attribute_values(root: etree._Element) -> dict[str, list[etree._Element]]:
    """Every value of an attribute whose local name is ``Id`` (wsu:Id or unqualified), with its elements."""
    found: dict[str, list[etree._Element]] = {}
    values = _ID_ATTRIBUTES(root)
    assert isinstance(values, list)
    for value in values:
        assert isinstance(value, etree._ElementUnicodeResult)
        parent = value.getparent()
        assert parent is not None
        found.setdefault(str(value), []).append(parent)
    return found


def _ensure_id(element: etree._Element, prefix: str, fresh: list[bool] | None = None) -> str:
    """The element's ``wsu:Id``, set to a new random value when it has none (``fresh`` records whether each id
    was made here)."""
    current = element.get(_WSU_ID)
    if current:
        if fresh is not None:
            fresh.append(False)
        return current
    new = f"{prefix}-{os.urandom(16).hex()}"
    element.set(_WSU_ID, new)
    if fresh is not None:
        fresh.append(True)
    return new


def _declare_wss_namespaces(envelope: etree._Element) -> None:
    """Declare ``wsse`` and ``wsu`` on the Envelope so that new ``wsu:Id`` attributes get a readable prefix.

    lxml cannot add a declaration to an existing element; ``cleanup_namespaces`` with ``top_nsmap`` can, and
    every prefix in use is kept so that nothing else changes.
    """
    if envelope.nsmap.get("wsu") == WSU and envelope.nsmap.get("wsse") == WSSE:
        return
    if "wsu" in envelope.nsmap or "wsse" in envelope.nsmap:
        return  # the prefixes mean something else here: let lxml pick its own
    prefixes: set[str] = {"wsu", "wsse"}
    for element in envelope.iter():
        if isinstance(element.tag, str):
            prefixes.update(p for p in element.nsmap if p)
    etree.cleanup_namespaces(envelope, top_nsmap={"wsse": WSSE, "wsu": WSU}, keep_ns_prefixes=sorted(prefixes))


def sign_envelope(
    envelope: etree._Element,
    identity: Identity,
    *,
    ttl: int = 60,
    now: datetime | None = None,
    sign_addressing: bool = True,
    body_prefixes: Sequence[str] | None = None,
) -> etree._Element:
    """Sign a SOAP 1.2 envelope in place with WS-Security (layout in the module docstring).

    Args:
        envelope: a ``soap:Envelope`` with a Body (a Header is added when missing), not yet signed.
        identity: the signer: its certificate goes into the BinarySecurityToken, its key signs.
        ttl: Timestamp lifetime in seconds (Expires = Created + ttl).
        now: the Created time (default: now).
        sign_addressing: also sign every WS-Addressing header (direct children of ``soap:Header``).
        body_prefixes: the ``ec:InclusiveNamespaces PrefixList`` of the Body reference's exclusive C14N transform:
            namespace prefixes (``#default`` for the default namespace) whose in-scope declarations the canonical
            Body keeps even though no element or attribute name uses them, for QNames in text content. ``None``
            (the default): the prefixes of a SOAP fault's ``Code``/``Subcode`` values
            (:func:`~rsb_connector.xds.soap.fault_qname_prefixes`: a signed ``wsse:InvalidSecurity`` stays
            resolvable, and its binding signed), none for any other Body.

    Returns:
        ``envelope`` itself. Serialize it once and send exactly those bytes.

    Raises:
        ValueError: not a SOAP 1.2 envelope, no Body, already signed, or an ``Id`` value already used twice.
    """
    if envelope.tag != f"{_S}Envelope":
        raise ValueError(f"not a SOAP 1.2 Envelope: {envelope.tag}")
    if ttl <= 0:
        raise ValueError("the Timestamp ttl must be positive")
    header, body = _split_envelope(envelope)
    if body is None:
        raise ValueError("the envelope must hold an optional soap:Header followed by a soap:Body")
    if header is None:
        header = etree.Element(f"{_S}Header")
        envelope.insert(0, header)
    if header.find(f"{_SE}Security") is not None:
        raise ValueError("the envelope already carries a wsse:Security header")
    prefixes = tuple(fault_qname_prefixes(body) if body_prefixes is None else body_prefixes)
    for prefix in prefixes:
        if not _is_prefix(prefix):
            raise ValueError(f"{prefix!r} is not a namespace prefix (an NCName, or #default)")
    _declare_wss_namespaces(envelope)

    created = _utc(now)
    fresh: list[bool] = []
    targets: list[tuple[str, etree._Element]] = [(_ensure_id(body, "Body", fresh), body)]
    security = etree.Element(f"{_SE}Security", nsmap={"wsse": WSSE, "wsu": WSU})
    header.insert(0, security)
    security.set(f"{_S}mustUnderstand", "1")
    timestamp = etree.SubElement(security, f"{_U}Timestamp")
    targets.insert(0, (_ensure_id(timestamp, "TS", fresh), timestamp))
    etree.SubElement(timestamp, f"{_U}Created").text = _xsd_datetime(created)
    etree.SubElement(timestamp, f"{_U}Expires").text = _xsd_datetime(created + timedelta(seconds=ttl))
    token = etree.SubElement(
        security, f"{_SE}BinarySecurityToken", {"ValueType": X509V3, "EncodingType": BASE64_BINARY}
    )
    token_id = _ensure_id(token, "X509")
    token.text = _token_text(identity)
    if sign_addressing:
        for block in _elements(header):
            if block.tag.startswith(_A):
                targets.append((_ensure_id(block, "WSA", fresh), block))

    if not all(fresh):  # ids made here are random and unique; ids that were already there are checked
        ids = _id_attribute_values(envelope)
        for ref, _element in targets:
            if len(ids.get(ref, ())) != 1:
                header.remove(security)  # leave the envelope unsigned rather than half-signed
                raise ValueError(f"the Id {ref!r} is used by {len(ids.get(ref, ()))} elements; ids must be unique")

    # The Signature is parsed from a template (much cheaper than building some 40 elements one by one), then
    # filled in: digests first, then the signature over the canonical SignedInfo in its final place.
    inclusive = {id(body): prefixes}
    digests = [
        base64.b64encode(hashlib.sha256(_c14n(element, inclusive.get(id(element), ()))).digest()).decode("ascii")
        for _, element in targets
    ]
    signature = etree.fromstring(_signature_template(targets, digests, token_id, inclusive))
    security.append(signature)
    signed_info = signature[0]
    signature[1].text = base64.b64encode(identity.sign(_c14n(signed_info))).decode("ascii")
    return envelope


def _xml_attr(value: str) -> str:
    """``value`` for an XML attribute in double quotes."""
    return _escape(value, {'"': "&quot;"})


def _transform(prefixes: tuple[str, ...]) -> str:
    """The exclusive C14N ``ds:Transform``, with its ``ec:InclusiveNamespaces`` when there are ``prefixes``."""
    if not prefixes:
        return f'<ds:Transform Algorithm="{EXC_C14N}"/>'
    return (
        f'<ds:Transform Algorithm="{EXC_C14N}"><ec:InclusiveNamespaces xmlns:ec="{EC}" '
        f'PrefixList="{_xml_attr(" ".join(prefixes))}"/></ds:Transform>'
    )


def _signature_template(
    targets: list[tuple[str, etree._Element]],
    digests: list[str],
    token_id: str,
    inclusive: dict[int, tuple[str, ...]],
) -> bytes:
    references = "".join(
        f'<ds:Reference URI="#{_xml_attr(ref)}"><ds:Transforms>{_transform(inclusive.get(id(element), ()))}'
        f'</ds:Transforms><ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue>{digest}</ds:DigestValue>'
        "</ds:Reference>"
        for (ref, element), digest in zip(targets, digests, strict=True)
    )
    return (
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="{EXC_C14N}"/>'
        f'<ds:SignatureMethod Algorithm="{RSA_SHA256}"/>{references}</ds:SignedInfo>'
        f'<ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference xmlns:wsse="{WSSE}">'
        f'<wsse:Reference URI="#{_xml_attr(token_id)}" ValueType="{X509V3}"/></wsse:SecurityTokenReference>'
        "</ds:KeyInfo></ds:Signature>"
    ).encode()


_TOKEN_TEXTS: dict[str, str] = {}


def _token_text(identity: Identity) -> str:
    """The base64 DER of the identity's certificate (computed once per certificate)."""
    text = _TOKEN_TEXTS.get(identity.fingerprint_sha256)
    if text is None:
        if len(_TOKEN_TEXTS) > 64:
            _TOKEN_TEXTS.clear()
        text = base64.b64encode(identity.certificate.public_bytes(Encoding.DER)).decode("ascii")
        _TOKEN_TEXTS[identity.fingerprint_sha256] = text
    return text


def _c14n(element: etree._Element, prefixes: Sequence[str] = ()) -> bytes:
    """Exclusive XML canonicalization (without comments) of ``element``'s subtree, in its document context.

    ``prefixes`` is the ``InclusiveNamespaces PrefixList``: those namespaces are rendered the inclusive way, i.e.
    every one IN SCOPE at the apex is declared there, wherever an ancestor declared it. libxml2 (through lxml) does
    not find an ancestor's declaration reliably for a subtree: whether it renders one depends on how the tree was
    made (a tree built in memory, as a signer holds it, and the same tree parsed, as a verifier holds it, can give
    different bytes). So, with a PrefixList, the subtree is first re-read from its plain serialization, which
    declares on the apex every namespace in scope (innermost binding, prefixes kept): a standalone document with the
    same in-scope namespaces everywhere, whose canonical form is that of the subtree in its document, as xmlsec and
    WSS4J compute it. Without a PrefixList only visibly utilized namespaces are rendered, found through the
    elements' own namespace references.
    """
    if prefixes and element.getparent() is not None:
        element = etree.fromstring(etree.tostring(element, with_tail=False), parser=make_parser())
    return etree.tostring(
        element, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=list(prefixes) or None
    )


_NCNAME = re.compile(r"[^\W\d][\w.-]*\Z")


def _is_prefix(name: str) -> bool:
    """A PrefixList token: an NCName (a namespace prefix) or ``#default``."""
    return name == "#default" or _NCNAME.match(name) is not None


# ------------------------------------------------------------------------------------------------- verification


def _parse_time(element: etree._Element | None, what: str) -> datetime:
    if element is None or not (element.text or "").strip():
        raise WsSecurityError(INVALID_SECURITY, f"the signed wsu:Timestamp has no {what}")
    text = (element.text or "").strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WsSecurityError(INVALID_SECURITY, f"the wsu:Timestamp {what} {text!r} is not an xsd:dateTime") from exc
    if value.tzinfo is None:
        raise WsSecurityError(
            INVALID_SECURITY, f"the wsu:Timestamp {what} {text!r} has no time zone: send UTC with a trailing Z"
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Reference:
    uri: str
    id: str
    digest: Callable[[bytes], Any]
    digest_value: bytes
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _SignedInfo:
    element: etree._Element
    prefixes: tuple[str, ...]
    hash: type[hashes.HashAlgorithm]
    references: list[_Reference]


def _only(parent: etree._Element, expected: list[str], what: str) -> list[etree._Element]:
    """The element children of ``parent``, which must be exactly the tags of ``expected`` in that order; a tag ending
    with ``+`` may repeat (at least once), one ending with ``?`` is optional."""
    children = _elements(parent)
    index = 0
    for tag in expected:
        name, repeat, optional = tag.rstrip("+?"), tag.endswith("+"), tag.endswith("?")
        count = 0
        while index < len(children) and children[index].tag == name:
            index += 1
            count += 1
            if not repeat:
                break
        if count == 0 and not optional:
            raise WsSecurityError(INVALID_SECURITY, f"{what} lacks {etree.QName(name).localname}")
    if index != len(children):
        raise WsSecurityError(
            INVALID_SECURITY, f"{what} holds an unexpected {etree.QName(children[index]).localname} element"
        )
    return children


def _c14n_prefixes(method: etree._Element, what: str) -> tuple[str, ...]:
    """The ``ec:InclusiveNamespaces/@PrefixList`` of an exclusive C14N method or transform (nothing else inside):
    namespace prefixes or ``#default``, the only forms the Exclusive C14N specification defines (and the only ones
    :func:`sign_envelope` writes). The PrefixList is part of the signed ``SignedInfo``: it cannot be changed without
    breaking the signature, and it is applied exactly as written."""
    children = _elements(method)
    if not children:
        return ()
    inclusive = children[0]
    if len(children) != 1 or inclusive.tag != f"{{{EC}}}InclusiveNamespaces":
        raise WsSecurityError(INVALID_SECURITY, f"{what}: only an ec:InclusiveNamespaces parameter is accepted")
    if set(inclusive.attrib) != {"PrefixList"} or len(inclusive) or (inclusive.text or "").strip():
        raise WsSecurityError(INVALID_SECURITY, f"{what}: ec:InclusiveNamespaces holds a PrefixList and nothing else")
    prefixes = tuple((inclusive.get("PrefixList") or "").split())
    wrong = [p for p in prefixes if not _is_prefix(p)]
    if wrong:
        raise WsSecurityError(
            INVALID_SECURITY, f"{what}: the PrefixList holds {wrong[0]!r}, neither a namespace prefix nor #default"
        )
    return prefixes


def _base64(element: etree._Element, what: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WsSecurityError(INVALID_SECURITY, f"the {what} is not base64") from exc


def _check_signed_info(signature: etree._Element) -> _SignedInfo:
    """Pin the structure, the algorithms and the reference forms of the signature (nothing else is processed)."""
    signed_info = _only(signature, [f"{_D}SignedInfo", f"{_D}SignatureValue", f"{_D}KeyInfo"], "the ds:Signature")[0]
    c14n, method, *refs = _only(
        signed_info,
        [f"{_D}CanonicalizationMethod", f"{_D}SignatureMethod", f"{_D}Reference+"],
        "the ds:SignedInfo",
    )
    if c14n.get("Algorithm") != EXC_C14N:
        raise WsSecurityError(
            UNSUPPORTED_ALGORITHM, f"SignedInfo canonicalization must be {EXC_C14N}, got {c14n.get('Algorithm')}"
        )
    hash_algorithm = _SIGNATURE_HASHES.get(method.get("Algorithm") or "")
    if hash_algorithm is None or _elements(method):
        raise WsSecurityError(
            UNSUPPORTED_ALGORITHM, f"signature method {method.get('Algorithm')} refused: use {RSA_SHA256}"
        )
    references: list[_Reference] = []
    for ref in refs:
        uri = ref.get("URI") or ""
        if not uri.startswith("#") or len(uri) < 2 or uri.startswith("#xpointer("):
            raise WsSecurityError(
                INVALID_SECURITY, f"reference URI {uri!r} refused: only same-document '#id' references are accepted"
            )
        parts = _only(ref, [f"{_D}Transforms?", f"{_D}DigestMethod", f"{_D}DigestValue"], f"reference {uri}")
        transforms = [] if parts[0].tag != f"{_D}Transforms" else _elements(parts[0])
        if [t.get("Algorithm") for t in transforms] != [EXC_C14N] or transforms[0].tag != f"{_D}Transform":
            raise WsSecurityError(
                UNSUPPORTED_ALGORITHM,
                f"reference {uri}: transforms {[t.get('Algorithm') for t in transforms]} refused; exactly one "
                "exclusive C14N transform is required",
            )
        digest_method, digest_value = parts[-2], parts[-1]
        digest = _DIGEST_FUNCTIONS.get(digest_method.get("Algorithm") or "")
        if digest is None:
            raise WsSecurityError(
                UNSUPPORTED_ALGORITHM, f"reference {uri}: digest {digest_method.get('Algorithm')} refused: use {SHA256}"
            )
        references.append(
            _Reference(
                uri=uri,
                id=uri[1:],
                digest=digest,
                digest_value=_base64(digest_value, f"DigestValue of {uri}"),
                prefixes=_c14n_prefixes(transforms[0], f"reference {uri}"),
            )
        )
    if len({r.id for r in references}) != len(references):
        raise WsSecurityError(INVALID_SECURITY, "the signature references the same element twice")
    return _SignedInfo(signed_info, _c14n_prefixes(c14n, "SignedInfo canonicalization"), hash_algorithm, references)


def _signed_copies(canonicals: list[bytes]) -> list[etree._Element]:
    """The canonical bytes that were digested, parsed again: what the signature covers and nothing else (no
    comments, no unused namespace declarations). Each canonical form is a well-formed element declaring the
    namespaces it uses, so all of them are parsed at once inside a neutral wrapper. Canonical XML carries no DTD
    and comes from a tree that passed the wire limits already, so the hardened parser is enough here."""
    try:
        wrapper = etree.fromstring(b"<signed>" + b"".join(canonicals) + b"</signed>", parser=make_parser())
    except etree.XMLSyntaxError as exc:  # pragma: no cover - canonical XML is well-formed
        raise WsSecurityError(INVALID_SECURITY, "the signed content cannot be read") from exc
    copies = _elements(wrapper)
    if len(copies) != len(canonicals):  # pragma: no cover - one element per canonical form
        raise WsSecurityError(INVALID_SECURITY, "the signed content cannot be read")
    return copies


class WsSecurityVerifier:
    """Verifies WS-Security headers (module docstring) against a trust store; thread-safe, reuse one instance.

    Args:
        trust: the CAs whose certificates may sign.
        ttl_max: the longest accepted Timestamp lifetime (Expires - Created), in seconds.
        clock_skew: tolerance, in seconds, for Created in the future and Expires in the past.
        replay_cache: remembers MessageIDs and signature values; a private one is made when ``None``.
        require_signed_addressing: refuse a message whose WS-Addressing headers are not all signed, or that
            lacks a signed ``wsa:Action`` and ``wsa:MessageID``.
        now: the clock (tests inject a fixed one).
    """

    def __init__(
        self,
        trust: TrustStore,
        *,
        ttl_max: int = 300,
        clock_skew: int = 120,
        replay_cache: ReplayCache | None = None,
        require_signed_addressing: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.trust = trust
        self.ttl_max = timedelta(seconds=ttl_max)
        self.clock_skew = timedelta(seconds=clock_skew)
        self.replay_cache = replay_cache if replay_cache is not None else ReplayCache()
        self.require_signed_addressing = require_signed_addressing
        self._now = now
        # Signer certificates already chained to the trust store, by DER: (certificate, chain, principal, the window
        # in which every certificate of the chain is valid). The trust store never changes, so a hit inside its
        # window is the same decision, minus the path building.
        self._known: dict[bytes, tuple[x509.Certificate, tuple[x509.Certificate, ...], Principal, datetime, datetime]]
        self._known = {}
        self._known_lock = threading.Lock()

    # -- steps -------------------------------------------------------------------------------------------
    @staticmethod
    def _security_header(envelope: etree._Element) -> tuple[etree._Element, etree._Element, etree._Element]:
        if envelope.tag != f"{_S}Envelope":
            raise WsSecurityError(INVALID_SECURITY, "not a SOAP 1.2 Envelope")
        header, body = _split_envelope(envelope)
        if body is None:
            raise WsSecurityError(INVALID_SECURITY, "the Envelope must hold an optional Header followed by one Body")
        securities = list(envelope.iter(f"{_SE}Security"))
        if not securities or header is None:
            raise WsSecurityError(INVALID_SECURITY, "the message is not signed: no wsse:Security header")
        if len(securities) != 1 or securities[0].getparent() is not header:
            raise WsSecurityError(
                INVALID_SECURITY,
                f"found {len(securities)} wsse:Security elements; exactly one, directly in soap:Header, is accepted",
            )
        return header, body, securities[0]

    @staticmethod
    def _token(security: etree._Element, signature: etree._Element) -> tuple[etree._Element, bytes]:
        refs = signature.findall(f"{_D}KeyInfo/{_SE}SecurityTokenReference/{_SE}Reference")
        if len(refs) != 1:
            raise WsSecurityError(
                SECURITY_TOKEN_UNAVAILABLE,
                "the signature's KeyInfo must hold one wsse:SecurityTokenReference/wsse:Reference to a "
                "BinarySecurityToken",
            )
        uri = refs[0].get("URI") or ""
        if not uri.startswith("#") or len(uri) < 2:
            raise WsSecurityError(SECURITY_TOKEN_UNAVAILABLE, f"token reference {uri!r} is not a local '#id'")
        tokens = [t for t in security.findall(f"{_SE}BinarySecurityToken") if t.get(_WSU_ID) == uri[1:]]
        if len(tokens) != 1:
            raise WsSecurityError(
                SECURITY_TOKEN_UNAVAILABLE,
                f"the Security header holds {len(tokens)} BinarySecurityToken with wsu:Id {uri[1:]!r}; expected one",
            )
        token = tokens[0]
        if token.get("ValueType") != X509V3:
            raise WsSecurityError(INVALID_SECURITY_TOKEN, f"token ValueType {token.get('ValueType')} is not X509v3")
        if token.get("EncodingType", BASE64_BINARY) != BASE64_BINARY:
            raise WsSecurityError(INVALID_SECURITY_TOKEN, f"token EncodingType {token.get('EncodingType')} refused")
        try:
            return token, base64.b64decode("".join((token.text or "").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise WsSecurityError(
                INVALID_SECURITY_TOKEN, "the BinarySecurityToken is not an X.509 certificate"
            ) from exc

    def _trust(self, der: bytes, now: datetime) -> tuple[x509.Certificate, tuple[x509.Certificate, ...], Principal]:
        known = self._known.get(der)
        if known is not None and known[3] <= now <= known[4]:
            return known[0], known[1], known[2]
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise WsSecurityError(
                INVALID_SECURITY_TOKEN, "the BinarySecurityToken is not an X.509 certificate"
            ) from exc
        try:
            chain = tuple(self.trust.verify_chain(certificate, now=now))
        except UntrustedCertificate as exc:
            raise WsSecurityError(INVALID_SECURITY_TOKEN, str(exc)) from exc
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.digital_signature:
            raise WsSecurityError(INVALID_SECURITY_TOKEN, "the signer's certificate does not allow digital signatures")
        try:
            principal = read_principal(certificate)
        except IdentityError as exc:
            raise WsSecurityError(
                INVALID_SECURITY_TOKEN, f"the signer's certificate names no principal: {exc}"
            ) from exc
        valid_from = max(c.not_valid_before_utc for c in chain)
        valid_until = min(c.not_valid_after_utc for c in chain)
        with self._known_lock:
            if len(self._known) >= _KNOWN_SIGNERS:
                self._known.clear()
            self._known[der] = (certificate, chain, principal, valid_from, valid_until)
        return certificate, chain, principal

    # -- the whole check ---------------------------------------------------------------------------------
    def verify(self, envelope: etree._Element) -> VerifiedMessage:
        """Verify ``envelope`` (as parsed from the wire by :func:`rsb_connector.security.parse_xml`).

        Returns:
            The signed content and who signed it. The replay cache records the message only when every check
            passed.

        Raises:
            WsSecurityError: any check failed (fault codes in the module docstring).
        """
        now = _utc(self._now())
        header, body, security = self._security_header(envelope)
        signatures = security.findall(f"{_D}Signature")
        if len(signatures) != 1 or len(list(security.iter(f"{_D}Signature"))) != 1:
            raise WsSecurityError(
                INVALID_SECURITY, f"the Security header holds {len(signatures)} ds:Signature; exactly one is accepted"
            )
        signature = signatures[0]
        timestamps = security.findall(f"{_U}Timestamp")
        if len(timestamps) != 1 or len(list(security.iter(f"{_U}Timestamp"))) != 1:
            raise WsSecurityError(INVALID_SECURITY, "the Security header must hold exactly one wsu:Timestamp")
        timestamp = timestamps[0]
        signed_info = _check_signed_info(signature)
        references = signed_info.references

        # Wrapping defences: every Id value names exactly one element, and each reference names an element at
        # an accepted position.
        ids = _id_attribute_values(envelope)
        for value, elements in ids.items():
            if len(elements) > 1:
                raise WsSecurityError(INVALID_SECURITY, f"the Id {value!r} is used by {len(elements)} elements")
        token_element, der = self._token(security, signature)
        certificate, chain, principal = self._trust(der, now)
        header_blocks = {id(b): b for b in _elements(header) if b is not security}
        targets: dict[str, etree._Element] = {}
        for ref in references:
            found = ids.get(ref.id)
            if not found:
                raise WsSecurityError(
                    INVALID_SECURITY, f"the signature references {ref.uri}, which is not in the message"
                )
            element = found[0]
            allowed = (
                element is body or element is timestamp or element is token_element or id(element) in header_blocks
            )
            if not allowed:
                raise WsSecurityError(
                    INVALID_SECURITY,
                    f"the signature references {ref.uri}, a {etree.QName(element).localname} element outside the "
                    "Body, the Timestamp and the header blocks",
                )
            targets[ref.id] = element
        signed_elements = {id(e) for e in targets.values()}
        if id(body) not in signed_elements:
            raise WsSecurityError(INVALID_SECURITY, "the signature does not cover the soap:Body")
        if id(timestamp) not in signed_elements:
            raise WsSecurityError(INVALID_SECURITY, "the signature does not cover the wsu:Timestamp")

        wsa_blocks = [b for b in _elements(header) if b.tag.startswith(_A)]
        seen_tags: set[str] = set()
        for block in wsa_blocks:
            if block.tag in _SINGLE_WSA and block.tag in seen_tags:
                raise WsSecurityError(INVALID_SECURITY, f"the header repeats {etree.QName(block).localname}")
            seen_tags.add(block.tag)
        if self.require_signed_addressing:
            unsigned = [etree.QName(b).localname for b in wsa_blocks if id(b) not in signed_elements]
            if unsigned:
                raise WsSecurityError(INVALID_SECURITY, f"WS-Addressing headers not signed: {', '.join(unsigned)}")
            if f"{_A}Action" not in seen_tags or f"{_A}MessageID" not in seen_tags:
                raise WsSecurityError(INVALID_SECURITY, "a signed wsa:Action and wsa:MessageID are required")

        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < MIN_RSA_KEY_SIZE:
            raise WsSecurityError(
                INVALID_SECURITY_TOKEN,
                f"the signer's certificate must hold an RSA key of at least {MIN_RSA_KEY_SIZE} bits",
            )
        signature_value = signature.find(f"{_D}SignatureValue")
        assert signature_value is not None  # _check_signed_info checked the structure
        try:
            public_key.verify(
                _base64(signature_value, "SignatureValue"),
                _c14n(signed_info.element, signed_info.prefixes),
                padding.PKCS1v15(),
                signed_info.hash(),
            )
        except InvalidSignature as exc:
            raise WsSecurityError(
                FAILED_CHECK, "the signature does not verify: the SignatureValue does not match the SignedInfo"
            ) from exc
        canonicals: list[bytes] = []
        for ref in references:
            canonical = _c14n(targets[ref.id], ref.prefixes)
            if not hmac.compare_digest(ref.digest(canonical).digest(), ref.digest_value):
                raise WsSecurityError(
                    FAILED_CHECK, f"the signature does not verify: Digest mismatch for reference {ref.uri}"
                )
            canonicals.append(canonical)
        signed_copies = {
            id(targets[ref.id]): copy for ref, copy in zip(references, _signed_copies(canonicals), strict=True)
        }

        signed_timestamp = signed_copies[id(timestamp)]
        created = _parse_time(signed_timestamp.find(f"{_U}Created"), "Created")
        expires = _parse_time(signed_timestamp.find(f"{_U}Expires"), "Expires")
        if expires <= created:
            raise WsSecurityError(INVALID_SECURITY, "the wsu:Timestamp expires before it is created")
        if expires - created > self.ttl_max:
            raise WsSecurityError(
                MESSAGE_EXPIRED,
                f"the wsu:Timestamp lifetime {(expires - created).total_seconds():.0f} s exceeds the "
                f"{self.ttl_max.total_seconds():.0f} s accepted",
            )
        if created > now + self.clock_skew:
            raise WsSecurityError(
                MESSAGE_EXPIRED, f"the wsu:Timestamp is created in the future ({_xsd_datetime(created)}); check clocks"
            )
        if expires + self.clock_skew <= now:
            raise WsSecurityError(MESSAGE_EXPIRED, f"the message expired at {_xsd_datetime(expires)}")

        def signed_text(local: str) -> str | None:
            for block in wsa_blocks:
                if block.tag == f"{_A}{local}" and id(block) in signed_copies:
                    return (signed_copies[id(block)].text or "").strip() or None
            return None

        action = signed_text("Action")
        message_id = signed_text("MessageID")
        until = expires + self.clock_skew
        signature_text = "".join((signature_value.text or "").split())
        try:
            if message_id is not None and not self.replay_cache.remember(f"wsa:{message_id}", until, now=now):
                raise WsSecurityError(INVALID_SECURITY, f"replayed message: wsa:MessageID {message_id} was seen before")
            sig_key = "sig:" + hashlib.sha256(signature_text.encode("ascii", "replace")).hexdigest()
            if not self.replay_cache.remember(sig_key, until, now=now):
                raise WsSecurityError(INVALID_SECURITY, "replayed message: this signature was seen before")
        except ReplayCacheFull as exc:
            raise WsSecurityError(INVALID_SECURITY, str(exc)) from exc

        # The view to process: a new Envelope adopting the signed copies (header blocks in document order).
        signed_headers = tuple(signed_copies[id(b)] for b in _elements(header) if id(b) in signed_copies)
        view = etree.Element(f"{_S}Envelope", nsmap={"soap": SOAP12})
        view_header = etree.SubElement(view, f"{_S}Header")
        view_header.extend(signed_headers)
        signed_body = signed_copies[id(body)]
        view.append(signed_body)
        reply_to = None
        for block in signed_headers:
            if block.tag == f"{_A}ReplyTo":
                reply_to = (block.findtext(f"{_A}Address") or "").strip() or None
        to = signed_text("To")
        relates_to = signed_text("RelatesTo")
        message = SoapMessage(
            envelope=view,
            header=view_header,
            body=signed_body,
            action=action,
            message_id=message_id,
            to=to,
            relates_to=relates_to,
            reply_to=reply_to,
            header_blocks=list(signed_headers),
        )
        return VerifiedMessage(
            envelope=envelope,
            certificate=certificate,
            chain=chain,
            signer=principal,
            signed_ids=frozenset(targets),
            body=signed_body,
            created=created,
            expires=expires,
            action=action,
            message_id=message_id,
            to=to,
            relates_to=relates_to,
            signed_headers=signed_headers,
            message=message,
        )
