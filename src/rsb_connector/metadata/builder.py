"""Build complete XDS metadata from a handful of arguments: "five arguments, not fifty".

Example::

    entry = new_document(Path("letter.pdf"), patient="73032929895", document_type="referral",
                         author=professional_author("11478761004", family="Peeters", given="An"))
    submission = new_submission([entry])

:func:`new_document` fills in every field ITI-41 requires, with documented defaults:

- classCode / typeCode: the ``document_type`` (a KMEHR CD-TRANSACTION code such as ``sumehr``); ``class_code``
  overrides the class.
- mimeType: guessed from a path's (or a named stream's) suffix with Python's built-in table; required otherwise.
- formatCode: ``urn:ihe:iti:xds-sd:pdf:2008`` for PDF, else ``urn:ihe:iti:xds:2017:mimeTypeSufficient``.
- healthcareFacilityTypeCode: SNOMED CT ``35971002`` Ambulatory care site (:data:`DEFAULT_FACILITY_TYPE`).
- practiceSettingCode: SNOMED CT ``394802001`` General medicine (:data:`DEFAULT_PRACTICE_SETTING`).
- confidentialityCode ``N`` (normal); languageCode ``fr-BE``; creationTime now (UTC, to the second).
- uniqueId ``2.25.<random UUID as integer>``; entryUUID ``urn:uuid:<random UUID>``.
- patientId and sourcePatientId: the patient's SSIN as ``<ssin>^^^&2.16.840.1.113883.3.6777.5.1&ISO``.
- hash / size: SHA-1 and size of the content, streamed (``compute_digest=False`` to skip).

Codes are given by key (the code, or an alias such as ``"hospital"``, ``"gp"``, ``"pdf"``) and looked up in the
:mod:`~rsb_connector.metadata.valuesets`; an unknown key raises :class:`ValueError` listing the valid ones.
Times are given as aware :class:`~datetime.datetime` (converted to UTC, a naive one is taken as UTC), as DTM text
(kept at the precision given: ``"2024"`` stays a year) or as ISO 8601 text (``2024-05-01T10:00:00-05:00``).
"""

from __future__ import annotations

import mimetypes
import os
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Final

from ..identifiers import NIHDI_OID, Nihii, Ssin
from .content import ContentSource, digest
from .model import (
    Association,
    AssociationType,
    Author,
    Code,
    DocumentEntry,
    Dtm,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from .valuesets import CodeKind, ValueSets, load_value_sets

__all__ = [
    "DEFAULT_FACILITY_TYPE",
    "DEFAULT_PRACTICE_SETTING",
    "DEFAULT_SOURCE_ID",
    "FORMAT_MIME_TYPE_SUFFICIENT",
    "FORMAT_PDF",
    "new_document",
    "new_oid",
    "new_submission",
    "new_uuid",
    "professional_author",
    "to_dtm",
]

DEFAULT_SOURCE_ID: Final = "2.25.218574699959423712980111536068325869413"
"""Development Document Source OID (``2.25.`` + the integer of UUID ``uuid5(NAMESPACE_URL,
'urn:rsb-connector:development-document-source')``). Fine against the mock hub; a production app registers its own
source OID with the hub and passes it as ``source_id``."""

DEFAULT_FACILITY_TYPE: Final = "35971002"
"""Default healthcareFacilityTypeCode: SNOMED CT 35971002 Ambulatory care site."""
DEFAULT_PRACTICE_SETTING: Final = "394802001"
"""Default practiceSettingCode: SNOMED CT 394802001 General medicine."""
FORMAT_PDF: Final = "urn:ihe:iti:xds-sd:pdf:2008"
"""IHE formatCode for PDF documents (XDS-SD), the default for ``application/pdf``."""
FORMAT_MIME_TYPE_SUFFICIENT: Final = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
"""IHE formatCode meaning "the MIME type says it all", the default for everything but PDF."""

_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
# A private table (Python's built-in one), not the host's /etc/mime.types: the same guess on every machine.
_MIME_TYPES = mimetypes.MimeTypes(filenames=())
_HL7_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


def new_uuid() -> str:
    """A fresh ``urn:uuid:`` identifier (entryUUID)."""
    return f"urn:uuid:{uuid.uuid4()}"


def new_oid() -> str:
    """A fresh globally unique OID: ``2.25.<UUID as integer>`` (ISO/IEC 9834-8), at most 44 characters."""
    return f"2.25.{uuid.uuid4().int}"


def to_dtm(value: datetime | str, what: str = "time") -> str:
    """Convert ``value`` to XDS DTM text (``YYYY[MM[DD[hh[mm[ss]]]]]``, UTC).

    An aware datetime is converted to UTC (a naive one is taken as UTC); DTM text is kept at the precision given;
    ISO 8601 text is accepted (``2024-05-01``, ``2024-05-01T10:00:00-05:00``, ``...Z``). ``what`` names the field
    in error messages.

    Raises:
        ValueError: the text is neither DTM nor ISO 8601.
    """
    if isinstance(value, datetime):
        return Dtm.from_datetime(value).value
    text = value.strip()
    if Dtm.problem(text) is None:
        return text
    date_only = _ISO_DATE.fullmatch(text)
    if date_only:
        candidate = "".join(part for part in date_only.groups() if part)
        if Dtm.problem(candidate) is None:
            return candidate
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{what} {value!r} is not a time: give an aware datetime, DTM digits YYYY[MM[DD[hh[mm[ss]]]]] in UTC, "
            "or ISO 8601 text such as 2024-05-01T10:00:00+02:00"
        ) from None
    return Dtm.from_datetime(moment).value


