"""SOAP 1.2 envelopes with WS-Addressing 1.0, and SOAP faults.

Envelopes are built here without ``wsu:Id`` attributes: identifying and signing headers is the job of the
WS-Security layer. :func:`serialize` never pretty-prints, so a signed envelope stays verifiable.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from lxml import etree

from rsb_connector.errors import ProtocolError
from rsb_connector.xds.constants import ACTION_FAULT, SOAP12, WSA, WSSE, WSU

__all__ = [
    "FAULT_CODES",
    "FAULT_DETAIL_NS",
    "SOAP11",
    "SOAP_CONTENT_TYPE",
    "WSA_ANONYMOUS",
    "SoapFaultInfo",
    "SoapMessage",
    "build_envelope",
    "build_fault",
    "fault_qname_prefixes",
    "new_message_id",
    "parse_envelope",
    "parse_fault",
    "serialize",
    "soap_content_type",
]

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
"""The SOAP 1.1 envelope namespace: recognised only to refuse it with a clear message."""
XML_NS = "http://www.w3.org/XML/1998/namespace"
WSA_ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
FAULT_DETAIL_NS = "urn:rsb-connector:fault"
"""Namespace of the ``Message`` element that carries a text detail inside ``soap:Detail``."""
FAULT_CODES = frozenset({"VersionMismatch", "MustUnderstand", "DataEncodingUnknown", "Sender", "Receiver"})
"""The SOAP 1.2 fault code values (local names in the SOAP envelope namespace)."""

SOAP_CONTENT_TYPE = "application/soap+xml; charset=UTF-8"
"""HTTP Content-Type of a plain (non-MTOM) SOAP 1.2 message."""

_S = f"{{{SOAP12}}}"
_A = f"{{{WSA}}}"
_TRUE = {"1", "true"}


def soap_content_type(action: str | None = None) -> str:
    """``application/soap+xml; charset=UTF-8; action="..."`` (the action parameter only when given)."""
    if not action:
        return SOAP_CONTENT_TYPE
    return f'{SOAP_CONTENT_TYPE}; action="{_quote(action)}"'


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def new_message_id() -> str:
    """A fresh ``wsa:MessageID``: ``urn:uuid:<uuid4>``."""
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass(slots=True)
class SoapMessage:
    """A parsed SOAP 1.2 envelope with its WS-Addressing headers.

    Attributes:
        envelope: the ``soap:Envelope`` element.
        header: ``soap:Header``, or ``None`` when absent.
        body: ``soap:Body``.
        action, message_id, to, relates_to, reply_to: the WS-Addressing header values (text, stripped), or ``None``.
    """

    envelope: etree._Element
    header: etree._Element | None
    body: etree._Element
    action: str | None = None
    message_id: str | None = None
    to: str | None = None
    relates_to: str | None = None
    reply_to: str | None = None
    header_blocks: list[etree._Element] = field(default_factory=list)

    @property
    def payload(self) -> etree._Element | None:
        """The first element child of ``soap:Body`` (``None`` for an empty Body)."""
        for child in self.body:
            if isinstance(child.tag, str):
                return child
        return None

    @property
    def is_fault(self) -> bool:
        """True when the Body holds a ``soap:Fault``."""
        payload = self.payload
        return payload is not None and payload.tag == f"{_S}Fault"

    def must_understand(self) -> list[etree._Element]:
        """Header blocks marked ``soap:mustUnderstand="true"`` (or ``"1"``)."""
        return [h for h in self.header_blocks if (h.get(f"{_S}mustUnderstand") or "").strip() in _TRUE]

    def not_understood(self, understood: Collection[str]) -> list[str]:
        """Clark names (``{ns}local``) of mustUnderstand header blocks whose namespace or Clark name is not in
        ``understood``: a receiver answers a ``MustUnderstand`` fault when this is not empty."""
        missing: list[str] = []
        for block in self.must_understand():
            qname = etree.QName(block)
            if qname.text not in understood and (qname.namespace or "") not in understood:
                missing.append(qname.text)
        return missing


def build_envelope(
    body_payload: etree._Element,
    *,
    action: str,
    message_id: str | None = None,
    to: str | None = None,
    relates_to: str | None = None,
    reply_to_anonymous: bool = True,
    must_understand: bool = True,
) -> etree._Element:
    """A ``soap:Envelope`` holding WS-Addressing headers and ``body_payload`` (moved, not copied, into the Body).

    Header order: ``wsa:Action``, ``wsa:MessageID``, ``wsa:ReplyTo``, ``wsa:To``, ``wsa:RelatesTo``.

    Args:
        body_payload: the Body's only child.
        action: ``wsa:Action`` (e.g. ``urn:ihe:iti:2007:RetrieveDocumentSet``).
        message_id: ``wsa:MessageID``; a new ``urn:uuid:`` when ``None``.
        to: ``wsa:To`` (the endpoint URL), omitted when ``None``.
        relates_to: ``wsa:RelatesTo`` (the request's MessageID, in a response), omitted when ``None``.
        reply_to_anonymous: add ``wsa:ReplyTo/wsa:Address`` = anonymous (requests).
        must_understand: mark ``wsa:Action`` and ``wsa:To`` with ``soap:mustUnderstand="1"``.
    """
    # wsse / wsu are declared up front so that signing (rsb_connector.security.wssec) finds readable prefixes for
    # the wsu:Id attributes it adds, without rewriting the tree's namespace declarations.
    envelope = etree.Element(f"{_S}Envelope", nsmap={"soap": SOAP12, "wsa": WSA, "wsse": WSSE, "wsu": WSU})
    header = etree.SubElement(envelope, f"{_S}Header")
    action_el = etree.SubElement(header, f"{_A}Action")
    action_el.text = action
    if must_understand:
        action_el.set(f"{_S}mustUnderstand", "1")
    etree.SubElement(header, f"{_A}MessageID").text = message_id or new_message_id()
    if reply_to_anonymous:
        reply_to = etree.SubElement(header, f"{_A}ReplyTo")
        etree.SubElement(reply_to, f"{_A}Address").text = WSA_ANONYMOUS
    if to is not None:
        to_el = etree.SubElement(header, f"{_A}To")
        to_el.text = to
        if must_understand:
            to_el.set(f"{_S}mustUnderstand", "1")
    if relates_to is not None:
        etree.SubElement(header, f"{_A}RelatesTo").text = relates_to
    body = etree.SubElement(envelope, f"{_S}Body")
    body.append(body_payload)
    return envelope


def _single_text(header: etree._Element, tag: str, name: str) -> str | None:
    found = header.findall(tag)
    if not found:
        return None
    if len(found) > 1:
        raise ProtocolError(f"the SOAP header carries {len(found)} {name} elements: send exactly one")
    return (found[0].text or "").strip() or None


def parse_envelope(root: etree._Element) -> SoapMessage:
    """Read a SOAP 1.2 envelope and its WS-Addressing headers.

    Raises:
        ProtocolError: the root is not a SOAP 1.2 ``Envelope`` (a SOAP 1.1 envelope is named as such), the Body is
            missing or misplaced, or a WS-Addressing header is repeated.
    """
    if not isinstance(root.tag, str):
        raise ProtocolError("not a SOAP envelope: the document has no root element")
    qname = etree.QName(root)
    if qname.namespace == SOAP11:
        raise ProtocolError(
            f"SOAP 1.1 envelope received (namespace {SOAP11}): XDS.b requires SOAP 1.2, "
            f"send an Envelope in the namespace {SOAP12} with Content-Type application/soap+xml"
        )
    if qname.namespace != SOAP12 or qname.localname != "Envelope":
        raise ProtocolError(f"not a SOAP 1.2 envelope: the root element is {qname.text}, expected {{{SOAP12}}}Envelope")
    children = [c for c in root if isinstance(c.tag, str)]
    header: etree._Element | None = None
    body: etree._Element | None = None
    for index, child in enumerate(children):
        if child.tag == f"{_S}Header" and index == 0:
            header = child
        elif child.tag == f"{_S}Body" and body is None and index == (1 if header is not None else 0):
            body = child
        else:
            raise ProtocolError(
                f"unexpected {etree.QName(child).text} in the SOAP envelope: it holds an optional Header, then a Body"
            )
    if body is None:
        raise ProtocolError("the SOAP envelope has no Body")
    message = SoapMessage(envelope=root, header=header, body=body)
    if header is not None:
        message.header_blocks = [c for c in header if isinstance(c.tag, str)]
        message.action = _single_text(header, f"{_A}Action", "wsa:Action")
        message.message_id = _single_text(header, f"{_A}MessageID", "wsa:MessageID")
        message.to = _single_text(header, f"{_A}To", "wsa:To")
        message.relates_to = _single_text(header, f"{_A}RelatesTo", "wsa:RelatesTo")
        reply_to = header.findall(f"{_A}ReplyTo")
        if len(reply_to) > 1:
            raise ProtocolError("the SOAP header carries several wsa:ReplyTo elements: send exactly one")
        if reply_to:
            message.reply_to = _single_text(reply_to[0], f"{_A}Address", "wsa:ReplyTo/wsa:Address")
    return message


@dataclass(frozen=True, slots=True)
class SoapFaultInfo:
    """What a SOAP 1.2 fault says.

    Attributes:
        code: the fault code's local name (``Sender``, ``Receiver``, ``MustUnderstand``...).
        reason: the ``Reason/Text`` (English when several languages are given).
        subcode: the first ``Subcode/Value`` as written (QName text, e.g. ``wsa:ActionNotSupported``), or ``None``.
        detail: the text content of ``Detail``, or ``None``.
        subcode_name: the subcode resolved to ``(namespace, local name)``, or ``None``.
    """

    code: str
    reason: str
    subcode: str | None = None
    detail: str | None = None
    subcode_name: tuple[str, str] | None = None


_KNOWN_PREFIXES = {SOAP12: "soap", WSA: "wsa", WSSE: "wsse"}


def build_fault(
    code: str,
    reason: str,
    *,
    subcode: tuple[str, str] | None = None,
    relates_to: str | None = None,
    action: str = ACTION_FAULT,
    detail: str | etree._Element | None = None,
) -> etree._Element:
    """A complete ``soap:Envelope`` holding a SOAP 1.2 fault, with WS-Addressing headers.

    Args:
        code: ``Sender`` (the request was wrong) or ``Receiver`` (the server failed), or another SOAP 1.2 code.
        reason: for a person: what was wrong and what to send instead (never a stack trace).
        subcode: ``(namespace, local name)`` of a ``Subcode/Value``, e.g. ``(WSA, "ActionNotSupported")``.
        relates_to: the request's ``wsa:MessageID``.
        action: ``wsa:Action`` of the fault message.
        detail: text (wrapped in a ``Message`` element of :data:`FAULT_DETAIL_NS`) or an element for ``soap:Detail``.

    Raises:
        ValueError: ``code`` is not a SOAP 1.2 fault code.
    """
    if code not in FAULT_CODES:
        raise ValueError(f"unknown SOAP 1.2 fault code {code!r}: use one of {sorted(FAULT_CODES)}")
    fault = etree.Element(f"{_S}Fault", nsmap={"soap": SOAP12})
    code_el = etree.SubElement(fault, f"{_S}Code")
    etree.SubElement(code_el, f"{_S}Value").text = f"soap:{code}"
    if subcode is not None:
        namespace, local = subcode
        prefix = _KNOWN_PREFIXES.get(namespace, "sc")
        sub = etree.SubElement(code_el, f"{_S}Subcode")
        value = etree.SubElement(sub, f"{_S}Value", nsmap={prefix: namespace})
        value.text = f"{prefix}:{local}"
    reason_el = etree.SubElement(fault, f"{_S}Reason")
    text = etree.SubElement(reason_el, f"{_S}Text")
    text.set(f"{{{XML_NS}}}lang", "en")
    text.text = reason
    if detail is not None:
        detail_el = etree.SubElement(fault, f"{_S}Detail")
        if isinstance(detail, str):
            etree.SubElement(detail_el, f"{{{FAULT_DETAIL_NS}}}Message", nsmap={"rsb": FAULT_DETAIL_NS}).text = detail
        else:
            detail_el.append(detail)
    return build_envelope(fault, action=action, relates_to=relates_to, reply_to_anonymous=False, must_understand=False)


def fault_qname_prefixes(body: etree._Element) -> list[str]:
    """The prefixes that the QName values of a SOAP 1.2 fault in ``body`` use (``Code/Value`` and every nested
    ``Subcode/Value``; ``#default`` for an unprefixed one), in document order, each once; ``[]`` without a fault.

    A prefix used only in text content (``<soap:Value>wsse:InvalidSecurity</soap:Value>``) is not *visibly utilized*
    in the sense of Exclusive XML Canonicalization, so exclusive C14N drops its declaration: a reader of the signed
    (canonical) Body could not resolve it, and the binding would not be covered by the signature. A signer lists
    these prefixes in the ``ec:InclusiveNamespaces PrefixList`` of the Body reference's transform (the Exclusive
    C14N specification's remedy for QNames in content), which :func:`rsb_connector.security.wssec.sign_envelope`
    does by default.

    Args:
        body: the ``soap:Body`` (or the ``soap:Envelope``) that may hold the fault.
    """
    fault = body.find(f"{_S}Fault") if body.tag != f"{_S}Envelope" else body.find(f"{_S}Body/{_S}Fault")
    if fault is None:
        return []
    found: dict[str, None] = {}
    values = [fault.find(f"{_S}Code/{_S}Value"), *fault.iterfind(f"{_S}Code//{_S}Subcode/{_S}Value")]
    for value in values:
        if value is None:
            continue
        text = (value.text or "").strip()
        prefix = text.rpartition(":")[0] if ":" in text else None
        if prefix is not None and prefix in value.nsmap:
            found.setdefault(prefix, None)
        elif prefix is None and text and None in value.nsmap:
            found.setdefault("#default", None)
    return list(found)


def _resolve(element: etree._Element, text: str) -> tuple[str, str] | None:
    prefix, _, local = text.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    if namespace is None:
        return None
    return namespace, local


def parse_fault(msg: SoapMessage) -> SoapFaultInfo | None:
    """The fault carried by ``msg``, or ``None`` when its Body holds no ``soap:Fault``.

    Raises:
        ProtocolError: the fault has no ``Code/Value``.
    """
    payload = msg.payload
    if payload is None or payload.tag != f"{_S}Fault":
        return None
    value = payload.find(f"{_S}Code/{_S}Value")
    if value is None or not (value.text or "").strip():
        raise ProtocolError("the SOAP fault has no Code/Value")
    code_text = (value.text or "").strip()
    code = code_text.rpartition(":")[2]
    subcode: str | None = None
    subcode_name: tuple[str, str] | None = None
    sub_value = payload.find(f"{_S}Code/{_S}Subcode/{_S}Value")
    if sub_value is not None and (sub_value.text or "").strip():
        subcode = (sub_value.text or "").strip()
        subcode_name = _resolve(sub_value, subcode)
    texts = payload.findall(f"{_S}Reason/{_S}Text")
    reason = ""
    for candidate in texts:
        if (candidate.get(f"{{{XML_NS}}}lang") or "").lower().startswith("en"):
            reason = candidate.text or ""
            break
    else:
        if texts:
            reason = texts[0].text or ""
    detail_el = payload.find(f"{_S}Detail")
    detail: str | None = None
    if detail_el is not None:
        detail = "".join(str(t) for t in detail_el.itertext()).strip() or None
    return SoapFaultInfo(code=code, reason=reason.strip(), subcode=subcode, detail=detail, subcode_name=subcode_name)


def serialize(el: etree._Element | etree._ElementTree) -> bytes:
    """UTF-8 bytes with an XML declaration, exactly as the tree holds it (no pretty printing: signatures!)."""
    return etree.tostring(el, xml_declaration=True, encoding="UTF-8")
