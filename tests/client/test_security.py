"""The client's WS-Security: it signs what it sends, refuses to sign an ITI-41 whose attachments it cannot bind,
and trusts only hub answers whose signature verifies — reading nothing but their signed parts."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from rsb_connector.client import VaultClient
from rsb_connector.errors import HubRefused, MetadataError, ProtocolError, TransportError
from rsb_connector.hub.server import Hub
from rsb_connector.metadata.builder import new_document
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import SAMPLE_IDENTITIES, DevelopmentCa, PkiDescription
from rsb_connector.security.wssec import WSSE, WSU, WsSecurityVerifier, sign_envelope
from rsb_connector.security.xml import parse_xml
from rsb_connector.testing import SyncASGITransport
from rsb_connector.xds import soap

from . import wire
from .conftest import PATIENT, Vault

MakeVault = Callable[..., Vault]


class Rewriting(SyncASGITransport):
    """Passes requests to the hub and rewrites its answers on the way back (a man in the middle)."""

    def __init__(self, app: Any, rewrite: Callable[[bytes], bytes]) -> None:
        super().__init__(app)
        self.rewrite = rewrite

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        return httpx.Response(response.status_code, headers=response.headers, content=self.rewrite(response.content))


@pytest.fixture
def signed_client(
    hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Callable[[Callable[[bytes], bytes]], VaultClient]:
    opened: list[VaultClient] = []

    def make(rewrite: Callable[[bytes], bytes]) -> VaultClient:
        client = VaultClient(
            "http://hub.test",
            transport=Rewriting(hub.app, rewrite),
            identity=rsb_identity("gp"),
            trust=rsb_pki.trust_store(),
            retries=0,
        )
        opened.append(client)
        return client

    yield make  # type: ignore[misc]
    for client in opened:
        client.close()


def test_a_tampered_answer_is_refused(signed_client: Callable[[Callable[[bytes], bytes]], VaultClient]) -> None:
    vault = signed_client(lambda body: body.replace(b"ResponseStatusType:Success", b"ResponseStatusType:Failure"))
    with pytest.raises(ProtocolError, match="WS-Security verification") as caught:
        vault.find(PATIENT)
    assert "FailedCheck" in str(caught.value)


def test_an_answer_signed_by_someone_else_is_refused(
    signed_client: Callable[[Callable[[bytes], bytes]], VaultClient],
) -> None:
    rogue = DevelopmentCa.create(name="Rogue CA", key_size=2048)
    cert, key = rogue.issue_identity(SAMPLE_IDENTITIES[-1])
    impostor = Identity(cert, key, [rogue.certificate])

    def resign(body: bytes) -> bytes:
        root = parse_xml(body)
        header = root[0]
        header.remove(header[0])  # the hub's Security header
        for element in root.iter():
            element.attrib.pop(f"{{{WSU}}}Id", None)
        return soap.serialize(sign_envelope(root, impostor))

    with pytest.raises(ProtocolError, match="InvalidSecurityToken"):
        signed_client(resign).find(PATIENT)


def test_an_unsigned_answer_is_refused_but_its_fault_is_told(make_vault: MakeVault) -> None:
    vault = make_vault(wire.BASE, retries=0)  # signed, and checking answers
    with respx.mock(assert_all_called=True) as router:
        router.post(wire.REGISTRY).mock(side_effect=lambda request: wire.fault(request, "the registry is on fire"))
        with pytest.raises(ProtocolError) as caught:
            vault.find(PATIENT)
    assert "InvalidSecurity" in str(caught.value)
    assert "unverified answer is a fault saying: the registry is on fire" in str(caught.value)


def test_a_signed_answer_to_another_request_is_refused(
    hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    captured: list[httpx.Response] = []

    class Capture(SyncASGITransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            captured.append(super().handle_request(request))
            raise httpx.ReadTimeout("the answer was withheld", request=request)

    class Deliver(SyncASGITransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            super().handle_request(request)
            return captured[0]  # a genuine, fresh, signed answer — to another message

    options: dict[str, Any] = {"identity": rsb_identity("gp"), "trust": rsb_pki.trust_store(), "retries": 0}
    with (
        VaultClient("http://hub.test", transport=Capture(hub.app), **options) as first,
        pytest.raises(TransportError, match="read timeout"),
    ):
        first.find(PATIENT)
    with (
        VaultClient("http://hub.test", transport=Deliver(hub.app), **options) as second,
        pytest.raises(ProtocolError, match="relates to message"),
    ):
        second.find(PATIENT)


def test_a_signed_publish_needs_hash_and_size(make_vault: MakeVault) -> None:
    vault = make_vault(wire.BASE)
    with respx.mock(assert_all_called=False) as router:
        route = router.post(wire.REPOSITORY)

        class OneWay(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                return 0

        stream = io.BufferedReader(OneWay())
        entry = new_document(
            stream, patient=PATIENT, document_type="note", mime_type="text/plain", compute_digest=False
        )
        with pytest.raises(MetadataError) as refused:
            vault.publish_many([(stream, entry)])
        assert not route.called
    assert refused.value.codes == ["XDSRepositoryMetadataError"]
    assert "signed submission" in str(refused.value)


def test_a_seekable_stream_gets_its_hash_and_size_before_signing(make_vault: MakeVault, hub: Hub) -> None:
    vault = make_vault(app=hub.app)
    content = b"measured before signing " * 100
    stream = io.BytesIO(content)
    entry = new_document(stream, patient=PATIENT, document_type="note", mime_type="text/plain", compute_digest=False)
    assert entry.hash is None
    receipt = vault.publish_many([(stream, entry)])
    assert receipt.document.size == len(content)
    assert vault.retrieve(receipt.document.unique_id).content == content


def test_an_unsigned_client_is_refused_by_a_signing_hub(make_vault: MakeVault, hub: Hub) -> None:
    vault = make_vault(app=hub.app, signed=False)
    with pytest.raises(HubRefused) as refused:
        vault.find(PATIENT)
    assert refused.value.code == "InvalidSecurity"


def test_a_signed_fault_names_its_code_with_its_namespace(
    make_vault: MakeVault, hub: Hub, rsb_pki: PkiDescription
) -> None:
    """An unsigned request to a signing hub: the hub's fault is signed, the client verifies it and reads only the
    signed copy, in which the Subcode's ``wsse`` prefix still resolves (the hub's Body reference lists it in an
    exclusive C14N PrefixList)."""
    vault = make_vault(app=hub.app, signed=False, trust=rsb_pki.trust_store())
    with pytest.raises(HubRefused) as refused:
        vault.find(PATIENT)
    assert refused.value.code == "InvalidSecurity"
    assert refused.value.fault_code == f"{{{WSSE}}}InvalidSecurity"


def test_the_client_signs_with_its_identity(make_vault: MakeVault, rsb_pki: PkiDescription) -> None:
    vault = make_vault(wire.BASE, retries=0, trust=None)  # signs, but does not check the (unsigned) mock answers
    seen: list[bytes] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        return wire.query_response(request)

    with respx.mock() as router:
        router.post(wire.REGISTRY).mock(side_effect=answer)
        vault.find(PATIENT)
    verified = WsSecurityVerifier(rsb_pki.trust_store(), require_signed_addressing=True).verify(parse_xml(seen[0]))
    assert verified.signer.client_id == "nihii:12345625004"
    assert verified.action == "urn:ihe:iti:2007:RegistryStoredQuery"
