"""The MHD wire protocol of the client (IHE MHD 4.2, FHIR R4 JSON): ITI-65, ITI-67 and ITI-68 behind bearer tokens.

:class:`MhdProtocol` speaks to the hub's FHIR face (``{base_url}/fhir``) with the shared binding
(:mod:`rsb_connector.mhd`) and maps every answer onto the same neutral outcomes as XDS, so that the core makes the
same decisions (refusals, integrity checks, file placement) whichever protocol carried them:

==================  ===============================================  ==============================================
core transaction    MHD                                              answer -> outcome
==================  ===============================================  ==============================================
submit              ITI-65 ``POST {fhir}`` (transaction Bundle)      transaction-response -> Success (+ warnings);
                                                                     OperationOutcome -> Failure with its XDS codes
query               ITI-67 ``GET {fhir}/DocumentReference?...``      searchset -> entries; OperationOutcome ->
                    (FindDocuments, FindDocumentsByReferenceId,      Failure
                    GetDocuments)
retrieve            ITI-68 ``GET {fhir}/Binary/<id>`` per document   the bytes, spooled and hashed; 404 / 410 ->
                                                                     :class:`~.models.NotFoundError`
update_status       ITI-57 over XDS (see below)                      the XDS outcome
==================  ===============================================  ==============================================

Break-the-glass: a professional's emergency reason (``break_the_glass=`` of ``find``, ``get_documents``,
``retrieve``, ``retrieve_many``, checked by the core first) travels as the ``X-Break-The-Glass`` header of each ITI-67
and ITI-68 request of the operation, in UTF-8.

Authentication: every request carries ``Authorization: Bearer <token>`` from the identity's
:class:`~._auth.TokenSource` (fetched through the sans-IO core when none is kept); a 401 answer makes the client
forget the token, fetch a new one and send the request once more. A second 401 is a
:class:`~rsb_connector.errors.HubRefused`.

Retries are the core's (:class:`~._retry.RetryPolicy`): searches and retrieves are IDEMPOTENT; ITI-65 is RESUBMIT —
a repeated identical bundle is accepted by the hub (``200 OK`` for a document it already holds), so it is retried
on connect errors and timeouts only.

What MHD 4.2 cannot say is done over XDS, through the XDS protocol object given to :class:`MhdProtocol`:

- **deprecate** (ITI-57 Update DocumentEntry status): MHD 4.2 has no transaction that changes a DocumentReference's
  status (the hub serves no FHIR update), so the status update is the signed XDS ITI-57 it has always been;
- the stored queries ITI-67 has no search for (GetSubmissionSetAndContents, GetRelatedDocuments...) run as ITI-18.

Documents found over MHD carry no repositoryUniqueId (a DocumentReference has none); they are retrieved by the
FHIR id of their entryUUID (``Binary/<uuid>``), or, when only a uniqueId is known, after an ITI-67 ``identifier``
search.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, Final, TypeVar
from urllib.parse import urlencode

from ..errors import HubRefused, MetadataError, Problem, ProtocolError
from ..metadata.content import DigestingWriter, iter_chunks
from ..metadata.model import AvailabilityStatus, Submission
from ..metadata.valuesets import ValueSets, load_value_sets
from ..mhd.bundle import build_provide_bundle, parse_transaction_response
from ..mhd.constants import ProvideBundleProfile
from ..mhd.mapping import resource_id_for
from ..mhd.outcome import operation_outcome_to_problems
from ..mhd.search import parse_search_result_bundle, to_search_params
from ..query import FindDocuments, FindDocumentsByReferenceId, GetDocuments, Query
from ..xds.constants import STATUS_FAILURE, STATUS_PARTIAL_SUCCESS, STATUS_SUCCESS
from ._core import (
    BREAK_THE_GLASS_HEADER,
    DocumentLocator,
    Exchange,
    Flow,
    HttpRequest,
    Outcome,
    OutgoingContent,
    ProgressCallback,
    QueryOutcome,
    ResponseSink,
    RetrievedPart,
    RetrieveOutcome,
    SubmitOutcome,
    Transaction,
    WireProtocol,
    refused,
    with_progress,
)
from ._retry import Safety
from .models import HttpStatusError, NotFoundError

if TYPE_CHECKING:
    from ._auth import TokenSource

__all__ = ["FHIR_PATH", "FhirJsonSink", "MhdProtocol"]

R = TypeVar("R")
OutcomeT = TypeVar("OutcomeT", bound=Outcome)

FHIR_PATH: Final = "/fhir"
"""Where the hub's FHIR base is, below its base URL."""
FHIR_JSON: Final = "application/fhir+json"
MAX_JSON_BYTES: Final = 64 * 1024 * 1024
"""Largest FHIR JSON answer accepted (a searchset of many DocumentReferences stays far below)."""
_JSON_MEDIA: Final = frozenset({"application/fhir+json", "application/json", "application/json+fhir"})
_NOT_FOUND: Final = frozenset({404, 410})


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class _Unauthorized(HubRefused):
    """The hub answered 401: the bearer token is missing, expired or not accepted (internal: renew and resend)."""

    prefix = "the hub did not accept the bearer token"


