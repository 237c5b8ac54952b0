"""The ITI-41 Document Source / Document Registry metadata rules, as pure functions.

Each function returns *every* :class:`~rsb_connector.errors.Problem` it finds (not only the first one), each with
the literal XDS ``errorCode`` the registry or repository answers, a path that names the offending field
(``DocumentEntry[Document01].classCode``, ``DocumentEntry[Document01].confidentialityCode[0]``,
``SubmissionSet.patientId``, ``Association[as01].target``, ``Document[Document02]``) and a message saying what is
wrong and what to send instead. The SDK runs them before sending; the mock hub runs the same functions on what it
receives, so both sides report the same codes.

Sources: ITI TF-3 Table 4.3.1-3 (metadata optionality for the Document Source), ITI TF-2b 3.41 and the readings
of IPF (``ObjectContainerValidator``) and NIST (tests 11981, 11983, 11986/11997, 11998a, 15806). Patient ids are
never written in full in a message: SSINs are personal data, so they are masked (``73*******95``).

Codes used:

* ``XDSRegistryMetadataError``: a required attribute is missing or malformed, a reference dangles, an id repeats.
* ``XDSRepositoryMetadataError``: ``hash`` / ``size`` malformed or not matching the document content.
* ``XDSPatientIdDoesNotMatch``: a DocumentEntry's patientId differs from the SubmissionSet's.
* ``XDSRegistryDuplicateUniqueIdInMessage``: the same uniqueId twice in one submission.
* ``XDSMissingDocument`` / ``XDSMissingDocumentMetadata``: an entry without its document, or the reverse.
* ``XDSMetadataUpdateError``: a malformed ITI-57 availability status update.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Protocol

from ..errors import InvalidIdentifier, MetadataError, Problem, Severity
from ..identifiers import SSIN_OID, Ssin, parse_cx
from .content import ContentDigest
from .model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    DOCUMENT_ENTRY_STABLE,
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Dtm,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)

__all__ = [
    "DEFAULT_MAX_UNIQUE_ID_LENGTH",
    "CodeChecker",
    "check_submission",
    "entry_path",
    "is_registry_reference",
    "validate_entry",
    "validate_hash_and_size",
    "validate_status_update",
    "validate_submission",
    "validate_submission_set",
]

DEFAULT_MAX_UNIQUE_ID_LENGTH: Final = 128
"""ITI TF-3 4.2.3.2.26: a DocumentEntry uniqueId is at most 128 characters."""

REGISTRY_METADATA_ERROR: Final = "XDSRegistryMetadataError"
REPOSITORY_METADATA_ERROR: Final = "XDSRepositoryMetadataError"
PATIENT_ID_DOES_NOT_MATCH: Final = "XDSPatientIdDoesNotMatch"
DUPLICATE_UNIQUE_ID_IN_MESSAGE: Final = "XDSRegistryDuplicateUniqueIdInMessage"
MISSING_DOCUMENT: Final = "XDSMissingDocument"
MISSING_DOCUMENT_METADATA: Final = "XDSMissingDocumentMetadata"
METADATA_UPDATE_ERROR: Final = "XDSMetadataUpdateError"

_OID: Final = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_MAX_OID_LENGTH: Final = 64
_UUID_URN: Final = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SHA1_HEX: Final = re.compile(r"[0-9a-fA-F]{40}")
_MIME_NAME: Final = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIME_TYPE: Final = re.compile(rf"{_MIME_NAME}/{_MIME_NAME}")
_LANGUAGE: Final = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")

_CODE_EXAMPLES: Final = {
    "classCode": "contactreport^^<class code scheme>",
    "typeCode": "contactreport^^<type code scheme>",
    "formatCode": "urn:ihe:iti:xds:2017:mimeTypeSufficient^^1.3.6.1.4.1.19376.1.2.3",
    "healthcareFacilityTypeCode": "hospital^^<facility type scheme>",
    "practiceSettingCode": "cardiology^^<practice setting scheme>",
    "confidentialityCode": "N^^2.16.840.1.113883.5.25",
    "contentTypeCode": "contactreport^^<content type scheme>",
    "eventCodeList": "<code>^^<event code scheme>",
}


class CodeChecker(Protocol):
    """Anything that knows the value sets (e.g. :class:`rsb_connector.metadata.valuesets.ValueSets`).

    ``kind`` is the XDS attribute name: ``classCode``, ``typeCode``, ``formatCode``, ``healthcareFacilityTypeCode``,
    ``practiceSettingCode``, ``confidentialityCode``, ``contentTypeCode`` or ``eventCodeList``.
    """

    def contains(self, kind: str, code: Code) -> bool:
        """Whether ``code`` (code and scheme) belongs to the value set of ``kind``."""
        ...


# ----------------------------------------------------------------------------------------------- helpers


def entry_path(entry: DocumentEntry, index: int | None = None) -> str:
    """The path of a DocumentEntry in problem reports: ``DocumentEntry[<entryUUID>]`` (``[#n]`` without an id)."""
    if entry.entry_uuid:
        return f"DocumentEntry[{entry.entry_uuid}]"
    return f"DocumentEntry[#{index if index is not None else '?'}]"


def _association_path(association: Association, index: int) -> str:
    return f"Association[{association.entry_uuid}]" if association.entry_uuid else f"Association[#{index}]"


def is_registry_reference(object_id: str) -> bool:
    """True when ``object_id`` is a well-formed ``urn:uuid:`` id, i.e. may name an object already in the registry."""
    return _UUID_URN.fullmatch(object_id) is not None


def _mask(value: str) -> str:
    """Hide a patient identifier: keep the first two and last two characters (``73*******95``)."""
    if len(value) <= 4:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def _mask_cx(text: str) -> str:
    """Mask the id part of a CX value and keep its assigning authority (``73*******95^^^&OID&ISO``)."""
    ident, sep, rest = text.partition("^")
    return _mask(ident) + sep + rest


def _problem(code: str, path: str, message: str, severity: Severity = Severity.ERROR) -> Problem:
    return Problem(code=code, message=message, path=path, severity=severity)


def _missing(path: str, what: str, instead: str, code: str = REGISTRY_METADATA_ERROR) -> Problem:
    return _problem(code, path, f"{what} is missing: {instead}")


def _oid_problem(value: str) -> str | None:
    """Why ``value`` is not a plain OID, or None."""
    if value.lower().startswith("urn:oid:"):
        return f"{value!r} carries a 'urn:oid:' prefix: send the bare OID ({value[8:]!r})"
    if not _OID.fullmatch(value):
        return f"{value!r} is not an OID: send dotted decimal digits like 1.3.6.1.4.1.21367.2005.3.7"
    if len(value) > _MAX_OID_LENGTH:
        return f"the OID {value!r} is {len(value)} characters long: an OID has at most {_MAX_OID_LENGTH}"
    return None


def _check_unique_id(
    value: str | None, path: str, *, allow_extension: bool, max_length: int, owner: str
) -> list[Problem]:
    if not value:
        shape = "an OID or OID^extension" if allow_extension else "an OID"
        return [_missing(path, "uniqueId", f"every {owner} needs a globally unique id, {shape} (e.g. 1.2.3.4.5.6789)")]
    problems: list[Problem] = []
    if len(value) > max_length:
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"uniqueId is {len(value)} characters long: it may have at most {max_length}; use a shorter OID",
            )
        )
    root, sep, extension = value.partition("^")
    if sep and not allow_extension:
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"uniqueId {value!r} has an extension: a {owner} uniqueId is a plain OID (e.g. 1.2.3.4.5.6789)",
            )
        )
        return problems
    if sep and (not extension or "^" in extension or any(c.isspace() for c in extension)):
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"uniqueId {value!r} has a malformed extension: send OID^extension with one non-empty extension "
                "without spaces or further '^' (e.g. 1.2.3.4^abc123)",
            )
        )
    reason = _oid_problem(root)
    if reason:
        shape = "an OID or OID^extension" if allow_extension else "an OID"
        problems.append(_problem(REGISTRY_METADATA_ERROR, path, f"uniqueId: {reason}; a uniqueId is {shape}"))
    return problems


