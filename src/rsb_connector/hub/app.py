"""The mock hub's ASGI application: explicit routes over one request pipeline.

Every SOAP request goes through the same steps, in this order:

1. **receive** — a plain ``application/soap+xml`` body, or an MTOM ``multipart/related`` body whose attachments are
   streamed to spool files in the store's own temporary folder while being hashed (never held in memory);
2. **parse** — the root part with the one hardened XML parser (:mod:`rsb_connector.security.xml`), then the
   SOAP 1.2 envelope and its WS-Addressing headers;
3. **authenticate** — an :class:`Authenticator` turns the message into a :class:`~rsb_connector.hub.registry.Caller`
   AND the message to process: with WS-Security (:class:`~rsb_connector.hub.auth.WsSecurityAuthenticator`) that is
   a view made of the signed copies only, which replaces the parsed message from here on; a refusal is a SOAP Fault
   whose Subcode is the WS-Security fault code (``wsse:FailedCheck``, ``wsse:InvalidSecurityToken``...);
4. **dispatch** — on the (signed) ``wsa:Action``, per endpoint (repository: ITI-41, ITI-43; registry: ITI-18,
   ITI-57); a (signed) Body that is not the element the action announces is refused;
5. **answer** — a response envelope with ``wsa:RelatesTo`` = the request's MessageID, as MTOM when the request was
   MTOM (some deployed sources accept nothing else), else plain SOAP; failures of the message itself are SOAP Faults.
   With a hub identity every answer, faults included, is signed (WS-Security, serialized once).

A signed ITI-41 must carry the ``hash`` and ``size`` of every document in its (signed) metadata: they are what binds
an MTOM attachment, which the signature does not cover, to the signature; the repository compares them with the
bytes received (``XDSRepositoryMetadataError`` when missing or different). Nothing is stored on any refusal.

Spooled attachments not adopted by the store are deleted whatever happens.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from rsb_connector.errors import Problem, ProtocolError, QueryError
from rsb_connector.identifiers import mask_ssin
from rsb_connector.metadata.content import digest
from rsb_connector.metadata.model import AssociationType, DocumentEntry
from rsb_connector.security.identity import Identity
from rsb_connector.security.wssec import WsSecurityError, sign_envelope
from rsb_connector.security.xml import XmlLimits, parse_xml
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti18, iti41, iti43, iti57, soap
from rsb_connector.xds.mtom import MtomMessage, MtomParser, MtomWriter, OutgoingAttachment, is_mtom, new_cid
from rsb_connector.xds.parts import Inline, XopRef

from .auth import Authentication, HubSecurity, WsSecurityAuthenticator, token_route
from .connector_validation import ConnectorValidator, RecordingMiddleware, SoapTrace, report_routes
from .registry import Caller, IncomingDocument, Registry

__all__ = ["AnonymousAuthenticator", "Authentication", "Authenticator", "HubConfig", "SoapContext", "create_app"]

log = logging.getLogger("rsb_connector.hub")


@dataclass(slots=True)
class HubConfig:
    """Tunables of the hub's HTTP layer.

    Attributes:
        max_message_bytes: largest accepted SOAP root part (or plain SOAP body).
        max_attachment_bytes: largest accepted single attachment (``None``: no limit).
        inline_retrieve_limit: a plain-SOAP (non-MTOM) ITI-43 answer inlines documents as base64; larger ones are
            refused with a clear error telling the caller to use MTOM.
    """

    max_message_bytes: int = 10 * 1024 * 1024
    max_attachment_bytes: int | None = 2 * 1024 * 1024 * 1024
    inline_retrieve_limit: int = 32 * 1024 * 1024


@dataclass(slots=True)
class SoapContext:
    """Everything known about one SOAP request once received and parsed.

    Attributes:
        message: the parsed message until authentication, then the authenticator's view of it (for a signed
            request: the signed copies only).
        signed: True when the caller was authenticated by a verified WS-Security signature.
    """

    endpoint: str
    message: soap.SoapMessage
    mtom: MtomMessage | None
    caller: Caller = field(default_factory=Caller)
    signed: bool = False

    @property
    def is_mtom(self) -> bool:
        return self.mtom is not None


class Authenticator(Protocol):
    """Turns a parsed request into the caller it comes from and the message to process, or raises to refuse it
    (:class:`~rsb_connector.security.wssec.WsSecurityError` becomes a SOAP Fault with its WS-Security code)."""

    def authenticate(self, context: SoapContext) -> Authentication: ...


class AnonymousAuthenticator:
    """Accepts every request as an unauthenticated caller, unverified (a hub without any PKI)."""

    def authenticate(self, context: SoapContext) -> Authentication:
        return Authentication(Caller(), context.message, signed=False)


@dataclass(slots=True)
class _Answer:
    """A handler's result: the response payload, its action, attachments to stream, and a log summary; for
    connector validation, the ebRS status, every problem answered and those that are faults of the request itself
    (``None``: all of them)."""

    payload: etree._Element
    action: str
    attachments: list[OutgoingAttachment] = field(default_factory=list)
    summary: str = ""
    status: str = ""
    problems: Sequence[Problem] = ()
    request_problems: Sequence[Problem] | None = None


class _SoapFault(Exception):
    """Raised inside the pipeline to answer with a SOAP Fault."""

    def __init__(self, reason: str, *, code: str = "Sender", subcode: tuple[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.subcode = subcode


_Handler = Callable[[SoapContext], Awaitable[_Answer]]


class _XdsEndpoints:
    """The XDS.b transactions, one method each, over a :class:`Registry`."""

    def __init__(self, registry: Registry, config: HubConfig) -> None:
        self.registry = registry
        self.config = config
        self.routes: dict[str, dict[str, tuple[str, _Handler]]] = {
            "repository": {
                c.ACTION_ITI41: (f"{{{c.XDSB}}}ProvideAndRegisterDocumentSetRequest", self.iti41),
                c.ACTION_ITI43: (f"{{{c.XDSB}}}RetrieveDocumentSetRequest", self.iti43),
            },
            "registry": {
                c.ACTION_ITI18: (f"{{{c.QUERY}}}AdhocQueryRequest", self.iti18),
                c.ACTION_ITI57: (f"{{{c.LCM}}}SubmitObjectsRequest", self.iti57),
            },
        }

    # ------------------------------------------------------------------------------------------- ITI-41
    async def iti41(self, ctx: SoapContext) -> _Answer:
        payload = _payload(ctx)
        parsed = iti41.parse_request(payload)
        problems = list(parsed.problems)
        if ctx.signed:
            problems += _unbound_documents(parsed.submission.entries)
        incoming: dict[str, IncomingDocument] = {}
        for doc_id, part in parsed.documents.items():
            if isinstance(part, XopRef):
                if ctx.mtom is None:
                    problems.append(_missing_attachment(doc_id, part.cid, "the request is not MTOM"))
                    continue
                try:
                    att = ctx.mtom.attachment(part.cid)
                except ProtocolError as exc:
                    problems.append(_missing_attachment(doc_id, part.cid, str(exc)))
                    continue
                incoming[doc_id] = IncomingDocument(path=att.path, data=None, digest=att.digest)
            elif isinstance(part, Inline):
                incoming[doc_id] = IncomingDocument(path=None, data=part.data, digest=digest(part.data))
        if any(p.is_error for p in problems):
            outcome_status, outcome_problems = c.STATUS_FAILURE, problems
        else:
            outcome = await run_in_threadpool(
                self.registry.provide_and_register, parsed.submission, incoming, caller=ctx.caller
            )
            outcome_status, outcome_problems = outcome.status, [*problems, *outcome.problems]
        patient = mask_ssin(parsed.submission.submission_set.patient_id or "")
        summary = f"ITI-41 patient={patient} documents={len(parsed.documents)} status={_short(outcome_status)}"
        if outcome_problems:
            summary += " errors=" + ",".join(sorted({p.code for p in outcome_problems}))
        return _Answer(
            iti41.build_response(outcome_status, outcome_problems),
            c.ACTION_ITI41_RESPONSE,
            summary=summary,
            status=outcome_status,
            problems=outcome_problems,
        )

    # ------------------------------------------------------------------------------------------- ITI-18
    async def iti18(self, ctx: SoapContext) -> _Answer:
        payload = _payload(ctx)
        parsed = False  # a refusal of the query's parameters is the request's fault; one of its answer is not
        try:
            query = iti18.parse_request(payload)
            parsed = True
            result = await run_in_threadpool(self.registry.stored_query, query, caller=ctx.caller)
        except QueryError as exc:
            response = iti18.build_response(c.STATUS_FAILURE, problems=exc.problems)
            summary = f"ITI-18 status=Failure errors={','.join(exc.codes)}"
            return _Answer(
                response,
                c.ACTION_ITI18_RESPONSE,
                summary=summary,
                status=c.STATUS_FAILURE,
                problems=exc.problems,
                request_problems=() if parsed else exc.problems,
            )
        response = iti18.build_response(
            c.STATUS_SUCCESS,
            entries=result.entries,
            submission_sets=result.submission_sets,
            associations=result.associations,
            object_refs=result.object_refs,
            return_type=query.return_type,
        )
        count = len(result.entries) + len(result.submission_sets) + len(result.object_refs)
        summary = f"ITI-18 query={type(query).__name__} results={count} status=Success"
        return _Answer(response, c.ACTION_ITI18_RESPONSE, summary=summary, status=c.STATUS_SUCCESS)

    # ------------------------------------------------------------------------------------------- ITI-43
    async def iti43(self, ctx: SoapContext) -> _Answer:
        payload = _payload(ctx)
        try:
            requests = iti43.parse_request(payload)
        except iti43.RetrieveRequestError as exc:
            summary = "ITI-43 status=Failure errors=" + ",".join(sorted({p.code for p in exc.problems}))
            response = iti43.build_response(c.STATUS_FAILURE, [], exc.problems)
            return _Answer(
                response, c.ACTION_ITI43_RESPONSE, summary=summary, status=c.STATUS_FAILURE, problems=exc.problems
            )
        outcome = await run_in_threadpool(
            self.registry.retrieve,
            [(r.repository_unique_id, r.document_unique_id) for r in requests],
            caller=ctx.caller,
        )
        by_key = {(r.repository_unique_id, r.document_unique_id): r for r in requests}
        problems: list[Problem] = list(outcome.problems)
        responses: list[iti43.DocumentResponse] = []
        attachments: list[OutgoingAttachment] = []
        for doc in outcome.documents:
            request = by_key.get((doc.repository_unique_id, doc.unique_id)) or iti43.DocumentRequest(
                doc.repository_unique_id, doc.unique_id
            )
            if ctx.is_mtom:
                cid = new_cid()
                attachments.append(OutgoingAttachment(cid, doc.path, doc.mime_type))
                part: XopRef | Inline = XopRef(cid)
            elif doc.size > self.config.inline_retrieve_limit:
                problems.append(
                    Problem(
                        "XDSRepositoryError",
                        f"document of {doc.size} bytes is too large to inline as base64 in a plain SOAP answer: "
                        "send the Retrieve request as MTOM (multipart/related) to receive it as an attachment",
                        path=f"DocumentUniqueId[{doc.unique_id}]",
                    )
                )
                continue
            else:
                part = Inline(await run_in_threadpool(doc.path.read_bytes))
            responses.append(iti43.DocumentResponse(request=request, mime_type=doc.mime_type, part=part))
        status = outcome.status
        if len(responses) < len(outcome.documents):
            status = c.STATUS_PARTIAL_SUCCESS if responses else c.STATUS_FAILURE
        summary = f"ITI-43 requested={len(requests)} returned={len(responses)} status={_short(status)}"
        if problems:
            summary += " errors=" + ",".join(sorted({p.code for p in problems}))
        # documents not found (or not visible to the caller) are the registry's answer, not a fault of the request
        return _Answer(
            iti43.build_response(status, responses, problems),
            c.ACTION_ITI43_RESPONSE,
            attachments,
            summary,
            status=status,
            problems=problems,
            request_problems=(),
        )

    # ------------------------------------------------------------------------------------------- ITI-57
    async def iti57(self, ctx: SoapContext) -> _Answer:
        payload = _payload(ctx)
        submission_set, associations, problems = iti57.parse_status_update(payload)
        updates = [a for a in associations if a.type is AssociationType.UPDATE_AVAILABILITY_STATUS]
        if not updates and not problems:
            problems.append(
                Problem(
                    "XDSMetadataUpdateError",
                    "the request holds no UpdateAvailabilityStatus association: this hub supports ITI-57 "
                    "availability status updates (Approved ↔ Deprecated)",
                    path="SubmitObjectsRequest",
                )
            )
        if any(p.is_error for p in problems):
            response = iti41.build_response(c.STATUS_FAILURE, problems)
            return _Answer(
                response,
                c.ACTION_ITI57_RESPONSE,
                summary="ITI-57 status=Failure",
                status=c.STATUS_FAILURE,
                problems=problems,
            )
        patient = submission_set.patient_id if submission_set else None
        outcome = await run_in_threadpool(self.registry.update_status_many, updates, patient, ctx.caller)
        summary = f"ITI-57 updates={len(updates)} status={_short(outcome.status)}"
        return _Answer(
            iti41.build_response(outcome.status, outcome.problems),
            c.ACTION_ITI57_RESPONSE,
            summary=summary,
            status=outcome.status,
            problems=outcome.problems,
        )


def _payload(ctx: SoapContext) -> etree._Element:
    payload = ctx.message.payload
    if payload is None:  # checked by the pipeline already
        raise _SoapFault("the SOAP Body is empty")
    return payload


def _unbound_documents(entries: Sequence[DocumentEntry]) -> list[Problem]:
    """A signed submission's entries without ``hash`` or ``size``: an attachment could be swapped under them."""
    problems = []
    for entry in entries:
        missing = [name for name, value in (("hash", entry.hash), ("size", entry.size)) if value is None]
        if missing:
            problems.append(
                Problem(
                    "XDSRepositoryMetadataError",
                    f"a signed submission must carry the {' and '.join(missing)} of every document in its metadata: "
                    "they bind the document bytes (an MTOM attachment, which the signature does not cover) to the "
                    "signature; send the SHA-1 and the length of the exact bytes attached",
                    path=f"DocumentEntry[{entry.entry_uuid}]." + missing[0],
                )
            )
    return problems


