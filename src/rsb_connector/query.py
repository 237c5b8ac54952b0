"""The stored query model (ITI-18): typed queries, and their parameter names as XDS writes them.

A stored query on the wire is a query id plus ``$Parameter`` slots whose values are SQL-like literals
(``'text'``, ``('a','b')``, numbers). :func:`to_parameters` and :func:`from_parameters` convert between a typed
query and that parameter map; they are pure, so the SDK (building) and the hub (checking, with the exact XDS
error codes) share them.

Multi-valued code parameters follow ITI TF-2a 3.18.4.1.2.3.5: values inside one slot value are OR-ed; for
``$XDSDocumentEntryEventCodeList`` and ``$XDSDocumentEntryConfidentialityCode`` several slot values are AND-ed,
which is why those two are lists of lists here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

from .errors import Problem, QueryError, Severity
from .metadata.model import AssociationType, AvailabilityStatus, Code, Dtm

__all__ = [
    "FindDocuments",
    "FindDocumentsByReferenceId",
    "FindFolders",
    "FindSubmissionSets",
    "GetAll",
    "GetAssociations",
    "GetDocuments",
    "GetDocumentsAndAssociations",
    "GetFolderAndContents",
    "GetFolders",
    "GetFoldersForDocument",
    "GetRelatedDocuments",
    "GetSubmissionSetAndContents",
    "GetSubmissionSets",
    "Query",
    "QueryId",
    "ReturnType",
    "format_value",
    "from_parameters",
    "parse_value",
    "to_parameters",
]


class QueryId(StrEnum):
    """Stored query ids (ITI TF-2a 3.18.4.1.2.3.7)."""

    FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
    FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
    GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
    GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
    GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
    GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
    GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
    GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
    GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
    GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
    GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
    FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"


class ReturnType(StrEnum):
    """``LeafClass`` returns full objects; ``ObjectRef`` only their ids."""

    LEAF_CLASS = "LeafClass"
    OBJECT_REF = "ObjectRef"


# --------------------------------------------------------------------------------------------- value syntax

_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))\s*")


def format_value(value: str | int | Sequence[str]) -> str:
    """Render one slot value: ``'text'``, ``12`` or ``('a','b')`` (quotes doubled inside strings)."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return "(" + ",".join(format_value(v) for v in value) + ")"


