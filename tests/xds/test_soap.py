"""SOAP 1.2 + WS-Addressing envelopes and faults: build, serialize, parse back."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from rsb_connector.errors import ProtocolError
from rsb_connector.security.xml import parse_xml
from rsb_connector.xds.constants import ACTION_FAULT, ACTION_ITI43, ACTION_ITI43_RESPONSE, SOAP12, WSA
from rsb_connector.xds.soap import (
    FAULT_DETAIL_NS,
    SOAP11,
    SOAP_CONTENT_TYPE,
    WSA_ANONYMOUS,
    build_envelope,
    build_fault,
    fault_qname_prefixes,
    new_message_id,
    parse_envelope,
    parse_fault,
    serialize,
    soap_content_type,
)

WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def _payload() -> etree._Element:
    return etree.fromstring(b'<p:Ping xmlns:p="urn:test"><p:Value>42</p:Value></p:Ping>')


def test_new_message_id_is_a_uuid_urn() -> None:
    first, second = new_message_id(), new_message_id()
    assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)
    assert first != second


def test_envelope_round_trip_through_the_wire() -> None:
    envelope = build_envelope(
        _payload(),
        action=ACTION_ITI43,
        message_id="urn:uuid:11111111-2222-4333-8444-555555555555",
        to="https://hub.example/xds/repository",
        relates_to="urn:uuid:00000000-0000-4000-8000-000000000000",
    )
    data = serialize(envelope)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert data.count(b"\n") == 1  # only after the XML declaration: never pretty-printed
    message = parse_envelope(parse_xml(data))
    assert message.action == ACTION_ITI43
    assert message.message_id == "urn:uuid:11111111-2222-4333-8444-555555555555"
    assert message.to == "https://hub.example/xds/repository"
    assert message.relates_to == "urn:uuid:00000000-0000-4000-8000-000000000000"
    assert message.reply_to == WSA_ANONYMOUS
    assert message.header is not None
    assert message.payload is not None
    assert message.payload.tag == "{urn:test}Ping"
    assert message.payload.findtext("{urn:test}Value") == "42"
    assert not message.is_fault
    names = [etree.QName(h).localname for h in message.header_blocks]
    assert names == ["Action", "MessageID", "ReplyTo", "To", "RelatesTo"]
    understood = [etree.QName(h).localname for h in message.must_understand()]
    assert understood == ["Action", "To"]
    assert not any(
        h.get("{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd}Id")
        for h in message.header_blocks
    )


def test_envelope_defaults() -> None:
    envelope = build_envelope(_payload(), action=ACTION_ITI43_RESPONSE, reply_to_anonymous=False, must_understand=False)
    message = parse_envelope(envelope)
    assert message.message_id is not None
    assert message.message_id.startswith("urn:uuid:")
    assert message.reply_to is None
    assert message.to is None
    assert message.relates_to is None
    assert message.must_understand() == []


def test_not_understood_reports_foreign_must_understand_headers() -> None:
    envelope = build_envelope(_payload(), action=ACTION_ITI43)
    header = envelope.find(f"{{{SOAP12}}}Header")
    assert header is not None
    security = etree.SubElement(header, f"{{{WSSE}}}Security")
    security.set(f"{{{SOAP12}}}mustUnderstand", "true")
    message = parse_envelope(envelope)
    assert message.not_understood({WSA}) == [f"{{{WSSE}}}Security"]
    assert message.not_understood({WSA, WSSE}) == []
    assert message.not_understood({f"{{{WSA}}}Action", f"{{{WSA}}}To", f"{{{WSSE}}}Security"}) == []


def test_soap_11_is_refused_with_a_clear_message() -> None:
    data = (f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><p:Ping xmlns:p="urn:test"/></s:Body></s:Envelope>').encode()
    with pytest.raises(ProtocolError) as info:
        parse_envelope(parse_xml(data))
    message = str(info.value)
    assert "SOAP 1.1" in message
    assert "SOAP 1.2" in message
    assert SOAP12 in message


def test_non_envelope_root_is_refused() -> None:
    with pytest.raises(ProtocolError, match=r"not a SOAP 1\.2 envelope"):
        parse_envelope(_payload())


def test_missing_body_is_refused() -> None:
    data = f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Header/></soap:Envelope>'.encode()
    with pytest.raises(ProtocolError, match="no Body"):
        parse_envelope(parse_xml(data))


def test_body_before_header_is_refused() -> None:
    data = f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body/><soap:Header/></soap:Envelope>'.encode()
    with pytest.raises(ProtocolError, match="unexpected"):
        parse_envelope(parse_xml(data))


def test_duplicate_action_is_refused() -> None:
    data = (
        f'<soap:Envelope xmlns:soap="{SOAP12}" xmlns:wsa="{WSA}"><soap:Header>'
        "<wsa:Action>a</wsa:Action><wsa:Action>b</wsa:Action></soap:Header><soap:Body/></soap:Envelope>"
    ).encode()
    with pytest.raises(ProtocolError, match="wsa:Action"):
        parse_envelope(parse_xml(data))


def test_envelope_without_header_has_empty_payload() -> None:
    data = f'<soap:Envelope xmlns:soap="{SOAP12}"><soap:Body>  </soap:Body></soap:Envelope>'.encode()
    message = parse_envelope(parse_xml(data))
    assert message.header is None
    assert message.action is None
    assert message.payload is None


def test_fault_round_trip() -> None:
    envelope = build_fault(
        "Sender",
        "the action urn:x is not supported here: send urn:ihe:iti:2007:RetrieveDocumentSet",
        subcode=(WSA, "ActionNotSupported"),
        relates_to="urn:uuid:00000000-0000-4000-8000-000000000001",
        detail="expected an ITI-43 request",
    )
    message = parse_envelope(parse_xml(serialize(envelope)))
    assert message.is_fault
    assert message.action == ACTION_FAULT
    assert message.relates_to == "urn:uuid:00000000-0000-4000-8000-000000000001"
    fault = parse_fault(message)
    assert fault is not None
    assert fault.code == "Sender"
    assert fault.subcode == "wsa:ActionNotSupported"
    assert fault.subcode_name == (WSA, "ActionNotSupported")
    assert fault.reason.startswith("the action urn:x is not supported")
    assert fault.detail == "expected an ITI-43 request"
    text = message.body.find(f"{{{SOAP12}}}Fault/{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
    assert text is not None
    assert text.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert message.body.find(f".//{{{FAULT_DETAIL_NS}}}Message") is not None


def test_fault_with_foreign_subcode_and_no_detail() -> None:
    envelope = build_fault("Receiver", "the store is unavailable", subcode=("urn:example:faults", "StoreDown"))
    fault = parse_fault(parse_envelope(parse_xml(serialize(envelope))))
    assert fault is not None
    assert fault.code == "Receiver"
    assert fault.subcode == "sc:StoreDown"
    assert fault.subcode_name == ("urn:example:faults", "StoreDown")
    assert fault.detail is None


def test_fault_qname_prefixes() -> None:
    """The prefixes a signer must keep in scope for a fault's QName values (exclusive C14N PrefixList)."""
    fault = build_fault("Sender", "no", subcode=(WSSE, "InvalidSecurity"))
    assert fault_qname_prefixes(fault) == ["soap", "wsse"]
    assert fault_qname_prefixes(fault[1]) == ["soap", "wsse"]  # the Body works as well as the Envelope
    assert fault_qname_prefixes(build_fault("Receiver", "down", subcode=("urn:e", "Down"))) == ["soap", "sc"]
    assert fault_qname_prefixes(build_fault("Receiver", "down")) == ["soap"]
    assert fault_qname_prefixes(build_envelope(etree.Element("x"), action="urn:a")) == []
    data = (
        f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value>'
        '<s:Subcode><s:Value xmlns="urn:d">Plain</s:Value><s:Subcode><s:Value>undeclared:X</s:Value></s:Subcode>'
        "</s:Subcode></s:Code><s:Reason><s:Text>no</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"
    )
    assert fault_qname_prefixes(parse_xml(data.encode())) == ["s", "#default"]


