"""ITI-65 Provide Document Bundle: build the transaction Bundle (Document Source) and parse it (Document Recipient).

:func:`build_provide_bundle` turns a :class:`~rsb_connector.metadata.model.Submission` and its documents into an MHD
transaction Bundle: ``meta.profile`` one of the three ProvideBundle profiles, one SubmissionSet List, one
DocumentReference and one Binary per document (``attachment.url`` = the Binary's ``fullUrl``), an optional Patient,
every entry with a ``urn:uuid:`` ``fullUrl`` and ``request`` POST.

:func:`parse_provide_bundle` does the reverse and reports *every* problem at once, as XDS does:

1. the envelope: JSON, ``resourceType`` Bundle, ``type`` transaction, ``meta.profile`` present and one of the three
   profiles, the resources valid R4 (checked with the R4B models, wire-identical for these resources), each entry
   with a ``fullUrl`` that no other entry has (bdl-7) and a ``request`` (bdl-3);
2. the profile's required elements (Comprehensive: masterIdentifier, status, type, category, subject,
   securityLabel, attachment contentType/language/creation/url, format, context facilityType/practiceSetting/
   sourcePatientInfo; the List's sourceId, identifiers, date, subject, designationType; contained author and
   sourcePatientInfo unless UnContained), reported ``XDSRegistryMetadataError`` at the FHIR element's path;
3. references: each DocumentReference's ``attachment.url`` must resolve to a Binary of the bundle
   (``XDSMissingDocument``), each Binary must be used (``XDSMissingDocumentMetadata``), List items must resolve
   to DocumentReferences of the bundle, subjects to a patient (``XDSUnknownPatientId`` for a bad patient link);
4. the core ITI-41 rules (:func:`~rsb_connector.metadata.rules.validate_submission`) on the mapped submission, and
   the supplied hash/size against the Binary content; their XDS paths are translated to the Bundle's FHIRPaths and
   repeats of a problem already reported at the same path are dropped.

Paths are FHIRPath into the request: ``Bundle.entry[1].resource.content[0].attachment.language``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel

from ..errors import HubRefused, Problem, ProtocolError, Severity
from ..identifiers import SSIN_OID
from ..metadata.content import ContentDigest
from ..metadata.model import (
    Association,
    AssociationType,
    DocumentEntry,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from ..metadata.rules import validate_hash_and_size, validate_submission
from ..metadata.valuesets import ValueSets, load_value_sets
from . import constants as c
from .mapping import (
    Json,
    PatientResolver,
    as_json,
    document_reference_to_entry,
    entry_to_document_reference,
    identifier_to_cx,
    list_items,
    list_to_submission_set,
    relations,
    resource_id_for,
    submission_set_to_list,
)
from .outcome import operation_outcome_to_problems

__all__ = [
    "BundleEntryInfo",
    "DocumentResolver",
    "ParsedBundle",
    "TransactionResponse",
    "build_provide_bundle",
    "build_transaction_response",
    "parse_provide_bundle",
    "parse_transaction_response",
]

DocumentResolver = PatientResolver
"""Turns a literal DocumentReference reference (``DocumentReference/<id>``, a full URL) into the entryUUID of a
registered DocumentEntry, or None."""

REGISTRY_METADATA_ERROR: Final = "XDSRegistryMetadataError"
REGISTRY_ERROR: Final = "XDSRegistryError"
MISSING_DOCUMENT: Final = "XDSMissingDocument"
MISSING_DOCUMENT_METADATA: Final = "XDSMissingDocumentMetadata"

_UUID_URN: Final = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_KNOWN_TYPES: Final = ("List", "DocumentReference", "Binary", "Patient", "Parameters")
_MAX_MODEL_ERRORS: Final = 25
_NAMESPACE: Final = uuid.UUID("6f1b3c1e-52c4-5d0e-9a57-2f0f6f1d7a10")

# XDS attribute -> FHIR element (relative to the resource) for problem path translation.
_ENTRY_ELEMENTS: Final = {
    "uniqueId": "masterIdentifier",
    "entryUUID": "identifier",
    "patientId": "subject",
    "classCode": "category",
    "typeCode": "type",
    "formatCode": "content[0].format",
    "healthcareFacilityTypeCode": "context.facilityType",
    "practiceSettingCode": "context.practiceSetting",
    "confidentialityCode": "securityLabel",
    "eventCodeList": "context.event",
    "creationTime": "content[0].attachment.creation",
    "serviceStartTime": "context.period.start",
    "serviceStopTime": "context.period.end",
    "languageCode": "content[0].attachment.language",
    "sourcePatientId": "context.sourcePatientInfo",
    "sourcePatientInfo": "context.sourcePatientInfo",
    "mimeType": "content[0].attachment.contentType",
    "hash": "content[0].attachment.hash",
    "size": "content[0].attachment.size",
    "repositoryUniqueId": "content[0].attachment.url",
    "URI": "content[0].attachment.url",
    "title": "content[0].attachment.title",
    "author": "author",
    "legalAuthenticator": "authenticator",
    "availabilityStatus": "status",
    "objectType": "",
}
_SUBMISSION_SET_ELEMENTS: Final = {
    "uniqueId": "identifier",
    "entryUUID": "identifier",
    "sourceId": f"extension('{c.EXT_SOURCE_ID}')",
    "patientId": "subject",
    "submissionTime": "date",
    "contentTypeCode": f"extension('{c.EXT_DESIGNATION_TYPE}')",
    "author": "source",
    "availabilityStatus": "status",
    "title": "title",
}
# DocumentEntry attributes a Minimal bundle may leave out (downgraded to warnings when missing).
_MINIMAL_OPTIONAL_ENTRY: Final = {
    "classCode": "class_code",
    "typeCode": "type_code",
    "formatCode": "format_code",
    "healthcareFacilityTypeCode": "healthcare_facility_type_code",
    "practiceSettingCode": "practice_setting_code",
    "confidentialityCode": "confidentiality_codes",
    "creationTime": "creation_time",
    "languageCode": "language_code",
    "sourcePatientId": "source_patient_id",
}
_XDS_PATH: Final = re.compile(
    r"(?P<owner>DocumentEntry|Association|Document)\[(?P<id>[^\]]*)\](?:\.(?P<attr>[A-Za-z]+)(?P<rest>.*))?"
)
_SS_PATH: Final = re.compile(r"SubmissionSet(?:\.(?P<attr>[A-Za-z]+)(?P<rest>.*))?")
_RESOURCE_PATH: Final = re.compile(r"Bundle(?:\.entry(?:\[\d+\](?:\.resource)?)?)?")


# ================================================================================================ results


@dataclass(frozen=True, slots=True)
class BundleEntryInfo:
    """What one request entry became.

    Attributes:
        index: position in ``Bundle.entry``.
        resource_type: ``List``, ``DocumentReference``, ``Binary``, ``Patient``... (None when absent).
        full_url: the entry's ``fullUrl``.
        object_id: the entryUUID of the SubmissionSet / DocumentEntry it became; for a Binary, the entryUUID of the
            DocumentEntry it is the document of; for a Patient, its patientId CX; else None.
    """

    index: int
    resource_type: str | None
    full_url: str | None
    object_id: str | None


@dataclass(slots=True)
class ParsedBundle:
    """An ITI-65 request, mapped to XDS.

    Attributes:
        submission: the SubmissionSet, DocumentEntries and associations (HasMember Original, RPLC/APND/XFRM...).
        documents: document bytes by DocumentEntry entryUUID.
        problems: every problem found (errors and warnings), with FHIRPath paths into the bundle.
        profile: the bundle's ProvideBundle profile, None when absent or unknown.
        entries: one :class:`BundleEntryInfo` per request entry, in order (to build the transaction-response).
    """

    submission: Submission
    documents: dict[str, bytes]
    problems: list[Problem]
    profile: c.ProvideBundleProfile | None = None
    entries: list[BundleEntryInfo] = field(default_factory=list)
    _paths: _PathMap | None = None

    @property
    def ok(self) -> bool:
        """No problem of error severity."""
        return not any(p.is_error for p in self.problems)

    def fhir_problems(self, problems: Sequence[Problem]) -> list[Problem]:
        """Translate XDS paths (``DocumentEntry[<id>].classCode``, ``SubmissionSet.patientId``...) of problems
        reported later (e.g. by the registry) to FHIRPaths into this bundle; other paths are kept."""
        if self._paths is None:
            return list(problems)
        return [self._paths.translate(p) for p in problems]

    def locations(self, *, base_url: str | None = None) -> list[str]:
        """``<Type>/<id>`` (or ``<base_url>/<Type>/<id>``) for each request entry, with ids following
        :func:`~rsb_connector.mhd.mapping.resource_id_for` (a Binary takes its DocumentEntry's id)."""
        out: list[str] = []
        for info in self.entries:
            rid = resource_id_for(info.object_id) if info.object_id else None
            if rid is None and info.full_url:
                rid = resource_id_for(info.full_url)
            relative = f"{info.resource_type or 'Resource'}/{rid or info.index}"
            out.append(f"{base_url.rstrip('/')}/{relative}" if base_url else relative)
        return out


@dataclass(frozen=True, slots=True)
class TransactionResponse:
    """A transaction-response: per entry the location and status, and the warnings the server attached."""

    locations: list[str]
    statuses: list[str]
    problems: list[Problem]


# ================================================================================================ building


def _full_url(object_id: str, salt: str = "") -> str:
    if not salt and _UUID_URN.fullmatch(object_id):
        return object_id.lower()
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, salt + object_id)}"