def _optional_dtm(value: datetime | str | None, what: str) -> str | None:
    return None if value is None else to_dtm(value, what)


def _hl7_escape(text: str) -> str:
    for raw, escaped in _HL7_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _guess_mime_type(content: ContentSource) -> str | None:
    name: str | None = None
    if isinstance(content, os.PathLike):
        name = os.fspath(content)
    elif not isinstance(content, bytes | bytearray | memoryview):
        candidate = getattr(content, "name", None)
        name = candidate if isinstance(candidate, str) else None
    if not name:
        return None
    return _MIME_TYPES.guess_type(PurePath(name).name)[0]


def _is_stream(content: ContentSource) -> bool:
    return not isinstance(content, bytes | bytearray | memoryview | os.PathLike)


def _check_service_times(start: str | None, stop: str | None) -> None:
    if start is not None and stop is not None and Dtm(start).lower_bound() > Dtm(stop).upper_bound():
        raise ValueError(
            f"service_start ({start}) is after service_stop ({stop}): the service cannot end before it began"
        )


def new_document(
    content: ContentSource,
    *,
    patient: Ssin | str,
    document_type: str,
    author: Author | None = None,
    mime_type: str | None = None,
    title: str | None = None,
    confidentiality: str = "N",
    language: str = "fr-BE",
    facility_type: str | None = None,
    practice_setting: str | None = None,
    format_code: str | None = None,
    creation_time: datetime | str | None = None,
    service_start: datetime | str | None = None,
    service_stop: datetime | str | None = None,
    event_codes: Sequence[Code] = (),
    class_code: str | None = None,
    unique_id: str | None = None,
    entry_uuid: str | None = None,
    reference_ids: Sequence[str] = (),
    compute_digest: bool = True,
    value_sets: ValueSets | None = None,
) -> DocumentEntry:
    """A complete DocumentEntry for ``content`` (see the module docstring for every default).

    Args:
        content: bytes, a path (:class:`os.PathLike`, e.g. :class:`pathlib.Path`) or a binary stream. A seekable
            stream is put back where it was after hashing; the content is never loaded in memory whole.
        patient: the patient's SSIN (an :class:`Ssin` or text; separators allowed).
        document_type: a CD-TRANSACTION key (``sumehr``, ``labresult``, ``referral``...): the typeCode, and the
            classCode unless ``class_code`` is given.
        author: usually from :func:`professional_author`.
        mime_type: required when it cannot be guessed from a file name.
        confidentiality: a confidentialityCode value set key.
        language: a languageCode value set key.
        facility_type: a healthcareFacilityTypeCode value set key.
        practice_setting: a practiceSettingCode value set key.
        format_code: a formatCode value set key.
        class_code: a classCode value set key.
        creation_time: an aware datetime, DTM or ISO 8601 text.
        service_start: an aware datetime, DTM or ISO 8601 text.
        service_stop: an aware datetime, DTM or ISO 8601 text.
        compute_digest: compute SHA-1 hash and size (the repository computes them anyway; turn off for a stream
            that cannot seek back).

    Raises:
        InvalidIdentifier: the SSIN is not valid.
        ValueError: an unknown value set key (the message lists the valid ones), no MIME type, service start after
            stop, a malformed time or identifier, or hashing a stream that cannot seek back.
        TypeError: ``content`` is text (give a :class:`pathlib.Path` for a file name, or bytes).
    """
    if isinstance(content, str):
        raise TypeError("content is text: pass pathlib.Path(...) for a file, or bytes (e.g. text.encode('utf-8'))")
    sets = value_sets or load_value_sets()
    ssin = patient if isinstance(patient, Ssin) else Ssin(patient)

    resolved_mime = mime_type or _guess_mime_type(content)
    if not resolved_mime:
        raise ValueError(
            "mime_type is required: it cannot be guessed from this content (give mime_type='application/pdf', "
            "'text/plain', 'text/xml'... or a path with a known suffix)"
        )
    if not _MIME.fullmatch(resolved_mime):
        raise ValueError(
            f"mime_type {resolved_mime!r} is not a MIME type (expected type/subtype, e.g. application/pdf)"
        )

    type_code = sets.get(CodeKind.TYPE_CODE, document_type)
    klass = sets.get(CodeKind.CLASS_CODE, class_code if class_code is not None else type_code.code)
    if format_code is None:
        format_code = FORMAT_PDF if resolved_mime.lower() == "application/pdf" else FORMAT_MIME_TYPE_SUFFICIENT
    fmt = sets.get(CodeKind.FORMAT_CODE, format_code)
    facility = sets.get(CodeKind.HEALTHCARE_FACILITY_TYPE_CODE, facility_type or DEFAULT_FACILITY_TYPE)
    practice = sets.get(CodeKind.PRACTICE_SETTING_CODE, practice_setting or DEFAULT_PRACTICE_SETTING)
    confidentiality_code = sets.get(CodeKind.CONFIDENTIALITY_CODE, confidentiality)
    language_code = sets.get(CodeKind.LANGUAGE_CODE, language).code

    created = to_dtm(creation_time, "creation_time") if creation_time is not None else Dtm.now().value
    start = _optional_dtm(service_start, "service_start")
    stop = _optional_dtm(service_stop, "service_stop")
    _check_service_times(start, stop)

    document_unique_id = unique_id if unique_id is not None else new_oid()
    if not document_unique_id or len(document_unique_id) > 128 or any(ch.isspace() for ch in document_unique_id):
        raise ValueError("unique_id must be 1 to 128 characters without spaces (an OID, or OID^extension)")

    sha1: str | None = None
    size: int | None = None
    if compute_digest:
        if _is_stream(content) and not getattr(content, "seekable", lambda: False)():
            raise ValueError(
                "this stream cannot seek back after hashing, so hashing would consume the content: "
                "pass compute_digest=False (the repository computes hash and size) or give bytes or a path"
            )
        result = digest(content)
        sha1, size = result.sha1, result.size

    patient_cx = ssin.to_cx()
    return DocumentEntry(
        entry_uuid=entry_uuid if entry_uuid is not None else new_uuid(),
        unique_id=document_unique_id,
        patient_id=patient_cx,
        source_patient_id=patient_cx,
        mime_type=resolved_mime,
        class_code=klass,
        type_code=type_code,
        format_code=fmt,
        healthcare_facility_type_code=facility,
        practice_setting_code=practice,
        confidentiality_codes=[confidentiality_code],
        event_codes=list(event_codes),
        creation_time=created,
        language_code=language_code,
        service_start_time=start,
        service_stop_time=stop,
        hash=sha1,
        size=size,
        title=title,
        authors=[author] if author is not None and not author.is_empty else [],
        reference_ids=list(reference_ids),
    )


