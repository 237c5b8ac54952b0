"""The SDK client: what an application embeds to publish, find and fetch documents.

:class:`VaultClient` (blocking) and :class:`AsyncVaultClient` (asyncio) are twins over one sans-IO core, shaped
like ``httpx.Client`` / ``httpx.AsyncClient``::

    from rsb_connector.client import VaultClient

    with VaultClient("http://127.0.0.1:8080") as vault:
        receipt = vault.publish(b"Hb 14 g/dl", patient="73032929895", document_type="labresult",
                                mime_type="text/plain")
        entries = vault.find("73032929895")
        doc = vault.retrieve(receipt.document.unique_id)
"""

from ._async import AsyncVaultClient
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
    "AsyncVaultClient",
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
    "VaultClient",
]
