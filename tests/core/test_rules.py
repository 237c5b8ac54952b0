"""The ITI-41 metadata rules: one valid submission, then one mutation per rule with its exact XDS code and path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from rsb_connector.errors import MetadataError, Problem
from rsb_connector.identifiers import SSIN_OID
from rsb_connector.metadata.content import ContentDigest, digest
from rsb_connector.metadata.model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.metadata.rules import (
    check_submission,
    validate_entry,
    validate_hash_and_size,
    validate_status_update,
    validate_submission,
    validate_submission_set,
)

SSIN = "73032929895"
OTHER_SSIN = "72022102793"
BAD_SSIN = "73032929896"  # wrong check digits
PATIENT = f"{SSIN}^^^&{SSIN_OID}&ISO"
OTHER_PATIENT = f"{OTHER_SSIN}^^^&{SSIN_OID}&ISO"
REGISTRY_DOC = "urn:uuid:0b6c2a4e-4a1f-4c1e-9d43-6a1f2f1d9e10"
REGISTRY_DOC_2 = "urn:uuid:7f5c1d2a-9b8e-4c3d-a2f1-0e9d8c7b6a54"
CONTENT = {"Document01": b"<ClinicalDocument>one</ClinicalDocument>", "Document02": b"%PDF-1.4 two"}

RME = "XDSRegistryMetadataError"
REPO_ME = "XDSRepositoryMetadataError"
DE1 = "DocumentEntry[Document01]"
DE2 = "DocumentEntry[Document02]"


def _entry(entry_uuid: str, unique_id: str, mime_type: str) -> DocumentEntry:
    computed = digest(CONTENT[entry_uuid])
    return DocumentEntry(
        entry_uuid=entry_uuid,
        unique_id=unique_id,
        patient_id=PATIENT,
        mime_type=mime_type,
        class_code=Code("contactreport", "1.3.6.1.4.1.48336.1.1", "Contact report"),
        type_code=Code("contactreport", "1.3.6.1.4.1.48336.1.2"),
        format_code=Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3"),
        healthcare_facility_type_code=Code("hospital", "1.3.6.1.4.1.48336.1.3"),
        practice_setting_code=Code("cardiology", "1.3.6.1.4.1.48336.1.4"),
        confidentiality_codes=[Code("N", "2.16.840.1.113883.5.25"), Code("R", "2.16.840.1.113883.5.25")],
        event_codes=[Code("consultation", "1.3.6.1.4.1.48336.1.5")],
        creation_time="20241224153000",
        language_code="fr-BE",
        source_patient_id=f"{SSIN}^^^&{SSIN_OID}&ISO",
        service_start_time="20241224",
        service_stop_time="20241224160000",
        hash=computed.sha1,
        size=computed.size,
        title="Consultation",
        authors=[Author(person="^Dupont^Marie^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO", roles=("persphysician",))],
    )


@pytest.fixture
def submission() -> Submission:
    """A complete, valid ITI-41 submission with two documents, built by hand."""
    ss = SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id="1.3.6.1.4.1.21367.2024.1.100",
        source_id="1.3.6.1.4.1.21367.2024.9",
        patient_id=PATIENT,
        submission_time="20241224160500",
        content_type_code=Code("contactreport", "1.3.6.1.4.1.48336.1.6"),
        authors=[Author(institutions=("Hôpital Test^^^^^^^^^1.3.6.1.4.1.21367.2024.7",))],
    )
    return Submission(
        submission_set=ss,
        entries=[
            _entry("Document01", "1.3.6.1.4.1.21367.2024.1.101", "text/xml"),
            _entry("Document02", "1.3.6.1.4.1.21367.2024.1.102^v2", "application/pdf"),
        ],
        associations=[
            Association(
                entry_uuid="as01",
                type=AssociationType.HAS_MEMBER,
                source="SubmissionSet01",
                target="Document01",
                submission_set_status=SubmissionSetStatus.ORIGINAL,
            ),
            Association(
                entry_uuid="as02",
                type=AssociationType.HAS_MEMBER,
                source="SubmissionSet01",
                target="Document02",
                submission_set_status=SubmissionSetStatus.ORIGINAL,
            ),
        ],
        document_ids=["Document01", "Document02"],
    )


def _reveals_ssin(text: str) -> bool:
    return any(number in text for number in (SSIN, OTHER_SSIN, BAD_SSIN))


def _found(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in problems]


def test_valid_submission_has_no_problem(submission: Submission) -> None:
    assert validate_submission(submission) == []
    check_submission(submission)  # does not raise


# ------------------------------------------------------------------------------------------ mutation table

Mutation = Callable[[Submission], None]


def _set(attr: str, value: object, index: int = 0) -> Mutation:
    def mutate(s: Submission) -> None:
        setattr(s.entries[index], attr, value)

    return mutate


def _set_ss(attr: str, value: object) -> Mutation:
    def mutate(s: Submission) -> None:
        setattr(s.submission_set, attr, value)

    return mutate


def _set_assoc(index: int, attr: str, value: object) -> Mutation:
    def mutate(s: Submission) -> None:
        setattr(s.associations[index], attr, value)

    return mutate


def _add_assoc(
    type_: AssociationType,
    source: str,
    target: str,
    status: SubmissionSetStatus | None = None,
) -> Mutation:
    def mutate(s: Submission) -> None:
        s.associations.append(
            Association(entry_uuid="as03", type=type_, source=source, target=target, submission_set_status=status)
        )

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(s: Submission) -> None:
        for m in mutations:
            m(s)

    return mutate


def _confidentiality_without_code(s: Submission) -> None:
    s.entries[0].confidentiality_codes[1] = Code("", "2.16.840.1.113883.5.25")


def _drop_association(index: int) -> Mutation:
    def mutate(s: Submission) -> None:
        del s.associations[index]

    return mutate


def _documents(*ids: str) -> Mutation:
    def mutate(s: Submission) -> None:
        s.document_ids = list(ids)

    return mutate


def _same_unique_id_as_first(s: Submission) -> None:
    s.entries[1].unique_id = s.entries[0].unique_id


def _same_unique_id_as_submission_set(s: Submission) -> None:
    s.entries[0].unique_id = s.submission_set.unique_id


def _has_member_of_rplc(s: Submission) -> None:
    s.associations.append(
        Association(entry_uuid="rplc01", type=AssociationType.RPLC, source="Document01", target=REGISTRY_DOC)
    )
    s.associations.append(
        Association(entry_uuid="hm-rplc", type=AssociationType.HAS_MEMBER, source="SubmissionSet01", target="rplc01")
    )


def _everyone_bad_ssin(s: Submission) -> None:
    bad = f"{BAD_SSIN}^^^&{SSIN_OID}&ISO"
    s.submission_set.patient_id = bad
    for e in s.entries:
        e.patient_id = bad


@dataclass(frozen=True)
class Case:
    id: str
    mutate: Mutation
    expected: list[tuple[str, str]]


CASES = [
    # --- NIST 11998a: each required DocumentEntry attribute missing
    Case("11998a-missing-classCode", _set("class_code", None), [(RME, f"{DE1}.classCode")]),
    Case(
        "11998a-missing-confidentialityCode", _set("confidentiality_codes", []), [(RME, f"{DE1}.confidentialityCode")]
    ),
    Case("11998a-missing-creationTime", _set("creation_time", None), [(RME, f"{DE1}.creationTime")]),
    Case("11998a-missing-formatCode", _set("format_code", None), [(RME, f"{DE1}.formatCode")]),
    Case(
        "11998a-missing-healthcareFacilityTypeCode",
        _set("healthcare_facility_type_code", None),
        [(RME, f"{DE1}.healthcareFacilityTypeCode")],
    ),
    Case("11998a-missing-languageCode", _set("language_code", None), [(RME, f"{DE1}.languageCode")]),
    Case(
        "11998a-missing-practiceSettingCode", _set("practice_setting_code", None), [(RME, f"{DE1}.practiceSettingCode")]
    ),
    Case("11998a-missing-sourcePatientId", _set("source_patient_id", None), [(RME, f"{DE1}.sourcePatientId")]),
    Case("11998a-missing-typeCode", _set("type_code", None), [(RME, f"{DE1}.typeCode")]),
    # --- other required DocumentEntry attributes
    Case("missing-uniqueId", _set("unique_id", None), [(RME, f"{DE1}.uniqueId")]),
    Case("missing-patientId", _set("patient_id", None), [(RME, f"{DE1}.patientId")]),
    Case("missing-mimeType", _set("mime_type", ""), [(RME, f"{DE1}.mimeType")]),
    # --- malformed DocumentEntry attributes
    Case("uniqueId-too-long", _set("unique_id", "1.2.3^" + "x" * 130), [(RME, f"{DE1}.uniqueId")]),
    Case("uniqueId-urn-oid-prefix", _set("unique_id", "urn:oid:1.2.3.4"), [(RME, f"{DE1}.uniqueId")]),
    Case("uniqueId-not-an-oid", _set("unique_id", "document-one"), [(RME, f"{DE1}.uniqueId")]),
    Case("uniqueId-empty-extension", _set("unique_id", "1.2.3.4^"), [(RME, f"{DE1}.uniqueId")]),
    Case("patientId-without-authority", _set("patient_id", SSIN), [(RME, f"{DE1}.patientId")]),
    Case("patientId-authority-not-iso", _set("patient_id", f"{SSIN}^^^&{SSIN_OID}&DNS"), [(RME, f"{DE1}.patientId")]),
    Case(
        "sourcePatientId-ssin-bad-checksum",
        _set("source_patient_id", f"{BAD_SSIN}^^^&{SSIN_OID}&ISO"),
        [(RME, f"{DE1}.sourcePatientId")],
    ),
    Case(
        "sourcePatientId-ssin-with-separators",
        _set("source_patient_id", f"73.03.29-298.95^^^&{SSIN_OID}&ISO"),
        [(RME, f"{DE1}.sourcePatientId")],
    ),
    Case(
        "patientId-ssin-bad-checksum-everywhere",
        _everyone_bad_ssin,
        [(RME, "SubmissionSet.patientId"), (RME, f"{DE1}.patientId"), (RME, f"{DE2}.patientId")],
    ),
    Case("classCode-without-scheme", _set("class_code", Code("contactreport", "")), [(RME, f"{DE1}.classCode")]),
    Case("confidentialityCode-without-code", _confidentiality_without_code, [(RME, f"{DE1}.confidentialityCode[1]")]),
    Case("eventCode-without-scheme", _set("event_codes", [Code("x", "")]), [(RME, f"{DE1}.eventCodeList[0]")]),
    Case("creationTime-iso-format", _set("creation_time", "2024-12-24T15:30:00Z"), [(RME, f"{DE1}.creationTime")]),
    Case("creationTime-impossible-date", _set("creation_time", "20240230"), [(RME, f"{DE1}.creationTime")]),
    Case("serviceStopTime-malformed", _set("service_stop_time", "2024122"), [(RME, f"{DE1}.serviceStopTime")]),
    Case(
        "service-start-after-stop",
        _both(_set("service_start_time", "20241225"), _set("service_stop_time", "20241224")),
        [(RME, f"{DE1}.serviceStartTime")],
    ),
    Case(
        "service-start-after-stop-across-precisions",
        _both(_set("service_start_time", "2025"), _set("service_stop_time", "20241231235959")),
        [(RME, f"{DE1}.serviceStartTime")],
    ),
    Case("languageCode-underscore", _set("language_code", "fr_BE"), [(RME, f"{DE1}.languageCode")]),
    Case("mimeType-without-subtype", _set("mime_type", "pdf"), [(RME, f"{DE1}.mimeType")]),
    Case("mimeType-with-parameters", _set("mime_type", "text/xml; charset=UTF-8"), [(RME, f"{DE1}.mimeType")]),
    Case("bad-hash-format", _set("hash", "not-a-sha1"), [(REPO_ME, f"{DE1}.hash")]),
    Case("bad-hash-sha256-length", _set("hash", "ab" * 32), [(REPO_ME, f"{DE1}.hash")]),
    Case("negative-size", _set("size", -1), [(REPO_ME, f"{DE1}.size")]),
    Case(
        "repositoryUniqueId-urn-oid",
        _set("repository_unique_id", "urn:oid:1.3.6.1.4.1.21367.2017.3"),
        [(RME, f"{DE1}.repositoryUniqueId")],
    ),
    Case("empty-author", _set("authors", [Author()]), [(RME, f"{DE1}.author[0]")]),
    Case(
        "entry-deprecated",
        _set("availability_status", AvailabilityStatus.DEPRECATED),
        [(RME, f"{DE1}.availabilityStatus")],
    ),
    Case("objectType-unknown", _set("object_type", "urn:uuid:not-a-type"), [(RME, f"{DE1}.objectType")]),
    Case(
        "objectType-on-demand-in-iti41",
        _both(_set("object_type", DOCUMENT_ENTRY_ON_DEMAND), _documents("Document02")),
        [(RME, f"{DE1}.objectType")],
    ),
    # --- patient ids (NIST 11986 / 11997)
    Case(
        "11986-11997-patient-mismatch",
        _set("patient_id", OTHER_PATIENT),
        [("XDSPatientIdDoesNotMatch", f"{DE1}.patientId")],
    ),
    Case(
        "11986-11997-patient-mismatch-other-authority",
        _set("patient_id", f"{SSIN}^^^&1.3.6.1.4.1.21367.2024.5&ISO", index=1),
        [("XDSPatientIdDoesNotMatch", f"{DE2}.patientId")],
    ),
    # --- SubmissionSet
    Case("ss-missing-uniqueId", _set_ss("unique_id", None), [(RME, "SubmissionSet.uniqueId")]),
    Case("ss-uniqueId-with-extension", _set_ss("unique_id", "1.2.3.4^abc"), [(RME, "SubmissionSet.uniqueId")]),
    Case("ss-missing-sourceId", _set_ss("source_id", None), [(RME, "SubmissionSet.sourceId")]),
    Case("ss-sourceId-urn-oid", _set_ss("source_id", "urn:oid:1.2.3"), [(RME, "SubmissionSet.sourceId")]),
    Case("ss-missing-patientId", _set_ss("patient_id", None), [(RME, "SubmissionSet.patientId")]),
    Case("ss-missing-submissionTime", _set_ss("submission_time", None), [(RME, "SubmissionSet.submissionTime")]),
    Case(
        "ss-submissionTime-offset", _set_ss("submission_time", "20241224+0100"), [(RME, "SubmissionSet.submissionTime")]
    ),
    Case("ss-missing-contentTypeCode", _set_ss("content_type_code", None), [(RME, "SubmissionSet.contentTypeCode")]),
    Case(
        "ss-deprecated",
        _set_ss("availability_status", AvailabilityStatus.DEPRECATED),
        [(RME, "SubmissionSet.availabilityStatus")],
    ),
    Case(
        "ss-missing-entryUUID",
        _set_ss("entry_uuid", ""),
        [
            (RME, "SubmissionSet.entryUUID"),
            (RME, "Association[as01].source"),
            (RME, "Association[as02].source"),
        ],
    ),
    # --- duplicates
    Case(
        "duplicate-uniqueId-in-message",
        _same_unique_id_as_first,
        [("XDSRegistryDuplicateUniqueIdInMessage", f"{DE2}.uniqueId")],
    ),
    Case(
        "duplicate-uniqueId-submission-set-and-entry",
        _same_unique_id_as_submission_set,
        [("XDSRegistryDuplicateUniqueIdInMessage", f"{DE1}.uniqueId")],
    ),
    Case(
        "duplicate-entryUUID-in-message",
        _set_assoc(1, "entry_uuid", "Document01"),
        [(RME, "Association[Document01].entryUUID")],
    ),
    Case(
        "association-entryUUID-malformed-urn-uuid",
        _set_assoc(0, "entry_uuid", "urn:uuid:1234"),
        [(RME, "Association[urn:uuid:1234].entryUUID")],
    ),
    # --- HasMember membership
    Case("entry-not-member-of-submission-set", _drop_association(1), [(RME, DE2)]),
    Case(
        "has-member-without-submission-set-status",
        _set_assoc(1, "submission_set_status", None),
        [(RME, "Association[as02].submissionSetStatus"), (RME, DE2)],
    ),
    Case(
        "has-member-reference-to-entry-in-message",
        _set_assoc(1, "submission_set_status", SubmissionSetStatus.REFERENCE),
        [(RME, "Association[as02].submissionSetStatus"), (RME, DE2)],
    ),
    Case(
        "has-member-target-dangling",
        _set_assoc(1, "target", "Document99"),
        [(RME, "Association[as02].target"), (RME, DE2)],
    ),
    Case(
        "has-member-original-to-registry-object",
        _add_assoc(AssociationType.HAS_MEMBER, "SubmissionSet01", REGISTRY_DOC, SubmissionSetStatus.ORIGINAL),
        [(RME, "Association[as03].target")],
    ),
    Case(
        "has-member-from-document-entry",
        _add_assoc(AssociationType.HAS_MEMBER, "Document01", "Document02", SubmissionSetStatus.ORIGINAL),
        [(RME, "Association[as03].source")],
    ),
    Case(
        "association-deprecated",
        _set_assoc(0, "availability_status", AvailabilityStatus.DEPRECATED),
        [(RME, "Association[as01].availabilityStatus")],
    ),
    # --- document relationships
    Case(
        "rplc-source-not-in-message",
        _add_assoc(AssociationType.RPLC, REGISTRY_DOC_2, REGISTRY_DOC),
        [(RME, "Association[as03].source")],
    ),
    Case(
        "rplc-target-in-message",
        _add_assoc(AssociationType.RPLC, "Document01", "Document02"),
        [(RME, "Association[as03].target")],
    ),
    Case(
        "apnd-target-dangling-symbolic",
        _add_assoc(AssociationType.APND, "Document01", "Document77"),
        [(RME, "Association[as03].target")],
    ),
    Case(
        "xfrm-with-submission-set-status",
        _add_assoc(AssociationType.XFRM, "Document01", REGISTRY_DOC, SubmissionSetStatus.ORIGINAL),
        [(RME, "Association[as03].submissionSetStatus")],
    ),
    Case(
        "update-availability-status-in-iti41",
        _add_assoc(AssociationType.UPDATE_AVAILABILITY_STATUS, "SubmissionSet01", REGISTRY_DOC),
        [(RME, "Association[as03].type")],
    ),
    # --- documents vs entries (NIST 11983)
    Case("11983-missing-document", _documents("Document01"), [("XDSMissingDocument", DE2)]),
    Case(
        "11983-missing-document-metadata",
        _documents("Document01", "Document02", "Document03"),
        [("XDSMissingDocumentMetadata", "Document[Document03]")],
    ),
    Case(
        "document-attached-twice",
        _documents("Document01", "Document02", "Document02"),
        [(REPO_ME, "Document[Document02]")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_rule(submission: Submission, case: Case) -> None:
    case.mutate(submission)
    problems = validate_submission(submission)
    assert _found(problems) == case.expected
    for p in problems:
        assert p.is_error
        assert p.message
        assert not _reveals_ssin(p.message)


VALID_VARIANTS = [
    Case("coarse-creationTime", _set("creation_time", "2004"), []),
    Case("uppercase-hash", _set("hash", digest(CONTENT["Document01"]).sha1.upper()), []),
    Case("no-hash-no-size", _both(_set("hash", None), _set("size", None)), []),
    Case("service-times-overlap-across-precisions", _set("service_start_time", "2024"), []),
    Case("service-start-equals-stop", _both(_set("service_start_time", "2024"), _set("service_stop_time", "2024")), []),
    Case("no-service-times", _both(_set("service_start_time", None), _set("service_stop_time", None)), []),
    Case("language-without-region", _set("language_code", "nl"), []),
    Case(
        "non-ssin-patient-authority",
        _both(
            _set_ss("patient_id", "P123^^^&1.3.6.1.4.1.21367.2024.5&ISO"),
            _set("patient_id", "P123^^^&1.3.6.1.4.1.21367.2024.5&ISO", 0),
            _set("patient_id", "P123^^^&1.3.6.1.4.1.21367.2024.5&ISO", 1),
        ),
        [],
    ),
    Case(
        "has-member-reference-to-registry-object",
        _add_assoc(AssociationType.HAS_MEMBER, "SubmissionSet01", REGISTRY_DOC, SubmissionSetStatus.REFERENCE),
        [],
    ),
    Case("rplc-to-registry-document", _add_assoc(AssociationType.RPLC, "Document01", REGISTRY_DOC), []),
    Case("xfrm-rplc-to-registry-document", _add_assoc(AssociationType.XFRM_RPLC, "Document02", REGISTRY_DOC), []),
    Case("signs-registry-document", _add_assoc(AssociationType.SIGNS, "Document02", REGISTRY_DOC), []),
    Case("urn-uuid-entry-ids", _set_assoc(0, "entry_uuid", "urn:uuid:3e5a2c1b-1111-4a2b-9c3d-abcdefabcdef"), []),
    Case("has-member-of-an-association-needs-no-status", _has_member_of_rplc, []),
]


@pytest.mark.parametrize("case", VALID_VARIANTS, ids=[c.id for c in VALID_VARIANTS])
def test_valid_variants(submission: Submission, case: Case) -> None:
    case.mutate(submission)
    assert validate_submission(submission) == []


# ------------------------------------------------------------------------------------------ whole-message behaviour


def test_every_problem_is_reported_at_once(submission: Submission) -> None:
    first, second = submission.entries
    first.class_code = None
    first.creation_time = "yesterday"
    first.hash = "xyz"
    second.patient_id = OTHER_PATIENT
    second.unique_id = first.unique_id
    submission.submission_set.source_id = None
    submission.document_ids.append("Document09")

    found = _found(validate_submission(submission))

    assert found == [
        (RME, "SubmissionSet.sourceId"),
        (RME, f"{DE1}.classCode"),
        (RME, f"{DE1}.creationTime"),
        (REPO_ME, f"{DE1}.hash"),
        ("XDSPatientIdDoesNotMatch", f"{DE2}.patientId"),
        ("XDSRegistryDuplicateUniqueIdInMessage", f"{DE2}.uniqueId"),
        ("XDSMissingDocumentMetadata", "Document[Document09]"),
    ]


def test_check_submission_raises_with_codes(submission: Submission) -> None:
    submission.entries[0].type_code = None
    submission.entries[1].patient_id = OTHER_PATIENT
    submission.document_ids = ["Document02"]

    with pytest.raises(MetadataError) as caught:
        check_submission(submission)

    err = caught.value
    assert err.codes == ["XDSRegistryMetadataError", "XDSPatientIdDoesNotMatch", "XDSMissingDocument"]
    assert err.code == "XDSRegistryMetadataError"
    assert [p.path for p in err.problems] == [f"{DE1}.typeCode", f"{DE2}.patientId", DE1]
    assert "typeCode is missing" in str(err)


def test_messages_say_what_to_send_and_hide_the_ssin(submission: Submission) -> None:
    submission.entries[0].class_code = None
    submission.entries[1].patient_id = OTHER_PATIENT
    submission.entries[1].source_patient_id = f"{BAD_SSIN}^^^&{SSIN_OID}&ISO"
    by_path = {p.path: p.message for p in validate_submission(submission)}

    assert "classCode is missing" in by_path[f"{DE1}.classCode"]
    assert "exactly one classCode" in by_path[f"{DE1}.classCode"]
    mismatch = by_path[f"{DE2}.patientId"]
    assert "72*******93" in mismatch
    assert "73*******95" in mismatch
    checksum = by_path[f"{DE2}.sourcePatientId"]
    assert "73*******96" in checksum
    assert "check digits" in checksum
    for message in by_path.values():
        assert not _reveals_ssin(message)


def test_max_unique_id_length_is_configurable(submission: Submission) -> None:
    submission.entries[0].unique_id = "1.3.6.1.4.1.21367.2024.1.101^" + "a" * 40
    assert validate_submission(submission) == []
    found = _found(validate_submission(submission, max_unique_id_length=64))
    assert found == [(RME, f"{DE1}.uniqueId")]


# ------------------------------------------------------------------------------------------ value sets


class _RecordingValueSets:
    """Accepts every code except the rejected ones, and records which value sets were asked."""

    def __init__(self, *rejected: tuple[str, str]) -> None:
        self.rejected = set(rejected)
        self.kinds: set[str] = set()

    def contains(self, kind: str, code: Code) -> bool:
        self.kinds.add(kind)
        return (kind, code.code) not in self.rejected


def test_value_sets_are_consulted_for_every_coded_attribute(submission: Submission) -> None:
    checker = _RecordingValueSets()
    assert validate_submission(submission, value_sets=checker) == []
    assert checker.kinds == {
        "classCode",
        "typeCode",
        "formatCode",
        "healthcareFacilityTypeCode",
        "practiceSettingCode",
        "confidentialityCode",
        "contentTypeCode",
        "eventCodeList",
    }


@pytest.mark.parametrize(
    ("kind", "code", "path"),
    [
        ("classCode", "contactreport", f"{DE1}.classCode"),
        ("confidentialityCode", "R", f"{DE1}.confidentialityCode[1]"),
        ("eventCodeList", "consultation", f"{DE1}.eventCodeList[0]"),
        ("contentTypeCode", "contactreport", "SubmissionSet.contentTypeCode"),
    ],
    ids=["classCode", "confidentialityCode", "eventCodeList", "contentTypeCode"],
)
def test_code_outside_its_value_set(submission: Submission, kind: str, code: str, path: str) -> None:
    submission.entries[1].class_code = Code("other", "1.3.6.1.4.1.48336.1.1")
    submission.entries[1].confidentiality_codes = [Code("N", "2.16.840.1.113883.5.25")]
    submission.entries[1].event_codes = []
    problems = validate_submission(submission, value_sets=_RecordingValueSets((kind, code)))
    assert _found(problems) == [(RME, path)]
    assert f"{kind} value set" in problems[0].message
    assert code in problems[0].message


# ------------------------------------------------------------------------------------------ single-object helpers


def test_validate_entry_and_submission_set_use_the_given_path(submission: Submission) -> None:
    entry = submission.entries[0]
    entry.language_code = None
    assert _found(validate_entry(entry, path="Entry#1")) == [(RME, "Entry#1.languageCode")]
    ss = submission.submission_set
    ss.submission_time = "2024-12-24"
    assert _found(validate_submission_set(ss, path="SS")) == [(RME, "SS.submissionTime")]


# ------------------------------------------------------------------------------------------ repository: hash / size


def _computed() -> ContentDigest:
    return digest(CONTENT["Document01"])


@pytest.mark.parametrize(
    ("hash_", "size", "expected"),
    [
        pytest.param(None, None, [], id="11981-absent-is-fine"),
        pytest.param(_computed().sha1, _computed().size, [], id="11981-matching"),
        pytest.param(_computed().sha1.upper(), _computed().size, [], id="11981-uppercase-hash-accepted"),
        pytest.param("0" * 40, _computed().size, [(REPO_ME, "DE.hash")], id="12369-wrong-hash"),
        pytest.param(_computed().sha1, _computed().size + 1, [(REPO_ME, "DE.size")], id="12369-wrong-size"),
        pytest.param("zz", 0, [(REPO_ME, "DE.hash"), (REPO_ME, "DE.size")], id="malformed-hash-and-wrong-size"),
    ],
)
def test_validate_hash_and_size(
    submission: Submission, hash_: str | None, size: int | None, expected: list[tuple[str, str]]
) -> None:
    entry = submission.entries[0]
    entry.hash, entry.size = hash_, size
    assert _found(validate_hash_and_size(entry, _computed(), path="DE")) == expected


def test_validate_hash_and_size_defaults_to_entry_path(submission: Submission) -> None:
    entry = submission.entries[0]
    entry.size = 1
    problems = validate_hash_and_size(entry, _computed())
    assert _found(problems) == [(REPO_ME, f"{DE1}.size")]
    assert str(_computed().size) in problems[0].message


# ------------------------------------------------------------------------------------------ ITI-57 status update


def _status_update(**changes: object) -> Association:
    values: dict[str, object] = {
        "entry_uuid": "up01",
        "type": AssociationType.UPDATE_AVAILABILITY_STATUS,
        "source": "SubmissionSet01",
        "target": REGISTRY_DOC,
        "original_status": AvailabilityStatus.APPROVED,
        "new_status": AvailabilityStatus.DEPRECATED,
    }
    values.update(changes)
    return Association(**values)  # type: ignore[arg-type]


UPD = "XDSMetadataUpdateError"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({}, [], id="valid-deprecate"),
        pytest.param(
            {"original_status": AvailabilityStatus.DEPRECATED, "new_status": AvailabilityStatus.APPROVED},
            [],
            id="valid-reapprove",
        ),
        pytest.param({"original_status": None}, [(UPD, "Association[up01].originalStatus")], id="missing-original"),
        pytest.param({"new_status": None}, [(UPD, "Association[up01].newStatus")], id="missing-new"),
        pytest.param(
            {"new_status": AvailabilityStatus.APPROVED}, [(UPD, "Association[up01].newStatus")], id="same-status"
        ),
        pytest.param({"type": AssociationType.RPLC}, [(UPD, "Association[up01].type")], id="wrong-type"),
        pytest.param({"target": "Document01"}, [(UPD, "Association[up01].target")], id="target-not-urn-uuid"),
        pytest.param({"source": "OtherSet"}, [(UPD, "Association[up01].source")], id="source-not-the-submission-set"),
    ],
)
def test_validate_status_update(changes: dict[str, object], expected: list[tuple[str, str]]) -> None:
    problems = validate_status_update(_status_update(**changes), submission_set_id="SubmissionSet01")
    assert _found(problems) == expected
