"""The XDS metadata model: DocumentEntry, SubmissionSet, Association, Code, Author.

Plain typed Python: no XML, no FHIR. The model holds what a message said, even when it is wrong, so that
validation (:mod:`rsb_connector.metadata.rules`) can report *every* problem rather than the first one a parser
would trip on. Times are DTM text (``YYYY[MM[DD[hh[mm[ss]]]]]``, UTC) kept at the precision they were given;
:class:`Dtm` parses and builds them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal

__all__ = [
    "DOCUMENT_ENTRY_ON_DEMAND",
    "DOCUMENT_ENTRY_STABLE",
    "Association",
    "AssociationType",
    "Author",
    "AvailabilityStatus",
    "Code",
    "DocumentEntry",
    "Dtm",
    "Submission",
    "SubmissionSet",
    "SubmissionSetStatus",
]

DOCUMENT_ENTRY_STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DOCUMENT_ENTRY_ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"


class AvailabilityStatus(StrEnum):
    """Registry availability status of an object."""

    APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"

    @property
    def short(self) -> str:
        return self.value.rsplit(":", 1)[1]

    @classmethod
    def parse(cls, text: str) -> AvailabilityStatus:
        """Accept the URN or the short name (``Approved``/``Deprecated``, any case)."""
        for status in cls:
            if text == status.value or text.lower() == status.short.lower():
                return status
        raise ValueError(f"unknown availability status {text!r}: use Approved or Deprecated")


class AssociationType(StrEnum):
    """Association types of XDS.b (ITI TF-3 4.2.2)."""

    HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
    APND = "urn:ihe:iti:2007:AssociationType:APND"
    XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
    XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
    SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
    UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"

    @property
    def short(self) -> str:
        return self.value.rsplit(":", 1)[1]

    @property
    def is_relationship(self) -> bool:
        """Document relationship (RPLC, APND, XFRM, XFRM_RPLC, signs), as opposed to HasMember."""
        return self not in (AssociationType.HAS_MEMBER, AssociationType.UPDATE_AVAILABILITY_STATUS)

    @property
    def replaces(self) -> bool:
        """RPLC and XFRM_RPLC deprecate their target."""
        return self in (AssociationType.RPLC, AssociationType.XFRM_RPLC)


class SubmissionSetStatus(StrEnum):
    """The ``SubmissionSetStatus`` slot of a HasMember association from a SubmissionSet."""

    ORIGINAL = "Original"
    REFERENCE = "Reference"


_DTM = re.compile(r"\d{4}(?:\d{2}){0,5}")


@dataclass(frozen=True, slots=True, order=True)
class Dtm:
    """An HL7 V2 DTM time as XDS uses it: ``YYYY[MM[DD[hh[mm[ss]]]]]``, UTC, no offset.

    The precision given is kept (``Dtm("2004")`` stays a year). Ordering compares the text, which for DTM of the
    same precision is chronological; use :meth:`lower_bound` / :meth:`upper_bound` to compare across precisions.
    """

    value: str

    def __post_init__(self) -> None:
        problem = Dtm.problem(self.value)
        if problem:
            raise ValueError(problem)

    @staticmethod
    def problem(text: str) -> str | None:
        """Why ``text`` is not a DTM, or None when it is one."""
        if not _DTM.fullmatch(text):
            return (
                f"{text!r} is not a DTM time: use UTC digits YYYY[MM[DD[hh[mm[ss]]]]] "
                "(e.g. 20241224 or 20241224153000), no separators, no time zone offset"
            )
        v = (text + "0101000000"[len(text) - 4 :])[:14]
        try:
            datetime(int(v[0:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), int(v[10:12]), int(v[12:14]), tzinfo=UTC)
        except ValueError as exc:
            return f"{text!r} is not a real time ({exc})"
        return None

    @classmethod
    def from_datetime(cls, moment: datetime, precision: Literal[4, 6, 8, 10, 12, 14] = 14) -> Dtm:
        """Convert an aware datetime to UTC DTM (a naive one is taken as UTC)."""
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return cls(moment.strftime("%Y%m%d%H%M%S")[:precision])

    @classmethod
    def now(cls) -> Dtm:
        return cls.from_datetime(datetime.now(UTC))

    @property
    def precision(self) -> int:
        """Number of digits given: 4 (year) up to 14 (second)."""
        return len(self.value)

    def lower_bound(self) -> str:
        """The earliest second this time may denote, as 14 digits."""
        return (self.value + "0101000000"[self.precision - 4 :])[:14]

    def upper_bound(self) -> str:
        """The latest second this time may denote, as 14 digits (day 31 is fine for comparisons)."""
        return (self.value + "1231235959"[self.precision - 4 :])[:14]

    def to_datetime(self) -> datetime:
        """The earliest instant this time denotes, as an aware UTC datetime."""
        v = self.lower_bound()
        return datetime(int(v[0:4]), int(v[4:6]), int(v[6:8]), int(v[8:10]), int(v[10:12]), int(v[12:14]), tzinfo=UTC)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: ``code`` in coding ``scheme`` (an OID or a named scheme), with an optional display name."""

    code: str
    scheme: str
    display: str | None = None

    def same_concept(self, other: Code) -> bool:
        """Equal code and scheme (display names do not matter)."""
        return self.code == other.code and self.scheme == other.scheme

    def __str__(self) -> str:
        return f"{self.code}^^{self.scheme}"


