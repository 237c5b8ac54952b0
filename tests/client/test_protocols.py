"""One end-to-end suite over both wire protocols: ``protocol`` ∈ {xds, mhd} × client ∈ {sync, async} (the ``kind``
fixture), against the in-process seeded hub with the development PKI (signed SOAP for XDS, bearer tokens for MHD).

The same scenario must give the same results and the same errors whichever protocol carries it, and documents must
cross over: published over one protocol, found and retrieved over the other.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsb_connector.client import AccessDenied, AccessToken, NewDocument, NotFoundError, PartialRetrieveError
from rsb_connector.errors import HubRefused, TransportError
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import Hub
from rsb_connector.metadata.builder import new_document
from rsb_connector.metadata.model import AssociationType, AvailabilityStatus

from .conftest import PATIENT, SyncASGITransport, Vault

UNKNOWN_PATIENT = "82121210976"
"""A valid SSIN the hub does not know (XDSUnknownPatientId)."""
UNLINKED_PATIENT = next(p.ssin for p in SEED_PATIENTS if p.key == "lina")
"""A seeded patient with a consent but no therapeutic link with the GP."""
NO_CONSENT_PATIENT = next(p.ssin for p in SEED_PATIENTS if p.key == "marc")
"""A seeded patient without a consent."""


def sha1(data: bytes) -> str:
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def unique_content(label: str) -> bytes:
    return f"{label} {os.urandom(8).hex()}\n".encode() * 3


@pytest.fixture(params=["xds", "mhd"])
def protocol(request: pytest.FixtureRequest) -> str:
    """Which wire protocol a test speaks."""
    return str(request.param)


@pytest.fixture
def on(make_vault: Callable[..., Vault], hub: Hub) -> Callable[[str], Vault]:
    """``on("xds")`` / ``on("mhd")``: a client of the current kind speaking that protocol to the hub."""
    return lambda name: make_vault(app=hub.app, protocol=name)


@pytest.fixture
def vault(on: Callable[[str], Vault], protocol: str) -> Vault:
    """A client of the current kind and protocol."""
    return on(protocol)


def test_lifecycle(vault: Vault, tmp_path: Path) -> None:
    """publish → find → retrieve (byte-exact, verified) → replace → find shows the old one deprecated → deprecate."""
    content = unique_content("consultation")
    receipt = vault.publish(
        content, patient=PATIENT, document_type="contactreport", mime_type="text/plain", title="Consultation"
    )
    first = receipt.document
    assert (first.hash, first.size, first.mime_type) == (sha1(content), len(content), "text/plain")

    found = {e.unique_id: e for e in vault.find(PATIENT, type_codes=["contactreport"])}
    entry = found[first.unique_id]
    assert (entry.hash, entry.size, entry.title) == (sha1(content), len(content), "Consultation")
    assert entry.availability_status is AvailabilityStatus.APPROVED

    by_id = vault.retrieve(first.unique_id)
    assert (by_id.content, by_id.verified, by_id.hash, by_id.mime_type) == (content, True, sha1(content), "text/plain")
    by_entry = vault.retrieve(entry, to=tmp_path)
    assert by_entry.path is not None
    assert by_entry.path.read_bytes() == content
    assert by_entry.verified

    assert [e.unique_id for e in vault.get_documents(unique_ids=[first.unique_id])] == [first.unique_id]
    assert [e.unique_id for e in vault.get_documents(entry_uuids=[entry.entry_uuid])] == [first.unique_id]

    new_content = unique_content("consultation v2")
    replacement = vault.replace(first.unique_id, new_content).document
    everything = {e.unique_id: e for e in vault.find(PATIENT, status="all", type_codes=["contactreport"])}
    assert everything[first.unique_id].availability_status is AvailabilityStatus.DEPRECATED
    assert everything[replacement.unique_id].availability_status is AvailabilityStatus.APPROVED
    assert everything[replacement.unique_id].title == "Consultation"
    current = {e.unique_id for e in vault.find(PATIENT, type_codes=["contactreport"])}
    assert replacement.unique_id in current
    assert first.unique_id not in current
    assert vault.retrieve(replacement.unique_id).content == new_content

    addendum = vault.append(replacement.unique_id, b"addendum\n", mime_type="text/plain").document
    related = vault.related_documents(replacement.unique_id, types=[AssociationType.APND])
    assert [e.unique_id for e in related.entries] == [addendum.unique_id]

    vault.deprecate(replacement.unique_id)
    after = {e.unique_id: e for e in vault.find(PATIENT, status="deprecated", type_codes=["contactreport"])}
    assert after[replacement.unique_id].availability_status is AvailabilityStatus.DEPRECATED
    with pytest.raises(HubRefused):
        vault.deprecate(replacement.unique_id)  # already Deprecated: the registry refuses


def test_publish_many_and_retrieve_many(vault: Vault, tmp_path: Path) -> None:
    contents = [unique_content(f"lab {i}") for i in range(3)]
    docs = [
        NewDocument(c, new_document(c, patient=PATIENT, document_type="labresult", mime_type="text/plain"))
        for c in contents
    ]
    receipt = vault.publish_many(docs)
    ids = [d.unique_id for d in receipt.documents]
    retrieved = vault.retrieve_many(ids, to_dir=tmp_path)
    assert [d.unique_id for d in retrieved] == ids
    assert [d.read_bytes() for d in retrieved] == contents
    assert all(d.verified for d in retrieved)
    in_memory = vault.retrieve_many(ids, verify=False)
    assert [d.content for d in in_memory] == contents


@pytest.mark.parametrize(("publisher", "reader"), [("xds", "mhd"), ("mhd", "xds")])
def test_cross_protocol(on: Callable[[str], Vault], publisher: str, reader: str) -> None:
    """Published over one protocol, found and retrieved (verified) over the other, and replaced there."""
    content = unique_content(f"published over {publisher}")
    receipt = on(publisher).publish(content, patient=PATIENT, document_type="labresult", mime_type="text/plain")
    other = on(reader)
    entry = next(e for e in other.find(PATIENT, type_codes=["labresult"]) if e.unique_id == receipt.document.unique_id)
    assert (entry.hash, entry.size) == (sha1(content), len(content))
    doc = other.retrieve(entry)
    assert (doc.content, doc.verified) == (content, True)
    assert other.retrieve(receipt.document.unique_id).content == content
    replacement = other.replace(entry, unique_content("v2")).document
    statuses = {e.unique_id: e.availability_status for e in on(publisher).find(PATIENT, status="all")}
    assert statuses[receipt.document.unique_id] is AvailabilityStatus.DEPRECATED
    assert statuses[replacement.unique_id] is AvailabilityStatus.APPROVED


def test_unknown_patient_is_refused_alike(vault: Vault) -> None:
    with pytest.raises(HubRefused) as caught:
        vault.publish(b"x\n", patient=UNKNOWN_PATIENT, document_type="labresult", mime_type="text/plain")
    assert "XDSUnknownPatientId" in caught.value.codes
    assert not isinstance(caught.value, AccessDenied)


@pytest.mark.parametrize(("patient", "rule"), [(UNLINKED_PATIENT, "therapeutic-link"), (NO_CONSENT_PATIENT, "consent")])
def test_consent_refusals_look_the_same(on: Callable[[str], Vault], patient: str, rule: str) -> None:
    """A publish the access policy refuses raises the same error type, codes, rule and fix over XDS and MHD."""
    seen: list[tuple[type[BaseException], tuple[str, ...], str | None, str | None]] = []
    for name in ("xds", "mhd"):
        with pytest.raises(AccessDenied) as caught:
            on(name).publish(b"x\n", patient=patient, document_type="labresult", mime_type="text/plain")
        denied = caught.value
        seen.append((type(denied), tuple(denied.codes), denied.rule, denied.fix))
    assert seen[0] == seen[1]
    assert seen[0][1:3] == (("LocalPolicyRestrictionError",), rule)


def test_unknown_document(vault: Vault) -> None:
    with pytest.raises(NotFoundError) as caught:
        vault.retrieve("1.2.3.4.5.6.7.8.9")
    assert "XDSDocumentUniqueIdError" in caught.value.codes
    with pytest.raises(HubRefused) as unverified:
        vault.retrieve("1.2.3.4.5.6.7.8.9", verify=False)
    assert "XDSDocumentUniqueIdError" in unverified.value.codes


def test_retrieve_many_partial(vault: Vault) -> None:
    content = unique_content("partial")
    receipt = vault.publish(content, patient=PATIENT, document_type="labresult", mime_type="text/plain")
    with pytest.raises(PartialRetrieveError) as caught:
        vault.retrieve_many([receipt.document.unique_id, "1.2.3.4.5.6.7.8.9"], verify=False)
    assert [d.content for d in caught.value.partial] == [content]
    assert "XDSDocumentUniqueIdError" in caught.value.codes


def test_mhd_speaks_fhir(on: Callable[[str], Vault], caplog: pytest.LogCaptureFixture) -> None:
    """Over MHD: ITI-65, ITI-67 and ITI-68 carry the operations; deprecate is an XDS ITI-57 (MHD has no status
    update)."""
    caplog.set_level(logging.INFO, logger="rsb_connector.client")
    vault = on("mhd")
    receipt = vault.publish(unique_content("fhir"), patient=PATIENT, document_type="labresult", mime_type="text/plain")
    vault.retrieve(receipt.document.unique_id)
    vault.deprecate(receipt.document.unique_id)
    done = [(r.transaction, r.status) for r in caplog.records if hasattr(r, "transaction")]
    # publish (after the access pre-check); retrieve by uniqueId = find the entry (to verify) + pre-check + Binary;
    # deprecate = find the entry + ITI-57
    precheck = "FHIR GET /$check-access"
    expected = [precheck, "ITI-65", "ITI-67", precheck, "ITI-68", "ITI-67", "ITI-57"]
    assert done == [(name, "Success") for name in expected]
    assert all(r.url.startswith("http://hub.test/fhir") for r in caplog.records if r.transaction.startswith("ITI-6"))


def test_bearer_token_renewed_on_401(on: Callable[[str], Vault]) -> None:
    """A token the hub does not accept is forgotten, a new one fetched, and the request sent once more."""
    vault = on("mhd")
    tokens = vault.client.tokens
    tokens.accept(AccessToken("not-a-token", time.time() + 3600, ""))
    assert vault.find(PATIENT, type_codes=["labresult"]) is not None
    renewed = tokens.current()
    assert renewed is not None
    assert renewed.value != "not-a-token"


class Flaky(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Wraps an in-process transport; raises the queued exceptions for requests to ``(method, path)`` first."""

    def __init__(self, inner: Any, failures: dict[tuple[str, str], list[Exception]]) -> None:
        self.inner = inner
        self.failures = failures
        self.calls: dict[tuple[str, str], int] = {}

    def _maybe_fail(self, request: httpx.Request) -> None:
        key = (request.method, request.url.path)
        self.calls[key] = self.calls.get(key, 0) + 1
        queued = self.failures.get(key)
        if queued:
            raise queued.pop(0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._maybe_fail(request)
        response: httpx.Response = self.inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._maybe_fail(request)
        response: httpx.Response = await self.inner.handle_async_request(request)
        return response


@pytest.fixture
def flaky(kind: str, hub: Hub, make_vault: Callable[..., Vault]) -> Iterator[Callable[..., tuple[Vault, Flaky]]]:
    """``flaky(protocol, {(method, path): [exceptions]})``: a client whose transport fails those requests first."""
    inners: list[SyncASGITransport] = []

    def make(name: str, failures: dict[tuple[str, str], list[Exception]]) -> tuple[Vault, Flaky]:
        inner: Any
        if kind == "sync":
            inner = SyncASGITransport(hub.app)
            inners.append(inner)
        else:
            inner = httpx.ASGITransport(app=hub.app)
        transport = Flaky(inner, failures)
        return make_vault(protocol=name, transport=transport), transport

    yield make
    for inner in inners:
        inner.close()


_FIND = {"xds": ("POST", "/xds/registry"), "mhd": ("GET", "/fhir/DocumentReference")}
_PUBLISH = {"xds": ("POST", "/xds/repository"), "mhd": ("POST", "/fhir")}


def test_queries_are_retried(protocol: str, flaky: Callable[..., tuple[Vault, Flaky]]) -> None:
    failures: list[Exception] = [httpx.ConnectError("refused"), httpx.RemoteProtocolError("dropped")]
    vault, transport = flaky(protocol, {_FIND[protocol]: failures})
    vault.find(PATIENT)
    assert transport.calls[_FIND[protocol]] == 3


def test_publish_retried_on_connect_errors_and_timeouts_only(
    protocol: str, flaky: Callable[..., tuple[Vault, Flaky]]
) -> None:
    vault, transport = flaky(protocol, {_PUBLISH[protocol]: [httpx.ConnectError("refused"), httpx.ReadTimeout("slow")]})
    content = unique_content("retried")
    receipt = vault.publish(content, patient=PATIENT, document_type="labresult", mime_type="text/plain")
    assert transport.calls[_PUBLISH[protocol]] == 3
    assert vault.retrieve(receipt.document.unique_id).content == content

    vault, transport = flaky(protocol, {_PUBLISH[protocol]: [httpx.RemoteProtocolError("dropped")]})
    with pytest.raises(TransportError, match="the connection broke"):
        vault.publish(b"x\n", patient=PATIENT, document_type="labresult", mime_type="text/plain")
    assert transport.calls[_PUBLISH[protocol]] == 1


def test_retrieve_of_a_deprecated_document(vault: Vault, protocol: str) -> None:
    """XDS still serves a Deprecated document; MHD answers 410 Gone (ITI-68), which is a NotFoundError."""
    content = unique_content("old")
    old = vault.publish(content, patient=PATIENT, document_type="labresult", mime_type="text/plain").document
    vault.replace(old.unique_id, unique_content("new"))
    if protocol == "xds":
        assert vault.retrieve(old.unique_id).content == content
        return
    with pytest.raises(NotFoundError) as caught:
        vault.retrieve(old.unique_id)
    assert "XDSRegistryDeprecatedDocumentError" in caught.value.codes