def build_provide_bundle(
    submission: Submission,
    documents: Mapping[str, bytes],
    *,
    profile: str | c.ProvideBundleProfile = c.ProvideBundleProfile.COMPREHENSIVE,
    patient: Mapping[str, Any] | None = None,
    value_sets: ValueSets | None = None,
) -> Bundle:
    """The ITI-65 transaction Bundle for ``submission``.

    Args:
        submission: SubmissionSet, entries and associations (relationships become ``relatesTo``).
        documents: the document bytes by DocumentEntry entryUUID; each entry needs its document.
        profile: ``Comprehensive`` (default), ``Minimal``, ``UnContained`` or a profile URL.
        patient: a Patient resource (JSON) to include; it is created only if no Patient has its first
            identifier (``ifNoneExist``), and the subjects reference it.

    Raises:
        ValueError: an unknown profile, an entry without its document, or metadata that cannot be written.
    """
    bundle_profile = profile if isinstance(profile, c.ProvideBundleProfile) else c.ProvideBundleProfile.parse(profile)
    sets = value_sets or load_value_sets()
    ss = submission.submission_set
    missing = [e.entry_uuid for e in submission.entries if e.entry_uuid not in documents]
    if missing:
        raise ValueError(f"no document given for the entries {missing}: pass documents={{entry_uuid: bytes}}")
    entries: list[Json] = []
    patient_url: str | None = None
    patient_entry: Json | None = None
    if patient is not None:
        patient_json = as_json(patient)
        if patient_json.get("resourceType") != "Patient":
            raise ValueError("patient must be a Patient resource")
        patient_url = _full_url(ss.patient_id or "patient", "patient:")
        request: Json = {"method": "POST", "url": "Patient"}
        identifiers = patient_json.get("identifier")
        if isinstance(identifiers, list) and identifiers and isinstance(identifiers[0], Mapping):
            first = identifiers[0]
            if first.get("system") and first.get("value"):
                request["ifNoneExist"] = f"identifier={first['system']}|{first['value']}"
        patient_entry = {"fullUrl": patient_url, "resource": patient_json, "request": request}

    dr_urls = {e.entry_uuid: _full_url(e.entry_uuid) for e in submission.entries}
    list_resource = submission_set_to_list(
        ss,
        submission.entries,
        references=[dr_urls[e.entry_uuid] for e in submission.entries],
        patient_reference=patient_url,
        profile=bundle_profile.submission_set_profile,
        value_sets=sets,
    )
    entries.append(
        {
            "fullUrl": _full_url(ss.entry_uuid),
            "resource": as_json(list_resource),
            "request": {"method": "POST", "url": "List"},
        }
    )
    binaries: list[Json] = []
    for entry in submission.entries:
        binary_url = _full_url(dr_urls[entry.entry_uuid], "binary:")
        relates = [
            (a.type, a.target)
            for a in submission.associations
            if a.type.is_relationship and a.source == entry.entry_uuid
        ]
        document_reference = entry_to_document_reference(
            entry,
            attachment_url=binary_url,
            patient_reference=patient_url,
            relates_to=relates,
            profile=bundle_profile.document_reference_profile,
            value_sets=sets,
        )
        entries.append(
            {
                "fullUrl": dr_urls[entry.entry_uuid],
                "resource": as_json(document_reference),
                "request": {"method": "POST", "url": "DocumentReference"},
            }
        )
        binaries.append(
            {
                "fullUrl": binary_url,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": entry.mime_type or "application/octet-stream",
                    "data": base64.b64encode(bytes(documents[entry.entry_uuid])).decode("ascii"),
                },
                "request": {"method": "POST", "url": "Binary"},
            }
        )
    entries += binaries
    if patient_entry is not None:
        entries.append(patient_entry)
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "meta": {"profile": [bundle_profile.value]},
            "type": "transaction",
            "entry": entries,
        }
    )


