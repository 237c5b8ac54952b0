"""Network and protocol failure modes, with respx standing in for the hub: each maps to the documented error, is
retried only when that is safe, and leaves nothing half-done. Every test runs through both clients."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

import httpx
import pytest
import respx

from rsb_connector.client import HttpStatusError
from rsb_connector.errors import (
    HubError,
    HubRefused,
    IntegrityError,
    MetadataError,
    Problem,
    ProtocolError,
    TransportError,
)
from rsb_connector.metadata.builder import new_document
from rsb_connector.metadata.model import DocumentEntry
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti41
from rsb_connector.xds.constants import DEFAULT_REPOSITORY_UNIQUE_ID, WSA

from . import wire
from .conftest import PATIENT, Vault

MakeVault = Callable[..., Vault]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def vault(make_vault: MakeVault) -> Vault:
    """An unsigned client: respx plays an anonymous hub whose answers are not signed."""
    return make_vault(wire.BASE, retries=3, signed=False)


def stored_entry(content: bytes) -> DocumentEntry:
    """The entry a registry would return for ``content``."""
    entry = new_document(content, patient=PATIENT, document_type="note", mime_type="text/plain")
    entry.repository_unique_id = DEFAULT_REPOSITORY_UNIQUE_ID
    return entry


def publish(vault: Vault, content: bytes = b"a short note") -> object:
    return vault.publish(content, patient=PATIENT, document_type="note", mime_type="text/plain")


# ------------------------------------------------------------------------------------------------- retries


def test_query_timeouts_are_retried_then_raised(vault: Vault, router: respx.MockRouter) -> None:
    route = router.post(wire.REGISTRY).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError) as failure:
        vault.find(PATIENT)
    assert not isinstance(failure.value, ProtocolError)
    assert route.call_count == 4
    message = str(failure.value)
    assert wire.REGISTRY in message
    assert "4 attempts" in message
    assert PATIENT not in message


def test_a_query_recovers_from_a_transient_gateway_error(vault: Vault, router: respx.MockRouter) -> None:
    answers = iter([httpx.Response(503, content=b"<html>busy</html>", headers={"content-type": "text/html"})])

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or wire.query_response(request, [stored_entry(b"x")])

    route = router.post(wire.REGISTRY).mock(side_effect=answer)
    assert len(vault.find(PATIENT)) == 1
    assert route.call_count == 2


def test_a_publish_is_retried_on_timeout_as_a_new_message_with_the_same_metadata(
    vault: Vault, router: respx.MockRouter
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ReadTimeout("no answer", request=request)
        return wire.registry_response(request, c.STATUS_SUCCESS)

    router.post(wire.REPOSITORY).mock(side_effect=answer)
    receipt = publish(vault)
    assert len(seen) == 2
    assert wire.message_id(seen[0]) != wire.message_id(seen[1])
    assert wire.submission_set_unique_id(seen[0]) == wire.submission_set_unique_id(seen[1])
    assert receipt.submission_set_unique_id == wire.submission_set_unique_id(seen[1])  # type: ignore[attr-defined]


def test_a_publish_is_retried_on_connect_errors(vault: Vault, router: respx.MockRouter) -> None:
    route = router.post(wire.REPOSITORY).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransportError, match="could not connect"):
        publish(vault)
    assert route.call_count == 4


def test_a_publish_is_not_retried_on_a_gateway_error(vault: Vault, router: respx.MockRouter) -> None:
    route = router.post(wire.REPOSITORY).mock(
        return_value=httpx.Response(503, content=b"<html>down</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(HttpStatusError) as failure:
        publish(vault)
    assert failure.value.status_code == 503
    assert route.call_count == 1


class _OneWay:
    """A stream that can be read once and cannot seek (a pipe, a socket...)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def seekable(self) -> bool:
        return False


def one_way(data: bytes) -> BinaryIO:
    return cast(BinaryIO, _OneWay(data))


def test_a_stream_that_cannot_rewind_is_not_retried(vault: Vault, router: respx.MockRouter) -> None:
    route = router.post(wire.REPOSITORY).mock(side_effect=httpx.ReadTimeout("no answer"))
    stream = one_way(b"streamed once")
    with pytest.raises(TransportError):
        vault.publish(stream, patient=PATIENT, document_type="note", mime_type="text/plain", compute_digest=False)
    assert route.call_count == 1


