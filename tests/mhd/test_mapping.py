"""DocumentEntry <-> DocumentReference and SubmissionSet <-> List mapping (IHE MHD 4.2.x, FHIR R4)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.list import List as FhirList

from rsb_connector.identifiers import SSIN_SYSTEM, SSIN_SYSTEM_LEGACY
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.metadata.model import AssociationType, Author, AvailabilityStatus, Code, DocumentEntry
from rsb_connector.mhd import constants as c
from rsb_connector.mhd.mapping import (
    as_json,
    code_to_coding,
    coding_to_code,
    document_reference_to_entry,
    dtm_to_fhir_time,
    entry_to_document_reference,
    fhir_hash_to_hex,
    fhir_time_to_dtm,
    hex_to_fhir_hash,
    identifier_to_unique_id,
    list_to_submission_set,
    relations,
    resource_id_for,
    submission_set_to_list,
    unique_id_to_identifier,
)

PATIENT = "73032929895"
PATIENT_CX = f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"
CONTENT = b"%PDF-1.4 a referral letter"
REGISTERED = "urn:uuid:0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d"

# R4 DocumentReference elements (hl7.org/fhir/R4/documentreference.html); R5 adds version, basedOn, modality,
# event, bodySite, facilityType, practiceSetting, period, attester... at the root and removes masterIdentifier.
R4_DOCUMENT_REFERENCE = {
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "masterIdentifier", "identifier", "status", "docStatus", "type", "category", "subject",
    "date", "author", "authenticator", "custodian", "relatesTo", "description", "securityLabel", "content", "context",
}  # fmt: skip
R4_CONTENT = {"id", "extension", "modifierExtension", "attachment", "format"}
R4_ATTACHMENT = {"id", "extension", "contentType", "language", "data", "url", "size", "hash", "title", "creation"}
R4_CONTEXT = {
    "id", "extension", "modifierExtension", "encounter", "event", "period", "facilityType", "practiceSetting",
    "sourcePatientInfo", "related",
}  # fmt: skip
R4_LIST = {
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension",
    "identifier", "status", "mode", "title", "code", "subject", "encounter", "date", "source", "orderedBy", "note",
    "entry", "emptyReason",
}  # fmt: skip


def rich_entry(**overrides: Any) -> DocumentEntry:
    """An entry using every mappable attribute, in the canonical forms the mapping writes back."""
    entry = new_document(
        CONTENT,
        patient=PATIENT,
        document_type="referral",
        mime_type="application/pdf",
        author=professional_author(
            "11478761004", family="Peeters", given="An", institution="CHU Saint-Pierre^^^^^&1.2.3.4&ISO^^^^42"
        ),
        title="Lettre de référence",
        confidentiality="N",
        language="nl-BE",
        facility_type="hospital",
        creation_time="2004-12-24T15:30:00-05:00",
        service_start="20041201",
        service_stop="20041224203000",
        event_codes=[Code("E1", "1.2.3.4.5", "event one"), Code("labresult", "CD-TRANSACTION"), Code("x", "MY-SCHEME")],
        reference_ids=[
            "R-12^^^&1.2.3.9&ISO^urn:ihe:iti:xds:2013:referral",
            "ENC-7^^^&1.2.3.10&ISO^urn:ihe:iti:xds:2015:encounterId",
        ],
        entry_uuid="urn:uuid:6a1c9a8e-3d4b-4f5a-9b8c-7d6e5f4a3b2c",
        unique_id="2.25.1234567890",
    )
    entry.authors += [
        Author(
            person="^Dupont^Marie^Claire Anne^^Dr",
            specialties=("cardio^^^&2.16.840.1.113883.6.96&ISO",),
            telecommunications=("^^Internet^marie.dupont@example.be", "^^PH^^^^^^^^^+3225551234", "X400:marie"),
        ),
        Author(institutions=("Clinique du Parc",)),
        Author(person="19006951001^Janssens^Jan^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"),
        Author(person=f"{PATIENT}^Doe^John^^^^^^&2.16.840.1.113883.3.6777.5.1&ISO", roles=("patient",)),
    ]
    entry.confidentiality_codes.append(Code("R", "2.16.840.1.113883.5.25", "restricted"))
    entry.legal_authenticator = "11478761004^Peeters^An^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"
    entry.source_patient_info = [
        "PID-3|H-99^^^&1.2.3.4.99&ISO",
        "PID-5|Doe^John^Paul",
        "PID-7|19730329",
        "PID-8|M",
        "PID-11|Rue Haute 1^Bte 2^Bruxelles^^1000^BE",
    ]
    entry.comments = "Réf. \\ 12 | urgent"
    for key, value in overrides.items():
        setattr(entry, key, value)
    return entry


def _keys(obj: Any) -> set[str]:
    return set(obj) if isinstance(obj, dict) else set()


# ------------------------------------------------------------------------------------------ DocumentReference


def test_rich_entry_round_trips_unchanged() -> None:
    entry = rich_entry()
    document_reference = entry_to_document_reference(entry)
    back, problems = document_reference_to_entry(document_reference)
    assert problems == []
    for f in dataclasses.fields(DocumentEntry):
        assert getattr(back, f.name) == getattr(entry, f.name), f.name
    assert back == entry


def test_round_trip_through_json_text_and_fresh_models() -> None:
    entry = rich_entry()
    text = entry_to_document_reference(entry).model_dump_json()
    reparsed = DocumentReference.model_validate_json(text)
    back, problems = document_reference_to_entry(reparsed)
    assert problems == []
    assert back == entry
    back2, _ = document_reference_to_entry(json.loads(text))
    assert back2 == entry


def test_document_reference_is_plain_r4() -> None:
    data = as_json(entry_to_document_reference(rich_entry(), base_url="https://hub.example/fhir"))
    assert _keys(data) <= R4_DOCUMENT_REFERENCE
    assert data["resourceType"] == "DocumentReference"
    content = data["content"]
    assert len(content) == 1
    assert _keys(content[0]) <= R4_CONTENT
    assert _keys(content[0]["attachment"]) <= R4_ATTACHMENT
    assert set(content[0]["format"]) <= {"system", "code", "display"}  # R4 content.format is a Coding
    assert _keys(data["context"]) <= R4_CONTEXT
    assert isinstance(data["category"], list)  # R4 category is 0..*
    assert data["meta"]["profile"] == [c.DOCUMENT_REFERENCE_COMPREHENSIVE]
    assert {r["resourceType"] for r in data["contained"]} <= {"Practitioner", "PractitionerRole", "Organization",
                                                              "Patient"}  # fmt: skip


def test_written_elements_follow_mhd() -> None:
    entry = rich_entry()
    data = as_json(entry_to_document_reference(entry, base_url="https://hub.example/fhir/", resource_id="abc"))
    assert data["id"] == "abc"
    assert data["masterIdentifier"] == {"use": "usual", "system": c.URI_SYSTEM, "value": "urn:oid:2.25.1234567890"}
    assert data["identifier"] == [{"use": "official", "system": c.URI_SYSTEM, "value": entry.entry_uuid}]
    assert data["status"] == "current"
    assert data["subject"] == {"identifier": {"system": SSIN_SYSTEM, "value": PATIENT}}
    attachment = data["content"][0]["attachment"]
    assert attachment["url"] == "https://hub.example/fhir/Binary/abc"
    assert attachment["contentType"] == "application/pdf"
    assert attachment["language"] == "nl-BE"
    assert attachment["creation"] == "2004-12-24T20:30:00Z"  # -05:00 converted to UTC
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(CONTENT).digest()).decode()
    assert attachment["size"] == len(CONTENT)
    assert (
        data["type"]["coding"][0]["system"]
        == "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction"
    )
    assert data["securityLabel"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        "code": "N",
        "display": "normal",
    }
    assert data["content"][0]["format"]["code"] == "urn:ihe:iti:xds-sd:pdf:2008"
    assert data["context"]["period"] == {"start": "2004-12-01", "end": "2004-12-24T20:30:00Z"}
    assert data["context"]["facilityType"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "22232009",
        "display": "Hospital",
    }
    events = [cc["coding"][0]["system"] for cc in data["context"]["event"]]
    assert events == [
        "urn:oid:1.2.3.4.5",
        "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction",
        c.XDS_SCHEME_PREFIX + "MY-SCHEME",
    ]
    assert data["context"]["encounter"][0]["identifier"]["value"] == "ENC-7"
    assert data["context"]["related"][0]["identifier"]["system"] == "urn:oid:1.2.3.9"
    contained = {r["id"]: r for r in data["contained"]}
    assert data["context"]["sourcePatientInfo"] == {"reference": "#sourcePatient"}
    source = contained["sourcePatient"]
    assert source["identifier"][0] == {"system": SSIN_SYSTEM, "value": PATIENT}
    assert source["birthDate"] == "1973-03-29" and source["gender"] == "male"
    role = contained["author1"]
    assert role["resourceType"] == "PractitionerRole"
    practitioner = contained[role["practitioner"]["reference"][1:]]
    assert practitioner["identifier"] == [{"system": c.IDENTIFIER_SYSTEMS["2.16.840.1.113883.3.6777.5.2"],
                                           "value": "11478761004"}]  # fmt: skip
    assert contained["author3"]["resourceType"] == "Organization"
    assert contained["author4"]["resourceType"] == "Practitioner"
    assert data["authenticator"] == {"reference": "#legalAuthenticator"}
    assert data["description"] == entry.comments


def test_patient_reference_is_written_beside_the_identifier() -> None:
    data = as_json(
        entry_to_document_reference(rich_entry(), patient_reference="urn:uuid:1e0c9b8a-0000-4000-8000-0000000000aa")
    )
    assert data["subject"]["reference"] == "urn:uuid:1e0c9b8a-0000-4000-8000-0000000000aa"
    assert data["subject"]["identifier"]["system"] == SSIN_SYSTEM


def test_unique_id_with_extension_and_deprecated_status() -> None:
    entry = rich_entry(unique_id="1.2.3.4^doc-42", availability_status=AvailabilityStatus.DEPRECATED)
    data = as_json(entry_to_document_reference(entry))
    assert data["masterIdentifier"] == {"use": "usual", "system": "urn:oid:1.2.3.4", "value": "doc-42"}
    assert data["status"] == "superseded"
    back, problems = document_reference_to_entry(data)
    assert problems == []
    assert back.unique_id == "1.2.3.4^doc-42"
    assert back.availability_status is AvailabilityStatus.DEPRECATED


def test_builder_entry_round_trips() -> None:
    entry = new_document(b"plain text", patient=PATIENT, document_type="note", mime_type="text/plain")
    back, problems = document_reference_to_entry(entry_to_document_reference(entry))
    assert problems == []
    assert back == entry


def test_retrieval_url_is_kept_as_uri_on_read() -> None:
    entry = rich_entry()
    dr = entry_to_document_reference(entry, base_url="https://hub.example/fhir")
    back, _ = document_reference_to_entry(dr)
    assert back.uri == f"https://hub.example/fhir/Binary/{resource_id_for(entry.entry_uuid)}"
    given = entry_to_document_reference(rich_entry(uri="https://other.example/doc/1"), base_url="https://x")
    assert as_json(given)["content"][0]["attachment"]["url"] == "https://other.example/doc/1"


def test_hour_precision_cannot_be_said_in_fhir_and_comes_back_with_seconds() -> None:
    entry = rich_entry(service_stop_time="2004122415")
    back, _ = document_reference_to_entry(entry_to_document_reference(entry))
    assert back.service_stop_time == "20041224150000"


# ------------------------------------------------------------------------------------------------------ times


@pytest.mark.parametrize(
    ("fhir", "dtm"),
    [
        ("2004", "2004"),
        ("2004-12", "200412"),
        ("2004-12-24", "20041224"),
        ("2004-12-24T15:30:00-05:00", "20041224203000"),
        ("2004-12-31T22:15:00-05:00", "20050101031500"),  # negative offset crossing the year
        ("2005-01-01T01:00:00+02:00", "20041231230000"),  # positive offset going back a day
        ("2004-12-24T15:30:00Z", "20041224153000"),
        ("2004-12-24T15:30:00.123+01:00", "20041224143000"),  # fractions dropped
        ("2004-12-24T15:30:00-00:00", "20041224153000"),
        ("2024-03-31T01:30:00-09:30", "20240331110000"),  # half-hour offset
        ("2004-12-24T15:30+01:00", "200412241430"),  # no seconds: minute precision
    ],
)
def test_fhir_time_to_dtm(fhir: str, dtm: str) -> None:
    assert fhir_time_to_dtm(fhir) == dtm


@pytest.mark.parametrize(
    ("dtm", "fhir"),
    [
        ("2004", "2004"),
        ("200412", "2004-12"),
        ("20041224", "2004-12-24"),
        ("2004122415", "2004-12-24T15:00:00Z"),
        ("200412241530", "2004-12-24T15:30:00Z"),
        ("20041224203000", "2004-12-24T20:30:00Z"),
    ],
)
def test_dtm_to_fhir_time(dtm: str, fhir: str) -> None:
    assert dtm_to_fhir_time(dtm) == fhir


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2004-12-24T15:30:00", "no time zone"),
        ("24/12/2004", "not a FHIR date"),
        ("2004-13-01", "not a real date"),
        ("2004-02-30T10:00:00Z", "not a real time"),
    ],
)
def test_bad_fhir_times_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fhir_time_to_dtm(text)


def test_bad_time_in_a_document_reference_is_a_problem_with_its_path() -> None:
    data = as_json(entry_to_document_reference(rich_entry()))
    data["content"][0]["attachment"]["creation"] = "2004-12-24T15:30:00"
    entry, problems = document_reference_to_entry(data)
    assert entry.creation_time is None
    assert [(p.code, p.path) for p in problems] == [
        ("XDSRegistryMetadataError", "DocumentReference.content[0].attachment.creation")
    ]


# ----------------------------------------------------------------------------------------------------- hashes


def test_hash_is_base64_of_the_sha1_bytes() -> None:
    hex_digest = hashlib.sha1(CONTENT).hexdigest()
    b64 = hex_to_fhir_hash(hex_digest.upper())
    assert base64.b64decode(b64) == hashlib.sha1(CONTENT).digest()
    assert fhir_hash_to_hex(b64) == hex_digest


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (hashlib.sha1(b"x").hexdigest(), "hexadecimal text"),
        (base64.b64encode(hashlib.sha1(b"x").hexdigest().encode()).decode(), "base64 of the hexadecimal text"),
        (base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
        ("not base64!", "not base64"),
    ],
)
def test_wrong_hashes_say_what_to_send(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        fhir_hash_to_hex(value)


def test_hash_problem_in_a_document_reference() -> None:
    data = as_json(entry_to_document_reference(rich_entry()))
    data["content"][0]["attachment"]["hash"] = base64.b64encode(b"0123456789abcdef0123456789abcdef01234567").decode()
    entry, problems = document_reference_to_entry(data)
    assert entry.hash is None
    assert [(p.code, p.path) for p in problems] == [
        ("XDSRepositoryMetadataError", "DocumentReference.content[0].attachment.hash")
    ]


# ------------------------------------------------------------------------------------------- codes and identifiers


@pytest.mark.parametrize(
    ("kind", "code", "system"),
    [
        ("classCode", Code("sumehr", "CD-TRANSACTION"), "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction"),
        ("classCode", Code("genetic", "RSB-CLASS"), "urn:rsb-connector:class"),
        ("formatCode", Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),
         "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"),
        ("practiceSettingCode", Code("394802001", "2.16.840.1.113883.6.96"), "http://snomed.info/sct"),
        ("eventCodeList", Code("E1", "1.2.3"), "urn:oid:1.2.3"),
        ("eventCodeList", Code("E1", "http://loinc.org"), "http://loinc.org"),
        ("eventCodeList", Code("E1", "LOCAL"), "urn:rsb-connector:xds-scheme:LOCAL"),
    ],
)  # fmt: skip
def test_code_scheme_and_fhir_system(kind: str, code: Code, system: str) -> None:
    coding = code_to_coding(code, kind)
    assert coding == {"system": system, "code": code.code}
    assert coding_to_code(coding, kind) == code


@pytest.mark.parametrize(
    ("unique_id", "identifier"),
    [
        ("1.2.3.4", {"system": c.URI_SYSTEM, "value": "urn:oid:1.2.3.4"}),
        ("1.2.3.4^abc", {"system": "urn:oid:1.2.3.4", "value": "abc"}),
        ("urn:uuid:0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d",
         {"system": c.URI_SYSTEM, "value": "urn:uuid:0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d"}),
    ],
)  # fmt: skip
def test_unique_id_identifier(unique_id: str, identifier: dict[str, str]) -> None:
    assert unique_id_to_identifier(unique_id, use=None) == identifier
    assert identifier_to_unique_id(identifier) == unique_id


def test_resource_id_for() -> None:
    assert resource_id_for("urn:uuid:0B6F2D5E-9A4C-4F7E-8C1D-2E3F4A5B6C7D") == "0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d"
    assert resource_id_for("Document01") == "Document01"
    assert resource_id_for("not a valid id") is None


# ----------------------------------------------------------------------------------------------------- patients


def _with_subject(subject: dict[str, Any]) -> dict[str, Any]:
    data = as_json(entry_to_document_reference(rich_entry()))
    data["subject"] = subject
    return data


@pytest.mark.parametrize("system", [SSIN_SYSTEM, SSIN_SYSTEM_LEGACY, "urn:oid:2.16.840.1.113883.3.6777.5.1"])
def test_ssin_subject_systems_accepted(system: str) -> None:
    entry, problems = document_reference_to_entry(_with_subject({"identifier": {"system": system, "value": PATIENT}}))
    assert problems == []
    assert entry.patient_id == PATIENT_CX


def test_unknown_patient_system_is_reported() -> None:
    data = _with_subject({"identifier": {"system": "http://hospital.example/mrn", "value": "123"}})
    entry, problems = document_reference_to_entry(data)
    assert entry.patient_id is None
    assert [(p.code, p.path) for p in problems] == [
        ("XDSUnknownPatientId", "DocumentReference.subject.identifier.system")
    ]


def test_literal_patient_reference_needs_a_resolver() -> None:
    data = _with_subject({"reference": "Patient/p1"})
    _, problems = document_reference_to_entry(data)
    assert [(p.code, p.path) for p in problems] == [("XDSUnknownPatientId", "DocumentReference.subject.reference")]
    assert "bad patient link" in problems[0].message
    entry, problems = document_reference_to_entry(data, resolve_patient={"Patient/p1": PATIENT_CX}.get)
    assert problems == []
    assert entry.patient_id == PATIENT_CX


def test_reference_and_identifier_naming_different_patients() -> None:
    data = _with_subject({"reference": "Patient/p1", "identifier": {"system": SSIN_SYSTEM, "value": PATIENT}})
    other = "72022102793^^^&2.16.840.1.113883.3.6777.5.1&ISO"
    _, problems = document_reference_to_entry(data, resolve_patient=lambda _ref: other)
    assert [(p.code, p.path) for p in problems] == [("XDSPatientIdDoesNotMatch", "DocumentReference.subject")]


# ---------------------------------------------------------------------------------------------- other readers


def test_status_without_xds_meaning_is_reported() -> None:
    data = as_json(entry_to_document_reference(rich_entry()))
    data["status"] = "entered-in-error"
    _, problems = document_reference_to_entry(data)
    assert [(p.code, p.path) for p in problems] == [("XDSRegistryMetadataError", "DocumentReference.status")]


def test_two_categories_or_two_contents_are_reported() -> None:
    data = as_json(entry_to_document_reference(rich_entry()))
    data["category"].append(data["category"][0])
    data["content"].append(data["content"][0])
    _, problems = document_reference_to_entry(data)
    assert {p.path for p in problems} == {"DocumentReference.category", "DocumentReference.content"}


def test_non_contained_author_with_identifier_is_read() -> None:
    data = as_json(entry_to_document_reference(rich_entry(authors=[])))
    data["author"] = [{"reference": "Practitioner/9", "identifier": {"system": c.IDENTIFIER_SYSTEMS[
        "2.16.840.1.113883.3.6777.5.2"], "value": "19006951001"}}, {"reference": "Practitioner/10"}]  # fmt: skip
    entry, problems = document_reference_to_entry(data)
    assert [a.person for a in entry.authors] == ["19006951001^^^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"]
    assert [(p.path, p.is_error) for p in problems] == [("DocumentReference.author[1]", False)]


# -------------------------------------------------------------------------------------------------- relations


def test_relationships_become_relates_to_and_back() -> None:
    other = "urn:uuid:1d2c3b4a-5e6f-4a0b-8c9d-0e1f2a3b4c5d"
    pairs = [
        (AssociationType.RPLC, REGISTERED),
        (AssociationType.APND, other),
        (AssociationType.SIGNS, "urn:uuid:aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"),
    ]
    dr = entry_to_document_reference(rich_entry(), relates_to=pairs)
    data = as_json(dr)
    assert [r["code"] for r in data["relatesTo"]] == ["replaces", "appends", "signs"]
    assert data["relatesTo"][0]["target"]["reference"] == "DocumentReference/0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d"
    assert relations(dr) == pairs


def test_xfrm_rplc_is_written_as_replaces_plus_transforms() -> None:
    dr = entry_to_document_reference(rich_entry(), relates_to=[(AssociationType.XFRM_RPLC, REGISTERED)])
    assert [r["code"] for r in as_json(dr)["relatesTo"]] == ["replaces", "transforms"]
    assert relations(dr) == [(AssociationType.XFRM_RPLC, REGISTERED)]
    only_transform = entry_to_document_reference(rich_entry(), relates_to=[(AssociationType.XFRM, REGISTERED)])
    assert relations(only_transform) == [(AssociationType.XFRM, REGISTERED)]


def test_relation_to_a_literal_reference_and_an_unknown_code() -> None:
    data = as_json(entry_to_document_reference(rich_entry()))
    data["relatesTo"] = [
        {"code": "appends", "target": {"reference": "DocumentReference/123"}},
        {"code": "bogus", "target": {"reference": "DocumentReference/456"}},
    ]
    assert relations(data) == [(AssociationType.APND, "DocumentReference/123")]
    _, problems = document_reference_to_entry(data)
    assert [p.path for p in problems] == ["DocumentReference.relatesTo[1].code"]


# ---------------------------------------------------------------------------------------------- SubmissionSet


def _submission_set() -> Any:
    entry = rich_entry()
    submission = new_submission(
        [entry],
        author=professional_author("11478761004", family="Peeters", given="An"),
        submission_time="2024-05-01T10:00:00+02:00",
        title="Envoi",
        intended_recipients=["Some Hospital^^^^^^^^^1.2.3.9.1789.45|^Wel^Marcus^^^Dr^MD"],
        entry_uuid="urn:uuid:5f4e3d2c-1b0a-4987-8654-3210fedcba98",
        unique_id="2.25.987654321",
    )
    submission.submission_set.comments = "first line\nsecond line"
    return submission


def test_submission_set_round_trips_through_list() -> None:
    submission = _submission_set()
    ss = submission.submission_set
    lst = submission_set_to_list(ss, submission.entries)
    back, problems = list_to_submission_set(lst)
    assert problems == []
    assert back == ss


def test_list_is_an_mhd_submission_set_in_plain_r4() -> None:
    submission = _submission_set()
    data = as_json(submission_set_to_list(submission.submission_set, submission.entries))
    assert _keys(data) <= R4_LIST
    FhirList.model_validate(data)
    assert data["code"] == {"coding": [{"system": c.LIST_TYPES_SYSTEM, "code": "submissionset"}]}
    assert (data["status"], data["mode"]) == ("current", "working")
    assert data["date"] == "2024-05-01T08:00:00Z"
    assert data["meta"]["profile"] == [c.SUBMISSION_SET_COMPREHENSIVE]
    extensions = {e["url"]: e for e in data["extension"]}
    assert extensions[c.EXT_SOURCE_ID]["valueIdentifier"]["value"].startswith("urn:oid:")
    assert extensions[c.EXT_DESIGNATION_TYPE]["valueCodeableConcept"]["coding"][0]["code"] == "referral"
    assert c.EXT_INTENDED_RECIPIENT in extensions
    assert {i["use"]: i["value"] for i in data["identifier"]} == {
        "usual": "urn:oid:2.25.987654321",
        "official": "urn:uuid:5f4e3d2c-1b0a-4987-8654-3210fedcba98",
    }
    assert data["entry"] == [{"item": {"reference": submission.entries[0].entry_uuid}}]
    assert data["source"]["reference"].startswith("#")


def test_organisation_author_of_a_submission_set_uses_author_org() -> None:
    submission = _submission_set()
    submission.submission_set.authors = [Author(institutions=("Clinique du Parc",))]
    data = as_json(submission_set_to_list(submission.submission_set, submission.entries))
    assert [e["url"] for e in data["extension"] if e["url"] == c.EXT_AUTHOR_ORG] == [c.EXT_AUTHOR_ORG]
    assert "source" not in data
    back, _ = list_to_submission_set(data)
    assert back.authors == [Author(institutions=("Clinique du Parc",))]


def test_folder_list_and_bad_mode_are_reported() -> None:
    submission = _submission_set()
    data = as_json(submission_set_to_list(submission.submission_set, submission.entries))
    data["code"] = {"coding": [{"system": c.LIST_TYPES_SYSTEM, "code": "folder"}]}
    data["mode"] = "snapshot"
    _, problems = list_to_submission_set(data)
    assert [p.path for p in problems] == ["List.code", "List.mode"]
    assert "Folders are not supported" in problems[0].message


def test_http_extension_urls_of_older_tools_are_read() -> None:
    submission = _submission_set()
    data = as_json(submission_set_to_list(submission.submission_set, submission.entries))
    for ext in data["extension"]:
        ext["url"] = ext["url"].replace("https://", "http://")
    back, problems = list_to_submission_set(data)
    assert problems == []
    assert back.source_id == submission.submission_set.source_id
    assert back.content_type_code == submission.submission_set.content_type_code
