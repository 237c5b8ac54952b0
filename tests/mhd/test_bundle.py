"""ITI-65 Provide Document Bundle: build, parse and check; transaction-response; OperationOutcome."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from rsb_connector.errors import HubRefused, Problem, ProtocolError, Severity
from rsb_connector.identifiers import SSIN_SYSTEM, SSIN_SYSTEM_LEGACY
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.metadata.model import Association, AssociationType, SubmissionSetStatus
from rsb_connector.mhd import constants as c
from rsb_connector.mhd.bundle import (
    build_provide_bundle,
    build_transaction_response,
    parse_provide_bundle,
    parse_transaction_response,
)
from rsb_connector.mhd.mapping import as_json
from rsb_connector.mhd.outcome import http_status, operation_outcome_to_problems, problems_to_operation_outcome

from .test_mapping import PATIENT, PATIENT_CX, REGISTERED, rich_entry

SD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
LETTER = b"Dear colleague, ..."
LETTER_SHA1_B64 = base64.b64encode(hashlib.sha1(LETTER).digest()).decode()
DR_URL = "urn:uuid:3fdc72f4-a11d-4a9d-9a0b-6a8b8a5e7c01"
BINARY_URL = "urn:uuid:3fdc72f4-a11d-4a9d-9a0b-6a8b8a5e7c02"
LIST_URL = "urn:uuid:3fdc72f4-a11d-4a9d-9a0b-6a8b8a5e7c03"


def hand_written_bundle() -> dict[str, Any]:
    """An R4 ITI-65 Comprehensive bundle written by hand, as another Document Source would send it (legacy SSIN
    system, negative UTC offset, identifiers without ``use``, a Binary not base64-padded the Python way)."""
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [f"{SD}IHE.MHD.Comprehensive.ProvideBundle"]},
        "type": "transaction",
        "entry": [
            {
                "fullUrl": LIST_URL,
                "resource": {
                    "resourceType": "List",
                    "meta": {"profile": [f"{SD}IHE.MHD.Comprehensive.SubmissionSet"]},
                    "extension": [
                        {
                            "url": f"{SD}ihe-sourceId",
                            "valueIdentifier": {"system": "urn:ietf:rfc:3986",
                                                "value": "urn:oid:1.3.6.1.4.1.21367.2005.3.7"},
                        },
                        {
                            "url": f"{SD}ihe-designationType",
                            "valueCodeableConcept": {
                                "coding": [{
                                    "system": "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction",
                                    "code": "contactreport",
                                }]
                            },
                        },
                    ],
                    "identifier": [
                        {"use": "usual", "system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.4.5.6.7"},
                        {"use": "official", "system": "urn:ietf:rfc:3986", "value": LIST_URL},
                    ],
                    "status": "current",
                    "mode": "working",
                    "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
                                         "code": "submissionset"}]},
                    "subject": {"identifier": {"system": SSIN_SYSTEM_LEGACY, "value": PATIENT}},
                    "date": "2024-05-01T23:30:00-04:00",
                    "entry": [{"item": {"reference": DR_URL}}],
                },
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": DR_URL,
                "resource": {
                    "resourceType": "DocumentReference",
                    "meta": {"profile": [f"{SD}IHE.MHD.Comprehensive.DocumentReference"]},
                    "contained": [
                        {
                            "resourceType": "Patient",
                            "id": "sp",
                            "identifier": [{"system": SSIN_SYSTEM, "value": PATIENT}],
                        },
                        {
                            "resourceType": "Practitioner",
                            "id": "a1",
                            "identifier": [{"system": "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi",
                                            "value": "11478761004"}],
                            "name": [{"family": "Peeters", "given": ["An"]}],
                        },
                    ],
                    "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.4.5.6.8"},
                    "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": DR_URL}],
                    "status": "current",
                    "type": {"coding": [{
                        "system": "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction",
                        "code": "contactreport",
                    }]},
                    "category": [{"coding": [{
                        "system": "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction",
                        "code": "contactreport",
                    }]}],
                    "subject": {"identifier": {"system": SSIN_SYSTEM_LEGACY, "value": PATIENT}},
                    "author": [{"reference": "#a1"}],
                    "securityLabel": [{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"
                    }]}],
                    "content": [
                        {
                            "attachment": {
                                "contentType": "text/plain",
                                "language": "fr-BE",
                                "url": BINARY_URL,
                                "size": len(LETTER),
                                "hash": LETTER_SHA1_B64,
                                "title": "Lettre",
                                "creation": "2024-04-30T21:15:00-05:00",
                            },
                            "format": {
                                "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                                "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                            },
                        }
                    ],
                    "context": {
                        "facilityType": {"coding": [{"system": "http://snomed.info/sct", "code": "35971002"}]},
                        "practiceSetting": {"coding": [{"system": "http://snomed.info/sct", "code": "394802001"}]},
                        "sourcePatientInfo": {"reference": "#sp"},
                    },
                },
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": BINARY_URL,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "text/plain",
                    "data": base64.b64encode(LETTER).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }  # fmt: skip


def codes(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in problems if p.is_error]


# ------------------------------------------------------------------------------------------------- round trip


def _submission() -> Any:
    first = rich_entry()
    second = new_document(
        b"second", patient=PATIENT, document_type="referral", mime_type="text/plain", creation_time="20240501"
    )
    submission = new_submission(
        [first, second],
        author=professional_author("11478761004", family="Peeters", given="An"),
        submission_time="2024-05-01T10:00:00+02:00",
    )
    submission.associations.append(
        Association(
            entry_uuid="urn:uuid:7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918",
            type=AssociationType.RPLC,
            source=first.entry_uuid,
            target=REGISTERED,
        )
    )
    documents = {first.entry_uuid: b"%PDF-1.4 a referral letter", second.entry_uuid: b"second"}
    return submission, documents


def test_build_then_parse_gives_back_the_submission() -> None:
    submission, documents = _submission()
    bundle = build_provide_bundle(submission, documents)
    parsed = parse_provide_bundle(bundle.model_dump_json().encode())
    assert parsed.problems == []
    assert parsed.ok
    assert parsed.profile is c.ProvideBundleProfile.COMPREHENSIVE
    assert parsed.submission.submission_set == submission.submission_set
    assert parsed.submission.entries == submission.entries
    assert parsed.documents == documents
    assert parsed.submission.document_ids == [e.entry_uuid for e in submission.entries]
    kinds = sorted((a.type.short, a.source, a.target, a.submission_set_status) for a in parsed.submission.associations)
    expected = sorted((a.type.short, a.source, a.target, a.submission_set_status) for a in submission.associations)
    assert kinds == expected


def test_built_bundle_is_an_mhd_transaction() -> None:
    submission, documents = _submission()
    data = json.loads(build_provide_bundle(submission, documents, profile="Comprehensive").model_dump_json())
    assert data["type"] == "transaction"
    assert data["meta"]["profile"] == [f"{SD}IHE.MHD.Comprehensive.ProvideBundle"]
    r4_bundle = {"resourceType", "id", "meta", "implicitRules", "language", "identifier", "type", "timestamp", "total",
                 "link", "entry", "signature"}  # fmt: skip
    r4_entry = {"link", "fullUrl", "resource", "search", "request", "response"}
    assert set(data) <= r4_bundle
    assert all(set(e) <= r4_entry for e in data["entry"])
    assert all(set(e["resource"]) <= {"resourceType", "id", "meta", "contentType", "securityContext", "data"}
               for e in data["entry"] if e["resource"]["resourceType"] == "Binary")  # fmt: skip
    entries = data["entry"]
    assert [e["resource"]["resourceType"] for e in entries] == [
        "List", "DocumentReference", "DocumentReference", "Binary", "Binary"
    ]  # fmt: skip
    urls = [e["fullUrl"] for e in entries]
    assert len(set(urls)) == len(urls)
    assert all(u.startswith("urn:uuid:") for u in urls)
    assert all(e["request"] == {"method": "POST", "url": e["resource"]["resourceType"]} for e in entries)
    binaries = {e["fullUrl"]: e["resource"] for e in entries if e["resource"]["resourceType"] == "Binary"}
    for dr in (e["resource"] for e in entries if e["resource"]["resourceType"] == "DocumentReference"):
        url = dr["content"][0]["attachment"]["url"]
        assert url in binaries
        assert binaries[url]["contentType"] == dr["content"][0]["attachment"]["contentType"]
    assert entries[0]["resource"]["entry"] == [{"item": {"reference": urls[1]}}, {"item": {"reference": urls[2]}}]
    assert base64.b64decode(entries[4]["resource"]["data"]) == b"second"
    assert entries[1]["resource"]["relatesTo"][0]["code"] == "replaces"


def test_patient_entry_is_conditional_and_referenced() -> None:
    submission, documents = _submission()
    patient = {"resourceType": "Patient", "identifier": [{"system": SSIN_SYSTEM, "value": PATIENT}]}
    data = as_json(build_provide_bundle(submission, documents, patient=patient))
    last = data["entry"][-1]
    assert last["resource"]["resourceType"] == "Patient"
    assert last["request"] == {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={SSIN_SYSTEM}|{PATIENT}"}
    assert data["entry"][1]["resource"]["subject"]["reference"] == last["fullUrl"]
    parsed = parse_provide_bundle(data)
    assert parsed.problems == []
    assert [i.resource_type for i in parsed.entries][-1] == "Patient"


def test_build_refuses_an_entry_without_document() -> None:
    submission, documents = _submission()
    documents.pop(submission.entries[1].entry_uuid)
    with pytest.raises(ValueError, match="no document given"):
        build_provide_bundle(submission, documents)


def test_minimal_and_uncontained_profiles() -> None:
    submission, documents = _submission()
    for name, profile in (
        ("Minimal", c.ProvideBundleProfile.MINIMAL),
        ("UnContained", c.ProvideBundleProfile.UNCONTAINED),
    ):
        data = as_json(build_provide_bundle(submission, documents, profile=name))
        assert data["meta"]["profile"] == [profile.value]
        assert data["entry"][1]["resource"]["meta"]["profile"] == [profile.document_reference_profile]
        parsed = parse_provide_bundle(data)
        assert parsed.profile is profile
        assert parsed.problems == []


# ------------------------------------------------------------------------------------------ a hand-written bundle


def test_hand_written_r4_bundle_parses() -> None:
    parsed = parse_provide_bundle(json.dumps(hand_written_bundle()))
    assert parsed.problems == []
    ss = parsed.submission.submission_set
    assert ss.entry_uuid == LIST_URL
    assert ss.unique_id == "1.2.3.4.5.6.7"
    assert ss.source_id == "1.3.6.1.4.1.21367.2005.3.7"
    assert ss.patient_id == PATIENT_CX  # the legacy SSIN system is accepted
    assert ss.submission_time == "20240502033000"  # -04:00 -> UTC, next day
    assert ss.content_type_code is not None and ss.content_type_code.code == "contactreport"
    (entry,) = parsed.submission.entries
    assert entry.entry_uuid == DR_URL
    assert entry.unique_id == "1.2.3.4.5.6.8"
    assert entry.creation_time == "20240501021500"  # -05:00 -> UTC, next day
    assert entry.hash == hashlib.sha1(LETTER).hexdigest()
    assert entry.source_patient_id == PATIENT_CX
    assert entry.authors[0].person == "11478761004^Peeters^An^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"
    assert entry.uri is None  # the bundle-internal Binary reference is not a retrieval URL
    assert parsed.documents == {DR_URL: LETTER}
    (member,) = parsed.submission.associations
    assert (member.type, member.source, member.target) == (AssociationType.HAS_MEMBER, LIST_URL, DR_URL)
    assert member.submission_set_status is SubmissionSetStatus.ORIGINAL
    assert parsed.locations(base_url="https://hub/fhir") == [
        "https://hub/fhir/List/3fdc72f4-a11d-4a9d-9a0b-6a8b8a5e7c03",
        "https://hub/fhir/DocumentReference/3fdc72f4-a11d-4a9d-9a0b-6a8b8a5e7c01",
        "https://hub/fhir/Binary/3fdc72f4-a11d-4a9d-9a0b-6a8b8a5e7c01",
    ]


def _delete(*path: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(bundle: dict[str, Any]) -> None:
        target: Any = bundle
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _drop_extension(url: str) -> Callable[[dict[str, Any]], None]:
    def mutate(bundle: dict[str, Any]) -> None:
        lst = bundle["entry"][0]["resource"]
        lst["extension"] = [e for e in lst["extension"] if e["url"] != url]

    return mutate


def _drop_unique_id(bundle: dict[str, Any]) -> None:
    lst = bundle["entry"][0]["resource"]
    lst["identifier"] = [i for i in lst["identifier"] if i["use"] != "usual"]


DR = ("entry", 1, "resource")
ATT = (*DR, "content", 0, "attachment")
MISSING = [
    ("typeCode", _delete(*DR, "type"), "XDSRegistryMetadataError", "Bundle.entry[1].resource.type"),
    ("formatCode", _delete(*DR, "content", 0, "format"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.content[0].format"),
    ("languageCode", _delete(*ATT, "language"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.content[0].attachment.language"),
    ("mimeType", _delete(*ATT, "contentType"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.content[0].attachment.contentType"),
    ("creationTime", _delete(*ATT, "creation"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.content[0].attachment.creation"),
    ("patient", _delete(*DR, "subject"), "XDSRegistryMetadataError", "Bundle.entry[1].resource.subject"),
    ("classCode", _delete(*DR, "category"), "XDSRegistryMetadataError", "Bundle.entry[1].resource.category"),
    ("confidentialityCode", _delete(*DR, "securityLabel"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.securityLabel"),
    ("practiceSetting", _delete(*DR, "context", "practiceSetting"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.context.practiceSetting"),
    ("facilityType", _delete(*DR, "context", "facilityType"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.context.facilityType"),
    ("sourcePatientId", _delete(*DR, "context", "sourcePatientInfo"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.context.sourcePatientInfo"),
    ("uniqueId", _delete(*DR, "masterIdentifier"), "XDSRegistryMetadataError",
     "Bundle.entry[1].resource.masterIdentifier"),
    ("sourceId", _drop_extension(f"{SD}ihe-sourceId"), "XDSRegistryMetadataError",
     f"Bundle.entry[0].resource.extension('{SD}ihe-sourceId')"),
    ("contentTypeCode", _drop_extension(f"{SD}ihe-designationType"), "XDSRegistryMetadataError",
     f"Bundle.entry[0].resource.extension('{SD}ihe-designationType')"),
    ("submissionTime", _delete("entry", 0, "resource", "date"), "XDSRegistryMetadataError",
     "Bundle.entry[0].resource.date"),
    ("submissionSet uniqueId", _drop_unique_id, "XDSRegistryMetadataError", "Bundle.entry[0].resource.identifier"),
    ("submissionSet patient", _delete("entry", 0, "resource", "subject"), "XDSRegistryMetadataError",
     "Bundle.entry[0].resource.subject"),
    ("document", _delete("entry", 2), "XDSMissingDocument", "Bundle.entry[1].resource.content[0].attachment.url"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "mutate", "code", "path"), MISSING, ids=[m[0] for m in MISSING])
def test_each_missing_comprehensive_element_is_one_problem_at_its_path(
    what: str, mutate: Callable[[dict[str, Any]], None], code: str, path: str
) -> None:
    bundle = hand_written_bundle()
    mutate(bundle)
    parsed = parse_provide_bundle(bundle)
    assert not parsed.ok
    assert codes(parsed.problems) == [(code, path)], what


def test_several_missing_elements_are_all_reported() -> None:
    bundle = hand_written_bundle()
    for _what, mutate, _code, _path in MISSING[:4]:
        mutate(bundle)
    parsed = parse_provide_bundle(bundle)
    assert sorted(codes(parsed.problems)) == sorted((code, path) for _w, _m, code, path in MISSING[:4])


def test_document_reference_without_a_matching_binary_and_binary_without_reference() -> None:
    bundle = hand_written_bundle()
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["url"] = "urn:uuid:00000000-0000-4000-8000-000000000000"
    parsed = parse_provide_bundle(bundle)
    assert codes(parsed.problems) == [
        ("XDSMissingDocument", "Bundle.entry[1].resource.content[0].attachment.url"),
        ("XDSMissingDocumentMetadata", "Bundle.entry[2]"),
    ]


def test_binary_without_data_is_a_missing_document() -> None:
    bundle = hand_written_bundle()
    del bundle["entry"][2]["resource"]["data"]
    assert codes(parse_provide_bundle(bundle).problems) == [("XDSMissingDocument", "Bundle.entry[2].resource.data")]


# ------------------------------------------------------------------------------------------- profile & envelope


def test_missing_profile_is_a_problem() -> None:
    bundle = hand_written_bundle()
    del bundle["meta"]
    parsed = parse_provide_bundle(bundle)
    assert parsed.profile is None
    assert codes(parsed.problems) == [("XDSRegistryMetadataError", "Bundle.meta.profile")]
    assert "declares no meta.profile" in parsed.problems[0].message


def test_unknown_profile_is_a_problem() -> None:
    bundle = hand_written_bundle()
    bundle["meta"]["profile"] = ["http://example.org/StructureDefinition/MyBundle"]
    parsed = parse_provide_bundle(bundle)
    assert codes(parsed.problems) == [("XDSRegistryMetadataError", "Bundle.meta.profile")]
    assert "IHE.MHD.Comprehensive.ProvideBundle" in parsed.problems[0].message


def test_http_profile_url_is_accepted_with_a_warning() -> None:
    bundle = hand_written_bundle()
    bundle["meta"]["profile"] = [
        "http://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle"
    ]
    parsed = parse_provide_bundle(bundle)
    assert parsed.ok
    assert [(p.path, p.severity) for p in parsed.problems] == [("Bundle.meta.profile", Severity.WARNING)]


def test_minimal_bundle_accepts_fewer_elements() -> None:
    bundle = hand_written_bundle()
    bundle["meta"]["profile"] = [f"{SD}IHE.MHD.Minimal.ProvideBundle"]
    dr = bundle["entry"][1]["resource"]
    for element in ("type", "category", "securityLabel", "context"):
        del dr[element]
    del dr["content"][0]["format"]
    parsed = parse_provide_bundle(bundle)
    assert parsed.ok, parsed.problems
    assert {p.path for p in parsed.problems} >= {
        "Bundle.entry[1].resource.type",
        "Bundle.entry[1].resource.category",
        "Bundle.entry[1].resource.context.sourcePatientInfo",
    }
    assert all(p.severity is Severity.WARNING for p in parsed.problems)
    strict = parse_provide_bundle(bundle, minimal_as_warnings=False)
    assert ("XDSRegistryMetadataError", "Bundle.entry[1].resource.type") in codes(strict.problems)
    del dr["masterIdentifier"]
    assert ("XDSRegistryMetadataError", "Bundle.entry[1].resource.masterIdentifier") in codes(
        parse_provide_bundle(bundle).problems
    )


def test_comprehensive_requires_contained_author_uncontained_does_not() -> None:
    bundle = hand_written_bundle()
    dr = bundle["entry"][1]["resource"]
    dr["author"] = [{"reference": "Practitioner/77", "identifier": {"system": "urn:oid:1.2.3", "value": "77"}}]
    assert codes(parse_provide_bundle(bundle).problems) == [
        ("XDSRegistryMetadataError", "Bundle.entry[1].resource.author[0]")
    ]
    bundle["meta"]["profile"] = [f"{SD}IHE.MHD.UnContained.Comprehensive.ProvideBundle"]
    assert parse_provide_bundle(bundle).problems == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b.update(type="batch"), ("XDSRegistryMetadataError", "Bundle.type")),
        (lambda b: b["entry"][2].update(fullUrl=DR_URL), ("XDSRegistryMetadataError", "Bundle.entry[2].fullUrl")),
        (lambda b: b["entry"][2].pop("request"), ("XDSRegistryMetadataError", "Bundle.entry[2].request")),
        (lambda b: b["entry"][1]["request"].update(method="PUT"),
         ("XDSRegistryMetadataError", "Bundle.entry[1].request")),
        (lambda b: b["entry"][1]["resource"].update(unknownElement=1),
         ("XDSRegistryMetadataError", "Bundle.entry[1].resource.unknownElement")),
        (lambda b: b["entry"].append({"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Observation"}}),
         ("XDSRegistryMetadataError", "Bundle.entry[3].resource")),
    ],
)  # fmt: skip
def test_envelope_problems(mutate: Callable[[dict[str, Any]], Any], expected: tuple[str, str]) -> None:
    bundle = hand_written_bundle()
    mutate(bundle)
    assert expected in codes(parse_provide_bundle(bundle).problems)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", json.dumps({"resourceType": "Patient"}).encode()])
def test_not_a_bundle(body: bytes) -> None:
    parsed = parse_provide_bundle(body)
    assert not parsed.ok
    assert parsed.problems[0].path == "Bundle"
    assert parsed.submission.entries == []


# ------------------------------------------------------------------------------------------ patients & content


def test_bad_patient_link() -> None:
    bundle = hand_written_bundle()
    bundle["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:9f9f9f9f-0000-4000-8000-000000000000"}
    parsed = parse_provide_bundle(bundle)
    assert codes(parsed.problems) == [("XDSUnknownPatientId", "Bundle.entry[1].resource.subject.reference")]


def test_patient_link_to_a_patient_entry_or_a_resolver() -> None:
    bundle = hand_written_bundle()
    patient_url = "urn:uuid:9f9f9f9f-0000-4000-8000-000000000000"
    bundle["entry"][1]["resource"]["subject"] = {"reference": patient_url}
    bundle["entry"][0]["resource"]["subject"] = {"reference": "Patient/p-1"}
    bundle["entry"].append(
        {
            "fullUrl": patient_url,
            "resource": {"resourceType": "Patient", "identifier": [{"system": SSIN_SYSTEM, "value": PATIENT}]},
            "request": {"method": "POST", "url": "Patient"},
        }
    )
    parsed = parse_provide_bundle(bundle, resolve_patient={"Patient/p-1": PATIENT_CX}.get)
    assert parsed.problems == []
    assert parsed.submission.entries[0].patient_id == PATIENT_CX
    assert parsed.submission.submission_set.patient_id == PATIENT_CX


def test_entry_patient_differs_from_submission_set_patient() -> None:
    bundle = hand_written_bundle()
    bundle["entry"][1]["resource"]["subject"]["identifier"]["value"] = "72022102793"
    assert codes(parse_provide_bundle(bundle).problems) == [
        ("XDSPatientIdDoesNotMatch", "Bundle.entry[1].resource.subject")
    ]


def test_wrong_hash_and_size_are_repository_metadata_errors() -> None:
    bundle = hand_written_bundle()
    attachment = bundle["entry"][1]["resource"]["content"][0]["attachment"]
    attachment["hash"] = base64.b64encode(hashlib.sha1(b"other").digest()).decode()
    attachment["size"] = 3
    assert codes(parse_provide_bundle(bundle).problems) == [
        ("XDSRepositoryMetadataError", "Bundle.entry[1].resource.content[0].attachment.hash"),
        ("XDSRepositoryMetadataError", "Bundle.entry[1].resource.content[0].attachment.size"),
    ]
    assert parse_provide_bundle(bundle, validate=False).problems == []


def test_value_set_and_rule_problems_get_fhir_paths() -> None:
    bundle = hand_written_bundle()
    bundle["entry"][1]["resource"]["securityLabel"][0]["coding"][0]["code"] = "Z"
    assert codes(parse_provide_bundle(bundle).problems) == [
        ("XDSRegistryMetadataError", "Bundle.entry[1].resource.securityLabel[0]")
    ]


def test_document_not_in_the_submission_set() -> None:
    bundle = hand_written_bundle()
    bundle["entry"][0]["resource"]["entry"] = [{"item": {"reference": "urn:uuid:11111111-0000-4000-8000-000000000000"}}]
    assert codes(parse_provide_bundle(bundle).problems) == [
        ("XDSRegistryMetadataError", "Bundle.entry[0].resource.entry[0].item"),
        ("XDSRegistryMetadataError", "Bundle.entry[1].resource"),
    ]


def test_replacement_resolves_the_target_document() -> None:
    bundle = hand_written_bundle()
    bundle["entry"][1]["resource"]["relatesTo"] = [
        {"code": "replaces", "target": {"reference": "DocumentReference/0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d"}},
        {"code": "appends", "target": {"reference": "DocumentReference/opaque-id"}},
    ]
    parsed = parse_provide_bundle(bundle)
    assert codes(parsed.problems) == [("XDSRegistryMetadataError", "Bundle.entry[1].resource.relatesTo[1].target")]
    relation = [a for a in parsed.submission.associations if a.type is AssociationType.RPLC]
    assert [(a.source, a.target) for a in relation] == [(DR_URL, REGISTERED)]
    resolved = parse_provide_bundle(bundle, resolve_document={"DocumentReference/opaque-id": REGISTERED}.get)
    assert resolved.problems == []


def test_registry_problems_are_translated_to_bundle_paths() -> None:
    parsed = parse_provide_bundle(hand_written_bundle())
    later = [
        Problem("XDSUnknownPatientId", "unknown patient", f"DocumentEntry[{DR_URL}].patientId"),
        Problem("XDSUnknownPatientId", "unknown patient", "SubmissionSet.patientId"),
        Problem("XDSDuplicateUniqueIdInRegistry", "already there", f"DocumentEntry[{DR_URL}].uniqueId"),
        Problem("XDSRegistryError", "elsewhere", "Somewhere.else"),
    ]
    assert [p.path for p in parsed.fhir_problems(later)] == [
        "Bundle.entry[1].resource.subject",
        "Bundle.entry[0].resource.subject",
        "Bundle.entry[1].resource.masterIdentifier",
        "Somewhere.else",
    ]


# --------------------------------------------------------------------------------------- transaction-response


def test_transaction_response_round_trip() -> None:
    locations = ["List/1", "DocumentReference/2", "Binary/2"]
    response = build_transaction_response(locations)
    data = as_json(response)
    assert data["type"] == "transaction-response"
    assert [e["response"]["status"] for e in data["entry"]] == ["201 Created"] * 3
    parsed = parse_transaction_response(response.model_dump_json())
    assert parsed.locations == locations
    assert parsed.statuses == ["201 Created"] * 3
    assert parsed.problems == []


def test_refusal_and_garbage_answers() -> None:
    outcome = problems_to_operation_outcome([Problem("XDSMissingDocument", "no binary", "Bundle.entry[1]")])
    with pytest.raises(HubRefused) as refused:
        parse_transaction_response(outcome.model_dump_json().encode())
    assert refused.value.code == "XDSMissingDocument"
    with pytest.raises(ProtocolError):
        parse_transaction_response(b"<html>")
    with pytest.raises(ProtocolError):
        parse_transaction_response({"resourceType": "Bundle", "type": "searchset"})


# --------------------------------------------------------------------------------------------- OperationOutcome


def test_operation_outcome_round_trip() -> None:
    problems = [
        Problem("XDSRegistryMetadataError", "type is missing", "Bundle.entry[1].resource.type"),
        Problem("XDSUnknownPatientId", "who?", "Bundle.entry[1].resource.subject"),
        Problem("LocalPolicyRestrictionError", "no consent"),
        Problem("XDSRegistryMetadataError", "http profile", "Bundle.meta.profile", Severity.WARNING),
    ]
    outcome = problems_to_operation_outcome(problems)
    data = as_json(outcome)
    first = data["issue"][0]
    assert first["severity"] == "error"
    assert first["code"] == "invalid"
    assert first["details"]["coding"] == [{"system": c.XDS_ERROR_CODE_SYSTEM, "code": "XDSRegistryMetadataError"}]
    assert first["diagnostics"] == "type is missing"
    assert first["expression"] == ["Bundle.entry[1].resource.type"]
    assert [i["code"] for i in data["issue"]] == ["invalid", "not-found", "security", "invalid"]
    assert data["issue"][3]["severity"] == "warning"
    assert operation_outcome_to_problems(outcome.model_dump_json()) == problems


def test_operation_outcome_of_another_server() -> None:
    foreign = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing", "details": {"text": "XDSPatientIdDoesNotMatch"}},
            {"severity": "fatal", "code": "exception", "diagnostics": "boom", "location": ["Bundle.entry[0]"]},
            {"severity": "information", "code": "informational", "diagnostics": "fine"},
        ],
    }
    problems = operation_outcome_to_problems(foreign)
    assert [(p.code, p.message, p.path, p.severity) for p in problems] == [
        ("XDSPatientIdDoesNotMatch", "XDSPatientIdDoesNotMatch", "", Severity.ERROR),
        ("exception", "boom", "Bundle.entry[0]", Severity.ERROR),
    ]
    with pytest.raises(ValueError, match="expected an OperationOutcome"):
        operation_outcome_to_problems({"resourceType": "Bundle"})


def test_empty_outcome_and_http_status() -> None:
    assert as_json(problems_to_operation_outcome([]))["issue"][0]["severity"] == "information"
    assert http_status([]) == 200
    assert http_status([Problem("XDSRegistryMetadataError", "x", severity=Severity.WARNING)]) == 200
    assert http_status([Problem("XDSRegistryMetadataError", "x")]) == 400
    assert http_status([Problem("XDSUnknownPatientId", "x")]) == 404
    assert http_status([Problem("LocalPolicyRestrictionError", "x")]) == 403
    assert http_status([Problem("XDSDuplicateUniqueIdInRegistry", "x")]) == 409
    assert http_status([Problem("XDSRegistryError", "x")]) == 500


def test_parsed_bundle_is_independent_of_the_input() -> None:
    bundle = hand_written_bundle()
    snapshot = copy.deepcopy(bundle)
    parse_provide_bundle(bundle)
    assert bundle == snapshot
