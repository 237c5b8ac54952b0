"""The client's OAuth2 side: :class:`TokenSource` obtains bearer tokens from the hub's token endpoint with the
identity (``private_key_jwt``), keeps them, and renews them by itself — through the sans-IO core (both clients),
a plain httpx client, or as an ``httpx.Auth``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rsb_connector.client import AsyncVaultClient, TokenSource, VaultClient
from rsb_connector.errors import HubRefused, ProtocolError
from rsb_connector.hub.auth import require_bearer
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import SAMPLE_IDENTITIES, DevelopmentCa, PkiDescription
from rsb_connector.testing import SyncASGITransport

BASE = "http://hub.test"


async def whoami(request: Request) -> Response:
    caller = await require_bearer(request)
    return JSONResponse({"subject": caller.subject})


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[Hub]:
    built = build_hub(tmp_path_factory.mktemp("token-hub"), pki=rsb_pki, extra_routes=[Route("/fhir/whoami", whoami)])
    yield built
    built.close()


class Counting(SyncASGITransport):
    """Counts the token requests that reach the hub."""

    def __init__(self, app: object) -> None:
        super().__init__(app)
        self.token_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            self.token_requests += 1
        return super().handle_request(request)


@pytest.fixture
def transport(hub: Hub) -> Iterator[Counting]:
    counting = Counting(hub.app)
    yield counting
    counting.close()


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_token_is_fetched_once_and_renewed_before_it_expires(
    transport: Counting, rsb_identity: Callable[[str], Identity]
) -> None:
    clock = Clock()
    source = TokenSource(rsb_identity("gp"), f"{BASE}/oauth2/token", clock=clock, refresh_margin=30)
    with httpx.Client(transport=transport) as http:
        first = source.get(http)
        assert source.get(http) == first
        assert transport.token_requests == 1
        clock.now += 300 - 31  # still valid beyond the margin
        assert source.get(http) == first
        clock.now += 2  # within the margin: renewed
        second = source.get(http)
        assert second != first
        assert transport.token_requests == 2
        who = http.get(f"{BASE}/fhir/whoami", headers={"Authorization": f"Bearer {second}"})
        assert who.json() == {"subject": "nihii:12345625004"}


def test_the_auth_adds_the_token_and_renews_a_refused_one(
    transport: Counting, rsb_identity: Callable[[str], Identity]
) -> None:
    source = TokenSource(rsb_identity("nurse"), f"{BASE}/oauth2/token")
    with httpx.Client(transport=transport, auth=source.auth()) as http:
        assert http.get(f"{BASE}/fhir/whoami").json() == {"subject": "nihii:43120755401"}
        assert http.get(f"{BASE}/fhir/whoami").status_code == 200
        assert transport.token_requests == 1
        kept = source.current()
        assert kept is not None
        source.accept(type(kept)("revoked-or-forged", kept.expires_at, kept.scope))  # the hub will say 401
        assert http.get(f"{BASE}/fhir/whoami").json() == {"subject": "nihii:43120755401"}
        assert transport.token_requests == 2


def test_the_vault_clients_fetch_tokens_through_the_core(
    hub: Hub, transport: Counting, rsb_identity: Callable[[str], Identity], rsb_pki: PkiDescription
) -> None:
    gp = rsb_identity("gp")
    with VaultClient(BASE, transport=transport, identity=gp, trust=rsb_pki.trust_store()) as vault:
        token = vault.access_token()
        assert vault.access_token() == token
        assert transport.token_requests == 1

    async def run() -> tuple[str, str]:
        async with AsyncVaultClient(
            BASE, transport=httpx.ASGITransport(app=hub.app), identity=gp, trust=rsb_pki.trust_store()
        ) as vault:
            token = await vault.access_token()
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hub.app), auth=vault.tokens.auth()) as h:
                who = await h.get(f"{BASE}/fhir/whoami")
            return token, json.loads(who.content)["subject"]

    token, subject = asyncio.run(run())
    assert token.count(".") == 2
    assert subject == "nihii:12345625004"


def test_aget_fetches_with_an_async_client(hub: Hub, rsb_identity: Callable[[str], Identity]) -> None:
    source = TokenSource(rsb_identity("patient1"), f"{BASE}/oauth2/token")

    async def run() -> str:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=hub.app)) as http:
            return await source.aget(http)

    assert asyncio.run(run()) == source.current().value  # type: ignore[union-attr]


def test_a_refusal_by_the_token_endpoint_is_a_hub_refusal(transport: Counting, tmp_path: Path) -> None:
    rogue = DevelopmentCa.create(name="Rogue CA", key_size=2048)
    cert, key = rogue.issue_identity(SAMPLE_IDENTITIES[0])
    impostor = Identity(cert, key, [rogue.certificate])
    with VaultClient(BASE, transport=transport, identity=impostor) as vault, pytest.raises(HubRefused) as refused:
        vault.access_token()
    assert refused.value.code == "invalid_client"
    assert "not trusted" in str(refused.value)


def test_tokens_need_an_identity(transport: Counting) -> None:
    with VaultClient(BASE, transport=transport) as vault, pytest.raises(ValueError, match="identity"):
        vault.access_token()


def test_a_token_answer_that_is_not_a_bearer_token_is_a_protocol_error(rsb_identity: Callable[[str], Identity]) -> None:
    def endpoint(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "x", "token_type": "mac", "expires_in": 60})

    source = TokenSource(rsb_identity("gp"), f"{BASE}/oauth2/token")
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http, pytest.raises(ProtocolError, match="Bearer"):
        source.get(http)
