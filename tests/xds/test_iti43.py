"""ITI-43 Retrieve Document Set messages, alone and carried in a full MTOM SOAP exchange."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lxml import etree

from rsb_connector.errors import Problem, ProtocolError
from rsb_connector.security.xml import parse_xml
from rsb_connector.xds.constants import (
    ACTION_ITI43,
    ACTION_ITI43_RESPONSE,
    DEFAULT_REPOSITORY_UNIQUE_ID,
    RS,
    STATUS_PARTIAL_SUCCESS,
    STATUS_SUCCESS,
    XDSB,
)
from rsb_connector.xds.iti43 import (
    DocumentRequest,
    DocumentResponse,
    RetrieveRequestError,
    RetrieveResponse,
    build_request,
    build_response,
    parse_request,
    parse_response,
)
from rsb_connector.xds.mtom import MtomParser, MtomWriter, OutgoingAttachment
from rsb_connector.xds.parts import Inline, XopRef
from rsb_connector.xds.soap import build_envelope, parse_envelope, serialize

REQUESTS = [
    DocumentRequest(DEFAULT_REPOSITORY_UNIQUE_ID, "1.2.3.4.1"),
    DocumentRequest(DEFAULT_REPOSITORY_UNIQUE_ID, "1.2.3.4.2", "urn:oid:1.3.6.1.4.1.21367.13.70.1"),
]


def test_request_round_trip() -> None:
    element = build_request(REQUESTS)
    assert element.tag == f"{{{XDSB}}}RetrieveDocumentSetRequest"
    assert parse_request(parse_xml(serialize(element))) == REQUESTS
    second = element[1]
    assert [etree.QName(c).localname for c in second] == ["HomeCommunityId", "RepositoryUniqueId", "DocumentUniqueId"]


def test_empty_request_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_request([])


def test_malformed_request_reports_every_problem() -> None:
    data = (
        f'<x:RetrieveDocumentSetRequest xmlns:x="{XDSB}">'
        "<x:DocumentRequest><x:DocumentUniqueId>1.2</x:DocumentUniqueId></x:DocumentRequest>"
        "<x:DocumentRequest><x:RepositoryUniqueId>1.3</x:RepositoryUniqueId>"
        "<x:DocumentUniqueId>  </x:DocumentUniqueId></x:DocumentRequest>"
        "</x:RetrieveDocumentSetRequest>"
    ).encode()
    with pytest.raises(RetrieveRequestError) as info:
        parse_request(parse_xml(data))
    assert [(p.code, p.path) for p in info.value.problems] == [
        ("XDSUnknownRepositoryId", "DocumentRequest[1].RepositoryUniqueId"),
        ("XDSDocumentUniqueIdError", "DocumentRequest[2].DocumentUniqueId"),
    ]
    assert isinstance(info.value, ProtocolError)


def test_request_with_wrong_root_or_no_documents() -> None:
    with pytest.raises(RetrieveRequestError, match="XDSRepositoryError"):
        parse_request(etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest"))
    with pytest.raises(RetrieveRequestError, match="no DocumentRequest"):
        parse_request(etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest"))


def test_response_round_trip_with_attachment_inline_and_problems() -> None:
    documents = [
        DocumentResponse(REQUESTS[0], "application/pdf", XopRef("doc%1@rsb")),
        DocumentResponse(REQUESTS[1], "text/xml", Inline(b"<kmehr/>\r\n")),
    ]
    problems = [Problem("XDSDocumentUniqueIdError", "no document 1.2.3.4.9 in this repository", "1.2.3.4.9")]
    element = build_response(STATUS_PARTIAL_SUCCESS, documents, problems)
    parsed = parse_response(parse_xml(serialize(element)))
    assert parsed == RetrieveResponse(STATUS_PARTIAL_SUCCESS, documents, problems)
    assert b"cid:doc%251@rsb" in serialize(element)


def test_response_parsing_errors() -> None:
    with pytest.raises(ProtocolError, match="expected xdsb:RetrieveDocumentSetResponse"):
        parse_response(build_request(REQUESTS))
    with pytest.raises(ProtocolError, match="no rs:RegistryResponse"):
        parse_response(etree.Element(f"{{{XDSB}}}RetrieveDocumentSetResponse"))
    missing = (
        f'<x:RetrieveDocumentSetResponse xmlns:x="{XDSB}" xmlns:rs="{RS}">'
        f'<rs:RegistryResponse status="{STATUS_SUCCESS}"/>'
        "<x:DocumentResponse><x:RepositoryUniqueId>1</x:RepositoryUniqueId>"
        "<x:DocumentUniqueId>2</x:DocumentUniqueId><x:Document>QQ==</x:Document></x:DocumentResponse>"
        "</x:RetrieveDocumentSetResponse>"
    ).encode()
    with pytest.raises(ProtocolError, match=r"DocumentResponse\[1\] lacks mimeType"):
        parse_response(parse_xml(missing))
    bad_base64 = missing.replace(b"<x:Document>", b"<x:mimeType>text/plain</x:mimeType><x:Document>").replace(
        b"QQ==", b"not base64!"
    )
    with pytest.raises(ProtocolError, match="neither an xop:Include nor valid base64"):
        parse_response(parse_xml(bad_base64))


def test_inline_base64_with_line_breaks_is_read() -> None:
    payload = bytes(range(256)) * 4
    encoded = base64.encodebytes(payload).decode()  # wrapped at 76 characters
    data = (
        f'<x:RetrieveDocumentSetResponse xmlns:x="{XDSB}" xmlns:rs="{RS}">'
        f'<rs:RegistryResponse status="{STATUS_SUCCESS}"/>'
        "<x:DocumentResponse><x:RepositoryUniqueId>1</x:RepositoryUniqueId>"
        "<x:DocumentUniqueId>2</x:DocumentUniqueId><x:mimeType>application/octet-stream</x:mimeType>"
        f"<x:Document>{encoded}</x:Document></x:DocumentResponse></x:RetrieveDocumentSetResponse>"
    ).encode()
    parsed = parse_response(parse_xml(data))
    assert parsed.documents[0].part == Inline(payload)


def test_full_mtom_exchange(tmp_path: Path) -> None:
    """Client request → hub parses; hub response with an MTOM attachment → client gets the exact bytes."""
    request_envelope = build_envelope(build_request(REQUESTS[:1]), action=ACTION_ITI43, to="http://hub/xds/repository")
    received = parse_envelope(parse_xml(serialize(request_envelope)))
    assert received.action == ACTION_ITI43
    assert received.payload is not None
    wanted = parse_request(received.payload)

    content = b"%PDF-1.7\r\n binary \x00\xff\r\n"
    response = build_response(STATUS_SUCCESS, [DocumentResponse(wanted[0], "application/pdf", XopRef("doc@1@rsb"))])
    envelope = build_envelope(
        response, action=ACTION_ITI43_RESPONSE, relates_to=received.message_id, reply_to_anonymous=False
    )
    writer = MtomWriter(serialize(envelope), [OutgoingAttachment("doc@1@rsb", content)], action=ACTION_ITI43_RESPONSE)
    parser = MtomParser(writer.content_type, spool_dir=tmp_path)
    for chunk in writer:
        parser.feed(chunk)
    mtom = parser.close()

    answer = parse_envelope(parse_xml(mtom.root))
    assert answer.relates_to == received.message_id
    assert answer.payload is not None
    result = parse_response(answer.payload)
    assert result.status == STATUS_SUCCESS
    part = result.documents[0].part
    assert isinstance(part, XopRef)
    attachment = mtom.attachment(part.cid)
    assert attachment.read_bytes() == content
    assert result.documents[0].mime_type == "application/pdf"
    assert result.documents[0].request == REQUESTS[0]
