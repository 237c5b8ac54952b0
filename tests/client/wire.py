"""Hand-made hub answers for the network failure tests (respx), built with the same XDS bindings the hub uses."""

from __future__ import annotations

import re
from collections.abc import Sequence

import httpx
from lxml import etree

from rsb_connector.errors import Problem
from rsb_connector.metadata.model import DocumentEntry
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti18, iti41, iti43
from rsb_connector.xds.mtom import MtomWriter, OutgoingAttachment
from rsb_connector.xds.parts import XopRef
from rsb_connector.xds.soap import SOAP_CONTENT_TYPE, build_envelope, build_fault, serialize, soap_content_type

BASE = "http://hub.test"
REGISTRY = f"{BASE}/xds/registry"
REPOSITORY = f"{BASE}/xds/repository"

_MESSAGE_ID = re.compile(rb"<wsa:MessageID(?: [^>]*)?>([^<]+)</wsa:MessageID>")
_SUBMISSION_SET_UID = re.compile(
    rb'identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"[^>]*value="([^"]+)"'
)


def message_id(request: httpx.Request) -> str:
    """The ``wsa:MessageID`` of a request (plain or MTOM)."""
    found = _MESSAGE_ID.search(request.content)
    assert found is not None, "the request has no wsa:MessageID"
    return found.group(1).decode()


def submission_set_unique_id(request: httpx.Request) -> str:
    """The SubmissionSet uniqueId an ITI-41 request carries."""
    found = _SUBMISSION_SET_UID.search(request.content)
    assert found is not None
    return found.group(1).decode()


def soap(payload: etree._Element, action: str, relates_to: str | None, *, status: int = 200) -> httpx.Response:
    """A plain SOAP 1.2 answer."""
    envelope = build_envelope(payload, action=action, relates_to=relates_to, reply_to_anonymous=False)
    return httpx.Response(status, content=serialize(envelope), headers={"content-type": soap_content_type(action)})


def mtom(
    payload: etree._Element,
    action: str,
    relates_to: str | None,
    attachments: Sequence[OutgoingAttachment] = (),
) -> tuple[bytes, str]:
    """An MTOM answer's body and Content-Type."""
    envelope = build_envelope(payload, action=action, relates_to=relates_to, reply_to_anonymous=False)
    writer = MtomWriter(serialize(envelope), attachments, action=action)
    return writer.to_bytes(), writer.content_type


def registry_response(request: httpx.Request, status: str, problems: Sequence[Problem] = ()) -> httpx.Response:
    """An ITI-41 RegistryResponse answering ``request`` (as MTOM, like the hub answers an MTOM request)."""
    body, content_type = mtom(iti41.build_response(status, problems), c.ACTION_ITI41_RESPONSE, message_id(request))
    return httpx.Response(200, content=body, headers={"content-type": content_type})


def query_response(request: httpx.Request, entries: Sequence[DocumentEntry] = ()) -> httpx.Response:
    """A successful ITI-18 answer to ``request`` carrying ``entries``."""
    payload = iti18.build_response(c.STATUS_SUCCESS, entries=entries)
    return soap(payload, c.ACTION_ITI18_RESPONSE, message_id(request))


def retrieve_response(
    request: httpx.Request, documents: Sequence[tuple[DocumentEntry, bytes]], *, status: str = c.STATUS_SUCCESS
) -> tuple[bytes, str]:
    """An MTOM ITI-43 answer carrying ``documents`` as attachments (body, Content-Type)."""
    responses = []
    attachments = []
    for i, (entry, data) in enumerate(documents):
        cid = f"doc{i}@test"
        attachments.append(OutgoingAttachment(cid, data, entry.mime_type or "application/octet-stream"))
        assert entry.unique_id is not None
        doc_request = iti43.DocumentRequest(entry.repository_unique_id or "", entry.unique_id)
        responses.append(iti43.DocumentResponse(doc_request, entry.mime_type or "", XopRef(cid)))
    return mtom(iti43.build_response(status, responses), c.ACTION_ITI43_RESPONSE, message_id(request), attachments)


def fault(
    request: httpx.Request, reason: str, *, subcode: tuple[str, str] | None = None, status: int = 400
) -> httpx.Response:
    """A SOAP 1.2 Sender fault answering ``request``."""
    envelope = build_fault("Sender", reason, subcode=subcode, relates_to=message_id(request))
    return httpx.Response(status, content=serialize(envelope), headers={"content-type": SOAP_CONTENT_TYPE})


HTML_ERROR = b"<html><body><h1>500 Internal Server Error</h1><pre>Traceback ...</pre></body></html>"
