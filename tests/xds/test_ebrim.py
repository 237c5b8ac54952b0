"""The ebRIM codec: model → element → model, exact ids and attributes, tolerant parsing of malformed metadata."""

from __future__ import annotations

import dataclasses
import re

import pytest
from lxml import etree

from rsb_connector.errors import Problem, Severity
from rsb_connector.metadata.model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    Association,
    AssociationType,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.xds import constants as c
from rsb_connector.xds.ebrim import (
    association_to_element,
    build_registry_object_list,
    element_to_association,
    entry_to_extrinsic_object,
    extrinsic_object_to_entry,
    parse_registry_object_list,
    registry_package_to_submission_set,
    submission_set_to_registry_package,
)

R = f"{{{c.RIM}}}"
UUID = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def eo(
    body: str, attrs: str = 'id="Doc1" objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"'
) -> etree._Element:
    return etree.fromstring(f'<ExtrinsicObject xmlns="{c.RIM}" {attrs}>{body}</ExtrinsicObject>')


def slot(name: str, *values: str) -> str:
    inner = "".join(f"<Value>{v}</Value>" for v in values)
    return f'<Slot name="{name}"><ValueList>{inner}</ValueList></Slot>'


def codes(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.path, p.severity.name) for p in problems}


def paths(problems: list[Problem]) -> list[str]:
    return [p.path for p in problems]


# ------------------------------------------------------------------------------------------------ round trips


def test_rich_entry_round_trip(rich_entry: DocumentEntry) -> None:
    el = entry_to_extrinsic_object(rich_entry)
    parsed, problems = extrinsic_object_to_entry(el)
    assert problems == []
    assert parsed == rich_entry


def test_round_trip_survives_serialisation(rich_entry: DocumentEntry) -> None:
    text = etree.tostring(entry_to_extrinsic_object(rich_entry), pretty_print=True)
    parsed, problems = extrinsic_object_to_entry(etree.fromstring(text))
    assert problems == []
    assert parsed == rich_entry


def test_minimal_entry_round_trip_writes_nothing_extra() -> None:
    entry = DocumentEntry(entry_uuid="Doc1", object_type=DOCUMENT_ENTRY_ON_DEMAND)
    el = entry_to_extrinsic_object(entry)
    assert el.get("mimeType") is None
    assert el.get("lid") is None
    assert el.get("home") is None
    assert len(el) == 0
    parsed, problems = extrinsic_object_to_entry(el)
    assert problems == []
    assert parsed == entry


