"""MTOM/XOP multipart: streaming writer, incremental byte-exact parser, limits, cleanup; XOP helpers."""

from __future__ import annotations

import base64
import hashlib
import io
import random
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from rsb_connector.errors import ProtocolError
from rsb_connector.xds.constants import ACTION_ITI41, XOP
from rsb_connector.xds.mtom import (
    DEFAULT_START_CID,
    MtomMessage,
    MtomParser,
    MtomWriter,
    OutgoingAttachment,
    is_mtom,
    new_cid,
    parse_content_type,
)
from rsb_connector.xds.xop import (
    XOP_INCLUDE,
    build_include,
    cid_to_href,
    href_to_cid,
    resolve_for_validation,
    xop_includes,
)

BOUNDARY = "MIMEBoundary_test0123"
ROOT = (
    b'<?xml version="1.0" encoding="UTF-8"?><root><doc>'
    b'<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:a@rsb"/></doc></root>'
)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


def _chunks(data: bytes, sizes: Iterable[int]) -> Iterator[bytes]:
    position = 0
    for size in sizes:
        if position >= len(data):
            return
        yield data[position : position + size]
        position += size
    if position < len(data):
        yield data[position:]


def _parse(content_type: str, chunks: Iterable[bytes], spool: Path, **kwargs: int | None) -> MtomMessage:
    parser = MtomParser(content_type, spool_dir=spool, **kwargs)  # type: ignore[arg-type]
    for chunk in chunks:
        parser.feed(chunk)
    return parser.close()


def _edge_contents() -> dict[str, bytes]:
    resembling = f"\r\n--{BOUNDARY[:-1]}X\r\n--{BOUNDARY[:5]}".encode()
    return {
        "a@rsb": b"  \t leading whitespace and trailing CRLF\r\n",
        "b@rsb": b"\r\n--not-a-boundary--\r\n" + resembling + b"\r\n",
        "c@rsb": bytes(range(256)) * 3 + b"\r\n\r\n",
        "d@rsb": b"",
        "e@rsb": b"\n\r\r\n--",
    }


# ---------------------------------------------------------------------------------------------- content types


def test_parse_content_type_quoted_and_unquoted() -> None:
    media, params = parse_content_type(
        'Multipart/Related; type="application/xop+xml"; start="<root.message@rsb>"; '
        'start-info="application/soap+xml"; action="urn:a;b"; boundary=MIMEBoundary_1; X-Esc="a\\"b"'
    )
    assert media == "multipart/related"
    assert params == {
        "type": "application/xop+xml",
        "start": "<root.message@rsb>",
        "start-info": "application/soap+xml",
        "action": "urn:a;b",
        "boundary": "MIMEBoundary_1",
        "x-esc": 'a"b',
    }
    assert parse_content_type('multipart/related;boundary="uuid:1234-ab";type="application/xop+xml"')[1] == {
        "boundary": "uuid:1234-ab",
        "type": "application/xop+xml",
    }
    assert parse_content_type("application/soap+xml") == ("application/soap+xml", {})


def test_is_mtom() -> None:
    assert is_mtom('multipart/related; type="application/xop+xml"; boundary=x')
    assert is_mtom("multipart/related;type=application/xop+xml;boundary=x")
    assert not is_mtom("application/soap+xml; charset=UTF-8")
    assert not is_mtom('multipart/related; type="text/xml"; boundary=x')


def test_new_cid_is_unique() -> None:
    assert new_cid() != new_cid()
    assert new_cid().endswith("@rsb")


# ---------------------------------------------------------------------------------------------- writer


def test_writer_content_type_and_length() -> None:
    writer = MtomWriter(
        ROOT, [OutgoingAttachment("a@rsb", b"data", "text/plain")], action=ACTION_ITI41, boundary=BOUNDARY
    )
    assert writer.content_type == (
        'multipart/related; type="application/xop+xml"; start="<root.message@rsb>"; '
        f'start-info="application/soap+xml"; action="{ACTION_ITI41}"; boundary={BOUNDARY}'
    )
    body = writer.to_bytes()
    assert writer.content_length == len(body)
    assert body.startswith(f"--{BOUNDARY}\r\n".encode())
    assert body.endswith(f"\r\n--{BOUNDARY}--\r\n".encode())
    assert b"Content-ID: <root.message@rsb>\r\n" in body
    assert b"Content-Transfer-Encoding: binary\r\n" in body
    assert b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n' in body
    assert b"Content-ID: <a@rsb>\r\n\r\ndata\r\n--" in body