def test_a_stream_without_digest_gets_its_hash_measured_while_sent(vault: Vault, router: respx.MockRouter) -> None:
    router.post(wire.REPOSITORY).mock(side_effect=lambda r: wire.registry_response(r, c.STATUS_SUCCESS))
    data = b"streamed once " * 10_000
    stream = one_way(data)
    receipt = vault.publish(stream, patient=PATIENT, document_type="note", mime_type="text/plain", compute_digest=False)
    assert receipt.document.hash == hashlib.sha1(data, usedforsecurity=False).hexdigest()
    assert receipt.document.size == len(data)


def test_a_status_update_is_not_retried_once_sent(vault: Vault, router: respx.MockRouter) -> None:
    entry = stored_entry(b"x")
    route = router.post(wire.REGISTRY).mock(side_effect=httpx.ReadTimeout("no answer"))
    with pytest.raises(TransportError):
        vault.deprecate(entry)
    assert route.call_count == 1
    assert b"UpdateAvailabilityStatus" in route.calls.last.request.content


def test_a_refusal_is_never_retried(vault: Vault, router: respx.MockRouter) -> None:
    problem = Problem("XDSUnknownPatientId", "unknown patient", "SubmissionSet.patientId")
    route = router.post(wire.REPOSITORY).mock(
        side_effect=lambda r: wire.registry_response(r, c.STATUS_FAILURE, [problem])
    )
    with pytest.raises(HubRefused):
        publish(vault)
    assert route.call_count == 1


# ------------------------------------------------------------------------------------------------- errors


def test_an_html_error_page_is_a_transport_error(vault: Vault, router: respx.MockRouter) -> None:
    route = router.post(wire.REGISTRY).mock(
        return_value=httpx.Response(500, content=wire.HTML_ERROR, headers={"content-type": "text/html"})
    )
    with pytest.raises(TransportError) as failure:
        vault.find(PATIENT)
    assert not isinstance(failure.value, ProtocolError)
    assert isinstance(failure.value, HttpStatusError)
    assert "HTTP 500" in str(failure.value)
    assert wire.REGISTRY in str(failure.value)
    assert "Traceback" not in str(failure.value)
    assert route.call_count == 1


def test_a_soap_fault_is_a_refusal_with_the_fault_code(vault: Vault, router: respx.MockRouter) -> None:
    router.post(wire.REGISTRY).mock(
        side_effect=lambda r: wire.fault(r, "action not served here", subcode=(WSA, "ActionNotSupported"))
    )
    with pytest.raises(HubRefused) as refused:
        vault.find(PATIENT)
    assert refused.value.code == "ActionNotSupported"
    assert "action not served here" in refused.value.problems[0].message


def test_a_fault_without_subcode_uses_the_fault_code(vault: Vault, router: respx.MockRouter) -> None:
    router.post(wire.REGISTRY).mock(side_effect=lambda r: wire.fault(r, "bad request", status=500))
    with pytest.raises(HubRefused) as refused:
        vault.find(PATIENT)
    assert refused.value.code == "Sender"