def test_entry_attributes_ids_and_order(rich_entry: DocumentEntry) -> None:
    el = entry_to_extrinsic_object(rich_entry)
    assert el.tag == f"{R}ExtrinsicObject"
    assert el.get("id") == "Document01"
    assert el.get("objectType") == c.OBJECT_TYPE_STABLE_DE
    assert el.get("mimeType") == "application/pdf"
    assert el.get("status") == AvailabilityStatus.DEPRECATED.value
    assert el.get("lid") == rich_entry.logical_id
    assert el.get("home") == rich_entry.home_community_id
    # schema order: Slot*, Name, Description, VersionInfo, Classification*, ExternalIdentifier*
    order = [etree.QName(child).localname for child in el]
    first = {name: order.index(name) for name in reversed(order)}
    assert first["Slot"] < first["Name"] < first["Description"] < first["VersionInfo"]
    assert first["VersionInfo"] < first["Classification"] < first["ExternalIdentifier"]
    assert order[-2:] == ["ExternalIdentifier", "ExternalIdentifier"]
    slot_names = [s.get("name") for s in el.iterchildren(f"{R}Slot")]
    assert slot_names[:12] == [
        "creationTime",
        "languageCode",
        "sourcePatientId",
        "sourcePatientInfo",
        "legalAuthenticator",
        "serviceStartTime",
        "serviceStopTime",
        "hash",
        "size",
        "URI",
        "repositoryUniqueId",
        c.DE_REFERENCE_ID_LIST_SLOT,
    ]
    assert el.findtext(f"{R}Slot[@name='size']/{R}ValueList/{R}Value") == "12345"
    assert el.find(f"{R}Name/{R}LocalizedString").get("value") == "Consultation cardiologique"
    assert el.find(f"{R}VersionInfo").get("versionName") == "2"

    ids: list[str] = []
    for cl in el.iterchildren(f"{R}Classification"):
        assert UUID.fullmatch(cl.get("id", ""))
        assert cl.get("classifiedObject") == "Document01"
        assert cl.get("objectType") == c.OBJECT_TYPE_CLASSIFICATION
        ids.append(cl.get("id", ""))
    schemes = [cl.get("classificationScheme") for cl in el.iterchildren(f"{R}Classification")]
    assert schemes == [
        c.DE_AUTHOR,
        c.DE_AUTHOR,
        c.DE_CLASS_CODE,
        c.DE_CONFIDENTIALITY_CODE,
        c.DE_CONFIDENTIALITY_CODE,
        c.DE_EVENT_CODE,
        c.DE_EVENT_CODE,
        c.DE_FORMAT_CODE,
        c.DE_HEALTHCARE_FACILITY_TYPE_CODE,
        c.DE_PRACTICE_SETTING_CODE,
        c.DE_TYPE_CODE,
    ]
    author = el.find(f"{R}Classification[@classificationScheme='{c.DE_AUTHOR}']")
    assert author.get("nodeRepresentation") == ""
    assert [s.get("name") for s in author.iterchildren(f"{R}Slot")] == [
        "authorPerson",
        "authorInstitution",
        "authorRole",
        "authorSpecialty",
        "authorTelecommunication",
    ]
    class_code = el.find(f"{R}Classification[@classificationScheme='{c.DE_CLASS_CODE}']")
    assert class_code.get("nodeRepresentation") == "report"
    assert class_code.findtext(f"{R}Slot[@name='codingScheme']/{R}ValueList/{R}Value") == "CD-TRANSACTION"
    assert class_code.find(f"{R}Name/{R}LocalizedString").get("value") == "Report"
    practice = el.find(f"{R}Classification[@classificationScheme='{c.DE_PRACTICE_SETTING_CODE}']")
    assert practice.find(f"{R}Name") is None  # no display, no Name

    eis = list(el.iterchildren(f"{R}ExternalIdentifier"))
    assert [(e.get("identificationScheme"), e.get("value")) for e in eis] == [
        (c.DE_PATIENT_ID, rich_entry.patient_id),
        (c.DE_UNIQUE_ID, rich_entry.unique_id),
    ]
    for ei, name in zip(eis, ["XDSDocumentEntry.patientId", "XDSDocumentEntry.uniqueId"], strict=True):
        assert ei.get("registryObject") == "Document01"
        assert ei.get("objectType") == c.OBJECT_TYPE_EXTERNAL_IDENTIFIER
        assert ei.find(f"{R}Name/{R}LocalizedString").get("value") == name
        ids.append(ei.get("id", ""))
    assert len(set(ids)) == len(ids)


def test_submission_set_round_trip(submission_set: SubmissionSet) -> None:
    el = submission_set_to_registry_package(submission_set)
    assert el.get("objectType") == c.OBJECT_TYPE_REGISTRY_PACKAGE
    node = [cl for cl in el.iterchildren(f"{R}Classification") if cl.get("classificationNode")]
    assert len(node) == 1
    assert node[0].get("classificationNode") == c.SUBMISSION_SET_NODE
    assert node[0].get("classifiedObject") == "SubmissionSet01"
    eis = {e.get("identificationScheme"): e for e in el.iterchildren(f"{R}ExternalIdentifier")}
    assert eis[c.SS_UNIQUE_ID].get("value") == submission_set.unique_id
    assert eis[c.SS_SOURCE_ID].find(f"{R}Name/{R}LocalizedString").get("value") == "XDSSubmissionSet.sourceId"
    assert eis[c.SS_PATIENT_ID].get("registryObject") == "SubmissionSet01"
    parsed, problems = registry_package_to_submission_set(el)
    assert problems == []
    assert parsed == submission_set


def test_submission_set_without_nested_classification(submission_set: SubmissionSet) -> None:
    el = submission_set_to_registry_package(submission_set, nest_classification=False)
    assert all(cl.get("classificationNode") is None for cl in el.iterchildren(f"{R}Classification"))