def build_transaction_response(locations: Sequence[str], *, status: str = "201 Created") -> Bundle:
    """The ITI-65 success answer: a ``transaction-response`` with one entry per request entry, in order, each
    ``response.status`` ``201 Created`` and ``response.location``."""
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [{"response": {"status": status, "location": location}} for location in locations],
        }
    )


def parse_transaction_response(response: Bundle | Mapping[str, Any] | bytes | str) -> TransactionResponse:
    """Read an ITI-65 answer.

    Raises:
        HubRefused: the answer is an OperationOutcome (the hub refused the bundle); carries its problems.
        ProtocolError: the answer is neither a transaction-response Bundle nor an OperationOutcome.
    """
    data = _load_json(response)
    if data is None:
        raise ProtocolError("the ITI-65 answer is not a JSON object")
    if data.get("resourceType") == "OperationOutcome":
        raise HubRefused(operation_outcome_to_problems(data))
    if data.get("resourceType") != "Bundle" or data.get("type") != "transaction-response":
        raise ProtocolError(
            f"the ITI-65 answer is a {data.get('resourceType')!r} of type {data.get('type')!r}, not a "
            "transaction-response Bundle"
        )
    locations: list[str] = []
    statuses: list[str] = []
    problems: list[Problem] = []
    for item in data.get("entry") or []:
        response_part = item.get("response") if isinstance(item, Mapping) else None
        if not isinstance(response_part, Mapping):
            raise ProtocolError("a transaction-response entry has no response")
        locations.append(str(response_part.get("location") or ""))
        statuses.append(str(response_part.get("status") or ""))
        outcome = response_part.get("outcome")
        if isinstance(outcome, Mapping):
            problems += operation_outcome_to_problems(outcome)
    return TransactionResponse(locations, statuses, problems)


# ================================================================================================ parsing helpers


def _load_json(value: BaseModel | Mapping[str, Any] | bytes | str) -> Json | None:
    if isinstance(value, BaseModel | Mapping):
        return as_json(value)
    try:
        loaded = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _str(obj: object, key: str) -> str | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, str) and value else None


def _dict(obj: object, key: str) -> Mapping[str, Any] | None:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return value if isinstance(value, Mapping) else None


def _dicts(obj: object, key: str) -> list[Mapping[str, Any]]:
    value = obj.get(key) if isinstance(obj, Mapping) else None
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _error(code: str, path: str, message: str, severity: Severity = Severity.ERROR) -> Problem:
    return Problem(code=code, message=message, path=path, severity=severity)


def _reroot(problems: Sequence[Problem], old: str, new: str) -> list[Problem]:
    return [
        Problem(p.code, p.message, new + p.path[len(old) :] if p.path.startswith(old) else p.path, p.severity)
        for p in problems
    ]


def _model_problems(data: Json) -> list[Problem]:
    """Structural R4 problems (the R4B models reject unknown elements and wrong types)."""
    try:
        Bundle.model_validate(data)
    except Exception as exc:  # pydantic ValidationError, or KeyError/TypeError from fhir_core on odd input
        errors = getattr(exc, "errors", None)
        if not callable(errors):
            return [_error(REGISTRY_METADATA_ERROR, "Bundle", f"the Bundle is not valid FHIR R4 ({exc})")]
        problems: list[Problem] = []
        for err in list(errors())[:_MAX_MODEL_ERRORS]:
            path = "Bundle"
            for part in err.get("loc", ()):
                path += f"[{part}]" if isinstance(part, int) else f".{part}"
            problems.append(
                _error(REGISTRY_METADATA_ERROR, path, f"not valid FHIR R4: {err.get('msg', 'invalid value')}")
            )
        return problems
    return []


def _reference_keys(full_url: str | None, resource: Mapping[str, Any]) -> list[str]:
    """The strings by which other entries may reference this one: its fullUrl and ``Type/id``."""
    keys: list[str] = []
    if full_url:
        keys.append(full_url)
        if full_url.lower() != full_url:
            keys.append(full_url.lower())
    rtype, rid = _str(resource, "resourceType"), _str(resource, "id")
    if rtype and rid:
        keys.append(f"{rtype}/{rid}")
    return keys


