"""The SDK client: what an application embeds to publish, find and fetch documents.

:class:`VaultClient` (blocking) and :class:`AsyncVaultClient` (asyncio) are twins over one sans-IO core, shaped
like ``httpx.Client`` / ``httpx.AsyncClient``::

    from rsb_connector import Identity
    from rsb_connector.client import VaultClient

    me = Identity.load("gp.p12", "password")            # your eHealth certificate (PKCS#12)
    with VaultClient("http://127.0.0.1:8080", identity=me, trust="ca.pem") as vault:
        receipt = vault.publish(b"Hb 14 g/dl", patient="87041213797", document_type="labresult",
                                mime_type="text/plain")
        entries = vault.find("87041213797")
        doc = vault.retrieve(receipt.document.unique_id)
"""

from ..errors import AccessDenied
from ._async import AsyncVaultClient
from ._auth import AccessToken, BearerAuth, TokenSource
from ._retry import RetryPolicy, Safety
from ._sync import VaultClient
from .models import (
    DocumentOptions,
    DocumentReceipt,
    HttpStatusError,
    NewDocument,
    NotFoundError,
    PartialRetrieveError,
    Receipt,
    RelatedDocuments,
    RetrievedDocument,
    SubmissionSetContents,
)

__all__ = [
    "AccessDenied",
    "AccessToken",
    "AsyncVaultClient",
    "BearerAuth",
    "DocumentOptions",
    "DocumentReceipt",
    "HttpStatusError",
    "NewDocument",
    "NotFoundError",
    "PartialRetrieveError",
    "Receipt",
    "RelatedDocuments",
    "RetrievedDocument",
    "RetryPolicy",
    "Safety",
    "SubmissionSetContents",
    "TokenSource",
    "VaultClient",
]