def professional_author(
    nihii: Nihii | str,
    *,
    family: str | None = None,
    given: str | None = None,
    profession: str | None = None,
    institution: str | None = None,
) -> Author:
    """An author who is a healthcare professional identified by NIHII.

    The person is an XCN ``<nihii>^<family>^<given>^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO`` (assigning authority in
    XCN component 9; names HL7-escaped). The role is the KMEHR CD-HCPARTY profession code (``persphysician``,
    ``persnurse``...), by default the one the NIHII's first digit denotes. ``institution`` is an organisation name
    (or a ready-made XON when it contains ``^``).

    Raises:
        InvalidIdentifier: the NIHII is not valid.
        ValueError: no profession given and none follows from the NIHII's first digit, or an empty profession.
    """
    number = nihii if isinstance(nihii, Nihii) else Nihii(nihii)
    role = profession if profession is not None else number.hcparty
    if not role or not role.strip():
        raise ValueError(
            f"give profession= (a CD-HCPARTY code such as 'persphysician'): NIHII first digit "
            f"{number.profession_digit} ({number.profession}) does not tell one"
        )
    person = f"{number}^{_hl7_escape(family or '')}^{_hl7_escape(given or '')}^^^^^^&{NIHDI_OID}&ISO"
    institutions: tuple[str, ...] = ()
    if institution:
        institutions = (institution if "^" in institution else _hl7_escape(institution),)
    return Author(person=person, institutions=institutions, roles=(_hl7_escape(role.strip()),))