def _lookup(index: Mapping[str, int], reference: str) -> int | None:
    if reference in index:
        return index[reference]
    if reference.lower() in index:
        return index[reference.lower()]
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and f"{parts[-2]}/{parts[-1]}" in index:  # absolute URL of a bundle resource
        return index[f"{parts[-2]}/{parts[-1]}"]
    return None


def _default_document_resolver(reference: str) -> str | None:
    """``DocumentReference/<uuid>`` (or a URL ending so) -> ``urn:uuid:<uuid>`` (the hub's id convention)."""
    if _UUID_URN.fullmatch(reference):
        return reference.lower()
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "DocumentReference":
        candidate = f"urn:uuid:{parts[-1]}"
        if _UUID_URN.fullmatch(candidate):
            return candidate.lower()
    return None


def _patient_cx_of(resource: Mapping[str, Any]) -> str | None:
    def is_ssin(identifier: Mapping[str, Any]) -> bool:
        system = _str(identifier, "system") or ""
        return c.OID_BY_SYSTEM.get(system) == SSIN_OID or system == f"urn:oid:{SSIN_OID}"

    ordered = sorted(_dicts(resource, "identifier"), key=lambda i: 0 if is_ssin(i) else 1)
    for identifier in ordered:
        system = _str(identifier, "system") or ""
        if system in c.OID_BY_SYSTEM or system.startswith("urn:oid:"):
            return identifier_to_cx(identifier)
    return None


@dataclass(slots=True)
class _PathMap:
    """Translates XDS problem paths into FHIRPaths into the bundle."""

    list_path: str | None = None
    entry_paths: dict[str, str] = field(default_factory=dict)  # entryUUID -> resource path
    entry_order: list[str] = field(default_factory=list)  # entryUUIDs in submission order ('#i' paths)
    binary_paths: dict[str, str] = field(default_factory=dict)  # entryUUID -> Binary entry path
    association_paths: dict[str, str] = field(default_factory=dict)

    def translate(self, problem: Problem) -> Problem:
        path = self._translate(problem.path)
        m = _XDS_PATH.fullmatch(problem.path)
        if problem.code == MISSING_DOCUMENT and m and m.group("owner") == "DocumentEntry" and not m.group("attr"):
            # the rules name the entry; in the bundle the document is the Binary (or the url that should name it)
            ident = self._entry_id(m.group("id"))
            binary = self.binary_paths.get(ident)
            if binary is not None:
                path = binary
            elif ident in self.entry_paths:
                path = f"{self.entry_paths[ident]}.content[0].attachment.url"
        return problem if path == problem.path else Problem(problem.code, problem.message, path, problem.severity)

    def _entry_id(self, ident: str) -> str:
        if ident.startswith("#") and ident[1:].isdigit() and int(ident[1:]) < len(self.entry_order):
            return self.entry_order[int(ident[1:])]
        return ident

    def _translate(self, path: str) -> str:
        m = _SS_PATH.fullmatch(path)
        if m and self.list_path:
            attr, rest = m.group("attr"), m.group("rest") or ""
            if attr is None:
                return self.list_path
            element = _SUBMISSION_SET_ELEMENTS.get(attr)
            return f"{self.list_path}.{element}{rest}" if element else path
        m = _XDS_PATH.fullmatch(path)
        if not m:
            return path
        owner, ident, attr, rest = m.group("owner"), m.group("id"), m.group("attr"), m.group("rest") or ""
        if owner == "Association":
            return self.association_paths.get(ident) or path
        if owner == "Document":
            base = self.binary_paths.get(ident) or self.entry_paths.get(ident)
            return base or path
        base = self.entry_paths.get(self._entry_id(ident))
        if base is None:
            return path
        if attr is None:
            return base
        element = _ENTRY_ELEMENTS.get(attr)
        if element is None:
            return path
        return f"{base}.{element}{rest}" if element else base


def _missing(path: str, element: str, xds: str, profile: c.ProvideBundleProfile, instead: str) -> Problem:
    return _error(
        REGISTRY_METADATA_ERROR,
        path,
        f"{element} (XDS {xds}) is missing: the MHD {profile.short} profile requires it; {instead}",
    )


