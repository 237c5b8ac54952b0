"""XDS.b cases (``conformance/catalogue/xds.toml``): the hub as Document Repository and Document Registry."""

from __future__ import annotations

import hashlib

from ...metadata.model import AvailabilityStatus
from ..context import CaseContext
from . import implements

PDF = b"%PDF-1.7\n% rsb-connector conformance document\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"


@implements("XDS-001")
def single_document(t: CaseContext) -> None:
    patient = t.new_patient()
    vault = t.client()
    with t.step(1):
        receipt = vault.publish(
            PDF, patient=patient, document_type="contactreport", author=t.author(), mime_type="application/pdf"
        )
        t.observe(f"published {receipt.document.unique_id}")
    with t.step(2):
        found = vault.find(patient=patient)
        t.check(
            [e.unique_id for e in found] == [receipt.document.unique_id],
            "FindDocuments lists exactly the published entry",
            got=[e.unique_id for e in found],
        )
        entry = found[0]
        t.check(
            entry.availability_status is AvailabilityStatus.APPROVED,
            "the entry is Approved",
            got=entry.availability_status,
        )
        sha1 = hashlib.sha1(PDF, usedforsecurity=False).hexdigest()
        t.check(entry.hash == sha1, "the registry keeps the SHA-1 of the content", got=entry.hash)
        t.check(entry.size == len(PDF), "the registry keeps the size of the content", got=entry.size)
    with t.step(3):
        document = vault.retrieve(entry, verify=False)
        data = document.content or b""
        t.check(
            hashlib.sha256(data).digest() == hashlib.sha256(PDF).digest(), "the same bytes come back", got=len(data)
        )
        t.observe(f"{len(data)} bytes, {document.mime_type}")
