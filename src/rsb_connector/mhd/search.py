"""ITI-67 Find Document References: search parameters <-> typed stored queries, and the searchset Bundle.

:func:`parse_search` reads the parameters of ``GET /DocumentReference?...`` (or the form body of ``POST _search``)
into the query the registry runs:

============================  ==========================================================================
``patient`` / ``patient.identifier``  $XDSDocumentEntryPatientId (``Patient/<id>`` resolved by the caller,
                                      or ``system|value``; ``patient:identifier`` is accepted too)
``status``                    $XDSDocumentEntryStatus (current -> Approved, superseded -> Deprecated)
``category`` / ``type``       classCode / typeCode            (``system|code``, comma = OR)
``setting`` / ``facility``    practiceSettingCode / healthcareFacilityTypeCode
``format``                    formatCode
``event`` / ``security-label``  eventCodeList / confidentialityCode (comma = OR, repeated = AND)
``creation`` (and ``date``)   CreationTimeFrom/To (``ge``/``gt`` -> From, ``le``/``lt`` -> To, ``eq`` both)
``period``                    ``ge``/``gt`` -> ServiceStopTimeFrom, ``le``/``lt`` -> ServiceStartTimeTo,
                              ``eq`` -> ServiceStartTimeFrom + ServiceStopTimeTo (the period lies inside)
``author.family`` / ``.given``  $XDSDocumentEntryAuthorPerson LIKE patterns (``%^Family%``, ``%^%^Given%``)
``related``                   FindDocumentsByReferenceId ($XDSDocumentEntryReferenceIdList)
``identifier`` / ``_id``      GetDocuments by uniqueId (``urn:oid:``) or entryUUID (``urn:uuid:``)
============================  ==========================================================================

XDS bounds are "From <= t < To", so FHIR ``le2024-12-31`` becomes To ``20250101`` (the next day) and
``gt2024-01-01`` From ``20240102``. ``date`` (``DocumentReference.date``) has no XDS attribute; it is read as
``creation``. Values may arrive percent-encoded (fhirclient sends ``%3A`` and ``%7C``) or raw (fhirpy): both are
accepted. Result-control parameters (``_count``, ``_sort``, ``_format``...) are ignored; unknown parameters are
ignored unless ``strict``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final, TypeAlias
from urllib.parse import unquote

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.documentreference import DocumentReference
from pydantic import BaseModel

from ..errors import InvalidIdentifier, Problem, QueryError
from ..identifiers import SSIN_OID, Ssin, format_cx, parse_cx
from ..metadata.model import AvailabilityStatus, Code, DocumentEntry, Dtm
from ..metadata.valuesets import CodeKind, ValueSets, load_value_sets
from ..query import FindDocuments, FindDocumentsByReferenceId, GetDocuments
from . import constants as c
from .mapping import (
    PatientResolver,
    as_json,
    document_reference_to_entry,
    dtm_to_fhir_time,
    entry_to_document_reference,
    fhir_time_to_dtm,
    identifier_to_unique_id,
    resource_id_for,
    scheme_to_system,
    system_to_scheme,
    unique_id_to_identifier,
)
from .outcome import operation_outcome_to_problems

__all__ = [
    "IGNORED_PARAMETERS",
    "MhdQuery",
    "parse_search",
    "parse_search_result_bundle",
    "search_result_bundle",
    "to_search_params",
]

MhdQuery: TypeAlias = FindDocuments | FindDocumentsByReferenceId | GetDocuments
"""What an ITI-67 search becomes."""

IGNORED_PARAMETERS: Final = frozenset(
    {"_format", "_count", "_sort", "_summary", "_elements", "_include", "_revinclude", "_total", "_pretty", "_offset"}
)
"""Result-control parameters that do not change which documents match."""

MISSING_PARAM: Final = "XDSStoredQueryMissingParam"
PARAM_NUMBER: Final = "XDSStoredQueryParamNumber"
REGISTRY_ERROR: Final = "XDSRegistryError"
UNKNOWN_PATIENT_ID: Final = "XDSUnknownPatientId"

_CODE_PARAMS: Final = {
    "category": ("class_codes", CodeKind.CLASS_CODE),
    "type": ("type_codes", CodeKind.TYPE_CODE),
    "setting": ("practice_setting_codes", CodeKind.PRACTICE_SETTING_CODE),
    "facility": ("healthcare_facility_type_codes", CodeKind.HEALTHCARE_FACILITY_TYPE_CODE),
    "format": ("format_codes", CodeKind.FORMAT_CODE),
}
_AND_CODE_PARAMS: Final = {
    "event": ("event_codes", CodeKind.EVENT_CODE_LIST),
    "security-label": ("confidentiality_codes", CodeKind.CONFIDENTIALITY_CODE),
}
_STATUS: Final = {"current": AvailabilityStatus.APPROVED, "superseded": AvailabilityStatus.DEPRECATED}
_STATUS_NAME: Final = {v: k for k, v in _STATUS.items()}
_DATE_PREFIX: Final = re.compile(r"(eq|ne|gt|lt|ge|le|sa|eb|ap)?(\d.*)")
_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_OID: Final = re.compile(r"[0-2](?:\.(?:0|[1-9]\d*))+")
_FAMILY_LIKE: Final = re.compile(r"%\^([^%^]+)%")
_GIVEN_LIKE: Final = re.compile(r"%\^%\^([^%^]+)%")
_BOTH_LIKE: Final = re.compile(r"%\^([^%^]+)%\^([^%^]+)%")
_KNOWN: Final = frozenset(
    {
        "patient",
        "patient.identifier",
        "status",
        "date",
        "creation",
        "period",
        "author.given",
        "author.family",
        "related",
        "related.identifier",
        "identifier",
        "_id",
        *_CODE_PARAMS,
        *_AND_CODE_PARAMS,
    }
)


# ================================================================================================ value syntax


def _split_or(value: str) -> list[str]:
    """Split a search value on unescaped commas and unescape ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append("\\" + value[i + 1])
            i += 2
            continue
        if ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p for p in parts if p != ""]


