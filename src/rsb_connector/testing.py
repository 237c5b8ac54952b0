"""pytest plugin for app developers: a fresh mock hub per test, in-process or as a real server.

Installed with rsb-connector and registered under the ``pytest11`` entry point, so a startup's own test suite gets
these fixtures without configuration:

``rsb_hub``
    a fresh in-process hub (temporary store, seeded synthetic population); ``rsb_hub.app`` is the ASGI app.
``rsb_client`` / ``rsb_async_client``
    a :class:`~rsb_connector.VaultClient` / :class:`~rsb_connector.AsyncVaultClient` wired to ``rsb_hub``
    through httpx's ASGI transport: no network, no ports.
``rsb_live_hub``
    a real hub process on a free loopback port (session-scoped: started once), for code that needs a URL.
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
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import httpx
import pytest

if TYPE_CHECKING:
    from .client import AsyncVaultClient, VaultClient
    from .hub.server import Hub

__all__ = ["LiveHub", "SyncASGITransport", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveHub:
    """``rsb hub serve`` as a child process on a free loopback port.

    Example:
        >>> with LiveHub(seed=True) as hub:            # doctest: +SKIP
        ...     VaultClient(hub.url).find(patient)
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        seed: bool = True,
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
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.log_path = log_path or self.data_dir / "hub.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the hub, e.g. ``http://127.0.0.1:41234``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveHub:
        """Start the process and wait until ``/healthz`` answers (raises RuntimeError with the log otherwise)."""
        args = [sys.executable, "-m", "rsb_connector.cli", "hub", "serve", "--host", "127.0.0.1"]
        args += ["--port", str(self.port), "--data-dir", str(self.data_dir), *self.extra_args]
        if self.seed:
            args.append("--seed")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.05)
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


@pytest.fixture
def rsb_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A fresh in-process mock hub with a temporary store and the seeded population."""
    from .hub.server import build_hub

    hub = build_hub(tmp_path_factory.mktemp("rsb-hub"), seed=True)
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
def rsb_client(rsb_hub: Hub) -> Iterator[VaultClient]:
    """A :class:`~rsb_connector.VaultClient` talking to ``rsb_hub`` in-process (no network)."""
    from .client import VaultClient

    with VaultClient("http://rsb-hub.test", transport=SyncASGITransport(rsb_hub.app)) as client:
        yield client


@pytest.fixture
async def rsb_async_client(rsb_hub: Hub) -> AsyncIterator[AsyncVaultClient]:
    """An :class:`~rsb_connector.AsyncVaultClient` talking to ``rsb_hub`` through ``httpx.ASGITransport``."""
    from .client import AsyncVaultClient

    transport = httpx.ASGITransport(app=rsb_hub.app)
    async with AsyncVaultClient("http://rsb-hub.test", transport=transport) as client:
        yield client


@pytest.fixture(scope="session")
def rsb_live_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveHub]:
    """A real hub process on a free loopback port, started once per test session."""
    hub = LiveHub(tmp_path_factory.mktemp("rsb-live-hub"), seed=True)
    hub.start()
    try:
        yield hub
    finally:
        hub.cleanup()
        if os.environ.get("RSB_KEEP_HUB_LOG"):
            print(hub.log())