def _check_document_reference(dr: Mapping[str, Any], path: str, profile: c.ProvideBundleProfile) -> list[Problem]:
    """The required elements of the profile's DocumentReference (Minimal, then Comprehensive, then contained)."""
    problems: list[Problem] = []
    contents = _dicts(dr, "content")
    content = contents[0] if contents else {}
    attachment = _dict(content, "attachment") or {}
    apath = f"{path}.content[0].attachment"
    if _dict(dr, "masterIdentifier") is None:
        problems.append(
            _missing(f"{path}.masterIdentifier", "masterIdentifier", "uniqueId", profile,
                     "send system urn:ietf:rfc:3986 and value urn:oid:<the document's OID>")
        )  # fmt: skip
    if _str(dr, "status") is None:
        problems.append(_missing(f"{path}.status", "status", "availabilityStatus", profile, "send current"))
    if not contents:
        problems.append(_missing(f"{path}.content", "content", "document", profile, "describe the document"))
    if _str(attachment, "contentType") is None:
        problems.append(
            _missing(f"{apath}.contentType", "attachment.contentType", "mimeType", profile, "e.g. application/pdf")
        )
    if "data" in attachment:
        problems.append(
            _error(
                REGISTRY_METADATA_ERROR,
                f"{apath}.data",
                "the document is inline in attachment.data: MHD sends it as a Binary entry referenced by "
                "attachment.url",
            )
        )
    if not profile.comprehensive:
        return problems
    context = _dict(dr, "context") or {}
    cpath = f"{path}.context"
    checks: list[tuple[bool, str, str, str, str]] = [
        (_dict(dr, "type") is None, f"{path}.type", "type", "typeCode", "send the document type coding"),
        (not _dicts(dr, "category"), f"{path}.category", "category", "classCode", "send one class coding"),
        (_dict(dr, "subject") is None, f"{path}.subject", "subject", "patientId",
         f"reference the patient with identifier system {c.IDENTIFIER_SYSTEMS[SSIN_OID]}"),
        (not _dicts(dr, "securityLabel"), f"{path}.securityLabel", "securityLabel", "confidentialityCode",
         "send at least one, e.g. v3-Confidentiality N"),
        (_str(attachment, "language") is None, f"{apath}.language", "attachment.language", "languageCode",
         "e.g. fr-BE"),
        (_str(attachment, "creation") is None, f"{apath}.creation", "attachment.creation", "creationTime",
         "e.g. 2024-05-01T10:00:00+02:00"),
        (_dict(content, "format") is None, f"{path}.content[0].format", "content.format", "formatCode",
         "e.g. urn:ihe:iti:xds:2017:mimeTypeSufficient"),
        (_dict(context, "facilityType") is None, f"{cpath}.facilityType", "context.facilityType",
         "healthcareFacilityTypeCode", "send the facility type coding"),
        (_dict(context, "practiceSetting") is None, f"{cpath}.practiceSetting", "context.practiceSetting",
         "practiceSettingCode", "send the practice setting coding"),
        (_dict(context, "sourcePatientInfo") is None, f"{cpath}.sourcePatientInfo", "context.sourcePatientInfo",
         "sourcePatientId", "reference a contained Patient holding the patient's id at the source"),
    ]  # fmt: skip
    problems += [_missing(p, element, xds, profile, instead) for absent, p, element, xds, instead in checks if absent]
    if profile.contained:
        refs = [(f"{path}.author[{i}]", a) for i, a in enumerate(_dicts(dr, "author"))]
        if (authenticator := _dict(dr, "authenticator")) is not None:
            refs.append((f"{path}.authenticator", authenticator))
        if (spi := _dict(context, "sourcePatientInfo")) is not None:
            refs.append((f"{cpath}.sourcePatientInfo", spi))
        for ref_path, ref in refs:
            literal = _str(ref, "reference")
            if not (literal and literal.startswith("#")):
                problems.append(
                    _error(
                        REGISTRY_METADATA_ERROR,
                        ref_path,
                        "the MHD Comprehensive profile requires a contained resource here (reference '#id'): contain "
                        "it, or declare the UnContained.Comprehensive profile",
                    )
                )
    return problems


def _check_list(lst: Mapping[str, Any], path: str, profile: c.ProvideBundleProfile) -> list[Problem]:
    problems: list[Problem] = []
    ext_urls = [c.canonical(_str(e, "url") or "") for e in _dicts(lst, "extension")]
    if c.EXT_SOURCE_ID not in ext_urls:
        problems.append(
            _missing(f"{path}.extension('{c.EXT_SOURCE_ID}')", "extension ihe-sourceId", "sourceId", profile,
                     "send valueIdentifier urn:ietf:rfc:3986 + urn:oid:<the Document Source OID>")
        )  # fmt: skip
    identifiers = _dicts(lst, "identifier")
    values = [_str(i, "value") or "" for i in identifiers]
    if not any(v and not _UUID_URN.fullmatch(v) for v in values):
        problems.append(
            _missing(f"{path}.identifier", "identifier (use usual)", "uniqueId", profile,
                     "send system urn:ietf:rfc:3986 and value urn:oid:<the SubmissionSet's OID>")
        )  # fmt: skip
    if _str(lst, "date") is None:
        problems.append(
            _missing(f"{path}.date", "date", "submissionTime", profile, "send the submission time with a time zone")
        )
    if not profile.comprehensive:
        return problems
    if _dict(lst, "subject") is None:
        problems.append(
            _missing(f"{path}.subject", "subject", "patientId", profile,
                     f"reference the patient with identifier system {c.IDENTIFIER_SYSTEMS[SSIN_OID]}")
        )  # fmt: skip
    if c.EXT_DESIGNATION_TYPE not in ext_urls:
        problems.append(
            _missing(f"{path}.extension('{c.EXT_DESIGNATION_TYPE}')", "extension ihe-designationType",
                     "contentTypeCode", profile, "send valueCodeableConcept with the submission's content type")
        )  # fmt: skip
    if profile.contained and (source := _dict(lst, "source")) is not None:
        literal = _str(source, "reference")
        if not (literal and literal.startswith("#")):
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.source",
                    "the MHD Comprehensive profile requires a contained author (reference '#id'): contain it, or "
                    "declare the UnContained.Comprehensive profile",
                )
            )
    return problems


def _bundle_profile(data: Mapping[str, Any], problems: list[Problem]) -> c.ProvideBundleProfile | None:
    meta = _dict(data, "meta") or {}
    raw = meta.get("profile")
    declared = [p for p in raw if isinstance(p, str)] if isinstance(raw, list) else []
    valid = ", ".join(p.value for p in c.ProvideBundleProfile)
    if not declared:
        problems.append(
            _error(
                REGISTRY_METADATA_ERROR,
                "Bundle.meta.profile",
                f"the Bundle declares no meta.profile: declare the MHD profile it follows, one of {valid}",
            )
        )
        return None
    for url in declared:
        for profile in c.ProvideBundleProfile:
            if url == profile.value:
                return profile
            if c.canonical(url) == profile.value:
                problems.append(
                    _error(
                        REGISTRY_METADATA_ERROR,
                        "Bundle.meta.profile",
                        f"meta.profile {url!r} uses http://: the canonical URL is {profile.value}",
                        Severity.WARNING,
                    )
                )
                return profile
    problems.append(
        _error(
            REGISTRY_METADATA_ERROR,
            "Bundle.meta.profile",
            f"meta.profile {declared} names no MHD Provide Document Bundle profile: declare one of {valid}",
        )
    )
    return None


