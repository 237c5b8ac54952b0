"""Attacks on the hub's SOAP endpoints over HTTP: each is refused with the WS-Security fault code (or the XDS error
that applies) and leaves the store exactly as it was.

The hub runs in-process (httpx over its ASGI app, so the store can be inspected) with the session's development PKI.
Messages are built and signed like a real peer does, then tampered with on the way — the way a man in the middle
or a replaying attacker would. XXE, billion laughs and DTDs are covered in ``test_xds_http.py`` and
``tests/xds/test_safe_xml.py``; the signature checks themselves, one by one, in ``tests/security/test_wssec.py``.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree

from rsb_connector.conformance import wire
from rsb_connector.hub.app import HubConfig
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.identifiers import Ssin
from rsb_connector.metadata.builder import new_document, new_submission
from rsb_connector.metadata.model import Submission
from rsb_connector.query import FindDocuments
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import SAMPLE_IDENTITIES, DevelopmentCa, PkiDescription
from rsb_connector.security.wssec import DS, WSSE, WSU, sign_envelope
from rsb_connector.security.xml import parse_xml
from rsb_connector.testing import SyncASGITransport
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti18, iti41, soap
from rsb_connector.xds.mtom import MtomWriter, OutgoingAttachment
from rsb_connector.xds.parts import Inline, XopRef

PATIENT = SEED_PATIENTS[0].ssin
OTHER_PATIENT = SEED_PATIENTS[1].ssin
NS = {"soap": c.SOAP12, "wsa": c.WSA, "wsse": WSSE, "wsu": WSU, "ds": DS, "rim": c.RIM}
WSU_ID = f"{{{WSU}}}Id"
Counts = tuple[int, int, int, int, int]


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def hub(tmp_path: Path, rsb_pki: PkiDescription) -> Iterator[Hub]:
    built = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki)
    yield built
    built.close()


@pytest.fixture
def http(hub: Hub, rsb_pki: PkiDescription) -> Iterator[httpx.Client]:
    """A plain client: the tests sign (or not) the bytes themselves; answers are checked with the PKI's CA."""
    with wire.Peer(base_url="http://hub.test", transport=SyncASGITransport(hub.app), trust=rsb_pki.trust_store()) as h:
        yield h


@pytest.fixture(scope="module")
def impostor() -> Identity:
    """The GP's very subject, issued by a CA the hub does not trust."""
    rogue = DevelopmentCa.create(name="Rogue CA", key_size=2048)
    cert, key = rogue.issue_identity(SAMPLE_IDENTITIES[0])
    return Identity(cert, key, [rogue.certificate], source="impostor")


def counts(hub: Hub) -> Counts:
    """(entries, submission sets, associations, submissions, document files) in the store."""
    with hub.store.read() as r:
        return (
            r.count("entries"),
            r.count("submission_sets"),
            r.count("associations"),
            r.count("submissions"),
            hub.store.blob_count(),
        )


def submission(content: bytes = b"consultation report\r\n") -> tuple[Submission, bytes]:
    entry = new_document(
        content, author=wire.GP_AUTHOR, patient=PATIENT, document_type="contactreport", mime_type="text/plain"
    )
    return new_submission([entry]), content


def iti41_envelope(sub: Submission, *, inline: bytes | None = None) -> etree._Element:
    """An unsigned ITI-41 envelope: the document as an xop:Include (cid doc0@rsb.test), or inline bytes."""
    doc_id = sub.entries[0].entry_uuid
    part = Inline(inline) if inline is not None else XopRef("doc0@rsb.test")
    payload = iti41.build_request(sub, {doc_id: part})
    return soap.build_envelope(payload, action=c.ACTION_ITI41, to="http://hub.test/xds/repository")


def signed(envelope: etree._Element, identity: Identity, **kwargs: object) -> bytes:
    return soap.serialize(sign_envelope(envelope, identity, **kwargs))  # type: ignore[arg-type]


def post_mtom(http: httpx.Client, root: bytes, attachment: bytes) -> httpx.Response:
    writer = MtomWriter(root, [OutgoingAttachment("doc0@rsb.test", attachment, "text/plain")], action=c.ACTION_ITI41)
    return http.post("/xds/repository", content=writer.to_bytes(), headers={"content-type": writer.content_type})


def post_plain(http: httpx.Client, path: str, root: bytes) -> httpx.Response:
    return http.post(path, content=root, headers={"content-type": soap.SOAP_CONTENT_TYPE})