def _check_cx(value: str | None, path: str, label: str, owner: str) -> list[Problem]:
    """A CX patient id with an ISO assigning authority; an SSIN when the authority is the SSIN OID."""
    example = f"<ssin>^^^&{SSIN_OID}&ISO"
    if not value:
        return [_missing(path, label, f"every {owner} needs one, a CX value id^^^&OID&ISO (e.g. {example})")]
    try:
        cx = parse_cx(value)
    except InvalidIdentifier as exc:
        reason = exc.reason.replace(value, _mask_cx(value))
        ident = value.partition("^")[0]
        if ident:
            reason = reason.replace(ident, _mask(ident))
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"{label} {_mask_cx(value)!r} is not a valid CX value ({reason}): send id^^^&OID&ISO (e.g. {example})",
            )
        ]
    if not cx.authority_oid:
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"{label} {_mask(cx.id)!r} has no assigning authority: send id^^^&OID&ISO (e.g. {example})",
            )
        ]
    if cx.authority_oid == SSIN_OID:
        if not (cx.id.isascii() and cx.id.isdigit() and len(cx.id) == 11):
            return [
                _problem(
                    REGISTRY_METADATA_ERROR,
                    path,
                    f"{label} {_mask(cx.id)!r} is in the SSIN assigning authority ({SSIN_OID}) but is not 11 digits: "
                    "send the patient's national register or BIS number as 11 digits without separators",
                )
            ]
        try:
            Ssin(cx.id)
        except InvalidIdentifier as exc:
            reason = exc.reason.replace(cx.id, _mask(cx.id)) if cx.id else exc.reason
            return [
                _problem(
                    REGISTRY_METADATA_ERROR,
                    path,
                    f"{label} {_mask(cx.id)!r} is in the SSIN assigning authority ({SSIN_OID}) but is not a valid "
                    f"SSIN ({reason}): send the patient's 11-digit national register or BIS number, "
                    "check digits included",
                )
            ]
    return []


