"""Mapping between the XDS metadata model and MHD FHIR R4 resources (DocumentReference, SubmissionSet List).

Both directions follow IHE MHD 4.2.x (ITI TF-3 4.5 "FHIR Representation of Document Sharing Metadata" and the
profiles' XDS mappings). The readers never raise on bad input: they return the model *and* every
:class:`~rsb_connector.errors.Problem` found, with FHIRPath-like paths rooted at the resource
(``DocumentReference.content[0].attachment.hash``), so the core rules (:mod:`rsb_connector.metadata.rules`) can run on
what was mapped and report the rest. The writers raise :class:`ValueError` only for metadata that cannot be written
(a malformed time, hash or patient id), which validated metadata never has.

Conventions worth knowing:

- **Identifiers** (ITI TF-2 Appendix E.3): uniqueId ``OID`` <-> ``masterIdentifier`` ``urn:ietf:rfc:3986`` +
  ``urn:oid:OID`` (``OID^ext`` <-> system ``urn:oid:OID`` + value ``ext``); entryUUID <-> ``identifier`` (official,
  ``urn:ietf:rfc:3986``, ``urn:uuid:…``). A DocumentReference's FHIR id is the UUID of its entryUUID
  (:func:`resource_id_for`); relationships point at ``DocumentReference/<that id>`` and carry the entryUUID as
  identifier too.
- **Patients**: ``subject`` is a logical reference whose identifier has the be-core SSIN system (the legacy system
  and ``urn:oid:2.16.840.1.113883.3.6777.5.1`` are accepted on input); other assigning authorities are written as
  ``urn:oid:<OID>``. A literal reference (``Patient/123``) is resolved by the caller's ``resolve_patient``.
- **Codes**: XDS codingScheme <-> ``Coding.system`` via the value sets' FHIR systems
  (:meth:`~rsb_connector.metadata.valuesets.ValueSets.fhir_system`), else ``urn:oid:`` for OIDs, the scheme itself
  when it is a URI, else :data:`~rsb_connector.mhd.constants.XDS_SCHEME_PREFIX` + scheme.
- **Times**: FHIR ``dateTime`` with an offset -> UTC DTM (negative offsets included), precision kept: ``2004`` <->
  ``2004``, ``2004-12-24`` <-> ``20041224``, ``2004-12-24T15:30:00-05:00`` -> ``20041224203000``. FHIR cannot say
  "to the hour/minute": DTM of 10 or 12 digits is written with zero seconds (and so comes back with 14 digits).
- **Hash**: XDS hex SHA-1 <-> FHIR base64 of the 20 SHA-1 bytes (hex comes back lower-case).
- **Authors** are contained resources: a Practitioner (or Patient) when only the person is known, an Organization
  when only the institution is, otherwise a PractitionerRole (practitioner, organization, code = roles,
  specialty, telecom). Only the first institution of an author fits PractitionerRole.organization.
- **sourcePatientInfo** is a contained Patient: identifier[0] = sourcePatientId, further identifiers = ``PID-3``,
  name = ``PID-5``, birthDate = ``PID-7``, gender = ``PID-8``, address = ``PID-11``; other PID fields are not
  carried, and a ``PID-3`` equal to sourcePatientId is not repeated.
- **referenceIdList** (CXi) <-> ``context.related`` (``context.encounter`` for ``urn:ihe:iti:xds:2015:encounterId``)
  with identifier value = CX.1, system from CX.4, ``type.coding`` = the CXi type (system ``urn:ietf:rfc:3986``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final, TypeAlias

from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.list import List as FhirList
from pydantic import BaseModel

from ..errors import Problem, Severity
from ..identifiers import NIHDI_OID, SSIN_OID
from ..metadata.model import (
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Dtm,
    SubmissionSet,
)
from ..metadata.valuesets import CodeKind, ValueSets, load_value_sets
from . import constants as c

__all__ = [
    "Json",
    "PatientResolver",
    "as_json",
    "code_to_coding",
    "coding_to_code",
    "cx_to_identifier",
    "document_reference_to_entry",
    "dtm_to_fhir_time",
    "entry_to_document_reference",
    "fhir_hash_to_hex",
    "fhir_time_to_dtm",
    "hex_to_fhir_hash",
    "identifier_to_cx",
    "identifier_to_unique_id",
    "list_items",
    "list_to_submission_set",
    "relations",
    "resource_id_for",
    "scheme_to_system",
    "submission_set_to_list",
    "system_to_scheme",
    "unique_id_to_identifier",
]

Json: TypeAlias = dict[str, Any]
"""A FHIR resource or element as parsed JSON."""
PatientResolver: TypeAlias = Callable[[str], str | None]
"""Turns a literal patient reference (``Patient/123``, a full URL, ``urn:uuid:…``) into an XDS patientId CX, or None
when it does not know the patient."""

REGISTRY_METADATA_ERROR: Final = "XDSRegistryMetadataError"
REPOSITORY_METADATA_ERROR: Final = "XDSRepositoryMetadataError"
UNKNOWN_PATIENT_ID: Final = "XDSUnknownPatientId"
PATIENT_ID_DOES_NOT_MATCH: Final = "XDSPatientIdDoesNotMatch"

_OID: Final = re.compile(r"[0-2](?:\.(?:0|[1-9]\d*))+")
_UUID_URN: Final = re.compile(r"urn:uuid:([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})")
_FHIR_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_FHIR_DATE: Final = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_FHIR_DATETIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})?"
)
_HEX40: Final = re.compile(r"[0-9a-fA-F]{40}")
_HL7_ESCAPES: Final = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))
_STATUS_TO_FHIR: Final = {AvailabilityStatus.APPROVED: "current", AvailabilityStatus.DEPRECATED: "superseded"}
_STATUS_FROM_FHIR: Final = {v: k for k, v in _STATUS_TO_FHIR.items()}
_GENDER_TO_FHIR: Final = {"M": "male", "F": "female", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
_GENDER_FROM_FHIR: Final = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_RELATES_FROM_FHIR: Final = {v: k for k, v in c.RELATES_TO_CODES.items()}
_SOURCE_PATIENT_ID: Final = "sourcePatient"
_LEGAL_AUTHENTICATOR_ID: Final = "legalAuthenticator"


# ================================================================================================ small helpers


def as_json(resource: BaseModel | Mapping[str, Any]) -> Json:
    """The JSON form of a fhir.resources model (or a copy of a JSON mapping)."""
    if isinstance(resource, BaseModel):
        dumped: Json = resource.model_dump(mode="json")
        return dumped
    return dict(resource)


def _str(obj: object, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) and value != "" else None


def _map(obj: object, key: str) -> Mapping[str, Any] | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else None


def _maps(obj: object, key: str) -> list[Mapping[str, Any]]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _strs(obj: object, key: str) -> list[str]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _prune(value: Any) -> Any:
    """Drop None, empty strings, empty lists and empty objects, recursively (FHIR allows no empty elements)."""
    if isinstance(value, Mapping):
        out = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        items = [_prune(v) for v in value]
        return [v for v in items if v not in (None, "", [], {})]
    return value


def _clean(value: Mapping[str, Any]) -> Json:
    """:func:`_prune` of a JSON object, typed."""
    out = _prune(value)
    return dict(out) if isinstance(out, Mapping) else {}


def _problem(code: str, path: str, message: str, severity: Severity = Severity.ERROR) -> Problem:
    return Problem(code=code, message=message, path=path, severity=severity)


def _hl7_escape(text: str) -> str:
    for raw, escaped in _HL7_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _hl7_unescape(text: str) -> str:
    for raw, escaped in reversed(_HL7_ESCAPES):
        text = text.replace(escaped, raw)
    return text


def _join_components(components: Sequence[str], separator: str = "^") -> str:
    parts = list(components)
    while parts and not parts[-1]:
        parts.pop()
    return separator.join(parts)


def _component(components: Sequence[str], index: int) -> str:
    return components[index] if index < len(components) else ""


def _new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def resource_id_for(entry_uuid: str) -> str | None:
    """The FHIR resource id of an XDS object: the UUID of a ``urn:uuid:`` entryUUID (lower case), a symbolic id
    that is already a valid FHIR id, else None."""
    m = _UUID_URN.fullmatch(entry_uuid)
    if m:
        return m.group(1).lower()
    return entry_uuid if _FHIR_ID.fullmatch(entry_uuid) else None


# ================================================================================================ times & hashes


def fhir_time_to_dtm(value: str | date | datetime) -> str:
    """Convert a FHIR ``date`` / ``dateTime`` / ``instant`` to XDS DTM (UTC), keeping its precision.

    ``2004`` -> ``2004``, ``2004-12`` -> ``200412``, ``2004-12-24`` -> ``20041224``,
    ``2004-12-24T15:30:00-05:00`` -> ``20041224203000`` (offsets, negative ones included, are applied), a time
    without seconds -> 12 digits, fractions of a second are dropped.

    Raises:
        ValueError: not a FHIR time, or a time of day without a time zone (FHIR requires one).
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()!r} has a time of day but no time zone: FHIR requires one")
        return Dtm.from_datetime(value).value
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    text = value.strip()
    m = _FHIR_DATE.fullmatch(text)
    if m:
        dtm = "".join(g for g in m.groups() if g)
        problem = Dtm.problem(dtm)
        if problem:
            raise ValueError(f"{text!r} is not a real date")
        return dtm
    m = _FHIR_DATETIME.fullmatch(text)
    if not m:
        raise ValueError(
            f"{text!r} is not a FHIR date or dateTime: use YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm / -hh:mm)"
        )
    year, month, day, hour, minute, second, zone = m.groups()
    if zone is None:
        raise ValueError(f"{text!r} has a time of day but no time zone: add Z (UTC) or an offset such as +01:00")
    if zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=tz)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a real time ({exc})") from None
    return Dtm.from_datetime(moment, 14 if second is not None else 12).value


