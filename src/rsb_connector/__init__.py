"""rsb-connector: connect a health app to the Brussels Health Network (Abrumet's vault).

The public API is listed in ``__all__``. The client and identity classes are loaded on first use, so importing
the pure core (``rsb_connector.identifiers``, ``rsb_connector.metadata``...) pulls in no HTTP or XML library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    AccessDenied,
    HubError,
    HubRefused,
    IntegrityError,
    InvalidIdentifier,
    MetadataError,
    Problem,
    ProtocolError,
    QueryError,
    RsbError,
    TransportError,
)
from .identifiers import Cbe, Nihii, Ssin

if TYPE_CHECKING:
    from .client import AsyncVaultClient, VaultClient
    from .security.identity import Identity

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AsyncVaultClient",
    "Cbe",
    "HubError",
    "HubRefused",
    "Identity",
    "IntegrityError",
    "InvalidIdentifier",
    "MetadataError",
    "Nihii",
    "Problem",
    "ProtocolError",
    "QueryError",
    "RsbError",
    "Ssin",
    "TransportError",
    "VaultClient",
    "__version__",
]

_LAZY = {
    "VaultClient": ".client",
    "AsyncVaultClient": ".client",
    "Identity": ".security.identity",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rsb_connector' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