def _missing_attachment(doc_id: str, cid: str, why: str) -> Problem:
    return Problem(
        "XDSMissingDocument",
        f"Document {doc_id!r} refers to attachment cid:{cid}, which is not in the message ({why}); "
        "send the document as an MTOM part with that Content-ID, or inline as base64",
        path=f"Document[{doc_id}]",
    )


def _who(caller: Caller) -> str:
    """The caller for a log line: a patient's SSIN masked, professional and organisation numbers as they are."""
    subject = caller.subject
    return mask_ssin(subject) if caller.ssin or subject.startswith("ssin:") else subject


def _short(status: str) -> str:
    return status.rsplit(":", 1)[-1]


class SoapPipeline:
    """Receive → parse → authenticate → dispatch → answer, for the two XDS endpoints."""

    def __init__(
        self,
        registry: Registry,
        *,
        spool_dir: Path,
        config: HubConfig | None = None,
        authenticator: Authenticator | None = None,
        signer: Identity | None = None,
        response_ttl: int = 60,
        recorder: ConnectorValidator | None = None,
    ) -> None:
        self.config = config or HubConfig()
        self.spool_dir = spool_dir
        self.authenticator = authenticator or AnonymousAuthenticator()
        self.signer = signer
        self.response_ttl = response_ttl
        self.endpoints = _XdsEndpoints(registry, self.config)
        self.recorder = recorder

    async def __call__(self, request: Request, endpoint: str) -> Response:
        started = time.perf_counter()
        mtom: MtomMessage | None = None
        relates_to: str | None = None
        # Connector validation: what each step found, graded and recorded once the answer is ready (None: off).
        trace: SoapTrace | None = self.recorder.soap_trace(request, endpoint) if self.recorder is not None else None
        response: Response | None = None
        try:
            root, mtom = await self._receive(request)
            if trace is not None:
                trace.on_receive(root, mtom)
            try:
                envelope = parse_xml(root, limits=XmlLimits(max_bytes=self.config.max_message_bytes))
                message = soap.parse_envelope(envelope)
            except ProtocolError as exc:
                raise _SoapFault(str(exc)) from exc
            if trace is not None:
                trace.on_parse(message)
            relates_to = message.message_id
            context = SoapContext(endpoint=endpoint, message=message, mtom=mtom)
            try:
                verdict = self.authenticator.authenticate(context)
            except WsSecurityError as exc:
                if trace is not None:
                    trace.on_security_error(exc)
                raise _SoapFault(
                    f"WS-Security: {exc.message}", subcode=(c.WSSE, exc.fault_code.partition(":")[2])
                ) from exc
            context.caller, context.message, context.signed = verdict.caller, verdict.message, verdict.signed
            if trace is not None:
                trace.on_authenticated(verdict.caller, signed=verdict.signed)
            answer = await self._dispatch(context)
            if trace is not None:
                trace.on_answer(answer.status, answer.problems, answer.request_problems)
            response = self._respond(answer, context)
            log.info(
                "%s %s caller=%s in %.1f ms",
                endpoint,
                answer.summary,
                _who(context.caller),
                (time.perf_counter() - started) * 1000,
            )
            return response
        except _SoapFault as fault:
            log.info("%s fault %s: %s", endpoint, fault.subcode[1] if fault.subcode else fault.code, fault.reason)
            if trace is not None:
                trace.on_fault(_fault_label(fault), fault.reason)
            response = _fault_response(fault, relates_to, self._sign)
            return response
        finally:
            if mtom is not None:
                # Attachments adopted by the store were moved away; whatever is left is deleted here.
                await run_in_threadpool(mtom.discard)
            if trace is not None and self.recorder is not None:
                # Graded and stored in its own transaction, after the registry's (and before the answer leaves, so
                # the report holds it as soon as the caller has its answer); never changes the answer.
                await self.recorder.record_soap(trace, response.status_code if response is not None else 500)

    async def _receive(self, request: Request) -> tuple[bytes, MtomMessage | None]:
        content_type = request.headers.get("content-type", "")
        if is_mtom(content_type):
            try:
                parser = MtomParser(
                    content_type,
                    spool_dir=self.spool_dir,
                    max_root_bytes=self.config.max_message_bytes,
                    max_attachment_bytes=self.config.max_attachment_bytes,
                )
            except ProtocolError as exc:
                raise _SoapFault(str(exc)) from exc
            try:
                async for chunk in request.stream():
                    if chunk:
                        await run_in_threadpool(parser.feed, chunk) if len(chunk) > 1 << 20 else parser.feed(chunk)
                message = parser.close()
            except ProtocolError as exc:
                parser.discard()
                raise _SoapFault(f"the MTOM message could not be read: {exc}") from exc
            except BaseException:
                parser.discard()
                raise
            if "soap+xml" not in message.root_content_type and "xop+xml" not in message.root_content_type:
                message.discard()
                raise _SoapFault(
                    f"the MTOM root part has Content-Type {message.root_content_type!r}; expected "
                    'application/xop+xml; type="application/soap+xml"'
                )
            return message.root, message
        media = content_type.split(";", 1)[0].strip().lower()
        if media in ("application/soap+xml", "application/xop+xml"):
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.config.max_message_bytes:
                    raise _SoapFault(
                        f"the SOAP message is larger than {self.config.max_message_bytes} bytes: send documents "
                        "as MTOM attachments"
                    )
            return bytes(body), None
        if media == "text/xml":
            raise _SoapFault(
                "Content-Type text/xml is SOAP 1.1; XDS.b uses SOAP 1.2: send application/soap+xml "
                "(or multipart/related MTOM)",
                subcode=(c.SOAP12, "VersionMismatch"),
                code="VersionMismatch",
            )
        raise _SoapFault(
            f"unsupported Content-Type {media or '(none)'!r}: send application/soap+xml, or multipart/related "
            'with type="application/xop+xml" (MTOM)'
        )

    async def _dispatch(self, context: SoapContext) -> _Answer:
        action = context.message.action
        routes = self.endpoints.routes[context.endpoint]
        if not action:
            raise _SoapFault(
                "the message has no wsa:Action header: XDS.b requires WS-Addressing",
                subcode=(c.WSA, "MessageAddressingHeaderRequired"),
            )
        if action not in routes:
            known = ", ".join(sorted(routes))
            raise _SoapFault(
                f"action {action!r} is not served at /xds/{context.endpoint} (served here: {known})",
                subcode=(c.WSA, "ActionNotSupported"),
            )
        expected, handler = routes[action]
        payload = context.message.payload
        if payload is None or payload.tag != expected:
            found = "nothing" if payload is None else etree.QName(payload).localname
            raise _SoapFault(
                f"the Body holds {found}, but action {action} requires {etree.QName(expected).localname}",
            )
        return await handler(context)

    def _sign(self, envelope: etree._Element) -> bytes:
        """The answer's bytes: signed when the hub has an identity, serialized once."""
        if self.signer is not None:
            sign_envelope(envelope, self.signer, ttl=self.response_ttl)
        return soap.serialize(envelope)

    def _respond(self, answer: _Answer, context: SoapContext) -> Response:
        envelope = soap.build_envelope(answer.payload, action=answer.action, relates_to=context.message.message_id)
        xml = self._sign(envelope)
        if not context.is_mtom:
            return Response(xml, media_type=None, headers={"content-type": soap.soap_content_type(answer.action)})
        writer = MtomWriter(xml, answer.attachments, action=answer.action)
        headers = {"content-type": writer.content_type}
        if writer.content_length is not None:
            headers["content-length"] = str(writer.content_length)
        if not answer.attachments:
            return Response(writer.to_bytes(), headers=headers)
        return StreamingResponse(_threaded(iter(writer)), headers=headers)