@pytest.mark.parametrize("a_type", list(AssociationType))
def test_every_association_type_round_trips(a_type: AssociationType) -> None:
    a = Association(entry_uuid="urn:uuid:6b2d8c1e-0f5a-4f3b-8e2d-1a9c7b5e3d21", type=a_type, source="A", target="B")
    if a_type is AssociationType.HAS_MEMBER:
        a.submission_set_status = SubmissionSetStatus.REFERENCE
    if a_type is AssociationType.UPDATE_AVAILABILITY_STATUS:
        a.original_status = AvailabilityStatus.APPROVED
        a.new_status = AvailabilityStatus.DEPRECATED
    el = association_to_element(a)
    assert el.get("associationType") == a_type.value
    assert el.get("objectType") == c.OBJECT_TYPE_ASSOCIATION
    assert (el.get("sourceObject"), el.get("targetObject")) == ("A", "B")
    parsed, problems = element_to_association(el)
    assert problems == []
    assert parsed == a


def test_registry_object_list_round_trip(rich_entry: DocumentEntry, submission_set: SubmissionSet) -> None:
    second = dataclasses.replace(rich_entry, entry_uuid="Document02", authors=[], extra_slots={})
    has_member = Association(
        entry_uuid="as1",
        type=AssociationType.HAS_MEMBER,
        source="SubmissionSet01",
        target="Document01",
        submission_set_status=SubmissionSetStatus.ORIGINAL,
    )
    rplc = Association(entry_uuid="as2", type=AssociationType.RPLC, source="Document02", target="Document01")
    el = build_registry_object_list([submission_set], [rich_entry, second], [has_member, rplc])
    kinds = [etree.QName(child).localname for child in el]
    assert kinds == [
        "ExtrinsicObject",
        "ExtrinsicObject",
        "RegistryPackage",
        "Classification",
        "Association",
        "Association",
    ]
    assert el[2].find(f"{R}Classification[@classificationNode]") is None  # written once, as a sibling
    sibling = el[3]
    assert sibling.get("classifiedObject") == "SubmissionSet01"
    assert sibling.get("classificationNode") == c.SUBMISSION_SET_NODE
    parsed = parse_registry_object_list(el)
    assert parsed.problems == []
    assert parsed.entries == [rich_entry, second]
    assert parsed.submission_sets == [submission_set]
    assert parsed.associations == [has_member, rplc]
    assert parsed.object_refs == []


# ------------------------------------------------------------------------------------------------ tolerant parsing


def test_non_integer_size_is_reported_not_raised() -> None:
    for bad in ("12kB", "-4", "1.5", ""):
        entry, problems = extrinsic_object_to_entry(eo(slot("size", bad)))
        assert entry.size is None
        assert [p.code for p in problems] == ["XDSRegistryMetadataError"]
        assert problems[0].path == "DocumentEntry[Doc1].size"


def test_slot_given_twice_and_single_slot_with_two_values() -> None:
    body = slot("creationTime", "2024") + slot("creationTime", "2023") + slot("languageCode", "fr", "nl")
    entry, problems = extrinsic_object_to_entry(eo(body))
    assert entry.creation_time == "2024"
    assert entry.language_code == "fr"
    assert paths(problems) == ["DocumentEntry[Doc1].creationTime", "DocumentEntry[Doc1].languageCode"]
    assert "twice" in problems[0].message
    assert all(p.is_error for p in problems)


def test_code_problems_missing_coding_scheme_and_node_representation() -> None:
    body = (
        f'<Classification id="c1" classificationScheme="{c.DE_CLASS_CODE}" classifiedObject="Doc1" '
        'nodeRepresentation="report"/>'
        f'<Classification id="c2" classificationScheme="{c.DE_TYPE_CODE}" classifiedObject="Doc1">'
        f"{slot('codingScheme', 'LOINC')}</Classification>"
    )
    entry, problems = extrinsic_object_to_entry(eo(body))
    assert entry.class_code == Code("report", "")
    assert entry.type_code == Code("", "LOINC")
    assert paths(problems) == ["DocumentEntry[Doc1].classCode", "DocumentEntry[Doc1].typeCode"]
    assert "codingScheme" in problems[0].message
    assert "nodeRepresentation" in problems[1].message