def answer(http: httpx.Client, response: httpx.Response) -> soap.SoapMessage:
    """The hub's signed answer (plain or MTOM), its signature checked: even refusals are signed by the hub."""
    root, _ = wire._read(response, None)
    return wire.read_answer(http, root)


def fault_code(http: httpx.Client, response: httpx.Response) -> str:
    fault = soap.parse_fault(answer(http, response))
    assert fault is not None, response.text
    assert response.status_code == 400
    return fault.subcode or ""


def registry_errors(http: httpx.Client, response: httpx.Response) -> list[str]:
    message = answer(http, response)
    assert message.payload is not None
    result = iti41.parse_response(message.payload)
    assert result.status == c.STATUS_FAILURE
    return [p.code for p in result.problems]


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1, path
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def refused(hub: Hub, http: httpx.Client, root: bytes, code: str, *, attachment: bytes | None = None) -> None:
    """Send ``root`` (MTOM with ``attachment``, else plain ITI-41): a ``code`` fault, and the store unchanged."""
    before = counts(hub)
    if attachment is not None:
        response = post_mtom(http, root, attachment)
    else:
        response = post_plain(http, "/xds/repository", root)
    assert fault_code(http, response) == code
    assert counts(hub) == before


# ------------------------------------------------------------------------------------------------ the good case