def dtm_to_fhir_time(dtm: str) -> str:
    """Convert XDS DTM (UTC) to a FHIR ``dateTime``: ``2004`` -> ``2004``, ``20041224`` -> ``2004-12-24``,
    ``20041224203000`` -> ``2004-12-24T20:30:00Z`` (10 or 12 digits get zero minutes/seconds: FHIR has no
    hour or minute precision).

    Raises:
        ValueError: ``dtm`` is not a DTM.
    """
    value = Dtm(dtm).value
    if len(value) == 4:
        return value
    if len(value) == 6:
        return f"{value[:4]}-{value[4:6]}"
    if len(value) == 8:
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    v = (value + "0000")[:14]
    return f"{v[:4]}-{v[4:6]}-{v[6:8]}T{v[8:10]}:{v[10:12]}:{v[12:14]}Z"


def hex_to_fhir_hash(hex_digest: str) -> str:
    """XDS ``hash`` (40 hex digits of SHA-1) -> FHIR ``Attachment.hash`` (base64 of the 20 bytes).

    Raises:
        ValueError: not 40 hexadecimal digits.
    """
    if not _HEX40.fullmatch(hex_digest):
        raise ValueError(f"hash {hex_digest!r} is not a SHA-1 digest (40 hexadecimal digits)")
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def fhir_hash_to_hex(value: str) -> str:
    """FHIR ``Attachment.hash`` (base64 of the SHA-1 bytes) -> lower-case hex.

    Raises:
        ValueError: with a message that says what to send instead (including the common mistake of sending the
            base64 of the hex text, or the hex text itself).
    """
    text = value.strip()
    if _HEX40.fullmatch(text):
        raise ValueError(
            "Attachment.hash holds hexadecimal text: FHIR wants the base64 of the 20 SHA-1 bytes "
            f"(here {base64.b64encode(bytes.fromhex(text)).decode('ascii')!r})"
        )
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("Attachment.hash is not base64: send the base64 of the 20 bytes of the SHA-1") from None
    if len(raw) == 40 and _HEX40.fullmatch(raw.decode("ascii", "replace")):
        fixed = base64.b64encode(bytes.fromhex(raw.decode("ascii"))).decode("ascii")
        raise ValueError(
            "Attachment.hash is the base64 of the hexadecimal text of the SHA-1: FHIR wants the base64 of the 20 "
            f"digest bytes (here {fixed!r})"
        )
    if len(raw) != 20:
        raise ValueError(f"Attachment.hash decodes to {len(raw)} bytes: a SHA-1 has 20; send base64 of those 20 bytes")
    return raw.hex()


# ================================================================================================ codes


def _oid_or_none(text: str) -> str | None:
    return text if _OID.fullmatch(text) else None


def scheme_to_system(scheme: str, kind: str, value_sets: ValueSets | None = None) -> str:
    """The FHIR ``Coding.system`` of an XDS codingScheme of ``kind`` (see the module docstring)."""
    sets = value_sets or load_value_sets()
    system = sets.fhir_system(kind, scheme)
    if system is None:
        for other in CodeKind:
            system = sets.fhir_system(other, scheme)
            if system is not None:
                break
    if system is not None:
        return system
    if _oid_or_none(scheme):
        return f"urn:oid:{scheme}"
    if ":" in scheme:
        return scheme
    return c.XDS_SCHEME_PREFIX + scheme


def system_to_scheme(system: str, kind: str, value_sets: ValueSets | None = None) -> str:
    """The XDS codingScheme of a FHIR ``Coding.system`` for ``kind`` (the inverse of :func:`scheme_to_system`)."""
    sets = value_sets or load_value_sets()
    kinds = [CodeKind(kind)] + [k for k in CodeKind if k.value != kind]
    for k in kinds:
        for scheme, fhir_system in sets.value_set(k).fhir_systems.items():
            if fhir_system == system:
                return scheme
    if system.startswith("urn:oid:") and _oid_or_none(system[8:]):
        return system[8:]
    if system.startswith(c.XDS_SCHEME_PREFIX):
        return system[len(c.XDS_SCHEME_PREFIX) :]
    return system


def code_to_coding(code: Code, kind: str, value_sets: ValueSets | None = None) -> Json:
    """An XDS coded value -> FHIR ``Coding`` (system, code, display)."""
    system = scheme_to_system(code.scheme, kind, value_sets)
    return _clean({"system": system, "code": code.code, "display": code.display})


def coding_to_code(coding: Mapping[str, Any], kind: str, value_sets: ValueSets | None = None) -> Code:
    """A FHIR ``Coding`` -> XDS coded value (an empty scheme when the coding has no system: the rules report it)."""
    system = _str(coding, "system")
    return Code(
        _str(coding, "code") or "",
        system_to_scheme(system, kind, value_sets) if system else "",
        _str(coding, "display"),
    )


def _concept(code: Code, kind: str, value_sets: ValueSets | None) -> Json:
    return {"coding": [code_to_coding(code, kind, value_sets)]}


