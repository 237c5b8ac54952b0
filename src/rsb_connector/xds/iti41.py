"""ITI-41 Provide and Register Document Set-b: the request and response bodies (element level).

The request is ``xdsb:ProvideAndRegisterDocumentSetRequest`` holding an ``lcm:SubmitObjectsRequest`` (the
metadata) and one ``xdsb:Document`` per document, whose content is either an ``xop:Include`` pointing at an MTOM
attachment (:class:`XopRef`) or inline base64 (:class:`Inline`). The response is an ``rs:RegistryResponse``.
SOAP envelopes and MTOM packaging live in :mod:`rsb_connector.xds.soap` / :mod:`rsb_connector.xds.mtom`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from rsb_connector.errors import Problem
from rsb_connector.metadata.model import Submission, SubmissionSet
from rsb_connector.xds.constants import LCM, RIM, XDSB, XOP
from rsb_connector.xds.ebrim import METADATA_ERROR, build_registry_object_list, parse_registry_object_list
from rsb_connector.xds.parts import DocumentPart, Inline, XopRef
from rsb_connector.xds.rs import RegistryResult, build_registry_response, parse_registry_response
from rsb_connector.xds.xop import cid_to_href, href_to_cid

__all__ = [
    "REPOSITORY_ERROR",
    "DocumentPart",
    "Inline",
    "ParsedRequest",
    "XopRef",
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
]

REPOSITORY_ERROR = "XDSRepositoryError"
"""Error code of problems with the ``xdsb:Document`` elements."""

_NSMAP = {"xdsb": XDSB, "lcm": LCM, "rim": RIM, "xop": XOP}
_DOCUMENT = f"{{{XDSB}}}Document"
_INCLUDE = f"{{{XOP}}}Include"


def build_request(submission: Submission, documents: Mapping[str, DocumentPart]) -> etree._Element:
    """An ``xdsb:ProvideAndRegisterDocumentSetRequest``.

    The metadata comes from ``submission`` (its SubmissionSet, entries and associations); one ``xdsb:Document``
    is written per item of ``documents``, in its order, whatever ``submission.document_ids`` says: the codec does
    not check that documents and entries match (the metadata rules do, and a conformance test may want them not
    to).

    Args:
        submission: the SubmissionSet, DocumentEntries and Associations.
        documents: entry id → :class:`XopRef` (MTOM attachment, ``xop:Include href="cid:…"``, the Content-ID
            percent-encoded per RFC 2392) or
            :class:`Inline` (base64 text).
    """
    root = etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap=_NSMAP)
    submit = etree.SubElement(root, f"{{{LCM}}}SubmitObjectsRequest")
    submit.append(build_registry_object_list([submission.submission_set], submission.entries, submission.associations))
    for doc_id, part in documents.items():
        doc = etree.SubElement(root, _DOCUMENT, id=doc_id)
        if isinstance(part, XopRef):
            etree.SubElement(doc, _INCLUDE, href=cid_to_href(part.cid))
        else:
            doc.text = base64.b64encode(part.data).decode("ascii")
    return root


@dataclass(slots=True)
class ParsedRequest:
    """A Provide and Register request read into the model.

    Attributes:
        submission: the SubmissionSet, entries and associations; ``document_ids`` lists the ``xdsb:Document`` ids
            in message order (repeats included, so that rules can report them).
        documents: Document id → where its bytes are (the first Document of each id).
        problems: every problem met (metadata: ``XDSRegistryMetadataError``; documents: ``XDSRepositoryError``).
    """

    submission: Submission
    documents: dict[str, DocumentPart] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _read_document(doc: etree._Element, doc_id: str, problems: list[Problem]) -> DocumentPart | None:
    path = f"Document[{doc_id}]"
    include = doc.find(_INCLUDE)
    if include is not None:
        href = (include.get("href") or "").strip()
        cid = href_to_cid(href) if href[:4].lower() == "cid:" else ""
        if not cid:
            problems.append(
                Problem(REPOSITORY_ERROR, f"xop:Include href {href!r} is not a cid: URL naming an attachment", path)
            )
            return None
        return XopRef(cid)
    text = "".join((doc.text or "").split())
    if not text:
        problems.append(
            Problem(
                REPOSITORY_ERROR,
                "the Document element is empty: send the content as an MTOM attachment (xop:Include) or as base64",
                path,
            )
        )
        return None
    try:
        return Inline(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        problems.append(Problem(REPOSITORY_ERROR, f"{path}: not base64; send the content base64-encoded", path))
        return None


def parse_request(el: etree._Element) -> ParsedRequest:
    """Read an ``xdsb:ProvideAndRegisterDocumentSetRequest`` (never raises on bad content).

    The metadata is read by :func:`~rsb_connector.xds.ebrim.parse_registry_object_list`. Each ``xdsb:Document``
    becomes an :class:`XopRef` (its ``xop:Include`` cid, percent-decoded) or an :class:`Inline` (its base64 text
    decoded, whitespace tolerated). Exactly one SubmissionSet is expected; when there is none, the submission
    holds an empty SubmissionSet with id ``""`` and the problem is reported.
    """
    problems: list[Problem] = []
    if el.tag != f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest":
        problems.append(
            Problem(METADATA_ERROR, f"expected xdsb:ProvideAndRegisterDocumentSetRequest, found {el.tag}", "Body")
        )
    object_list = el.find(f"{{{LCM}}}SubmitObjectsRequest/{{{RIM}}}RegistryObjectList")
    submission_sets: list[SubmissionSet] = []
    submission = Submission(submission_set=SubmissionSet(entry_uuid=""))
    if object_list is None:
        problems.append(
            Problem(
                METADATA_ERROR,
                "no lcm:SubmitObjectsRequest/rim:RegistryObjectList: the request carries no metadata",
                "SubmitObjectsRequest",
            )
        )
    else:
        parsed = parse_registry_object_list(object_list)
        problems.extend(parsed.problems)
        submission_sets = parsed.submission_sets
        submission.entries = parsed.entries
        submission.associations = parsed.associations
    if not submission_sets:
        problems.append(
            Problem(
                METADATA_ERROR,
                "the request has no SubmissionSet: add a RegistryPackage classified as SubmissionSet",
                "SubmissionSet",
            )
        )
    else:
        submission.submission_set = submission_sets[0]
        if len(submission_sets) > 1:
            ids = ", ".join(repr(ss.entry_uuid) for ss in submission_sets)
            problems.append(
                Problem(
                    METADATA_ERROR,
                    f"the request has {len(submission_sets)} SubmissionSets ({ids}): send exactly one",
                    "SubmissionSet",
                )
            )

    documents: dict[str, DocumentPart] = {}
    for doc in el.iterchildren(_DOCUMENT):
        doc_id = (doc.get("id") or "").strip()
        if not doc_id:
            problems.append(
                Problem(REPOSITORY_ERROR, "a Document has no id: give it its DocumentEntry's id", "Document[]")
            )
            continue
        if doc_id in submission.document_ids:
            problems.append(
                Problem(
                    REPOSITORY_ERROR, f"two Documents have id {doc_id!r}: send one per entry", f"Document[{doc_id}]"
                )
            )
            submission.document_ids.append(doc_id)
            continue
        submission.document_ids.append(doc_id)
        part = _read_document(doc, doc_id, problems)
        if part is not None:
            documents[doc_id] = part
    return ParsedRequest(submission=submission, documents=documents, problems=problems)


def build_response(status: str, problems: Sequence[Problem] = ()) -> etree._Element:
    """The ITI-41 response: an ``rs:RegistryResponse`` with ``status`` and its errors/warnings."""
    return build_registry_response(status, problems)


def parse_response(el: etree._Element) -> RegistryResult:
    """Status and problems of an ITI-41 ``rs:RegistryResponse`` (raises ProtocolError when it has no status)."""
    return parse_registry_response(el)