def test_a_signed_mtom_submission_is_stored_and_the_answer_is_signed(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    sub, content = submission()
    before = counts(hub)
    response = post_mtom(http, signed(iti41_envelope(sub), rsb_identity("gp")), content)
    message = answer(http, response)  # verified against the CA: only its signed parts are read
    assert message.action == c.ACTION_ITI41_RESPONSE
    assert message.payload is not None and iti41.parse_response(message.payload).ok
    assert counts(hub)[0] == before[0] + 1
    with hub.store.read() as r:
        entry = r.entries(unique_ids=[sub.entries[0].unique_id or ""])[0]
    assert entry.entry.hash == hashlib.sha1(content, usedforsecurity=False).hexdigest()


def test_the_security_header_travels_inline_in_the_mtom_root_part(rsb_identity: Callable[[str], Identity]) -> None:
    sub, content = submission()
    root = signed(iti41_envelope(sub), rsb_identity("gp"))
    writer = MtomWriter(root, [OutgoingAttachment("doc0@rsb.test", content, "text/plain")])
    body = writer.to_bytes()
    assert body.count(b"xop:Include") == 1  # the document only: token and signature value are never optimised
    token = one(parse_xml(root), "//wsse:BinarySecurityToken").text or ""
    assert len(token) > 500 and token.encode() in body


# ------------------------------------------------------------------------------------------------ who signed


def test_an_unsigned_body_is_refused(hub: Hub, http: httpx.Client) -> None:
    sub, content = submission()
    refused(hub, http, soap.serialize(iti41_envelope(sub)), "wsse:InvalidSecurity", attachment=content)


def test_a_signature_from_another_ca_is_refused(hub: Hub, http: httpx.Client, impostor: Identity) -> None:
    sub, content = submission()
    refused(hub, http, signed(iti41_envelope(sub), impostor), "wsse:InvalidSecurityToken", attachment=content)


# ------------------------------------------------------------------------------------------------ when


def test_an_expired_timestamp_is_refused(hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    sub, content = submission()
    old = datetime.now(UTC) - timedelta(minutes=10)
    root = signed(iti41_envelope(sub), rsb_identity("gp"), now=old, ttl=60)
    refused(hub, http, root, "wsse:MessageExpired", attachment=content)


def test_a_timestamp_from_the_future_is_refused(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    sub, content = submission()
    later = datetime.now(UTC) + timedelta(minutes=10)
    refused(
        hub, http, signed(iti41_envelope(sub), rsb_identity("gp"), now=later), "wsse:MessageExpired", attachment=content
    )


def test_a_replayed_message_is_refused(hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    sub, content = submission()
    root = signed(iti41_envelope(sub), rsb_identity("gp"))
    assert iti41.parse_response(answer(http, post_mtom(http, root, content)).payload).ok  # type: ignore[arg-type]
    refused(hub, http, root, "wsse:InvalidSecurity", attachment=content)


def test_a_replayed_message_id_under_a_new_signature_is_refused(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    message_id = soap.new_message_id()
    first, _ = submission()
    envelope = iti41_envelope(first)
    one(envelope, "//wsa:MessageID").text = message_id
    assert iti41.parse_response(
        answer(http, post_mtom(http, signed(envelope, rsb_identity("gp")), b"consultation report\r\n")).payload  # type: ignore[arg-type]
    ).ok
    second, content = submission(b"another report")
    envelope = iti41_envelope(second)
    one(envelope, "//wsa:MessageID").text = message_id
    refused(hub, http, signed(envelope, rsb_identity("gp")), "wsse:InvalidSecurity", attachment=content)


# ------------------------------------------------------------------------------------------------ what


def test_a_body_swapped_after_signing_is_refused(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    sub, content = submission()
    root = signed(iti41_envelope(sub), rsb_identity("gp"))
    forged = root.replace(PATIENT.encode(), OTHER_PATIENT.encode())
    assert forged != root
    refused(hub, http, forged, "wsse:FailedCheck", attachment=content)


def test_a_changed_action_is_refused(hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]) -> None:
    sub, content = submission()
    root = signed(iti41_envelope(sub), rsb_identity("gp"))
    forged = root.replace(c.ACTION_ITI41.encode(), c.ACTION_ITI57.encode(), 1)
    refused(hub, http, forged, "wsse:FailedCheck", attachment=content)


def _evil_body(patient: str) -> etree._Element:
    """A Body holding an unsigned, well-formed ITI-41 for ``patient``."""
    entry = new_document(
        b"evil", author=wire.GP_AUTHOR, patient=patient, document_type="contactreport", mime_type="text/plain"
    )
    body = etree.Element(f"{{{c.SOAP12}}}Body")
    body.append(iti41.build_request(new_submission([entry]), {entry.entry_uuid: XopRef("doc0@rsb.test")}))
    return body


def _wrap_body_in_header(root: etree._Element) -> None:
    signed_body = one(root, "/soap:Envelope/soap:Body")
    wrapper = etree.SubElement(one(root, "/soap:Envelope/soap:Header"), "{urn:attacker}Wrapper")
    root.remove(signed_body)
    wrapper.append(signed_body)
    root.append(_evil_body(OTHER_PATIENT))


def _duplicate_body_id(root: etree._Element) -> None:
    signed_body = one(root, "/soap:Envelope/soap:Body")
    wrapper = etree.SubElement(one(root, "/soap:Envelope/soap:Header"), "{urn:attacker}Wrapper")
    root.remove(signed_body)
    wrapper.append(signed_body)
    evil = _evil_body(OTHER_PATIENT)
    evil.set(WSU_ID, signed_body.get(WSU_ID) or "")
    root.append(evil)


def _body_inside_security(root: etree._Element) -> None:
    signed_body = one(root, "/soap:Envelope/soap:Body")
    root.remove(signed_body)
    one(root, "//wsse:Security").append(signed_body)
    root.append(_evil_body(OTHER_PATIENT))


def _body_as_a_header_block(root: etree._Element) -> None:
    signed_body = one(root, "/soap:Envelope/soap:Body")
    root.remove(signed_body)
    one(root, "/soap:Envelope/soap:Header").append(signed_body)
    root.append(_evil_body(OTHER_PATIENT))


def _second_security_header(root: etree._Element) -> None:
    header = one(root, "/soap:Envelope/soap:Header")
    header.append(copy.deepcopy(one(header, "wsse:Security")))
    root.replace(one(root, "/soap:Envelope/soap:Body"), _evil_body(OTHER_PATIENT))


@pytest.mark.parametrize(
    "wrap",
    [_wrap_body_in_header, _duplicate_body_id, _body_inside_security, _body_as_a_header_block, _second_security_header],
    ids=["body-in-wrapper-header", "duplicate-id", "body-inside-security", "body-as-header-block", "two-securities"],
)
def test_signature_wrapping_is_refused(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity], wrap: Callable[[etree._Element], None]
) -> None:
    sub, content = submission()
    root = parse_xml(signed(iti41_envelope(sub), rsb_identity("gp")))
    wrap(root)
    refused(hub, http, soap.serialize(root), "wsse:InvalidSecurity", attachment=content)


def test_only_the_signed_copy_is_processed(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    # A comment is not part of the signed (canonical) content, so inserting one keeps the signature valid — but a
    # hub reading the received tree would see the patient id cut short at the comment. The hub reads the signed
    # copy, where the value is whole.
    payload = iti18.build_request(FindDocuments(patient_id=Ssin(PATIENT).to_cx()))
    envelope = soap.build_envelope(payload, action=c.ACTION_ITI18, to="http://hub.test/xds/registry")
    root = signed(envelope, rsb_identity("gp"))
    cx = Ssin(PATIENT).to_cx().replace("&", "&amp;").encode()
    assert cx in root
    tampered = root.replace(cx, cx[:5] + b"<!--cut-->" + cx[5:])
    cut = parse_xml(tampered).xpath("//rim:Slot[@name='$XDSDocumentEntryPatientId']//rim:Value", namespaces=NS)
    assert isinstance(cut, list) and isinstance(cut[0], etree._Element)
    assert cut[0].text == "'87041"  # what a naive reader of the received tree would take
    message = answer(http, post_plain(http, "/xds/registry", tampered))
    assert message.payload is not None
    result = iti18.parse_response(message.payload)
    assert result.status == c.STATUS_SUCCESS, result.problems


# ------------------------------------------------------------------------------------------------ attachments


def test_an_attachment_swapped_under_a_signed_hash_is_refused(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    content = b"the report the doctor signed"
    before = counts(hub)
    # On the way: the signed envelope arrives first, with other bytes attached.
    sub, _ = submission(content)
    intercepted = signed(iti41_envelope(sub), rsb_identity("gp"))
    codes = registry_errors(http, post_mtom(http, intercepted, b"the report an attacker wrote, longer"))
    assert set(codes) == {"XDSRepositoryMetadataError"}  # hash and size
    assert counts(hub) == before
    # Afterwards: the genuine message was stored; re-sent with other bytes it is a replay.
    sub, _ = submission(content)
    genuine = signed(iti41_envelope(sub), rsb_identity("gp"))
    assert iti41.parse_response(answer(http, post_mtom(http, genuine, content)).payload).ok  # type: ignore[arg-type]
    stored = counts(hub)
    refused(hub, http, genuine, "wsse:InvalidSecurity", attachment=b"the report an attacker wrote")
    assert counts(hub) == stored


def test_a_same_size_swap_is_caught_by_the_hash(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity]
) -> None:
    sub, _ = submission(b"potassium 4.1 mmol/l")
    root = signed(iti41_envelope(sub), rsb_identity("gp"))
    before = counts(hub)
    codes = registry_errors(http, post_mtom(http, root, b"potassium 9.1 mmol/l"))
    assert codes == ["XDSRepositoryMetadataError"]
    assert counts(hub) == before


@pytest.mark.parametrize("missing", ["hash", "size", "both"])
def test_a_signed_submission_without_hash_or_size_is_refused(
    hub: Hub, http: httpx.Client, rsb_identity: Callable[[str], Identity], missing: str
) -> None:
    sub, content = submission()
    entry = sub.entries[0]
    if missing in ("hash", "both"):
        entry.hash = None
    if missing in ("size", "both"):
        entry.size = None
    before = counts(hub)
    message = answer(http, post_mtom(http, signed(iti41_envelope(sub), rsb_identity("gp")), content))
    assert message.payload is not None
    result = iti41.parse_response(message.payload)
    assert result.status == c.STATUS_FAILURE
    assert [p.code for p in result.problems] == ["XDSRepositoryMetadataError"]
    assert "signed submission" in result.problems[0].message
    assert counts(hub) == before


# ------------------------------------------------------------------------------------------------ limits


@pytest.fixture
def small_hub(tmp_path: Path, rsb_pki: PkiDescription) -> Iterator[Hub]:
    config = HubConfig(max_message_bytes=64 * 1024, max_attachment_bytes=32 * 1024)
    built = build_hub(tmp_path / "small", seed=True, pki=rsb_pki, config=config)
    yield built
    built.close()


def test_an_oversized_message_gets_a_clear_fault_and_stores_nothing(
    small_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    with wire.Peer(
        base_url="http://hub.test", transport=SyncASGITransport(small_hub.app), trust=rsb_pki.trust_store()
    ) as http:
        before = counts(small_hub)
        big = b"x" * (100 * 1024)
        sub, _ = submission(big)
        response = post_plain(http, "/xds/repository", signed(iti41_envelope(sub, inline=big), rsb_identity("gp")))
        fault = soap.parse_fault(answer(http, response))
        assert response.status_code == 400 and fault is not None
        assert "larger than 65536 bytes" in fault.reason and "MTOM" in fault.reason
        assert counts(small_hub) == before

        sub, _ = submission(big)
        response = post_mtom(http, signed(iti41_envelope(sub), rsb_identity("gp")), big)
        fault = soap.parse_fault(answer(http, response))
        assert response.status_code == 400 and fault is not None
        assert re.search(r"attachment .*(larger|exceeds|limit)", fault.reason), fault.reason
        assert counts(small_hub) == before
        assert list(small_hub.store.spool_dir.iterdir()) == []  # the spooled part is gone too
