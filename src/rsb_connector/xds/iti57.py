"""ITI-57 Update Document Set, availability status updates only (element level).

Following ITI TF-2b 3.57.4.1.3.3.1 (Update DocumentEntry Status), the ``lcm:SubmitObjectsRequest`` holds a
SubmissionSet and an ``UpdateAvailabilityStatus`` Association whose ``sourceObject`` is the SubmissionSet and
whose ``targetObject`` is the DocumentEntry's entryUUID, with slots ``OriginalStatus`` and ``NewStatus``. The
association already names the SubmissionSet as its source, so no HasMember is written; one that a sender adds
(SubmissionSet → the status association) is accepted when parsing. The response is an ``rs:RegistryResponse``
(see :mod:`rsb_connector.xds.rs`).
"""

from __future__ import annotations

import uuid

from lxml import etree

from rsb_connector.errors import Problem
from rsb_connector.metadata.model import (
    Association,
    AssociationType,
    AvailabilityStatus,
    Code,
    Dtm,
    SubmissionSet,
)
from rsb_connector.xds.constants import LCM, RIM
from rsb_connector.xds.ebrim import build_registry_object_list, new_id, parse_registry_object_list

__all__ = [
    "METADATA_UPDATE_ERROR",
    "STATUS_UPDATE_CONTENT_TYPE",
    "build_status_update",
    "parse_status_update",
]

METADATA_UPDATE_ERROR = "XDSMetadataUpdateError"
"""Error code of a malformed status update."""

STATUS_UPDATE_CONTENT_TYPE = Code("note", "CD-TRANSACTION", "Note")
"""contentTypeCode of the SubmissionSet built for a status update when the caller gives none (KMEHR
CD-TRANSACTION ``note``: the update records a change, not a clinical document)."""


def build_status_update(
    *,
    patient_id: str,
    entry_uuid: str,
    original: AvailabilityStatus,
    new: AvailabilityStatus,
    source_id: str,
    submission_set: SubmissionSet | None = None,
    content_type_code: Code | None = None,
) -> etree._Element:
    """An ``lcm:SubmitObjectsRequest`` that changes a DocumentEntry's availability status.

    Args:
        patient_id: the patient (CX), written on the SubmissionSet built here.
        entry_uuid: the DocumentEntry whose status changes (``targetObject``).
        original: its current status (``OriginalStatus`` slot).
        new: the status wanted (``NewStatus`` slot).
        source_id: the Document Administrator's source OID (SubmissionSet ``sourceId``).
        submission_set: the SubmissionSet to send; when None one is built: ``urn:uuid:`` id, submissionTime now,
            uniqueId ``2.25.<uuid>``, ``source_id``, ``patient_id`` and ``content_type_code``.
        content_type_code: contentTypeCode of the built SubmissionSet (default :data:`STATUS_UPDATE_CONTENT_TYPE`).
    """
    if submission_set is None:
        submission_set = SubmissionSet(
            entry_uuid=new_id(),
            unique_id=f"2.25.{uuid.uuid4().int}",
            source_id=source_id,
            patient_id=patient_id,
            submission_time=Dtm.now().value,
            content_type_code=content_type_code or STATUS_UPDATE_CONTENT_TYPE,
        )
    association = Association(
        entry_uuid=new_id(),
        type=AssociationType.UPDATE_AVAILABILITY_STATUS,
        source=submission_set.entry_uuid,
        target=entry_uuid,
        original_status=original,
        new_status=new,
    )
    root = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    root.append(build_registry_object_list([submission_set], [], [association]))
    return root


def parse_status_update(el: etree._Element) -> tuple[SubmissionSet | None, list[Association], list[Problem]]:
    """Read an ITI-57 status update (never raises on bad content).

    Returns the SubmissionSet (None when there is none), every association, and the problems: those of the
    metadata itself (``XDSRegistryMetadataError``) and those of the update (``XDSMetadataUpdateError``): not
    exactly one SubmissionSet, no UpdateAvailabilityStatus association, one without ``OriginalStatus`` or
    ``NewStatus`` or whose source is not the SubmissionSet, DocumentEntries or other associations sent along
    (only status updates are supported).
    """
    problems: list[Problem] = []
    if el.tag != f"{{{LCM}}}SubmitObjectsRequest":
        problems.append(Problem(METADATA_UPDATE_ERROR, f"expected lcm:SubmitObjectsRequest, found {el.tag}", "Body"))
    object_list = el.find(f"{{{RIM}}}RegistryObjectList")
    if object_list is None:
        problems.append(
            Problem(METADATA_UPDATE_ERROR, "the request has no rim:RegistryObjectList", "SubmitObjectsRequest")
        )
        return None, [], problems
    parsed = parse_registry_object_list(object_list)
    problems.extend(parsed.problems)

    ss = parsed.submission_sets[0] if parsed.submission_sets else None
    if ss is None:
        problems.append(
            Problem(METADATA_UPDATE_ERROR, "a status update needs a SubmissionSet: none was sent", "SubmissionSet")
        )
    elif len(parsed.submission_sets) > 1:
        problems.append(
            Problem(
                METADATA_UPDATE_ERROR,
                f"{len(parsed.submission_sets)} SubmissionSets were sent: send exactly one",
                "SubmissionSet",
            )
        )
    for entry in parsed.entries:
        problems.append(
            Problem(
                METADATA_UPDATE_ERROR,
                "only availability status updates are supported: DocumentEntry metadata updates are not",
                f"DocumentEntry[{entry.entry_uuid}]",
            )
        )

    updates = [a for a in parsed.associations if a.type is AssociationType.UPDATE_AVAILABILITY_STATUS]
    update_ids = {a.entry_uuid for a in updates}
    if not updates:
        problems.append(
            Problem(
                METADATA_UPDATE_ERROR,
                f"no Association of type {AssociationType.UPDATE_AVAILABILITY_STATUS.value} was sent",
                "Association",
            )
        )
    for a in parsed.associations:
        path = f"Association[{a.entry_uuid}]"
        if a.type is AssociationType.UPDATE_AVAILABILITY_STATUS:
            if a.original_status is None:
                problems.append(Problem(METADATA_UPDATE_ERROR, "the OriginalStatus slot is missing", path))
            if a.new_status is None:
                problems.append(Problem(METADATA_UPDATE_ERROR, "the NewStatus slot is missing", path))
            if ss is not None and a.source != ss.entry_uuid:
                problems.append(
                    Problem(
                        METADATA_UPDATE_ERROR,
                        f"sourceObject {a.source!r} must be the SubmissionSet {ss.entry_uuid!r}",
                        f"{path}.sourceObject",
                    )
                )
        elif not (
            a.type is AssociationType.HAS_MEMBER
            and a.target in update_ids
            and (ss is None or a.source == ss.entry_uuid)
        ):
            problems.append(
                Problem(
                    METADATA_UPDATE_ERROR,
                    f"a {a.type.short} association cannot be part of an availability status update",
                    path,
                )
            )
    return ss, parsed.associations, problems
