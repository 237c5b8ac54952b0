"""The client against the mock hub, end to end: every scenario runs through the sync and the async client (the
``kind`` fixture), in-process (ASGI) and once over a real uvicorn socket."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsb_connector.client import NewDocument, NotFoundError, PartialRetrieveError
from rsb_connector.errors import HubRefused, MetadataError
from rsb_connector.hub.server import Hub
from rsb_connector.metadata.builder import new_document, professional_author
from rsb_connector.metadata.model import AssociationType, AvailabilityStatus
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.xds import constants as c

from .conftest import OTHER_PATIENT, PATIENT, UNREGISTERED, SyncASGITransport, Vault


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def unique_content(label: str) -> bytes:
    return f"{label} {os.urandom(8).hex()}\n".encode() * 3


def run_lifecycle(vault: Vault, tmp_path: Path) -> None:
    """publish → find → retrieve (bytes, file) → replace → find shows the old one deprecated → deprecate."""
    content = unique_content("consultation")
    author = professional_author("12345625004", family="Claes", given="Sophie")
    receipt = vault.publish(
        content,
        patient=PATIENT,
        document_type="contactreport",
        mime_type="text/plain",
        title="Consultation",
        author=author,
    )
    first = receipt.document
    assert (first.hash, first.size, first.mime_type) == (sha1(content), len(content), "text/plain")

    found = {e.unique_id: e for e in vault.find(PATIENT, type_codes=["contactreport"])}
    entry = found[first.unique_id]
    assert entry.hash == sha1(content)
    assert entry.size == len(content)
    assert entry.title == "Consultation"
    assert entry.availability_status is AvailabilityStatus.APPROVED

    in_memory = vault.retrieve(first.unique_id)
    assert in_memory.content == content
    assert in_memory.verified
    assert in_memory.mime_type == "text/plain"

    target = tmp_path / "copy.txt"
    on_disk = vault.retrieve(entry, to=target)
    assert on_disk.path == target
    assert target.read_bytes() == content
    assert on_disk.content is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.txt"]  # nothing else left behind

    corrected = unique_content("corrected consultation")
    second = vault.replace(entry, corrected).document
    current = {e.unique_id for e in vault.find(PATIENT)}
    assert second.unique_id in current
    assert first.unique_id not in current
    everything = {e.unique_id: e for e in vault.find(PATIENT, status="all")}
    assert everything[first.unique_id].availability_status is AvailabilityStatus.DEPRECATED
    assert everything[second.unique_id].availability_status is AvailabilityStatus.APPROVED
    assert everything[second.unique_id].title == "Consultation"  # taken from the replaced entry

    related = vault.related_documents(second.unique_id)
    assert [e.unique_id for e in related.entries] == [first.unique_id]
    assert [a.type for a in related.associations] == [AssociationType.RPLC]

    vault.deprecate(second.unique_id)
    assert second.unique_id not in {e.unique_id for e in vault.find(PATIENT)}
    assert second.unique_id in {e.unique_id for e in vault.find(PATIENT, status="deprecated")}
    with pytest.raises(HubRefused) as refused:
        vault.deprecate(second.unique_id)
    assert refused.value.code == "XDSMetadataUpdateError"
    assert vault.retrieve(first.unique_id).content == content  # deprecated documents stay retrievable


def test_lifecycle(vault: Vault, tmp_path: Path) -> None:
    run_lifecycle(vault, tmp_path)


def test_lifecycle_over_a_socket(make_vault: Callable[..., Vault], socket_hub: str, tmp_path: Path) -> None:
    run_lifecycle(make_vault(socket_hub), tmp_path)


def test_large_file_streams_both_ways_over_a_socket(
    make_vault: Callable[..., Vault], socket_hub: str, tmp_path: Path
) -> None:
    big = tmp_path / "scan.pdf"
    data = os.urandom(3 * 1024 * 1024 + 17)
    big.write_bytes(data)
    vault = make_vault(socket_hub)
    receipt = vault.publish(big, patient=PATIENT, document_type="result")
    assert receipt.document.mime_type == "application/pdf"
    out = tmp_path / "out"
    out.mkdir()
    seen: list[tuple[int, int | None]] = []
    doc = vault.retrieve(receipt.document.unique_id, to=out, progress=lambda got, total: seen.append((got, total)))
    assert doc.path is not None
    assert doc.path.parent == out
    assert doc.path.suffix == ".pdf"
    assert doc.path.read_bytes() == data
    assert doc.hash == sha1(data)
    assert seen[-1][0] > len(data)  # the whole MTOM body went through the progress callback
    assert [p.name for p in out.iterdir()] == [doc.path.name]


def test_publish_many_and_retrieve_many_into_a_directory(vault: Vault, tmp_path: Path) -> None:
    contents = [unique_content("lab one"), unique_content("lab two")]
    docs = [
        NewDocument(data, new_document(data, patient=PATIENT, document_type="labresult", mime_type="text/plain"))
        for data in contents
    ]
    receipt = vault.publish_many(docs, title="Two lab results")
    assert [d.unique_id for d in receipt.documents] == [d.entry.unique_id for d in docs]

    contents_of_set = vault.submission_set_contents(receipt.submission_set_unique_id)
    assert contents_of_set.submission_set.unique_id == receipt.submission_set_unique_id
    assert {e.unique_id for e in contents_of_set.entries} == {d.unique_id for d in receipt.documents}

    ids = [d.unique_id for d in receipt.documents]
    fetched = vault.retrieve_many(ids, to_dir=tmp_path)
    assert [f.unique_id for f in fetched] == ids
    assert [f.read_bytes() for f in fetched] == contents
    assert all(f.verified and f.path is not None and f.path.parent == tmp_path for f in fetched)

    in_memory = vault.retrieve_many(vault.get_documents(unique_ids=ids))
    assert [f.content for f in in_memory] == contents


def test_retrieve_many_partial_success_keeps_what_came(vault: Vault, tmp_path: Path) -> None:
    content = unique_content("kept")
    unique_id = vault.publish(content, patient=PATIENT, document_type="note", mime_type="text/plain").document.unique_id
    with pytest.raises(PartialRetrieveError) as partial:
        vault.retrieve_many([unique_id, "1.2.3.4.5.404"], to_dir=tmp_path)
    error = partial.value
    assert not isinstance(error, HubRefused)
    assert error.status == c.STATUS_PARTIAL_SUCCESS
    assert error.codes == ["XDSDocumentUniqueIdError"]
    assert [d.unique_id for d in error.partial] == [unique_id]
    assert error.partial[0].read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == [error.partial[0].path.name]  # type: ignore[union-attr]


def test_append_keeps_the_original_approved(vault: Vault) -> None:
    original = vault.publish(unique_content("report"), patient=PATIENT, document_type="report", mime_type="text/plain")
    addendum = vault.append(original.document.unique_id, unique_content("addendum"))
    current = {e.unique_id for e in vault.find(PATIENT, class_codes="report")}
    assert {original.document.unique_id, addendum.document.unique_id} <= current
    related = vault.related_documents(original.document.unique_id, types=[AssociationType.APND])
    assert [e.unique_id for e in related.entries] == [addendum.document.unique_id]


def test_refusals(vault: Vault, tmp_path: Path) -> None:
    with pytest.raises(HubRefused) as unknown_patient:
        vault.publish(b"x", patient=UNREGISTERED, document_type="note", mime_type="text/plain")
    assert unknown_patient.value.code == "XDSUnknownPatientId"
    assert "17073003384" not in str(unknown_patient.value)

    with pytest.raises(NotFoundError) as missing:
        vault.retrieve("1.2.3.4.5.6.404", to=tmp_path / "never.bin")
    assert missing.value.code == "XDSDocumentUniqueIdError"
    assert list(tmp_path.iterdir()) == []

    mine = vault.publish(unique_content("mine"), patient=PATIENT, document_type="note", mime_type="text/plain")
    with pytest.raises(MetadataError) as other:
        vault.replace(mine.document.unique_id, b"not yours", patient=OTHER_PATIENT)
    assert other.value.code == "XDSPatientIdDoesNotMatch"


def test_plain_soap_without_mtom(make_vault: Callable[..., Vault], hub: Hub) -> None:
    vault = make_vault(app=hub.app, mtom=False)
    content = unique_content("inline")
    receipt = vault.publish(content, patient=PATIENT, document_type="note", mime_type="text/plain")
    assert vault.retrieve(receipt.document.unique_id).content == content


class _DropFirstAnswer:
    """Lets the hub process the first ITI-41, then loses its answer (a read timeout): the worst case for a retry."""

    def __init__(self) -> None:
        self.calls = 0
        self.message_ids: list[bytes] = []

    def lose(self, request: httpx.Request) -> bool:
        if b"ProvideAndRegisterDocumentSetRequest" not in request.content:
            return False
        self.calls += 1
        found = re.search(rb"<wsa:MessageID[^>]*>([^<]+)<", request.content)
        assert found is not None
        self.message_ids.append(found.group(1))
        return self.calls == 1


@pytest.fixture
def lossy(
    kind: str, hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Iterator[tuple[Vault, _DropFirstAnswer]]:
    from rsb_connector.client import AsyncVaultClient, VaultClient

    dropper = _DropFirstAnswer()
    signed: dict[str, Any] = {"identity": rsb_identity("gp"), "trust": rsb_pki.trust_store()}
    if kind == "sync":

        class Sync(SyncASGITransport):
            def handle_request(self, request: httpx.Request) -> httpx.Response:
                request.read()
                response = super().handle_request(request)
                if dropper.lose(request):
                    raise httpx.ReadTimeout("the answer was lost", request=request)
                return response

        transport = Sync(hub.app)
        vault = Vault(VaultClient("http://hub.test", transport=transport, backoff=0.0, **signed))
        yield vault, dropper
        vault.close()
        transport.close()
        return

    class Async(httpx.ASGITransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            response = await super().handle_async_request(request)
            await response.aread()
            if dropper.lose(request):
                raise httpx.ReadTimeout("the answer was lost", request=request)
            return response

    vault = Vault(AsyncVaultClient("http://hub.test", transport=Async(app=hub.app), backoff=0.0, **signed))
    yield vault, dropper
    vault.close()


def test_a_publish_whose_answer_was_lost_is_retried_safely(lossy: tuple[Vault, _DropFirstAnswer]) -> None:
    vault, dropper = lossy
    content = unique_content("retried")
    receipt = vault.publish(content, patient=PATIENT, document_type="note", mime_type="text/plain")
    assert dropper.calls == 2
    assert dropper.message_ids[0] != dropper.message_ids[1]  # a retry is a new message...
    matches = [e for e in vault.find(PATIENT) if e.unique_id == receipt.document.unique_id]
    assert len(matches) == 1  # ... and the hub stored the document once
    assert vault.retrieve(matches[0]).content == content


def test_one_log_line_per_transaction(vault: Vault, caplog: pytest.LogCaptureFixture) -> None:
    content = b"SECRET-CLINICAL-TEXT " + os.urandom(4).hex().encode()
    with caplog.at_level(logging.INFO, logger="rsb_connector.client"):
        receipt = vault.publish(content, patient=PATIENT, document_type="note", mime_type="text/plain")
        vault.retrieve(receipt.document.unique_id)
    records = [r for r in caplog.records if r.name == "rsb_connector.client" and r.levelno >= logging.INFO]
    precheck = "FHIR GET /$check-access"  # the access pre-check before publishing and before retrieving
    done = [getattr(r, "transaction", None) for r in records]
    assert done == [precheck, "ITI-41", "ITI-18", precheck, "ITI-43"]
    fields: dict[str, Any] = vars(records[1])
    assert fields["action"] == c.ACTION_ITI41
    assert fields["status"] == "Success"
    assert fields["attempts"] == 1
    assert isinstance(fields["duration_ms"], float)
    assert fields["patient"].startswith(PATIENT[:2] + "*******" + PATIENT[-2:])
    for record in records:
        text = record.getMessage() + repr(vars(record))
        assert PATIENT not in text
        assert "SECRET-CLINICAL-TEXT" not in text