def _concept_to_code(
    concept: Mapping[str, Any] | None, kind: str, path: str, problems: list[Problem], value_sets: ValueSets | None
) -> Code | None:
    if concept is None:
        return None
    for coding in _maps(concept, "coding"):
        if _str(coding, "code"):
            return coding_to_code(coding, kind, value_sets)
    problems.append(
        _problem(
            REGISTRY_METADATA_ERROR,
            path,
            f"{path.rsplit('.', 1)[-1]} has no coding with a code (XDS {kind} needs a code and a coding scheme): "
            "send coding[0] with system and code",
        )
    )
    return None


# ================================================================================================ identifiers


def unique_id_to_identifier(unique_id: str, *, use: str | None = "usual") -> Json:
    """XDS uniqueId -> FHIR Identifier (ITI TF-2 Appendix E.3): ``OID`` -> ``urn:ietf:rfc:3986`` +
    ``urn:oid:OID``; ``OID^ext`` -> ``urn:oid:OID`` + ``ext``; a URN is kept as the value."""
    root, sep, extension = unique_id.partition("^")
    if sep and _oid_or_none(root) and extension:
        return _clean({"use": use, "system": f"urn:oid:{root}", "value": extension})
    if _oid_or_none(unique_id):
        return _clean({"use": use, "system": c.URI_SYSTEM, "value": f"urn:oid:{unique_id}"})
    return _clean({"use": use, "system": c.URI_SYSTEM, "value": unique_id})


def identifier_to_unique_id(identifier: Mapping[str, Any]) -> str | None:
    """FHIR Identifier -> XDS uniqueId (the inverse of :func:`unique_id_to_identifier`)."""
    value = _str(identifier, "value")
    if value is None:
        return None
    system = _str(identifier, "system")
    if system and system.startswith("urn:oid:") and system != c.URI_SYSTEM:
        return f"{system[8:]}^{value}"
    return value[8:] if value.startswith("urn:oid:") else value


def _authority_system(oid: str) -> str:
    return c.IDENTIFIER_SYSTEMS.get(oid, f"urn:oid:{oid}")


def _system_authority(system: str) -> str | None:
    """Assigning-authority OID of an Identifier.system, or None when it is not an OID-backed system."""
    if system in c.OID_BY_SYSTEM:
        return c.OID_BY_SYSTEM[system]
    if system.startswith("urn:oid:") and _oid_or_none(system[8:]):
        return system[8:]
    return None


def cx_to_identifier(cx: str) -> Json:
    """XDS CX (``id^^^&OID&ISO``) -> FHIR Identifier (be-core system for SSIN/NIHDI/CBE/EHP, else ``urn:oid:``).

    Raises:
        ValueError: the CX has no id.
    """
    components = cx.split("^")
    ident = components[0]
    if not ident:
        raise ValueError("the CX value has no identifier before '^^^'")
    system = _hd_system(_component(components, 3))
    return _clean({"system": system, "value": _hl7_unescape(ident)})


def identifier_to_cx(identifier: Mapping[str, Any]) -> str | None:
    """FHIR Identifier -> XDS CX ``id^^^&OID&ISO`` (``&system&URI`` for a system that is not an OID; bare id
    without a system). None when the identifier has no value."""
    value = _str(identifier, "value")
    if value is None:
        return None
    system = _str(identifier, "system")
    if system is None:
        return _hl7_escape(value)
    return f"{_hl7_escape(value)}^^^{_system_hd(system)}"


def _hd_system(hd: str) -> str | None:
    """HL7 HD (``namespace&universalId&type``) -> FHIR system."""
    parts = hd.split("&")
    universal = _component(parts, 1)
    kind = _component(parts, 2)
    if universal and kind == "ISO" and _oid_or_none(universal):
        return _authority_system(universal)
    if universal:
        return universal
    return None


def _system_hd(system: str) -> str:
    oid = _system_authority(system)
    if oid is not None:
        return f"&{oid}&ISO"
    return f"&{system}&URI"


# ================================================================================================ people


def _parse_xcn(text: str) -> Json | None:
    """XCN -> a Practitioner-like JSON (identifier, name)."""
    comps = text.split("^")
    ident = _component(comps, 0)
    family = _hl7_unescape(_component(comps, 1))
    given = [_hl7_unescape(_component(comps, 2))] if _component(comps, 2) else []
    given += [_hl7_unescape(g) for g in _component(comps, 3).split(" ") if g]
    suffix = _hl7_unescape(_component(comps, 4))
    prefix = _hl7_unescape(_component(comps, 5))
    identifier: Json | None = None
    if ident:
        identifier = _clean({"system": _hd_system(_component(comps, 8)), "value": _hl7_unescape(ident)})
    name = _clean({"family": family, "given": given, "suffix": [suffix], "prefix": [prefix]})
    out = _clean({"identifier": [identifier] if identifier else [], "name": [name] if name else []})
    return out or None


def _xcn_from_person(resource: Mapping[str, Any]) -> str | None:
    identifiers = _maps(resource, "identifier")
    chosen = next((i for i in identifiers if _str(i, "system") == c.IDENTIFIER_SYSTEMS[NIHDI_OID]), None)
    chosen = chosen or (identifiers[0] if identifiers else None)
    names = _maps(resource, "name")
    name = names[0] if names else {}
    given = _strs(name, "given")
    ident = _str(chosen, "value") if chosen else None
    system = _str(chosen, "system") if chosen else None
    components = [
        _hl7_escape(ident or ""),
        _hl7_escape(_str(name, "family") or ""),
        _hl7_escape(given[0]) if given else "",
        _hl7_escape(" ".join(given[1:])),
        _hl7_escape(next(iter(_strs(name, "suffix")), "")),
        _hl7_escape(next(iter(_strs(name, "prefix")), "")),
        "",
        "",
        _system_hd(system) if ident and system else "",
    ]
    text = _join_components(components)
    return text or None


def _parse_xon(text: str) -> Json:
    comps = text.split("^")
    ident = _component(comps, 9)
    identifier = _clean({"system": _hd_system(_component(comps, 5)), "value": _hl7_unescape(ident)}) if ident else None
    return _clean(
        {
            "resourceType": "Organization",
            "identifier": [identifier] if identifier else [],
            "name": _hl7_unescape(_component(comps, 0)),
        }
    )


def _xon_from_organization(resource: Mapping[str, Any]) -> str | None:
    identifiers = _maps(resource, "identifier")
    chosen = identifiers[0] if identifiers else None
    ident = _str(chosen, "value") if chosen else None
    system = _str(chosen, "system") if chosen else None
    comps = [_hl7_escape(_str(resource, "name") or "")] + [""] * 9
    if ident:
        comps[5] = _system_hd(system) if system else ""
        comps[9] = _hl7_escape(ident)
    return _join_components(comps) or None


def _parse_xtn(text: str) -> Json:
    comps = text.split("^")
    if len(comps) == 4 and comps[:3] == ["", "", "Internet"] and comps[3]:
        return {"system": "email", "value": comps[3]}
    if len(comps) == 12 and comps[0] == comps[1] == "" and comps[2] in ("PH", "FX") and not any(comps[3:11]):
        return {"system": "phone" if comps[2] == "PH" else "fax", "value": comps[11]}
    return {"system": "other", "value": text}


def _xtn_from_contact(contact: Mapping[str, Any]) -> str | None:
    value = _str(contact, "value")
    if value is None:
        return None
    system = _str(contact, "system")
    if system == "email":
        return f"^^Internet^{value}"
    if system in ("phone", "fax"):
        return "^^" + ("PH" if system == "phone" else "FX") + "^" * 9 + value
    return value


