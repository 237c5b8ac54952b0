"""The hardened wire XML parser refuses DTDs, entities, external references, oversize and overdeep input."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from lxml import etree

from rsb_connector.errors import ProtocolError
from rsb_connector.security.xml import DEFAULT_LIMITS, UnsafeXmlError, XmlLimits, parse_xml
from rsb_connector.xds.constants import ACTION_ITI43
from rsb_connector.xds.soap import build_envelope, parse_envelope, serialize


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP listener: any connection attempt by the parser would land here."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.setblocking(False)
    try:
        yield server
    finally:
        server.close()


def _assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        server.accept()


def test_xxe_file_entity_is_refused_without_leaking_content() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    with pytest.raises(UnsafeXmlError) as info:
        parse_xml(data)
    message = str(info.value)
    assert "DOCTYPE" in message
    assert "root:" not in message
    assert "Traceback" not in message


def test_parameter_entity_file_is_refused() -> None:
    data = b'<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><r/>'
    with pytest.raises(UnsafeXmlError) as info:
        parse_xml(data)
    assert "root:" not in str(info.value)


def test_network_entity_is_refused_and_never_fetched(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    data = f'<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/evil">]><r>&x;</r>'.encode()
    with pytest.raises(UnsafeXmlError):
        parse_xml(data)
    _assert_no_connection(listener)


def test_external_dtd_is_refused_and_never_fetched(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    data = f'<!DOCTYPE r SYSTEM "http://127.0.0.1:{port}/x.dtd"><r/>'.encode()
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        parse_xml(data)
    _assert_no_connection(listener)


def test_billion_laughs_is_refused() -> None:
    entities = ['<!ENTITY lol0 "lol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    data = f"<!DOCTYPE lolz [{''.join(entities)}]><lolz>&lol9;</lolz>".encode()
    with pytest.raises(UnsafeXmlError):
        parse_xml(data)


def test_quadratic_blowup_is_refused() -> None:
    big = "A" * 50_000
    data = f'<!DOCTYPE r [<!ENTITY a "{big}">]><r>{"&a;" * 2000}</r>'.encode()
    with pytest.raises(UnsafeXmlError):
        parse_xml(data)


def test_any_doctype_is_refused() -> None:
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        parse_xml(b"<!DOCTYPE r><r/>")


def test_doctype_in_utf16_is_refused() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'.encode("utf-16")
    with pytest.raises(UnsafeXmlError):
        parse_xml(data)


def test_depth_limit() -> None:
    def nested(depth: int) -> bytes:
        return b"<a>" * depth + b"</a>" * depth

    assert parse_xml(nested(DEFAULT_LIMITS.max_depth)).tag == "a"
    with pytest.raises(UnsafeXmlError, match="deep"):
        parse_xml(nested(DEFAULT_LIMITS.max_depth + 1))
    with pytest.raises(UnsafeXmlError, match="deep"):
        parse_xml(nested(6), limits=XmlLimits(max_depth=5))


def test_size_limit() -> None:
    data = b"<r>" + b"x" * 200 + b"</r>"
    assert parse_xml(data, limits=XmlLimits(max_bytes=len(data))).text == "x" * 200
    with pytest.raises(UnsafeXmlError, match="too large"):
        parse_xml(data, limits=XmlLimits(max_bytes=len(data) - 1))


def test_element_count_limit() -> None:
    data = b"<r>" + b"<i/>" * 10 + b"</r>"
    assert len(parse_xml(data, limits=XmlLimits(max_elements=11))) == 10
    with pytest.raises(UnsafeXmlError, match="too many elements"):
        parse_xml(data, limits=XmlLimits(max_elements=10))


@pytest.mark.parametrize("data", [b"<a><b></a>", b"", b"not xml", b"<a>", b"<a/><b/>"])
def test_malformed_is_refused_with_a_short_message(data: bytes) -> None:
    with pytest.raises(UnsafeXmlError, match="malformed") as info:
        parse_xml(data)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None


def test_unsafe_xml_error_is_a_protocol_error() -> None:
    assert issubclass(UnsafeXmlError, ProtocolError)


def test_text_input_is_rejected() -> None:
    with pytest.raises(TypeError):
        parse_xml("<r/>")  # type: ignore[arg-type]


def test_normal_soap_message_passes_unchanged() -> None:
    payload = etree.fromstring(b"<p:Req xmlns:p='urn:x'><!-- kept --><?pi kept?><p:V> a  b </p:V></p:Req>")
    data = serialize(build_envelope(payload, action=ACTION_ITI43, to="https://hub.example/xds/repository"))
    root = parse_xml(data)
    message = parse_envelope(root)
    assert message.action == ACTION_ITI43
    assert message.payload is not None
    assert serialize(root) == data
    assert b"<!-- kept -->" in data
    assert b"<?pi kept?>" in data
