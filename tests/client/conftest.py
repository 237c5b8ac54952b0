"""Fixtures of the client tests: in-process hubs, a real-socket hub, and one adapter that runs the same scenario
through :class:`VaultClient` or :class:`AsyncVaultClient`.

The hubs run with the session's development PKI (the plugin's ``rsb_pki``): they refuse unsigned requests and sign
their answers; clients sign as the GP and check the hub's signatures unless a test asks otherwise."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from rsb_connector.client import AsyncVaultClient, VaultClient
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import SyncASGITransport

PATIENT = SEED_PATIENTS[0].ssin
"""A patient registered in the seeded hub."""
OTHER_PATIENT = SEED_PATIENTS[1].ssin
UNREGISTERED = "17073003384"
"""A valid SSIN the hub does not know (XDSUnknownPatientId)."""


class Vault:
    """Calls a sync or an async client the same way: every method returns its result (awaited on a private loop)."""

    def __init__(self, client: VaultClient | AsyncVaultClient) -> None:
        self.client = client
        self.loop = asyncio.new_event_loop() if isinstance(client, AsyncVaultClient) else None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)
        loop = self.loop
        if loop is None:
            return method  # type: ignore[no-any-return]

        def call(*args: Any, **kwargs: Any) -> Any:
            return loop.run_until_complete(method(*args, **kwargs))

        return call

    def close(self) -> None:
        if self.loop is None:
            assert isinstance(self.client, VaultClient)
            self.client.close()
            return
        assert isinstance(self.client, AsyncVaultClient)
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Which client a test runs through."""
    return str(request.param)


@pytest.fixture
def make_vault(
    kind: str, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Iterator[Callable[..., Vault]]:
    """Build a client of the current ``kind`` (``app=`` serves it from an ASGI app in-process); it signs as the GP
    and checks the hub's signatures against the PKI's CA unless ``signed=False``."""
    opened: list[Vault] = []
    sync_transports: list[SyncASGITransport] = []

    def make(base_url: str = "http://hub.test", *, app: Any = None, signed: bool = True, **kwargs: Any) -> Vault:
        kwargs.setdefault("backoff", 0.0)
        if signed:
            kwargs.setdefault("identity", rsb_identity("gp"))
            kwargs.setdefault("trust", rsb_pki.trust_store())
        client: VaultClient | AsyncVaultClient
        if kind == "sync":
            if app is not None:
                transport = SyncASGITransport(app)
                sync_transports.append(transport)
                kwargs["transport"] = transport
            client = VaultClient(base_url, **kwargs)
        else:
            if app is not None:
                kwargs["transport"] = httpx.ASGITransport(app=app)
            client = AsyncVaultClient(base_url, **kwargs)
        vault = Vault(client)
        opened.append(vault)
        return vault

    yield make
    for vault in opened:
        vault.close()
    for transport in sync_transports:
        transport.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[Hub]:
    """A seeded hub with the session PKI, in-process (one per test module)."""
    built = build_hub(tmp_path_factory.mktemp("hub"), seed=True, pki=rsb_pki)
    yield built
    built.close()


@pytest.fixture
def vault(make_vault: Callable[..., Vault], hub: Hub) -> Vault:
    """A client of the current ``kind`` talking to the in-process hub."""
    return make_vault(app=hub.app)


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="session")
def socket_hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[str]:
    """A seeded hub with the session PKI served by uvicorn on a free local port (in a thread); yields its base URL."""
    data_dir: Path = tmp_path_factory.mktemp("socket-hub")
    built = build_hub(data_dir, seed=True, pki=rsb_pki)
    sock = _free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(built.app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"