def _patient_key(text: str) -> tuple[str, str | None] | None:
    """(id, assigning authority) of a CX patient id, or None when it does not parse (reported elsewhere)."""
    try:
        cx = parse_cx(text)
    except InvalidIdentifier:
        return None
    return cx.id, cx.authority_oid


def _check_code(code: Code, path: str, kind: str, value_sets: CodeChecker | None) -> list[Problem]:
    example = _CODE_EXAMPLES[kind]
    if not code.code or not code.scheme:
        part = "code" if not code.code else "codingScheme"
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"{kind} has no {part}: a coded value needs both a code and a codingScheme (e.g. {example})",
            )
        ]
    if value_sets is not None and not value_sets.contains(kind, code):
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                path,
                f"{kind} {code} is not in the {kind} value set: send a code and codingScheme from that value set "
                f"(e.g. {example})",
            )
        ]
    return []


def _check_required_code(
    code: Code | None, path: str, kind: str, owner: str, value_sets: CodeChecker | None
) -> list[Problem]:
    if code is None:
        return [_missing(path, kind, f"every {owner} needs exactly one {kind} (e.g. {_CODE_EXAMPLES[kind]})")]
    return _check_code(code, path, kind, value_sets)


def _check_dtm(value: str | None, path: str, label: str, *, required: bool, owner: str) -> list[Problem]:
    if value is None or value == "":
        if required:
            return [
                _missing(
                    path, label, f"every {owner} needs a {label}, a UTC DTM YYYY[MM[DD[hh[mm[ss]]]]] (e.g. 20241224)"
                )
            ]
        return []
    reason = Dtm.problem(value)
    return [_problem(REGISTRY_METADATA_ERROR, path, f"{label}: {reason}")] if reason else []


def _check_authors(authors: Iterable[Author], path: str) -> list[Problem]:
    return [
        _problem(
            REGISTRY_METADATA_ERROR,
            f"{path}.author[{i}]",
            "author is empty: an author needs at least one of authorPerson, authorInstitution, authorRole, "
            "authorSpecialty or authorTelecommunication",
        )
        for i, author in enumerate(authors)
        if author.is_empty
    ]


def _check_status(status: AvailabilityStatus, path: str, what: str) -> list[Problem]:
    if status is AvailabilityStatus.APPROVED:
        return []
    return [
        _problem(
            REGISTRY_METADATA_ERROR,
            f"{path}.availabilityStatus",
            f"a submitted {what} must be Approved, not {status.short}: send "
            f"{AvailabilityStatus.APPROVED.value} or leave the status out (deprecation is done by RPLC or ITI-57)",
        )
    ]


def _check_object_id(object_id: str, path: str, what: str) -> list[Problem]:
    if not object_id or not object_id.strip():
        return [
            _missing(
                f"{path}.entryUUID",
                "entryUUID",
                f"every {what} needs an id, a symbolic one (e.g. Document01) or a urn:uuid:<UUID>",
            )
        ]
    if object_id.lower().startswith("urn:uuid:") and not is_registry_reference(object_id):
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.entryUUID",
                f"entryUUID {object_id!r} starts with urn:uuid: but is not a UUID: send urn:uuid: followed by "
                "8-4-4-4-12 hexadecimal digits, or a symbolic id such as Document01",
            )
        ]
    if any(c.isspace() for c in object_id):
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.entryUUID",
                f"entryUUID {object_id!r} contains white space: send a symbolic id such as Document01 or a urn:uuid:",
            )
        ]
    return []


