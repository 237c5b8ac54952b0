"""rsb-connector: connect a health app to the Brussels Health Network (Abrumet's vault).

The public API is listed in ``__all__``; everything else lives in private-by-convention submodules.
"""

from .errors import (
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

__version__ = "0.1.0"

__all__ = [
    "HubError",
    "HubRefused",
    "IntegrityError",
    "InvalidIdentifier",
    "MetadataError",
    "Problem",
    "ProtocolError",
    "QueryError",
    "RsbError",
    "TransportError",
    "__version__",
]
