"""WS-Security: sign → verify round trip, the attacks a hub must refuse, and interop with python-xmlsec."""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml.algorithms import SignatureConstructionMethod
from signxml.signer import XMLSigner

from rsb_connector.security.identity import Identity
from rsb_connector.security.trust import ReplayCache, TrustStore
from rsb_connector.security.wssec import (
    BASE64_BINARY,
    DS,
    EXC_C14N,
    FAILED_CHECK,
    INVALID_SECURITY,
    INVALID_SECURITY_TOKEN,
    MESSAGE_EXPIRED,
    RSA_SHA256,
    SECURITY_TOKEN_UNAVAILABLE,
    SHA256,
    UNSUPPORTED_ALGORITHM,
    WSSE,
    WSU,
    X509V3,
    VerifiedMessage,
    WsSecurityError,
    WsSecurityVerifier,
    sign_envelope,
)
from rsb_connector.security.xml import parse_xml
from rsb_connector.xds.constants import ACTION_ITI18, QUERY, SOAP12, WSA
from rsb_connector.xds.soap import build_fault, parse_fault, serialize

from .conftest import REGISTRY_URL

NS = {"soap": SOAP12, "wsa": WSA, "wsse": WSSE, "wsu": WSU, "ds": DS, "query": QUERY}
WSU_ID = f"{{{WSU}}}Id"
MakeEnvelope = Callable[..., etree._Element]


def signed_wire(make_envelope: MakeEnvelope, identity: Identity, **kwargs: object) -> bytes:
    """Sign a fresh envelope and serialize it once, as a sender does."""
    envelope = make_envelope(message_id=kwargs.pop("message_id", None))
    return serialize(sign_envelope(envelope, identity, **kwargs))  # type: ignore[arg-type]


def received(data: bytes) -> etree._Element:
    """Parse as the hub does."""
    return parse_xml(data)


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list), path
    assert len(found) == 1, path
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def refused(verifier: WsSecurityVerifier, root: etree._Element, code: str) -> WsSecurityError:
    with pytest.raises(WsSecurityError) as caught:
        verifier.verify(root)
    assert caught.value.fault_code == code, caught.value
    return caught.value


@pytest.fixture
def verifier(trust: TrustStore) -> WsSecurityVerifier:
    return WsSecurityVerifier(trust, require_signed_addressing=True)


# --------------------------------------------------------------------------------------------------- round trip


def test_sign_then_verify(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    data = signed_wire(make_envelope, gp, message_id=message_id)
    result = verifier.verify(received(data))
    assert isinstance(result, VerifiedMessage)
    assert result.signer.client_id == gp.client_id
    assert result.signer.kind == "professional"
    assert result.certificate == gp.certificate
    assert result.action == ACTION_ITI18
    assert result.message_id == message_id
    assert result.to == REGISTRY_URL
    assert result.body.tag == f"{{{SOAP12}}}Body"
    assert result.payload is not None
    assert result.payload.tag == f"{{{QUERY}}}AdhocQueryRequest"
    assert result.expires - result.created == timedelta(seconds=60)
    # Body, Timestamp, Action, MessageID, ReplyTo, To
    assert len(result.signed_ids) == 6
    assert {etree.QName(h).localname for h in result.signed_headers} == {"Action", "MessageID", "ReplyTo", "To"}


def test_signed_layout(make_envelope: MakeEnvelope, gp: Identity) -> None:
    root = received(signed_wire(make_envelope, gp))
    header = one(root, "/soap:Envelope/soap:Header")
    security = header[0]
    assert security.tag == f"{{{WSSE}}}Security"
    assert security.get(f"{{{SOAP12}}}mustUnderstand") == "1"
    assert [etree.QName(c).localname for c in security] == ["Timestamp", "BinarySecurityToken", "Signature"]
    token = security[1]
    assert token.get("ValueType") == X509V3
    assert token.get("EncodingType") == BASE64_BINARY
    assert base64.b64decode(token.text or "") == gp.certificate.public_bytes(serialization.Encoding.DER)
    signed_info = one(security, "ds:Signature/ds:SignedInfo")
    assert one(signed_info, "ds:CanonicalizationMethod").get("Algorithm") == EXC_C14N
    assert one(signed_info, "ds:SignatureMethod").get("Algorithm") == RSA_SHA256
    for ref in signed_info.findall(f"{{{DS}}}Reference"):
        assert one(ref, "ds:DigestMethod").get("Algorithm") == SHA256
        assert [t.get("Algorithm") for t in one(ref, "ds:Transforms")] == [EXC_C14N]
    reference = one(security, "ds:Signature/ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference")
    assert reference.get("URI") == f"#{token.get(WSU_ID)}"
    assert one(root, "/soap:Envelope/soap:Body").get(WSU_ID)


def test_patient_and_hub_can_sign(
    make_envelope: MakeEnvelope, patient: Identity, hub_identity: Identity, verifier: WsSecurityVerifier
) -> None:
    assert verifier.verify(received(signed_wire(make_envelope, patient))).signer.kind == "patient"
    assert verifier.verify(received(signed_wire(make_envelope, hub_identity))).signer.kind == "organisation"


def test_envelope_without_header_gets_one(gp: Identity, verifier: WsSecurityVerifier) -> None:
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12})
    etree.SubElement(etree.SubElement(envelope, f"{{{SOAP12}}}Body"), "{urn:x}Ping").text = "ping"
    relaxed = WsSecurityVerifier(verifier.trust)
    result = relaxed.verify(received(serialize(sign_envelope(envelope, gp))))
    assert result.action is None
    assert result.message_id is None
    with pytest.raises(ValueError, match="already carries"):
        sign_envelope(envelope, gp)