def test_writer_rejects_duplicate_cids() -> None:
    with pytest.raises(ValueError, match="twice"):
        MtomWriter(ROOT, [OutgoingAttachment("a@rsb", b"1"), OutgoingAttachment("<a@rsb>", b"2")])
    with pytest.raises(ValueError, match="twice"):
        MtomWriter(ROOT, [OutgoingAttachment(DEFAULT_START_CID, b"1")])


def test_writer_streams_paths_and_streams_in_bounded_chunks(tmp_path: Path, spool: Path) -> None:
    big = random.Random(7).randbytes(300_000)
    path = tmp_path / "doc.bin"
    path.write_bytes(big)
    stream = io.BytesIO(b"from a stream\r\n")
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", path), OutgoingAttachment("s@rsb", stream, "text/plain")])
    assert writer.content_length is None  # a stream has no known size
    chunks = list(writer)
    assert max(len(c) for c in chunks[1:]) <= 1 << 16
    message = _parse(writer.content_type, chunks, spool)
    assert message.attachment("cid:a@rsb").read_bytes() == big
    assert message.attachment("s@rsb").read_bytes() == b"from a stream\r\n"
    assert message.attachment("s@rsb").content_type == "text/plain"

    by_path = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", path)])
    assert by_path.content_length == len(by_path.to_bytes())
    assert by_path.to_bytes() == by_path.to_bytes()  # a path can be sent again (retries)


async def test_async_iteration_matches_sync(tmp_path: Path) -> None:
    path = tmp_path / "doc.bin"
    path.write_bytes(b"x" * 200_000)
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", path)], boundary=BOUNDARY)
    collected = [chunk async for chunk in writer]
    assert b"".join(collected) == writer.to_bytes()


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 1000, 10**9])
def test_round_trip_is_byte_exact(chunk_size: int, spool: Path) -> None:
    contents = _edge_contents()
    writer = MtomWriter(
        ROOT,
        [OutgoingAttachment(cid, data) for cid, data in contents.items()],
        action=ACTION_ITI41,
        boundary=BOUNDARY,
    )
    body = writer.to_bytes()
    message = _parse(writer.content_type, _chunks(body, iter(lambda: chunk_size, 0)), spool)
    assert message.root == ROOT
    assert message.root_content_type.startswith("application/xop+xml")
    assert sorted(message.attachments) == sorted(contents)
    for cid, data in contents.items():
        received = message.attachments[cid]
        assert received.path.read_bytes() == data
        assert received.path.parent == spool
        assert received.digest.size == len(data)
        assert received.digest.sha1 == hashlib.sha1(data).hexdigest()
        assert received.digest.sha256 == hashlib.sha256(data).hexdigest()
    message.discard()
    assert list(spool.iterdir()) == []


def test_large_random_attachment_in_random_chunks(spool: Path) -> None:
    rng = random.Random(20240601)
    data = rng.randbytes(20 * 1024 * 1024)
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", data)], boundary="MIMEBoundary_" + "7" * 40)
    body = writer.to_bytes()
    sizes: list[int] = []
    total = 0
    while total < len(body):
        size = rng.randint(1, 100_000) if total < 3_000_000 else rng.randint(100_000, 3_000_000)
        sizes.append(size)
        total += size
    message = _parse(writer.content_type, _chunks(body, sizes), spool)
    received = message.attachment("cid:a@rsb")
    assert received.digest.sha256 == hashlib.sha256(data).hexdigest()
    assert received.digest.size == len(data)
    assert hashlib.sha256(received.path.read_bytes()).hexdigest() == received.digest.sha256


def test_percent_encoded_cid_matches_content_id(spool: Path) -> None:
    writer = MtomWriter(ROOT, [OutgoingAttachment("doc@1@rsb", b"payload")])
    message = _parse(writer.content_type, [writer.to_bytes()], spool)
    assert message.attachment("cid:doc%401@rsb").read_bytes() == b"payload"
    assert message.attachment("CID:doc@1@rsb").read_bytes() == b"payload"
    assert message.attachment("doc@1@rsb").read_bytes() == b"payload"
    with pytest.raises(ProtocolError, match="no MIME part"):
        message.attachment("cid:other@rsb")


