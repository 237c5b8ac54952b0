"""The ebRIM 3.0 codec: XDS metadata model ↔ ``rim:`` elements (ITI TF-3 4.2.3), in both directions.

One codec serves both sides: the SDK builds requests and parses responses with it, the mock hub parses requests
and builds responses. It works on lxml elements only (no SOAP, no MTOM, no byte parsing).

Building is exact: every ``Classification`` carries ``id``, ``classifiedObject``, ``classificationScheme``,
``nodeRepresentation`` and ``objectType``; every ``ExternalIdentifier`` carries ``id``, ``registryObject``,
``identificationScheme``, ``value``, ``objectType`` and its ``Name``; generated child ids are ``urn:uuid:`` UUIDs.
The builders write what the model holds, even when it breaks XDS rules (a conformance test must be able to send a
wrong message); checking is the job of :mod:`rsb_connector.metadata` rules.

Parsing is tolerant: it never raises on bad content. It keeps what the message said and reports every problem it
meets (a slot given twice, a size that is not a number, a coded value without ``codingScheme``...) as
:class:`~rsb_connector.errors.Problem` records with code ``XDSRegistryMetadataError`` and a path such as
``DocumentEntry[Document01].size``. Things it leaves out on purpose (an unknown classification scheme, an
unknown SubmissionSet slot, a Folder) are reported as warnings.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from rsb_connector.errors import Problem, Severity
from rsb_connector.metadata.model import (
    DOCUMENT_ENTRY_ON_DEMAND,
    DOCUMENT_ENTRY_STABLE,
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.xds.constants import (
    DE_AUTHOR,
    DE_CLASS_CODE,
    DE_CONFIDENTIALITY_CODE,
    DE_EVENT_CODE,
    DE_FORMAT_CODE,
    DE_HEALTHCARE_FACILITY_TYPE_CODE,
    DE_PATIENT_ID,
    DE_PRACTICE_SETTING_CODE,
    DE_REFERENCE_ID_LIST_SLOT,
    DE_TYPE_CODE,
    DE_UNIQUE_ID,
    FOLDER_NODE,
    OBJECT_TYPE_ASSOCIATION,
    OBJECT_TYPE_CLASSIFICATION,
    OBJECT_TYPE_EXTERNAL_IDENTIFIER,
    OBJECT_TYPE_REGISTRY_PACKAGE,
    RIM,
    SLOT_NEW_STATUS,
    SLOT_ORIGINAL_STATUS,
    SLOT_SUBMISSION_SET_STATUS,
    SS_AUTHOR,
    SS_CONTENT_TYPE_CODE,
    SS_PATIENT_ID,
    SS_SOURCE_ID,
    SS_UNIQUE_ID,
    SUBMISSION_SET_NODE,
)

__all__ = [
    "METADATA_ERROR",
    "ParsedObjects",
    "association_to_element",
    "build_registry_object_list",
    "element_to_association",
    "entry_to_extrinsic_object",
    "extrinsic_object_to_entry",
    "new_id",
    "parse_registry_object_list",
    "registry_package_to_submission_set",
    "submission_set_classification",
    "submission_set_to_registry_package",
]

METADATA_ERROR = "XDSRegistryMetadataError"
"""The XDS error code of every problem this codec reports."""

_R = f"{{{RIM}}}"
_NSMAP = {"rim": RIM}

# DocumentEntry slots that hold one value, in the order they are written, with the model attribute they fill.
_DE_SINGLE_SLOTS: dict[str, str] = {
    "creationTime": "creation_time",
    "languageCode": "language_code",
    "sourcePatientId": "source_patient_id",
    "legalAuthenticator": "legal_authenticator",
    "serviceStartTime": "service_start_time",
    "serviceStopTime": "service_stop_time",
    "hash": "hash",
    "size": "size",
    "URI": "uri",
    "repositoryUniqueId": "repository_unique_id",
}
_DE_SOURCE_PATIENT_INFO = "sourcePatientInfo"

# DocumentEntry classifications holding one coded value → model attribute.
_DE_SINGLE_CODES: dict[str, tuple[str, str]] = {
    DE_CLASS_CODE: ("class_code", "classCode"),
    DE_FORMAT_CODE: ("format_code", "formatCode"),
    DE_HEALTHCARE_FACILITY_TYPE_CODE: ("healthcare_facility_type_code", "healthcareFacilityTypeCode"),
    DE_PRACTICE_SETTING_CODE: ("practice_setting_code", "practiceSettingCode"),
    DE_TYPE_CODE: ("type_code", "typeCode"),
}
_DE_MULTI_CODES: dict[str, tuple[str, str]] = {
    DE_CONFIDENTIALITY_CODE: ("confidentiality_codes", "confidentialityCode"),
    DE_EVENT_CODE: ("event_codes", "eventCodeList"),
}

_AUTHOR_PERSON = "authorPerson"
_AUTHOR_LISTS: dict[str, str] = {
    "authorInstitution": "institutions",
    "authorRole": "roles",
    "authorSpecialty": "specialties",
    "authorTelecommunication": "telecommunications",
}

_SIZE = re.compile(r"[0-9]+")


def new_id() -> str:
    """A fresh registry object id: ``urn:uuid:<uuid4>``."""
    return f"urn:uuid:{uuid.uuid4()}"


# ============================================================================================ building


def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> etree._Element:
    slot = etree.SubElement(parent, f"{_R}Slot", name=name)
    value_list = etree.SubElement(slot, f"{_R}ValueList")
    for value in values:
        etree.SubElement(value_list, f"{_R}Value").text = value
    return slot


def _international(parent: etree._Element, tag: str, text: str) -> None:
    holder = etree.SubElement(parent, f"{_R}{tag}")
    etree.SubElement(holder, f"{_R}LocalizedString", value=text)


def _classification(parent: etree._Element, scheme: str, classified: str, node_repr: str) -> etree._Element:
    return etree.SubElement(
        parent,
        f"{_R}Classification",
        id=new_id(),
        classificationScheme=scheme,
        classifiedObject=classified,
        nodeRepresentation=node_repr,
        objectType=OBJECT_TYPE_CLASSIFICATION,
    )


def _code_classification(parent: etree._Element, scheme: str, classified: str, code: Code) -> None:
    el = _classification(parent, scheme, classified, code.code)
    _slot(el, "codingScheme", [code.scheme])
    if code.display is not None:
        _international(el, "Name", code.display)


def _author_classification(parent: etree._Element, scheme: str, classified: str, author: Author) -> None:
    # ITI TF-3 4.2.3.1.4: the author Classification has an empty nodeRepresentation and carries the author slots.
    el = _classification(parent, scheme, classified, "")
    if author.person is not None:
        _slot(el, _AUTHOR_PERSON, [author.person])
    for slot_name, attr in _AUTHOR_LISTS.items():
        values: tuple[str, ...] = getattr(author, attr)
        if values:
            _slot(el, slot_name, values)


def _external_identifier(parent: etree._Element, scheme: str, registry_object: str, value: str, name: str) -> None:
    el = etree.SubElement(
        parent,
        f"{_R}ExternalIdentifier",
        id=new_id(),
        registryObject=registry_object,
        identificationScheme=scheme,
        value=value,
        objectType=OBJECT_TYPE_EXTERNAL_IDENTIFIER,
    )
    _international(el, "Name", name)


def entry_to_extrinsic_object(entry: DocumentEntry) -> etree._Element:
    """The ``rim:ExtrinsicObject`` of a DocumentEntry (ITI TF-3 4.2.3.2).

    Attributes ``id``, ``objectType``, ``mimeType``, ``status`` and, when set, ``lid`` and ``home``; then the
    slots (``creationTime`` … ``repositoryUniqueId``, ``urn:ihe:iti:xds:2013:referenceIdList``, then
    ``extra_slots`` as given), ``Name`` (title), ``Description`` (comments), ``VersionInfo`` (version),
    the classifications (authors, classCode, confidentialityCode, eventCodeList, formatCode,
    healthcareFacilityTypeCode, practiceSettingCode, typeCode) and the ``patientId`` / ``uniqueId`` external
    identifiers. Fields that are ``None`` or empty are left out.
    """
    el = etree.Element(f"{_R}ExtrinsicObject", nsmap=_NSMAP)
    el.set("id", entry.entry_uuid)
    if entry.home_community_id:
        el.set("home", entry.home_community_id)
    if entry.logical_id:
        el.set("lid", entry.logical_id)
    el.set("objectType", entry.object_type)
    el.set("status", entry.availability_status.value)
    if entry.mime_type is not None:
        el.set("mimeType", entry.mime_type)

    for slot_name, attr in _DE_SINGLE_SLOTS.items():
        value = getattr(entry, attr)
        if value is not None:
            _slot(el, slot_name, [str(value)])
        if slot_name == "sourcePatientId" and entry.source_patient_info:
            _slot(el, _DE_SOURCE_PATIENT_INFO, entry.source_patient_info)
    if entry.reference_ids:
        _slot(el, DE_REFERENCE_ID_LIST_SLOT, entry.reference_ids)
    for slot_name, values in entry.extra_slots.items():
        _slot(el, slot_name, values)

    if entry.title is not None:
        _international(el, "Name", entry.title)
    if entry.comments is not None:
        _international(el, "Description", entry.comments)
    if entry.version is not None:
        etree.SubElement(el, f"{_R}VersionInfo", versionName=entry.version)

    for author in entry.authors:
        _author_classification(el, DE_AUTHOR, entry.entry_uuid, author)
    order = [
        DE_CLASS_CODE,
        DE_CONFIDENTIALITY_CODE,
        DE_EVENT_CODE,
        DE_FORMAT_CODE,
        DE_HEALTHCARE_FACILITY_TYPE_CODE,
        DE_PRACTICE_SETTING_CODE,
        DE_TYPE_CODE,
    ]
    for scheme in order:
        if scheme in _DE_SINGLE_CODES:
            code: Code | None = getattr(entry, _DE_SINGLE_CODES[scheme][0])
            if code is not None:
                _code_classification(el, scheme, entry.entry_uuid, code)
        else:
            codes: list[Code] = getattr(entry, _DE_MULTI_CODES[scheme][0])
            for c in codes:
                _code_classification(el, scheme, entry.entry_uuid, c)

    if entry.patient_id is not None:
        _external_identifier(el, DE_PATIENT_ID, entry.entry_uuid, entry.patient_id, "XDSDocumentEntry.patientId")
    if entry.unique_id is not None:
        _external_identifier(el, DE_UNIQUE_ID, entry.entry_uuid, entry.unique_id, "XDSDocumentEntry.uniqueId")
    return el


def submission_set_classification(submission_set_id: str) -> etree._Element:
    """The ``rim:Classification`` that marks RegistryPackage ``submission_set_id`` as a SubmissionSet.

    ``classifiedObject`` is the package id, ``classificationNode`` the SubmissionSet node
    ``urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd`` (ITI TF-3 4.2.3.3).
    """
    return etree.Element(
        f"{_R}Classification",
        nsmap=_NSMAP,
        id=new_id(),
        classifiedObject=submission_set_id,
        classificationNode=SUBMISSION_SET_NODE,
        objectType=OBJECT_TYPE_CLASSIFICATION,
    )


def submission_set_to_registry_package(ss: SubmissionSet, *, nest_classification: bool = True) -> etree._Element:
    """The ``rim:RegistryPackage`` of a SubmissionSet (ITI TF-3 4.2.3.3).

    Slots ``submissionTime`` and ``intendedRecipient``, ``Name`` (title), ``Description`` (comments), the author
    and contentTypeCode classifications, the ``uniqueId`` / ``sourceId`` / ``patientId`` external identifiers.

    Args:
        ss: the submission set.
        nest_classification: put the Classification to the SubmissionSet node inside the package (the element is
            then self-describing). :func:`build_registry_object_list` writes it as a sibling instead, as most
            Document Sources do; :func:`submission_set_classification` builds it alone.
    """
    el = etree.Element(f"{_R}RegistryPackage", nsmap=_NSMAP)
    el.set("id", ss.entry_uuid)
    if ss.home_community_id:
        el.set("home", ss.home_community_id)
    el.set("objectType", OBJECT_TYPE_REGISTRY_PACKAGE)
    el.set("status", ss.availability_status.value)
    if ss.submission_time is not None:
        _slot(el, "submissionTime", [ss.submission_time])
    if ss.intended_recipients:
        _slot(el, "intendedRecipient", ss.intended_recipients)
    if ss.title is not None:
        _international(el, "Name", ss.title)
    if ss.comments is not None:
        _international(el, "Description", ss.comments)
    for author in ss.authors:
        _author_classification(el, SS_AUTHOR, ss.entry_uuid, author)
    if ss.content_type_code is not None:
        _code_classification(el, SS_CONTENT_TYPE_CODE, ss.entry_uuid, ss.content_type_code)
    if nest_classification:
        el.append(submission_set_classification(ss.entry_uuid))
    if ss.unique_id is not None:
        _external_identifier(el, SS_UNIQUE_ID, ss.entry_uuid, ss.unique_id, "XDSSubmissionSet.uniqueId")
    if ss.source_id is not None:
        _external_identifier(el, SS_SOURCE_ID, ss.entry_uuid, ss.source_id, "XDSSubmissionSet.sourceId")
    if ss.patient_id is not None:
        _external_identifier(el, SS_PATIENT_ID, ss.entry_uuid, ss.patient_id, "XDSSubmissionSet.patientId")
    return el


def association_to_element(a: Association) -> etree._Element:
    """The ``rim:Association`` of an association (ITI TF-3 4.2.2).

    Attributes ``id``, ``associationType``, ``sourceObject``, ``targetObject``, ``objectType``, ``status``; slots
    ``SubmissionSetStatus`` (HasMember) and ``OriginalStatus`` / ``NewStatus`` (ITI-57 UpdateAvailabilityStatus)
    when set.
    """
    el = etree.Element(f"{_R}Association", nsmap=_NSMAP)
    el.set("id", a.entry_uuid)
    el.set("associationType", a.type.value)
    el.set("sourceObject", a.source)
    el.set("targetObject", a.target)
    el.set("objectType", OBJECT_TYPE_ASSOCIATION)
    el.set("status", a.availability_status.value)
    if a.submission_set_status is not None:
        _slot(el, SLOT_SUBMISSION_SET_STATUS, [a.submission_set_status.value])
    if a.original_status is not None:
        _slot(el, SLOT_ORIGINAL_STATUS, [a.original_status.value])
    if a.new_status is not None:
        _slot(el, SLOT_NEW_STATUS, [a.new_status.value])
    return el


def build_registry_object_list(
    submission_sets: Sequence[SubmissionSet],
    entries: Sequence[DocumentEntry],
    associations: Sequence[Association],
) -> etree._Element:
    """A ``rim:RegistryObjectList``: the entries, then each submission set followed by its SubmissionSet-node
    Classification (as a sibling), then the associations."""
    el = etree.Element(f"{_R}RegistryObjectList", nsmap=_NSMAP)
    for entry in entries:
        el.append(entry_to_extrinsic_object(entry))
    for ss in submission_sets:
        el.append(submission_set_to_registry_package(ss, nest_classification=False))
        el.append(submission_set_classification(ss.entry_uuid))
    for a in associations:
        el.append(association_to_element(a))
    return el


# ============================================================================================ parsing


class _Reader:
    """Problems met while reading one registry object, with paths ``Kind[id].field``."""

    def __init__(self, kind: str, object_id: str, problems: list[Problem]) -> None:
        self.kind = kind
        self.object_id = object_id
        self.problems = problems

    def path(self, where: str = "") -> str:
        base = f"{self.kind}[{self.object_id}]"
        return f"{base}.{where}" if where else base

    def error(self, where: str, message: str) -> None:
        self.problems.append(Problem(METADATA_ERROR, message, self.path(where)))

    def warning(self, where: str, message: str) -> None:
        self.problems.append(Problem(METADATA_ERROR, message, self.path(where), Severity.WARNING))


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _is_rim(el: etree._Element, name: str) -> bool:
    return isinstance(el.tag, str) and el.tag == f"{_R}{name}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _read_slots(el: etree._Element, reader: _Reader, prefix: str = "") -> dict[str, list[str]]:
    """The slots of ``el`` by name, in order; a repeated slot name is reported and its later copies ignored."""
    out: dict[str, list[str]] = {}
    for slot in el.iterchildren(f"{_R}Slot"):
        name = (slot.get("name") or "").strip()
        if not name:
            reader.error(_join(prefix, "Slot"), "a Slot has no name attribute: give every Slot a name")
            continue
        values = [(v.text or "").strip() for v in slot.iterfind(f"{_R}ValueList/{_R}Value")]
        if name in out:
            reader.error(_join(prefix, name), f"slot {name!r} is given twice: give each slot once, with all its values")
            continue
        out[name] = values
    return out


def _single(slots: dict[str, list[str]], name: str, reader: _Reader, prefix: str = "") -> str | None:
    values = slots.get(name)
    if values is None:
        return None
    where = _join(prefix, name)
    if not values:
        reader.error(where, f"slot {name!r} has no value: give one Value or leave the slot out")
        return None
    if len(values) > 1:
        reader.error(where, f"slot {name!r} takes one value, {len(values)} were given: {values!r}")
    return values[0]


def _international_text(el: etree._Element, tag: str) -> str | None:
    holder = el.find(f"{_R}{tag}")
    if holder is None:
        return None
    localized = holder.find(f"{_R}LocalizedString")
    if localized is None:
        return None
    return localized.get("value")


def _parse_status(el: etree._Element, reader: _Reader) -> AvailabilityStatus:
    raw = el.get("status")
    if raw is None:
        return AvailabilityStatus.APPROVED
    try:
        return AvailabilityStatus.parse(raw.strip())
    except ValueError:
        reader.error(
            "availabilityStatus",
            f"status {raw!r} is not an XDS availability status: use {AvailabilityStatus.APPROVED.value} "
            f"or {AvailabilityStatus.DEPRECATED.value}",
        )
        return AvailabilityStatus.APPROVED


def _check_classified(cl: etree._Element, object_id: str, attr: str, reader: _Reader, where: str) -> bool:
    target = cl.get(attr)
    if target is not None and target != object_id:
        reader.error(where, f"{_local(cl)} {attr}={target!r} does not name its object {object_id!r}")
        return False
    return True


def _read_code(cl: etree._Element, reader: _Reader, where: str) -> Code:
    slots = _read_slots(cl, reader, where)
    node = (cl.get("nodeRepresentation") or "").strip()
    if not node:
        reader.error(where, "coded value without nodeRepresentation: put the code in nodeRepresentation")
    scheme = _single(slots, "codingScheme", reader, where)
    if scheme is None:
        reader.error(where, f"code {node!r} has no codingScheme slot: add Slot codingScheme with the code system")
        scheme = ""
    for name in slots:
        if name != "codingScheme":
            reader.warning(f"{where}.{name}", f"slot {name!r} is not part of a coded value: ignored")
    return Code(node, scheme, _international_text(cl, "Name"))


def _read_author(cl: etree._Element, reader: _Reader, where: str) -> Author:
    slots = _read_slots(cl, reader, where)
    person = _single(slots, _AUTHOR_PERSON, reader, where)
    lists: dict[str, tuple[str, ...]] = {}
    for name, values in slots.items():
        if name == _AUTHOR_PERSON:
            continue
        attr = _AUTHOR_LISTS.get(name)
        if attr is None:
            reader.warning(f"{where}.{name}", f"slot {name!r} is not an author attribute: ignored")
            continue
        lists[attr] = tuple(values)
    if (cl.get("nodeRepresentation") or "") != "":
        reader.warning(where, "an author Classification takes an empty nodeRepresentation: its value was ignored")
    return Author(person=person, **lists)


def _children(el: etree._Element, name: str, extra: Sequence[etree._Element]) -> list[etree._Element]:
    return [*el.iterchildren(f"{_R}{name}"), *(x for x in extra if _is_rim(x, name))]


def _object_id(el: etree._Element, kind: str, problems: list[Problem]) -> str:
    object_id = (el.get("id") or "").strip()
    if not object_id:
        problems.append(Problem(METADATA_ERROR, f"a {_local(el)} has no id attribute: give it an id", f"{kind}[]"))
    return object_id


def _read_external_ids(
    el: etree._Element,
    extra: Sequence[etree._Element],
    object_id: str,
    schemes: dict[str, str],
    reader: _Reader,
) -> dict[str, str]:
    """External identifiers by scheme → value; ``schemes`` maps scheme → field name for paths."""
    found: dict[str, str] = {}
    for ei in _children(el, "ExternalIdentifier", extra):
        scheme = ei.get("identificationScheme") or ""
        name = schemes.get(scheme)
        if name is None:
            reader.warning("ExternalIdentifier", f"identificationScheme {scheme!r} is not known here: ignored")
            continue
        if not _check_classified(ei, object_id, "registryObject", reader, name):
            continue
        value = ei.get("value")
        if value is None or not value.strip():
            reader.error(name, f"the {name} ExternalIdentifier has no value")
            continue
        if scheme in found:
            reader.error(name, f"{name} is given twice: give one {name}")
            continue
        found[scheme] = value.strip()
    return found


def _entry_from(el: etree._Element, extra: Sequence[etree._Element], problems: list[Problem]) -> DocumentEntry:
    object_id = _object_id(el, "DocumentEntry", problems)
    r = _Reader("DocumentEntry", object_id, problems)
    entry = DocumentEntry(entry_uuid=object_id)

    object_type = el.get("objectType")
    if object_type is None:
        r.error("objectType", f"objectType is missing: use {DOCUMENT_ENTRY_STABLE} (stable document)")
    elif object_type not in (DOCUMENT_ENTRY_STABLE, DOCUMENT_ENTRY_ON_DEMAND):
        r.error(
            "objectType",
            f"objectType {object_type!r} is not a DocumentEntry type: use {DOCUMENT_ENTRY_STABLE} (stable) "
            f"or {DOCUMENT_ENTRY_ON_DEMAND} (on-demand)",
        )
        entry.object_type = object_type
    else:
        entry.object_type = object_type
    entry.mime_type = el.get("mimeType")
    entry.availability_status = _parse_status(el, r)
    entry.logical_id = el.get("lid")
    entry.home_community_id = el.get("home")

    slots = _read_slots(el, r)
    for slot_name, attr in _DE_SINGLE_SLOTS.items():
        value = _single(slots, slot_name, r)
        if value is None:
            continue
        if attr == "size":
            if _SIZE.fullmatch(value):
                entry.size = int(value)
            else:
                r.error("size", f"size {value!r} is not a whole number of bytes: give the size as digits")
        else:
            setattr(entry, attr, value)
    entry.source_patient_info = list(slots.get(_DE_SOURCE_PATIENT_INFO, []))
    entry.reference_ids = list(slots.get(DE_REFERENCE_ID_LIST_SLOT, []))
    known = {*_DE_SINGLE_SLOTS, _DE_SOURCE_PATIENT_INFO, DE_REFERENCE_ID_LIST_SLOT}
    entry.extra_slots = {name: values for name, values in slots.items() if name not in known}

    entry.title = _international_text(el, "Name")
    entry.comments = _international_text(el, "Description")
    version_info = el.find(f"{_R}VersionInfo")
    if version_info is not None:
        entry.version = version_info.get("versionName")

    for cl in _children(el, "Classification", extra):
        scheme = cl.get("classificationScheme") or ""
        if scheme == DE_AUTHOR:
            where = f"author[{len(entry.authors)}]"
            if _check_classified(cl, object_id, "classifiedObject", r, where):
                entry.authors.append(_read_author(cl, r, where))
        elif scheme in _DE_SINGLE_CODES:
            attr, where = _DE_SINGLE_CODES[scheme]
            if not _check_classified(cl, object_id, "classifiedObject", r, where):
                continue
            code = _read_code(cl, r, where)
            if getattr(entry, attr) is not None:
                r.error(where, f"{where} is given twice: a DocumentEntry has exactly one {where}")
                continue
            setattr(entry, attr, code)
        elif scheme in _DE_MULTI_CODES:
            attr, where = _DE_MULTI_CODES[scheme]
            if _check_classified(cl, object_id, "classifiedObject", r, where):
                getattr(entry, attr).append(_read_code(cl, r, where))
        else:
            what = (
                f"classificationScheme {scheme!r}" if scheme else f"classificationNode {cl.get('classificationNode')!r}"
            )
            r.warning("Classification", f"{what} is not a DocumentEntry classification: ignored")

    ids = _read_external_ids(el, extra, object_id, {DE_PATIENT_ID: "patientId", DE_UNIQUE_ID: "uniqueId"}, r)
    entry.patient_id = ids.get(DE_PATIENT_ID)
    entry.unique_id = ids.get(DE_UNIQUE_ID)
    return entry


def extrinsic_object_to_entry(el: etree._Element) -> tuple[DocumentEntry, list[Problem]]:
    """Read a ``rim:ExtrinsicObject`` into a DocumentEntry, with the problems met (never raises on bad content).

    Slots that are not DocumentEntry attributes land in ``extra_slots``; classifications of unknown schemes are
    ignored with a warning.
    """
    problems: list[Problem] = []
    return _entry_from(el, (), problems), problems


def _submission_set_from(el: etree._Element, extra: Sequence[etree._Element], problems: list[Problem]) -> SubmissionSet:
    object_id = _object_id(el, "SubmissionSet", problems)
    r = _Reader("SubmissionSet", object_id, problems)
    ss = SubmissionSet(entry_uuid=object_id)
    ss.availability_status = _parse_status(el, r)
    ss.home_community_id = el.get("home")

    slots = _read_slots(el, r)
    ss.submission_time = _single(slots, "submissionTime", r)
    ss.intended_recipients = list(slots.get("intendedRecipient", []))
    for name in slots:
        if name not in ("submissionTime", "intendedRecipient"):
            r.warning(name, f"slot {name!r} is not a SubmissionSet attribute: ignored")

    ss.title = _international_text(el, "Name")
    ss.comments = _international_text(el, "Description")

    for cl in _children(el, "Classification", extra):
        scheme = cl.get("classificationScheme") or ""
        if not scheme and cl.get("classificationNode") == SUBMISSION_SET_NODE:
            _check_classified(cl, object_id, "classifiedObject", r, "Classification")
        elif scheme == SS_AUTHOR:
            where = f"author[{len(ss.authors)}]"
            if _check_classified(cl, object_id, "classifiedObject", r, where):
                ss.authors.append(_read_author(cl, r, where))
        elif scheme == SS_CONTENT_TYPE_CODE:
            if not _check_classified(cl, object_id, "classifiedObject", r, "contentTypeCode"):
                continue
            code = _read_code(cl, r, "contentTypeCode")
            if ss.content_type_code is not None:
                r.error("contentTypeCode", "contentTypeCode is given twice: a SubmissionSet has exactly one")
                continue
            ss.content_type_code = code
        else:
            what = (
                f"classificationScheme {scheme!r}" if scheme else f"classificationNode {cl.get('classificationNode')!r}"
            )
            r.warning("Classification", f"{what} is not a SubmissionSet classification: ignored")

    ids = _read_external_ids(
        el,
        extra,
        object_id,
        {SS_UNIQUE_ID: "uniqueId", SS_SOURCE_ID: "sourceId", SS_PATIENT_ID: "patientId"},
        r,
    )
    ss.unique_id = ids.get(SS_UNIQUE_ID)
    ss.source_id = ids.get(SS_SOURCE_ID)
    ss.patient_id = ids.get(SS_PATIENT_ID)
    return ss


def registry_package_to_submission_set(el: etree._Element) -> tuple[SubmissionSet, list[Problem]]:
    """Read a ``rim:RegistryPackage`` that the caller knows to be a SubmissionSet (never raises on bad content)."""
    problems: list[Problem] = []
    return _submission_set_from(el, (), problems), problems


def _association_from(el: etree._Element, problems: list[Problem]) -> Association | None:
    object_id = _object_id(el, "Association", problems)
    r = _Reader("Association", object_id, problems)
    raw_type = el.get("associationType") or ""
    try:
        a_type = AssociationType(raw_type.strip())
    except ValueError:
        known = ", ".join(t.short for t in AssociationType)
        r.error("associationType", f"associationType {raw_type!r} is not an XDS association type ({known})")
        return None
    source = el.get("sourceObject") or ""
    target = el.get("targetObject") or ""
    if not source:
        r.error("sourceObject", "the Association has no sourceObject")
    if not target:
        r.error("targetObject", "the Association has no targetObject")
    a = Association(entry_uuid=object_id, type=a_type, source=source, target=target)
    a.availability_status = _parse_status(el, r)
    slots = _read_slots(el, r)
    ss_status = _single(slots, SLOT_SUBMISSION_SET_STATUS, r)
    if ss_status is not None:
        try:
            a.submission_set_status = SubmissionSetStatus(ss_status)
        except ValueError:
            r.error(SLOT_SUBMISSION_SET_STATUS, f"SubmissionSetStatus {ss_status!r}: use Original or Reference")
    for slot_name, attr in ((SLOT_ORIGINAL_STATUS, "original_status"), (SLOT_NEW_STATUS, "new_status")):
        value = _single(slots, slot_name, r)
        if value is None:
            continue
        try:
            setattr(a, attr, AvailabilityStatus.parse(value))
        except ValueError:
            r.error(slot_name, f"{slot_name} {value!r} is not an availability status: use Approved or Deprecated")
    return a


def element_to_association(el: etree._Element) -> tuple[Association, list[Problem]]:
    """Read a ``rim:Association`` (never raises on bad content).

    An association whose type is not an XDS association type cannot be represented: it comes back as a HasMember
    with the problem reported as an error, so the caller must look at the problems.
    """
    problems: list[Problem] = []
    a = _association_from(el, problems)
    if a is None:
        a = Association(
            entry_uuid=el.get("id") or "",
            type=AssociationType.HAS_MEMBER,
            source=el.get("sourceObject") or "",
            target=el.get("targetObject") or "",
        )
    return a, problems


@dataclass(slots=True)
class ParsedObjects:
    """What a ``rim:RegistryObjectList`` holds, read into the model.

    Attributes:
        submission_sets: RegistryPackages classified as SubmissionSet.
        entries: ExtrinsicObjects.
        associations: Associations of a known type (others are reported).
        object_refs: ids of ``rim:ObjectRef`` elements.
        problems: every problem met, errors and warnings.
    """

    submission_sets: list[SubmissionSet] = field(default_factory=list)
    entries: list[DocumentEntry] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _package_kind(package: etree._Element, siblings: Sequence[etree._Element]) -> str | None:
    for cl in _children(package, "Classification", siblings):
        node = cl.get("classificationNode")
        if node == SUBMISSION_SET_NODE:
            return "SubmissionSet"
        if node == FOLDER_NODE:
            return "Folder"
    return None


def parse_registry_object_list(el: etree._Element) -> ParsedObjects:
    """Read a ``rim:RegistryObjectList`` (never raises on bad content).

    The SubmissionSet RegistryPackage is recognised by its Classification to the SubmissionSet node, nested in
    the package or a sibling in the list; Classifications and ExternalIdentifiers written as siblings are read as
    part of the object they name. Folders are not supported yet: they are left out with a warning.
    """
    result = ParsedObjects()
    problems = result.problems
    objects: list[etree._Element] = []
    loose: dict[str, list[etree._Element]] = {}
    loose_order: list[etree._Element] = []
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        name = _local(child) if child.tag.startswith(_R) else ""
        if name in ("Classification", "ExternalIdentifier"):
            attr = "classifiedObject" if name == "Classification" else "registryObject"
            loose.setdefault(child.get(attr) or "", []).append(child)
            loose_order.append(child)
        elif name == "ObjectRef":
            ref = (child.get("id") or "").strip()
            if ref:
                result.object_refs.append(ref)
            else:
                problems.append(Problem(METADATA_ERROR, "an ObjectRef has no id attribute", "ObjectRef[]"))
        elif name in ("ExtrinsicObject", "RegistryPackage", "Association"):
            objects.append(child)
        else:
            problems.append(
                Problem(
                    METADATA_ERROR,
                    f"{child.tag} is not an XDS registry object: ignored",
                    "RegistryObjectList",
                    Severity.WARNING,
                )
            )

    seen: dict[str, str] = {}
    used: set[str] = set()
    for obj in objects:
        kind = _local(obj)
        object_id = (obj.get("id") or "").strip()
        if object_id:
            if object_id in seen:
                problems.append(
                    Problem(
                        METADATA_ERROR,
                        f"id {object_id!r} is used by two objects ({seen[object_id]} and {kind}): ids must be unique",
                        f"{kind}[{object_id}]",
                    )
                )
            seen.setdefault(object_id, kind)
        extra = loose.get(object_id, []) if object_id else []
        if kind == "ExtrinsicObject":
            used.add(object_id)
            result.entries.append(_entry_from(obj, extra, problems))
        elif kind == "Association":
            a = _association_from(obj, problems)
            if a is not None:
                result.associations.append(a)
        else:
            package_kind = _package_kind(obj, extra)
            used.add(object_id)
            if package_kind == "SubmissionSet":
                result.submission_sets.append(_submission_set_from(obj, extra, problems))
            elif package_kind == "Folder":
                problems.append(
                    Problem(
                        METADATA_ERROR,
                        "Folders are not supported yet: this Folder was ignored",
                        f"Folder[{object_id}]",
                        Severity.WARNING,
                    )
                )
            else:
                problems.append(
                    Problem(
                        METADATA_ERROR,
                        "this RegistryPackage is classified neither as a SubmissionSet nor as a Folder: add a "
                        f"Classification with classificationNode {SUBMISSION_SET_NODE} (SubmissionSet)",
                        f"RegistryPackage[{object_id}]",
                    )
                )
    for child in loose_order:
        name = _local(child)
        target = child.get("classifiedObject" if name == "Classification" else "registryObject") or ""
        if target not in used:
            problems.append(
                Problem(
                    METADATA_ERROR,
                    f"this {name} refers to {target!r}, which is not a DocumentEntry or SubmissionSet of this "
                    "message: ignored",
                    f"{name}[{child.get('id') or ''}]",
                    Severity.WARNING,
                )
            )
    return result