def test_single_code_given_twice_keeps_the_first() -> None:
    one = (
        f'<Classification id="c{{}}" classificationScheme="{c.DE_FORMAT_CODE}" classifiedObject="Doc1" '
        'nodeRepresentation="{}">' + slot("codingScheme", "S") + "</Classification>"
    )
    entry, problems = extrinsic_object_to_entry(eo(one.format(1, "first") + one.format(2, "second")))
    assert entry.format_code == Code("first", "S")
    assert paths(problems) == ["DocumentEntry[Doc1].formatCode"]


def test_unknown_classification_scheme_is_a_warning() -> None:
    body = (
        '<Classification id="c1" classificationScheme="urn:uuid:00000000-0000-4000-8000-000000000000" '
        'classifiedObject="Doc1" nodeRepresentation="x"/>'
    )
    entry, problems = extrinsic_object_to_entry(eo(body))
    assert entry == DocumentEntry(entry_uuid="Doc1")
    assert [(p.code, p.severity) for p in problems] == [("XDSRegistryMetadataError", Severity.WARNING)]
    assert "00000000-0000-4000-8000-000000000000" in problems[0].message


def test_nested_classification_of_another_object_is_an_error() -> None:
    body = (
        f'<Classification id="c1" classificationScheme="{c.DE_CLASS_CODE}" classifiedObject="Doc2" '
        f'nodeRepresentation="x">{slot("codingScheme", "S")}</Classification>'
    )
    entry, problems = extrinsic_object_to_entry(eo(body))
    assert entry.class_code is None
    assert paths(problems) == ["DocumentEntry[Doc1].classCode"]
    assert problems[0].is_error


def test_external_identifier_problems() -> None:
    body = (
        f'<ExternalIdentifier id="e1" identificationScheme="{c.DE_UNIQUE_ID}" registryObject="Doc1" value=" "/>'
        f'<ExternalIdentifier id="e2" identificationScheme="{c.DE_PATIENT_ID}" registryObject="Doc1" value="p1"/>'
        f'<ExternalIdentifier id="e3" identificationScheme="{c.DE_PATIENT_ID}" registryObject="Doc1" value="p2"/>'
        '<ExternalIdentifier id="e4" identificationScheme="urn:uuid:unknown" registryObject="Doc1" value="x"/>'
    )
    entry, problems = extrinsic_object_to_entry(eo(body))
    assert entry.patient_id == "p1"
    assert entry.unique_id is None
    assert codes(problems) == {
        ("DocumentEntry[Doc1].uniqueId", "ERROR"),
        ("DocumentEntry[Doc1].patientId", "ERROR"),
        ("DocumentEntry[Doc1].ExternalIdentifier", "WARNING"),
    }


def test_bad_attributes_are_reported() -> None:
    el = eo("", 'objectType="urn:uuid:not-a-de" status="urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"')
    entry, problems = extrinsic_object_to_entry(el)
    assert entry.entry_uuid == ""
    assert entry.object_type == "urn:uuid:not-a-de"
    assert entry.availability_status is AvailabilityStatus.APPROVED
    assert paths(problems) == ["DocumentEntry[]", "DocumentEntry[].objectType", "DocumentEntry[].availabilityStatus"]


def test_missing_object_type_is_reported() -> None:
    _entry, problems = extrinsic_object_to_entry(eo("", 'id="Doc1"'))
    assert paths(problems) == ["DocumentEntry[Doc1].objectType"]


def test_author_slot_problems() -> None:
    body = (
        f'<Classification id="a1" classificationScheme="{c.DE_AUTHOR}" classifiedObject="Doc1" nodeRepresentation="">'
        + slot("authorPerson", "p1", "p2")
        + slot("authorFavouriteColour", "blue")
        + slot("authorRole", "r1", "r2")
        + "</Classification>"
    )
    entry, problems = extrinsic_object_to_entry(eo(body))
    assert entry.authors[0].person == "p1"
    assert entry.authors[0].roles == ("r1", "r2")
    assert codes(problems) == {
        ("DocumentEntry[Doc1].author[0].authorPerson", "ERROR"),
        ("DocumentEntry[Doc1].author[0].authorFavouriteColour", "WARNING"),
    }