# ----------------------------------------------------------------------------------------------- DocumentEntry


def validate_entry(
    entry: DocumentEntry,
    *,
    path: str,
    value_sets: CodeChecker | None = None,
    max_unique_id_length: int = DEFAULT_MAX_UNIQUE_ID_LENGTH,
) -> list[Problem]:
    """Check one DocumentEntry on its own (ITI TF-3 Table 4.3.1-3, Document Source column).

    Cross-object rules (patient equal to the SubmissionSet's, membership, duplicates, documents) are checked by
    :func:`validate_submission`. ``path`` prefixes every problem's path (e.g. ``DocumentEntry[Document01]``).
    Codes are looked up in ``value_sets`` when given.
    """
    owner = "DocumentEntry"
    problems: list[Problem] = []
    problems += _check_object_id(entry.entry_uuid, path, owner)
    if entry.object_type not in (DOCUMENT_ENTRY_STABLE, DOCUMENT_ENTRY_ON_DEMAND):
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.objectType",
                f"objectType {entry.object_type!r} is not a DocumentEntry type: send {DOCUMENT_ENTRY_STABLE} "
                "(stable document)",
            )
        )
    problems += _check_unique_id(
        entry.unique_id, f"{path}.uniqueId", allow_extension=True, max_length=max_unique_id_length, owner=owner
    )
    problems += _check_cx(entry.patient_id, f"{path}.patientId", "patientId", owner)
    problems += _check_required_code(entry.class_code, f"{path}.classCode", "classCode", owner, value_sets)
    problems += _check_required_code(entry.type_code, f"{path}.typeCode", "typeCode", owner, value_sets)
    problems += _check_required_code(entry.format_code, f"{path}.formatCode", "formatCode", owner, value_sets)
    problems += _check_required_code(
        entry.healthcare_facility_type_code,
        f"{path}.healthcareFacilityTypeCode",
        "healthcareFacilityTypeCode",
        owner,
        value_sets,
    )
    problems += _check_required_code(
        entry.practice_setting_code, f"{path}.practiceSettingCode", "practiceSettingCode", owner, value_sets
    )
    if not entry.confidentiality_codes:
        problems.append(
            _missing(
                f"{path}.confidentialityCode",
                "confidentialityCode",
                "every DocumentEntry needs at least one confidentialityCode "
                f"(e.g. {_CODE_EXAMPLES['confidentialityCode']})",
            )
        )
    for i, code in enumerate(entry.confidentiality_codes):
        problems += _check_code(code, f"{path}.confidentialityCode[{i}]", "confidentialityCode", value_sets)
    for i, code in enumerate(entry.event_codes):
        problems += _check_code(code, f"{path}.eventCodeList[{i}]", "eventCodeList", value_sets)

    problems += _check_dtm(entry.creation_time, f"{path}.creationTime", "creationTime", required=True, owner=owner)
    start_problems = _check_dtm(
        entry.service_start_time, f"{path}.serviceStartTime", "serviceStartTime", required=False, owner=owner
    )
    stop_problems = _check_dtm(
        entry.service_stop_time, f"{path}.serviceStopTime", "serviceStopTime", required=False, owner=owner
    )
    problems += start_problems + stop_problems
    if entry.service_start_time and entry.service_stop_time and not start_problems and not stop_problems:
        start, stop = Dtm(entry.service_start_time), Dtm(entry.service_stop_time)
        if start.lower_bound() > stop.upper_bound():
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.serviceStartTime",
                    f"serviceStartTime {start} is after serviceStopTime {stop}: a service must start before it stops; "
                    "swap them or correct the times",
                )
            )

    if not entry.language_code:
        problems.append(
            _missing(f"{path}.languageCode", "languageCode", "every DocumentEntry needs a languageCode (e.g. fr-BE)")
        )
    elif not _LANGUAGE.fullmatch(entry.language_code):
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.languageCode",
                f"languageCode {entry.language_code!r} is not a language tag: send an RFC 5646 tag such as fr-BE, "
                "nl-BE, de-BE or en",
            )
        )
    problems += _check_cx(entry.source_patient_id, f"{path}.sourcePatientId", "sourcePatientId", owner)
    if not entry.mime_type:
        problems.append(
            _missing(
                f"{path}.mimeType", "mimeType", "every DocumentEntry needs the document's mimeType (e.g. text/xml)"
            )
        )
    elif not _MIME_TYPE.fullmatch(entry.mime_type):
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.mimeType",
                f"mimeType {entry.mime_type!r} is not a media type: send type/subtype without parameters "
                "(e.g. application/pdf or text/xml)",
            )
        )

    if entry.hash is not None and not _SHA1_HEX.fullmatch(entry.hash):
        problems.append(
            _problem(
                REPOSITORY_METADATA_ERROR,
                f"{path}.hash",
                f"hash {entry.hash!r} is not a SHA-1 digest: send the 40 hexadecimal digits of the content's SHA-1, "
                "or leave hash out and let the repository compute it",
            )
        )
    if entry.size is not None and entry.size < 0:
        problems.append(
            _problem(
                REPOSITORY_METADATA_ERROR,
                f"{path}.size",
                f"size {entry.size} is negative: send the content length in bytes, or leave size out",
            )
        )
    if entry.repository_unique_id:
        reason = _oid_problem(entry.repository_unique_id)
        if reason:
            problems.append(
                _problem(REGISTRY_METADATA_ERROR, f"{path}.repositoryUniqueId", f"repositoryUniqueId: {reason}")
            )
    problems += _check_authors(entry.authors, path)
    problems += _check_status(entry.availability_status, path, owner)
    return problems