def _split_token(value: str) -> tuple[str | None, str]:
    """``system|code`` -> (system, code); ``code`` -> (None, code); ``|code`` -> ("", code); escapes undone."""
    i = 0
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == "|":
            return _unescape(value[:i]), _unescape(value[i + 1 :])
        i += 1
    return None, _unescape(value)


def _unescape(text: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", text)


def _escape(text: str) -> str:
    return re.sub(r"([\\,|$])", r"\\\1", text)


def _decode(text: str) -> str:
    """Percent-decode once when the text holds an escape (``%3A``, ``%7C``...): fhirclient-style values."""
    return unquote(text) if re.search(r"%[0-9A-Fa-f]{2}", text) else text


def _next_dtm(dtm: str) -> str:
    """The first DTM after the period ``dtm`` denotes, at the same precision (``2024`` -> ``2025``...)."""
    value = Dtm(dtm).value
    if len(value) == 4:
        return f"{int(value) + 1:04d}"
    if len(value) == 6:
        year, month = int(value[:4]), int(value[4:6])
        return f"{year + month // 12:04d}{month % 12 + 1:02d}"
    step = {8: timedelta(days=1), 10: timedelta(hours=1), 12: timedelta(minutes=1), 14: timedelta(seconds=1)}
    moment = Dtm(value).to_datetime() + step[len(value)]
    return Dtm.from_datetime(moment).value[: len(value)]


def _is_next(lower: str, upper: str) -> bool:
    try:
        return _next_dtm(lower) == upper
    except ValueError:
        return False


# ================================================================================================ parsing


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, code: str, param: str, message: str) -> None:
        self.problems.append(Problem(code, message, path=param))


