"""The sans-IO core of the SDK client: every decision, no I/O.

:class:`~rsb_connector.client.VaultClient` and :class:`~rsb_connector.client.AsyncVaultClient` are twins over this
module. Each operation (publish, find, retrieve...) is a *flow*: a generator that yields instructions and receives
nothing back but the results it asked for through a :class:`ResponseSink`:

- :class:`Send` — perform this HTTP request and stream the response into this sink (``start`` then ``feed``);
- :class:`Sleep` — wait this many seconds (a retry backoff).

When the driver fails to perform an instruction it throws the exception into the flow, which decides (retry,
convert, clean up). A driver is a dozen lines: ``time.sleep`` + ``httpx.Client`` in one, ``asyncio.sleep`` +
``httpx.AsyncClient`` in the other. Message building and parsing, local validation, retry decisions, integrity
checks, file placement and transaction logging all live here and in the protocol implementation behind
:class:`WireProtocol` (XDS.b in :mod:`._xds`; MHD later).
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
import random
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Generic, Literal, Protocol, TypeAlias, TypeVar, Unpack, cast

import httpx

from ..errors import (
    AccessDenied,
    HubError,
    HubRefused,
    IntegrityError,
    MetadataError,
    Problem,
    ProtocolError,
    TransportError,
)
from ..identifiers import SSIN_OID, Ssin, mask_ssin, parse_cx
from ..metadata.builder import (
    DEFAULT_SOURCE_ID,
    new_document,
    new_submission,
    new_uuid,
    professional_author,
    to_dtm,
)
from ..metadata.content import ContentDigest, ContentSource, DigestingWriter, digest
from ..metadata.model import (
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
)
from ..metadata.rules import check_submission, is_registry_reference
from ..metadata.valuesets import CodeKind, load_value_sets
from ..mhd.constants import BREAK_THE_GLASS_HEADER
from ..policy import BREAK_THE_GLASS_MAX_LENGTH, BREAK_THE_GLASS_MIN_LENGTH, break_the_glass_problem
from ..query import (
    FindDocuments,
    GetDocuments,
    GetRelatedDocuments,
    GetSubmissionSetAndContents,
    Query,
)
from ..security.identity import Identity
from ..security.trust import TrustStore
from ..security.wssec import WsSecurityVerifier
from ..xds.constants import DEFAULT_REPOSITORY_UNIQUE_ID, STATUS_FAILURE, STATUS_PARTIAL_SUCCESS, STATUS_SUCCESS
from ._retry import RetryPolicy, Safety
from .models import (
    DocumentOptions,
    DocumentReceipt,
    HttpStatusError,
    NewDocument,
    NotFoundError,
    PartialRetrieveError,
    Receipt,
    RelatedDocuments,
    RetrievedDocument,
    SubmissionSetContents,
)

__all__ = [
    "BREAK_THE_GLASS_HEADER",
    "DEFAULT_LIMITS",
    "RELATIONSHIP_TYPES",
    "ClientCore",
    "DocumentLocator",
    "Exchange",
    "Flow",
    "HttpRequest",
    "Instruction",
    "Outcome",
    "OutgoingContent",
    "ProgressCallback",
    "QueryOutcome",
    "ResponseSink",
    "RetrieveOutcome",
    "RetrievedPart",
    "Send",
    "Sleep",
    "StatusFilter",
    "StreamingBody",
    "SubmitOutcome",
    "Transaction",
    "WireProtocol",
    "wire_headers",
]

if TYPE_CHECKING:
    from ._auth import TokenSource

log = logging.getLogger("rsb_connector.client")
log.addHandler(logging.NullHandler())  # a library logs; the application decides where it goes

T = TypeVar("T")
OutcomeT = TypeVar("OutcomeT", bound="Outcome")

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
"""Connection pool limits when none are given (httpx's own defaults)."""

StatusFilter: TypeAlias = Literal["approved", "deprecated", "all"]
ProgressCallback: TypeAlias = Callable[[int, int | None], None]
"""Called as bytes of a response arrive: ``(bytes received so far, Content-Length or None)``."""
CodeArg: TypeAlias = Code | str | Iterable[Code | str] | None
TimeArg: TypeAlias = datetime | str | None

# ============================================================================================ instructions


class StreamingBody(Protocol):
    """A request body produced chunk by chunk, for a sync and an async HTTP client alike (e.g. an MtomWriter)."""

    def __iter__(self) -> Iterator[bytes]: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """An HTTP request to perform: method, absolute URL, headers and body (bytes or a streaming body)."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | StreamingBody


class ResponseSink(ABC, Generic[T]):
    """Consumes one HTTP response as it arrives. The driver calls :meth:`start` then :meth:`feed` per chunk; the
    core calls :meth:`finish` (→ the parsed result, or raises) or :meth:`abort` (→ delete whatever was spooled)."""

    @abstractmethod
    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        """The status line and headers arrived; raise to stop reading (wrong content type, HTTP error page)."""

    @abstractmethod
    def feed(self, chunk: bytes) -> None:
        """The next piece of the body."""

    @abstractmethod
    def finish(self) -> T:
        """The body is complete: parse it into the result (raises ProtocolError, HubRefused...)."""

    @abstractmethod
    def abort(self) -> None:
        """The exchange failed: release everything (idempotent)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Instruction: perform ``request`` and stream its response into ``sink``."""

    request: HttpRequest
    sink: ResponseSink[Any]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Instruction: wait ``seconds`` (a retry backoff)."""

    seconds: float


Instruction: TypeAlias = Send | Sleep
Flow: TypeAlias = Generator[Instruction, None, T]
"""An operation: yields instructions, receives ``None`` for each one done (or the failure thrown in), returns T."""


class _ProgressSink(ResponseSink[T]):
    """Reports the bytes received to a callback, passing everything on to the real sink."""

    def __init__(self, inner: ResponseSink[T], callback: ProgressCallback) -> None:
        self.inner = inner
        self.callback = callback
        self.received = 0
        self.total: int | None = None

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        length = headers.get("content-length")
        self.total = int(length) if length and length.isdigit() else None
        self.inner.start(status_code, headers)
        self.callback(0, self.total)

    def feed(self, chunk: bytes) -> None:
        self.inner.feed(chunk)
        self.received += len(chunk)
        self.callback(self.received, self.total)

    def finish(self) -> T:
        return self.inner.finish()

    def abort(self) -> None:
        self.inner.abort()


def with_progress(sink: ResponseSink[T], callback: ProgressCallback | None) -> ResponseSink[T]:
    """``sink``, reporting progress to ``callback`` when one is given."""
    return sink if callback is None else _ProgressSink(sink, callback)


# ============================================================================================ outcomes


@dataclass(slots=True)
class Outcome:
    """What a hub answered to one transaction, in protocol-neutral terms.

    Attributes:
        status: the ebRS response status URN (Success, PartialSuccess, Failure); MHD maps its answers onto them.
        problems: the errors and warnings the hub returned.
    """

    status: str
    problems: list[Problem] = field(default_factory=list)

    @property
    def short_status(self) -> str:
        """``Success``, ``PartialSuccess`` or ``Failure``."""
        return self.status.rsplit(":", 1)[-1]


@dataclass(slots=True)
class SubmitOutcome(Outcome):
    """The answer to a submission or a status update."""


@dataclass(slots=True)
class QueryOutcome(Outcome):
    """The answer to a stored query: the objects found."""

    entries: list[DocumentEntry] = field(default_factory=list)
    submission_sets: list[SubmissionSet] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DocumentLocator:
    """Where a document is: its repository (and community) and its uniqueId; and its entryUUID when known (MHD
    retrieves a document by the FHIR id made of it)."""

    repository_unique_id: str
    unique_id: str
    home_community_id: str | None = None
    entry_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class RetrievedPart:
    """One document received and spooled to ``path`` (owned by whoever holds the outcome)."""

    locator: DocumentLocator
    mime_type: str
    path: Path
    digest: ContentDigest


@dataclass(slots=True)
class RetrieveOutcome(Outcome):
    """The answer to a retrieve: the documents received, each in a spool file."""

    parts: list[RetrievedPart] = field(default_factory=list)

    def discard(self) -> None:
        """Delete every spool file still in place."""
        for part in self.parts:
            with contextlib.suppress(FileNotFoundError):
                part.path.unlink()


# ============================================================================================ transactions


@dataclass(frozen=True, slots=True)
class Transaction(Generic[OutcomeT]):
    """One request/response exchange, as a protocol describes it to the core.

    Attributes:
        name: the transaction for people and logs (``ITI-41``).
        action: the protocol action (``wsa:Action``), logged.
        url: the endpoint.
        safety: how safe it is to send twice (drives retries).
        prepare: builds a *fresh* request and its sink: called once per attempt, so a retry is a new message.
        rewindable: False when the request content cannot be produced again (then it is never retried).
        patient: the patient concerned (a CX), logged masked.
    """

    name: str
    action: str
    url: str
    safety: Safety
    prepare: Callable[[], tuple[HttpRequest, ResponseSink[OutcomeT]]]
    rewindable: bool = True
    patient: str | None = None


class Exchange(Protocol):
    """Runs a :class:`Transaction` with retries and logging (the core's :meth:`ClientCore.exchange`)."""

    def __call__(self, transaction: Transaction[OutcomeT], /) -> Flow[OutcomeT]: ...


class _MeasuringReader:
    """A read-only stream wrapper that hashes what is read through it."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.writer = DigestingWriter()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.writer.update(data)
        return data


def _is_stream(source: ContentSource) -> bool:
    return not isinstance(source, bytes | bytearray | memoryview | os.PathLike)


class OutgoingContent:
    """A document's content on its way out: rewinds a stream before each attempt and measures what is sent when the
    entry carries no hash or size."""

    def __init__(self, entry: DocumentEntry, source: ContentSource) -> None:
        self.entry_uuid = entry.entry_uuid
        self.mime_type = entry.mime_type or "application/octet-stream"
        self.source = source
        self._known: ContentDigest | None = None
        self._reader: _MeasuringReader | None = None
        self._position: int | None = None
        self.rewindable = True
        measure = entry.hash is None or entry.size is None
        if _is_stream(source):
            stream = cast(BinaryIO, source)
            try:
                self._position = stream.tell() if stream.seekable() else None
            except (OSError, AttributeError, ValueError):
                self._position = None
            self.rewindable = self._position is not None
            self._measure_stream = measure
        else:
            self._measure_stream = False
            if measure:
                self._known = digest(source)

    def open(self) -> ContentSource:
        """The content for one attempt (a stream is put back where it started)."""
        if not _is_stream(self.source):
            return self.source
        stream = cast(BinaryIO, self.source)
        if self._position is not None:
            stream.seek(self._position)
        if not self._measure_stream:
            return stream
        self._reader = _MeasuringReader(stream)
        return cast(BinaryIO, self._reader)

    @property
    def sent_digest(self) -> ContentDigest | None:
        """Hash and size of what was sent, when they had to be measured."""
        if self._known is not None:
            return self._known
        return self._reader.writer.result() if self._reader is not None else None


# ============================================================================================ protocol seam


class WireProtocol(ABC):
    """What a wire protocol must provide to the core: four transactions, each a flow returning a neutral outcome.

    Implementations build and parse messages only; retries and logging come from the ``exchange`` they are given,
    and every decision about outcomes (refusals, integrity, file placement) is the core's.
    """

    name: ClassVar[str]

    def check_local(self, submission: Submission) -> None:  # noqa: B027 - a hook: most protocols need nothing
        """Refuse, before anything is sent, what this protocol cannot send (raises :class:`MetadataError`)."""

    @abstractmethod
    def submit(self, submission: Submission, contents: Sequence[OutgoingContent]) -> Flow[SubmitOutcome]:
        """Provide and register one submission set with the documents' contents."""

    @abstractmethod
    def query(self, query: Query, *, break_the_glass: str | None = None) -> Flow[QueryOutcome]:
        """Run a stored query (``break_the_glass``: a professional's checked emergency reason to send along, for a
        protocol that can carry one; :meth:`ClientCore.glass` decides before anything is sent)."""

    @abstractmethod
    def retrieve(
        self,
        documents: Sequence[DocumentLocator],
        *,
        spool_dir: Path,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> Flow[RetrieveOutcome]:
        """Retrieve documents, spooling each into ``spool_dir`` (``break_the_glass`` as for :meth:`query`)."""

    @abstractmethod
    def update_status(
        self, *, patient_id: str, entry_uuid: str, original: AvailabilityStatus, new: AvailabilityStatus
    ) -> Flow[SubmitOutcome]:
        """Change a DocumentEntry's availability status."""


# ============================================================================================ helpers

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
RELATIONSHIP_TYPES: tuple[AssociationType, ...] = tuple(t for t in AssociationType if t.is_relationship)
"""RPLC, APND, XFRM, XFRM_RPLC and signs: the default of ``related_documents``."""


def wire_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Request headers as the drivers send them: values in UTF-8 (a break-the-glass reason may hold accents; the
    hub reads header bytes as UTF-8), ASCII ones unchanged."""
    return [(name.encode("ascii"), value.encode("utf-8")) for name, value in headers.items()]


def _patient_cx(patient: Ssin | str) -> str:
    """The XDS patientId of ``patient``: an :class:`Ssin`, SSIN text, or a CX ``id^^^&OID&ISO``."""
    if isinstance(patient, Ssin):
        return patient.to_cx()
    if "^" in patient:
        cx = parse_cx(patient)
        if cx.authority_oid == SSIN_OID:
            return Ssin(cx.id).to_cx()
        return str(cx)
    return Ssin(patient).to_cx()


def _file_name(unique_id: str, mime_type: str | None) -> str:
    """A safe file name for a document: its uniqueId with anything unusual replaced, plus an extension."""
    stem = _UNSAFE_NAME.sub("_", unique_id).strip("._") or "document"
    extension = mimetypes.guess_extension(mime_type or "", strict=False) or ".bin"
    return stem[:200] + extension


def _short(status: str | None) -> str:
    return (status or "").rsplit(":", 1)[-1] or "-"


def _transport_message(exc: BaseException, tx: Transaction[Any], attempts: int) -> str:
    """What failed, for a person: the transaction, the URL, what happened (no content, SSINs masked)."""
    if isinstance(exc, httpx.ConnectTimeout):
        what = "could not connect in time"
    elif isinstance(exc, httpx.ConnectError):
        what = f"could not connect ({exc})" if str(exc) else "could not connect"
    elif isinstance(exc, httpx.PoolTimeout):
        what = "no free connection in the pool in time"
    elif isinstance(exc, httpx.ReadTimeout):
        what = "no answer in time (read timeout)"
    elif isinstance(exc, httpx.WriteTimeout):
        what = "could not send the request in time (write timeout)"
    elif isinstance(exc, httpx.TimeoutException):
        what = "timed out"
    elif isinstance(exc, httpx.RemoteProtocolError):
        what = f"the connection broke or the peer spoke invalid HTTP ({exc})"
    elif isinstance(exc, httpx.NetworkError):
        what = f"the connection failed ({exc})"
    else:
        what = str(exc) or type(exc).__name__
    tries = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
    return mask_ssin(f"{tx.name} POST {tx.url}: {what}{tries}")


def _as_error(exc: Exception, tx: Transaction[Any], attempts: int) -> Exception:
    """The exception to raise for a failed exchange: httpx errors become TransportError; RsbErrors stay."""
    if isinstance(exc, HttpStatusError) and attempts > 1:
        return HttpStatusError(f"{exc} (gave up after {attempts} attempts)", status_code=exc.status_code, url=exc.url)
    if isinstance(exc, httpx.HTTPError):
        return TransportError(_transport_message(exc, tx, attempts))
    return exc


def _raise_for(outcome: Outcome, what: str) -> None:
    """Raise for a Failure (HubRefused with every problem) or a PartialSuccess (HubError)."""
    if outcome.status == STATUS_SUCCESS:
        return
    if outcome.status == STATUS_FAILURE:
        raise refused(outcome.problems, _summary(what, outcome.problems), status=outcome.status)
    if outcome.status == STATUS_PARTIAL_SUCCESS:
        raise HubError(outcome.problems, _summary(f"{what} in part", outcome.problems), status=outcome.status)
    raise ProtocolError(f"{what}: unknown response status {outcome.status!r}")


def refused(problems: Sequence[Problem], message: str, *, status: str | None = None) -> HubRefused:
    """The exception for a refusal: :class:`~rsb_connector.errors.AccessDenied` (naming the rule and the fix) when
    the hub's access policy refused, else :class:`~rsb_connector.errors.HubRefused`."""
    denied = AccessDenied.from_problems(problems, message, status=status)
    return denied if denied is not None else HubRefused(problems, message, status=status)


def _summary(what: str, problems: Sequence[Problem]) -> str:
    """``what`` then one line per problem (``errors._summarise`` layout, with our own first line)."""
    if not problems:
        return f"{what} without saying why"
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return "\n".join([f"{what} ({count}):", *(f"  - {p}" for p in problems)])


# ============================================================================================ the core


class ClientCore:
    """Settings and operation flows shared by :class:`VaultClient` and :class:`AsyncVaultClient`.

    Every public method returns a :data:`Flow`; the clients run them. Nothing here touches the network, the clock
    (beyond measuring durations for logs) or sleeps.
    """

    def __init__(
        self,
        base_url: str,
        *,
        protocol: str = "xds",
        identity: Identity | None = None,
        trust: TrustStore | str | os.PathLike[str] | None = None,
        retries: int = 3,
        backoff: float = 0.2,
        repository_unique_id: str | None = None,
        source_id: str | None = None,
        mtom: bool = True,
        spool_dir: Path | None = None,
        rand: Callable[[], float] | None = None,
        precheck: bool = True,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"base_url {base_url!r} is not an http(s) URL such as http://127.0.0.1:8080")
        self.base_url = str(base_url).rstrip("/")
        if identity is not None and not isinstance(identity, Identity):
            raise TypeError(
                "identity must be an rsb_connector.Identity (Identity.load(path, password)), "
                f"not {type(identity).__name__}"
            )
        self.identity = identity
        self.precheck = precheck and identity is not None
        self.trust = TrustStore.from_pem_file(os.fspath(trust)) if isinstance(trust, str | os.PathLike) else trust
        self.verifier = WsSecurityVerifier(self.trust, require_signed_addressing=True) if self.trust else None
        if self.verifier is None and identity is not None:
            log.warning(
                "no trust store given: the hub's answers at %s are not signature-checked (pass trust=<CA file>)",
                self.base_url,
            )
        self._tokens: TokenSource | None = None
        self.retry = RetryPolicy(retries=retries, backoff=backoff)
        self.repository_unique_id = repository_unique_id or DEFAULT_REPOSITORY_UNIQUE_ID
        self.source_id = source_id or DEFAULT_SOURCE_ID
        self.mtom = mtom
        self.spool_dir = spool_dir
        self._rand = rand or random.random
        self.protocol = self._make_protocol(protocol)

    def _make_protocol(self, name: str) -> WireProtocol:
        """XDS.b (``"xds"``), or MHD (``"mhd"``), which sends status updates and the stored queries ITI-67 cannot
        express through an XDS protocol object."""
        if name not in ("xds", "mhd"):
            raise ValueError(f"unknown protocol {name!r}: use 'xds' (XDS.b SOAP) or 'mhd' (IHE MHD, FHIR R4)")
        from ._xds import XdsProtocol

        xds = XdsProtocol(
            self.exchange,
            base_url=self.base_url,
            mtom=self.mtom,
            source_id=self.source_id,
            spool_dir=self._spool(),
            identity=self.identity,
            verifier=self.verifier,
        )
        if name == "xds":
            return xds
        from ._mhd import MhdProtocol

        return MhdProtocol(
            self.exchange,
            base_url=self.base_url,
            tokens=self.tokens if self.identity is not None else None,
            xds=xds,
            spool_dir=self._spool(),
        )

    def _spool(self) -> Path:
        return self.spool_dir or Path(tempfile.gettempdir())

    @property
    def tokens(self) -> TokenSource:
        """OAuth2 access tokens for the hub's FHIR side, obtained with the identity (``private_key_jwt``) at
        ``{base_url}/oauth2/token`` and refreshed before they expire."""
        if self.identity is None:
            raise ValueError("bearer tokens need an identity: VaultClient(..., identity=Identity.load(...))")
        if self._tokens is None:
            from ._auth import TOKEN_PATH, TokenSource

            self._tokens = TokenSource(self.identity, f"{self.base_url}{TOKEN_PATH}")
        return self._tokens

    # ---------------------------------------------------------------------------------------- exchange

    def exchange(self, tx: Transaction[OutcomeT]) -> Flow[OutcomeT]:
        """Run one transaction: a fresh message per attempt, retries as :class:`RetryPolicy` allows, one log line.

        Raises the hub's verdict untouched (HubRefused from a fault...), httpx failures as TransportError.
        """
        started = time.perf_counter()
        attempts = 0
        status = "error"
        try:
            while True:
                attempts += 1
                request, sink = tx.prepare()
                try:
                    yield Send(request, sink)
                    outcome = sink.finish()
                except Exception as exc:
                    sink.abort()
                    delay = self.retry.next_delay(tx.safety, exc, attempts, rewindable=tx.rewindable, rand=self._rand)
                    if delay is None:
                        status = type(exc).__name__
                        if isinstance(exc, HubError):
                            status = f"{type(exc).__name__}:{','.join(exc.codes)}"
                        error = _as_error(exc, tx, attempts)
                        if error is exc:
                            raise
                        raise error from exc
                    log.debug(
                        "%s %s: attempt %d failed (%s), retrying in %.2f s",
                        tx.name,
                        tx.url,
                        attempts,
                        type(exc).__name__,
                        delay,
                        extra={"transaction": tx.name, "attempt": attempts, "delay_s": round(delay, 3)},
                    )
                    yield Sleep(delay)
                    continue
                except BaseException:
                    sink.abort()
                    status = "cancelled"
                    raise
                status = outcome.short_status
                return outcome
        finally:
            self._log(tx, attempts, started, status)

    @staticmethod
    def _log(tx: Transaction[Any], attempts: int, started: float, status: str) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        patient = mask_ssin(tx.patient) if tx.patient else None
        url, action = mask_ssin(tx.url), mask_ssin(tx.action)  # FHIR URLs carry the patient's SSIN in the query
        level = logging.INFO if status in ("Success", "PartialSuccess", "Failure") else logging.WARNING
        log.log(
            level,
            "%s %s %s in %.1f ms",
            tx.name,
            status,
            url,
            duration_ms,
            extra={
                "transaction": tx.name,
                "action": action,
                "url": url,
                "status": status,
                "duration_ms": duration_ms,
                "attempts": attempts,
                "patient": patient,
            },
        )

    # ---------------------------------------------------------------------------------------- publish

    def _precheck(
        self,
        action: str,
        facts: Iterable[tuple[str | None, str | None, Sequence[str]]],
        break_the_glass: str | None = None,
    ) -> Flow[None]:
        """Ask the hub's policy engine before acting (``GET /fhir/$check-access``), once per patient and class.

        ``facts`` are (patient CX, class code, confidentiality codes); ``break_the_glass`` the reason the request
        itself will carry (``break-the-glass=``), so that the check is the one the hub will make. A denial raises
        :class:`AccessDenied` naming the rule and what would fix it, before the document is sent or requested. The
        check is advisory: a hub without the endpoint, or a network failure here, skips it — the hub decides on the
        request itself anyway.
        """
        if not self.precheck:
            return
        from ._consent import ConsentFlows  # the consent flows are built on this core

        flows = ConsentFlows(self)
        asked: set[tuple[str, str | None, str]] = set()
        for patient_cx, class_code, confidentiality_codes in facts:
            try:
                patient = Ssin.from_cx(patient_cx or "")
            except ValueError:
                continue  # not an SSIN patient id: the hub answers for itself
            codes = set(confidentiality_codes)
            confidentiality = next((c for c in ("V", "R") if c in codes), "N")
            key = (str(patient), class_code, confidentiality)
            if key in asked:
                continue
            asked.add(key)
            try:
                decision = yield from flows.check_access(
                    patient,
                    action,
                    document_class=class_code,
                    confidentiality=confidentiality,
                    break_the_glass=break_the_glass,
                )
            except (HubError, TransportError) as exc:
                log.debug("access pre-check skipped: %s", exc)
                return
            if not decision.allowed:
                rule = decision.rule.value if decision.rule else None
                message = decision.reason + (f" Fix: {decision.fix}" if decision.fix else "")
                raise AccessDenied(
                    [Problem("LocalPolicyRestrictionError", message, path=f"Policy[{rule}]")],
                    f"the hub's policy would refuse this {action}: {message}",
                    rule=rule,
                    reason=decision.reason,
                    fix=decision.fix,
                )

    def glass(self, reason: str | None) -> str | None:
        """A break-the-glass reason checked before anything is sent: the one-line reason to send (``None`` stays
        ``None``).

        The hub receives the reason as the ``X-Break-The-Glass`` header of its FHIR reads (MHD ITI-66/67/68), from an
        authenticated healthcare professional, and accepts 10 to 200 characters once surrounding whitespace is
        removed (:func:`rsb_connector.policy.break_the_glass_problem`, the engine's own rule).

        Raises:
            ValueError: the client speaks XDS (``protocol="xds"``: XDS.b has no place for the reason, and dropping it
                silently would read without it), the identity is not a healthcare professional, or the reason is of
                the wrong length or spans several lines.
        """
        if reason is None:
            return None
        if self.protocol.name != "mhd":
            raise ValueError(
                "break_the_glass is sent as the X-Break-The-Glass header of the hub's FHIR reads (MHD ITI-66/67/68); "
                "XDS.b (ITI-18, ITI-43) has no place for it: create the client with "
                'VaultClient(..., protocol="mhd") to read by breaking the glass'
            )
        if self.identity is None or self.identity.kind != "professional":
            raise ValueError(
                "only a healthcare professional may break the glass: create the client with a professional's identity"
            )
        if any(ord(c) < 32 or ord(c) == 127 for c in reason):
            raise ValueError("the break-the-glass reason must be one line of text, without control characters")
        problem = break_the_glass_problem(reason)
        if problem is not None:
            raise ValueError(
                f"{problem}: give the emergency reason in {BREAK_THE_GLASS_MIN_LENGTH} to "
                f"{BREAK_THE_GLASS_MAX_LENGTH} characters (it is audited, and the patient reads it)"
            )
        return reason.strip()

    def _default_author(self, author: Author | None) -> Author | None:
        """The author when none is given: the signing identity, when it is a healthcare professional.

        The hub only accepts documents that name the professional who publishes them, so this is what a caller
        means when it leaves ``author`` out.
        """
        if author is not None or self.identity is None:
            return author
        nihii = self.identity.nihii
        if self.identity.kind != "professional" or nihii is None or nihii.is_organisation:
            return None
        return professional_author(nihii, family=self.identity.name, profession=self.identity.profession)

    def publish(
        self,
        content: ContentSource,
        *,
        patient: Ssin | str,
        document_type: str,
        author: Author | None = None,
        mime_type: str | None = None,
        title: str | None = None,
        **options: Unpack[DocumentOptions],
    ) -> Flow[Receipt]:
        """One document, one submission set (see :meth:`VaultClient.publish`)."""
        author = self._default_author(author)
        entry = new_document(
            content,
            patient=patient,
            document_type=document_type,
            author=author,
            mime_type=mime_type,
            title=title,
            **options,
        )
        return (yield from self.publish_many([NewDocument(content, entry)], author=author))

    def publish_many(
        self,
        documents: Sequence[NewDocument | tuple[ContentSource, DocumentEntry]],
        *,
        author: Author | None = None,
        content_type: str | None = None,
        title: str | None = None,
        associations: Sequence[Association] = (),
    ) -> Flow[Receipt]:
        """Several documents of one patient in one submission set (see :meth:`VaultClient.publish_many`)."""
        docs = [NewDocument(*doc) for doc in documents]
        signer = self._default_author(None)
        if signer is not None:
            for doc in docs:
                if not doc.entry.authors:  # an entry that names no author is by the professional who signs
                    doc.entry.authors.append(signer)
        submission = new_submission(
            [doc.entry for doc in docs], source_id=self.source_id, author=author, content_type=content_type, title=title
        )
        submission.associations.extend(associations)
        return (yield from self._submit(submission, docs))

    def _submit(self, submission: Submission, docs: Sequence[NewDocument]) -> Flow[Receipt]:
        if self.identity is not None:
            _bind_contents(docs)
        check_submission(submission)  # MetadataError: nothing leaves
        self.protocol.check_local(submission)
        yield from self._precheck(
            "publish",
            [(e.patient_id, e.class_code.code if e.class_code else None, ()) for e in submission.entries],
        )
        contents = [OutgoingContent(doc.entry, doc.content) for doc in docs]
        outcome = yield from self.protocol.submit(submission, contents)
        _raise_for(outcome, "the hub refused the submission")
        receipts = []
        for doc, content in zip(docs, contents, strict=True):
            sent = content.sent_digest
            entry = doc.entry
            receipts.append(
                DocumentReceipt(
                    unique_id=entry.unique_id or "",
                    entry_uuid=entry.entry_uuid,
                    hash=(entry.hash.lower() if entry.hash else None) or (sent.sha1 if sent else None),
                    size=entry.size if entry.size is not None else (sent.size if sent else None),
                    mime_type=entry.mime_type,
                )
            )
        ss = submission.submission_set
        return Receipt(
            submission_set_unique_id=ss.unique_id or "",
            submission_set_entry_uuid=ss.entry_uuid,
            documents=tuple(receipts),
            warnings=tuple(p for p in outcome.problems if not p.is_error),
        )

    def relate(
        self,
        kind: AssociationType,
        old: DocumentEntry | str,
        content: ContentSource,
        *,
        patient: Ssin | str | None = None,
        document_type: str | None = None,
        author: Author | None = None,
        mime_type: str | None = None,
        title: str | None = None,
        **options: Unpack[DocumentOptions],
    ) -> Flow[Receipt]:
        """Publish ``content`` as a new document related to ``old`` (RPLC replaces it, APND appends to it).

        Missing arguments are taken from the old entry: patient, document type, class, MIME type (when the
        content's cannot be guessed) and title.
        """
        target = yield from self._resolve_entry(old)
        if not target.patient_id:
            raise ProtocolError("the registry returned the document without a patientId")
        old_patient = _patient_cx(target.patient_id)
        new_patient = _patient_cx(patient) if patient is not None else old_patient
        if new_patient != old_patient:
            raise MetadataError(
                [
                    Problem(
                        "XDSPatientIdDoesNotMatch",
                        f"the new document is for another patient ({mask_ssin(new_patient)}) than the document it "
                        f"{'replaces' if kind is AssociationType.RPLC else 'relates to'} "
                        f"({mask_ssin(old_patient)}): a {kind.short} stays with the same patient",
                        "DocumentEntry.patientId",
                    )
                ]
            )
        if document_type is None:
            if target.type_code is None:
                raise ValueError("give document_type=: the old document has no typeCode to reuse")
            document_type = target.type_code.code
        if "class_code" not in options and target.class_code is not None:
            options["class_code"] = target.class_code.code
        if mime_type is None and _guess_mime(content) is None:
            mime_type = target.mime_type
        author = self._default_author(author)
        entry = new_document(
            content,
            patient=Ssin.from_cx(new_patient),
            document_type=document_type,
            author=author,
            mime_type=mime_type,
            title=title if title is not None else target.title,
            **options,
        )
        relation = Association(entry_uuid=new_uuid(), type=kind, source=entry.entry_uuid, target=target.entry_uuid)
        return (yield from self.publish_many([NewDocument(content, entry)], author=author, associations=[relation]))

    def deprecate(self, entry: DocumentEntry | str) -> Flow[None]:
        """ITI-57: Approved → Deprecated (see :meth:`VaultClient.deprecate`)."""
        target = yield from self._resolve_entry(entry)
        if not target.patient_id:
            raise ProtocolError("the registry returned the document without a patientId")
        outcome = yield from self.protocol.update_status(
            patient_id=target.patient_id,
            entry_uuid=target.entry_uuid,
            original=AvailabilityStatus.APPROVED,
            new=AvailabilityStatus.DEPRECATED,
        )
        _raise_for(outcome, "the hub refused the status update")

    # ---------------------------------------------------------------------------------------- queries

    def _query(self, query: Query, break_the_glass: str | None = None) -> Flow[QueryOutcome]:
        outcome = yield from self.protocol.query(query, break_the_glass=break_the_glass)
        _raise_for(outcome, "the registry refused the query")
        return outcome

    def find(
        self,
        patient: Ssin | str,
        *,
        status: StatusFilter = "approved",
        class_codes: CodeArg = None,
        type_codes: CodeArg = None,
        practice_settings: CodeArg = None,
        facility_types: CodeArg = None,
        event_codes: CodeArg = None,
        confidentiality: CodeArg = None,
        format_codes: CodeArg = None,
        created_from: TimeArg = None,
        created_to: TimeArg = None,
        service_from: TimeArg = None,
        service_to: TimeArg = None,
        author_person: str | None = None,
        break_the_glass: str | None = None,
    ) -> Flow[list[DocumentEntry]]:
        """FindDocuments (see :meth:`VaultClient.find`)."""
        glass = self.glass(break_the_glass)
        query = self.find_query(
            patient,
            status=status,
            class_codes=class_codes,
            type_codes=type_codes,
            practice_settings=practice_settings,
            facility_types=facility_types,
            event_codes=event_codes,
            confidentiality=confidentiality,
            format_codes=format_codes,
            created_from=created_from,
            created_to=created_to,
            service_from=service_from,
            service_to=service_to,
            author_person=author_person,
        )
        outcome = yield from self._query(query, glass)
        return outcome.entries

    def find_query(
        self,
        patient: Ssin | str,
        *,
        status: StatusFilter = "approved",
        class_codes: CodeArg = None,
        type_codes: CodeArg = None,
        practice_settings: CodeArg = None,
        facility_types: CodeArg = None,
        event_codes: CodeArg = None,
        confidentiality: CodeArg = None,
        format_codes: CodeArg = None,
        created_from: TimeArg = None,
        created_to: TimeArg = None,
        service_from: TimeArg = None,
        service_to: TimeArg = None,
        author_person: str | None = None,
    ) -> FindDocuments:
        """The FindDocuments query :meth:`find` sends (codes resolved, times converted to DTM)."""
        statuses = {
            "approved": (AvailabilityStatus.APPROVED,),
            "deprecated": (AvailabilityStatus.DEPRECATED,),
            "all": (AvailabilityStatus.APPROVED, AvailabilityStatus.DEPRECATED),
        }
        if status not in statuses:
            raise ValueError(f"status {status!r}: use 'approved', 'deprecated' or 'all'")
        events = _codes(CodeKind.EVENT_CODE_LIST, event_codes)
        secrecy = _codes(CodeKind.CONFIDENTIALITY_CODE, confidentiality)
        return FindDocuments(
            patient_id=_patient_cx(patient),
            statuses=statuses[status],
            class_codes=_codes(CodeKind.CLASS_CODE, class_codes),
            type_codes=_codes(CodeKind.TYPE_CODE, type_codes),
            practice_setting_codes=_codes(CodeKind.PRACTICE_SETTING_CODE, practice_settings),
            healthcare_facility_type_codes=_codes(CodeKind.HEALTHCARE_FACILITY_TYPE_CODE, facility_types),
            event_codes=(events,) if events else (),
            confidentiality_codes=(secrecy,) if secrecy else (),
            format_codes=_codes(CodeKind.FORMAT_CODE, format_codes),
            author_persons=(author_person,) if author_person else (),
            creation_time_from=_dtm(created_from, "created_from"),
            creation_time_to=_dtm(created_to, "created_to"),
            # A service period overlaps [service_from, service_to) when it stops after the start and starts before
            # the end.
            service_stop_time_from=_dtm(service_from, "service_from"),
            service_start_time_to=_dtm(service_to, "service_to"),
        )

    def get_documents(
        self, *, entry_uuids: Sequence[str] = (), unique_ids: Sequence[str] = (), break_the_glass: str | None = None
    ) -> Flow[list[DocumentEntry]]:
        """GetDocuments by entryUUIDs or by uniqueIds (one of the two)."""
        if bool(entry_uuids) == bool(unique_ids):
            raise ValueError("give entry_uuids or unique_ids (one of the two, not both)")
        glass = self.glass(break_the_glass)
        query = GetDocuments(entry_uuids=tuple(entry_uuids), unique_ids=tuple(unique_ids))
        outcome = yield from self._query(query, glass)
        return outcome.entries

    def submission_set_contents(self, submission_set: str) -> Flow[SubmissionSetContents]:
        """GetSubmissionSetAndContents by uniqueId or ``urn:uuid:`` entryUUID."""
        by_uuid = is_registry_reference(submission_set)
        query = GetSubmissionSetAndContents(
            entry_uuids=(submission_set,) if by_uuid else (), unique_ids=() if by_uuid else (submission_set,)
        )
        outcome = yield from self._query(query)
        if not outcome.submission_sets:
            raise NotFoundError(
                [Problem("XDSRegistryError", f"no submission set {submission_set} is registered", "SubmissionSet")]
            )
        return SubmissionSetContents(outcome.submission_sets[0], outcome.entries, outcome.associations)

    def related_documents(
        self, entry: DocumentEntry | str, *, types: Sequence[AssociationType] = RELATIONSHIP_TYPES
    ) -> Flow[RelatedDocuments]:
        """GetRelatedDocuments (see :meth:`VaultClient.related_documents`)."""
        if isinstance(entry, DocumentEntry):
            ref = entry.entry_uuid if is_registry_reference(entry.entry_uuid) else (entry.unique_id or "")
            own = {entry.entry_uuid, entry.unique_id}
        else:
            ref = entry
            own = {entry}
        by_uuid = is_registry_reference(ref)
        query = GetRelatedDocuments(
            entry_uuids=(ref,) if by_uuid else (),
            unique_ids=() if by_uuid else (ref,),
            association_types=tuple(types),
        )
        outcome = yield from self._query(query)
        related = [e for e in outcome.entries if e.entry_uuid not in own and e.unique_id not in own]
        return RelatedDocuments(related, outcome.associations)

    def _resolve_entries(
        self, refs: Sequence[str], *, strict: bool = True, break_the_glass: str | None = None
    ) -> Flow[dict[str, DocumentEntry]]:
        """The registered entries named by uniqueIds or ``urn:uuid:`` entryUUIDs (NotFoundError for any missing
        when ``strict``; otherwise the missing ones are left out); ``break_the_glass``: a reason checked already."""
        uuids = [r for r in refs if is_registry_reference(r)]
        unique_ids = [r for r in refs if not is_registry_reference(r)]
        found: dict[str, DocumentEntry] = {}
        if uuids:
            for entry in (yield from self.get_documents(entry_uuids=uuids, break_the_glass=break_the_glass)):
                found[entry.entry_uuid] = entry
        if unique_ids:
            for entry in (yield from self.get_documents(unique_ids=unique_ids, break_the_glass=break_the_glass)):
                if entry.unique_id is not None and (
                    entry.unique_id not in found or entry.availability_status is AvailabilityStatus.APPROVED
                ):
                    found[entry.unique_id] = entry
        missing = [r for r in refs if r not in found]
        if missing and strict:
            raise NotFoundError(
                [
                    Problem(
                        "XDSDocumentUniqueIdError",
                        f"no document {ref} is registered (or you may not see it)",
                        f"DocumentUniqueId[{ref}]",
                    )
                    for ref in missing
                ]
            )
        return found

    def _resolve_entry(self, ref: DocumentEntry | str) -> Flow[DocumentEntry]:
        if isinstance(ref, DocumentEntry):
            return ref
        found = yield from self._resolve_entries([ref])
        return found[ref]

    # ---------------------------------------------------------------------------------------- retrieve

    def retrieve(
        self,
        document: DocumentEntry | str,
        *,
        to: Path | str | None = None,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> Flow[RetrievedDocument]:
        """ITI-43 for one document (see :meth:`VaultClient.retrieve`)."""
        glass = self.glass(break_the_glass)
        target = Path(to) if to is not None else None
        if target is not None and not (target.is_dir() or target.parent.is_dir()):
            raise FileNotFoundError(f"cannot write to {target}: the directory {target.parent} does not exist")
        entries = yield from self._entries_for([document], verify, strict=True, break_the_glass=glass)
        entry, locator = entries[0]
        if entry is not None:
            yield from self._precheck("read", [_read_facts(entry)], glass)
        if target is not None and target.is_dir():
            target = target / _file_name(locator.unique_id, entry.mime_type if entry else None)
        spool_dir = target.parent if target is not None else self._spool()
        outcome = yield from self._retrieve_parts([locator], spool_dir, progress, glass)
        try:
            if outcome.status == STATUS_FAILURE or not outcome.parts:
                if outcome.status == STATUS_SUCCESS:
                    raise ProtocolError(f"the repository answered Success without the document {locator.unique_id}")
                raise refused(
                    outcome.problems,
                    _summary(f"the repository refused to return {locator.unique_id}", outcome.problems),
                    status=outcome.status,
                )
            part = self._match(outcome, locator)
            checked = self._check(part, entry, verify)
            return self._place(part, entry, checked, target)
        finally:
            outcome.discard()

    def retrieve_many(
        self,
        documents: Sequence[DocumentEntry | str],
        *,
        to_dir: Path | str | None = None,
        verify: bool = True,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> Flow[list[RetrievedDocument]]:
        """ITI-43 for several documents in one request (see :meth:`VaultClient.retrieve_many`)."""
        glass = self.glass(break_the_glass)
        if not documents:
            return []
        directory = Path(to_dir) if to_dir is not None else None
        if directory is not None and not directory.is_dir():
            raise FileNotFoundError(f"cannot write to {directory}: it is not an existing directory")
        pairs = yield from self._entries_for(documents, verify, strict=False, break_the_glass=glass)
        yield from self._precheck("read", [_read_facts(e) for e, _loc in pairs if e is not None], glass)
        spool_dir = directory if directory is not None else self._spool()
        outcome = yield from self._retrieve_parts([loc for _e, loc in pairs], spool_dir, progress, glass)
        placed: list[RetrievedDocument] = []
        try:
            if outcome.status == STATUS_FAILURE:
                raise refused(
                    outcome.problems,
                    _summary("the repository refused the retrieve", outcome.problems),
                    status=outcome.status,
                )
            by_key = {(p.locator.repository_unique_id, p.locator.unique_id): p for p in outcome.parts}
            present = [(e, loc, by_key.get((loc.repository_unique_id, loc.unique_id))) for e, loc in pairs]
            checked = [(e, part, self._check(part, e, verify)) for e, _loc, part in present if part is not None]
            for entry, part, ok in checked:
                target = directory / _file_name(part.locator.unique_id, part.mime_type) if directory else None
                placed.append(self._place(part, entry, ok, target))
            missing = [loc for _e, loc, part in present if part is None]
            if missing or outcome.status == STATUS_PARTIAL_SUCCESS:
                problems = list(outcome.problems) or [
                    Problem("XDSDocumentUniqueIdError", "not returned by the repository", f"DocumentUniqueId[{m}]")
                    for m in (loc.unique_id for loc in missing)
                ]
                if outcome.status == STATUS_SUCCESS:
                    raise ProtocolError(
                        "the repository answered Success but left out " + ", ".join(loc.unique_id for loc in missing)
                    )
                raise PartialRetrieveError(problems, placed, status=outcome.status)
            return placed
        except PartialRetrieveError:
            raise
        except BaseException:
            for doc in placed:
                if doc.path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        doc.path.unlink()
            raise
        finally:
            outcome.discard()

    def _retrieve_parts(
        self,
        locators: Sequence[DocumentLocator],
        spool_dir: Path,
        progress: ProgressCallback | None,
        break_the_glass: str | None,
    ) -> Flow[RetrieveOutcome]:
        return (
            yield from self.protocol.retrieve(
                locators, spool_dir=spool_dir, progress=progress, break_the_glass=break_the_glass
            )
        )

    def _entries_for(
        self,
        documents: Sequence[DocumentEntry | str],
        verify: bool,
        *,
        strict: bool,
        break_the_glass: str | None = None,
    ) -> Flow[list[tuple[DocumentEntry | None, DocumentLocator]]]:
        """Each document's entry (looked up when only an id is given and ``verify`` needs it) and locator.

        With ``strict`` an id the registry does not know raises NotFoundError; otherwise it is asked from the
        default repository as it is (and the repository's answer says what is missing).
        """
        refs = [d for d in documents if isinstance(d, str)]
        found: dict[str, DocumentEntry] = {}
        if refs and (verify or any(is_registry_reference(r) for r in refs)):
            found = yield from self._resolve_entries(
                list(dict.fromkeys(refs)), strict=strict, break_the_glass=break_the_glass
            )
        pairs: list[tuple[DocumentEntry | None, DocumentLocator]] = []
        for doc in documents:
            entry = doc if isinstance(doc, DocumentEntry) else found.get(doc)
            if entry is not None:
                if not entry.unique_id:
                    raise ValueError("the DocumentEntry has no unique_id: it cannot be retrieved")
                locator = DocumentLocator(
                    entry.repository_unique_id or self.repository_unique_id,
                    entry.unique_id,
                    entry.home_community_id,
                    entry.entry_uuid if is_registry_reference(entry.entry_uuid) else None,
                )
            else:
                locator = DocumentLocator(self.repository_unique_id, cast(str, doc))
            pairs.append((entry, locator))
        return pairs

    @staticmethod
    def _match(outcome: RetrieveOutcome, locator: DocumentLocator) -> RetrievedPart:
        for part in outcome.parts:
            if part.locator.unique_id == locator.unique_id:
                return part
        raise ProtocolError(f"the repository returned documents, but not {locator.unique_id}")

    @staticmethod
    def _check(part: RetrievedPart, entry: DocumentEntry | None, verify: bool) -> bool:
        """Compare hash (case-insensitively) and size with the entry; raise IntegrityError when they differ."""
        if not verify or entry is None:
            return False
        problems = []
        if entry.hash is not None and entry.hash.lower() != part.digest.sha1:
            problems.append(f"SHA-1 {part.digest.sha1} but the registry says {entry.hash.lower()}")
        if entry.size is not None and entry.size != part.digest.size:
            problems.append(f"{part.digest.size} bytes but the registry says {entry.size}")
        if problems:
            raise IntegrityError(
                f"document {part.locator.unique_id} does not match its metadata: {'; '.join(problems)} "
                "(nothing was kept)"
            )
        return entry.hash is not None or entry.size is not None

    @staticmethod
    def _place(
        part: RetrievedPart, entry: DocumentEntry | None, verified: bool, target: Path | None
    ) -> RetrievedDocument:
        """Move the spool file to ``target`` (atomically), or read it into memory and delete it."""
        doc = RetrievedDocument(
            unique_id=part.locator.unique_id,
            repository_unique_id=part.locator.repository_unique_id,
            mime_type=part.mime_type,
            hash=part.digest.sha1,
            size=part.digest.size,
            entry=entry,
            verified=verified,
        )
        if target is None:
            doc.content = part.path.read_bytes()
            with contextlib.suppress(FileNotFoundError):
                part.path.unlink()
        else:
            os.replace(part.path, target)
            doc.path = target
        return doc


def _bind_contents(docs: Sequence[NewDocument]) -> None:
    """Fill in the hash and size a signed submission must carry, for content that can be read twice (bytes, a path,
    a seekable stream, put back where it was). A stream that cannot seek back is left as is: the protocol refuses
    to sign without them."""
    for doc in docs:
        entry = doc.entry
        if entry.hash is not None and entry.size is not None:
            continue
        content = doc.content
        if _is_stream(content) and not getattr(content, "seekable", lambda: False)():
            continue
        measured = digest(content)
        entry.hash = entry.hash or measured.sha1
        entry.size = measured.size if entry.size is None else entry.size


def _guess_mime(content: ContentSource) -> str | None:
    name: object = None
    if isinstance(content, os.PathLike):
        name = os.fspath(content)
    elif _is_stream(content):
        name = getattr(content, "name", None)
    if not isinstance(name, str):
        return None
    return mimetypes.guess_type(Path(name).name)[0]


def _codes(kind: CodeKind, values: CodeArg) -> tuple[Code, ...]:
    """Codes given as :class:`Code` or value-set keys (``"labresult"``, ``"gp"``...)."""
    if values is None:
        return ()
    items: Iterable[Code | str] = [values] if isinstance(values, Code | str) else values
    sets = load_value_sets()
    out: list[Code] = []
    for item in items:
        if isinstance(item, Code):
            out.append(item)
        elif kind is CodeKind.EVENT_CODE_LIST and "^^" in item:
            code, _sep, scheme = item.partition("^^")
            out.append(Code(code, scheme))
        else:
            out.append(sets.get(kind, item))
    return tuple(out)


def _dtm(value: TimeArg, what: str) -> str | None:
    return None if value is None else to_dtm(value, what)


def safe_file_name(unique_id: str, mime_type: str | None) -> str:
    """The file name :meth:`ClientCore.retrieve` uses inside a directory: the uniqueId made safe, plus an extension
    from the MIME type."""
    return _file_name(unique_id, mime_type)


def _read_facts(entry: DocumentEntry) -> tuple[str | None, str | None, list[str]]:
    """What the access pre-check needs of an entry: patient, class code, confidentiality codes."""
    return (
        entry.patient_id,
        entry.class_code.code if entry.class_code else None,
        [c.code for c in entry.confidentiality_codes],
    )
