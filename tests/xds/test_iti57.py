"""ITI-57 Update Document Set, availability status updates: the request is XSD-valid and parses back."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from lxml import etree

from rsb_connector.metadata.model import (
    Association,
    AssociationType,
    AvailabilityStatus,
    Dtm,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.xds import constants as c
from rsb_connector.xds.ebrim import association_to_element, entry_to_extrinsic_object
from rsb_connector.xds.iti57 import STATUS_UPDATE_CONTENT_TYPE, build_status_update, parse_status_update

if TYPE_CHECKING:
    from conftest import Xsd

    from rsb_connector.metadata.model import DocumentEntry

PATIENT = "73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO"
ENTRY = "urn:uuid:6c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
R = f"{{{c.RIM}}}"
APPROVED, DEPRECATED = AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED


def _deprecate() -> etree._Element:
    return build_status_update(
        patient_id=PATIENT, entry_uuid=ENTRY, original=APPROVED, new=DEPRECATED, source_id="1.2.3.4"
    )


def _object_list(el: etree._Element) -> etree._Element:
    object_list = el.find(f"{R}RegistryObjectList")
    assert object_list is not None
    return object_list


def test_status_update_validates(xsd: Xsd) -> None:
    el = _deprecate()
    assert el.tag == f"{{{c.LCM}}}SubmitObjectsRequest"
    xsd.assert_valid(el)


def test_status_update_structure() -> None:
    object_list = _object_list(_deprecate())
    assert [etree.QName(child).localname for child in object_list] == [
        "RegistryPackage",
        "Classification",
        "Association",
    ]
    package, classification, association = object_list
    ss_id = package.get("id")
    assert ss_id is not None
    assert classification.get("classifiedObject") == ss_id
    assert classification.get("classificationNode") == c.SUBMISSION_SET_NODE
    assert association.get("associationType") == "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"
    assert association.get("sourceObject") == ss_id
    assert association.get("targetObject") == ENTRY
    slots = {s.get("name"): s.findtext(f"{R}ValueList/{R}Value") for s in association.iter(f"{R}Slot")}
    assert slots == {"OriginalStatus": APPROVED.value, "NewStatus": DEPRECATED.value}


def test_status_update_round_trip() -> None:
    before = Dtm.now().value
    ss, associations, problems = parse_status_update(_deprecate())
    assert problems == []
    assert ss is not None
    assert ss.patient_id == PATIENT
    assert ss.source_id == "1.2.3.4"
    assert ss.content_type_code == STATUS_UPDATE_CONTENT_TYPE
    assert ss.unique_id is not None
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", ss.unique_id)
    assert ss.submission_time is not None
    assert before <= ss.submission_time <= Dtm.now().value
    (update,) = associations
    assert update.type is AssociationType.UPDATE_AVAILABILITY_STATUS
    assert (update.source, update.target) == (ss.entry_uuid, ENTRY)
    assert (update.original_status, update.new_status) == (APPROVED, DEPRECATED)


def test_given_submission_set_is_used(submission_set: SubmissionSet, xsd: Xsd) -> None:
    el = build_status_update(
        patient_id=PATIENT,
        entry_uuid=ENTRY,
        original=DEPRECATED,
        new=APPROVED,
        source_id="ignored",
        submission_set=submission_set,
    )
    xsd.assert_valid(el)
    ss, associations, problems = parse_status_update(el)
    assert problems == []
    assert ss == submission_set
    assert associations[0].source == "SubmissionSet01"
    assert (associations[0].original_status, associations[0].new_status) == (DEPRECATED, APPROVED)


def test_has_member_to_the_status_association_is_accepted() -> None:
    el = _deprecate()
    object_list = _object_list(el)
    package, _, update = object_list
    link = Association(
        entry_uuid="link",
        type=AssociationType.HAS_MEMBER,
        source=package.get("id") or "",
        target=update.get("id") or "",
        submission_set_status=SubmissionSetStatus.ORIGINAL,
    )
    object_list.append(association_to_element(link))
    _ss, associations, problems = parse_status_update(el)
    assert problems == []
    assert len(associations) == 2


def test_malformed_status_updates_are_reported(rich_entry: DocumentEntry) -> None:
    el = _deprecate()
    object_list = _object_list(el)
    package, classification, update = object_list
    # no SubmissionSet, a status association without NewStatus, a DocumentEntry and an RPLC sent along
    object_list.remove(package)
    object_list.remove(classification)
    for s in update.findall(f"{R}Slot[@name='NewStatus']"):
        update.remove(s)
    object_list.append(entry_to_extrinsic_object(rich_entry))
    rplc = Association(entry_uuid="r1", type=AssociationType.RPLC, source="Document01", target=ENTRY)
    object_list.append(association_to_element(rplc))
    ss, associations, problems = parse_status_update(el)
    assert ss is None
    assert len(associations) == 2
    assert [(p.code, p.path) for p in problems] == [
        ("XDSMetadataUpdateError", "SubmissionSet"),
        ("XDSMetadataUpdateError", "DocumentEntry[Document01]"),
        ("XDSMetadataUpdateError", f"Association[{update.get('id')}]"),
        ("XDSMetadataUpdateError", "Association[r1]"),
    ]
    assert "NewStatus" in problems[2].message


def test_status_association_must_come_from_the_submission_set() -> None:
    el = _deprecate()
    _, _, update = _object_list(el)
    update.set("sourceObject", "SomethingElse")
    _ss, _associations, problems = parse_status_update(el)
    assert [p.path for p in problems] == [f"Association[{update.get('id')}].sourceObject"]


def test_missing_status_association_and_object_list() -> None:
    el = _deprecate()
    object_list = _object_list(el)
    object_list.remove(object_list[2])
    _ss, _associations, problems = parse_status_update(el)
    assert [(p.code, p.path) for p in problems] == [("XDSMetadataUpdateError", "Association")]
    ss, associations, problems = parse_status_update(etree.Element(f"{{{c.LCM}}}SubmitObjectsRequest"))
    assert ss is None
    assert associations == []
    assert [p.path for p in problems] == ["SubmitObjectsRequest"]