def test_fault_with_element_detail() -> None:
    detail = etree.fromstring(b'<d:Why xmlns:d="urn:d">because</d:Why>')
    fault = parse_fault(parse_envelope(build_fault("Sender", "no", detail=detail)))
    assert fault is not None
    assert fault.detail == "because"
    assert fault.subcode is None


def test_fault_reason_prefers_english() -> None:
    data = (
        f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code>'
        '<s:Reason><s:Text xml:lang="fr">panne</s:Text><s:Text xml:lang="en-GB">outage</s:Text></s:Reason>'
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()
    fault = parse_fault(parse_envelope(parse_xml(data)))
    assert fault is not None
    assert (fault.code, fault.reason) == ("Receiver", "outage")


def test_fault_without_code_is_a_protocol_error() -> None:
    data = f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><s:Fault/></s:Body></s:Envelope>'.encode()
    with pytest.raises(ProtocolError, match="Code"):
        parse_fault(parse_envelope(parse_xml(data)))


def test_parse_fault_on_a_normal_message_is_none() -> None:
    assert parse_fault(parse_envelope(build_envelope(_payload(), action=ACTION_ITI43))) is None


def test_unknown_fault_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="fault code"):
        build_fault("Client", "SOAP 1.1 name")


def test_content_types() -> None:
    assert SOAP_CONTENT_TYPE == "application/soap+xml; charset=UTF-8"
    assert soap_content_type() == SOAP_CONTENT_TYPE
    assert soap_content_type(ACTION_ITI43) == f'application/soap+xml; charset=UTF-8; action="{ACTION_ITI43}"'
