"""A raw XDS.b peer: builds messages with the shared binding and posts them with httpx.

Unlike the SDK client it does no local validation, so the conformance cases (and the hub's tests) can send exactly
the wrong things a real source sends.
A :class:`Peer` signs what it sends with its identity (WS-Security) and checks the hub's signed answers against its
trust store, reading only their signed parts; a plain ``httpx.Client`` sends unsigned messages and reads answers
as they are.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from lxml import etree

from ..errors import ProtocolError
from ..hub.population import SEED_PROFESSIONALS
from ..metadata.builder import professional_author
from ..metadata.model import AvailabilityStatus, Submission
from ..query import Query
from ..security.identity import Identity
from ..security.trust import TrustStore
from ..security.wssec import WsSecurityVerifier, sign_envelope
from ..security.xml import parse_xml
from ..xds import constants as c
from ..xds import iti18, iti41, iti43, iti57, soap
from ..xds.mtom import MtomParser, MtomWriter, OutgoingAttachment, is_mtom
from ..xds.parts import DocumentPart, Inline, XopRef
from ..xds.rs import RegistryResult

GP_AUTHOR = professional_author(SEED_PROFESSIONALS[0].nihii, family="Claes", given="Sophie")
"""The seeded GP, who signs the hub tests' messages: the hub only accepts documents naming their publisher."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise ProtocolError(what)


class Peer(httpx.Client):
    """An httpx client that signs the SOAP messages :func:`post` builds as ``identity`` and verifies the hub's
    answers against ``trust`` (``None``: sends or reads unsigned)."""

    def __init__(self, *args: Any, identity: Identity | None = None, trust: TrustStore | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.identity = identity
        self.verifier = WsSecurityVerifier(trust, require_signed_addressing=True) if trust is not None else None


def envelope_bytes(http: httpx.Client, envelope: etree._Element) -> bytes:
    """``envelope`` signed as ``http``'s identity (when it is a signing :class:`Peer`), serialized once."""
    if isinstance(http, Peer) and http.identity is not None:
        sign_envelope(envelope, http.identity)
    return soap.serialize(envelope)


def read_answer(http: httpx.Client, root: bytes) -> soap.SoapMessage:
    """The hub's answer: its signed parts when ``http`` checks signatures, else as parsed."""
    envelope = parse_xml(root)
    if isinstance(http, Peer) and http.verifier is not None:
        return http.verifier.verify(envelope).soap_message()
    return soap.parse_envelope(envelope)


@dataclass
class Exchange:
    """What came back: HTTP status, the parsed SOAP message, raw root bytes and MTOM attachments by cid."""

    http_status: int
    content_type: str
    message: soap.SoapMessage
    attachments: dict[str, bytes]
    request_message_id: str

    @property
    def payload(self) -> etree._Element:
        payload = self.message.payload
        _expect(payload is not None, "the SOAP Body is empty")
        assert payload is not None
        return payload


def _read(response: httpx.Response, tmp_dir: str | None) -> tuple[bytes, dict[str, bytes]]:
    content_type = response.headers.get("content-type", "")
    if is_mtom(content_type):
        from pathlib import Path

        parser = MtomParser(content_type, spool_dir=Path(tmp_dir or tempfile.gettempdir()))
        parser.feed(response.content)
        message = parser.close()
        try:
            return message.root, {cid: att.read_bytes() for cid, att in message.attachments.items()}
        finally:
            message.discard()
    return response.content, {}


def post(
    http: httpx.Client,
    path: str,
    payload: etree._Element,
    action: str,
    *,
    attachments: Sequence[OutgoingAttachment] = (),
    mtom: bool = True,
    tmp_dir: str | None = None,
) -> Exchange:
    message_id = soap.new_message_id()
    envelope = soap.build_envelope(payload, action=action, message_id=message_id, to=f"{http.base_url}{path}")
    xml = envelope_bytes(http, envelope)
    if mtom:
        writer = MtomWriter(xml, attachments, action=action)
        response = http.post(path, content=writer.to_bytes(), headers={"content-type": writer.content_type})
    else:
        response = http.post(path, content=xml, headers={"content-type": soap.soap_content_type(action)})
    root, atts = _read(response, tmp_dir)
    message = read_answer(http, root)
    return Exchange(response.status_code, response.headers.get("content-type", ""), message, atts, message_id)


def provide(
    http: httpx.Client,
    submission: Submission,
    documents: Mapping[str, bytes],
    *,
    mtom: bool = True,
    tmp_dir: str | None = None,
) -> RegistryResult:
    parts: dict[str, DocumentPart] = {}
    outgoing: list[OutgoingAttachment] = []
    for i, (doc_id, data) in enumerate(documents.items()):
        if mtom:
            cid = f"doc{i}@rsb.test"
            parts[doc_id] = XopRef(cid)
            outgoing.append(OutgoingAttachment(cid, data, "application/octet-stream"))
        else:
            parts[doc_id] = Inline(data)
    exchange = post(
        http,
        "/xds/repository",
        iti41.build_request(submission, parts),
        c.ACTION_ITI41,
        attachments=outgoing,
        mtom=mtom,
        tmp_dir=tmp_dir,
    )
    _expect(exchange.message.action == c.ACTION_ITI41_RESPONSE, f"not an ITI-41 response: {exchange.message.action}")
    _expect(exchange.message.relates_to == exchange.request_message_id, "RelatesTo does not name the request")
    return iti41.parse_response(exchange.payload)


def query(http: httpx.Client, q: Query, *, mtom: bool = False) -> iti18.QueryResponse:
    exchange = post(http, "/xds/registry", iti18.build_request(q), c.ACTION_ITI18, mtom=mtom)
    _expect(exchange.message.action == c.ACTION_ITI18_RESPONSE, f"not an ITI-18 response: {exchange.message.action}")
    return iti18.parse_response(exchange.payload)


def retrieve(
    http: httpx.Client,
    requests: Sequence[tuple[str, str]],
    *,
    mtom: bool = True,
    tmp_dir: str | None = None,
) -> tuple[iti43.RetrieveResponse, dict[str, bytes]]:
    """Returns the parsed response and the documents' bytes by document uniqueId."""
    payload = iti43.build_request([iti43.DocumentRequest(repo, uid) for repo, uid in requests])
    exchange = post(http, "/xds/repository", payload, c.ACTION_ITI43, mtom=mtom, tmp_dir=tmp_dir)
    _expect(exchange.message.action == c.ACTION_ITI43_RESPONSE, f"not an ITI-43 response: {exchange.message.action}")
    response = iti43.parse_response(exchange.payload)
    content: dict[str, bytes] = {}
    for doc in response.documents:
        if isinstance(doc.part, XopRef):
            content[doc.request.document_unique_id] = exchange.attachments[doc.part.cid]
        else:
            content[doc.request.document_unique_id] = doc.part.data
    return response, content


def update_status(
    http: httpx.Client, *, patient_id: str, entry_uuid: str, original: AvailabilityStatus, new: AvailabilityStatus
) -> RegistryResult:
    payload = iti57.build_status_update(
        patient_id=patient_id, entry_uuid=entry_uuid, original=original, new=new, source_id="1.3.6.1.4.1.21367.2017.9"
    )
    exchange = post(http, "/xds/registry", payload, c.ACTION_ITI57, mtom=False)
    _expect(exchange.message.action == c.ACTION_ITI57_RESPONSE, f"not an ITI-57 response: {exchange.message.action}")
    return iti41.parse_response(exchange.payload)