# ----------------------------------------------------------------------------------------------- SubmissionSet


def validate_submission_set(
    ss: SubmissionSet,
    *,
    path: str = "SubmissionSet",
    value_sets: CodeChecker | None = None,
    max_unique_id_length: int = DEFAULT_MAX_UNIQUE_ID_LENGTH,
) -> list[Problem]:
    """Check the SubmissionSet on its own: entryUUID, uniqueId (an OID), sourceId (an OID), patientId (a CX),
    submissionTime (DTM), contentTypeCode, authors and availability status."""
    owner = "SubmissionSet"
    problems: list[Problem] = []
    problems += _check_object_id(ss.entry_uuid, path, owner)
    problems += _check_unique_id(
        ss.unique_id, f"{path}.uniqueId", allow_extension=False, max_length=max_unique_id_length, owner=owner
    )
    if not ss.source_id:
        problems.append(
            _missing(
                f"{path}.sourceId",
                "sourceId",
                "every SubmissionSet needs the OID of the Document Source that sends it "
                "(e.g. 1.3.6.1.4.1.21367.2005.3.7)",
            )
        )
    else:
        reason = _oid_problem(ss.source_id)
        if reason:
            problems.append(_problem(REGISTRY_METADATA_ERROR, f"{path}.sourceId", f"sourceId: {reason}"))
    problems += _check_cx(ss.patient_id, f"{path}.patientId", "patientId", owner)
    problems += _check_dtm(ss.submission_time, f"{path}.submissionTime", "submissionTime", required=True, owner=owner)
    problems += _check_required_code(
        ss.content_type_code, f"{path}.contentTypeCode", "contentTypeCode", owner, value_sets
    )
    problems += _check_authors(ss.authors, path)
    problems += _check_status(ss.availability_status, path, owner)
    return problems


# ----------------------------------------------------------------------------------------------- Submission


def _check_duplicates(submission: Submission, entry_paths: list[str]) -> list[Problem]:
    problems: list[Problem] = []
    ss = submission.submission_set

    # uniqueIds: among entries, and SubmissionSet vs entries.
    first_unique: dict[str, str] = {}
    owners: list[tuple[str | None, str]] = [(ss.unique_id, "SubmissionSet")]
    owners += [(e.unique_id, p) for e, p in zip(submission.entries, entry_paths, strict=True)]
    for unique_id, path in owners:
        if not unique_id:
            continue
        if unique_id in first_unique:
            problems.append(
                _problem(
                    DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                    f"{path}.uniqueId",
                    f"uniqueId {unique_id!r} is also used by {first_unique[unique_id]}: every DocumentEntry and the "
                    "SubmissionSet need their own uniqueId; generate a new OID for this one",
                )
            )
        else:
            first_unique[unique_id] = path

    # entryUUIDs / symbolic ids: one namespace for every object of the message.
    first_id: dict[str, str] = {}
    ids: list[tuple[str, str]] = [(ss.entry_uuid, "SubmissionSet")]
    ids += [(e.entry_uuid, p) for e, p in zip(submission.entries, entry_paths, strict=True)]
    ids += [(a.entry_uuid, _association_path(a, i)) for i, a in enumerate(submission.associations)]
    for object_id, path in ids:
        if not object_id:
            continue
        if object_id in first_id:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.entryUUID",
                    f"entryUUID {object_id!r} is also the id of {first_id[object_id]}: every object of a submission "
                    "needs its own id (e.g. Document01, Document02, as01...)",
                )
            )
        else:
            first_id[object_id] = path
    return problems


