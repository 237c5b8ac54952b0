"""Quickstart: publish a consultation report, find it, fetch it back — signed, against `rsb hub serve --seed`.

Run: ``rsb hub serve --seed`` in one terminal, then ``python examples/quickstart.py`` (``make demo`` does both).

- ``RSB_HUB_URL``: the hub (default http://127.0.0.1:8080);
- ``RSB_IDENTITY`` / ``RSB_IDENTITY_PASSWORD``: who signs the requests, a PKCS#12 (your eHealth certificate) or PEM
  file (default: the GP of the development PKI that ``rsb hub serve`` creates, ``.rsb-data/pki/identities/gp.p12``,
  password ``rsb-dev``);
- ``RSB_CA``: the CA the hub's signed answers must chain to (default ``.rsb-data/pki/ca.pem``).
"""

from __future__ import annotations

import os
from pathlib import Path
from tempfile import TemporaryDirectory

from rsb_connector import Identity, VaultClient
from rsb_connector.metadata.builder import professional_author

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
IDENTITY = os.environ.get("RSB_IDENTITY", ".rsb-data/pki/identities/gp.p12")
PASSWORD = os.environ.get("RSB_IDENTITY_PASSWORD", "rsb-dev")
CA = os.environ.get("RSB_CA", ".rsb-data/pki/ca.pem")
PATIENT = "87041213797"  # Lucas Peeters, seeded by `rsb hub serve --seed` (see .rsb-data/seed.json)


def main() -> None:
    me = Identity.load(IDENTITY, PASSWORD)  # Dr Sophie Claes, the seeded GP (NIHII 12345625004)
    print(f"signing as  {me.name} ({me.profession}, NIHII {me.nihii})")
    author = professional_author(str(me.nihii), family="Claes", given="Sophie")
    with TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.pdf"
        report.write_bytes(b"%PDF-1.7\n% consultation of 12 November: blood pressure 128/82, all well\n%%EOF\n")

        with VaultClient(HUB, identity=me, trust=CA) as vault:
            receipt = vault.publish(
                report, patient=PATIENT, document_type="contactreport", author=author, title="Consultation 12/11"
            )
            print(f"published   {receipt.documents[0].unique_id} ({receipt.documents[0].size} bytes)")

            entries = vault.find(PATIENT, class_codes=["contactreport"])
            print(f"found       {len(entries)} consultation report(s) for the patient")

            document = vault.retrieve(receipt.documents[0].unique_id, to=Path(tmp) / "fetched.pdf")
            same = document.path is not None and document.path.read_bytes() == report.read_bytes()
            print(f"fetched     {document.size} bytes, SHA-1 verified, identical to what was sent: {same}")


if __name__ == "__main__":
    main()
