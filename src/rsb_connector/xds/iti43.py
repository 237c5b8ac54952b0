"""ITI-43 Retrieve Document Set: ``xdsb:RetrieveDocumentSetRequest`` and ``xdsb:RetrieveDocumentSetResponse``.

The same code builds a message on one side and parses it on the other. Documents travel as MTOM attachments
(:class:`~rsb_connector.xds.parts.XopRef`) or inline base64 (:class:`~rsb_connector.xds.parts.Inline`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from rsb_connector.errors import Problem, ProtocolError
from rsb_connector.xds.constants import RS, XDSB, XOP
from rsb_connector.xds.parts import DocumentPart, Inline, XopRef
from rsb_connector.xds.rs import build_registry_error_list, parse_registry_response
from rsb_connector.xds.xop import XOP_INCLUDE, build_include, href_to_cid

__all__ = [
    "DocumentRequest",
    "DocumentResponse",
    "RetrieveRequestError",
    "RetrieveResponse",
    "build_request",
    "build_response",
    "parse_request",
    "parse_response",
]

_X = f"{{{XDSB}}}"
_NSMAP = {"xdsb": XDSB}


class RetrieveRequestError(ProtocolError):
    """A RetrieveDocumentSetRequest is malformed; ``problems`` says what, where, with XDS error codes.

    A repository answers it with a Failure ``RegistryResponse`` carrying these problems.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "malformed RetrieveDocumentSetRequest")


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """One document to retrieve: where it is (repository, community) and its uniqueId."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True)
class DocumentResponse:
    """One retrieved document: which request it answers, its MIME type, and where its bytes are."""

    request: DocumentRequest
    mime_type: str
    part: DocumentPart


@dataclass(slots=True)
class RetrieveResponse:
    """A parsed RetrieveDocumentSetResponse."""

    status: str
    documents: list[DocumentResponse] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _ids(parent: etree._Element, request: DocumentRequest) -> None:
    if request.home_community_id:
        etree.SubElement(parent, f"{_X}HomeCommunityId").text = request.home_community_id
    etree.SubElement(parent, f"{_X}RepositoryUniqueId").text = request.repository_unique_id
    etree.SubElement(parent, f"{_X}DocumentUniqueId").text = request.document_unique_id


def build_request(requests: Sequence[DocumentRequest]) -> etree._Element:
    """An ``xdsb:RetrieveDocumentSetRequest`` with one ``xdsb:DocumentRequest`` per entry.

    Raises:
        ValueError: ``requests`` is empty (the schema requires at least one).
    """
    if not requests:
        raise ValueError("a RetrieveDocumentSetRequest needs at least one DocumentRequest")
    root = etree.Element(f"{_X}RetrieveDocumentSetRequest", nsmap=_NSMAP)
    for request in requests:
        _ids(etree.SubElement(root, f"{_X}DocumentRequest"), request)
    return root


def _text(parent: etree._Element, name: str) -> str | None:
    child = parent.find(f"{_X}{name}")
    if child is None:
        return None
    return (child.text or "").strip() or None


def parse_request(el: etree._Element) -> list[DocumentRequest]:
    """The document requests of an ``xdsb:RetrieveDocumentSetRequest``.

    Raises:
        RetrieveRequestError: wrong root element, no DocumentRequest, or a DocumentRequest without its
            RepositoryUniqueId (``XDSUnknownRepositoryId``) or DocumentUniqueId (``XDSDocumentUniqueIdError``).
    """
    if el.tag != f"{_X}RetrieveDocumentSetRequest":
        raise RetrieveRequestError(
            [Problem("XDSRepositoryError", f"expected xdsb:RetrieveDocumentSetRequest, got {etree.QName(el).text}")]
        )
    problems: list[Problem] = []
    requests: list[DocumentRequest] = []
    elements = el.findall(f"{_X}DocumentRequest")
    if not elements:
        problems.append(
            Problem("XDSRepositoryError", "the request holds no DocumentRequest: name at least one document")
        )
    for index, element in enumerate(elements, start=1):
        path = f"DocumentRequest[{index}]"
        repository = _text(element, "RepositoryUniqueId")
        document = _text(element, "DocumentUniqueId")
        if repository is None:
            problems.append(
                Problem(
                    "XDSUnknownRepositoryId",
                    "RepositoryUniqueId is missing or empty: send the repositoryUniqueId of the DocumentEntry",
                    f"{path}.RepositoryUniqueId",
                )
            )
        if document is None:
            problems.append(
                Problem(
                    "XDSDocumentUniqueIdError",
                    "DocumentUniqueId is missing or empty: send the uniqueId of the DocumentEntry",
                    f"{path}.DocumentUniqueId",
                )
            )
        if repository is not None and document is not None:
            requests.append(DocumentRequest(repository, document, _text(element, "HomeCommunityId")))
    if problems:
        raise RetrieveRequestError(problems)
    return requests


def build_response(
    status: str, documents: Sequence[DocumentResponse], problems: Sequence[Problem] = ()
) -> etree._Element:
    """An ``xdsb:RetrieveDocumentSetResponse``: the ``rs:RegistryResponse`` (status and errors), then one
    ``xdsb:DocumentResponse`` per document whose ``xdsb:Document`` holds an ``xop:Include`` or base64 text."""
    root = etree.Element(f"{_X}RetrieveDocumentSetResponse", nsmap={"xdsb": XDSB, "rs": RS})
    registry_response = etree.SubElement(root, f"{{{RS}}}RegistryResponse")
    registry_response.set("status", status)
    if problems:
        registry_response.append(build_registry_error_list(problems))
    for document in documents:
        element = etree.SubElement(root, f"{_X}DocumentResponse")
        _ids(element, document.request)
        etree.SubElement(element, f"{_X}mimeType").text = document.mime_type
        content = etree.SubElement(element, f"{_X}Document")
        if isinstance(document.part, XopRef):
            content.append(build_include(document.part.cid))
        else:
            content.text = base64.b64encode(document.part.data).decode("ascii")
    return root


def _document_part(element: etree._Element, where: str) -> DocumentPart:
    include = element.find(XOP_INCLUDE)
    if include is not None:
        href = include.get("href")
        if not href or not href.strip():
            raise ProtocolError(f"{where}: xop:Include has no href")
        return XopRef(href_to_cid(href))
    if any(isinstance(child.tag, str) for child in element):
        raise ProtocolError(f"{where}: Document holds an element other than {{{XOP}}}Include")
    try:
        return Inline(base64.b64decode("".join((element.text or "").split()), validate=True))
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{where}: Document is neither an xop:Include nor valid base64") from None


def parse_response(el: etree._Element) -> RetrieveResponse:
    """Status, problems and documents of an ``xdsb:RetrieveDocumentSetResponse``.

    Raises:
        ProtocolError: wrong root element, no ``rs:RegistryResponse``, or a DocumentResponse lacking its ids,
            mimeType or Document.
    """
    if el.tag != f"{_X}RetrieveDocumentSetResponse":
        raise ProtocolError(f"expected xdsb:RetrieveDocumentSetResponse, got {etree.QName(el).text}")
    registry_response = el.find(f"{{{RS}}}RegistryResponse")
    if registry_response is None:
        raise ProtocolError("the RetrieveDocumentSetResponse has no rs:RegistryResponse")
    result = parse_registry_response(registry_response)
    documents: list[DocumentResponse] = []
    for index, element in enumerate(el.findall(f"{_X}DocumentResponse"), start=1):
        where = f"DocumentResponse[{index}]"
        repository = _text(element, "RepositoryUniqueId")
        document = _text(element, "DocumentUniqueId")
        mime_type = _text(element, "mimeType")
        content = element.find(f"{_X}Document")
        missing = [
            name
            for name, value in (
                ("RepositoryUniqueId", repository),
                ("DocumentUniqueId", document),
                ("mimeType", mime_type),
                ("Document", content),
            )
            if value is None
        ]
        if missing or repository is None or document is None or mime_type is None or content is None:
            raise ProtocolError(f"{where} lacks {', '.join(missing)}")
        request = DocumentRequest(repository, document, _text(element, "HomeCommunityId"))
        documents.append(DocumentResponse(request, mime_type, _document_part(content, where)))
    return RetrieveResponse(status=result.status, documents=documents, problems=result.problems)