def _hand_made(boundary: str, *, start: bool = True, closing: bool = True) -> bytes:
    parts = [
        b"preamble to ignore\r\n",
        f"--{boundary}   \r\n".encode(),  # transport padding after the boundary is allowed
        b"Content-Type: application/xop+xml;\r\n charset=UTF-8\r\n",  # folded header line
        b"Content-ID: <root@x>\r\n\r\n",
        b"<r/>",
        f"\r\n--{boundary}\r\n".encode(),
        b"Content-Id:att@x\r\n\r\n",  # no angle brackets, no content type
        b"\r\nbody\r\n",
    ]
    if closing:
        parts.append(f"\r\n--{boundary}--\r\nepilogue to ignore".encode())
    return b"".join(parts)


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/xop+xml"; start="<root@x>"; boundary="b=1:x"',
        'multipart/related; type="application/xop+xml"; boundary="b=1:x"',
    ],
)
def test_quoted_boundary_and_optional_start(content_type: str, spool: Path) -> None:
    message = _parse(content_type, [_hand_made("b=1:x")], spool)
    assert message.root == b"<r/>"
    assert message.root_content_type == "application/xop+xml; charset=UTF-8"
    attachment = message.attachment("cid:att@x")
    assert attachment.read_bytes() == b"\r\nbody\r\n"
    assert attachment.content_type == "application/octet-stream"


def test_unquoted_boundary(spool: Path) -> None:
    message = _parse("multipart/related; type=application/xop+xml; boundary=simple", [_hand_made("simple")], spool)
    assert message.root == b"<r/>"


def test_start_absent_means_first_part_is_root(spool: Path) -> None:
    body = b"--B\r\nContent-ID: <first>\r\n\r\n<first/>\r\n--B\r\nContent-ID: <second>\r\n\r\n<second/>\r\n--B--"
    message = _parse('multipart/related; type="application/xop+xml"; boundary=B', [body], spool)
    assert message.root == b"<first/>"
    assert message.attachment("second").read_bytes() == b"<second/>"


def test_start_may_name_a_later_part(spool: Path) -> None:
    body = b"--B\r\nContent-ID: <att>\r\n\r\nATT\r\n--B\r\nContent-ID: <root>\r\n\r\n<root/>\r\n--B--\r\n"
    message = _parse('multipart/related; start="<root>"; boundary=B', [body], spool)
    assert message.root == b"<root/>"
    assert message.attachment("att").read_bytes() == b"ATT"


# ---------------------------------------------------------------------------------------------- failures


def _feed_all(parser: MtomParser, data: bytes, size: int = 5) -> None:
    for chunk in _chunks(data, iter(lambda: size, 0)):
        parser.feed(chunk)


def test_truncated_message_fails_and_leaves_no_spool_files(spool: Path) -> None:
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", b"A" * 5000), OutgoingAttachment("b@rsb", b"B" * 5000)])
    body = writer.to_bytes()
    parser = MtomParser(writer.content_type, spool_dir=spool)
    _feed_all(parser, body[: len(body) - 3000], 700)
    assert list(spool.iterdir())  # the first attachment is already spooled
    with pytest.raises(ProtocolError, match="truncated"):
        parser.close()
    assert list(spool.iterdir()) == []


def test_missing_closing_boundary_is_truncated(spool: Path) -> None:
    parser = MtomParser("multipart/related; boundary=simple", spool_dir=spool)
    parser.feed(_hand_made("simple", closing=False))
    with pytest.raises(ProtocolError, match="truncated"):
        parser.close()
    assert list(spool.iterdir()) == []


def test_missing_start_part(spool: Path) -> None:
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", b"A")], start_cid="root@x")
    content_type = writer.content_type.replace("<root@x>", "<elsewhere@x>")
    parser = MtomParser(content_type, spool_dir=spool)
    parser.feed(writer.to_bytes())
    with pytest.raises(ProtocolError, match=r"start part <elsewhere@x>"):
        parser.close()
    assert list(spool.iterdir()) == []


def test_oversize_attachment_fails_and_deletes_files(spool: Path) -> None:
    writer = MtomWriter(
        ROOT, [OutgoingAttachment("small@rsb", b"s" * 100), OutgoingAttachment("big@rsb", b"B" * 50_000)]
    )
    parser = MtomParser(writer.content_type, spool_dir=spool, max_attachment_bytes=10_000)
    with pytest.raises(ProtocolError, match="larger than the limit"):
        _feed_all(parser, writer.to_bytes(), 4096)
    assert list(spool.iterdir()) == []
    with pytest.raises(ProtocolError, match="already failed"):
        parser.feed(b"more")


def test_attachment_exactly_at_the_limit_is_accepted(spool: Path) -> None:
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", b"x" * 10_000)])
    message = _parse(writer.content_type, [writer.to_bytes()], spool, max_attachment_bytes=10_000)
    assert message.attachment("a@rsb").digest.size == 10_000


def test_oversize_root_fails(spool: Path) -> None:
    writer = MtomWriter(b"<r>" + b"x" * 5000 + b"</r>", [])
    parser = MtomParser(writer.content_type, spool_dir=spool, max_root_bytes=1000)
    with pytest.raises(ProtocolError, match="root part is larger"):
        _feed_all(parser, writer.to_bytes(), 300)