def _unauthorized(where: str, headers: Mapping[str, str], problems: Sequence[Problem]) -> _Unauthorized:
    challenge = headers.get("www-authenticate", "") or "no WWW-Authenticate"
    found = list(problems) or [Problem("Unauthorized", f"HTTP 401 ({challenge})", where)]
    return _Unauthorized(found, f"{where}: HTTP 401, the bearer token was not accepted ({challenge})")


class FhirJsonSink(ResponseSink[R]):
    """Reads one FHIR JSON answer and turns it into ``R`` with ``interpret(status_code, resource)``.

    An HTTP error without a FHIR JSON body is an :class:`~.models.HttpStatusError` (a TransportError: a gateway's 502
    is retried for idempotent requests); a 401 is the internal signal to renew the token; a success answer that is
    not JSON is a ProtocolError.
    """

    def __init__(
        self,
        *,
        transaction: str,
        method: str,
        url: str,
        interpret: Callable[[int, dict[str, Any]], R],
        max_bytes: int = MAX_JSON_BYTES,
    ) -> None:
        self.transaction = transaction
        self.method = method
        self.url = url
        self.interpret = interpret
        self.max_bytes = max_bytes
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self._buffer = bytearray()

    def _where(self) -> str:
        return f"{self.transaction} {self.method} {self.url}"

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = {k.lower(): v for k, v in headers.items()}
        media = _media(self.headers.get("content-type"))
        if media in _JSON_MEDIA:
            return
        if status_code == 401:
            raise _unauthorized(self._where(), self.headers, [])
        if status_code >= 400:
            raise HttpStatusError(
                f"{self._where()}: HTTP {status_code} with a {media or 'empty'} body instead of a FHIR answer "
                "(is the hub up, and is this its URL?)",
                status_code=status_code,
                url=self.url,
            )
        raise ProtocolError(f"{self._where()}: the answer has Content-Type {media or '(none)'!r}; expected {FHIR_JSON}")

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) > self.max_bytes:
            raise ProtocolError(f"{self._where()}: the answer is larger than {self.max_bytes} bytes")

    def finish(self) -> R:
        try:
            data = json.loads(bytes(self._buffer))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"{self._where()}: the answer is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ProtocolError(f"{self._where()}: the answer is not a JSON object")
        if self.status_code == 401:
            problems = _outcome_problems(data) if data.get("resourceType") == "OperationOutcome" else []
            raise _unauthorized(self._where(), self.headers, problems)
        return self.interpret(self.status_code, data)

    def abort(self) -> None:
        self._buffer.clear()