def _check_association(
    association: Association, path: str, submission: Submission, message_ids: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    ss_id = submission.submission_set.entry_uuid
    entry_ids = {e.entry_uuid for e in submission.entries}
    problems += _check_object_id(association.entry_uuid, path, "Association")
    problems += _check_status(association.availability_status, path, "Association")

    ends = (("source", association.source), ("target", association.target))
    dangling: set[str] = set()
    for end, ref in ends:
        if not ref:
            problems.append(
                _missing(
                    f"{path}.{end}",
                    end,
                    f"an association needs a {end}: the id of an object in this message or the urn:uuid: of a "
                    "registry object",
                )
            )
            dangling.add(end)
        elif ref not in message_ids and not is_registry_reference(ref):
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.{end}",
                    f"{end} {ref!r} is neither an object of this submission nor a registry object: use the id of an "
                    "object in this message or the urn:uuid:<UUID> entryUUID of an object already in the registry",
                )
            )
            dangling.add(end)

    kind = association.type
    if kind is AssociationType.UPDATE_AVAILABILITY_STATUS:
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.type",
                "UpdateAvailabilityStatus associations belong to ITI-57 Update Document Set, not to ITI-41: to replace "
                "a document send an RPLC association instead",
            )
        )
    elif kind is AssociationType.HAS_MEMBER:
        problems += _check_has_member(association, path, ss_id, entry_ids, message_ids, "target" in dangling)
    else:  # document relationship: new entry (in this message) -> existing entry (in the registry)
        if "source" not in dangling and association.source not in entry_ids:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.source",
                    f"the source of a document relationship ({kind.short}) must be a DocumentEntry of this "
                    f"submission (the new document), not {association.source!r}",
                )
            )
        if "target" not in dangling and association.target in message_ids:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.target",
                    f"the target of a document relationship ({kind.short}) must be the urn:uuid: entryUUID of a "
                    f"document already in the registry, not {association.target!r}",
                )
            )
        if association.submission_set_status is not None:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.submissionSetStatus",
                    f"a document relationship ({kind.short}) carries no SubmissionSetStatus slot: leave it out",
                )
            )
    return problems


def _check_has_member(
    association: Association,
    path: str,
    ss_id: str,
    entry_ids: set[str],
    message_ids: set[str],
    target_dangling: bool,
) -> list[Problem]:
    if association.source != ss_id:
        if association.source in entry_ids:
            return [
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.source",
                    f"a HasMember association goes from a SubmissionSet or Folder to its member, not from the "
                    f"DocumentEntry {association.source!r}: set source to the SubmissionSet ({ss_id!r})",
                )
            ]
        return []
    status = association.submission_set_status
    if status is None and association.target in message_ids and association.target not in entry_ids:
        return []  # SubmissionSet HasMember another object of the message (an association): no status slot
    if status is None:
        return [
            _missing(
                f"{path}.submissionSetStatus",
                "SubmissionSetStatus",
                "a HasMember association from the SubmissionSet needs the SubmissionSetStatus slot: Original for a "
                "DocumentEntry submitted here, Reference for one already in the registry",
            )
        ]
    if target_dangling:
        return []
    in_message = association.target in message_ids
    if status is SubmissionSetStatus.ORIGINAL and not in_message:
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.target",
                f"SubmissionSetStatus is Original but the target {association.target!r} is not in this submission: "
                "use Reference for an entry already in the registry, or include the DocumentEntry",
            )
        ]
    if status is SubmissionSetStatus.REFERENCE and in_message:
        return [
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{path}.submissionSetStatus",
                f"SubmissionSetStatus is Reference but the target {association.target!r} is submitted here: use "
                "Original for a DocumentEntry of this submission",
            )
        ]
    return []