def new_submission(
    entries: Sequence[DocumentEntry],
    *,
    source_id: str = DEFAULT_SOURCE_ID,
    author: Author | None = None,
    content_type: str | None = None,
    submission_time: datetime | str | None = None,
    title: str | None = None,
    intended_recipients: Sequence[str] = (),
    entry_uuid: str | None = None,
    unique_id: str | None = None,
    value_sets: ValueSets | None = None,
) -> Submission:
    """A Submission (one SubmissionSet) that submits ``entries``: each tied to the set by a HasMember association
    with ``SubmissionSetStatus=Original``; ``document_ids`` are the entries' entryUUIDs.

    The SubmissionSet's patient is the entries' patient. ``content_type`` is a contentTypeCode key, by default the
    first entry's class code. ``submission_time`` defaults to now (UTC, to the second).

    Raises:
        ValueError: no entries, an entry without patient id, entries of different patients, two entries with the
            same entryUUID or uniqueId, or an unknown content type (the message lists the valid ones).
    """
    if not entries:
        raise ValueError("a submission needs at least one DocumentEntry")
    patients = {entry.patient_id for entry in entries}
    if None in patients:
        raise ValueError("every DocumentEntry needs a patient_id to be submitted")
    if len(patients) != 1:
        raise ValueError(
            f"the entries belong to {len(patients)} different patients: a submission carries one patient's documents"
        )
    uuids = [entry.entry_uuid for entry in entries]
    if len(set(uuids)) != len(uuids):
        raise ValueError("two entries have the same entry_uuid: each DocumentEntry needs its own")
    unique_ids = [entry.unique_id for entry in entries if entry.unique_id]
    if len(set(unique_ids)) != len(unique_ids):
        raise ValueError("two entries have the same unique_id: each document needs its own")

    sets = value_sets or load_value_sets()
    if content_type is None:
        first_class = entries[0].class_code
        if first_class is None:
            raise ValueError("give content_type= (e.g. 'contactreport'): the first entry has no class code")
        content_type = first_class.code
    content_type_code = sets.get(CodeKind.CONTENT_TYPE_CODE, content_type)

    set_uuid = entry_uuid if entry_uuid is not None else new_uuid()
    submission_set = SubmissionSet(
        entry_uuid=set_uuid,
        unique_id=unique_id if unique_id is not None else new_oid(),
        source_id=source_id,
        patient_id=next(iter(patients)),
        submission_time=to_dtm(submission_time, "submission_time")
        if submission_time is not None
        else Dtm.from_datetime(datetime.now(UTC)).value,
        content_type_code=content_type_code,
        authors=[author] if author is not None and not author.is_empty else [],
        title=title,
        intended_recipients=list(intended_recipients),
    )
    associations = [
        Association(
            entry_uuid=new_uuid(),
            type=AssociationType.HAS_MEMBER,
            source=set_uuid,
            target=entry.entry_uuid,
            submission_set_status=SubmissionSetStatus.ORIGINAL,
        )
        for entry in entries
    ]
    return Submission(
        submission_set=submission_set,
        entries=list(entries),
        associations=associations,
        document_ids=list(uuids),
    )