def _normalise(params: Mapping[str, Sequence[str]] | Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    pairs: list[tuple[str, str]] = []
    if isinstance(params, Mapping):
        for key, values in params.items():
            pairs += [(key, v) for v in ([values] if isinstance(values, str) else values)]
    else:
        pairs = list(params)
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        name = _decode(key).strip()
        if name in ("patient:identifier", "subject:identifier", "subject.identifier"):
            name = "patient.identifier"
        elif name == "related:identifier":
            name = "related.identifier"
        elif name == "subject":
            name = "patient"
        out.setdefault(name, []).append(_decode(value))
    return out


def _patient_from_token(value: str, collector: _Collector, param: str) -> str | None:
    system, ident = _split_token(value)
    if not ident:
        collector.add(MISSING_PARAM, param, f"{param} has no value: send {c.IDENTIFIER_SYSTEMS[SSIN_OID]}|<SSIN>")
        return None
    if not system:
        if Ssin.is_valid(ident):
            return Ssin(ident).to_cx()
        collector.add(
            UNKNOWN_PATIENT_ID,
            param,
            f"{param} has no system: send {c.IDENTIFIER_SYSTEMS[SSIN_OID]}|<SSIN> (or urn:oid:<OID>|<id>)",
        )
        return None
    oid = c.OID_BY_SYSTEM.get(system) or (system[8:] if system.startswith("urn:oid:") else None)
    if oid is None or not _OID.fullmatch(oid):
        collector.add(
            UNKNOWN_PATIENT_ID,
            param,
            f"the patient identifier system {system!r} is not known: use {c.IDENTIFIER_SYSTEMS[SSIN_OID]} (SSIN)",
        )
        return None
    try:
        return format_cx(ident, oid)
    except InvalidIdentifier as exc:
        collector.add(REGISTRY_ERROR, param, f"{param}: {exc.reason}")
        return None


def _codes(values: list[str], kind: str, param: str, collector: _Collector, sets: ValueSets) -> tuple[Code, ...]:
    out: list[Code] = []
    for token in _split_or(values[0]) if values else []:
        system, code = _split_token(token)
        if not code:
            collector.add(REGISTRY_ERROR, param, f"{param} value {token!r} has no code: send system|code")
            continue
        if system:
            out.append(Code(code, system_to_scheme(system, kind, sets)))
            continue
        known = sets.value_set(kind).find(code)
        if known is None:
            collector.add(
                REGISTRY_ERROR,
                param,
                f"{param} value {code!r} has no system and is not a known {kind}: send system|code",
            )
            continue
        out.append(Code(known.code, known.scheme))
    return tuple(out)


def _dates(values: list[str], param: str, collector: _Collector) -> list[tuple[str, str]]:
    """(prefix, DTM) for each date value."""
    out: list[tuple[str, str]] = []
    for raw in values:
        for value in _split_or(raw):
            m = _DATE_PREFIX.fullmatch(value)
            if not m:
                collector.add(REGISTRY_ERROR, param, f"{param} value {value!r} is not a date: e.g. ge2024-01-01")
                continue
            prefix = m.group(1) or "eq"
            if prefix not in ("eq", "gt", "lt", "ge", "le"):
                collector.add(REGISTRY_ERROR, param, f"{param}: the prefix {prefix!r} is not supported here")
                continue
            try:
                out.append((prefix, fhir_time_to_dtm(m.group(2))))
            except ValueError as exc:
                collector.add(REGISTRY_ERROR, param, f"{param}: {exc}")
    return out


def _later(a: str | None, b: str) -> str:
    return b if a is None or Dtm(b).lower_bound() > Dtm(a).lower_bound() else a


def _earlier(a: str | None, b: str) -> str:
    return b if a is None or Dtm(b).lower_bound() < Dtm(a).lower_bound() else a


def _get_documents(params: dict[str, list[str]], collector: _Collector) -> GetDocuments | None:
    unique_ids: list[str] = []
    entry_uuids: list[str] = []
    for raw in params.get("identifier", []):
        for token in _split_or(raw):
            system, value = _split_token(token)
            if system == c.URI_SYSTEM or not system:
                if _UUID.fullmatch(value.removeprefix("urn:uuid:")) and value.startswith("urn:uuid:"):
                    entry_uuids.append(value.lower())
                elif value.startswith("urn:oid:") or _OID.fullmatch(value):
                    unique_ids.append(value.removeprefix("urn:oid:"))
                else:
                    unique_ids.append(value)
            else:
                unique_id = identifier_to_unique_id({"system": system, "value": value})
                if unique_id:
                    unique_ids.append(unique_id)
    for raw in params.get("_id", []):
        for value in _split_or(raw):
            if _UUID.fullmatch(value):
                entry_uuids.append(f"urn:uuid:{value.lower()}")
            else:
                collector.add(REGISTRY_ERROR, "_id", f"_id {value!r} is not the id of a DocumentReference here")
    if not unique_ids and not entry_uuids:
        return None
    if unique_ids and entry_uuids:
        collector.add(
            PARAM_NUMBER,
            "identifier",
            "identifier mixes uniqueIds (urn:oid:) and entryUUIDs (urn:uuid:): search by one kind at a time",
        )
        return None
    return GetDocuments(entry_uuids=tuple(dict.fromkeys(entry_uuids)), unique_ids=tuple(dict.fromkeys(unique_ids)))


def parse_search(
    params: Mapping[str, Sequence[str]] | Sequence[tuple[str, str]],
    *,
    resolve_patient: PatientResolver | None = None,
    value_sets: ValueSets | None = None,
    strict: bool = False,
) -> MhdQuery:
    """The stored query an ITI-67 search asks for (see the module docstring for the mapping).

    Args:
        params: parameter name -> values (as ``urllib.parse.parse_qs`` or Starlette's ``multi_items`` give them),
            decoded or still percent-encoded.
        resolve_patient: resolves ``patient=Patient/<id>`` (or a full URL) to a patientId CX.
        strict: refuse unknown parameters (FHIR ``Prefer: handling=strict``).

    Raises:
        QueryError: ``XDSStoredQueryMissingParam`` (no patient or no status), ``XDSStoredQueryParamNumber`` (two
            patients, a single-valued parameter repeated), ``XDSUnknownPatientId`` (an unresolvable patient),
            ``XDSRegistryError`` (an unreadable value); every problem at once, each naming its parameter.
    """
    sets = value_sets or load_value_sets()
    collector = _Collector()
    normalised = _normalise(params)
    for name in normalised:
        base = name.split(":", 1)[0]
        if base not in _KNOWN and name not in IGNORED_PARAMETERS and strict:
            collector.add(REGISTRY_ERROR, name, f"{name} is not an ITI-67 search parameter")
    for key in list(normalised):
        base = key.split(":", 1)[0]
        if base != key and base in _KNOWN:
            normalised.setdefault(base, []).extend(normalised.pop(key))

    if "identifier" in normalised or "_id" in normalised:
        query = _get_documents(normalised, collector)
        if collector.problems or query is None:
            raise QueryError(collector.problems or [Problem(MISSING_PARAM, "identifier has no value", "identifier")])
        return query

    kwargs: dict[str, Any] = {}
    patients: list[str] = []
    for raw in normalised.get("patient", []):
        for value in _split_or(raw):
            cx = resolve_patient(value) if resolve_patient is not None else None
            if cx is None:
                collector.add(
                    UNKNOWN_PATIENT_ID,
                    "patient",
                    f"the patient {value!r} is not known here: search with patient.identifier="
                    f"{c.IDENTIFIER_SYSTEMS[SSIN_OID]}|<SSIN>",
                )
            else:
                patients.append(cx)
    for raw in normalised.get("patient.identifier", []):
        for value in _split_or(raw):
            cx = _patient_from_token(value, collector, "patient.identifier")
            if cx is not None:
                patients.append(cx)
    distinct = list(dict.fromkeys(patients))
    if len(distinct) > 1:
        collector.add(PARAM_NUMBER, "patient", "the search names several patients: search one patient at a time")
    elif distinct:
        kwargs["patient_id"] = distinct[0]
    elif "patient" not in normalised and "patient.identifier" not in normalised:
        collector.add(
            MISSING_PARAM,
            "patient",
            f"patient or patient.identifier is required (e.g. patient.identifier={c.IDENTIFIER_SYSTEMS[SSIN_OID]}"
            "|<SSIN>)",
        )

    statuses: list[AvailabilityStatus] = []
    for raw in normalised.get("status", []):
        for token in _split_or(raw):
            system, code = _split_token(token)
            if code in _STATUS and system in (None, "", c.DOCUMENT_REFERENCE_STATUS_SYSTEM):
                statuses.append(_STATUS[code])
            else:
                collector.add(REGISTRY_ERROR, "status", f"status {token!r}: use current or superseded")
    if statuses:
        kwargs["statuses"] = tuple(dict.fromkeys(statuses))
    elif "status" not in normalised:
        collector.add(MISSING_PARAM, "status", "status is required (current, superseded, or current,superseded)")

    for param, (attr, kind) in _CODE_PARAMS.items():
        values = normalised.get(param, [])
        if len(values) > 1:
            collector.add(
                PARAM_NUMBER,
                param,
                f"{param} is given {len(values)} times: a document has one {kind}; give the alternatives once, "
                "separated by commas",
            )
        elif values:
            kwargs[attr] = _codes(values, kind, param, collector, sets)
    for param, (attr, kind) in _AND_CODE_PARAMS.items():
        groups = [_codes([v], kind, param, collector, sets) for v in normalised.get(param, [])]
        if groups:
            kwargs[attr] = tuple(g for g in groups if g)

    creation_from: str | None = None
    creation_to: str | None = None
    for param in ("creation", "date"):
        for prefix, dtm in _dates(normalised.get(param, []), param, collector):
            if prefix in ("ge", "eq"):
                creation_from = _later(creation_from, dtm)
            if prefix == "gt":
                creation_from = _later(creation_from, _next_dtm(dtm))
            if prefix in ("le", "eq"):
                creation_to = _earlier(creation_to, _next_dtm(dtm))
            if prefix == "lt":
                creation_to = _earlier(creation_to, dtm)
    kwargs["creation_time_from"] = creation_from
    kwargs["creation_time_to"] = creation_to
    for prefix, dtm in _dates(normalised.get("period", []), "period", collector):
        if prefix in ("ge", "gt"):
            bound = dtm if prefix == "ge" else _next_dtm(dtm)
            kwargs["service_stop_time_from"] = _later(kwargs.get("service_stop_time_from"), bound)
        elif prefix in ("le", "lt"):
            bound = _next_dtm(dtm) if prefix == "le" else dtm
            kwargs["service_start_time_to"] = _earlier(kwargs.get("service_start_time_to"), bound)
        else:
            kwargs["service_start_time_from"] = _later(kwargs.get("service_start_time_from"), dtm)
            kwargs["service_stop_time_to"] = _earlier(kwargs.get("service_stop_time_to"), _next_dtm(dtm))

    families = [v for raw in normalised.get("author.family", []) for v in _split_or(raw)]
    givens = [v for raw in normalised.get("author.given", []) for v in _split_or(raw)]
    if families and givens:
        kwargs["author_persons"] = tuple(f"%^{f}%^{g}%" for f in families for g in givens)
    elif families:
        kwargs["author_persons"] = tuple(f"%^{f}%" for f in families)
    elif givens:
        kwargs["author_persons"] = tuple(f"%^%^{g}%" for g in givens)

    reference_ids: list[str] = []
    for param in ("related", "related.identifier"):
        for raw in normalised.get(param, []):
            for token in _split_or(raw):
                system, value = _split_token(token)
                oid = (c.OID_BY_SYSTEM.get(system) or system.removeprefix("urn:oid:")) if system else None
                if not value:
                    collector.add(REGISTRY_ERROR, param, f"{param} value {token!r} has no identifier value")
                elif oid and _OID.fullmatch(oid):
                    reference_ids.append(f"{value}^^^&{oid}&ISO")
                elif system:
                    reference_ids.append(f"{value}^^^&{system}&URI")
                else:
                    reference_ids.append(value)

    if collector.problems:
        raise QueryError(collector.problems)
    clean = {k: v for k, v in kwargs.items() if v is not None}
    if reference_ids:
        return FindDocumentsByReferenceId(reference_ids=tuple(reference_ids), **clean)
    return FindDocuments(**clean)


# ================================================================================================ building


def _token(code: Code, kind: str, sets: ValueSets) -> str:
    return f"{_escape(scheme_to_system(code.scheme, kind, sets))}|{_escape(code.code)}"


def _patient_token(patient_id: str) -> str:
    cx = parse_cx(patient_id)
    system = c.IDENTIFIER_SYSTEMS.get(cx.authority_oid or "", f"urn:oid:{cx.authority_oid}")
    return f"{system}|{_escape(cx.id)}"


def _author_params(patterns: Sequence[str]) -> list[tuple[str, str]]:
    both = [_BOTH_LIKE.fullmatch(p) for p in patterns]
    if all(both):
        families = list(dict.fromkeys(m.group(1) for m in both if m))
        givens = list(dict.fromkeys(m.group(2) for m in both if m))
        if len(families) * len(givens) == len(patterns):
            return [
                ("author.family", ",".join(map(_escape, families))),
                ("author.given", ",".join(map(_escape, givens))),
            ]
    for name, pattern in (("author.given", _GIVEN_LIKE), ("author.family", _FAMILY_LIKE)):
        matches = [pattern.fullmatch(p) for p in patterns]
        if all(matches):
            return [(name, ",".join(_escape(m.group(1)) for m in matches if m))]
    raise ValueError(
        f"the author patterns {list(patterns)} cannot be expressed as author.family / author.given searches "
        "(use %^Family%, %^%^Given% or %^Family%^Given%)"
    )


def to_search_params(query: MhdQuery, *, value_sets: ValueSets | None = None) -> list[tuple[str, str]]:
    """The ITI-67 search parameters for ``query`` (the inverse of :func:`parse_search`), unencoded: the HTTP
    client encodes them.

    Raises:
        ValueError: the query holds something an MHD search cannot say (a service start "from" or stop "to" alone,
            author patterns of another shape, a patientId that is not a CX).
    """
    sets = value_sets or load_value_sets()
    if isinstance(query, GetDocuments):
        ids = [unique_id_to_identifier(u, use=None) for u in query.unique_ids]
        values = [f"{_escape(i['system'])}|{_escape(i['value'])}" for i in ids]
        values += [f"{c.URI_SYSTEM}|{u}" for u in query.entry_uuids]
        return [("identifier", ",".join(values))]
    out: list[tuple[str, str]] = [("patient.identifier", _patient_token(query.patient_id))]
    out.append(("status", ",".join(_STATUS_NAME[s] for s in query.statuses)))
    for param, (attr, kind) in _CODE_PARAMS.items():
        codes: tuple[Code, ...] = getattr(query, attr)
        if codes:
            out.append((param, ",".join(_token(code, kind, sets) for code in codes)))
    for param, (attr, kind) in _AND_CODE_PARAMS.items():
        groups: tuple[tuple[Code, ...], ...] = getattr(query, attr)
        out += [(param, ",".join(_token(code, kind, sets) for code in group)) for group in groups]
    if query.creation_time_from:
        out.append(("creation", f"ge{dtm_to_fhir_time(query.creation_time_from)}"))
    if query.creation_time_to:
        out.append(("creation", f"lt{dtm_to_fhir_time(query.creation_time_to)}"))
    if query.service_stop_time_from:
        out.append(("period", f"ge{dtm_to_fhir_time(query.service_stop_time_from)}"))
    if query.service_start_time_to:
        out.append(("period", f"lt{dtm_to_fhir_time(query.service_start_time_to)}"))
    start_from, stop_to = query.service_start_time_from, query.service_stop_time_to
    if start_from or stop_to:
        if not (start_from and stop_to and _is_next(start_from, stop_to)):
            raise ValueError(
                "a service start 'from' or stop 'to' bound alone cannot be searched in MHD: give both, one period "
                "apart, to search period=eq<period> (the service lies within it)"
            )
        out.append(("period", f"eq{dtm_to_fhir_time(start_from)}"))
    if query.author_persons:
        out += _author_params(query.author_persons)
    if isinstance(query, FindDocumentsByReferenceId) and query.reference_ids:
        tokens: list[str] = []
        for cxi in query.reference_ids:
            comps = cxi.split("^")
            hd = comps[3].split("&") if len(comps) > 3 else []
            universal = hd[1] if len(hd) > 2 else ""
            system = (
                c.IDENTIFIER_SYSTEMS.get(universal, f"urn:oid:{universal}")
                if len(hd) > 2 and hd[2] == "ISO"
                else universal
            )
            tokens.append(f"{_escape(system)}|{_escape(comps[0])}" if system else _escape(comps[0]))
        out.append(("related", ",".join(tokens)))
    return out


# ================================================================================================ results


def search_result_bundle(
    entries: Sequence[DocumentEntry | DocumentReference | Mapping[str, Any]],
    *,
    base_url: str,
    total: int | None = None,
    self_link: str | None = None,
    value_sets: ValueSets | None = None,
) -> Bundle:
    """The ITI-67 answer: a ``searchset`` Bundle of DocumentReferences (``search.mode`` match).

    A DocumentEntry is mapped with id :func:`~rsb_connector.mhd.mapping.resource_id_for` of its entryUUID and, unless
    it has a URI, attachment url ``<base_url>/Binary/<id>`` (the ITI-68 retrieval URL the server must serve). Each
    ``fullUrl`` is ``<base_url>/DocumentReference/<id>``. ``total`` defaults to the number of entries.
    """
    base = base_url.rstrip("/")
    items: list[dict[str, Any]] = []
    for item in entries:
        if isinstance(item, DocumentEntry):
            rid = resource_id_for(item.entry_uuid)
            resource = as_json(entry_to_document_reference(item, base_url=base, resource_id=rid, value_sets=value_sets))
        else:
            resource = as_json(item)
        rid = resource.get("id")
        full_url = f"{base}/DocumentReference/{rid}" if isinstance(rid, str) else None
        items.append({"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(items) if total is None else total,
        "entry": [{k: v for k, v in i.items() if v is not None} for i in items],
    }
    if self_link:
        bundle["link"] = [{"relation": "self", "url": self_link}]
    if not bundle["entry"]:
        del bundle["entry"]
    return Bundle.model_validate(bundle)


def parse_search_result_bundle(
    bundle: Bundle | Mapping[str, Any], *, value_sets: ValueSets | None = None
) -> tuple[list[DocumentEntry], list[Problem]]:
    """The DocumentEntries of an ITI-67 searchset (for the Document Consumer), and the problems found: mapping
    problems (paths ``Bundle.entry[i].resource...``) and the issues of any OperationOutcome entry.

    Raises:
        ValueError: the input is not a searchset Bundle.
    """
    data = as_json(bundle) if isinstance(bundle, BaseModel | Mapping) else {}
    if data.get("resourceType") != "Bundle" or data.get("type") != "searchset":
        raise ValueError(f"expected a searchset Bundle, got {data.get('resourceType')!r} {data.get('type')!r}")
    found: list[DocumentEntry] = []
    problems: list[Problem] = []
    for i, item in enumerate(data.get("entry") or []):
        resource = item.get("resource") if isinstance(item, Mapping) else None
        if not isinstance(resource, Mapping):
            continue
        if resource.get("resourceType") == "OperationOutcome":
            problems += operation_outcome_to_problems(resource)
            continue
        if resource.get("resourceType") != "DocumentReference":
            continue
        entry, entry_problems = document_reference_to_entry(resource, value_sets=value_sets)
        found.append(entry)
        problems += [
            Problem(
                p.code, p.message, f"Bundle.entry[{i}].resource" + p.path.removeprefix("DocumentReference"), p.severity
            )
            for p in entry_problems
        ]
    return found, problems