async def _threaded(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in iterate_in_threadpool(chunks):
        yield chunk


_PREFIXES = {c.WSSE: "wsse", c.WSA: "wsa", c.SOAP12: "soap"}


def _fault_label(fault: _SoapFault) -> str:
    """``wsse:InvalidSecurity``, ``wsa:ActionNotSupported``, ``soap:Sender``...: the fault's most precise code."""
    if fault.subcode is not None:
        namespace, local = fault.subcode
        return f"{_PREFIXES.get(namespace, 'ns')}:{local}"
    return f"soap:{fault.code}"


def _fault_response(fault: _SoapFault, relates_to: str | None, sign: Callable[[etree._Element], bytes]) -> Response:
    code = fault.code if fault.code in soap.FAULT_CODES else "Sender"
    envelope = soap.build_fault(code, fault.reason, subcode=fault.subcode, relates_to=relates_to)
    status = 500  # SOAP 1.2 HTTP binding: a Sender fault is 400, a Receiver fault 500
    if code in ("Sender", "VersionMismatch"):
        status = 400
    return Response(sign(envelope), status_code=status, headers={"content-type": soap.SOAP_CONTENT_TYPE})


def create_app(
    registry: Registry,
    *,
    spool_dir: Path,
    config: HubConfig | None = None,
    authenticator: Authenticator | None = None,
    security: HubSecurity | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
    connector: ConnectorValidator | None = None,
) -> Starlette:
    """Build the hub's ASGI app over a registry.

    Routes: ``POST /xds/repository`` (ITI-41, ITI-43), ``POST /xds/registry`` (ITI-18, ITI-57), ``GET /healthz``,
    ``GET|DELETE /conformance/report`` (404 without ``connector``), and with ``security`` ``POST /oauth2/token``.

    Args:
        security: trust store, hub identity and strictness (:class:`~rsb_connector.hub.auth.HubSecurity`). With
            it, SOAP requests are verified (:class:`~rsb_connector.hub.auth.WsSecurityAuthenticator` unless
            ``authenticator`` says otherwise), answers are signed with its identity, the token endpoint is served
            and ``app.state.rsb_security`` is set for :func:`~rsb_connector.hub.auth.require_bearer`. Without it
            every request is anonymous and answers are unsigned.
        connector: connector validation (:mod:`rsb_connector.hub.connector_validation`): every SOAP, FHIR and token
            request is graded and recorded, and ``/conformance/report`` serves the result. None: off, at no cost.
    """
    if authenticator is None and security is not None:
        authenticator = WsSecurityAuthenticator(security)
    pipeline = SoapPipeline(
        registry,
        spool_dir=spool_dir,
        config=config,
        authenticator=authenticator,
        signer=security.identity if security is not None else None,
        response_ttl=security.response_ttl if security is not None else 60,
        recorder=connector,
    )

    async def repository(request: Request) -> Response:
        return await pipeline(request, "repository")

    async def registry_endpoint(request: Request) -> Response:
        return await pipeline(request, "registry")

    async def healthz(request: Request) -> Response:
        ok = await run_in_threadpool(registry.healthy)
        return JSONResponse({"status": "ok" if ok else "unavailable"}, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        for hook in on_shutdown:
            hook()

    routes: list[BaseRoute] = [
        Route("/xds/repository", repository, methods=["POST"]),
        Route("/xds/registry", registry_endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *([token_route(security)] if security is not None else []),
        *report_routes(connector),
        *extra_routes,
    ]
    middleware = [Middleware(RecordingMiddleware, validator=connector)] if connector is not None else []
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.rsb_security = security
    return app