def _outcome_problems(data: Mapping[str, Any]) -> list[Problem]:
    """The problems of an OperationOutcome, with at least one error (an outcome without issues still refuses)."""
    problems = operation_outcome_to_problems(data)
    if not any(p.is_error for p in problems):
        problems.append(Problem("XDSRegistryError", "the hub answered an OperationOutcome without an error issue"))
    return problems


def _submit_outcome(where: str) -> Callable[[int, dict[str, Any]], SubmitOutcome]:
    def interpret(status_code: int, data: dict[str, Any]) -> SubmitOutcome:
        if data.get("resourceType") == "OperationOutcome":
            if status_code < 400:
                raise ProtocolError(f"{where}: HTTP {status_code} with an OperationOutcome instead of a Bundle")
            return SubmitOutcome(STATUS_FAILURE, _outcome_problems(data))
        if status_code >= 300:
            raise ProtocolError(f"{where}: HTTP {status_code} with a {data.get('resourceType')!r}")
        response = parse_transaction_response(data)
        failed = [s for s in response.statuses if not s.strip().startswith("2")]
        if failed:
            raise ProtocolError(f"{where}: the transaction-response has entries with status {', '.join(failed)}")
        return SubmitOutcome(STATUS_SUCCESS, list(response.problems))

    return interpret


def _query_outcome(where: str, value_sets: ValueSets) -> Callable[[int, dict[str, Any]], QueryOutcome]:
    def interpret(status_code: int, data: dict[str, Any]) -> QueryOutcome:
        if data.get("resourceType") == "OperationOutcome":
            if status_code < 400:
                raise ProtocolError(f"{where}: HTTP {status_code} with an OperationOutcome instead of a Bundle")
            return QueryOutcome(STATUS_FAILURE, _outcome_problems(data))
        if status_code >= 300:
            raise ProtocolError(f"{where}: HTTP {status_code} with a {data.get('resourceType')!r}")
        try:
            entries, problems = parse_search_result_bundle(data, value_sets=value_sets)
        except ValueError as exc:
            raise ProtocolError(f"{where}: {exc}") from None
        total = data.get("total")
        if (isinstance(total, int) and total > len(entries)) or any(
            isinstance(link, Mapping) and link.get("relation") == "next" for link in data.get("link") or []
        ):
            raise ProtocolError(f"{where}: the hub paged the search result; this client reads one page only")
        return QueryOutcome(STATUS_SUCCESS, problems, entries=entries)

    return interpret


