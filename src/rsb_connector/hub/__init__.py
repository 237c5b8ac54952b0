"""The mock hub: an XDS.b Document Registry + Repository (and later MHD) over one store.

- :mod:`rsb_connector.hub.store` — persistence behind the :class:`~rsb_connector.hub.store.Store` protocol;
  :class:`~rsb_connector.hub.store.SqliteStore` (stdlib ``sqlite3``, WAL) is the embedded default, documents are
  content-addressed files beside the database.
- :mod:`rsb_connector.hub.registry` — ITI-41 / ITI-18 / ITI-43 / ITI-57 semantics on top of a store, with the
  exact XDS error codes; no HTTP and no XML (the routes and the codec sit on top).
- :mod:`rsb_connector.hub.population` — the documented synthetic population the hub can be seeded with.
- :mod:`rsb_connector.hub.auth` — who is calling: WS-Security on SOAP, the OAuth2 token endpoint and
  ``require_bearer`` for FHIR routes.
- :mod:`rsb_connector.hub.connector_validation` — connector validation: every message received graded against the
  rules and recorded (masked, bounded), served at ``/conformance/report``.
"""