def _hl7_code_to_concept(text: str) -> Json:
    """``code^^^&OID&ISO`` -> CodeableConcept with a coding; anything else -> CodeableConcept.text."""
    comps = text.split("^")
    if len(comps) == 4 and comps[0] and comps[1] == comps[2] == "":
        system = _hd_system(comps[3])
        if system:
            return {"coding": [{"system": system, "code": _hl7_unescape(comps[0])}]}
    return {"text": _hl7_unescape(text)}


def _concept_to_hl7_code(concept: Mapping[str, Any]) -> str | None:
    for coding in _maps(concept, "coding"):
        code = _str(coding, "code")
        system = _str(coding, "system")
        if code and system:
            return f"{_hl7_escape(code)}^^^{_system_hd(system)}"
        if code:
            return _hl7_escape(code)
    text = _str(concept, "text")
    return _hl7_escape(text) if text else None


def _person_resource(xcn: str, resource_id: str) -> Json:
    person = _parse_xcn(xcn) or {}
    identifiers = _maps(person, "identifier")
    is_patient = any(_str(i, "system") in (c.IDENTIFIER_SYSTEMS[SSIN_OID],) for i in identifiers)
    return {"resourceType": "Patient" if is_patient else "Practitioner", "id": resource_id, **person}


def _author_resources(author: Author, index: int) -> tuple[Json, list[Json]]:
    """(reference, contained resources) for one XDS author."""
    base = f"author{index}"
    only_person = author.person and not (
        author.institutions or author.roles or author.specialties or author.telecommunications
    )
    if only_person and author.person:
        return {"reference": f"#{base}"}, [_person_resource(author.person, base)]
    only_institution = len(author.institutions) == 1 and not (
        author.person or author.roles or author.specialties or author.telecommunications
    )
    if only_institution:
        return {"reference": f"#{base}"}, [{**_parse_xon(author.institutions[0]), "id": base}]
    contained: list[Json] = []
    role: Json = {"resourceType": "PractitionerRole", "id": base}
    if author.person:
        person = _person_resource(author.person, f"{base}-person")
        person["resourceType"] = "Practitioner"
        contained.append(person)
        role["practitioner"] = {"reference": f"#{base}-person"}
    if author.institutions:
        contained.append({**_parse_xon(author.institutions[0]), "id": f"{base}-organization"})
        role["organization"] = {"reference": f"#{base}-organization"}
    role["code"] = [_hl7_code_to_concept(r) for r in author.roles]
    role["specialty"] = [_hl7_code_to_concept(s) for s in author.specialties]
    role["telecom"] = [_parse_xtn(t) for t in author.telecommunications]
    return {"reference": f"#{base}"}, [_clean(role), *contained]


def _contained_index(resource: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {rid: r for r in _maps(resource, "contained") if (rid := _str(r, "id"))}


def _contained_target(
    reference: Mapping[str, Any] | None, contained: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    ref = _str(reference, "reference") if reference else None
    if ref and ref.startswith("#"):
        return contained.get(ref[1:])
    return None


def _author_from_resource(resource: Mapping[str, Any], contained: Mapping[str, Mapping[str, Any]]) -> Author | None:
    kind = _str(resource, "resourceType")
    telecom = tuple(t for x in _maps(resource, "telecom") if (t := _xtn_from_contact(x)))
    if kind in ("Practitioner", "Patient", "RelatedPerson"):
        return Author(person=_xcn_from_person(resource), telecommunications=telecom)
    if kind == "Organization":
        xon = _xon_from_organization(resource)
        return Author(institutions=(xon,) if xon else (), telecommunications=telecom)
    if kind == "PractitionerRole":
        person_res = _contained_target(_map(resource, "practitioner"), contained)
        org_res = _contained_target(_map(resource, "organization"), contained)
        person = _xcn_from_person(person_res) if person_res else None
        if person is None and (practitioner := _map(resource, "practitioner")):
            ident = _map(practitioner, "identifier")
            person = _xcn_from_person({"identifier": [ident]}) if ident else None
        xon = _xon_from_organization(org_res) if org_res else None
        return Author(
            person=person,
            institutions=(xon,) if xon else (),
            roles=tuple(r for cc in _maps(resource, "code") if (r := _concept_to_hl7_code(cc))),
            specialties=tuple(s for cc in _maps(resource, "specialty") if (s := _concept_to_hl7_code(cc))),
            telecommunications=telecom,
        )
    return None


def _authors_from_references(
    references: Sequence[Mapping[str, Any]],
    contained: Mapping[str, Mapping[str, Any]],
    path: str,
    problems: list[Problem],
) -> list[Author]:
    authors: list[Author] = []
    for i, reference in enumerate(references):
        target = _contained_target(reference, contained)
        author: Author | None = None
        if target is not None:
            author = _author_from_resource(target, contained)
        elif (ident := _map(reference, "identifier")) is not None:
            author = Author(person=_xcn_from_person({"identifier": [ident]}))
        if author is None or author.is_empty:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}[{i}]",
                    "the author cannot be read: reference a contained Practitioner, PractitionerRole, Organization "
                    "or Patient (#id), or give the author's identifier in the reference",
                    Severity.WARNING,
                )
            )
            continue
        authors.append(author)
    return authors


# ================================================================================================ patients


def _patient_reference(patient_id: str, reference: str | None) -> Json:
    try:
        identifier = cx_to_identifier(patient_id)
    except ValueError as exc:
        raise ValueError(f"patientId cannot be written as a FHIR identifier: {exc}") from None
    return _clean({"reference": reference, "identifier": identifier})


def _patient_from_reference(
    reference: Mapping[str, Any] | None,
    path: str,
    problems: list[Problem],
    resolve_patient: PatientResolver | None,
) -> str | None:
    """The CX patientId a subject reference names, reporting unresolvable links."""
    if reference is None:
        return None
    identifier = _map(reference, "identifier")
    literal = _str(reference, "reference")
    from_identifier: str | None = None
    if identifier is not None:
        from_identifier = _patient_cx(identifier, f"{path}.identifier", problems)
    from_literal: str | None = None
    if literal is not None:
        if literal.startswith("#"):
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.reference",
                    f"the patient reference {literal!r} points at a contained resource: reference the patient "
                    "(Patient/<id> or an identifier with the SSIN system), not a copy of it",
                )
            )
        else:
            from_literal = resolve_patient(literal) if resolve_patient is not None else None
            if from_literal is None and identifier is None:
                problems.append(
                    _problem(
                        UNKNOWN_PATIENT_ID,
                        f"{path}.reference",
                        f"the patient reference {literal!r} cannot be resolved (bad patient link): reference a "
                        f"Patient known to the hub or give identifier.system {c.IDENTIFIER_SYSTEMS[SSIN_OID]} with "
                        "the SSIN",
                    )
                )
    if from_identifier and from_literal and from_identifier != from_literal:
        problems.append(
            _problem(
                PATIENT_ID_DOES_NOT_MATCH,
                path,
                f"the reference {literal!r} and the identifier name different patients: send one patient",
            )
        )
    return from_identifier or from_literal


def _patient_cx(identifier: Mapping[str, Any], path: str, problems: list[Problem]) -> str | None:
    value = _str(identifier, "value")
    system = _str(identifier, "system")
    if value is None:
        problems.append(_problem(REGISTRY_METADATA_ERROR, f"{path}.value", "the patient identifier has no value"))
        return None
    oid = _system_authority(system) if system else None
    if oid is None:
        problems.append(
            _problem(
                UNKNOWN_PATIENT_ID,
                f"{path}.system",
                f"the patient identifier system {system!r} is not known here: identify the patient by SSIN with "
                f"system {c.IDENTIFIER_SYSTEMS[SSIN_OID]} (or urn:oid:<assigning authority OID>)",
            )
        )
        return None
    return f"{_hl7_escape(value)}^^^&{oid}&ISO"