class _BinarySink(ResponseSink[RetrievedPart]):
    """Reads one ITI-68 answer: the document spooled to ``spool_dir`` and hashed as it arrives, or the refusal."""

    def __init__(self, *, url: str, locator: DocumentLocator, spool_dir: Path) -> None:
        self.url = url
        self.locator = locator
        self.spool_dir = spool_dir
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.mime_type = "application/octet-stream"
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._writer = DigestingWriter()
        self._error: FhirJsonSink[None] | None = None

    def _where(self) -> str:
        return f"ITI-68 GET {self.url}"

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = {k.lower(): v for k, v in headers.items()}
        if status_code == 200:
            self.mime_type = self.headers.get("content-type") or self.mime_type
            fd, name = tempfile.mkstemp(prefix="retrieve-", suffix=".part", dir=self.spool_dir)
            self._path = Path(name)
            self._file = os.fdopen(fd, "wb")
            return
        if 200 < status_code < 300:
            raise ProtocolError(f"{self._where()}: HTTP {status_code} instead of 200 with the document")
        self._error = FhirJsonSink(
            transaction="ITI-68", method="GET", url=self.url, interpret=self._refusal, max_bytes=1024 * 1024
        )
        self._error.start(status_code, headers)

    def feed(self, chunk: bytes) -> None:
        if self._error is not None:
            self._error.feed(chunk)
            return
        assert self._file is not None
        self._file.write(chunk)
        self._writer.update(chunk)

    def finish(self) -> RetrievedPart:
        if self._error is not None:
            self._error.finish()  # always raises
            raise ProtocolError(f"{self._where()}: HTTP {self.status_code}")  # pragma: no cover - defensive
        assert self._file is not None
        assert self._path is not None
        self._file.close()
        self._file = None
        part = RetrievedPart(self.locator, self.mime_type, self._path, self._writer.result())
        self._path = None  # the outcome owns the spool file now
        return part

    def _refusal(self, status_code: int, data: dict[str, Any]) -> None:
        if data.get("resourceType") != "OperationOutcome":
            raise HttpStatusError(
                f"{self._where()}: HTTP {status_code} with a {data.get('resourceType')!r} instead of the document",
                status_code=status_code,
                url=self.url,
            )
        problems = _outcome_problems(data)
        if status_code in _NOT_FOUND:
            raise NotFoundError(problems, f"{self._where()}: HTTP {status_code}: document {self.locator.unique_id}")
        raise refused(problems, f"the repository refused to return {self.locator.unique_id} (HTTP {status_code})")

    def abort(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
            self._path = None
        if self._error is not None:
            self._error.abort()


class MhdProtocol(WireProtocol):
    """IHE MHD 4.2 (FHIR R4 JSON) at ``{base_url}/fhir``: ITI-65, ITI-67, ITI-68; ITI-57 and the stored queries
    ITI-67 cannot express go over ``xds`` (module docstring).

    Args:
        exchange: the core's exchange (retries, logging).
        base_url: the hub.
        tokens: the bearer token source (``None``: requests go without ``Authorization``, for a hub without
            authentication).
        xds: the XDS protocol object the status updates and the other stored queries go through.
        spool_dir: where answers are spooled.
        profile: the ProvideBundle profile of the ITI-65 bundles (Comprehensive by default: XDS-complete metadata).
        value_sets: the code value sets (default: the packaged ones).
    """

    name: ClassVar[str] = "mhd"

    def __init__(
        self,
        exchange: Exchange,
        *,
        base_url: str,
        tokens: TokenSource | None,
        xds: WireProtocol,
        spool_dir: Path,
        profile: ProvideBundleProfile = ProvideBundleProfile.COMPREHENSIVE,
        value_sets: ValueSets | None = None,
    ) -> None:
        self._exchange = exchange
        self.fhir_url = f"{base_url.rstrip('/')}{FHIR_PATH}"
        self.tokens = tokens
        self.xds = xds
        self.spool_dir = spool_dir
        self.profile = profile
        self.value_sets = value_sets or load_value_sets()

    # ------------------------------------------------------------------------------------------ authentication
    def _headers(self, break_the_glass: str | None = None) -> Flow[dict[str, str]]:
        headers = {"accept": FHIR_JSON}
        if self.tokens is not None:
            token = yield from self.tokens.flow()
            headers["authorization"] = f"Bearer {token}"
        if break_the_glass is not None:
            headers[BREAK_THE_GLASS_HEADER.lower()] = break_the_glass
        return headers

    def _authorized(
        self,
        transaction: Callable[[Mapping[str, str]], Transaction[OutcomeT]],
        break_the_glass: str | None = None,
    ) -> Flow[OutcomeT]:
        """Run ``transaction`` (built with the request headers: the bearer token, and the break-the-glass reason
        when there is one) with a bearer token; on 401 renew it once."""
        headers = yield from self._headers(break_the_glass)
        try:
            return (yield from self._exchange(transaction(headers)))
        except _Unauthorized as exc:
            if self.tokens is None:
                raise HubRefused(exc.problems, str(exc)) from None
            self.tokens.invalidate()
        headers = yield from self._headers(break_the_glass)
        try:
            return (yield from self._exchange(transaction(headers)))
        except _Unauthorized as exc:
            raise HubRefused(exc.problems, f"{exc} (even with a new token)") from None

    # ------------------------------------------------------------------------------------------ ITI-65
    def submit(self, submission: Submission, contents: Sequence[OutgoingContent]) -> Flow[SubmitOutcome]:
        url = self.fhir_url
        where = f"ITI-65 POST {url}"

        def transaction(headers: Mapping[str, str]) -> Transaction[SubmitOutcome]:
            def prepare() -> tuple[HttpRequest, ResponseSink[SubmitOutcome]]:
                documents = {c.entry_uuid: b"".join(iter_chunks(c.open())) for c in contents}
                try:
                    bundle = build_provide_bundle(
                        submission, documents, profile=self.profile, value_sets=self.value_sets
                    )
                except ValueError as exc:  # nothing was sent
                    problem = Problem("XDSRegistryMetadataError", f"cannot be written as an MHD bundle: {exc}", where)
                    raise MetadataError([problem]) from None
                body = bundle.model_dump_json().encode("utf-8")
                request = HttpRequest("POST", url, {**headers, "content-type": FHIR_JSON}, body)
                sink = FhirJsonSink(transaction="ITI-65", method="POST", url=url, interpret=_submit_outcome(where))
                return request, sink

            return Transaction(
                name="ITI-65",
                action="POST Bundle (transaction)",
                url=url,
                safety=Safety.RESUBMIT,
                prepare=prepare,
                rewindable=all(c.rewindable for c in contents),
                patient=submission.submission_set.patient_id,
            )

        return (yield from self._authorized(transaction))

    # ------------------------------------------------------------------------------------------ ITI-67
    def query(self, query: Query, *, break_the_glass: str | None = None) -> Flow[QueryOutcome]:
        if not isinstance(query, FindDocuments | FindDocumentsByReferenceId | GetDocuments):
            # no ITI-67 search says this: ITI-18 (which refuses a break-the-glass reason: it could not carry it)
            return (yield from self.xds.query(query, break_the_glass=break_the_glass))
        params = to_search_params(query, value_sets=self.value_sets)
        url = f"{self.fhir_url}/DocumentReference?{urlencode(params)}"
        where = f"ITI-67 GET {self.fhir_url}/DocumentReference"
        interpret = _query_outcome(where, self.value_sets)

        def transaction(headers: Mapping[str, str]) -> Transaction[QueryOutcome]:
            def prepare() -> tuple[HttpRequest, ResponseSink[QueryOutcome]]:
                sink = FhirJsonSink(transaction="ITI-67", method="GET", url=url, interpret=interpret)
                return HttpRequest("GET", url, dict(headers), b""), sink

            return Transaction(
                name="ITI-67",
                action="GET DocumentReference",
                url=url,
                safety=Safety.IDEMPOTENT,
                prepare=prepare,
                patient=getattr(query, "patient_id", None),
            )

        return (yield from self._authorized(transaction, break_the_glass))

    # ------------------------------------------------------------------------------------------ ITI-68
    def retrieve(
        self,
        documents: Sequence[DocumentLocator],
        *,
        spool_dir: Path,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> Flow[RetrieveOutcome]:
        ids = yield from self._resource_ids(documents, break_the_glass)
        if isinstance(ids, QueryOutcome):
            return RetrieveOutcome(ids.status, ids.problems)
        outcome = RetrieveOutcome(STATUS_SUCCESS)
        problems: list[Problem] = []
        try:
            for locator in documents:
                rid = ids.get(locator.unique_id)
                if rid is None:
                    problems.append(_unknown(locator.unique_id))
                    continue
                try:
                    part = yield from self._retrieve_one(locator, rid, spool_dir, progress, break_the_glass)
                except NotFoundError as exc:
                    problems += [p for p in exc.problems if p.is_error]
                    continue
                outcome.parts.append(part)
        except BaseException:
            outcome.discard()
            raise
        if problems and not outcome.parts:
            missing = ", ".join(loc.unique_id for loc in documents)
            raise NotFoundError(problems, f"no document {missing} can be retrieved (or you may not see it)")
        if problems:
            outcome.status = STATUS_PARTIAL_SUCCESS
            outcome.problems = problems
        return outcome

    def _resource_ids(
        self, documents: Sequence[DocumentLocator], break_the_glass: str | None = None
    ) -> Flow[dict[str, str] | QueryOutcome]:
        """The Binary id of each document: the UUID of its entryUUID, looked up by uniqueId when not known (the
        approved entry wins when several share a uniqueId); a refused lookup is returned as it is."""
        ids: dict[str, str] = {}
        unknown: list[str] = []
        for locator in documents:
            rid = resource_id_for(locator.entry_uuid) if locator.entry_uuid else None
            if rid is not None and locator.entry_uuid and locator.entry_uuid.startswith("urn:uuid:"):
                ids[locator.unique_id] = rid
            else:
                unknown.append(locator.unique_id)
        if unknown:
            query = GetDocuments(unique_ids=tuple(dict.fromkeys(unknown)))
            found = yield from self.query(query, break_the_glass=break_the_glass)
            if found.status == STATUS_FAILURE:
                return found
            for entry in sorted(found.entries, key=lambda e: e.availability_status is AvailabilityStatus.APPROVED):
                rid = resource_id_for(entry.entry_uuid)
                if entry.unique_id in unknown and rid is not None:
                    ids[entry.unique_id] = rid
        return ids

    def _retrieve_one(
        self,
        locator: DocumentLocator,
        rid: str,
        spool_dir: Path,
        progress: ProgressCallback | None,
        break_the_glass: str | None = None,
    ) -> Flow[RetrievedPart]:
        url = f"{self.fhir_url}/Binary/{rid}"

        def transaction(headers: Mapping[str, str]) -> Transaction[_PartOutcome]:
            def prepare() -> tuple[HttpRequest, ResponseSink[_PartOutcome]]:
                sink = _PartSink(_BinarySink(url=url, locator=locator, spool_dir=spool_dir))
                request = HttpRequest("GET", url, {**headers, "accept": "*/*"}, b"")
                return request, with_progress(sink, progress)

            return Transaction(name="ITI-68", action="GET Binary", url=url, safety=Safety.IDEMPOTENT, prepare=prepare)

        result = yield from self._authorized(transaction, break_the_glass)
        assert result.part is not None
        return result.part

    # ------------------------------------------------------------------------------------------ ITI-57 (XDS)
    def update_status(
        self, *, patient_id: str, entry_uuid: str, original: AvailabilityStatus, new: AvailabilityStatus
    ) -> Flow[SubmitOutcome]:
        """ITI-57 over XDS: MHD 4.2 has no transaction that updates a DocumentReference's status."""
        return (
            yield from self.xds.update_status(patient_id=patient_id, entry_uuid=entry_uuid, original=original, new=new)
        )


def _unknown(unique_id: str) -> Problem:
    return Problem(
        "XDSDocumentUniqueIdError",
        f"no document {unique_id} is registered (or you may not see it)",
        f"DocumentUniqueId[{unique_id}]",
    )


@dataclass(slots=True)
class _PartOutcome(Outcome):
    """One retrieved document as an :class:`Outcome` (the core's exchange logs and returns outcomes)."""

    part: RetrievedPart | None = None


class _PartSink(ResponseSink[_PartOutcome]):
    """Wraps :class:`_BinarySink` so that its part travels through the exchange as an outcome."""

    def __init__(self, inner: _BinarySink) -> None:
        self.inner = inner

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.inner.start(status_code, headers)

    def feed(self, chunk: bytes) -> None:
        self.inner.feed(chunk)

    def finish(self) -> _PartOutcome:
        return _PartOutcome(STATUS_SUCCESS, part=self.inner.finish())

    def abort(self) -> None:
        self.inner.abort()