def validate_submission(
    submission: Submission,
    *,
    value_sets: CodeChecker | None = None,
    max_unique_id_length: int = DEFAULT_MAX_UNIQUE_ID_LENGTH,
) -> list[Problem]:
    """Every problem of an ITI-41 submission, in a stable order (SubmissionSet, entries, cross-checks, associations,
    documents).

    An empty list means the registry and repository accept the metadata (patient existence, registry duplicates
    and consent are the hub's concern). ``value_sets`` (e.g. :class:`~rsb_connector.metadata.valuesets.ValueSets`)
    turns on value set checks; ``max_unique_id_length`` is the uniqueId limit (128 by ITI TF-3).
    """
    ss = submission.submission_set
    problems = validate_submission_set(ss, value_sets=value_sets, max_unique_id_length=max_unique_id_length)
    paths = [entry_path(e, i) for i, e in enumerate(submission.entries)]
    ss_patient = _patient_key(ss.patient_id) if ss.patient_id else None

    for entry, path in zip(submission.entries, paths, strict=True):
        problems += validate_entry(entry, path=path, value_sets=value_sets, max_unique_id_length=max_unique_id_length)
        if entry.object_type == DOCUMENT_ENTRY_ON_DEMAND:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.objectType",
                    f"ITI-41 submits stable documents only: send objectType {DOCUMENT_ENTRY_STABLE} with the document "
                    "(On-Demand entries are registered by ITI-61)",
                )
            )
        entry_patient = _patient_key(entry.patient_id) if entry.patient_id else None
        if entry_patient and ss_patient and entry_patient != ss_patient:
            problems.append(
                _problem(
                    PATIENT_ID_DOES_NOT_MATCH,
                    f"{path}.patientId",
                    f"patientId {_mask(entry_patient[0])} (authority {entry_patient[1]}) is not the SubmissionSet "
                    f"patient {_mask(ss_patient[0])} (authority {ss_patient[1]}): every DocumentEntry of a submission "
                    "must carry the SubmissionSet's patientId; submit other patients' documents separately",
                )
            )

    problems += _check_duplicates(submission, paths)

    message_ids = {ss.entry_uuid} | {e.entry_uuid for e in submission.entries}
    message_ids |= {a.entry_uuid for a in submission.associations}
    message_ids.discard("")
    for i, association in enumerate(submission.associations):
        problems += _check_association(association, _association_path(association, i), submission, message_ids)

    # Each DocumentEntry is a member of the SubmissionSet (HasMember, SubmissionSetStatus=Original).
    for entry, path in zip(submission.entries, paths, strict=True):
        if not entry.entry_uuid or not ss.entry_uuid:
            continue  # a missing id is reported above; membership cannot be judged without it
        memberships = [
            a
            for a in submission.associations
            if a.type is AssociationType.HAS_MEMBER and a.source == ss.entry_uuid and a.target == entry.entry_uuid
        ]
        if not any(a.submission_set_status is SubmissionSetStatus.ORIGINAL for a in memberships):
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    path,
                    f"the DocumentEntry is not a member of the SubmissionSet: add a HasMember association with source "
                    f"{ss.entry_uuid!r}, target {entry.entry_uuid!r} and SubmissionSetStatus=Original",
                )
            )

    # One Document per (stable) DocumentEntry and vice versa.
    stable_ids = {e.entry_uuid for e in submission.entries if e.object_type != DOCUMENT_ENTRY_ON_DEMAND}
    document_ids = set(submission.document_ids)
    for entry, path in zip(submission.entries, paths, strict=True):
        if entry.entry_uuid and entry.entry_uuid in stable_ids and entry.entry_uuid not in document_ids:
            problems.append(
                _problem(
                    MISSING_DOCUMENT,
                    path,
                    f"no Document is attached for this DocumentEntry: attach its content as a Document whose id is "
                    f"{entry.entry_uuid!r}",
                )
            )
    seen_documents: set[str] = set()
    for document_id in submission.document_ids:
        path = f"Document[{document_id}]"
        if document_id in seen_documents:
            problems.append(
                _problem(
                    REPOSITORY_METADATA_ERROR,
                    path,
                    f"the Document {document_id!r} is attached twice: attach each document once",
                )
            )
            continue
        seen_documents.add(document_id)
        if document_id not in stable_ids:
            problems.append(
                _problem(
                    MISSING_DOCUMENT_METADATA,
                    path,
                    f"the Document {document_id!r} has no DocumentEntry: add a DocumentEntry whose entryUUID is "
                    f"{document_id!r}, or leave the document out",
                )
            )
    return problems