# ================================================================================================ sourcePatientInfo


def _pid_lines(info: Sequence[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for line in info:
        field, sep, value = line.partition("|")
        if sep:
            out.append((field.strip().upper(), value))
    return out


def _source_patient(entry: DocumentEntry) -> Json | None:
    if not entry.source_patient_id and not entry.source_patient_info:
        return None
    cxs = [entry.source_patient_id] if entry.source_patient_id else []
    names: list[Json] = []
    addresses: list[Json] = []
    birth: str | None = None
    gender: str | None = None
    for field, value in _pid_lines(entry.source_patient_info):
        if field == "PID-3":
            cxs += [v for v in value.split("~") if v]
        elif field == "PID-5":
            for xpn in value.split("~"):
                comps = xpn.split("^")
                given = [_hl7_unescape(_component(comps, 1))] if _component(comps, 1) else []
                given += [_hl7_unescape(g) for g in _component(comps, 2).split(" ") if g]
                names.append(
                    _clean(
                        {
                            "family": _hl7_unescape(_component(comps, 0)),
                            "given": given,
                            "suffix": [_hl7_unescape(_component(comps, 3))],
                            "prefix": [_hl7_unescape(_component(comps, 4))],
                        }
                    )
                )
        elif field == "PID-7" and value and Dtm.problem(value[:8]) is None:
            birth = dtm_to_fhir_time(value[:8])
        elif field == "PID-8" and value:
            gender = _GENDER_TO_FHIR.get(value.upper(), "unknown")
        elif field == "PID-11":
            for xad in value.split("~"):
                comps = [_hl7_unescape(x) for x in xad.split("^")]
                addresses.append(
                    _clean(
                        {
                            "line": [_component(comps, 0), _component(comps, 1)],
                            "city": _component(comps, 2),
                            "state": _component(comps, 3),
                            "postalCode": _component(comps, 4),
                            "country": _component(comps, 5),
                        }
                    )
                )
    identifiers = [cx_to_identifier(cx) for cx in dict.fromkeys(cxs)]
    return _clean(
        {
            "resourceType": "Patient",
            "id": _SOURCE_PATIENT_ID,
            "identifier": identifiers,
            "name": names,
            "gender": gender,
            "birthDate": birth,
            "address": addresses,
        }
    )


def _source_patient_info(patient: Mapping[str, Any]) -> tuple[str | None, list[str]]:
    cxs = [cx for i in _maps(patient, "identifier") if (cx := identifier_to_cx(i))]
    info = [f"PID-3|{cx}" for cx in cxs[1:]]
    for name in _maps(patient, "name"):
        given = _strs(name, "given")
        comps = [
            _str(name, "family") or "",
            given[0] if given else "",
            " ".join(given[1:]),
            next(iter(_strs(name, "suffix")), ""),
            next(iter(_strs(name, "prefix")), ""),
        ]
        xpn = _join_components([_hl7_escape(x) for x in comps])
        if xpn:
            info.append(f"PID-5|{xpn}")
    birth = _str(patient, "birthDate")
    if birth:
        with contextlib.suppress(ValueError):  # an unreadable birth date is not carried (no XDS rule checks it)
            info.append(f"PID-7|{fhir_time_to_dtm(birth)}")
    gender = _str(patient, "gender")
    if gender in _GENDER_FROM_FHIR:
        info.append(f"PID-8|{_GENDER_FROM_FHIR[gender]}")
    for address in _maps(patient, "address"):
        lines = _strs(address, "line")
        comps = [
            lines[0] if lines else "",
            lines[1] if len(lines) > 1 else "",
            _str(address, "city") or "",
            _str(address, "state") or "",
            _str(address, "postalCode") or "",
            _str(address, "country") or "",
        ]
        xad = _join_components([_hl7_escape(x) for x in comps])
        if xad:
            info.append(f"PID-11|{xad}")
    return (cxs[0] if cxs else None), info


# ================================================================================================ reference ids


def _reference_id_to_reference(cxi: str) -> tuple[Json, bool]:
    """(Reference with identifier, is encounter) for one referenceIdList CXi value."""
    comps = cxi.split("^")
    id_type = _component(comps, 4)
    identifier = _clean(
        {
            "type": {"coding": [{"system": c.URI_SYSTEM, "code": id_type}]} if id_type else None,
            "system": _hd_system(_component(comps, 3)),
            "value": _hl7_unescape(_component(comps, 0)),
        }
    )
    return {"identifier": identifier}, id_type == c.ENCOUNTER_ID_TYPE


def _reference_to_reference_id(reference: Mapping[str, Any]) -> str | None:
    identifier = _map(reference, "identifier")
    value = _str(identifier, "value") if identifier else None
    if identifier is None or value is None:
        return None
    system = _str(identifier, "system")
    id_type = ""
    type_concept = _map(identifier, "type")
    for coding in _maps(type_concept, "coding"):
        id_type = _str(coding, "code") or ""
        break
    authority = _system_hd(system) if system else ""
    return _join_components([_hl7_escape(value), "", "", authority, id_type])


# ================================================================================================ DocumentReference


def _relates_to(relationships: Sequence[tuple[AssociationType, str]]) -> list[Json]:
    out: list[Json] = []
    for kind, target in relationships:
        codes = ["replaces", "transforms"] if kind is AssociationType.XFRM_RPLC else [c.RELATES_TO_CODES.get(kind)]
        for code in codes:
            if code is None:
                raise ValueError(f"{kind.short} is not a document relationship that DocumentReference.relatesTo holds")
            out.append({"code": code, "target": _document_target(target)})
    return out


def _document_target(target: str) -> Json:
    rid = resource_id_for(target)
    if _UUID_URN.fullmatch(target) and rid:
        return {
            "reference": f"DocumentReference/{rid}",
            "identifier": {"use": "official", "system": c.URI_SYSTEM, "value": target},
        }
    return {"reference": target}


def entry_to_document_reference(
    entry: DocumentEntry,
    *,
    base_url: str | None = None,
    resource_id: str | None = None,
    attachment_url: str | None = None,
    patient_reference: str | None = None,
    relates_to: Sequence[tuple[AssociationType, str]] = (),
    profile: str | None = c.DOCUMENT_REFERENCE_COMPREHENSIVE,
    value_sets: ValueSets | None = None,
) -> DocumentReference:
    """An XDS DocumentEntry as an MHD DocumentReference (R4; built with the R4B models, which are wire-identical).

    Args:
        entry: the metadata.
        base_url: FHIR base of the server that serves the document; the attachment url becomes
            ``<base_url>/Binary/<resource id>`` unless ``attachment_url`` or ``entry.uri`` gives one.
        resource_id: the resource's FHIR id (default: none; servers use :func:`resource_id_for`).
        attachment_url: the retrieval URL (a Binary's ``fullUrl`` inside an ITI-65 bundle).
        patient_reference: a literal reference to the patient (``urn:uuid:`` of a Patient entry, ``Patient/x``),
            written beside the SSIN identifier.
        relates_to: (association type, target entryUUID) pairs, written as ``relatesTo``.
        profile: ``meta.profile`` (default the MHD Comprehensive DocumentReference; None for none).

    Raises:
        ValueError: a time, hash or patient id that cannot be written (validated metadata never has one).
    """
    sets = value_sets or load_value_sets()
    contained: list[Json] = []
    authors: list[Json] = []
    for i, author in enumerate(entry.authors, start=1):
        if author.is_empty:
            continue
        reference, resources = _author_resources(author, i)
        authors.append(reference)
        contained += resources
    authenticator: Json | None = None
    if entry.legal_authenticator:
        person = _person_resource(entry.legal_authenticator, _LEGAL_AUTHENTICATOR_ID)
        person["resourceType"] = "Practitioner"
        contained.append(person)
        authenticator = {"reference": f"#{_LEGAL_AUTHENTICATOR_ID}"}
    source_patient = _source_patient(entry)
    if source_patient is not None:
        contained.append(source_patient)

    url = attachment_url or entry.uri
    if url is None and base_url:
        binary_id = resource_id or resource_id_for(entry.entry_uuid)
        if binary_id:
            url = f"{base_url.rstrip('/')}/Binary/{binary_id}"
    attachment = {
        "contentType": entry.mime_type,
        "language": entry.language_code,
        "url": url,
        "size": entry.size,
        "hash": hex_to_fhir_hash(entry.hash) if entry.hash else None,
        "title": entry.title,
        "creation": dtm_to_fhir_time(entry.creation_time) if entry.creation_time else None,
    }
    related: list[Json] = []
    encounters: list[Json] = []
    for cxi in entry.reference_ids:
        reference, is_encounter = _reference_id_to_reference(cxi)
        (encounters if is_encounter else related).append(reference)
    context = {
        "encounter": encounters,
        "event": [_concept(e, CodeKind.EVENT_CODE_LIST, sets) for e in entry.event_codes],
        "period": {
            "start": dtm_to_fhir_time(entry.service_start_time) if entry.service_start_time else None,
            "end": dtm_to_fhir_time(entry.service_stop_time) if entry.service_stop_time else None,
        },
        "facilityType": _concept(entry.healthcare_facility_type_code, CodeKind.HEALTHCARE_FACILITY_TYPE_CODE, sets)
        if entry.healthcare_facility_type_code
        else None,
        "practiceSetting": _concept(entry.practice_setting_code, CodeKind.PRACTICE_SETTING_CODE, sets)
        if entry.practice_setting_code
        else None,
        "sourcePatientInfo": {"reference": f"#{_SOURCE_PATIENT_ID}"} if source_patient is not None else None,
        "related": related,
    }
    resource = {
        "resourceType": "DocumentReference",
        "id": resource_id,
        "meta": {"profile": [profile] if profile else []},
        "contained": contained,
        "masterIdentifier": unique_id_to_identifier(entry.unique_id) if entry.unique_id else None,
        "identifier": [{"use": "official", "system": c.URI_SYSTEM, "value": entry.entry_uuid}]
        if _UUID_URN.fullmatch(entry.entry_uuid)
        else [],
        "status": _STATUS_TO_FHIR[entry.availability_status],
        "type": _concept(entry.type_code, CodeKind.TYPE_CODE, sets) if entry.type_code else None,
        "category": [_concept(entry.class_code, CodeKind.CLASS_CODE, sets)] if entry.class_code else [],
        "subject": _patient_reference(entry.patient_id, patient_reference) if entry.patient_id else None,
        "author": authors,
        "authenticator": authenticator,
        "relatesTo": _relates_to(relates_to),
        "description": entry.comments,
        "securityLabel": [_concept(code, CodeKind.CONFIDENTIALITY_CODE, sets) for code in entry.confidentiality_codes],
        "content": [
            {
                "attachment": attachment,
                "format": code_to_coding(entry.format_code, CodeKind.FORMAT_CODE, sets) if entry.format_code else None,
            }
        ],
        "context": context,
    }
    pruned = _clean(resource)
    if not pruned.get("content"):
        pruned["content"] = [{"attachment": {}}]
    return DocumentReference.model_validate(pruned)


def _entry_uuid_of(resource: Mapping[str, Any]) -> str | None:
    candidates = [
        i
        for i in _maps(resource, "identifier")
        if (v := _str(i, "value")) and _UUID_URN.fullmatch(v) and _map(i, "type") is None
    ]
    official = [i for i in candidates if _str(i, "use") == "official"]
    chosen = official or candidates
    return _str(chosen[0], "value") if chosen else None


def _time(value: str | None, path: str, label: str, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    try:
        return fhir_time_to_dtm(value)
    except ValueError as exc:
        problems.append(_problem(REGISTRY_METADATA_ERROR, path, f"{label}: {exc}"))
        return None


def document_reference_to_entry(
    document_reference: DocumentReference | Mapping[str, Any],
    *,
    entry_uuid: str | None = None,
    resolve_patient: PatientResolver | None = None,
    value_sets: ValueSets | None = None,
) -> tuple[DocumentEntry, list[Problem]]:
    """An MHD DocumentReference as an XDS DocumentEntry, with every problem found while mapping.

    Problems have paths rooted at ``DocumentReference`` (FHIRPath). Required-but-missing elements are *not* reported
    here: the profile check (:func:`rsb_connector.mhd.bundle.parse_provide_bundle`) and the core rules do that.

    Args:
        entry_uuid: used when the resource has no ``urn:uuid`` identifier (e.g. its bundle ``fullUrl``); default a
            new ``urn:uuid:``.
        resolve_patient: turns a literal ``subject.reference`` into a patientId CX.
    """
    sets = value_sets or load_value_sets()
    dr = as_json(document_reference)
    problems: list[Problem] = []
    root = "DocumentReference"
    contained = _contained_index(dr)

    master = _map(dr, "masterIdentifier")
    unique_id = identifier_to_unique_id(master) if master else None
    status_text = _str(dr, "status")
    status = AvailabilityStatus.APPROVED
    if status_text is not None:
        if status_text in _STATUS_FROM_FHIR:
            status = _STATUS_FROM_FHIR[status_text]
        else:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{root}.status",
                    f"status {status_text!r} has no XDS meaning: use current (Approved) or superseded (Deprecated)",
                )
            )

    categories = _maps(dr, "category")
    if len(categories) > 1:
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{root}.category",
                f"{len(categories)} categories given: XDS classCode holds exactly one; send one category",
            )
        )
    class_code = _concept_to_code(
        categories[0] if categories else None, CodeKind.CLASS_CODE, f"{root}.category[0]", problems, sets
    )
    type_code = _concept_to_code(_map(dr, "type"), CodeKind.TYPE_CODE, f"{root}.type", problems, sets)
    confidentiality = [
        code
        for i, cc in enumerate(_maps(dr, "securityLabel"))
        if (code := _concept_to_code(cc, CodeKind.CONFIDENTIALITY_CODE, f"{root}.securityLabel[{i}]", problems, sets))
    ]
    patient_id = _patient_from_reference(_map(dr, "subject"), f"{root}.subject", problems, resolve_patient)
    authors = _authors_from_references(_maps(dr, "author"), contained, f"{root}.author", problems)
    legal: str | None = None
    if (authenticator := _map(dr, "authenticator")) is not None:
        target = _contained_target(authenticator, contained)
        ident = _map(authenticator, "identifier")
        if target is not None:
            legal = _xcn_from_person(target)
        elif ident is not None:
            legal = _xcn_from_person({"identifier": [ident]})
        if legal is None:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{root}.authenticator",
                    "the authenticator cannot be read: reference a contained Practitioner (#id) or give its identifier",
                    Severity.WARNING,
                )
            )

    contents = _maps(dr, "content")
    if len(contents) > 1:
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{root}.content",
                f"{len(contents)} content elements given: an MHD DocumentReference describes one document "
                "(content 1..1); send one DocumentReference per document",
            )
        )
    content = contents[0] if contents else {}
    attachment = _map(content, "attachment") or {}
    apath = f"{root}.content[0].attachment"
    hash_hex: str | None = None
    if (hash_text := _str(attachment, "hash")) is not None:
        try:
            hash_hex = fhir_hash_to_hex(hash_text)
        except ValueError as exc:
            problems.append(_problem(REPOSITORY_METADATA_ERROR, f"{apath}.hash", str(exc)))
    size_value = attachment.get("size")
    size = size_value if isinstance(size_value, int) and not isinstance(size_value, bool) else None
    if size_value is not None and size is None:
        problems.append(_problem(REPOSITORY_METADATA_ERROR, f"{apath}.size", "size is not a whole number of bytes"))
    format_coding = _map(content, "format")
    format_code = coding_to_code(format_coding, CodeKind.FORMAT_CODE, sets) if format_coding else None

    context = _map(dr, "context") or {}
    cpath = f"{root}.context"
    period = _map(context, "period") or {}
    events = [
        code
        for i, cc in enumerate(_maps(context, "event"))
        if (code := _concept_to_code(cc, CodeKind.EVENT_CODE_LIST, f"{cpath}.event[{i}]", problems, sets))
    ]
    reference_ids = [
        cxi for r in _maps(context, "related") + _maps(context, "encounter") if (cxi := _reference_to_reference_id(r))
    ]
    source_patient_id: str | None = None
    source_info: list[str] = []
    if (spi := _map(context, "sourcePatientInfo")) is not None:
        target = _contained_target(spi, contained)
        if target is not None:
            source_patient_id, source_info = _source_patient_info(target)
        elif (ident := _map(spi, "identifier")) is not None:
            source_patient_id = identifier_to_cx(ident)
        elif (literal := _str(spi, "reference")) is not None and resolve_patient is not None:
            source_patient_id = resolve_patient(literal)
        if source_patient_id is None:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"{cpath}.sourcePatientInfo",
                    "sourcePatientInfo names no patient identifier (XDS sourcePatientId): reference a contained "
                    "Patient (#id) whose identifier is the patient's id at the source",
                )
            )

    _check_relates_to(dr, problems)
    entry = DocumentEntry(
        entry_uuid=_entry_uuid_of(dr) or entry_uuid or _new_uuid(),
        unique_id=unique_id,
        patient_id=patient_id,
        mime_type=_str(attachment, "contentType"),
        class_code=class_code,
        type_code=type_code,
        format_code=format_code,
        healthcare_facility_type_code=_concept_to_code(
            _map(context, "facilityType"),
            CodeKind.HEALTHCARE_FACILITY_TYPE_CODE,
            f"{cpath}.facilityType",
            problems,
            sets,
        ),
        practice_setting_code=_concept_to_code(
            _map(context, "practiceSetting"),
            CodeKind.PRACTICE_SETTING_CODE,
            f"{cpath}.practiceSetting",
            problems,
            sets,
        ),
        confidentiality_codes=confidentiality,
        event_codes=events,
        creation_time=_time(_str(attachment, "creation"), f"{apath}.creation", "creation", problems),
        language_code=_str(attachment, "language"),
        source_patient_id=source_patient_id,
        source_patient_info=source_info,
        legal_authenticator=legal,
        service_start_time=_time(_str(period, "start"), f"{cpath}.period.start", "period.start", problems),
        service_stop_time=_time(_str(period, "end"), f"{cpath}.period.end", "period.end", problems),
        hash=hash_hex,
        size=size,
        uri=_str(attachment, "url"),
        title=_str(attachment, "title"),
        comments=_str(dr, "description"),
        authors=authors,
        reference_ids=reference_ids,
        availability_status=status,
    )
    return entry, problems