def parse_value(text: str) -> list[str]:
    """Parse one slot value into its items: ``('a','b')`` → ``['a', 'b']``, ``'a'`` → ``['a']``, ``12`` → ``['12']``.

    Raises ValueError with a readable reason when the syntax is wrong.
    """
    s = text.strip()
    inner = s[1:-1] if s.startswith("(") and s.endswith(")") else s
    items: list[str] = []
    pos = 0
    while pos < len(inner):
        m = _TOKEN.match(inner, pos)
        if not m:
            raise ValueError(f"cannot read {text!r}: expected 'text', a number, or ('a','b')")
        items.append(m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos < len(inner):
            if inner[pos] != ",":
                raise ValueError(f"cannot read {text!r}: expected ',' between values")
            pos += 1
            if pos >= len(inner):
                raise ValueError(f"cannot read {text!r}: trailing ','")
    if not items:
        raise ValueError(f"cannot read {text!r}: no value")
    return items


def _code_text(code: Code) -> str:
    return f"{code.code}^^{code.scheme}"


def _parse_code(text: str) -> Code:
    code, sep, scheme = text.partition("^^")
    if not sep or not code:
        raise ValueError(f"{text!r} is not a coded value: write code^^scheme")
    return Code(code, scheme)


# --------------------------------------------------------------------------------------------- typed queries


@dataclass(frozen=True, kw_only=True)
class _Query:
    """Common to all stored queries."""

    query_id: ClassVar[QueryId]
    # attribute name → (slot name, kind, required); kind in: str, strs, code_or, code_and, dtm, status, types, int
    params: ClassVar[dict[str, tuple[str, str, bool]]]
    return_type: ReturnType = ReturnType.LEAF_CLASS
    home_community_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class FindDocuments(_Query):
    """FindDocuments: a patient's document entries matching all the given filters."""

    query_id: ClassVar[QueryId] = QueryId.FIND_DOCUMENTS
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {
        "patient_id": ("$XDSDocumentEntryPatientId", "str", True),
        "statuses": ("$XDSDocumentEntryStatus", "status", True),
        "class_codes": ("$XDSDocumentEntryClassCode", "code_or", False),
        "type_codes": ("$XDSDocumentEntryTypeCode", "code_or", False),
        "practice_setting_codes": ("$XDSDocumentEntryPracticeSettingCode", "code_or", False),
        "healthcare_facility_type_codes": ("$XDSDocumentEntryHealthcareFacilityTypeCode", "code_or", False),
        "event_codes": ("$XDSDocumentEntryEventCodeList", "code_and", False),
        "confidentiality_codes": ("$XDSDocumentEntryConfidentialityCode", "code_and", False),
        "format_codes": ("$XDSDocumentEntryFormatCode", "code_or", False),
        "author_persons": ("$XDSDocumentEntryAuthorPerson", "strs", False),
        "creation_time_from": ("$XDSDocumentEntryCreationTimeFrom", "dtm", False),
        "creation_time_to": ("$XDSDocumentEntryCreationTimeTo", "dtm", False),
        "service_start_time_from": ("$XDSDocumentEntryServiceStartTimeFrom", "dtm", False),
        "service_start_time_to": ("$XDSDocumentEntryServiceStartTimeTo", "dtm", False),
        "service_stop_time_from": ("$XDSDocumentEntryServiceStopTimeFrom", "dtm", False),
        "service_stop_time_to": ("$XDSDocumentEntryServiceStopTimeTo", "dtm", False),
        "object_types": ("$XDSDocumentEntryType", "strs", False),
    }
    patient_id: str
    statuses: tuple[AvailabilityStatus, ...] = (AvailabilityStatus.APPROVED,)
    class_codes: tuple[Code, ...] = ()
    type_codes: tuple[Code, ...] = ()
    practice_setting_codes: tuple[Code, ...] = ()
    healthcare_facility_type_codes: tuple[Code, ...] = ()
    event_codes: tuple[tuple[Code, ...], ...] = ()
    confidentiality_codes: tuple[tuple[Code, ...], ...] = ()
    format_codes: tuple[Code, ...] = ()
    author_persons: tuple[str, ...] = ()
    creation_time_from: str | None = None
    creation_time_to: str | None = None
    service_start_time_from: str | None = None
    service_start_time_to: str | None = None
    service_stop_time_from: str | None = None
    service_stop_time_to: str | None = None
    object_types: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FindDocumentsByReferenceId(FindDocuments):
    """FindDocumentsByReferenceId: FindDocuments restricted to entries carrying one of the reference ids."""

    query_id: ClassVar[QueryId] = QueryId.FIND_DOCUMENTS_BY_REFERENCE_ID
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {
        **FindDocuments.params,
        "reference_ids": ("$XDSDocumentEntryReferenceIdList", "strs", True),
    }
    reference_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FindSubmissionSets(_Query):
    """FindSubmissionSets: a patient's submission sets."""

    query_id: ClassVar[QueryId] = QueryId.FIND_SUBMISSION_SETS
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {
        "patient_id": ("$XDSSubmissionSetPatientId", "str", True),
        "statuses": ("$XDSSubmissionSetStatus", "status", True),
        "source_ids": ("$XDSSubmissionSetSourceId", "strs", False),
        "submission_time_from": ("$XDSSubmissionSetSubmissionTimeFrom", "dtm", False),
        "submission_time_to": ("$XDSSubmissionSetSubmissionTimeTo", "dtm", False),
        "author_person": ("$XDSSubmissionSetAuthorPerson", "str", False),
        "content_type_codes": ("$XDSSubmissionSetContentType", "code_or", False),
    }
    patient_id: str
    statuses: tuple[AvailabilityStatus, ...] = (AvailabilityStatus.APPROVED,)
    source_ids: tuple[str, ...] = ()
    submission_time_from: str | None = None
    submission_time_to: str | None = None
    author_person: str | None = None
    content_type_codes: tuple[Code, ...] = ()


@dataclass(frozen=True, kw_only=True)
class FindFolders(_Query):
    """FindFolders (folders are not stored by the mock hub yet: it answers with an empty list)."""

    query_id: ClassVar[QueryId] = QueryId.FIND_FOLDERS
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {
        "patient_id": ("$XDSFolderPatientId", "str", True),
        "statuses": ("$XDSFolderStatus", "status", True),
    }
    patient_id: str
    statuses: tuple[AvailabilityStatus, ...] = (AvailabilityStatus.APPROVED,)


@dataclass(frozen=True, kw_only=True)
class GetAll(_Query):
    """GetAll: every document entry, submission set and association of a patient."""

    query_id: ClassVar[QueryId] = QueryId.GET_ALL
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {
        "patient_id": ("$patientId", "str", True),
        "document_statuses": ("$XDSDocumentEntryStatus", "status", True),
        "submission_set_statuses": ("$XDSSubmissionSetStatus", "status", True),
        "folder_statuses": ("$XDSFolderStatus", "status", False),
    }
    patient_id: str
    document_statuses: tuple[AvailabilityStatus, ...] = (
        AvailabilityStatus.APPROVED,
        AvailabilityStatus.DEPRECATED,
    )
    submission_set_statuses: tuple[AvailabilityStatus, ...] = (AvailabilityStatus.APPROVED,)
    folder_statuses: tuple[AvailabilityStatus, ...] = ()


@dataclass(frozen=True, kw_only=True)
class _ByIds(_Query):
    """Queries addressed by entryUUIDs or uniqueIds (exactly one of the two)."""

    params: ClassVar[dict[str, tuple[str, str, bool]]] = {}
    uuid_slot: ClassVar[str] = ""
    unique_id_slot: ClassVar[str] = ""
    entry_uuids: tuple[str, ...] = ()
    unique_ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetDocuments(_ByIds):
    """GetDocuments: document entries by entryUUID or uniqueId."""

    query_id: ClassVar[QueryId] = QueryId.GET_DOCUMENTS
    uuid_slot: ClassVar[str] = "$XDSDocumentEntryEntryUUID"
    unique_id_slot: ClassVar[str] = "$XDSDocumentEntryUniqueId"


@dataclass(frozen=True, kw_only=True)
class GetDocumentsAndAssociations(GetDocuments):
    """GetDocumentsAndAssociations: document entries plus every association touching them."""

    query_id: ClassVar[QueryId] = QueryId.GET_DOCUMENTS_AND_ASSOCIATIONS


@dataclass(frozen=True, kw_only=True)
class GetSubmissionSets(_Query):
    """GetSubmissionSets: the submission sets that hold the given entries, and those HasMember links."""

    query_id: ClassVar[QueryId] = QueryId.GET_SUBMISSION_SETS
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {"entry_uuids": ("$uuid", "strs", True)}
    entry_uuids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetAssociations(_Query):
    """GetAssociations: associations whose source or target is one of the given objects."""

    query_id: ClassVar[QueryId] = QueryId.GET_ASSOCIATIONS
    params: ClassVar[dict[str, tuple[str, str, bool]]] = {"entry_uuids": ("$uuid", "strs", True)}
    entry_uuids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GetSubmissionSetAndContents(_ByIds):
    """GetSubmissionSetAndContents: a submission set, its entries and associations."""

    query_id: ClassVar[QueryId] = QueryId.GET_SUBMISSION_SET_AND_CONTENTS
    uuid_slot: ClassVar[str] = "$XDSSubmissionSetEntryUUID"
    unique_id_slot: ClassVar[str] = "$XDSSubmissionSetUniqueId"
    single: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class GetFolders(_ByIds):
    """GetFolders (no folders are stored yet)."""

    query_id: ClassVar[QueryId] = QueryId.GET_FOLDERS
    uuid_slot: ClassVar[str] = "$XDSFolderEntryUUID"
    unique_id_slot: ClassVar[str] = "$XDSFolderUniqueId"


@dataclass(frozen=True, kw_only=True)
class GetFolderAndContents(_ByIds):
    """GetFolderAndContents (no folders are stored yet)."""

    query_id: ClassVar[QueryId] = QueryId.GET_FOLDER_AND_CONTENTS
    uuid_slot: ClassVar[str] = "$XDSFolderEntryUUID"
    unique_id_slot: ClassVar[str] = "$XDSFolderUniqueId"
    single: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class GetFoldersForDocument(_ByIds):
    """GetFoldersForDocument (no folders are stored yet)."""

    query_id: ClassVar[QueryId] = QueryId.GET_FOLDERS_FOR_DOCUMENT
    uuid_slot: ClassVar[str] = "$XDSDocumentEntryEntryUUID"
    unique_id_slot: ClassVar[str] = "$XDSDocumentEntryUniqueId"
    single: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class GetRelatedDocuments(_ByIds):
    """GetRelatedDocuments: entries related to one entry by the given association types, and those associations."""

    query_id: ClassVar[QueryId] = QueryId.GET_RELATED_DOCUMENTS
    uuid_slot: ClassVar[str] = "$XDSDocumentEntryEntryUUID"
    unique_id_slot: ClassVar[str] = "$XDSDocumentEntryUniqueId"
    single: ClassVar[bool] = True
    association_types: tuple[AssociationType, ...] = tuple(t for t in AssociationType if t.is_relationship)


Query: TypeAlias = (
    FindDocuments
    | FindDocumentsByReferenceId
    | FindSubmissionSets
    | FindFolders
    | GetAll
    | GetDocuments
    | GetDocumentsAndAssociations
    | GetSubmissionSets
    | GetAssociations
    | GetSubmissionSetAndContents
    | GetFolders
    | GetFolderAndContents
    | GetFoldersForDocument
    | GetRelatedDocuments
)

_BY_ID: dict[str, type[_Query]] = {
    cls.query_id.value: cls
    for cls in (
        FindDocuments,
        FindDocumentsByReferenceId,
        FindSubmissionSets,
        FindFolders,
        GetAll,
        GetDocuments,
        GetDocumentsAndAssociations,
        GetSubmissionSets,
        GetAssociations,
        GetSubmissionSetAndContents,
        GetFolders,
        GetFolderAndContents,
        GetFoldersForDocument,
        GetRelatedDocuments,
    )
}

_ASSOCIATION_TYPE_SLOT = "$AssociationTypes"

# ------------------------------------------------------------------------------------------ to/from parameters


def to_parameters(query: Query) -> dict[str, list[str]]:
    """The query's ``$Parameter`` slots, each a list of slot values in XDS literal syntax."""
    out: dict[str, list[str]] = {}
    if isinstance(query, _ByIds):
        if query.entry_uuids:
            out[query.uuid_slot] = [format_value(list(query.entry_uuids))]
        if query.unique_ids:
            out[query.unique_id_slot] = [format_value(list(query.unique_ids))]
        if isinstance(query, GetRelatedDocuments):
            out[_ASSOCIATION_TYPE_SLOT] = [format_value([t.value for t in query.association_types])]
        if getattr(query, "single", False):
            for slot in (query.uuid_slot, query.unique_id_slot):
                if slot in out:
                    ids = query.entry_uuids if slot == query.uuid_slot else query.unique_ids
                    out[slot] = [format_value(ids[0])]
        return out
    for name, (slot, kind, _required) in query.params.items():
        value: Any = getattr(query, name)
        if value is None or value == ():
            continue
        if kind == "str":
            out[slot] = [format_value(value)]
        elif kind == "strs":
            out[slot] = [format_value(list(value))]
        elif kind == "status":
            out[slot] = [format_value([s.value for s in value])]
        elif kind == "code_or":
            out[slot] = [format_value([_code_text(c) for c in value])]
        elif kind == "code_and":
            out[slot] = [format_value([_code_text(c) for c in group]) for group in value]
        elif kind == "dtm":
            out[slot] = [str(value)]
    return out


def _problem(code: str, slot: str, message: str) -> Problem:
    return Problem(code, message, path=slot)


def from_parameters(
    query_id: str,
    parameters: Mapping[str, Sequence[str]],
    *,
    return_type: str = "LeafClass",
    home_community_id: str | None = None,
) -> Query:
    """Build a typed query from its id and ``$Parameter`` slots, checking them as a registry must.

    Raises :class:`QueryError` with ``XDSUnknownStoredQuery``, ``XDSStoredQueryMissingParam`` or
    ``XDSStoredQueryParamNumber`` (and ``XDSRegistryError`` for unreadable values), listing every problem.
    """
    cls = _BY_ID.get(query_id)
    if cls is None:
        raise QueryError(
            [
                _problem(
                    "XDSUnknownStoredQuery",
                    "id",
                    f"{query_id!r} is not a stored query id this registry knows (see ITI TF-2a 3.18.4.1.2.3.7)",
                )
            ]
        )
    try:
        rtype = ReturnType(return_type)
    except ValueError:
        raise QueryError(
            [
                _problem(
                    "XDSRegistryError",
                    "returnType",
                    f"returnType {return_type!r}: use LeafClass or ObjectRef",
                )
            ]
        ) from None
    problems: list[Problem] = []
    kwargs: dict[str, Any] = {"return_type": rtype, "home_community_id": home_community_id}

    def items(slot: str) -> list[list[str]]:
        out: list[list[str]] = []
        for raw in parameters.get(slot, ()):
            try:
                out.append(parse_value(raw))
            except ValueError as exc:
                problems.append(_problem("XDSRegistryError", slot, str(exc)))
        return out

    if issubclass(cls, _ByIds):
        uuids = [v for vs in items(cls.uuid_slot) for v in vs]
        uids = [v for vs in items(cls.unique_id_slot) for v in vs]
        if not uuids and not uids:
            problems.append(
                _problem(
                    "XDSStoredQueryMissingParam",
                    f"{cls.uuid_slot}|{cls.unique_id_slot}",
                    f"give {cls.uuid_slot} or {cls.unique_id_slot}",
                )
            )
        elif uuids and uids:
            problems.append(
                _problem(
                    "XDSStoredQueryParamNumber",
                    f"{cls.uuid_slot}|{cls.unique_id_slot}",
                    f"give {cls.uuid_slot} or {cls.unique_id_slot}, not both",
                )
            )
        elif getattr(cls, "single", False) and len(uuids or uids) > 1:
            slot = cls.uuid_slot if uuids else cls.unique_id_slot
            problems.append(_problem("XDSStoredQueryParamNumber", slot, f"{slot} takes exactly one value"))
        kwargs["entry_uuids"] = tuple(uuids)
        kwargs["unique_ids"] = tuple(uids)
        if cls is GetRelatedDocuments:
            raw_types = [v for vs in items(_ASSOCIATION_TYPE_SLOT) for v in vs]
            if not raw_types:
                problems.append(
                    _problem(
                        "XDSStoredQueryMissingParam",
                        _ASSOCIATION_TYPE_SLOT,
                        "$AssociationTypes is required (e.g. ('urn:ihe:iti:2007:AssociationType:RPLC'))",
                    )
                )
            types: list[AssociationType] = []
            for t in raw_types:
                try:
                    types.append(AssociationType(t))
                except ValueError:
                    problems.append(
                        _problem("XDSRegistryError", _ASSOCIATION_TYPE_SLOT, f"{t!r} is not an association type")
                    )
            kwargs["association_types"] = tuple(types)
    else:
        known = {slot for slot, _k, _r in cls.params.values()}
        for name, (slot, kind, required) in cls.params.items():
            values = items(slot)
            if not values:
                if required and any(p.path == slot for p in problems):
                    continue  # unreadable, already reported
                if required:
                    problems.append(_problem("XDSStoredQueryMissingParam", slot, f"{slot} is required"))
                continue
            if kind in ("str", "dtm") and len(values) > 1:
                problems.append(
                    _problem("XDSStoredQueryParamNumber", slot, f"{slot} was given {len(values)} times; give it once")
                )
                continue
            if kind != "code_and":
                # Several Value elements of a multi-valued parameter form one OR list (ITI TF-2a 3.18.4.1.2.3.5).
                values = [[v for vs in values for v in vs]]
            flat = values[0]
            try:
                if kind == "str":
                    if len(flat) != 1:
                        raise ValueError(f"{slot} takes a single value")
                    kwargs[name] = flat[0]
                elif kind == "strs":
                    kwargs[name] = tuple(flat)
                elif kind == "status":
                    kwargs[name] = tuple(AvailabilityStatus.parse(v) for v in flat)
                elif kind == "code_or":
                    kwargs[name] = tuple(_parse_code(v) for v in flat)
                elif kind == "code_and":
                    kwargs[name] = tuple(tuple(_parse_code(v) for v in group) for group in values)
                elif kind == "dtm":
                    if len(flat) != 1:
                        raise ValueError(f"{slot} takes a single time")
                    problem = Dtm.problem(flat[0])
                    if problem:
                        raise ValueError(problem)
                    kwargs[name] = flat[0]
            except ValueError as exc:
                problems.append(_problem("XDSRegistryError", slot, str(exc)))
        unknown = [s for s in parameters if s not in known]
        for slot in unknown:
            problems.append(
                Problem(
                    "XDSRegistryError",
                    f"{slot} is not a parameter of this stored query",
                    path=slot,
                    severity=Severity.WARNING,
                )
            )
    errors = [p for p in problems if p.is_error]
    if errors:
        raise QueryError(problems)
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in kwargs.items() if k in names})  # type: ignore[return-value]
