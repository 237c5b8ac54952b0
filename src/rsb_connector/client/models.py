"""What the SDK client hands back: receipts, retrieved documents, query results, and the client's own errors.

Plain typed values, independent of the wire protocol (XDS.b today, MHD later).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, TypedDict

from ..errors import HubError, HubRefused, Problem, TransportError
from ..metadata.content import ContentSource
from ..metadata.model import Association, Code, DocumentEntry, SubmissionSet

__all__ = [
    "DocumentOptions",
    "DocumentReceipt",
    "HttpStatusError",
    "NewDocument",
    "NotFoundError",
    "PartialRetrieveError",
    "Receipt",
    "RelatedDocuments",
    "RetrievedDocument",
    "SubmissionSetContents",
]


class NewDocument(NamedTuple):
    """A document to publish: its content and its complete metadata (usually from
    :func:`~rsb_connector.metadata.builder.new_document`).

    Example::

        doc = NewDocument(pdf_bytes, new_document(pdf_bytes, patient=ssin, document_type="labresult",
                                                  mime_type="application/pdf"))
    """

    content: ContentSource
    entry: DocumentEntry


class DocumentOptions(TypedDict, total=False):
    """Optional metadata of a published document, passed on to :func:`~rsb_connector.metadata.builder.new_document`
    (see its docstring for every default)."""

    confidentiality: str
    language: str
    facility_type: str | None
    practice_setting: str | None
    format_code: str | None
    creation_time: datetime | str | None
    service_start: datetime | str | None
    service_stop: datetime | str | None
    event_codes: Sequence[Code]
    class_code: str | None
    unique_id: str | None
    entry_uuid: str | None
    reference_ids: Sequence[str]
    compute_digest: bool


@dataclass(frozen=True, slots=True)
class DocumentReceipt:
    """One document the hub accepted.

    Attributes:
        unique_id: the document's uniqueId (keep it: it names the document everywhere).
        entry_uuid: the DocumentEntry's entryUUID *as sent* (a registry may assign another one; find the entry by
            ``unique_id`` to be sure).
        hash: SHA-1 of the content sent (lower-case hex), or ``None`` when neither given nor measurable.
        size: size in bytes of the content sent, or ``None``.
        mime_type: the document's MIME type.
    """

    unique_id: str
    entry_uuid: str
    hash: str | None
    size: int | None
    mime_type: str | None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The hub's acceptance of one submission set (one ``publish`` call).

    Attributes:
        submission_set_unique_id: the SubmissionSet's uniqueId.
        submission_set_entry_uuid: the SubmissionSet's entryUUID as sent.
        documents: one :class:`DocumentReceipt` per document, in the order given.
        warnings: warnings the hub returned with its Success (rarely any).
    """

    submission_set_unique_id: str
    submission_set_entry_uuid: str
    documents: tuple[DocumentReceipt, ...]
    warnings: tuple[Problem, ...] = ()

    @property
    def document(self) -> DocumentReceipt:
        """The first (for a single-document publish: the only) document's receipt."""
        return self.documents[0]


@dataclass(slots=True)
class RetrievedDocument:
    """A document retrieved from the repository.

    Exactly one of ``content`` (retrieved into memory) and ``path`` (streamed to a file) is set.

    Attributes:
        unique_id: the document's uniqueId.
        repository_unique_id: the repository that served it.
        mime_type: its MIME type as the repository returned it.
        hash: SHA-1 of the bytes received (lower-case hex).
        size: number of bytes received.
        content: the bytes, when retrieved into memory.
        path: the file holding the bytes, when retrieved to disk.
        entry: the DocumentEntry the content was checked against, when known.
        verified: True when hash and size were checked against the entry's metadata.
    """

    unique_id: str
    repository_unique_id: str
    mime_type: str
    hash: str
    size: int
    content: bytes | None = None
    path: Path | None = None
    entry: DocumentEntry | None = None
    verified: bool = False

    def read_bytes(self) -> bytes:
        """The document's bytes (from memory, or read from :attr:`path`)."""
        if self.content is not None:
            return self.content
        if self.path is None:  # pragma: no cover - one of the two is always set
            raise ValueError("this RetrievedDocument holds neither content nor a path")
        return self.path.read_bytes()


@dataclass(slots=True)
class SubmissionSetContents:
    """A submission set with the document entries and associations it holds (GetSubmissionSetAndContents)."""

    submission_set: SubmissionSet
    entries: list[DocumentEntry] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)


@dataclass(slots=True)
class RelatedDocuments:
    """Documents related to one entry (replacements, addenda, transforms, signatures) and the associations that
    relate them (GetRelatedDocuments). ``entries`` leaves out the entry the question was about."""

    entries: list[DocumentEntry] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)


class NotFoundError(HubRefused):
    """What was asked for is not registered, or not visible to the caller (e.g. a uniqueId no entry has).

    A :class:`~rsb_connector.errors.HubRefused`: ``problems`` carries the XDS code a repository or registry would
    answer (``XDSDocumentUniqueIdError`` for an unknown document).
    """

    prefix = "not found"


class PartialRetrieveError(HubError):
    """A retrieve of several documents answered PartialSuccess: some came back, some did not.

    Not a :class:`~rsb_connector.errors.HubRefused` (something was done). ``problems`` says which documents are
    missing and why; ``partial`` holds the documents that *were* retrieved (checked, and written to disk when a
    directory was given), so nothing received is lost.
    """

    prefix = "only some documents could be retrieved"

    def __init__(
        self,
        problems: Iterable[Problem],
        partial: Sequence[RetrievedDocument],
        *,
        status: str | None = None,
    ) -> None:
        super().__init__(problems, status=status)
        self.partial: list[RetrievedDocument] = list(partial)


class HttpStatusError(TransportError):
    """The peer answered an HTTP error without a SOAP/FHIR message in it (an HTML error page, a proxy's 502...).

    Attributes:
        status_code: the HTTP status.
        url: the URL called.
    """

    def __init__(self, message: str, *, status_code: int, url: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.url = url