def _check_relates_to(dr: Mapping[str, Any], problems: list[Problem]) -> None:
    for i, relation in enumerate(_maps(dr, "relatesTo")):
        code = _str(relation, "code")
        if code not in _RELATES_FROM_FHIR:
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"DocumentReference.relatesTo[{i}].code",
                    f"relatesTo.code {code!r} is not a document relationship: use replaces, appends, transforms or "
                    "signs",
                )
            )
        target = _map(relation, "target")
        if target is None or (_str(target, "reference") is None and _map(target, "identifier") is None):
            problems.append(
                _problem(
                    REGISTRY_METADATA_ERROR,
                    f"DocumentReference.relatesTo[{i}].target",
                    "relatesTo.target is missing: reference the related DocumentReference "
                    "(DocumentReference/<id>, or an identifier holding its entryUUID)",
                )
            )


@dataclass(frozen=True, slots=True)
class _Relation:
    code: str
    target: str


def _relation_target(target: Mapping[str, Any]) -> str | None:
    identifier = _map(target, "identifier")
    value = _str(identifier, "value") if identifier else None
    if value and _UUID_URN.fullmatch(value):
        return value
    return _str(target, "reference") or value


def relations(document_reference: DocumentReference | Mapping[str, Any]) -> list[tuple[AssociationType, str]]:
    """The document relationships a DocumentReference declares: (association type, target).

    The target is the related entry's ``urn:uuid:`` entryUUID when the reference carries it as identifier, else the
    literal reference (``DocumentReference/<id>``, a full URL, a bundle ``fullUrl``) for the caller to resolve.
    ``replaces`` + ``transforms`` to the same target is XFRM_RPLC; unknown codes are left out (reported by
    :func:`document_reference_to_entry`).
    """
    dr = as_json(document_reference)
    found: list[_Relation] = []
    for relation in _maps(dr, "relatesTo"):
        code = _str(relation, "code")
        target = _map(relation, "target")
        ref = _relation_target(target) if target is not None else None
        if code in _RELATES_FROM_FHIR and ref:
            found.append(_Relation(code, ref))
    out: list[tuple[AssociationType, str]] = []
    targets_by_code: dict[str, set[str]] = {}
    for rel in found:
        targets_by_code.setdefault(rel.code, set()).add(rel.target)
    both = targets_by_code.get("replaces", set()) & targets_by_code.get("transforms", set())
    for rel in found:
        if rel.target in both and rel.code in ("replaces", "transforms"):
            pair = (AssociationType.XFRM_RPLC, rel.target)
            if pair not in out:
                out.append(pair)
            continue
        pair = (_RELATES_FROM_FHIR[rel.code], rel.target)
        if pair not in out:
            out.append(pair)
    return out