def test_association_problems() -> None:
    el = etree.fromstring(
        f'<Association xmlns="{c.RIM}" id="a1" associationType="urn:ihe:iti:2007:AssociationType:SPLIT" '
        'sourceObject="x" targetObject="y"/>'
    )
    a, problems = element_to_association(el)
    assert paths(problems) == ["Association[a1].associationType"]
    assert a.entry_uuid == "a1"
    el = etree.fromstring(
        f'<Association xmlns="{c.RIM}" id="a2" associationType="{AssociationType.HAS_MEMBER.value}">'
        + slot("SubmissionSetStatus", "Copied")
        + slot("NewStatus", "Archived")
        + "</Association>"
    )
    a, problems = element_to_association(el)
    assert paths(problems) == [
        "Association[a2].sourceObject",
        "Association[a2].targetObject",
        "Association[a2].SubmissionSetStatus",
        "Association[a2].NewStatus",
    ]
    assert a.submission_set_status is None
    assert a.new_status is None


def test_short_status_names_are_accepted() -> None:
    el = etree.fromstring(
        f'<Association xmlns="{c.RIM}" id="a1" associationType="{AssociationType.UPDATE_AVAILABILITY_STATUS.value}" '
        'sourceObject="ss" targetObject="de">'
        + slot("OriginalStatus", "Approved")
        + slot("NewStatus", "deprecated")
        + "</Association>"
    )
    a, problems = element_to_association(el)
    assert problems == []
    assert (a.original_status, a.new_status) == (AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED)


def _object_list(body: str) -> etree._Element:
    return etree.fromstring(f'<RegistryObjectList xmlns="{c.RIM}">{body}</RegistryObjectList>')


def test_object_list_sibling_classifications_and_identifiers_are_attached() -> None:
    el = _object_list(
        f'<ExtrinsicObject id="Doc1" objectType="{c.OBJECT_TYPE_STABLE_DE}"/>'
        '<RegistryPackage id="SS1"/>'
        f'<Classification id="c1" classifiedObject="SS1" classificationNode="{c.SUBMISSION_SET_NODE}"/>'
        f'<Classification id="c2" classificationScheme="{c.DE_CLASS_CODE}" classifiedObject="Doc1" '
        f'nodeRepresentation="report">{slot("codingScheme", "CD-TRANSACTION")}</Classification>'
        f'<ExternalIdentifier id="e1" identificationScheme="{c.SS_SOURCE_ID}" registryObject="SS1" value="1.2.3"/>'
        "<!-- a comment -->"
    )
    parsed = parse_registry_object_list(el)
    assert parsed.problems == []
    assert parsed.entries[0].class_code == Code("report", "CD-TRANSACTION")
    assert parsed.submission_sets[0].source_id == "1.2.3"


def test_object_list_folders_unknown_packages_refs_and_strangers() -> None:
    el = _object_list(
        f'<RegistryPackage id="F1"><Classification id="c1" classifiedObject="F1" classificationNode="{c.FOLDER_NODE}"/>'
        "</RegistryPackage>"
        '<RegistryPackage id="P1"/>'
        '<ObjectRef id="urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"/>'
        '<Classification id="c2" classifiedObject="Nowhere" classificationScheme="x"/>'
        f'<ExtrinsicObject id="P1" objectType="{c.OBJECT_TYPE_STABLE_DE}"/>'
        '<Organization id="o1"/>'
    )
    parsed = parse_registry_object_list(el)
    assert parsed.submission_sets == []
    assert parsed.object_refs == ["urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"]
    assert [e.entry_uuid for e in parsed.entries] == ["P1"]
    assert codes(parsed.problems) == {
        ("RegistryObjectList", "WARNING"),  # rim:Organization
        ("Folder[F1]", "WARNING"),
        ("RegistryPackage[P1]", "ERROR"),
        ("ExtrinsicObject[P1]", "ERROR"),  # id used twice
        ("Classification[c2]", "WARNING"),
    }
