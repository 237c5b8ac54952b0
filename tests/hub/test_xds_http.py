"""The mock hub over HTTP: NIST XDS toolkit cases, SOAP faults, MTOM and XSD validity of what the hub answers.

Every test runs twice: in-process (httpx over the ASGI app) and against a real ``rsb hub serve`` process on a
loopback socket. Each test uses fresh uniqueIds, so both can share one hub. The hubs run with the session's
development PKI, as ``rsb hub serve`` does by default: the peer signs every message as the GP and checks the hub's
signed answers. A few tests at the end prove that a hub started with ``--allow-unsigned`` still serves unsigned
peers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from rsb_connector.conformance import wire
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import build_hub
from rsb_connector.identifiers import Ssin
from rsb_connector.metadata.builder import new_document, new_submission
from rsb_connector.metadata.model import Association, AssociationType, AvailabilityStatus, Code, Submission
from rsb_connector.query import FindDocuments, GetDocuments, ReturnType
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import LiveHub, SyncASGITransport
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti18, soap
from rsb_connector.xds.schema import validate
from rsb_connector.xds.xop import resolve_for_validation

REPO = c.DEFAULT_REPOSITORY_UNIQUE_ID
PATIENT = SEED_PATIENTS[0].ssin
OTHER_PATIENT = SEED_PATIENTS[1].ssin


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[LiveHub]:
    with LiveHub(tmp_path_factory.mktemp("live"), seed=True, pki=rsb_pki) as hub:
        yield hub


@pytest.fixture(params=["asgi", "socket"])
def http(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    rsb_pki: PkiDescription,
    rsb_identity: Callable[[str], Identity],
) -> Iterator[httpx.Client]:
    signed = {"identity": rsb_identity("gp"), "trust": rsb_pki.trust_store()}
    if request.param == "asgi":
        hub = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki)
        try:
            with wire.Peer(base_url="http://hub.test", transport=SyncASGITransport(hub.app), **signed) as client:
                yield client
        finally:
            hub.close()
    else:
        live: LiveHub = request.getfixturevalue("live_hub")
        with wire.Peer(base_url=live.url, timeout=30, **signed) as client:
            yield client


def doc(patient: str = PATIENT, content: bytes = b"consultation report\r\n", **kw: object) -> tuple[Submission, bytes]:
    entry = new_document(
        content, author=wire.GP_AUTHOR, patient=patient, document_type="contactreport", mime_type="text/plain", **kw
    )  # type: ignore[arg-type]
    return new_submission([entry]), content


def find(http: httpx.Client, patient: str = PATIENT, **kw: object) -> iti18.QueryResponse:
    return wire.query(http, FindDocuments(patient_id=Ssin(patient).to_cx(), **kw))  # type: ignore[arg-type]


def uids(response: iti18.QueryResponse) -> set[str | None]:
    return {e.unique_id for e in response.entries}


# ------------------------------------------------------------------------------------------------ ITI-41


@pytest.mark.parametrize("mtom", [True, False], ids=["mtom", "inline"])
def test_11966_one_document_registered_found_and_retrieved_byte_exact(http: httpx.Client, mtom: bool) -> None:
    content = b"  leading spaces, CRLF endings\r\n\x00\xffbinary tail\r\n"
    submission, _ = doc(content=content)
    result = wire.provide(http, submission, {submission.entries[0].entry_uuid: content}, mtom=mtom)
    assert result.status == c.STATUS_SUCCESS, result.problems
    uid = submission.entries[0].unique_id
    found = find(http)
    assert uid in uids(found)
    entry = next(e for e in found.entries if e.unique_id == uid)
    assert entry.repository_unique_id == REPO
    assert entry.size == len(content)
    response, docs = wire.retrieve(http, [(REPO, uid or "")], mtom=mtom)
    assert response.status == c.STATUS_SUCCESS
    assert docs[uid or ""] == content
    assert response.documents[0].mime_type == "text/plain"


def test_11979_two_documents_in_one_submission(http: httpx.Client) -> None:
    entries = [
        new_document(
            b"one", author=wire.GP_AUTHOR, patient=PATIENT, document_type="contactreport", mime_type="text/plain"
        ),
        new_document(b"two", author=wire.GP_AUTHOR, patient=PATIENT, document_type="labresult", mime_type="text/plain"),
    ]
    submission = new_submission(entries)
    result = wire.provide(http, submission, {entries[0].entry_uuid: b"one", entries[1].entry_uuid: b"two"})
    assert result.status == c.STATUS_SUCCESS, result.problems
    assert {e.unique_id for e in entries} <= uids(find(http))


@pytest.mark.parametrize(
    ("hash_value", "size", "expected"),
    [
        ("good", "good", None),
        ("upper", "good", None),
        ("0" * 40, "good", "XDSRepositoryMetadataError"),
        ("good", 999, "XDSRepositoryMetadataError"),
    ],
    ids=["11981-correct", "11981-uppercase-hash", "12369-wrong-hash", "12369-wrong-size"],
)
def test_11981_12369_supplied_hash_and_size(
    http: httpx.Client, hash_value: str, size: object, expected: str | None
) -> None:
    submission, content = doc()
    entry = submission.entries[0]
    assert entry.hash and entry.size is not None
    entry.hash = {"good": entry.hash, "upper": entry.hash.upper()}.get(hash_value, hash_value)
    entry.size = entry.size if size == "good" else int(size)  # type: ignore[call-overload]
    result = wire.provide(http, submission, {entry.entry_uuid: content})
    if expected is None:
        assert result.status == c.STATUS_SUCCESS, result.problems
    else:
        assert result.status == c.STATUS_FAILURE
        assert expected in {p.code for p in result.problems}
        assert entry.unique_id not in uids(find(http))


def test_11983_entry_without_document_and_document_without_entry(http: httpx.Client) -> None:
    submission, _ = doc()
    result = wire.provide(http, submission, {})
    assert "XDSMissingDocument" in {p.code for p in result.problems}
    submission2, content2 = doc()
    result2 = wire.provide(http, submission2, {submission2.entries[0].entry_uuid: content2, "Stray01": b"x"})
    assert "XDSMissingDocumentMetadata" in {p.code for p in result2.problems}
    assert {submission.entries[0].unique_id, submission2.entries[0].unique_id}.isdisjoint(uids(find(http)))


def test_11986_11997_patient_ids_differ(http: httpx.Client) -> None:
    submission, content = doc()
    submission.submission_set.patient_id = Ssin(OTHER_PATIENT).to_cx()
    result = wire.provide(http, submission, {submission.entries[0].entry_uuid: content})
    assert result.status == c.STATUS_FAILURE
    assert "XDSPatientIdDoesNotMatch" in {p.code for p in result.problems}


def test_11996_unknown_patient(http: httpx.Client) -> None:
    unknown = "82121210976"
    assert all(p.ssin != unknown for p in SEED_PATIENTS)
    submission, content = doc(patient=unknown)
    result = wire.provide(http, submission, {submission.entries[0].entry_uuid: content})
    assert result.status == c.STATUS_FAILURE
    assert [p.code for p in result.problems] == ["XDSUnknownPatientId"]


@pytest.mark.parametrize(
    "attribute",
    [
        "class_code",
        "confidentiality_codes",
        "creation_time",
        "format_code",
        "healthcare_facility_type_code",
        "language_code",
        "practice_setting_code",
        "source_patient_id",
        "type_code",
    ],
)
def test_11998a_missing_required_attribute_stores_nothing(http: httpx.Client, attribute: str) -> None:
    submission, content = doc()
    entry = submission.entries[0]
    setattr(entry, attribute, [] if attribute == "confidentiality_codes" else None)
    result = wire.provide(http, submission, {entry.entry_uuid: content})
    assert result.status == c.STATUS_FAILURE
    assert "XDSRegistryMetadataError" in {p.code for p in result.problems}
    assert entry.unique_id not in uids(find(http))


def test_12004_same_unique_id_same_hash_accepted_different_hash_refused(http: httpx.Client) -> None:
    submission, content = doc()
    uid = submission.entries[0].unique_id
    assert wire.provide(http, submission, {submission.entries[0].entry_uuid: content}).status == c.STATUS_SUCCESS
    again, _ = doc(content=content, unique_id=uid)
    assert wire.provide(http, again, {again.entries[0].entry_uuid: content}).status == c.STATUS_SUCCESS
    assert sum(1 for e in find(http).entries if e.unique_id == uid) == 1
    different, other = doc(content=b"other content", unique_id=uid)
    result = wire.provide(http, different, {different.entries[0].entry_uuid: other})
    assert result.status == c.STATUS_FAILURE
    assert "XDSNonIdenticalHash" in {p.code for p in result.problems}


def test_12084_one_bad_entry_stores_nothing(http: httpx.Client) -> None:
    good = new_document(
        b"good", author=wire.GP_AUTHOR, patient=PATIENT, document_type="contactreport", mime_type="text/plain"
    )
    bad = new_document(
        b"bad", author=wire.GP_AUTHOR, patient=PATIENT, document_type="labresult", mime_type="text/plain"
    )
    bad.type_code = None
    submission = new_submission([good, bad])
    result = wire.provide(http, submission, {good.entry_uuid: b"good", bad.entry_uuid: b"bad"})
    assert result.status == c.STATUS_FAILURE
    assert {good.unique_id, bad.unique_id}.isdisjoint(uids(find(http)))
    assert wire.query(http, GetDocuments(unique_ids=(good.unique_id or "",))).entries == []


def test_15806_reused_entry_uuid_refused(http: httpx.Client) -> None:
    submission, content = doc()
    registered = wire.provide(http, submission, {submission.entries[0].entry_uuid: content})
    assert registered.status == c.STATUS_SUCCESS
    stored = wire.query(http, GetDocuments(unique_ids=(submission.entries[0].unique_id or "",))).entries[0]
    again, content2 = doc(content=b"new document, old entryUUID", entry_uuid=stored.entry_uuid)
    result = wire.provide(http, again, {stored.entry_uuid: content2})
    assert result.status == c.STATUS_FAILURE
    assert again.entries[0].unique_id not in uids(find(http))


# ------------------------------------------------------------------------------------------------ relationships


def _register(http: httpx.Client, content: bytes = b"v1") -> tuple[str, str]:
    submission, _ = doc(content=content)
    assert wire.provide(http, submission, {submission.entries[0].entry_uuid: content}).status == c.STATUS_SUCCESS
    stored = wire.query(http, GetDocuments(unique_ids=(submission.entries[0].unique_id or "",))).entries[0]
    return stored.entry_uuid, stored.unique_id or ""


def _relate(http: httpx.Client, target: str, kind: AssociationType, content: bytes = b"v2") -> wire.RegistryResult:
    submission, _ = doc(content=content)
    submission.associations.append(
        Association(
            entry_uuid="urn:uuid:" + __import__("uuid").uuid4().hex[:8] + "-0000-4000-8000-000000000000",
            type=kind,
            source=submission.entries[0].entry_uuid,
            target=target,
        )
    )
    return wire.provide(http, submission, {submission.entries[0].entry_uuid: content})


def test_replace_deprecates_the_old_entry_and_replacing_it_again_fails(http: httpx.Client) -> None:
    old_uuid, old_uid = _register(http)
    assert _relate(http, old_uuid, AssociationType.RPLC).status == c.STATUS_SUCCESS
    old = wire.query(http, GetDocuments(entry_uuids=(old_uuid,))).entries[0]
    assert old.availability_status is AvailabilityStatus.DEPRECATED
    assert old_uid not in uids(find(http))
    assert old_uid in uids(find(http, statuses=(AvailabilityStatus.DEPRECATED,)))
    again = _relate(http, old_uuid, AssociationType.RPLC, b"v3")
    assert again.status == c.STATUS_FAILURE
    assert "XDSRegistryDeprecatedDocumentError" in {p.code for p in again.problems}


def test_replace_of_an_unknown_entry_fails(http: httpx.Client) -> None:
    result = _relate(http, "urn:uuid:0b4c1f44-0d9a-4f4e-9a55-000000000001", AssociationType.RPLC)
    assert result.status == c.STATUS_FAILURE
    assert {p.code for p in result.problems} & {"XDSReplaceFailed", "XDSRegistryError", "XDSRegistryMetadataError"}


@pytest.mark.parametrize(
    "kind", [AssociationType.APND, AssociationType.XFRM, AssociationType.XFRM_RPLC, AssociationType.SIGNS]
)
def test_other_relationships_are_stored(http: httpx.Client, kind: AssociationType) -> None:
    old_uuid, _ = _register(http)
    assert _relate(http, old_uuid, kind).status == c.STATUS_SUCCESS
    old = wire.query(http, GetDocuments(entry_uuids=(old_uuid,))).entries[0]
    expected = AvailabilityStatus.DEPRECATED if kind.replaces else AvailabilityStatus.APPROVED
    assert old.availability_status is expected


def test_iti57_deprecate_then_version_check(http: httpx.Client) -> None:
    entry_uuid, uid = _register(http)
    patient = Ssin(PATIENT).to_cx()
    ok = wire.update_status(
        http,
        patient_id=patient,
        entry_uuid=entry_uuid,
        original=AvailabilityStatus.APPROVED,
        new=AvailabilityStatus.DEPRECATED,
    )
    assert ok.status == c.STATUS_SUCCESS, ok.problems
    assert uid not in uids(find(http))
    stale = wire.update_status(
        http,
        patient_id=patient,
        entry_uuid=entry_uuid,
        original=AvailabilityStatus.APPROVED,
        new=AvailabilityStatus.DEPRECATED,
    )
    assert stale.status == c.STATUS_FAILURE
    assert stale.problems


# ------------------------------------------------------------------------------------------------ ITI-18


def test_find_documents_filters_and_object_ref(http: httpx.Client) -> None:
    submission, content = doc(creation_time="20200115")
    assert wire.provide(http, submission, {submission.entries[0].entry_uuid: content}).status == c.STATUS_SUCCESS
    uid = submission.entries[0].unique_id
    contact = Code("contactreport", submission.entries[0].class_code.scheme)  # type: ignore[union-attr]
    lab = Code("labresult", contact.scheme)
    assert uid in uids(find(http, class_codes=(contact,)))
    assert uid not in uids(find(http, class_codes=(lab,)))
    assert uid in uids(find(http, creation_time_from="2020", creation_time_to="2021"))
    assert uid not in uids(find(http, creation_time_from="202002"))
    refs = wire.query(http, FindDocuments(patient_id=Ssin(PATIENT).to_cx(), return_type=ReturnType.OBJECT_REF))
    assert refs.entries == []
    assert refs.object_refs


def test_12368_result_not_single_patient(http: httpx.Client) -> None:
    a, _ = _register(http)
    submission, content = doc(patient=OTHER_PATIENT)
    assert wire.provide(http, submission, {submission.entries[0].entry_uuid: content}).status == c.STATUS_SUCCESS
    b = wire.query(http, GetDocuments(unique_ids=(submission.entries[0].unique_id or "",))).entries[0].entry_uuid
    response = wire.query(http, GetDocuments(entry_uuids=(a, b)))
    assert response.status == c.STATUS_FAILURE
    assert [p.code for p in response.problems] == ["XDSResultNotSinglePatient"]


def test_stored_query_errors(http: httpx.Client) -> None:
    payload = iti18.build_request(FindDocuments(patient_id=Ssin(PATIENT).to_cx()))
    payload.find(f"{{{c.RIM}}}AdhocQuery").set("id", "urn:uuid:00000000-0000-0000-0000-000000000000")  # type: ignore[union-attr]
    exchange = wire.post(http, "/xds/registry", payload, c.ACTION_ITI18, mtom=False)
    response = iti18.parse_response(exchange.payload)
    assert [p.code for p in response.problems] == ["XDSUnknownStoredQuery"]
    assert validate(exchange.payload) == []


# ------------------------------------------------------------------------------------------------ ITI-43


def test_15816_retrieve_unknown_partial_and_unknown_repository(http: httpx.Client) -> None:
    _, uid = _register(http, b"retrievable")
    response, _ = wire.retrieve(http, [(REPO, "1.2.3.4.404")])
    assert response.status == c.STATUS_FAILURE
    assert [p.code for p in response.problems] == ["XDSDocumentUniqueIdError"]
    response, docs = wire.retrieve(http, [(REPO, uid), (REPO, "1.2.3.4.404")])
    assert response.status == c.STATUS_PARTIAL_SUCCESS
    assert docs == {uid: b"retrievable"}
    response, _ = wire.retrieve(http, [("1.2.3.999", uid)])
    assert response.status == c.STATUS_FAILURE
    assert [p.code for p in response.problems] == ["XDSUnknownRepositoryId"]


# ------------------------------------------------------------------------------------------------ faults


def _raw(http: httpx.Client, path: str, body: bytes, content_type: str) -> tuple[int, soap.SoapMessage]:
    response = http.post(path, content=body, headers={"content-type": content_type})
    return response.status_code, wire.read_answer(http, response.content)


def test_unknown_action_is_a_fault(http: httpx.Client) -> None:
    message_id = soap.new_message_id()
    envelope = soap.build_envelope(etree.Element("x"), action="urn:example:Nope", message_id=message_id)
    status, message = _raw(http, "/xds/repository", wire.envelope_bytes(http, envelope), soap.SOAP_CONTENT_TYPE)
    fault = soap.parse_fault(message)
    assert status == 400 and fault is not None
    assert "ActionNotSupported" in (fault.subcode or "")
    assert message.relates_to == message_id


def test_body_not_matching_action_is_a_fault(http: httpx.Client) -> None:
    payload = iti18.build_request(FindDocuments(patient_id=Ssin(PATIENT).to_cx()))
    envelope = soap.build_envelope(payload, action=c.ACTION_ITI41)
    status, message = _raw(http, "/xds/repository", wire.envelope_bytes(http, envelope), soap.SOAP_CONTENT_TYPE)
    fault = soap.parse_fault(message)
    assert status == 400 and fault is not None and "AdhocQueryRequest" in fault.reason


@pytest.mark.parametrize(
    ("body", "content_type", "needle"),
    [
        (b"<not-xml", "application/soap+xml", "XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            "application/soap+xml",
            "DTD",
        ),
        (b"<x/>", "text/xml", "SOAP 1.1"),
        (b"hello", "application/json", "Content-Type"),
        (
            b"--b\r\nContent-Type: application/xop+xml\r\n\r\n<x",
            'multipart/related; boundary=b; type="application/xop+xml"',
            "MTOM",
        ),
    ],
    ids=["malformed", "xxe", "soap11", "wrong-type", "truncated-mtom"],
)
def test_bad_messages_get_a_clear_fault(http: httpx.Client, body: bytes, content_type: str, needle: str) -> None:
    status, message = _raw(http, "/xds/repository", body, content_type)
    fault = soap.parse_fault(message)
    assert status == 400 and fault is not None
    assert needle.lower() in fault.reason.lower()
    assert "passwd" not in fault.reason and "Traceback" not in fault.reason


def test_xop_reference_in_a_plain_soap_message_is_refused_cleanly(http: httpx.Client) -> None:
    submission, _ = doc()
    result = wire.provide(http, submission, {}, mtom=False)
    assert result.status == c.STATUS_FAILURE  # entry without document
    from rsb_connector.xds import iti41
    from rsb_connector.xds.parts import XopRef

    payload = iti41.build_request(submission, {submission.entries[0].entry_uuid: XopRef("nowhere@rsb")})
    exchange = wire.post(http, "/xds/repository", payload, c.ACTION_ITI41, mtom=False)
    result = iti41.parse_response(exchange.payload)
    assert [p.code for p in result.problems] == ["XDSMissingDocument"]
    assert "MTOM" in result.problems[0].message


# ------------------------------------------------------------------------------------------------ validity, logs


def test_hub_responses_validate_against_the_official_schemas(http: httpx.Client) -> None:
    submission, content = doc()
    exchange = wire.post(
        http,
        "/xds/repository",
        __import__("rsb_connector.xds.iti41", fromlist=["build_request"]).build_request(
            submission, {submission.entries[0].entry_uuid: wire.Inline(content)}
        ),
        c.ACTION_ITI41,
        mtom=False,
    )
    assert validate(exchange.payload) == []
    uid = submission.entries[0].unique_id or ""
    found = wire.post(
        http,
        "/xds/registry",
        iti18.build_request(FindDocuments(patient_id=Ssin(PATIENT).to_cx())),
        c.ACTION_ITI18,
        mtom=False,
    )
    assert validate(found.payload) == []
    from rsb_connector.xds import iti43

    retrieved = wire.post(
        http, "/xds/repository", iti43.build_request([iti43.DocumentRequest(REPO, uid)]), c.ACTION_ITI43, mtom=True
    )
    assert validate(resolve_for_validation(retrieved.payload, retrieved.attachments)) == []


def test_one_log_line_per_transaction_without_ssin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    hub = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki)
    try:
        with (
            wire.Peer(
                base_url="http://hub.test",
                transport=SyncASGITransport(hub.app),
                identity=rsb_identity("gp"),
                trust=rsb_pki.trust_store(),
            ) as http,
            caplog.at_level(logging.INFO, logger="rsb_connector.hub"),
        ):
            submission, content = doc()
            wire.provide(http, submission, {submission.entries[0].entry_uuid: content})
            find(http)
    finally:
        hub.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "rsb_connector.hub"]
    assert len(lines) == 2
    assert "ITI-41" in lines[0] and "ITI-18" in lines[1]
    assert all("caller=nihii:12345625004" in line for line in lines)
    assert all(PATIENT not in line for line in lines)


# ------------------------------------------------------------------------------------------------ --allow-unsigned


@pytest.fixture(params=["anonymous", "with-pki"])
def unsigned_http(request: pytest.FixtureRequest, tmp_path: Path, rsb_pki: PkiDescription) -> Iterator[httpx.Client]:
    """An unsigned peer of a hub started with allow_unsigned: without a PKI (verifies and signs nothing) or with
    one (still verifies signed requests and signs its answers)."""
    pki = rsb_pki if request.param == "with-pki" else None
    hub = build_hub(tmp_path / "hub", seed=True, pki=pki, allow_unsigned=True)
    try:
        with httpx.Client(base_url="http://hub.test", transport=SyncASGITransport(hub.app)) as client:
            yield client
    finally:
        hub.close()


def test_an_allow_unsigned_hub_serves_unsigned_peers(unsigned_http: httpx.Client) -> None:
    submission, content = doc()
    result = wire.provide(unsigned_http, submission, {submission.entries[0].entry_uuid: content})
    assert result.status == c.STATUS_SUCCESS, result.problems
    uid = submission.entries[0].unique_id or ""
    assert uid in uids(find(unsigned_http))
    _, docs = wire.retrieve(unsigned_http, [(REPO, uid)])
    assert docs[uid] == content


def test_an_allow_unsigned_hub_accepts_unbound_attachments_from_anonymous_peers(unsigned_http: httpx.Client) -> None:
    # Without a signature there is nothing to bind: hash and size stay optional (the repository computes them).
    submission, content = doc()
    submission.entries[0].hash = None
    submission.entries[0].size = None
    assert wire.provide(unsigned_http, submission, {submission.entries[0].entry_uuid: content}).ok


def test_an_allow_unsigned_hub_still_verifies_signed_requests(
    tmp_path: Path, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    hub = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki, allow_unsigned=True)
    try:
        with wire.Peer(
            base_url="http://hub.test",
            transport=SyncASGITransport(hub.app),
            identity=rsb_identity("gp"),
            trust=rsb_pki.trust_store(),
        ) as http:
            submission, content = doc()
            assert wire.provide(http, submission, {submission.entries[0].entry_uuid: content}).ok
            envelope = soap.build_envelope(
                iti18.build_request(FindDocuments(patient_id=Ssin(PATIENT).to_cx())), action=c.ACTION_ITI18
            )
            signed = wire.envelope_bytes(http, envelope).replace(PATIENT.encode(), OTHER_PATIENT.encode())
            status, message = _raw(http, "/xds/registry", signed, soap.SOAP_CONTENT_TYPE)
            fault = soap.parse_fault(message)
            assert status == 400 and fault is not None
            assert fault.subcode == "wsse:FailedCheck"
    finally:
        hub.close()