# ================================================================================================ SubmissionSet List


def submission_set_to_list(
    submission_set: SubmissionSet,
    entries: Sequence[DocumentEntry] = (),
    *,
    references: Sequence[str] | None = None,
    resource_id: str | None = None,
    patient_reference: str | None = None,
    profile: str | None = c.SUBMISSION_SET_COMPREHENSIVE,
    value_sets: ValueSets | None = None,
) -> FhirList:
    """An XDS SubmissionSet as an MHD SubmissionSet List (code ``submissionset``, status current, mode working).

    ``entry.item`` references ``references`` when given, else each entry's ``urn:uuid:`` entryUUID (its ``fullUrl``
    in an ITI-65 bundle) or ``DocumentReference/<id>``. The first author goes to ``source`` (a contained
    Practitioner/PractitionerRole), or to the ``ihe-authorOrg`` extension when it is an organisation only.

    Raises:
        ValueError: a submissionTime or patient id that cannot be written.
    """
    sets = value_sets or load_value_sets()
    ss = submission_set
    contained: list[Json] = []
    source: Json | None = None
    extensions: list[Json] = []
    if ss.source_id:
        extensions.append({"url": c.EXT_SOURCE_ID, "valueIdentifier": unique_id_to_identifier(ss.source_id, use=None)})
    if ss.content_type_code:
        extensions.append(
            {
                "url": c.EXT_DESIGNATION_TYPE,
                "valueCodeableConcept": _concept(ss.content_type_code, CodeKind.CONTENT_TYPE_CODE, sets),
            }
        )
    for recipient in ss.intended_recipients:
        extensions.append({"url": c.EXT_INTENDED_RECIPIENT, "valueReference": {"display": recipient}})
    for i, author in enumerate(a for a in ss.authors if not a.is_empty):
        reference, resources = _author_resources(author, i + 1)
        is_org = resources[0].get("resourceType") == "Organization"
        if is_org:
            extensions.append({"url": c.EXT_AUTHOR_ORG, "valueReference": reference})
        elif source is None:
            source = reference
        else:
            continue  # List.source holds one author
        contained += resources
    if references is None:
        refs: list[str] = []
        for entry in entries:
            rid = resource_id_for(entry.entry_uuid)
            refs.append(entry.entry_uuid if _UUID_URN.fullmatch(entry.entry_uuid) else f"DocumentReference/{rid}")
    else:
        refs = list(references)
    identifiers: list[Json] = []
    if ss.unique_id:
        identifiers.append(unique_id_to_identifier(ss.unique_id, use="usual"))
    if _UUID_URN.fullmatch(ss.entry_uuid):
        identifiers.append({"use": "official", "system": c.URI_SYSTEM, "value": ss.entry_uuid})
    resource = {
        "resourceType": "List",
        "id": resource_id,
        "meta": {"profile": [profile] if profile else []},
        "contained": contained,
        "extension": extensions,
        "identifier": identifiers,
        "status": "current" if ss.availability_status is AvailabilityStatus.APPROVED else "retired",
        "mode": "working",
        "title": ss.title,
        "code": {"coding": [{"system": c.LIST_TYPES_SYSTEM, "code": c.LIST_TYPE_SUBMISSION_SET}]},
        "subject": _patient_reference(ss.patient_id, patient_reference) if ss.patient_id else None,
        "date": dtm_to_fhir_time(ss.submission_time) if ss.submission_time else None,
        "source": source,
        "note": [{"text": ss.comments}] if ss.comments else [],
        "entry": [{"item": {"reference": ref}} for ref in refs],
    }
    return FhirList.model_validate(_clean(resource))