def test_a_truncated_mtom_answer_is_a_protocol_error_and_leaves_no_file(
    vault: Vault, router: respx.MockRouter, tmp_path: Path
) -> None:
    content = b"the full document " * 1000
    entry = stored_entry(content)

    def truncated(request: httpx.Request) -> httpx.Response:
        body, content_type = wire.retrieve_response(request, [(entry, content)])
        return httpx.Response(200, content=body[: len(body) // 2], headers={"content-type": content_type})

    route = router.post(wire.REPOSITORY).mock(side_effect=truncated)
    with pytest.raises(ProtocolError, match="truncated"):
        vault.retrieve(entry, to=tmp_path / "document.txt")
    assert list(tmp_path.iterdir()) == []
    assert route.call_count == 1


def test_an_answer_of_the_wrong_content_type_is_a_protocol_error(vault: Vault, router: respx.MockRouter) -> None:
    router.post(wire.REGISTRY).mock(
        return_value=httpx.Response(200, content=b"<html>login</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(ProtocolError, match="Content-Type"):
        vault.find(PATIENT)


def test_an_mtom_label_without_a_multipart_body_is_a_protocol_error(vault: Vault, router: respx.MockRouter) -> None:
    def mislabelled(request: httpx.Request) -> httpx.Response:
        plain = wire.soap(iti41.build_response(c.STATUS_SUCCESS), c.ACTION_ITI41_RESPONSE, wire.message_id(request))
        _body, mtom_type = wire.mtom(iti41.build_response(c.STATUS_SUCCESS), c.ACTION_ITI41_RESPONSE, None)
        return httpx.Response(200, content=plain.content, headers={"content-type": mtom_type})

    router.post(wire.REPOSITORY).mock(side_effect=mislabelled)
    with pytest.raises(ProtocolError, match="not multipart"):
        publish(vault)


@pytest.mark.parametrize("relates_to", ["urn:uuid:00000000-0000-4000-8000-000000000000", None])
def test_an_answer_to_another_message_is_a_protocol_error(
    vault: Vault, router: respx.MockRouter, relates_to: str | None
) -> None:
    from rsb_connector.xds import iti18

    router.post(wire.REGISTRY).mock(
        return_value=wire.soap(iti18.build_response(c.STATUS_SUCCESS), c.ACTION_ITI18_RESPONSE, relates_to)
    )
    with pytest.raises(ProtocolError, match=r"RelatesTo|relates to"):
        vault.find(PATIENT)


def test_a_refused_publish_reports_every_error(vault: Vault, router: respx.MockRouter) -> None:
    problems = [
        Problem("XDSRegistryMetadataError", "classCode is missing", "DocumentEntry[urn:uuid:1].classCode"),
        Problem("XDSPatientIdDoesNotMatch", "patient differs", "DocumentEntry[urn:uuid:2].patientId"),
        Problem("XDSRepositoryMetadataError", "hash differs", "DocumentEntry[urn:uuid:1].hash"),
    ]
    router.post(wire.REPOSITORY).mock(side_effect=lambda r: wire.registry_response(r, c.STATUS_FAILURE, problems))
    with pytest.raises(HubRefused) as refused:
        publish(vault)
    assert refused.value.codes == [p.code for p in problems]
    assert list(refused.value.problems) == problems
    assert refused.value.status == c.STATUS_FAILURE
    for problem in problems:
        assert problem.code in str(refused.value)


def test_a_partial_success_is_a_hub_error_not_a_refusal(vault: Vault, router: respx.MockRouter) -> None:
    warning = Problem("XDSRegistryError", "one of them was not stored")
    router.post(wire.REPOSITORY).mock(
        side_effect=lambda r: wire.registry_response(r, c.STATUS_PARTIAL_SUCCESS, [warning])
    )
    with pytest.raises(HubError) as partial:
        publish(vault)
    assert not isinstance(partial.value, HubRefused)
    assert partial.value.status == c.STATUS_PARTIAL_SUCCESS


def test_content_that_does_not_match_its_metadata_is_an_integrity_error(
    vault: Vault, router: respx.MockRouter, tmp_path: Path
) -> None:
    entry = stored_entry(b"what the registry knows")

    def tampered(request: httpx.Request) -> httpx.Response:
        body, content_type = wire.retrieve_response(request, [(entry, b"what the repository sends")])
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    router.post(wire.REPOSITORY).mock(side_effect=tampered)
    with pytest.raises(IntegrityError, match="does not match"):
        vault.retrieve(entry, to=tmp_path / "doc.txt")
    assert list(tmp_path.iterdir()) == []
    assert vault.retrieve(entry, verify=False).content == b"what the repository sends"


def test_a_hash_in_upper_case_still_verifies(vault: Vault, router: respx.MockRouter) -> None:
    content = b"case does not matter"
    entry = stored_entry(content)
    assert entry.hash is not None
    entry.hash = entry.hash.upper()

    def answer(request: httpx.Request) -> httpx.Response:
        body, content_type = wire.retrieve_response(request, [(entry, content)])
        return httpx.Response(200, content=body, headers={"content-type": content_type})

    router.post(wire.REPOSITORY).mock(side_effect=answer)
    assert vault.retrieve(entry).verified


# ------------------------------------------------------------------------------------------------- local checks


def test_invalid_metadata_is_refused_before_anything_is_sent(vault: Vault, router: respx.MockRouter) -> None:
    route = router.route().mock(return_value=httpx.Response(500))
    entry = new_document(b"x", patient=PATIENT, document_type="note", mime_type="text/plain")
    entry.type_code = None
    entry.creation_time = "2024-12-24"
    with pytest.raises(MetadataError) as invalid:
        vault.publish_many([(b"x", entry)])
    paths = [p.path for p in invalid.value.problems]
    assert any(path.endswith(".typeCode") for path in paths)
    assert any(path.endswith(".creationTime") for path in paths)
    with pytest.raises(ValueError, match="unknown typeCode"):
        vault.publish(b"x", patient=PATIENT, document_type="no-such-type", mime_type="text/plain")
    with pytest.raises(ValueError, match="status"):
        vault.find(PATIENT, status="maybe")
    assert route.call_count == 0
    assert router.calls.call_count == 0
