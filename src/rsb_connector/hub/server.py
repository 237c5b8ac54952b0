"""Assemble and run the mock hub: store + registry + ASGI app, served by uvicorn.

``build_hub`` is what ``rsb hub serve`` and the pytest plugin use; it opens (or creates) the data dir, applies
schema migrations, optionally seeds the synthetic population and writes ``seed.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from .app import Authenticator, HubConfig, create_app
from .population import seed as seed_population
from .population import write_seed_json
from .registry import Registry
from .store import SqliteStore

__all__ = ["Hub", "build_hub", "serve"]

log = logging.getLogger("rsb_connector.hub")


@dataclass(slots=True)
class Hub:
    """A ready hub: its ASGI ``app``, the ``registry`` behind it and the ``store`` under that."""

    app: Starlette
    registry: Registry
    store: SqliteStore
    data_dir: Path
    seed: dict[str, Any] | None

    def close(self) -> None:
        """Close the store (the app's shutdown hook does the same when served)."""
        self.store.close()


def build_hub(
    data_dir: Path,
    *,
    seed: bool = False,
    config: HubConfig | None = None,
    authenticator: Authenticator | None = None,
    max_results: int = 1000,
) -> Hub:
    """Open the store in ``data_dir`` (created if needed) and build the app over it."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SqliteStore.open(data_dir)
    description: dict[str, Any] | None = None
    if seed:
        description = seed_population(store)
        write_seed_json(data_dir, description)
    registry = Registry(store, max_results=max_results)
    app = create_app(
        registry,
        spool_dir=store.spool_dir,
        config=config,
        authenticator=authenticator,
        on_shutdown=[store.close],
    )
    return Hub(app=app, registry=registry, store=store, data_dir=data_dir, seed=description)


def serve(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    seed: bool = False,
    log_level: str = "info",
    max_results: int = 1000,
) -> None:
    """Run the hub until SIGINT/SIGTERM; uvicorn finishes in-flight requests before the store closes."""
    import uvicorn

    hub = build_hub(data_dir, seed=seed, max_results=max_results)
    log.info("mock hub data in %s; XDS.b at http://%s:%d/xds/repository and /xds/registry", data_dir, host, port)
    uvicorn.run(hub.app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)