def list_items(submission_set_list: FhirList | Mapping[str, Any]) -> list[str]:
    """The references of a List's ``entry.item`` (literal reference, else identifier value), in order."""
    lst = as_json(submission_set_list)
    out: list[str] = []
    for entry in _maps(lst, "entry"):
        item = _map(entry, "item")
        if item is None:
            continue
        ref = _str(item, "reference")
        if ref is None:
            identifier = _map(item, "identifier")
            ref = _str(identifier, "value") if identifier else None
        if ref:
            out.append(ref)
    return out


def _extensions(resource: Mapping[str, Any], url: str) -> list[Mapping[str, Any]]:
    return [e for e in _maps(resource, "extension") if c.canonical(_str(e, "url") or "") == url]


def list_to_submission_set(
    submission_set_list: FhirList | Mapping[str, Any],
    *,
    entry_uuid: str | None = None,
    resolve_patient: PatientResolver | None = None,
    value_sets: ValueSets | None = None,
) -> tuple[SubmissionSet, list[Problem]]:
    """An MHD SubmissionSet List as an XDS SubmissionSet, with the problems found (paths rooted at ``List``).

    ``entry_uuid`` is used when the List has no ``urn:uuid`` identifier. A Folder List (code ``folder``) is reported:
    folders are not supported.
    """
    sets = value_sets or load_value_sets()
    lst = as_json(submission_set_list)
    problems: list[Problem] = []
    root = "List"
    contained = _contained_index(lst)

    codes = [(_str(cd, "system"), _str(cd, "code")) for cd in _maps(_map(lst, "code"), "coding")]
    if (c.LIST_TYPES_SYSTEM, c.LIST_TYPE_SUBMISSION_SET) not in [(c.canonical(s or ""), k) for s, k in codes]:
        folder = any(k == c.LIST_TYPE_FOLDER for _s, k in codes)
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{root}.code",
                "Folders are not supported: send only the SubmissionSet List"
                if folder
                else f"List.code must be {c.LIST_TYPES_SYSTEM}#{c.LIST_TYPE_SUBMISSION_SET} for a SubmissionSet",
            )
        )
    mode = _str(lst, "mode")
    if mode is not None and mode != "working":
        problems.append(
            _problem(REGISTRY_METADATA_ERROR, f"{root}.mode", f"List.mode is {mode!r}: a SubmissionSet is 'working'")
        )
    status_text = _str(lst, "status")
    status = AvailabilityStatus.APPROVED
    if status_text not in (None, "current"):
        status = AvailabilityStatus.DEPRECATED
        problems.append(
            _problem(
                REGISTRY_METADATA_ERROR,
                f"{root}.status",
                f"List.status is {status_text!r}: a submitted SubmissionSet is 'current'",
            )
        )

    unique_id: str | None = None
    own_uuid: str | None = None
    for identifier in _maps(lst, "identifier"):
        value = _str(identifier, "value") or ""
        if _UUID_URN.fullmatch(value) and _str(identifier, "use") in (None, "official") and own_uuid is None:
            own_uuid = value
        elif unique_id is None and not _UUID_URN.fullmatch(value):
            unique_id = identifier_to_unique_id(identifier)

    source_id: str | None = None
    for ext in _extensions(lst, c.EXT_SOURCE_ID):
        ident = _map(ext, "valueIdentifier")
        uri = _str(ext, "valueUri")
        if ident is not None:
            source_id = identifier_to_unique_id(ident)
        elif uri is not None:
            source_id = uri.removeprefix("urn:oid:")
    content_type: Code | None = None
    for i, ext in enumerate(_extensions(lst, c.EXT_DESIGNATION_TYPE)):
        content_type = _concept_to_code(
            _map(ext, "valueCodeableConcept"),
            CodeKind.CONTENT_TYPE_CODE,
            f"{root}.extension('{c.EXT_DESIGNATION_TYPE}')[{i}]",
            problems,
            sets,
        )
    recipients: list[str] = []
    for ext in _extensions(lst, c.EXT_INTENDED_RECIPIENT):
        ref = _map(ext, "valueReference")
        text = (_str(ref, "display") or _str(ref, "reference")) if ref else None
        if text:
            recipients.append(text)
    author_refs = [r for ext in _extensions(lst, c.EXT_AUTHOR_ORG) if (r := _map(ext, "valueReference"))]
    if (src := _map(lst, "source")) is not None:
        author_refs.insert(0, src)
    authors = _authors_from_references(author_refs, contained, f"{root}.source", problems)
    notes = [t for n in _maps(lst, "note") if (t := _str(n, "text"))]
    ss = SubmissionSet(
        entry_uuid=own_uuid or entry_uuid or _new_uuid(),
        unique_id=unique_id,
        source_id=source_id,
        patient_id=_patient_from_reference(_map(lst, "subject"), f"{root}.subject", problems, resolve_patient),
        submission_time=_time(_str(lst, "date"), f"{root}.date", "date", problems),
        content_type_code=content_type,
        authors=authors,
        title=_str(lst, "title"),
        comments="\n".join(notes) or None,
        intended_recipients=recipients,
        availability_status=status,
    )
    return ss, problems
