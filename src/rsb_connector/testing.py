"""pytest plugin for app developers: a fresh mock hub per test, in-process or as a real server, with signatures on.

Installed with rsb-connector and registered under the ``pytest11`` entry point, so a startup's own test suite gets
these fixtures without configuration:

``rsb_pki``
    a development PKI (:class:`~rsb_connector.security.pki.PkiDescription`), created once per test session: the CA
    every fixture hub trusts, the hub's identity, and sample identities (``gp``, ``specialist``, ``nurse``,
    ``physiotherapist``, ``pharmacist``, ``patient1``, ``patient2``, ``hospital``) who are seeded people.
``rsb_identity``
    ``rsb_identity("nurse")`` loads a sample identity of ``rsb_pki`` (cached for the session).
``rsb_hub``
    a fresh in-process hub (temporary store, seeded synthetic population, ``rsb_pki``): it refuses unsigned
    requests and signs its answers, like the real thing; ``rsb_hub.app`` is the ASGI app.
``rsb_client`` / ``rsb_async_client``
    a :class:`~rsb_connector.VaultClient` / :class:`~rsb_connector.AsyncVaultClient` wired to ``rsb_hub``
    through httpx's ASGI transport (no network, no ports), signing as the GP (``rsb_identity("gp")``) and checking
    the hub's signed answers against ``rsb_pki``'s CA.
``rsb_live_hub``
    a real hub process on a free loopback port with ``rsb_pki`` (session-scoped: started once), for code that
    needs a URL; ``rsb_live_hub.client()`` gives a signed client for it.
``rsb_seed``
    the seeded population (the content of ``seed.json``): patients and professionals to use in tests.

:class:`LiveHub` is also usable on its own (benchmarks, scripts): it starts ``rsb hub serve`` as a child process,
waits until ``/healthz`` answers, and stops it (SIGTERM) or kills it (SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import httpx
import pytest

if TYPE_CHECKING:
    from .client import AsyncVaultClient, VaultClient
    from .hub.server import Hub
    from .security.identity import Identity
    from .security.pki import PkiDescription

__all__ = ["LiveHub", "SyncASGITransport", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveHub:
    """``rsb hub serve`` as a child process on a free loopback port.

    Args:
        data_dir: the store (a temporary directory, deleted by :meth:`cleanup`, when ``None``).
        seed: ``--seed``.
        pki: ``--pki``: a development PKI or its directory; ``None`` lets the hub use (and create) ``data_dir/pki``.
        allow_unsigned: ``--allow-unsigned``.
        tls: ``--tls``: HTTPS with client certificates (:attr:`url` is then ``https://``).
        extra_args: more ``rsb hub serve`` arguments.

    Example:
        >>> with LiveHub(seed=True) as hub:            # doctest: +SKIP
        ...     with hub.client("gp") as vault:
        ...         vault.find(patient)
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        seed: bool = True,
        pki: PkiDescription | str | Path | None = None,
        allow_unsigned: bool = False,
        tls: bool = False,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        log_path: Path | None = None,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="rsb-hub-")
            data_dir = Path(self._tmp.name)
        self.data_dir = Path(data_dir)
        self.seed = seed
        self._pki = pki
        self.allow_unsigned = allow_unsigned
        self.tls = tls
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.log_path = log_path or self.data_dir / "hub.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the hub, e.g. ``http://127.0.0.1:41234`` (``https://`` with ``tls``)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def pki_dir(self) -> Path:
        """The PKI directory the hub uses."""
        from .security.pki import PkiDescription

        if isinstance(self._pki, PkiDescription):
            return self._pki.directory
        return Path(self._pki) if self._pki is not None else self.data_dir / "pki"

    @property
    def pki(self) -> PkiDescription:
        """The hub's development PKI (once started, or when given)."""
        from .security.pki import PkiDescription, load_pki

        if not isinstance(self._pki, PkiDescription):
            self._pki = load_pki(self.pki_dir)
        return self._pki

    def identity(self, name: str = "gp") -> Identity:
        """A sample identity of the hub's PKI."""
        return self.pki.load_identity(name)

    def client(self, identity: str | Identity | None = "gp", **kwargs: Any) -> VaultClient:
        """A :class:`~rsb_connector.VaultClient` for this hub: signing as ``identity`` (a sample identity's name, an
        :class:`~rsb_connector.Identity`, or ``None`` for unsigned), checking the hub's answers against the PKI's
        CA, and over TLS presenting the identity as client certificate."""
        from .client import VaultClient

        return VaultClient(self.url, **self._client_options(identity, kwargs))

    def async_client(self, identity: str | Identity | None = "gp", **kwargs: Any) -> AsyncVaultClient:
        """The :class:`~rsb_connector.AsyncVaultClient` twin of :meth:`client`."""
        from .client import AsyncVaultClient

        return AsyncVaultClient(self.url, **self._client_options(identity, kwargs))

    def _client_options(self, identity: str | Identity | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        who = self.identity(identity) if isinstance(identity, str) else identity
        options: dict[str, Any] = {"identity": who, "trust": self.pki.trust_store()}
        if self.tls:
            options["verify"] = str(self.pki.ca_cert)
            options["cert"] = who if who is not None else self._hub_cert()
        options.update(kwargs)
        return options

    def _hub_cert(self) -> tuple[str, str, str]:
        hub = self.pki.hub
        return str(self.pki.path(hub.pem_cert)), str(self.pki.path(hub.pem_key)), hub.password

    def _health_client(self) -> httpx.Client:
        if not self.tls:
            return httpx.Client(timeout=1.0)
        from .client._tls import ssl_context

        return httpx.Client(timeout=1.0, verify=ssl_context(str(self.pki.ca_cert), self._hub_cert()))

    def start(self) -> LiveHub:
        """Start the process and wait until ``/healthz`` answers (raises RuntimeError with the log otherwise)."""
        args = [sys.executable, "-m", "rsb_connector.cli", "hub", "serve", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self._pki is not None:
            args += ["--pki", str(self.pki_dir)]
        if self.allow_unsigned:
            args.append("--allow-unsigned")
        if self.tls:
            args.append("--tls")
        if self.seed:
            args.append("--seed")
        args += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + self.startup_timeout
        health: httpx.Client | None = None
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the hub exited with {self.process.returncode}:\n{self.log()}")
                if health is None and (not self.tls or (self.pki_dir / "identities.json").exists()):
                    health = self._health_client()
                if health is not None:
                    with contextlib.suppress(httpx.HTTPError):
                        if health.get(f"{self.url}/healthz").status_code == 200:
                            return self
                time.sleep(0.05)
        finally:
            if health is not None:
                health.close()
        self.kill()
        raise RuntimeError(f"the hub did not answer /healthz within {self.startup_timeout} s:\n{self.log()}")

    def log(self) -> str:
        """What the hub process printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 15.0) -> int | None:
        """Graceful stop (SIGTERM), then SIGKILL after ``timeout``; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """Kill the process at once (SIGKILL), as a crash would."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self.process.wait()

    def cleanup(self) -> None:
        """Stop the hub and delete its temporary data dir (when this object created it)."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LiveHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()


class SyncASGITransport(httpx.BaseTransport):
    """Serves a sync ``httpx.Client`` (or :class:`~rsb_connector.VaultClient`) from an ASGI app, in-process.

    ``httpx.ASGITransport`` only serves async clients; this runs it on a private event loop thread. Responses are
    read whole, which suits tests (use :class:`LiveHub` to measure streaming).
    """

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, httpx.Headers, bytes]:
            inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._inner.handle_async_request(inner)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = self._portal.call(call)
        return httpx.Response(status, headers=headers, content=content)

    def close(self) -> None:
        self._stack.close()


# ------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def rsb_pki(tmp_path_factory: pytest.TempPathFactory) -> PkiDescription:
    """A development PKI, created once per test session (``rsb hub pki init``; a 2048-bit CA key for speed)."""
    from .security.pki import init_pki

    return init_pki(tmp_path_factory.mktemp("rsb-pki") / "pki", ca_key_size=2048)


@pytest.fixture(scope="session")
def rsb_identity(rsb_pki: PkiDescription) -> Callable[[str], Identity]:
    """``rsb_identity("gp")``: a sample identity of ``rsb_pki`` (``gp``, ``specialist``, ``nurse``,
    ``physiotherapist``, ``pharmacist``, ``patient1``, ``patient2``, ``hospital``), loaded once per session."""
    loaded: dict[str, Identity] = {}

    def load(name: str) -> Identity:
        if name not in loaded:
            loaded[name] = rsb_pki.load_identity(name)
        return loaded[name]

    return load


@pytest.fixture
def rsb_hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[Hub]:
    """A fresh in-process mock hub with a temporary store, the seeded population and ``rsb_pki``: unsigned
    requests are refused and answers are signed."""
    from .hub.server import build_hub

    hub = build_hub(tmp_path_factory.mktemp("rsb-hub"), seed=True, pki=rsb_pki)
    try:
        yield hub
    finally:
        hub.close()


@pytest.fixture
def rsb_seed(rsb_hub: Hub) -> dict[str, Any]:
    """The seeded population of ``rsb_hub`` (the content of its ``seed.json``)."""
    assert rsb_hub.seed is not None
    return rsb_hub.seed


@pytest.fixture
def rsb_client(rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]) -> Iterator[VaultClient]:
    """A :class:`~rsb_connector.VaultClient` talking to ``rsb_hub`` in-process (no network), signing as the GP."""
    from .client import VaultClient

    transport = SyncASGITransport(rsb_hub.app)
    with VaultClient(
        "http://rsb-hub.test", transport=transport, identity=rsb_identity("gp"), trust=rsb_pki.trust_store()
    ) as client:
        yield client


@pytest.fixture
async def rsb_async_client(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> AsyncIterator[AsyncVaultClient]:
    """An :class:`~rsb_connector.AsyncVaultClient` talking to ``rsb_hub`` through ``httpx.ASGITransport``, signing
    as the GP."""
    from .client import AsyncVaultClient

    transport = httpx.ASGITransport(app=rsb_hub.app)
    async with AsyncVaultClient(
        "http://rsb-hub.test", transport=transport, identity=rsb_identity("gp"), trust=rsb_pki.trust_store()
    ) as client:
        yield client


@pytest.fixture(scope="session")
def rsb_live_hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription) -> Iterator[LiveHub]:
    """A real hub process on a free loopback port with ``rsb_pki``, started once per test session."""
    hub = LiveHub(tmp_path_factory.mktemp("rsb-live-hub"), seed=True, pki=rsb_pki)
    hub.start()
    try:
        yield hub
    finally:
        hub.cleanup()
        if os.environ.get("RSB_KEEP_HUB_LOG"):
            print(hub.log())