def _dedupe(first: Sequence[Problem], later: Sequence[Problem]) -> list[Problem]:
    """``first`` (FHIR-level problems) in order, then ``later`` (rule problems) minus repeats: a later problem at a
    path ``first`` already explains, or an exact repeat, is dropped."""
    out: list[Problem] = []
    seen: set[tuple[str, str, str]] = set()
    for p in first:
        key = (p.code, p.path, p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    explained = [(p.code, p.path) for p in first if p.path and p.is_error]

    def is_explained(problem: Problem) -> bool:
        path = problem.path
        inside = [(code, e) for code, e in explained if e == path or e.startswith((path + ".", path + "["))]
        if _RESOURCE_PATH.fullmatch(path):
            # a problem about a whole resource is explained only by one of the same code about a part of it
            return any(code == problem.code for code, _e in inside)
        return bool(inside)

    for p in later:
        key = (p.code, p.path, p.message)
        if key in seen or is_explained(p):
            continue
        seen.add(key)
        out.append(p)
    return out


# ================================================================================================ parsing


def parse_provide_bundle(
    bundle_json: Bundle | Mapping[str, Any] | bytes | str,
    *,
    resolve_patient: PatientResolver | None = None,
    resolve_document: DocumentResolver | None = None,
    value_sets: ValueSets | None = None,
    validate: bool = True,
    minimal_as_warnings: bool = True,
) -> ParsedBundle:
    """Parse and check an ITI-65 Provide Document Bundle (see the module docstring for every check).

    Args:
        bundle_json: the request body (bytes or text), its parsed JSON, or a Bundle model.
        resolve_patient: resolves a literal patient reference that is not a Patient entry of the bundle
            (``Patient/123``) to a patientId CX.
        resolve_document: resolves a ``relatesTo`` target to the entryUUID of a registered entry; when it does not
            know the target, ``DocumentReference/<uuid>`` means ``urn:uuid:<uuid>``.
        validate: also run the core ITI-41 rules and the hash/size check.
        minimal_as_warnings: for a Minimal bundle, report the core rules' "missing" problems for attributes
            Minimal metadata may leave out (classCode, typeCode, formatCode, facility, practice setting,
            confidentiality, creationTime, languageCode, sourcePatientId) as warnings (XDR limited metadata);
            patientId stays required.
    """
    sets = value_sets or load_value_sets()
    problems: list[Problem] = []
    empty = Submission(submission_set=SubmissionSet(entry_uuid=""))
    data = _load_json(bundle_json)
    if data is None:
        problems.append(_error(REGISTRY_ERROR, "Bundle", "the request body is not a JSON object: send a FHIR Bundle"))
        return ParsedBundle(empty, {}, problems)
    if data.get("resourceType") != "Bundle":
        problems.append(
            _error(
                REGISTRY_ERROR,
                "Bundle",
                f"expected a Bundle, got {data.get('resourceType')!r}: ITI-65 posts a transaction Bundle",
            )
        )
        return ParsedBundle(empty, {}, problems)
    if data.get("type") != "transaction":
        problems.append(
            _error(
                REGISTRY_METADATA_ERROR,
                "Bundle.type",
                f"Bundle.type is {data.get('type')!r}: ITI-65 sends a 'transaction' Bundle",
            )
        )
    profile = _bundle_profile(data, problems)
    checked_profile = profile or c.ProvideBundleProfile.COMPREHENSIVE

    raw_entries = data.get("entry")
    entries: list[Mapping[str, Any]] = (
        [e if isinstance(e, Mapping) else {} for e in raw_entries] if isinstance(raw_entries, list) else []
    )
    unknown_types = False
    for i, item in enumerate(entries):
        rtype = _str(_dict(item, "resource"), "resourceType")
        if rtype not in _KNOWN_TYPES:
            unknown_types = True
            what = f"not {rtype!r}" if rtype else "but this entry has no resource"
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"Bundle.entry[{i}].resource",
                    "an ITI-65 bundle carries a SubmissionSet List, DocumentReferences, Binaries and optionally a "
                    f"Patient, {what}",
                )
            )
    model_problems = [] if unknown_types else _model_problems(data)

    # -- envelope of each entry: fullUrl (unique), request
    seen_urls: dict[str, int] = {}
    index: dict[str, int] = {}
    for i, item in enumerate(entries):
        path = f"Bundle.entry[{i}]"
        full_url = _str(item, "fullUrl")
        resource = _dict(item, "resource") or {}
        rtype = _str(resource, "resourceType")
        if full_url is None:
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.fullUrl",
                    "the entry has no fullUrl: give every entry a fullUrl (urn:uuid:<UUID>) so that the other "
                    "resources can reference it",
                )
            )
        elif full_url in seen_urls:
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.fullUrl",
                    f"fullUrl {full_url!r} is also the fullUrl of Bundle.entry[{seen_urls[full_url]}] (bdl-7): every "
                    "entry needs its own",
                )
            )
        else:
            seen_urls[full_url] = i
        for key in _reference_keys(full_url, resource):
            index.setdefault(key, i)
        request = _dict(item, "request")
        if request is None:
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"{path}.request",
                    "a transaction entry needs a request (bdl-3): send method POST and url = the resource type",
                )
            )
        elif rtype in ("List", "DocumentReference", "Binary"):
            method, url = _str(request, "method"), _str(request, "url")
            if method != "POST" or (url or "").split("?")[0] != rtype:
                problems.append(
                    _error(
                        REGISTRY_METADATA_ERROR,
                        f"{path}.request",
                        f"the request is {method} {url}: ITI-65 creates a {rtype} with POST {rtype}",
                    )
                )

    # -- patients of the bundle
    bundle_patients: dict[str, str] = {}
    infos: list[BundleEntryInfo] = []
    for i, item in enumerate(entries):
        resource = _dict(item, "resource") or {}
        if _str(resource, "resourceType") == "Patient":
            cx = _patient_cx_of(resource)
            if cx is None:
                problems.append(
                    _error(
                        "XDSUnknownPatientId",
                        f"Bundle.entry[{i}].resource.identifier",
                        f"the Patient has no identifier the hub knows: send identifier system "
                        f"{c.IDENTIFIER_SYSTEMS[SSIN_OID]} with the SSIN",
                    )
                )
                continue
            for key in _reference_keys(_str(item, "fullUrl"), resource):
                bundle_patients[key] = cx

    def patient_resolver(reference: str) -> str | None:
        parts = reference.rstrip("/").split("/")
        keys = [reference, reference.lower()] + ([f"{parts[-2]}/{parts[-1]}"] if len(parts) >= 2 else [])
        for key in keys:
            if key in bundle_patients:
                return bundle_patients[key]
        return resolve_patient(reference) if resolve_patient is not None else None

    # -- the SubmissionSet List
    lists = [(i, item) for i, item in enumerate(entries) if _str(_dict(item, "resource"), "resourceType") == "List"]
    paths = _PathMap()
    submission_set = SubmissionSet(entry_uuid=_new_uuid())
    list_items_refs: list[str] = []
    list_index: int | None = None
    if not lists:
        problems.append(
            _error(
                REGISTRY_METADATA_ERROR,
                "Bundle.entry",
                "the Bundle has no SubmissionSet List: add a List with code "
                f"{c.LIST_TYPES_SYSTEM}#{c.LIST_TYPE_SUBMISSION_SET}",
            )
        )
    for n, (i, item) in enumerate(lists):
        path = f"Bundle.entry[{i}].resource"
        resource = _dict(item, "resource") or {}
        full_url = _str(item, "fullUrl")
        ss, ss_problems = list_to_submission_set(
            resource,
            entry_uuid=full_url if full_url and _UUID_URN.fullmatch(full_url) else None,
            resolve_patient=patient_resolver,
            value_sets=sets,
        )
        problems += _reroot(ss_problems, "List", path)
        if n == 0:
            list_index = i
            submission_set = ss
            paths.list_path = path
            list_items_refs = list_items(resource)
            problems += _check_list(resource, path, checked_profile)
            infos.append(BundleEntryInfo(i, "List", full_url, ss.entry_uuid))
        else:
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    path,
                    "a second List: an ITI-65 bundle carries exactly one SubmissionSet (Folders are not supported)",
                )
            )
            infos.append(BundleEntryInfo(i, "List", full_url, None))

    # -- DocumentReferences
    entries_out: list[DocumentEntry] = []
    dr_index: dict[int, DocumentEntry] = {}
    for i, item in enumerate(entries):
        resource = _dict(item, "resource") or {}
        if _str(resource, "resourceType") != "DocumentReference":
            continue
        path = f"Bundle.entry[{i}].resource"
        full_url = _str(item, "fullUrl")
        entry, entry_problems = document_reference_to_entry(
            resource,
            entry_uuid=full_url if full_url and _UUID_URN.fullmatch(full_url) else None,
            resolve_patient=patient_resolver,
            value_sets=sets,
        )
        problems += _reroot(entry_problems, "DocumentReference", path)
        problems += _check_document_reference(resource, path, checked_profile)
        entries_out.append(entry)
        dr_index[i] = entry
        paths.entry_paths.setdefault(entry.entry_uuid, path)
        paths.entry_order.append(entry.entry_uuid)
        infos.append(BundleEntryInfo(i, "DocumentReference", full_url, entry.entry_uuid))

    # -- Binaries: attachment.url must resolve to one, each must be used once
    documents: dict[str, bytes] = {}
    document_ids: list[str] = []
    binary_users: dict[int, list[int]] = {}
    for i, entry in dr_index.items():
        resource = _dict(entries[i], "resource") or {}
        contents = _dicts(resource, "content")
        attachment = _dict(contents[0], "attachment") if contents else None
        url = _str(attachment, "url")
        upath = f"Bundle.entry[{i}].resource.content[0].attachment.url"
        target = _lookup(index, url) if url else None
        target_resource = _dict(entries[target], "resource") if target is not None else None
        if url is None or target is None or _str(target_resource, "resourceType") != "Binary":
            what = "has no attachment.url" if url is None else f"attachment.url {url!r} names no Binary of the bundle"
            problems.append(
                _error(
                    MISSING_DOCUMENT,
                    upath,
                    f"the DocumentReference {what}: send the document as a Binary entry and put its fullUrl in "
                    "attachment.url",
                )
            )
            continue
        binary_users.setdefault(target, []).append(i)
        entry.uri = None  # a bundle-internal reference, not a retrieval URL
        data_b64 = _str(target_resource, "data")
        bpath = f"Bundle.entry[{target}].resource"
        paths.binary_paths.setdefault(entry.entry_uuid, bpath)
        if data_b64 is None:
            problems.append(
                _error(MISSING_DOCUMENT, f"{bpath}.data", "the Binary has no data: send the document base64-encoded")
            )
            continue
        try:
            content = base64.b64decode(data_b64, validate=True)
        except (binascii.Error, ValueError):
            problems.append(_error(REGISTRY_METADATA_ERROR, f"{bpath}.data", "Binary.data is not base64"))
            continue
        binary_type = _str(target_resource, "contentType")
        if binary_type and entry.mime_type and binary_type.split(";")[0].strip().lower() != entry.mime_type.lower():
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"{bpath}.contentType",
                    f"Binary.contentType {binary_type!r} differs from the DocumentReference's contentType "
                    f"{entry.mime_type!r}: send the same media type",
                    Severity.WARNING,
                )
            )
        documents[entry.entry_uuid] = content
        document_ids.append(entry.entry_uuid)
    for i, item in enumerate(entries):
        resource = _dict(item, "resource") or {}
        if _str(resource, "resourceType") != "Binary":
            if _str(resource, "resourceType") == "Patient":
                infos.append(BundleEntryInfo(i, "Patient", _str(item, "fullUrl"), _patient_cx_of(resource)))
            elif _str(resource, "resourceType") == "Parameters":
                infos.append(BundleEntryInfo(i, "Parameters", _str(item, "fullUrl"), None))
            continue
        users = binary_users.get(i, [])
        owner = dr_index[users[0]].entry_uuid if users else None
        infos.append(BundleEntryInfo(i, "Binary", _str(item, "fullUrl"), owner))
        if not users:
            problems.append(
                _error(
                    MISSING_DOCUMENT_METADATA,
                    f"Bundle.entry[{i}]",
                    "no DocumentReference points at this Binary: describe it with a DocumentReference whose "
                    "attachment.url is this entry's fullUrl, or leave it out",
                )
            )
        elif len(users) > 1:
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    f"Bundle.entry[{i}]",
                    f"{len(users)} DocumentReferences (entries {users}) point at this Binary: each document is "
                    "described by one DocumentReference",
                )
            )
    infos.sort(key=lambda info: info.index)

    # -- associations: HasMember from the List items, relationships from relatesTo
    associations: list[Association] = []
    ss_id = submission_set.entry_uuid
    for k, ref in enumerate(list_items_refs):
        target_index = _lookup(index, ref)
        item_path = f"{paths.list_path}.entry[{k}].item" if paths.list_path else "List.entry"
        if target_index is None or target_index not in dr_index:
            problems.append(
                _error(
                    REGISTRY_METADATA_ERROR,
                    item_path,
                    f"List entry {ref!r} names no DocumentReference of the bundle: list the fullUrl of each "
                    "DocumentReference submitted",
                )
            )
            continue
        target_uuid = dr_index[target_index].entry_uuid
        assoc_id = _full_url(f"{ss_id}|{target_uuid}", "hasmember:")
        associations.append(
            Association(
                entry_uuid=assoc_id,
                type=AssociationType.HAS_MEMBER,
                source=ss_id,
                target=target_uuid,
                submission_set_status=SubmissionSetStatus.ORIGINAL,
            )
        )
        paths.association_paths[assoc_id] = item_path

    def document_resolver(reference: str) -> str | None:
        found = resolve_document(reference) if resolve_document is not None else None
        return found or _default_document_resolver(reference)

    for i, entry in dr_index.items():
        resource = _dict(entries[i], "resource") or {}
        for r, (kind, target_ref) in enumerate(relations(resource)):
            target_index = _lookup(index, target_ref)
            rel_path = f"Bundle.entry[{i}].resource.relatesTo[{r}].target"
            related_uuid = (
                dr_index[target_index].entry_uuid
                if target_index is not None and target_index in dr_index
                else document_resolver(target_ref)
            )
            if related_uuid is None:
                problems.append(
                    _error(
                        REGISTRY_METADATA_ERROR,
                        rel_path,
                        f"relatesTo target {target_ref!r} cannot be resolved: reference the existing document as "
                        "DocumentReference/<id> or by an identifier holding its entryUUID (urn:uuid:)",
                    )
                )
                continue
            assoc_id = _full_url(f"{entry.entry_uuid}|{kind.value}|{related_uuid}", "relation:")
            associations.append(
                Association(entry_uuid=assoc_id, type=kind, source=entry.entry_uuid, target=related_uuid)
            )
            paths.association_paths[assoc_id] = rel_path

    submission = Submission(
        submission_set=submission_set,
        entries=entries_out,
        associations=associations,
        document_ids=document_ids,
    )
    if list_index is None:
        paths.list_path = None

    reported = {p.path for p in problems}
    problems += [p for p in model_problems if p.path not in reported]
    rule_problems: list[Problem] = []
    if validate:
        xds_problems = validate_submission(submission, value_sets=sets)
        for entry in entries_out:
            if entry.entry_uuid in documents:
                content = documents[entry.entry_uuid]
                digest = ContentDigest(
                    hashlib.sha1(content, usedforsecurity=False).hexdigest(),
                    hashlib.sha256(content).hexdigest(),
                    len(content),
                )
                xds_problems += validate_hash_and_size(entry, digest)
        if profile is c.ProvideBundleProfile.MINIMAL and minimal_as_warnings:
            xds_problems = [_minimal_downgrade(p, submission) for p in xds_problems]
        rule_problems = [paths.translate(p) for p in xds_problems]
    return ParsedBundle(
        submission=submission,
        documents=documents,
        problems=_dedupe(problems, rule_problems),
        profile=profile,
        entries=infos,
        _paths=paths,
    )


def _new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _minimal_downgrade(problem: Problem, submission: Submission) -> Problem:
    """A "missing attribute" problem for an attribute Minimal metadata may leave out becomes a warning."""
    if not problem.is_error:
        return problem
    m = _XDS_PATH.fullmatch(problem.path)
    if m and m.group("owner") == "DocumentEntry" and m.group("attr") in _MINIMAL_OPTIONAL_ENTRY and not m.group("rest"):
        entry = submission.entry(m.group("id"))
        if entry is not None and getattr(entry, _MINIMAL_OPTIONAL_ENTRY[m.group("attr")]) in (None, "", []):
            return Problem(problem.code, problem.message, problem.path, Severity.WARNING)
    m = _SS_PATH.fullmatch(problem.path)
    if m and m.group("attr") == "contentTypeCode" and submission.submission_set.content_type_code is None:
        return Problem(problem.code, problem.message, problem.path, Severity.WARNING)
    return problem