def check_submission(
    submission: Submission,
    *,
    value_sets: CodeChecker | None = None,
    max_unique_id_length: int = DEFAULT_MAX_UNIQUE_ID_LENGTH,
) -> None:
    """Raise :class:`~rsb_connector.errors.MetadataError` carrying every problem when any has error severity.

    Warnings alone do not raise.
    """
    problems = validate_submission(submission, value_sets=value_sets, max_unique_id_length=max_unique_id_length)
    if any(p.is_error for p in problems):
        raise MetadataError(problems)


# ----------------------------------------------------------------------------------------------- repository


def validate_hash_and_size(entry: DocumentEntry, computed: ContentDigest, *, path: str | None = None) -> list[Problem]:
    """The repository's check of a supplied ``hash`` / ``size`` against the received content (NIST 11981, 12369).

    Absent values are fine (the repository fills them in); the hash is compared case-insensitively. Every mismatch is
    an ``XDSRepositoryMetadataError``. ``path`` defaults to the entry's path.
    """
    base = path if path is not None else entry_path(entry)
    problems: list[Problem] = []
    if entry.hash is not None:
        if not _SHA1_HEX.fullmatch(entry.hash):
            problems.append(
                _problem(
                    REPOSITORY_METADATA_ERROR,
                    f"{base}.hash",
                    f"hash {entry.hash!r} is not a SHA-1 digest: send the 40 hexadecimal digits of the content's "
                    "SHA-1, or leave hash out",
                )
            )
        elif entry.hash.lower() != computed.sha1.lower():
            problems.append(
                _problem(
                    REPOSITORY_METADATA_ERROR,
                    f"{base}.hash",
                    f"hash {entry.hash} does not match the SHA-1 of the document received ({computed.sha1}): send the "
                    "SHA-1 of the exact bytes attached, or leave hash out",
                )
            )
    if entry.size is not None and entry.size != computed.size:
        problems.append(
            _problem(
                REPOSITORY_METADATA_ERROR,
                f"{base}.size",
                f"size {entry.size} does not match the document received ({computed.size} bytes): send the length "
                "in bytes of the exact content attached, or leave size out",
            )
        )
    return problems


# ----------------------------------------------------------------------------------------------- ITI-57


def validate_status_update(
    association: Association, *, path: str | None = None, submission_set_id: str | None = None
) -> list[Problem]:
    """Check an ITI-57 UpdateAvailabilityStatus association (ITI TF-2b 3.57.4.1.3.3.1.2).

    It must carry OriginalStatus and NewStatus, different from each other (Approved / Deprecated), and target the
    ``urn:uuid:`` of a registry object; when ``submission_set_id`` is given its source must be that SubmissionSet.
    Every problem is an ``XDSMetadataUpdateError``.
    """
    base = path if path is not None else _association_path(association, 0)
    problems: list[Problem] = []
    if association.type is not AssociationType.UPDATE_AVAILABILITY_STATUS:
        problems.append(
            _problem(
                METADATA_UPDATE_ERROR,
                f"{base}.type",
                f"a status update needs an association of type {AssociationType.UPDATE_AVAILABILITY_STATUS.value}, "
                f"not {association.type.short}",
            )
        )
    statuses = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved or ...:Deprecated"
    if association.original_status is None:
        problems.append(
            _missing(
                f"{base}.originalStatus",
                "OriginalStatus",
                f"send the object's current status in the OriginalStatus slot ({statuses})",
                code=METADATA_UPDATE_ERROR,
            )
        )
    if association.new_status is None:
        problems.append(
            _missing(
                f"{base}.newStatus",
                "NewStatus",
                f"send the wanted status in the NewStatus slot ({statuses})",
                code=METADATA_UPDATE_ERROR,
            )
        )
    if (
        association.original_status is not None
        and association.new_status is not None
        and association.original_status is association.new_status
    ):
        problems.append(
            _problem(
                METADATA_UPDATE_ERROR,
                f"{base}.newStatus",
                f"NewStatus equals OriginalStatus ({association.new_status.short}): a status update must change the "
                "status (Approved to Deprecated or back)",
            )
        )
    if not association.target or not is_registry_reference(association.target):
        problems.append(
            _problem(
                METADATA_UPDATE_ERROR,
                f"{base}.target",
                f"the target {association.target!r} is not a registry object: send the urn:uuid: entryUUID of the "
                "DocumentEntry, Folder or Association whose status changes",
            )
        )
    if submission_set_id is not None and association.source != submission_set_id:
        problems.append(
            _problem(
                METADATA_UPDATE_ERROR,
                f"{base}.source",
                f"the source {association.source!r} is not the SubmissionSet of this update: set it to "
                f"{submission_set_id!r}",
            )
        )
    return problems
