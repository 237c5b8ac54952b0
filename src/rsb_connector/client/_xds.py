"""The XDS.b wire protocol of the client: SOAP 1.2 + WS-Addressing, MTOM/XOP, ITI-41/18/43/57, WS-Security.

Builds each request with the shared bindings (:mod:`rsb_connector.xds`), signs it with the client's identity
(:func:`~rsb_connector.security.wssec.sign_envelope`: Timestamp, BinarySecurityToken, a signature over the Body, the
Timestamp and the WS-Addressing headers) and serializes it ONCE: those exact bytes are sent (as the MTOM root part
when documents travel as attachments; the Security header's base64 is never MTOM-optimised). A signed ITI-41 always
carries each document's ``hash`` and ``size`` in its signed metadata: they bind the attachments, which the signature
does not cover, to the signature; the client refuses to send a signed ITI-41 without them.

Each response is read by :class:`SoapSink`, which checks, in order: an HTTP error page (→
:class:`~.models.HttpStatusError`, a TransportError), the Content-Type (→ ProtocolError), the MTOM packaging
(truncated → ProtocolError), the XML (the one hardened parser), the SOAP envelope, the hub's WS-Security signature
when a trust store is configured (→ ProtocolError; from then on only the signed copies are read), a SOAP Fault (→
HubRefused, code = the local name of the fault's subcode or code, ``fault_code`` the same namespace-qualified), the
``wsa:RelatesTo`` (must be the request's MessageID → else ProtocolError), the ``wsa:Action`` and the Body element.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lxml import etree

from ..errors import HubRefused, MetadataError, Problem, ProtocolError
from ..metadata.content import DigestingWriter, iter_chunks
from ..metadata.model import AvailabilityStatus, Submission
from ..query import Query
from ..security.identity import Identity
from ..security.wssec import WsSecurityError, WsSecurityVerifier, sign_envelope
from ..security.xml import XmlLimits, parse_xml
from ..xds import constants as c
from ..xds import iti18, iti41, iti43, iti57
from ..xds.mtom import MtomMessage, MtomParser, MtomWriter, OutgoingAttachment, ReceivedAttachment, is_mtom, new_cid
from ..xds.mtom import parse_content_type as parse_media_type
from ..xds.parts import DocumentPart, Inline, XopRef
from ..xds.soap import SoapMessage, build_envelope, new_message_id, parse_envelope, parse_fault, serialize
from ..xds.soap import soap_content_type as soap_media_type
from ._core import (
    DocumentLocator,
    Exchange,
    Flow,
    HttpRequest,
    OutgoingContent,
    ProgressCallback,
    QueryOutcome,
    ResponseSink,
    RetrievedPart,
    RetrieveOutcome,
    SubmitOutcome,
    Transaction,
    WireProtocol,
    with_progress,
)
from ._retry import Safety
from .models import HttpStatusError

__all__ = ["SoapReply", "SoapSink", "XdsProtocol"]

R = TypeVar("R")

MAX_ROOT_BYTES = 10 * 1024 * 1024
"""Largest SOAP envelope accepted in an MTOM answer (documents travel beside it)."""
MAX_PLAIN_BYTES = 64 * 1024 * 1024
"""Largest plain (non-MTOM) SOAP answer accepted; inline documents make these large."""
_SOAP_MEDIA = "application/soap+xml"


class SoapReply:
    """A checked SOAP answer: the envelope, its Body payload, and the MTOM attachments (claimed or discarded)."""

    def __init__(self, message: SoapMessage, payload: etree._Element, mtom: MtomMessage | None) -> None:
        self.message = message
        self.payload = payload
        self.mtom = mtom
        self._claimed: set[str] = set()

    def claim(self, cid: str) -> ReceivedAttachment:
        """The attachment named by ``cid``; the caller owns its spool file from now on."""
        if self.mtom is None:
            raise ProtocolError(f"the answer refers to attachment cid:{cid} but is not an MTOM message")
        attachment = self.mtom.attachment(cid)
        self._claimed.add(attachment.cid)
        return attachment

    def release(self) -> None:
        """Delete the attachments nobody claimed."""
        if self.mtom is None:
            return
        for cid, attachment in self.mtom.attachments.items():
            if cid not in self._claimed:
                with contextlib.suppress(FileNotFoundError):
                    attachment.path.unlink()

    def discard(self) -> None:
        """Delete every attachment, claimed or not."""
        if self.mtom is not None:
            self.mtom.discard()


class SoapSink(ResponseSink[R]):
    """Reads one SOAP 1.2 answer (plain or MTOM) and turns its payload into ``R`` with ``interpret``."""

    def __init__(
        self,
        *,
        transaction: str,
        url: str,
        message_id: str,
        response_action: str,
        payload_tag: str,
        interpret: Callable[[SoapReply], R],
        spool_dir: Path,
        verifier: WsSecurityVerifier | None = None,
        max_root_bytes: int = MAX_ROOT_BYTES,
        max_plain_bytes: int = MAX_PLAIN_BYTES,
    ) -> None:
        self.transaction = transaction
        self.verifier = verifier
        self.url = url
        self.message_id = message_id
        self.response_action = response_action
        self.payload_tag = payload_tag
        self.interpret = interpret
        self.spool_dir = spool_dir
        self.max_root_bytes = max_root_bytes
        self.max_plain_bytes = max_plain_bytes
        self.status_code = 0
        self._parser: MtomParser | None = None
        self._buffer: bytearray | None = None
        self._mtom: MtomMessage | None = None

    def _where(self) -> str:
        return f"{self.transaction} POST {self.url}"

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        content_type = headers.get("content-type", "") or ""
        media, _params = parse_media_type(content_type)
        if is_mtom(content_type):
            self._parser = MtomParser(content_type, spool_dir=self.spool_dir, max_root_bytes=self.max_root_bytes)
            return
        if media == _SOAP_MEDIA:
            self._buffer = bytearray()
            return
        if status_code >= 400:
            raise HttpStatusError(
                f"{self._where()}: HTTP {status_code} with a {media or 'empty'} body instead of a SOAP answer "
                "(is the hub up, and is this its URL?)",
                status_code=status_code,
                url=self.url,
            )
        hint = " (SOAP 1.1? XDS.b uses SOAP 1.2)" if media == "text/xml" else ""
        raise ProtocolError(
            f"{self._where()}: the answer has Content-Type {media or '(none)'!r}{hint}; expected application/soap+xml "
            'or multipart/related; type="application/xop+xml" (MTOM)'
        )

    def feed(self, chunk: bytes) -> None:
        if self._parser is not None:
            self._parser.feed(chunk)
        elif self._buffer is not None:
            self._buffer += chunk
            if len(self._buffer) > self.max_plain_bytes:
                raise ProtocolError(f"{self._where()}: the SOAP answer is larger than {self.max_plain_bytes} bytes")

    def finish(self) -> R:
        if self._parser is not None:
            try:
                self._mtom = self._parser.close()
            except ProtocolError as exc:
                raise ProtocolError(f"{self._where()}: the MTOM answer cannot be read: {exc}") from None
            root = self._mtom.root
            limits = XmlLimits(max_bytes=self.max_root_bytes)
        elif self._buffer is not None:
            root = bytes(self._buffer)
            limits = XmlLimits(max_bytes=self.max_plain_bytes)
        else:  # pragma: no cover - start() always sets one or raises
            raise ProtocolError(f"{self._where()}: no answer was received")
        try:
            envelope = parse_xml(root, limits=limits)
            message = parse_envelope(envelope)
        except ProtocolError as exc:
            raise ProtocolError(f"{self._where()}: the answer is not a SOAP 1.2 message: {exc}") from None
        if self.verifier is not None:
            message = self._verified(message)
        fault = parse_fault(message)
        if fault is not None:
            if message.relates_to is not None and message.relates_to != self.message_id:
                raise self._mismatch(message.relates_to)
            # With a trust store, ``message`` is the signed copy: the Subcode's prefix resolves through the
            # declarations the signature covers (the hub lists it in its Body reference's PrefixList).
            code = fault.subcode_name[1] if fault.subcode_name else (fault.subcode or fault.code)
            code = code.rpartition(":")[2] or fault.code
            if fault.subcode_name is not None:
                namespace, local = fault.subcode_name
                qualified = f"{{{namespace}}}{local}"
            elif fault.subcode is not None:
                qualified = fault.subcode
            else:
                qualified = f"{{{c.SOAP12}}}{fault.code}"
            reason = fault.reason or "the hub answered a SOAP fault without a reason"
            if fault.detail and fault.detail not in reason:
                reason = f"{reason} ({fault.detail})"
            raise HubRefused(
                [Problem(code, reason, "Fault")],
                f"the hub answered a SOAP fault: {code}: {reason}",
                fault_code=qualified,
            )
        if self.status_code >= 300:
            raise ProtocolError(f"{self._where()}: HTTP {self.status_code} with a SOAP answer that is not a fault")
        if message.relates_to != self.message_id:
            raise self._mismatch(message.relates_to)
        if message.action is not None and message.action != self.response_action:
            raise ProtocolError(
                f"{self._where()}: the answer's wsa:Action is {message.action}, expected {self.response_action}"
            )
        payload = message.payload
        if payload is None or payload.tag != self.payload_tag:
            found = "nothing" if payload is None else etree.QName(payload).text
            raise ProtocolError(
                f"{self._where()}: the answer's Body holds {found}, expected {etree.QName(self.payload_tag).text}"
            )
        reply = SoapReply(message, payload, self._mtom)
        try:
            result = self.interpret(reply)
        except BaseException:
            reply.discard()
            self._mtom = None
            raise
        reply.release()
        self._mtom = None
        return result

    def _verified(self, message: SoapMessage) -> SoapMessage:
        """The signed copies of the answer; ProtocolError when its signature does not verify."""
        assert self.verifier is not None
        try:
            return self.verifier.verify(message.envelope).soap_message()
        except WsSecurityError as exc:
            said = ""
            with contextlib.suppress(ProtocolError):
                fault = parse_fault(message)
                if fault is not None:
                    said = f"; the unverified answer is a fault saying: {fault.reason[:300]}"
            raise ProtocolError(
                f"{self._where()}: the hub's answer failed WS-Security verification ({exc.fault_code}: {exc.message})"
                f"{said}"
            ) from None

    def _mismatch(self, relates_to: str | None) -> ProtocolError:
        if relates_to is None:
            return ProtocolError(f"{self._where()}: the answer has no wsa:RelatesTo (expected {self.message_id})")
        return ProtocolError(
            f"{self._where()}: the answer relates to message {relates_to}, not to the request {self.message_id}"
        )

    def abort(self) -> None:
        if self._parser is not None:
            self._parser.discard()
        if self._mtom is not None:
            self._mtom.discard()
            self._mtom = None


def _require_hash_and_size(submission: Submission) -> None:
    """Refuse to sign an ITI-41 whose documents lack hash or size: the signature would not bind the attachments."""
    problems = [
        Problem(
            "XDSRepositoryMetadataError",
            "a signed submission must carry the hash and size of each document (they bind the attachment bytes to "
            "the signature): build the entry with compute_digest=True, from bytes, a path or a seekable stream",
            f"DocumentEntry[{entry.entry_uuid}]",
        )
        for entry in submission.entries
        if entry.hash is None or entry.size is None
    ]
    if problems:
        raise MetadataError(problems)


def _registry_outcome(reply: SoapReply) -> SubmitOutcome:
    result = iti41.parse_response(reply.payload)
    return SubmitOutcome(result.status, list(result.problems))


def _query_outcome(reply: SoapReply) -> QueryOutcome:
    response = iti18.parse_response(reply.payload)
    return QueryOutcome(
        response.status,
        list(response.problems),
        entries=response.entries,
        submission_sets=response.submission_sets,
        associations=response.associations,
    )


def _spool_bytes(data: bytes, spool_dir: Path) -> tuple[Path, DigestingWriter]:
    fd, name = tempfile.mkstemp(prefix="retrieve-", suffix=".part", dir=spool_dir)
    writer = DigestingWriter()
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    writer.update(data)
    return Path(name), writer


def _retrieve_outcome(spool_dir: Path) -> Callable[[SoapReply], RetrieveOutcome]:
    def interpret(reply: SoapReply) -> RetrieveOutcome:
        response = iti43.parse_response(reply.payload)
        outcome = RetrieveOutcome(response.status, list(response.problems))
        try:
            for document in response.documents:
                request = document.request
                locator = DocumentLocator(
                    request.repository_unique_id, request.document_unique_id, request.home_community_id
                )
                part: DocumentPart = document.part
                if isinstance(part, XopRef):
                    attachment = reply.claim(part.cid)
                    outcome.parts.append(RetrievedPart(locator, document.mime_type, attachment.path, attachment.digest))
                else:
                    assert isinstance(part, Inline)
                    path, writer = _spool_bytes(part.data, spool_dir)
                    outcome.parts.append(RetrievedPart(locator, document.mime_type, path, writer.result()))
        except BaseException:
            outcome.discard()
            raise
        return outcome

    return interpret


def _no_glass(reason: str | None) -> None:
    """XDS.b carries no break-the-glass reason: refuse one rather than read without it."""
    if reason is not None:
        raise ValueError(
            "XDS.b (ITI-18, ITI-43) has no place for a break-the-glass reason: the hub receives it as the "
            'X-Break-The-Glass header of its FHIR reads; use VaultClient(..., protocol="mhd")'
        )


class XdsProtocol(WireProtocol):
    """XDS.b over SOAP 1.2: ITI-41 and ITI-43 at ``{base_url}/xds/repository``, ITI-18 and ITI-57 at
    ``{base_url}/xds/registry``.

    With ``mtom=True`` (the default) ITI-41 documents travel as MTOM attachments streamed from their source, and
    ITI-43 is asked as MTOM so documents come back as attachments spooled to disk. With ``mtom=False`` documents
    are inlined as base64 (read whole into memory): for small documents and peers that refuse MTOM only.
    """

    name: ClassVar[str] = "xds"

    def __init__(
        self,
        exchange: Exchange,
        *,
        base_url: str,
        mtom: bool,
        source_id: str,
        spool_dir: Path,
        identity: Identity | None = None,
        verifier: WsSecurityVerifier | None = None,
        ttl: int = 60,
    ) -> None:
        self._exchange = exchange
        self.registry_url = f"{base_url}/xds/registry"
        self.repository_url = f"{base_url}/xds/repository"
        self.mtom = mtom
        self.source_id = source_id
        self.spool_dir = spool_dir
        self.identity = identity
        self.verifier = verifier
        self.ttl = ttl

    def _envelope(self, url: str, action: str, payload: etree._Element, message_id: str) -> bytes:
        """The request envelope, signed with the identity when there is one, serialized once."""
        envelope = build_envelope(payload, action=action, message_id=message_id, to=url)
        if self.identity is not None:
            sign_envelope(envelope, self.identity, ttl=self.ttl)
        return serialize(envelope)

    def _sink(self, **kwargs: Any) -> SoapSink[Any]:
        return SoapSink(verifier=self.verifier, **kwargs)

    def _request(self, url: str, action: str, payload: etree._Element, message_id: str, *, mtom: bool) -> HttpRequest:
        """A SOAP request without attachments: plain, or MTOM (so that the answer comes back as MTOM)."""
        xml = self._envelope(url, action, payload, message_id)
        if mtom:
            writer = MtomWriter(xml, [], action=action)
            return HttpRequest("POST", url, {"content-type": writer.content_type}, writer.to_bytes())
        return HttpRequest("POST", url, {"content-type": soap_media_type(action)}, xml)

    # ------------------------------------------------------------------------------------------ ITI-41
    def check_local(self, submission: Submission) -> None:
        """A signed ITI-41 must carry each document's hash and size (they bind the attachments to the signature)."""
        if self.identity is not None:
            _require_hash_and_size(submission)

    def submit(self, submission: Submission, contents: Sequence[OutgoingContent]) -> Flow[SubmitOutcome]:
        url = self.repository_url
        self.check_local(submission)

        def prepare() -> tuple[HttpRequest, ResponseSink[SubmitOutcome]]:
            message_id = new_message_id()
            request: HttpRequest
            if self.mtom:
                attachments = [OutgoingAttachment(new_cid(), content.open(), content.mime_type) for content in contents]
                parts: dict[str, DocumentPart] = {
                    content.entry_uuid: XopRef(attachment.cid)
                    for content, attachment in zip(contents, attachments, strict=True)
                }
                xml = self._envelope(url, c.ACTION_ITI41, iti41.build_request(submission, parts), message_id)
                writer = MtomWriter(xml, attachments, action=c.ACTION_ITI41)
                headers = {"content-type": writer.content_type}
                if writer.content_length is not None:
                    headers["content-length"] = str(writer.content_length)
                request = HttpRequest("POST", url, headers, writer)
            else:
                inline: dict[str, DocumentPart] = {
                    content.entry_uuid: Inline(b"".join(iter_chunks(content.open()))) for content in contents
                }
                request = self._request(
                    url, c.ACTION_ITI41, iti41.build_request(submission, inline), message_id, mtom=False
                )
            sink = self._sink(
                transaction="ITI-41",
                url=url,
                message_id=message_id,
                response_action=c.ACTION_ITI41_RESPONSE,
                payload_tag=f"{{{c.RS}}}RegistryResponse",
                interpret=_registry_outcome,
                spool_dir=self.spool_dir,
            )
            return request, sink

        return (
            yield from self._exchange(
                Transaction(
                    name="ITI-41",
                    action=c.ACTION_ITI41,
                    url=url,
                    safety=Safety.RESUBMIT,
                    prepare=prepare,
                    rewindable=all(content.rewindable for content in contents),
                    patient=submission.submission_set.patient_id,
                )
            )
        )

    # ------------------------------------------------------------------------------------------ ITI-18
    def query(self, query: Query, *, break_the_glass: str | None = None) -> Flow[QueryOutcome]:
        _no_glass(break_the_glass)
        url = self.registry_url

        def prepare() -> tuple[HttpRequest, ResponseSink[QueryOutcome]]:
            message_id = new_message_id()
            request = self._request(url, c.ACTION_ITI18, iti18.build_request(query), message_id, mtom=False)
            sink = self._sink(
                transaction="ITI-18",
                url=url,
                message_id=message_id,
                response_action=c.ACTION_ITI18_RESPONSE,
                payload_tag=f"{{{c.QUERY}}}AdhocQueryResponse",
                interpret=_query_outcome,
                spool_dir=self.spool_dir,
            )
            return request, sink

        return (
            yield from self._exchange(
                Transaction(
                    name="ITI-18",
                    action=c.ACTION_ITI18,
                    url=url,
                    safety=Safety.IDEMPOTENT,
                    prepare=prepare,
                    patient=getattr(query, "patient_id", None),
                )
            )
        )

    # ------------------------------------------------------------------------------------------ ITI-43
    def retrieve(
        self,
        documents: Sequence[DocumentLocator],
        *,
        spool_dir: Path,
        progress: ProgressCallback | None = None,
        break_the_glass: str | None = None,
    ) -> Flow[RetrieveOutcome]:
        _no_glass(break_the_glass)
        url = self.repository_url
        requests = [iti43.DocumentRequest(d.repository_unique_id, d.unique_id, d.home_community_id) for d in documents]

        def prepare() -> tuple[HttpRequest, ResponseSink[RetrieveOutcome]]:
            message_id = new_message_id()
            request = self._request(url, c.ACTION_ITI43, iti43.build_request(requests), message_id, mtom=self.mtom)
            sink = self._sink(
                transaction="ITI-43",
                url=url,
                message_id=message_id,
                response_action=c.ACTION_ITI43_RESPONSE,
                payload_tag=f"{{{c.XDSB}}}RetrieveDocumentSetResponse",
                interpret=_retrieve_outcome(spool_dir),
                spool_dir=spool_dir,
            )
            return request, with_progress(sink, progress)

        return (
            yield from self._exchange(
                Transaction(name="ITI-43", action=c.ACTION_ITI43, url=url, safety=Safety.IDEMPOTENT, prepare=prepare)
            )
        )

    # ------------------------------------------------------------------------------------------ ITI-57
    def update_status(
        self, *, patient_id: str, entry_uuid: str, original: AvailabilityStatus, new: AvailabilityStatus
    ) -> Flow[SubmitOutcome]:
        url = self.registry_url

        def prepare() -> tuple[HttpRequest, ResponseSink[SubmitOutcome]]:
            message_id = new_message_id()
            payload = iti57.build_status_update(
                patient_id=patient_id, entry_uuid=entry_uuid, original=original, new=new, source_id=self.source_id
            )
            request = self._request(url, c.ACTION_ITI57, payload, message_id, mtom=False)
            sink = self._sink(
                transaction="ITI-57",
                url=url,
                message_id=message_id,
                response_action=c.ACTION_ITI57_RESPONSE,
                payload_tag=f"{{{c.RS}}}RegistryResponse",
                interpret=_registry_outcome,
                spool_dir=self.spool_dir,
            )
            return request, sink

        return (
            yield from self._exchange(
                Transaction(
                    name="ITI-57",
                    action=c.ACTION_ITI57,
                    url=url,
                    safety=Safety.NOT_SAFE,
                    prepare=prepare,
                    patient=patient_id,
                )
            )
        )
