"""Teleconsultation: a video-consultation app publishes its PDF report over XDS.b (signed SOAP) and shows the receipt.

After the call, the app files the consultation report in the patient's shared record, authored by the physician
who held the consultation, and prints what the hub accepted: the document's uniqueId, its size and SHA-1.

Run: ``rsb hub serve --seed`` in one terminal, then ``python examples/teleconsultation.py``. Environment as in
``examples/quickstart.py``: ``RSB_HUB_URL``, ``RSB_IDENTITY`` / ``RSB_IDENTITY_PASSWORD`` (default: the seeded GP,
``.rsb-data/pki/identities/gp.p12``), ``RSB_CA``.
"""

from __future__ import annotations

import os

from rsb_connector import Identity, VaultClient
from rsb_connector.metadata.builder import professional_author

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
IDENTITY = os.environ.get("RSB_IDENTITY", ".rsb-data/pki/identities/gp.p12")
PASSWORD = os.environ.get("RSB_IDENTITY_PASSWORD", "rsb-dev")
CA = os.environ.get("RSB_CA", ".rsb-data/pki/ca.pem")
PATIENT = "87041213797"  # Lucas Peeters, seeded by `rsb hub serve --seed` (the GP has his consent and a link)

REPORT = (
    b"%PDF-1.7\n"
    b"% Teleconsultation report - video call of 20 minutes\n"
    b"% Reason: follow-up of seasonal allergy. Symptoms improved; continue treatment 4 weeks.\n"
    b"%%EOF\n"
)


def main() -> None:
    me = Identity.load(IDENTITY, PASSWORD)
    print(f"teleconsultation app, signing as {me.name} ({me.profession}, NIHII {me.nihii})")
    given, _, family = me.name.removeprefix("Dr ").rpartition(" ")  # "Dr Sophie Claes" -> Sophie, Claes
    author = professional_author(str(me.nihii), family=family, given=given or None)

    with VaultClient(HUB, identity=me, trust=CA, protocol="xds") as vault:
        print(f"video call with patient {PATIENT[:6]}***** ended; filing the report over XDS.b")
        receipt = vault.publish(
            REPORT,
            patient=PATIENT,
            document_type="contactreport",
            mime_type="application/pdf",
            author=author,
            title="Teleconsultation - allergy follow-up",
        )

    document = receipt.document
    print("published   the teleconsultation report; receipt from the hub:")
    print(f"  submission set  {receipt.submission_set_unique_id}")
    print(f"  document        {document.unique_id}")
    print(f"  MIME type       {document.mime_type}")
    print(f"  size            {document.size} bytes")
    print(f"  SHA-1           {document.hash}")
    print(f"  warnings        {len(receipt.warnings)}")


if __name__ == "__main__":
    main()
