"""ITI-67 search parameters <-> stored queries, and the searchset Bundle."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest

from rsb_connector.errors import QueryError
from rsb_connector.identifiers import SSIN_SYSTEM, SSIN_SYSTEM_LEGACY
from rsb_connector.metadata.model import AvailabilityStatus, Code
from rsb_connector.mhd import constants as c
from rsb_connector.mhd.mapping import as_json, entry_to_document_reference
from rsb_connector.mhd.search import (
    parse_search,
    parse_search_result_bundle,
    search_result_bundle,
    to_search_params,
)
from rsb_connector.query import FindDocuments, FindDocumentsByReferenceId, GetDocuments

from .test_mapping import PATIENT, PATIENT_CX, rich_entry

CD_TRANSACTION = "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction"
SNOMED = "http://snomed.info/sct"


def problems_of(params: Any, **kwargs: Any) -> list[tuple[str, str]]:
    with pytest.raises(QueryError) as info:
        parse_search(params, **kwargs)
    return [(p.code, p.path) for p in info.value.problems]


# ------------------------------------------------------------------------------------------- client encodings


def test_fhirclient_and_fhirpy_encodings_give_the_same_query() -> None:
    raw = [
        ("patient.identifier", f"{SSIN_SYSTEM}|{PATIENT}"),
        ("status", "current"),
        ("type", f"{CD_TRANSACTION}|labresult"),
        ("creation", "ge2024-01-01T00:00:00+01:00"),
    ]
    # fhirpy: ':' and '|' left as they are, the server hands over decoded values
    fhirpy = parse_search(parse_qs(urlencode(raw, safe=":/|")))
    # fhirclient: ':' sent as %3A; a framework that does not decode (or a double-encoding proxy) hands over %3A
    fhirclient_raw = {k: [quote(v, safe="")] for k, v in raw}
    assert fhirclient_raw["patient.identifier"][0].startswith("https%3A%2F%2F")
    fhirclient = parse_search(fhirclient_raw)
    decoded_once = parse_search(parse_qs("&".join(f"{k}={quote(v, safe='')}" for k, v in raw)))
    assert fhirpy == fhirclient == decoded_once
    assert fhirpy == FindDocuments(
        patient_id=PATIENT_CX,
        statuses=(AvailabilityStatus.APPROVED,),
        type_codes=(Code("labresult", "CD-TRANSACTION"),),
        creation_time_from="20231231230000",
    )


@pytest.mark.parametrize(
    "key", ["patient.identifier", "patient:identifier", "patient%3Aidentifier", "subject:identifier"]
)
def test_patient_identifier_spellings(key: str) -> None:
    query = parse_search({key: [f"{SSIN_SYSTEM}|{PATIENT}"], "status": ["current"]})
    assert isinstance(query, FindDocuments)
    assert query.patient_id == PATIENT_CX


@pytest.mark.parametrize(
    "token",
    [
        f"{SSIN_SYSTEM}|{PATIENT}",
        f"{SSIN_SYSTEM_LEGACY}|{PATIENT}",
        f"urn:oid:2.16.840.1.113883.3.6777.5.1|{PATIENT}",
        PATIENT,  # no system: accepted when it is a valid SSIN
    ],
)
def test_patient_identifier_systems(token: str) -> None:
    query = parse_search({"patient.identifier": [token], "status": ["current"]})
    assert isinstance(query, FindDocuments)
    assert query.patient_id == PATIENT_CX


def test_patient_reference_needs_a_resolver() -> None:
    params = {"patient": ["https://hub.example/fhir/Patient/p-1"], "status": ["current"]}
    assert problems_of(params) == [("XDSUnknownPatientId", "patient")]
    query = parse_search(params, resolve_patient={"https://hub.example/fhir/Patient/p-1": PATIENT_CX}.get)
    assert isinstance(query, FindDocuments)
    assert query.patient_id == PATIENT_CX


# ----------------------------------------------------------------------------------------- required parameters


def test_patient_and_status_are_required() -> None:
    assert problems_of({}) == [("XDSStoredQueryMissingParam", "patient"), ("XDSStoredQueryMissingParam", "status")]
    assert problems_of({"status": ["current"]}) == [("XDSStoredQueryMissingParam", "patient")]
    assert problems_of({"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT}"]}) == [
        ("XDSStoredQueryMissingParam", "status")
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT},{SSIN_SYSTEM}|72022102793"], "status": ["current"]},
         ("XDSStoredQueryParamNumber", "patient")),
        ({"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT}"], "status": ["current"], "type": ["a|b", "a|c"]},
         ("XDSStoredQueryParamNumber", "type")),
        ({"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT}"], "status": ["entered-in-error"]},
         ("XDSRegistryError", "status")),
        ({"patient.identifier": ["http://hospital.example/mrn|123"], "status": ["current"]},
         ("XDSUnknownPatientId", "patient.identifier")),
        ({"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT}"], "status": ["current"], "creation": ["sa2024"]},
         ("XDSRegistryError", "creation")),
        ({"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT}"], "status": ["current"], "format": ["unknown-code"]},
         ("XDSRegistryError", "format")),
    ],
)  # fmt: skip
def test_malformed_searches_name_the_parameter(params: dict[str, list[str]], expected: tuple[str, str]) -> None:
    assert expected in problems_of(params)


def test_unknown_parameters_are_ignored_unless_strict() -> None:
    params = {"patient.identifier": [f"{SSIN_SYSTEM}|{PATIENT}"], "status": ["current"], "foo": ["1"], "_count": ["5"]}
    assert isinstance(parse_search(params), FindDocuments)
    assert problems_of(params, strict=True) == [("XDSRegistryError", "foo")]


# ----------------------------------------------------------------------------------------------- the mapping


BASE = [("patient.identifier", f"{SSIN_SYSTEM}|{PATIENT}"), ("status", "current,superseded")]


def test_every_find_parameter() -> None:
    query = parse_search(
        [
            *BASE,
            ("category", f"{CD_TRANSACTION}|labresult,sumehr"),
            ("type", f"{CD_TRANSACTION}|labresult"),
            ("setting", f"{SNOMED}|394802001"),
            ("facility", f"{SNOMED}|22232009"),
            ("format", "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode|urn:ihe:iti:xds-sd:pdf:2008"),
            ("event", "urn:oid:1.2.3|E1"),
            ("event", "urn:oid:1.2.3|E2,urn:oid:1.2.3|E3"),
            ("security-label", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N,R"),
            ("author.family", "Peeters"),
            ("_count", "10"),
        ]
    )
    assert query == FindDocuments(
        patient_id=PATIENT_CX,
        statuses=(AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED),
        class_codes=(Code("labresult", "CD-TRANSACTION"), Code("sumehr", "CD-TRANSACTION")),
        type_codes=(Code("labresult", "CD-TRANSACTION"),),
        practice_setting_codes=(Code("394802001", "2.16.840.1.113883.6.96"),),
        healthcare_facility_type_codes=(Code("22232009", "2.16.840.1.113883.6.96"),),
        format_codes=(Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),),
        event_codes=((Code("E1", "1.2.3"),), (Code("E2", "1.2.3"), Code("E3", "1.2.3"))),
        confidentiality_codes=((Code("N", "2.16.840.1.113883.5.25"), Code("R", "2.16.840.1.113883.5.25")),),
        author_persons=("%^Peeters%",),
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ge2024-01-01", {"creation_time_from": "20240101"}),
        ("gt2024-01-01", {"creation_time_from": "20240102"}),
        ("le2024-12-31", {"creation_time_to": "20250101"}),
        ("lt2024-12-31", {"creation_time_to": "20241231"}),
        ("2024-02", {"creation_time_from": "202402", "creation_time_to": "202403"}),
        ("eq2024-12", {"creation_time_from": "202412", "creation_time_to": "202501"}),
        ("eq2024", {"creation_time_from": "2024", "creation_time_to": "2025"}),
        ("ge2024-01-01T10:00:00-05:00", {"creation_time_from": "20240101150000"}),
        ("le2024-12-31T23:59:59Z", {"creation_time_to": "20250101000000"}),
    ],
)
def test_creation_prefixes_become_xds_bounds(value: str, expected: dict[str, str]) -> None:
    query = parse_search([*BASE, ("creation", value)])
    assert isinstance(query, FindDocuments)
    bounds = {k: getattr(query, k) for k in ("creation_time_from", "creation_time_to") if getattr(query, k)}
    assert bounds == expected
    assert parse_search([*BASE, ("date", value)]) == query


def test_two_bounds_keep_the_stricter_one() -> None:
    query = parse_search([*BASE, ("creation", "ge2024-01-01"), ("creation", "ge2024-03-01"), ("date", "lt2024-06")])
    assert isinstance(query, FindDocuments)
    assert (query.creation_time_from, query.creation_time_to) == ("20240301", "202406")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ge2024-01-01", {"service_stop_time_from": "20240101"}),
        ("gt2024-01-01", {"service_stop_time_from": "20240102"}),
        ("le2024-01-31", {"service_start_time_to": "20240201"}),
        ("lt2024-01-31", {"service_start_time_to": "20240131"}),
        ("eq2024-01", {"service_start_time_from": "202401", "service_stop_time_to": "202402"}),
    ],
)
def test_period_prefixes(value: str, expected: dict[str, str]) -> None:
    query = parse_search([*BASE, ("period", value)])
    names = ("service_start_time_from", "service_start_time_to", "service_stop_time_from", "service_stop_time_to")
    assert {k: getattr(query, k) for k in names if getattr(query, k)} == expected


@pytest.mark.parametrize(
    ("params", "patterns"),
    [
        ([("author.family", "Peeters,Janssens")], ("%^Peeters%", "%^Janssens%")),
        ([("author.given", "An")], ("%^%^An%",)),
        ([("author.family", "Peeters"), ("author.given", "An")], ("%^Peeters%^An%",)),
    ],
)
def test_author_names_become_author_person_patterns(params: list[tuple[str, str]], patterns: tuple[str, ...]) -> None:
    query = parse_search([*BASE, *params])
    assert isinstance(query, FindDocuments)
    assert query.author_persons == patterns


def test_identifier_searches_become_get_documents() -> None:
    by_unique = parse_search({"identifier": ["urn:ietf:rfc:3986|urn:oid:1.2.3.4,urn:oid:1.2.3|ext-9"]})
    assert by_unique == GetDocuments(unique_ids=("1.2.3.4", "1.2.3^ext-9"))
    uuid = "urn:uuid:0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d"
    assert parse_search({"identifier": [f"urn:ietf:rfc:3986|{uuid}"]}) == GetDocuments(entry_uuids=(uuid,))
    assert parse_search({"_id": [uuid.removeprefix("urn:uuid:")]}) == GetDocuments(entry_uuids=(uuid,))
    assert problems_of({"identifier": [f"urn:oid:1.2.3.4,{uuid}"]}) == [("XDSStoredQueryParamNumber", "identifier")]


def test_related_becomes_find_documents_by_reference_id() -> None:
    query = parse_search([*BASE, ("related", "urn:oid:1.2.3.9|R-12")])
    assert isinstance(query, FindDocumentsByReferenceId)
    assert query.reference_ids == ("R-12^^^&1.2.3.9&ISO",)


# --------------------------------------------------------------------------------------------------- building


def _rich_query() -> FindDocuments:
    return FindDocuments(
        patient_id=PATIENT_CX,
        statuses=(AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED),
        class_codes=(Code("labresult", "CD-TRANSACTION"), Code("genetic", "RSB-CLASS")),
        type_codes=(Code("labresult", "CD-TRANSACTION"),),
        practice_setting_codes=(Code("394802001", "2.16.840.1.113883.6.96"),),
        healthcare_facility_type_codes=(Code("22232009", "2.16.840.1.113883.6.96"),),
        format_codes=(Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),),
        event_codes=((Code("E,1", "1.2.3"),), (Code("E2", "LOCAL"), Code("E|3", "1.2.3"))),
        confidentiality_codes=((Code("N", "2.16.840.1.113883.5.25"),),),
        author_persons=("%^Peeters%^An%",),
        creation_time_from="20240101",
        creation_time_to="20240201103000",
        service_start_time_to="202406",
        service_stop_time_from="2023",
    )


def test_to_search_params_round_trips() -> None:
    query = _rich_query()
    params = to_search_params(query)
    assert params[:2] == [("patient.identifier", f"{SSIN_SYSTEM}|{PATIENT}"), ("status", "current,superseded")]
    assert ("event", "urn:oid:1.2.3|E\\,1") in params  # commas and bars in values are escaped
    assert parse_search(params) == query
    # and through a real URL, percent-encoded as an HTTP client does it
    assert parse_search(parse_qs(urlencode(params))) == query


def test_other_queries_round_trip() -> None:
    get = GetDocuments(unique_ids=("1.2.3.4", "1.2.3^ext"))
    assert to_search_params(get) == [("identifier", "urn:ietf:rfc:3986|urn:oid:1.2.3.4,urn:oid:1.2.3|ext")]
    assert parse_search(to_search_params(get)) == get
    by_uuid = GetDocuments(entry_uuids=("urn:uuid:0b6f2d5e-9a4c-4f7e-8c1d-2e3f4a5b6c7d",))
    assert parse_search(to_search_params(by_uuid)) == by_uuid
    by_ref = FindDocumentsByReferenceId(patient_id=PATIENT_CX, reference_ids=("R-12^^^&1.2.3.9&ISO",))
    assert parse_search(to_search_params(by_ref)) == by_ref
    within = FindDocuments(patient_id=PATIENT_CX, service_start_time_from="202401", service_stop_time_to="202402")
    assert ("period", "eq2024-01") in to_search_params(within)
    assert parse_search(to_search_params(within)) == within


@pytest.mark.parametrize(
    "query",
    [
        FindDocuments(patient_id=PATIENT_CX, service_start_time_from="2024"),
        FindDocuments(patient_id=PATIENT_CX, author_persons=("Peeters",)),
        FindDocuments(patient_id=PATIENT_CX, author_persons=("%^Peeters%", "%^%^An%")),
    ],
)
def test_queries_an_mhd_search_cannot_say(query: FindDocuments) -> None:
    with pytest.raises(ValueError, match="cannot"):
        to_search_params(query)


# ----------------------------------------------------------------------------------------------- result bundle


def test_search_result_bundle_and_back() -> None:
    entries = [rich_entry(), rich_entry(entry_uuid="urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", unique_id="2.25.9")]
    bundle = search_result_bundle(entries, base_url="https://hub.example/fhir/", total=7, self_link="https://x/?a=b")
    data = as_json(bundle)
    assert data["type"] == "searchset"
    assert data["total"] == 7
    assert data["link"] == [{"relation": "self", "url": "https://x/?a=b"}]
    first = data["entry"][0]
    rid = "6a1c9a8e-3d4b-4f5a-9b8c-7d6e5f4a3b2c"
    assert first["fullUrl"] == f"https://hub.example/fhir/DocumentReference/{rid}"
    assert first["resource"]["id"] == rid
    assert first["search"] == {"mode": "match"}
    assert first["resource"]["content"][0]["attachment"]["url"] == f"https://hub.example/fhir/Binary/{rid}"
    found, problems = parse_search_result_bundle(bundle)
    assert problems == []
    assert [e.entry_uuid for e in found] == [e.entry_uuid for e in entries]
    for original, read in zip(entries, found, strict=True):
        assert read.uri is not None and read.uri.endswith(read.entry_uuid.removeprefix("urn:uuid:"))
        read.uri = None
        assert read == original


def test_empty_search_result_and_prebuilt_resources() -> None:
    empty = as_json(search_result_bundle([], base_url="https://hub/fhir"))
    assert empty == {"resourceType": "Bundle", "type": "searchset", "total": 0}
    dr = entry_to_document_reference(rich_entry(), resource_id="abc")
    data = as_json(search_result_bundle([dr], base_url="https://hub/fhir"))
    assert data["entry"][0]["fullUrl"] == "https://hub/fhir/DocumentReference/abc"
    with pytest.raises(ValueError, match="searchset"):
        parse_search_result_bundle({"resourceType": "Bundle", "type": "transaction"})


def test_outcome_entries_of_a_searchset_are_reported() -> None:
    bundle = as_json(search_result_bundle([rich_entry()], base_url="https://hub/fhir"))
    bundle["entry"].append(
        {
            "resource": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "warning", "code": "suppressed", "diagnostics": "2 documents withheld"}],
            },
            "search": {"mode": "outcome"},
        }
    )
    found, problems = parse_search_result_bundle(bundle)
    assert len(found) == 1
    assert [(p.message, p.is_error) for p in problems] == [("2 documents withheld", False)]
    assert c.XDS_ERROR_CODE_SYSTEM.startswith("https://profiles.ihe.net/")
