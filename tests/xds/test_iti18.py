"""ITI-18 Registry Stored Query: AdhocQueryRequest / AdhocQueryResponse, XSD-valid, round trips, registry checks."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from rsb_connector.errors import Problem, QueryError, Severity
from rsb_connector.metadata.model import (
    Association,
    AssociationType,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSetStatus,
)
from rsb_connector.query import (
    FindDocuments,
    FindDocumentsByReferenceId,
    FindSubmissionSets,
    GetAll,
    GetAssociations,
    GetDocuments,
    GetFolderAndContents,
    GetRelatedDocuments,
    GetSubmissionSetAndContents,
    Query,
    QueryId,
    ReturnType,
)
from rsb_connector.xds import constants as c
from rsb_connector.xds.iti18 import MAX_VALUE_LENGTH, build_request, build_response, parse_request, parse_response

if TYPE_CHECKING:
    from conftest import Xsd

PATIENT = "73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO"
Q = f"{{{c.QUERY}}}"
R = f"{{{c.RIM}}}"


def _uuids(n: int) -> tuple[str, ...]:
    return tuple(f"urn:uuid:{uuid.UUID(int=i + 1)}" for i in range(n))


QUERIES: list[Query] = [
    FindDocuments(
        patient_id=PATIENT,
        statuses=(AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED),
        class_codes=(Code("report", "CD-TRANSACTION"), Code("note", "CD-TRANSACTION")),
        type_codes=(Code("11488-4", "2.16.840.1.113883.6.1"),),
        practice_setting_codes=(Code("cardiology", "CD-SPECIALITY"),),
        healthcare_facility_type_codes=(Code("hospital", "CD-HCPARTY"),),
        event_codes=((Code("a", "S"), Code("b", "S")), (Code("c", "S"),)),
        confidentiality_codes=((Code("N", "2.16.840.1.113883.5.25"),), (Code("R", "2.16.840.1.113883.5.25"),)),
        format_codes=(Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3"),),
        author_persons=("^Janssens^Luc%", "O'Brien%"),
        creation_time_from="2024",
        creation_time_to="20241231235959",
        service_start_time_from="202401",
        service_start_time_to="20240601",
        service_stop_time_from="2024010112",
        service_stop_time_to="202406011200",
        object_types=(c.OBJECT_TYPE_STABLE_DE, c.OBJECT_TYPE_ON_DEMAND_DE),
    ),
    FindDocumentsByReferenceId(patient_id=PATIENT, reference_ids=("A123^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:order",)),
    FindSubmissionSets(
        patient_id=PATIENT,
        source_ids=("1.2.3", "1.2.4"),
        submission_time_from="20240101",
        author_person="^Peeters%",
        content_type_codes=(Code("contactreport", "CD-TRANSACTION"),),
    ),
    GetAll(patient_id=PATIENT, return_type=ReturnType.OBJECT_REF),
    GetDocuments(unique_ids=("2.25.1", "2.25.2"), home_community_id="urn:oid:1.3.6.1.4.1.21367.2017.3.1990000728"),
    GetDocuments(entry_uuids=_uuids(20)),
    GetAssociations(entry_uuids=_uuids(2)),
    GetSubmissionSetAndContents(entry_uuids=_uuids(1)),
    GetFolderAndContents(unique_ids=("2.25.7",)),
    GetRelatedDocuments(entry_uuids=_uuids(1), association_types=(AssociationType.RPLC, AssociationType.XFRM_RPLC)),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: type(q).__name__)
def test_request_validates_and_round_trips(query: Query, xsd: Xsd) -> None:
    el = build_request(query)
    xsd.assert_valid(el)
    assert parse_request(el) == query
    reparsed = parse_request(etree.fromstring(etree.tostring(el)))
    assert reparsed == query


def test_request_structure() -> None:
    query = GetDocuments(unique_ids=("2.25.1",), home_community_id="urn:oid:1.2.3")
    el = build_request(query, return_type=ReturnType.OBJECT_REF)
    option = el.find(f"{Q}ResponseOption")
    assert option is not None
    assert option.attrib == {"returnType": "ObjectRef", "returnComposedObjects": "true"}
    adhoc = el.find(f"{R}AdhocQuery")
    assert adhoc is not None
    assert adhoc.get("id") == QueryId.GET_DOCUMENTS.value == "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    assert adhoc.get("home") == "urn:oid:1.2.3"
    slots = {s.get("name"): [v.text for v in s.iter(f"{R}Value")] for s in adhoc.iter(f"{R}Slot")}
    assert slots == {"$XDSDocumentEntryUniqueId": ["('2.25.1')"]}
    assert parse_request(el).return_type is ReturnType.OBJECT_REF


def test_long_lists_are_split_over_values_and_joined_back(xsd: Xsd) -> None:
    query = GetDocuments(entry_uuids=_uuids(20))
    el = build_request(query)
    values = [v.text or "" for v in el.iter(f"{R}Value")]
    assert len(values) > 1
    assert all(len(v) <= MAX_VALUE_LENGTH for v in values)
    assert all(v.startswith("(") and v.endswith(")") for v in values)
    assert parse_request(el) == query


def test_and_semantics_of_event_codes_are_kept() -> None:
    query = QUERIES[0]
    el = build_request(query)
    slot = el.find(f"{R}AdhocQuery/{R}Slot[@name='$XDSDocumentEntryEventCodeList']")
    assert slot is not None
    assert [v.text for v in slot.iter(f"{R}Value")] == ["('a^^S','b^^S')", "('c^^S')"]


def _request(*slots: tuple[str, list[str]], query_id: str = QueryId.FIND_DOCUMENTS.value) -> etree._Element:
    body = "".join(
        f'<rim:Slot name="{name}"><rim:ValueList>'
        + "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in values)
        + "</rim:ValueList></rim:Slot>"
        for name, values in slots
    )
    return etree.fromstring(
        f'<query:AdhocQueryRequest xmlns:query="{c.QUERY}" xmlns:rim="{c.RIM}">'
        '<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>'
        f'<rim:AdhocQuery id="{query_id}">{body}</rim:AdhocQuery></query:AdhocQueryRequest>'
    )


def test_or_values_in_several_value_elements_are_joined() -> None:
    approved, deprecated = AvailabilityStatus.APPROVED.value, AvailabilityStatus.DEPRECATED.value
    el = _request(
        ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
        ("$XDSDocumentEntryStatus", [f"('{approved}')", f"('{deprecated}')"]),
        ("$XDSDocumentEntryClassCode", ["('a^^S')", "('b^^S','c^^S')"]),
    )
    query = parse_request(el)
    assert isinstance(query, FindDocuments)
    assert query.statuses == (AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED)
    assert query.class_codes == (Code("a", "S"), Code("b", "S"), Code("c", "S"))


def _codes(exc: pytest.ExceptionInfo[QueryError]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in exc.value.problems]


def test_registry_errors() -> None:
    with pytest.raises(QueryError) as exc:
        parse_request(_request(query_id="urn:uuid:00000000-0000-4000-8000-000000000000"))
    assert _codes(exc) == [("XDSUnknownStoredQuery", "id")]

    status = ("$XDSDocumentEntryStatus", [f"('{AvailabilityStatus.APPROVED.value}')"])
    with pytest.raises(QueryError) as exc:
        parse_request(_request(status))
    assert _codes(exc) == [("XDSStoredQueryMissingParam", "$XDSDocumentEntryPatientId")]

    # an empty slot counts as absent
    with pytest.raises(QueryError) as exc:
        parse_request(_request(("$XDSDocumentEntryPatientId", []), status))
    assert _codes(exc) == [("XDSStoredQueryMissingParam", "$XDSDocumentEntryPatientId")]

    # the same parameter in two slots
    patient = ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"])
    with pytest.raises(QueryError) as exc:
        parse_request(_request(patient, status, patient))
    assert _codes(exc) == [("XDSStoredQueryParamNumber", "$XDSDocumentEntryPatientId")]

    # a single-valued parameter given twice
    with pytest.raises(QueryError) as exc:
        parse_request(_request(("$XDSDocumentEntryPatientId", [f"'{PATIENT}'", "'other'"]), status))
    assert _codes(exc) == [("XDSStoredQueryParamNumber", "$XDSDocumentEntryPatientId")]


def test_request_without_return_type_defaults_to_leaf_class() -> None:
    el = _request(
        ("$XDSDocumentEntryPatientId", [f"'{PATIENT}'"]),
        ("$XDSDocumentEntryStatus", [f"('{AvailabilityStatus.APPROVED.value}')"]),
    )
    option = el.find(f"{Q}ResponseOption")
    assert option is not None
    del option.attrib["returnType"]
    assert parse_request(el).return_type is ReturnType.LEAF_CLASS


def test_not_a_query_request() -> None:
    with pytest.raises(QueryError) as exc:
        parse_request(etree.Element(f"{{{c.LCM}}}SubmitObjectsRequest"))
    assert _codes(exc) == [("XDSRegistryError", "Body")]


# ------------------------------------------------------------------------------------------------ responses


def _leaf_objects(submission: Submission) -> tuple[list[DocumentEntry], list[Association]]:
    entries = submission.entries
    for i, entry in enumerate(entries):
        entry.entry_uuid = f"urn:uuid:{uuid.UUID(int=100 + i)}"
    associations = [
        Association(
            entry_uuid=f"urn:uuid:{uuid.UUID(int=200 + i)}",
            type=AssociationType.HAS_MEMBER,
            source=submission.submission_set.entry_uuid,
            target=entry.entry_uuid,
            submission_set_status=SubmissionSetStatus.ORIGINAL,
        )
        for i, entry in enumerate(entries)
    ]
    return entries, associations


def test_leaf_class_response_validates_and_round_trips(submission: Submission, xsd: Xsd) -> None:
    submission.submission_set.entry_uuid = "urn:uuid:00000000-0000-4000-8000-0000000000ff"
    entries, associations = _leaf_objects(submission)
    el = build_response(
        c.STATUS_SUCCESS, entries=entries, submission_sets=[submission.submission_set], associations=associations
    )
    xsd.assert_valid(el)
    assert el.find(f"{{{c.RS}}}RegistryErrorList") is None
    response = parse_response(el)
    assert response.status == c.STATUS_SUCCESS
    assert response.problems == []
    assert response.entries == entries
    assert response.submission_sets == [submission.submission_set]
    assert response.associations == associations
    assert response.object_refs == []


def test_object_ref_response(submission: Submission, xsd: Xsd) -> None:
    entries, associations = _leaf_objects(submission)
    extra = "urn:uuid:00000000-0000-4000-8000-000000000abc"
    el = build_response(
        c.STATUS_SUCCESS,
        entries=entries,
        associations=associations,
        object_refs=[extra],
        return_type=ReturnType.OBJECT_REF,
    )
    xsd.assert_valid(el)
    object_list = el.find(f"{R}RegistryObjectList")
    assert object_list is not None
    assert [etree.QName(child).localname for child in object_list] == ["ObjectRef"] * 5
    response = parse_response(el)
    assert response.entries == []
    assert response.object_refs == [e.entry_uuid for e in entries] + [a.entry_uuid for a in associations] + [extra]


def test_error_response_has_an_empty_object_list(submission: Submission, xsd: Xsd) -> None:
    problems = [
        Problem("XDSResultNotSinglePatient", "results span 2 patients", "$XDSDocumentEntryPatientId"),
        Problem("XDSRegistryError", "parameter ignored", "$Foo", Severity.WARNING),
    ]
    entries, _ = _leaf_objects(submission)
    el = build_response(c.STATUS_FAILURE, entries=entries, problems=problems)
    xsd.assert_valid(el)
    children = [etree.QName(child).localname for child in el]
    assert children == ["RegistryErrorList", "RegistryObjectList"]
    object_list = el.find(f"{R}RegistryObjectList")
    assert object_list is not None
    assert len(object_list) == 0
    response = parse_response(el)
    assert response.status == c.STATUS_FAILURE
    assert response.problems == problems
    assert response.entries == []


def test_partial_success_keeps_objects_and_warnings(submission: Submission, xsd: Xsd) -> None:
    entries, _ = _leaf_objects(submission)
    warning = Problem("XDSRegistryError", "one registry did not answer", "", Severity.WARNING)
    el = build_response(c.STATUS_PARTIAL_SUCCESS, entries=entries[:1], problems=[warning])
    xsd.assert_valid(el)
    response = parse_response(el)
    assert response.status == c.STATUS_PARTIAL_SUCCESS
    assert response.entries == entries[:1]
    assert response.problems == [warning]


def test_response_metadata_problems_are_reported() -> None:
    el = etree.fromstring(
        f'<query:AdhocQueryResponse xmlns:query="{c.QUERY}" xmlns:rim="{c.RIM}" status="{c.STATUS_SUCCESS}">'
        '<rim:RegistryObjectList><rim:ExtrinsicObject id="urn:uuid:1" objectType="urn:uuid:bad"/>'
        "</rim:RegistryObjectList></query:AdhocQueryResponse>"
    )
    response = parse_response(el)
    assert [p.path for p in response.problems] == ["DocumentEntry[urn:uuid:1].objectType"]
    assert response.entries[0].entry_uuid == "urn:uuid:1"