def test_too_many_parts(spool: Path) -> None:
    writer = MtomWriter(ROOT, [OutgoingAttachment(f"{i}@rsb", b"x") for i in range(5)])
    with pytest.raises(ProtocolError, match="more than 3 parts"):
        _parse(writer.content_type, [writer.to_bytes()], spool, max_parts=3)
    assert list(spool.iterdir()) == []


def test_body_that_is_not_multipart(spool: Path) -> None:
    parser = MtomParser('multipart/related; type="application/xop+xml"; boundary=B', spool_dir=spool)
    parser.feed(b'<?xml version="1.0"?><soap:Envelope/>')
    with pytest.raises(ProtocolError, match="not multipart"):
        parser.close()


def test_duplicate_content_id(spool: Path) -> None:
    body = (
        b"--B\r\nContent-ID: <r>\r\n\r\n<r/>\r\n--B\r\nContent-ID: <a>\r\n\r\n1\r\n"
        b"--B\r\nContent-ID: <a>\r\n\r\n2\r\n--B--"
    )
    with pytest.raises(ProtocolError, match="same Content-ID"):
        _parse("multipart/related; boundary=B", [body], spool)
    assert list(spool.iterdir()) == []


def test_base64_transfer_encoding_is_refused(spool: Path) -> None:
    body = (
        b"--B\r\nContent-ID: <r>\r\n\r\n<r/>\r\n--B\r\nContent-ID: <a>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nQQ==\r\n--B--"
    )
    with pytest.raises(ProtocolError, match="must be binary"):
        _parse("multipart/related; boundary=B", [body], spool)


def test_garbage_after_boundary_is_refused(spool: Path) -> None:
    body = b"--B\r\nContent-ID: <r>\r\n\r\n<r/>\r\n--Bogus\r\n\r\n--B--"
    with pytest.raises(ProtocolError, match="malformed MIME boundary line"):
        _parse("multipart/related; boundary=B", [body], spool)


@pytest.mark.parametrize(
    ("content_type", "match"),
    [("application/soap+xml", "multipart/related"), ('multipart/related; type="application/xop+xml"', "boundary")],
)
def test_bad_content_type(content_type: str, match: str, spool: Path) -> None:
    with pytest.raises(ProtocolError, match=match):
        MtomParser(content_type, spool_dir=spool)


def test_close_twice_fails(spool: Path) -> None:
    writer = MtomWriter(ROOT, [])
    parser = MtomParser(writer.content_type, spool_dir=spool)
    parser.feed(writer.to_bytes())
    assert parser.close().root == ROOT
    with pytest.raises(ProtocolError):
        parser.close()


def test_discard_by_the_caller_deletes_partial_files(spool: Path) -> None:
    writer = MtomWriter(ROOT, [OutgoingAttachment("a@rsb", b"A" * 100_000)])
    parser = MtomParser(writer.content_type, spool_dir=spool)
    body = writer.to_bytes()
    parser.feed(body[:50_000])
    assert list(spool.iterdir())
    parser.discard()
    assert list(spool.iterdir()) == []


# ---------------------------------------------------------------------------------------------- XOP


def test_cid_href_round_trip() -> None:
    assert cid_to_href("doc@1@rsb") == "cid:doc@1@rsb"
    assert cid_to_href("a b/c") == "cid:a%20b%2Fc"
    assert href_to_cid(cid_to_href("a b/c")) == "a b/c"
    assert href_to_cid("cid:doc%401@rsb") == "doc@1@rsb"
    assert href_to_cid(" CID:<x@y> ") == "x@y"


def test_xop_includes_and_resolution() -> None:
    root = etree.fromstring(b"<r><d>  </d><e/></r>")
    d = root.find("d")
    assert d is not None
    include = build_include("doc%@rsb")
    include.tail = "\n"
    d.append(include)
    found = xop_includes(root)
    assert found == [(include, "doc%@rsb")]
    resolved = resolve_for_validation(root, {"doc%@rsb": b"\x00\x01binary"})
    assert resolved.findtext("d") == "  " + base64.b64encode(b"\x00\x01binary").decode() + "\n"
    assert resolved.find(f".//{XOP_INCLUDE}") is None
    assert root.find(f".//{XOP_INCLUDE}") is not None  # the original is untouched
    with pytest.raises(ProtocolError, match="no MIME part"):
        resolve_for_validation(root, {})


def test_include_without_href_is_refused() -> None:
    root = etree.fromstring(f'<r xmlns:xop="{XOP}"><xop:Include/></r>'.encode())
    with pytest.raises(ProtocolError, match="href"):
        xop_includes(root)
