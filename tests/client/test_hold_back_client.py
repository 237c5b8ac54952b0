"""The SDK's held-back documents: ``vault.consent.hold_back`` / ``release`` (sync and async) against the seeded
in-process hub, and what the patient then sees."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import httpx
import pytest

from rsb_connector import AccessDenied, HubRefused, Identity
from rsb_connector.client import AsyncVaultClient, VaultClient
from rsb_connector.client._consent import DocumentHold, document_hold
from rsb_connector.errors import ProtocolError
from rsb_connector.hub.seed_consent import seed_document_unique_id
from rsb_connector.hub.server import Hub
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import SyncASGITransport

LUCAS = "87041213797"
LAB = seed_document_unique_id("labresult")
BASE = "http://rsb-hub.test"


def _sync(hub: Hub, pki: PkiDescription, identity: Identity) -> VaultClient:
    return VaultClient(BASE, transport=SyncASGITransport(hub.app), identity=identity, trust=pki.trust_store())


def test_the_author_holds_back_and_releases(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    until = date.today() + timedelta(days=14)
    with (
        _sync(rsb_hub, rsb_pki, rsb_identity("gp")) as gp,
        _sync(rsb_hub, rsb_pki, rsb_identity("patient1")) as lucas,
    ):
        assert LAB in [e.unique_id for e in lucas.find(LUCAS)]
        assert gp.consent.hold_back(f"urn:oid:{LAB}", until=until) == DocumentHold(LAB, True, until)
        assert LAB not in [e.unique_id for e in lucas.find(LUCAS)]
        assert LAB in [e.unique_id for e in gp.find(LUCAS)]
        assert gp.consent.hold_back(LAB) == DocumentHold(LAB, True, None)  # replaces the dated hold
        assert gp.consent.release(LAB) == DocumentHold(LAB, False, None)
        assert LAB in [e.unique_id for e in lucas.find(LUCAS)]
        with pytest.raises(HubRefused, match="404"):
            gp.consent.release(LAB)


def test_refusals(rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]) -> None:
    with (
        _sync(rsb_hub, rsb_pki, rsb_identity("gp")) as gp,
        _sync(rsb_hub, rsb_pki, rsb_identity("specialist")) as specialist,
    ):
        with pytest.raises(AccessDenied) as denied:
            specialist.consent.hold_back(LAB)
        assert "author" in denied.value.reason
        with pytest.raises(HubRefused, match="409"):
            gp.consent.hold_back(LAB, until=date.today() - timedelta(days=1))
        with pytest.raises(ValueError, match="uniqueId"):
            gp.consent.hold_back("  ")


async def test_the_async_client_holds_back_and_releases(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    transport = httpx.ASGITransport(app=rsb_hub.app)
    async with AsyncVaultClient(
        BASE, transport=transport, identity=rsb_identity("gp"), trust=rsb_pki.trust_store()
    ) as gp:
        held = await gp.consent.hold_back(LAB, until=date.today() + timedelta(days=3))
        assert held.held and held.until == date.today() + timedelta(days=3)
        released = await gp.consent.release(LAB)
        assert not released.held


def test_an_answer_that_is_not_a_hold_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        document_hold({"resourceType": "Parameters", "parameter": [{"name": "status", "valueCode": "maybe"}]})