def test_other_signatures_are_not_mistaken_for_ours(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    # The payload carries a (bogus) signature of its own, and a header block placed BEFORE wsse:Security carries
    # another: the verifier must use the one in wsse:Security, whatever the document order.
    envelope = make_envelope()
    payload = one(envelope, "/soap:Envelope/soap:Body/query:AdhocQueryRequest")
    decoy = etree.SubElement(payload, f"{{{DS}}}Signature")
    etree.SubElement(etree.SubElement(decoy, f"{{{DS}}}SignedInfo"), f"{{{DS}}}Reference", URI="#nothing")
    root = received(serialize(sign_envelope(envelope, gp)))
    note = etree.Element("{urn:intermediary}Note")
    note.append(copy.deepcopy(decoy))
    one(root, "/soap:Envelope/soap:Header").insert(0, note)
    result = verifier.verify(root)
    assert result.payload is not None
    assert result.payload.find(f"{{{DS}}}Signature") is not None


def test_signing_refuses_duplicate_ids(make_envelope: MakeEnvelope, gp: Identity) -> None:
    envelope = make_envelope()
    one(envelope, "/soap:Envelope/soap:Body").set(WSU_ID, "dup")
    one(envelope, "//wsa:To").set(WSU_ID, "dup")
    with pytest.raises(ValueError, match="ids must be unique"):
        sign_envelope(envelope, gp)
    assert not envelope.xpath("//wsse:Security", namespaces=NS)


def test_replay_cache_only_records_accepted_messages(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    data = signed_wire(make_envelope, gp)
    tampered = received(data)
    one(tampered, "//wsa:To").text = "http://evil.example/"
    refused(verifier, tampered, FAILED_CHECK)
    verifier.verify(received(data))  # the refused copy left no trace in the replay cache


# ------------------------------------------------------------------------------------------------------ attacks


def test_unsigned_message(make_envelope: MakeEnvelope, verifier: WsSecurityVerifier) -> None:
    error = refused(verifier, received(serialize(make_envelope())), INVALID_SECURITY)
    assert "not signed" in error.message


def _sign_timestamp_only(envelope: etree._Element, identity: Identity) -> bytes:
    """A correctly signed Security header whose signature covers the Timestamp but not the Body."""
    sign_envelope(envelope, identity)
    security = one(envelope, "//wsse:Security")
    security.remove(one(security, "ds:Signature"))
    key_info = etree.Element(f"{{{DS}}}KeyInfo")
    token_id = one(security, "wsse:BinarySecurityToken").get(WSU_ID)
    etree.SubElement(etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference"), f"{{{WSSE}}}Reference").set(
        "URI", f"#{token_id}"
    )
    signer = XMLSigner(method=SignatureConstructionMethod.detached, c14n_algorithm=EXC_C14N)
    timestamp_id = one(security, "wsu:Timestamp").get(WSU_ID)
    security.append(
        signer.sign(envelope, key=identity.private_key, reference_uri=[f"#{timestamp_id}"], key_info=key_info)
    )
    return serialize(envelope)


def test_signature_not_covering_the_body(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    relaxed = WsSecurityVerifier(verifier.trust)
    error = refused(relaxed, received(_sign_timestamp_only(make_envelope(), gp)), INVALID_SECURITY)
    assert "Body" in error.message


def test_signer_from_another_ca(make_envelope: MakeEnvelope, impostor: Identity, verifier: WsSecurityVerifier) -> None:
    error = refused(verifier, received(signed_wire(make_envelope, impostor)), INVALID_SECURITY_TOKEN)
    assert "not trusted" in error.message


def test_expired_timestamp(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    refused(verifier, received(signed_wire(make_envelope, gp, now=old, ttl=60)), MESSAGE_EXPIRED)


def test_future_timestamp(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    error = refused(verifier, received(signed_wire(make_envelope, gp, now=later)), MESSAGE_EXPIRED)
    assert "future" in error.message


def test_clock_skew_is_tolerated(make_envelope: MakeEnvelope, gp: Identity, trust: TrustStore) -> None:
    later = datetime.now(UTC) + timedelta(seconds=90)
    WsSecurityVerifier(trust, clock_skew=120).verify(received(signed_wire(make_envelope, gp, now=later)))
    earlier = datetime.now(UTC) - timedelta(seconds=150)  # expired 90 s ago, within the 120 s skew
    WsSecurityVerifier(trust, clock_skew=120).verify(received(signed_wire(make_envelope, gp, now=earlier)))


def test_timestamp_lifetime_above_ttl_max(make_envelope: MakeEnvelope, gp: Identity, trust: TrustStore) -> None:
    verifier = WsSecurityVerifier(trust, ttl_max=300)
    refused(verifier, received(signed_wire(make_envelope, gp, ttl=3600)), MESSAGE_EXPIRED)


def test_injected_clock(make_envelope: MakeEnvelope, gp: Identity, trust: TrustStore) -> None:
    signed_at = datetime.now(UTC)
    data = signed_wire(make_envelope, gp, now=signed_at)
    WsSecurityVerifier(trust, now=lambda: signed_at + timedelta(seconds=30)).verify(received(data))
    late = WsSecurityVerifier(trust, now=lambda: signed_at + timedelta(seconds=60 + 121))
    refused(late, received(data), MESSAGE_EXPIRED)


def test_replayed_message(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    data = signed_wire(make_envelope, gp)
    verifier.verify(received(data))
    error = refused(verifier, received(data), INVALID_SECURITY)
    assert "replayed" in error.message


def test_replayed_message_id_with_a_new_signature(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    verifier.verify(received(signed_wire(make_envelope, gp, message_id=message_id)))
    error = refused(verifier, received(signed_wire(make_envelope, gp, message_id=message_id)), INVALID_SECURITY)
    assert message_id in error.message


def test_shared_replay_cache_across_verifiers(make_envelope: MakeEnvelope, gp: Identity, trust: TrustStore) -> None:
    cache = ReplayCache()
    data = signed_wire(make_envelope, gp)
    WsSecurityVerifier(trust, replay_cache=cache).verify(received(data))
    refused(WsSecurityVerifier(trust, replay_cache=cache), received(data), INVALID_SECURITY)


def test_body_swapped_after_signing(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    value = one(root, "(//query:AdhocQueryRequest//*[local-name()='Value'])[1]")
    value.text = "'82121210976^^^&2.16.840.1.113883.3.6777.5.1&ISO'"
    error = refused(verifier, root, FAILED_CHECK)
    assert "Digest mismatch" in error.message


def test_tampered_signed_header(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    one(root, "//wsa:Action").text = "urn:ihe:iti:2010:DeleteDocumentSet"
    refused(verifier, root, FAILED_CHECK)


def test_tampered_signature_value(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    value = one(root, "//ds:SignatureValue")
    raw = bytearray(base64.b64decode(value.text or ""))
    raw[10] ^= 0x01
    value.text = base64.b64encode(bytes(raw)).decode()
    refused(verifier, root, FAILED_CHECK)


def _evil_body(root: etree._Element) -> etree._Element:
    body = etree.Element(f"{{{SOAP12}}}Body")
    etree.SubElement(body, f"{{{QUERY}}}AdhocQueryRequest").text = "evil"
    return body


def test_wrapping_body_moved_into_a_wrapper_header(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    root = received(signed_wire(make_envelope, gp))
    signed_body = one(root, "/soap:Envelope/soap:Body")
    wrapper = etree.SubElement(one(root, "/soap:Envelope/soap:Header"), "{urn:attacker}Wrapper")
    root.remove(signed_body)
    wrapper.append(signed_body)
    root.append(_evil_body(root))
    error = refused(verifier, root, INVALID_SECURITY)
    assert "outside" in error.message


def test_wrapping_body_moved_to_a_header_block(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    # The signed Body becomes a direct child of Header (a position where signed blocks are allowed).
    root = received(signed_wire(make_envelope, gp))
    signed_body = one(root, "/soap:Envelope/soap:Body")
    root.remove(signed_body)
    one(root, "/soap:Envelope/soap:Header").append(signed_body)
    root.append(_evil_body(root))
    error = refused(verifier, root, INVALID_SECURITY)
    assert "does not cover the soap:Body" in error.message


def test_wrapping_duplicate_id(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    signed_body = one(root, "/soap:Envelope/soap:Body")
    wrapper = etree.SubElement(one(root, "/soap:Envelope/soap:Header"), "{urn:attacker}Wrapper")
    root.remove(signed_body)
    wrapper.append(signed_body)
    evil = _evil_body(root)
    evil.set(WSU_ID, signed_body.get(WSU_ID) or "")
    root.append(evil)
    error = refused(verifier, root, INVALID_SECURITY)
    assert "used by 2 elements" in error.message


def test_wrapping_duplicate_unqualified_id(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    # signxml resolves any attribute named Id: an unqualified Id="…" with the signed value is ambiguous too.
    root = received(signed_wire(make_envelope, gp))
    body_id = one(root, "/soap:Envelope/soap:Body").get(WSU_ID) or ""
    etree.SubElement(one(root, "/soap:Envelope/soap:Header"), "{urn:attacker}Decoy", Id=body_id)
    refused(verifier, root, INVALID_SECURITY)


def test_wrapping_timestamp_moved_and_replaced(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    # An old, signed message: its signed Timestamp is hidden in a wrapper, a fresh unsigned one put in its place.
    old = datetime.now(UTC) - timedelta(minutes=30)
    root = received(signed_wire(make_envelope, gp, now=old))
    security = one(root, "//wsse:Security")
    signed_ts = one(security, "wsu:Timestamp")
    fresh = copy.deepcopy(signed_ts)
    del fresh.attrib[WSU_ID]
    now = datetime.now(UTC)
    fresh[0].text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh[1].text = (now + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    wrapper = etree.Element(f"{{{WSSE}}}Wrapper")
    security.replace(signed_ts, fresh)
    security.append(wrapper)
    wrapper.append(signed_ts)
    refused(verifier, root, INVALID_SECURITY)


def test_wrapping_second_security_header(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    root = received(signed_wire(make_envelope, gp))
    header = one(root, "/soap:Envelope/soap:Header")
    header.append(copy.deepcopy(one(header, "wsse:Security")))
    refused(verifier, root, INVALID_SECURITY)


def test_wrapping_signed_body_copy_inside_security(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    root = received(signed_wire(make_envelope, gp))
    signed_body = one(root, "/soap:Envelope/soap:Body")
    root.remove(signed_body)
    one(root, "//wsse:Security").append(signed_body)
    root.append(_evil_body(root))
    refused(verifier, root, INVALID_SECURITY)


def test_unsigned_addressing_refused_when_required(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier, trust: TrustStore
) -> None:
    data = signed_wire(make_envelope, gp, sign_addressing=False)
    error = refused(verifier, received(data), INVALID_SECURITY)
    assert "not signed" in error.message
    lenient = WsSecurityVerifier(trust)
    result = lenient.verify(received(data))
    assert result.action is None
    assert result.message_id is None
    assert len(result.signed_ids) == 2


def test_added_unsigned_addressing_header(
    make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier
) -> None:
    root = received(signed_wire(make_envelope, gp))
    etree.SubElement(one(root, "/soap:Envelope/soap:Header"), f"{{{WSA}}}FaultTo").text = "http://evil.example/"
    refused(verifier, root, INVALID_SECURITY)


def test_repeated_addressing_header(make_envelope: MakeEnvelope, gp: Identity, trust: TrustStore) -> None:
    root = received(signed_wire(make_envelope, gp))
    header = one(root, "/soap:Envelope/soap:Header")
    extra = etree.SubElement(header, f"{{{WSA}}}Action")
    extra.text = "urn:ihe:iti:2010:DeleteDocumentSet"
    refused(WsSecurityVerifier(trust), root, INVALID_SECURITY)


def test_weak_algorithm_refused(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    one(root, "//ds:SignatureMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    refused(verifier, root, UNSUPPORTED_ALGORITHM)
    root = received(signed_wire(make_envelope, gp))
    one(root, "//ds:Reference[1]/ds:DigestMethod").set("Algorithm", "http://www.w3.org/2000/09/xmldsig#sha1")
    refused(verifier, root, UNSUPPORTED_ALGORITHM)


def test_token_reference_to_nothing(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    one(root, "//wsse:SecurityTokenReference/wsse:Reference").set("URI", "#missing")
    refused(verifier, root, SECURITY_TOKEN_UNAVAILABLE)


def test_token_swapped_for_another_trusted_certificate(
    make_envelope: MakeEnvelope, gp: Identity, nurse: Identity, verifier: WsSecurityVerifier
) -> None:
    # Claiming to be the nurse while the GP signed: the nurse's certificate does not verify the signature.
    root = received(signed_wire(make_envelope, gp))
    token = one(root, "//wsse:BinarySecurityToken")
    token.text = base64.b64encode(nurse.certificate.public_bytes(serialization.Encoding.DER)).decode()
    refused(verifier, root, FAILED_CHECK)


def test_garbage_token(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    root = received(signed_wire(make_envelope, gp))
    one(root, "//wsse:BinarySecurityToken").text = base64.b64encode(b"not a certificate").decode()
    refused(verifier, root, INVALID_SECURITY_TOKEN)


def test_fault_qname(make_envelope: MakeEnvelope, verifier: WsSecurityVerifier) -> None:
    error = refused(verifier, received(serialize(make_envelope())), INVALID_SECURITY)
    assert error.fault_qname == etree.QName(WSSE, "InvalidSecurity")


# ---------------------------------------------------------------------------------------------- signed faults


def signed_fault(identity: Identity, subcode: tuple[str, str] = (WSSE, "InvalidSecurity")) -> bytes:
    """A SOAP fault as the hub answers an unsigned request, signed and serialized once."""
    envelope = build_fault("Sender", "WS-Security: the message is not signed", subcode=subcode, relates_to="urn:uuid:1")
    return serialize(sign_envelope(envelope, identity))


def body_transform(root: etree._Element) -> etree._Element:
    body_id = one(root, "/soap:Envelope/soap:Body").get(WSU_ID)
    return one(root, f"//ds:Reference[@URI='#{body_id}']/ds:Transforms/ds:Transform")


def test_a_signed_fault_keeps_its_subcode_resolvable(hub_identity: Identity, trust: TrustStore) -> None:
    root = received(signed_fault(hub_identity))
    inclusive = body_transform(root).find(f"{{{EXC_C14N}}}InclusiveNamespaces")
    assert inclusive is not None
    assert inclusive.get("PrefixList") == "soap wsse"
    # only the Body reference carries a PrefixList: the other references stay plain exclusive C14N
    assert len(root.findall(f".//{{{EXC_C14N}}}InclusiveNamespaces")) == 1
    signed = WsSecurityVerifier(trust).verify(root)
    fault = parse_fault(signed.soap_message())
    assert fault is not None
    assert fault.subcode == "wsse:InvalidSecurity"
    assert fault.subcode_name == (WSSE, "InvalidSecurity")  # resolved from the signed copy alone
    assert signed.body.nsmap.get("wsse") == WSSE


def test_a_foreign_subcode_namespace_is_kept_too(hub_identity: Identity, trust: TrustStore) -> None:
    signed = WsSecurityVerifier(trust).verify(received(signed_fault(hub_identity, ("urn:example:faults", "Down"))))
    fault = parse_fault(signed.soap_message())
    assert fault is not None
    assert fault.subcode_name == ("urn:example:faults", "Down")


def test_the_subcode_binding_is_signed(hub_identity: Identity, trust: TrustStore) -> None:
    """Rebinding ``wsse`` where the fault's Body sees it breaks the Body digest: the binding is covered."""
    data = signed_fault(hub_identity)
    rebound = data.replace(b"<soap:Body ", b'<soap:Body xmlns:wsse="urn:evil" ', 1)
    assert rebound != data
    refused(WsSecurityVerifier(trust), received(rebound), FAILED_CHECK)


def test_the_prefix_list_is_signed(hub_identity: Identity, trust: TrustStore) -> None:
    root = received(signed_fault(hub_identity))
    inclusive = body_transform(root)[0]
    inclusive.set("PrefixList", "soap")
    refused(WsSecurityVerifier(trust), root, FAILED_CHECK)


@pytest.mark.parametrize("prefix_list", ["soap wsse:x", "1wsse", "#all"])
def test_a_prefix_list_of_anything_but_prefixes_is_refused(
    hub_identity: Identity, trust: TrustStore, prefix_list: str
) -> None:
    root = received(signed_fault(hub_identity))
    body_transform(root)[0].set("PrefixList", prefix_list)
    error = refused(WsSecurityVerifier(trust), root, INVALID_SECURITY)
    assert "PrefixList" in error.message


def test_inclusive_namespaces_hold_only_a_prefix_list(hub_identity: Identity, trust: TrustStore) -> None:
    root = received(signed_fault(hub_identity))
    body_transform(root)[0].set("Extra", "1")
    refused(WsSecurityVerifier(trust), root, INVALID_SECURITY)


def test_explicit_body_prefixes(make_envelope: MakeEnvelope, gp: Identity, verifier: WsSecurityVerifier) -> None:
    envelope = sign_envelope(make_envelope(), gp, body_prefixes=["wsa", "#default"])
    root = received(serialize(envelope))
    assert body_transform(root)[0].get("PrefixList") == "wsa #default"
    signed = verifier.verify(root)
    assert signed.body.nsmap.get("wsa") == WSA  # declared on the Envelope, in scope at the Body: kept
    with pytest.raises(ValueError, match="not a namespace prefix"):
        sign_envelope(make_envelope(), gp, body_prefixes=["a b"])


def test_a_request_body_gets_no_prefix_list(make_envelope: MakeEnvelope, gp: Identity) -> None:
    root = received(signed_wire(make_envelope, gp))
    assert root.find(f".//{{{EXC_C14N}}}InclusiveNamespaces") is None


# ------------------------------------------------------------------------------------------------------ interop


def test_xmlsec_verifies_our_signature(make_envelope: MakeEnvelope, gp: Identity) -> None:
    data = signed_wire(make_envelope, gp)
    cert_pem = gp.certificate.public_bytes(serialization.Encoding.PEM)

    def xmlsec_verify(root: etree._Element) -> None:
        xmlsec.tree.add_ids(root, ["Id"])
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem, None)
        context.verify(one(root, "//ds:Signature"))

    xmlsec_verify(etree.fromstring(data))
    tampered = etree.fromstring(data)
    one(tampered, "//wsa:To").text = "http://evil.example/"
    with pytest.raises(xmlsec.Error):
        xmlsec_verify(tampered)


def test_xmlsec_verifies_our_signed_fault(hub_identity: Identity) -> None:
    data = signed_fault(hub_identity)
    cert_pem = hub_identity.certificate.public_bytes(serialization.Encoding.PEM)

    def xmlsec_verify(root: etree._Element) -> None:
        xmlsec.tree.add_ids(root, ["Id"])
        context = xmlsec.SignatureContext()
        context.key = xmlsec.Key.from_memory(cert_pem, xmlsec.constants.KeyDataFormatCertPem, None)
        context.verify(one(root, "//ds:Signature"))

    xmlsec_verify(etree.fromstring(data))  # xmlsec applies the PrefixList in the document's context: same digest
    with pytest.raises(xmlsec.Error):
        xmlsec_verify(etree.fromstring(data.replace(b"<soap:Body ", b'<soap:Body xmlns:wsse="urn:evil" ', 1)))


def _xmlsec_signed(
    envelope: etree._Element, identity: Identity, now: datetime, body_prefixes: str | None = None
) -> bytes:
    """Sign the way an independent WS-Security stack (xmlsec1) does, without our signer (``body_prefixes``: an
    InclusiveNamespaces PrefixList on the Body reference's transform)."""
    header = one(envelope, "/soap:Envelope/soap:Header")
    body = one(envelope, "/soap:Envelope/soap:Body")
    security = etree.Element(f"{{{WSSE}}}Security", nsmap={"wsse": WSSE, "wsu": WSU})
    header.insert(0, security)
    timestamp = etree.SubElement(security, f"{{{WSU}}}Timestamp", {WSU_ID: "TS-1"})
    etree.SubElement(timestamp, f"{{{WSU}}}Created").text = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    etree.SubElement(timestamp, f"{{{WSU}}}Expires").text = (now + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    token = etree.SubElement(
        security, f"{{{WSSE}}}BinarySecurityToken", {"ValueType": X509V3, "EncodingType": BASE64_BINARY, WSU_ID: "X-1"}
    )
    token.text = base64.b64encode(identity.certificate.public_bytes(serialization.Encoding.DER)).decode()
    body.set(WSU_ID, "Body-1")
    ids = ["TS-1", "Body-1"]
    for index, block in enumerate(one(envelope, "/soap:Envelope/soap:Header").findall(f"{{{WSA}}}*")):
        block.set(WSU_ID, f"A-{index}")
        ids.append(f"A-{index}")
    signature = xmlsec.template.create(
        envelope, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    security.append(signature)
    for ref_id in ids:
        reference = xmlsec.template.add_reference(signature, xmlsec.constants.TransformSha256, uri=f"#{ref_id}")
        transform = xmlsec.template.add_transform(reference, xmlsec.constants.TransformExclC14N)
        if ref_id == "Body-1" and body_prefixes is not None:
            xmlsec.template.transform_add_c14n_inclusive_namespaces(transform, body_prefixes)
    key_info = xmlsec.template.ensure_key_info(signature)
    token_ref = etree.SubElement(key_info, f"{{{WSSE}}}SecurityTokenReference")
    etree.SubElement(token_ref, f"{{{WSSE}}}Reference", URI="#X-1", ValueType=X509V3)
    xmlsec.tree.add_ids(envelope, ["Id"])
    key_pem = identity.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem, None)
    context.sign(signature)
    return serialize(envelope)


def test_we_verify_an_xmlsec_signature(make_envelope: MakeEnvelope, nurse: Identity, trust: TrustStore) -> None:
    message_id = f"urn:uuid:{uuid.uuid4()}"
    data = _xmlsec_signed(make_envelope(message_id=message_id), nurse, datetime.now(UTC))
    verifier = WsSecurityVerifier(trust, require_signed_addressing=True)
    result = verifier.verify(received(data))
    assert result.signer.profession == "persnurse"
    assert result.message_id == message_id
    assert result.action == ACTION_ITI18
    assert {"TS-1", "Body-1"} <= result.signed_ids
    # and the same message tampered is refused by us
    tampered = received(_xmlsec_signed(make_envelope(), nurse, datetime.now(UTC)))
    one(tampered, "//query:AdhocQueryRequest").set("federated", "true")
    refused(verifier, tampered, FAILED_CHECK)


def test_we_verify_an_xmlsec_signed_fault_with_a_prefix_list(nurse: Identity, trust: TrustStore) -> None:
    """xmlsec canonicalizes the Body in its document: ``wsse``, declared on the Envelope only, is rendered on the
    Body because the PrefixList names it. Our digest must be the same, and our signed copy must resolve it."""
    envelope = build_fault("Sender", "WS-Security: refused", subcode=(WSSE, "InvalidSecurity"), relates_to="urn:x")
    data = _xmlsec_signed(envelope, nurse, datetime.now(UTC), body_prefixes="wsse")
    assert b"xmlns:wsse" not in data.split(b"<soap:Body", 1)[1]  # declared by an ancestor only
    signed = WsSecurityVerifier(trust).verify(received(data))
    fault = parse_fault(signed.soap_message())
    assert fault is not None
    assert fault.subcode_name == (WSSE, "InvalidSecurity")
    tampered = data.replace(b"<soap:Body ", b'<soap:Body xmlns:wsse="urn:evil" ', 1)
    refused(WsSecurityVerifier(trust), received(tampered), FAILED_CHECK)
