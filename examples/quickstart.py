"""Quickstart: publish a consultation report, find it, fetch it back — against `rsb hub serve --seed`.

Run: ``rsb hub serve --seed`` in one terminal, then ``python examples/quickstart.py`` (``make demo`` does both).
The hub URL comes from ``RSB_HUB_URL`` (default http://127.0.0.1:8080).
"""

from __future__ import annotations

import os
from pathlib import Path
from tempfile import TemporaryDirectory

from rsb_connector import VaultClient
from rsb_connector.metadata.builder import professional_author

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
PATIENT = "87041213797"  # Lucas Peeters, seeded by `rsb hub serve --seed` (see .rsb-data/seed.json)
GP = professional_author("12345625004", family="Claes", given="Sophie")


def main() -> None:
    with TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.pdf"
        report.write_bytes(b"%PDF-1.7\n% consultation of 12 November: blood pressure 128/82, all well\n%%EOF\n")

        with VaultClient(HUB) as vault:
            receipt = vault.publish(
                report, patient=PATIENT, document_type="contactreport", author=GP, title="Consultation 12/11"
            )
            print(f"published   {receipt.documents[0].unique_id} ({receipt.documents[0].size} bytes)")

            entries = vault.find(PATIENT, class_codes=["contactreport"])
            print(f"found       {len(entries)} consultation report(s) for the patient")

            document = vault.retrieve(receipt.documents[0].unique_id, to=Path(tmp) / "fetched.pdf")
            same = document.path is not None and document.path.read_bytes() == report.read_bytes()
            print(f"fetched     {document.size} bytes, SHA-1 verified, identical to what was sent: {same}")


if __name__ == "__main__":
    main()