@dataclass(frozen=True, slots=True)
class Author:
    """An author of a document or submission set (XDS author classification).

    ``person`` is an XCN (``ID^Family^Given^^^^^^&OID&ISO`` (assigning authority in component 9)), institutions
    are XON, roles / specialties free text or ``code^^^&OID&ISO``.
    """

    person: str | None = None
    institutions: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    telecommunications: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.person or self.institutions or self.roles or self.specialties or self.telecommunications)


@dataclass(slots=True, kw_only=True)
class DocumentEntry:
    """Metadata of one document (XDS DocumentEntry).

    ``entry_uuid`` is the registry object id: ``urn:uuid:…`` once registered, or a symbolic id (``Document01``)
    inside a submission, which the registry replaces by a UUID. ``unique_id`` is the document's global id (an OID
    or ``OID^extension``) that stays with the document across systems.
    """

    entry_uuid: str
    unique_id: str | None = None
    patient_id: str | None = None
    mime_type: str | None = None
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    creation_time: str | None = None
    language_code: str | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    legal_authenticator: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    hash: str | None = None
    size: int | None = None
    repository_unique_id: str | None = None
    uri: str | None = None
    title: str | None = None
    comments: str | None = None
    authors: list[Author] = field(default_factory=list)
    reference_ids: list[str] = field(default_factory=list)
    availability_status: AvailabilityStatus = AvailabilityStatus.APPROVED
    object_type: str = DOCUMENT_ENTRY_STABLE
    home_community_id: str | None = None
    logical_id: str | None = None
    version: str | None = None
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class SubmissionSet:
    """Metadata of one submission (XDS SubmissionSet)."""

    entry_uuid: str
    unique_id: str | None = None
    source_id: str | None = None
    patient_id: str | None = None
    submission_time: str | None = None
    content_type_code: Code | None = None
    authors: list[Author] = field(default_factory=list)
    title: str | None = None
    comments: str | None = None
    intended_recipients: list[str] = field(default_factory=list)
    availability_status: AvailabilityStatus = AvailabilityStatus.APPROVED
    home_community_id: str | None = None


@dataclass(slots=True, kw_only=True)
class Association:
    """An association between two registry objects.

    For HasMember from a SubmissionSet to a DocumentEntry, ``submission_set_status`` is ``Original`` (the entry
    is submitted here) or ``Reference`` (it already exists). For document relationships (RPLC, APND...), the
    source is the new document and the target the existing one.
    """

    entry_uuid: str
    type: AssociationType
    source: str
    target: str
    submission_set_status: SubmissionSetStatus | None = None
    availability_status: AvailabilityStatus = AvailabilityStatus.APPROVED
    # ITI-57 "update availability status" associations carry these two slots.
    original_status: AvailabilityStatus | None = None
    new_status: AvailabilityStatus | None = None


@dataclass(slots=True, kw_only=True)
class Submission:
    """What one ITI-41 Provide and Register carries: one SubmissionSet, its entries, associations and the ids
    of the documents attached (a Document element's id is its DocumentEntry's ``entry_uuid``)."""

    submission_set: SubmissionSet
    entries: list[DocumentEntry] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    document_ids: list[str] = field(default_factory=list)

    def entry(self, entry_uuid: str) -> DocumentEntry | None:
        for e in self.entries:
            if e.entry_uuid == entry_uuid:
                return e
        return None

    def by_id(self) -> Mapping[str, DocumentEntry]:
        return {e.entry_uuid: e for e in self.entries}
