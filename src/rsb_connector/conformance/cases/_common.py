"""Small helpers shared by the case modules (no case lives here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def attachment_url(searchset: Mapping[str, Any], unique_id: str) -> str | None:
    """The ITI-68 URL (``content.attachment.url``) of the DocumentReference whose masterIdentifier is
    ``unique_id`` in an ITI-67 searchset Bundle; None when the bundle does not list it."""
    for item in searchset.get("entry") or []:
        resource = item.get("resource") or {}
        if str((resource.get("masterIdentifier") or {}).get("value", "")).removeprefix("urn:oid:") == unique_id:
            for content in resource.get("content") or []:
                url = (content.get("attachment") or {}).get("url")
                if url:
                    return str(url)
    return None
