"""Assemble and run the mock hub: store + registry + ASGI app, served by uvicorn.

``build_hub`` is what ``rsb hub serve`` and the pytest plugin use; it opens (or creates) the data dir, applies
schema migrations, loads the PKI (trust store + the hub's identity), optionally seeds the synthetic population and
writes ``seed.json``.

Security is on by default: without ``pki`` and without ``allow_unsigned`` the hub uses the development PKI in
``<data_dir>/pki`` and creates it there (``rsb hub pki init``) when it does not exist yet. Only
``allow_unsigned=True`` without a PKI gives a hub that verifies nothing and signs nothing.

Connector validation (:mod:`rsb_connector.hub.connector_validation`: every message graded and recorded, served at
``/conformance/report``) is off for ``build_hub`` (the pytest plugin's hubs) and on by default for ``serve`` (a
development hub).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from ..security.pki import DESCRIPTION_FILE, PkiDescription, init_pki, load_pki
from .app import Authenticator, HubConfig, create_app
from .audit import AuditTrail
from .auth import HubSecurity, require_bearer
from .connector_validation import ConnectorValidator
from .consent import ConsentRegistry
from .consent_api import consent_routes
from .enforcement import Enforcer
from .fhir import fhir_routes
from .population import seed as seed_population
from .population import write_seed_json
from .registry import Registry
from .seed_consent import seed_consent
from .store import SqliteStore

__all__ = ["Hub", "build_hub", "default_pki", "serve"]

log = logging.getLogger("rsb_connector.hub")


@dataclass(slots=True)
class Hub:
    """A ready hub: its ASGI ``app``, the ``registry`` behind it and the ``store`` under that; ``pki`` and
    ``security`` when it verifies signatures (None for an anonymous hub)."""

    app: Starlette
    registry: Registry
    store: SqliteStore
    data_dir: Path
    seed: dict[str, Any] | None
    pki: PkiDescription | None = None
    security: HubSecurity | None = None
    consents: ConsentRegistry | None = None
    audit: AuditTrail | None = None
    enforcer: Enforcer | None = None
    connector: ConnectorValidator | None = None
    """The connector-validation recorder when it is on."""

    def close(self) -> None:
        """Close the store (the app's shutdown hook does the same when served)."""
        self.store.close()


def default_pki(data_dir: Path) -> tuple[PkiDescription, bool]:
    """The development PKI in ``data_dir/pki``, created when missing; returns it and whether it was created now."""
    directory = Path(data_dir) / "pki"
    if (directory / DESCRIPTION_FILE).exists():
        return load_pki(directory), False
    return init_pki(directory), True


def build_hub(
    data_dir: Path,
    *,
    seed: bool = False,
    config: HubConfig | None = None,
    authenticator: Authenticator | None = None,
    max_results: int = 1000,
    pki: PkiDescription | str | Path | None = None,
    allow_unsigned: bool = False,
    security: HubSecurity | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    enforce_consent: bool | None = None,
    connector_validation: bool = False,
    schemas: Path | None = None,
) -> Hub:
    """Open the store in ``data_dir`` (created if needed) and build the app over it.

    Args:
        data_dir: the store (and, by default, the PKI in ``data_dir/pki``).
        seed: register the synthetic population (and the PKI's patients) and write ``seed.json``.
        config: HTTP-layer limits.
        authenticator: replaces the WS-Security authenticator (tests).
        max_results: stored query result cap.
        pki: the development PKI (a :class:`~rsb_connector.security.pki.PkiDescription` or its directory) whose CA
            the hub trusts and whose hub identity signs the answers and access tokens. ``None``: ``data_dir/pki``,
            created when missing — unless ``allow_unsigned`` is set, which then gives an anonymous hub.
        allow_unsigned: accept unsigned requests as the anonymous caller (signed ones are still verified when
            there is a PKI). For a first local try only.
        security: a ready :class:`~rsb_connector.hub.auth.HubSecurity` (another trust store or identity); wins over
            ``pki``.
        extra_routes: more routes (e.g. the FHIR ones), after the XDS, health and token routes.
        enforce_consent: apply the Belgian consent rules (consent, exclusions, therapeutic links, access matrix,
            access rights, confidentiality, held-back documents) to every operation and audit it. ``None``: on
            whenever callers are authenticated (a PKI and no ``allow_unsigned``), since the rules need to know
            who asks; an anonymous first-try hub does not enforce them.
        connector_validation: grade and record every message received (SOAP, FHIR, token requests) and serve the
            result at ``GET /conformance/report`` (:mod:`rsb_connector.hub.connector_validation`).
        schemas: the folder of the official IHE XDS schemas (``ihe-xds-schemas``) the schema check validates SOAP
            Bodies with; None: the schema check is not run (the report says so). Needs ``connector_validation``.

    Raises:
        ValueError: ``schemas`` without ``connector_validation``.
        SchemaUnavailable: ``schemas`` does not hold the XDS schemas.
    """
    if schemas is not None and not connector_validation:
        raise ValueError("schemas are used by connector validation only: pass connector_validation=True as well")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    description_pki: PkiDescription | None = None
    if security is None:
        if isinstance(pki, PkiDescription):
            description_pki = pki
        elif pki is not None:
            description_pki = load_pki(pki)
        elif not allow_unsigned:
            description_pki, created = default_pki(data_dir)
            if created:
                log.info("created a development PKI in %s", description_pki.directory)
        if description_pki is not None:
            security = HubSecurity.from_pki(description_pki, allow_unsigned=allow_unsigned)
    if enforce_consent is None:
        enforce_consent = security is not None and not allow_unsigned
    store = SqliteStore.open(data_dir)
    description: dict[str, Any] | None = None
    try:
        audit = AuditTrail(store)
        consents = ConsentRegistry(store, audit=audit)
        enforcer = Enforcer(consents, audit) if enforce_consent else None
        registry = Registry(store, max_results=max_results, enforcer=enforcer)
        if seed:
            description = seed_population(store, pki=description_pki)
            description["consent"] = seed_consent(store, consents, registry=registry)
            write_seed_json(data_dir, description)
        connector = (
            ConnectorValidator(store, schemas=schemas, value_sets=registry.value_sets) if connector_validation else None
        )
        app = create_app(
            registry,
            spool_dir=store.spool_dir,
            config=config,
            authenticator=authenticator,
            security=security,
            # MHD (FHIR R4) over the same registry; its catch-all 404 for unknown /fhir paths comes last.
            extra_routes=[
                *extra_routes,
                # consent management (Consent, CareTeam, AuditEvent, $check-access) before the FHIR catch-all
                *consent_routes(consents, audit, enforcer, authenticate=require_bearer),
                *fhir_routes(registry, authenticate=require_bearer),
            ],
            on_shutdown=[store.close],
            connector=connector,
        )
    except BaseException:
        store.close()
        raise
    return Hub(
        app=app,
        registry=registry,
        store=store,
        data_dir=data_dir,
        seed=description,
        pki=description_pki,
        security=security,
        consents=consents,
        audit=audit,
        enforcer=enforcer,
        connector=connector,
    )


def serve(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    seed: bool = False,
    log_level: str = "info",
    max_results: int = 1000,
    pki: PkiDescription | str | Path | None = None,
    allow_unsigned: bool = False,
    tls: bool = False,
    config: HubConfig | None = None,
    connector_validation: bool = True,
    schemas: Path | None = None,
) -> None:
    """Run the hub until SIGINT/SIGTERM; uvicorn finishes in-flight requests before the store closes.

    With ``tls`` the hub serves HTTPS with its PKI certificate and REQUIRES a client certificate issued by the
    PKI's CA (mutual TLS); it needs a PKI. Connector validation is on by default (a development hub): every message
    is graded and recorded (``GET /conformance/report``); ``schemas`` adds the XSD check.
    """
    import uvicorn

    hub = build_hub(
        data_dir,
        seed=seed,
        max_results=max_results,
        pki=pki,
        allow_unsigned=allow_unsigned,
        config=config,
        connector_validation=connector_validation,
        schemas=schemas,
    )
    scheme = "https" if tls else "http"
    tls_options: dict[str, Any] = {}
    if tls:
        if hub.pki is None:
            hub.close()
            raise ValueError("--tls needs a PKI (the hub's certificate and the CA that issues client certificates)")
        tls_options = {
            "ssl_certfile": str(hub.pki.path(hub.pki.hub.pem_cert)),
            "ssl_keyfile": str(hub.pki.path(hub.pki.hub.pem_key)),
            "ssl_keyfile_password": hub.pki.hub.password,
            "ssl_ca_certs": str(hub.pki.ca_cert),
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
        }
    log.info("mock hub data in %s; XDS.b at %s://%s:%d/xds/repository and /xds/registry", data_dir, scheme, host, port)
    uvicorn.run(hub.app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10, **tls_options)
