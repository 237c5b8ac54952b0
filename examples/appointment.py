"""Appointment: before a visit, the GP's app reads the patient's recent documents over IHE MHD (FHIR R4).

The app searches the shared record for documents of the last year (ITI-67 over ``/fhir``), lists them newest first
(type, date, title), then fetches the most recent one (ITI-68) and checks its SHA-1 and size against the metadata.

Run: ``rsb hub serve --seed`` in one terminal, then ``python examples/appointment.py``. Environment as in
``examples/quickstart.py``: ``RSB_HUB_URL``, ``RSB_IDENTITY`` / ``RSB_IDENTITY_PASSWORD`` (default: the seeded GP,
``.rsb-data/pki/identities/gp.p12``), ``RSB_CA``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from rsb_connector import Identity, VaultClient
from rsb_connector.metadata.model import DocumentEntry

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
IDENTITY = os.environ.get("RSB_IDENTITY", ".rsb-data/pki/identities/gp.p12")
PASSWORD = os.environ.get("RSB_IDENTITY_PASSWORD", "rsb-dev")
CA = os.environ.get("RSB_CA", ".rsb-data/pki/ca.pem")
PATIENT = "87041213797"  # Lucas Peeters, seeded by `rsb hub serve --seed` (the GP has his consent and a link)
SHOWN = 10  # how many documents the list shows


def _date(dtm: str | None) -> str:
    """An XDS DTM (``YYYYMMDD[hhmmss]``) as ``YYYY-MM-DD``."""
    return f"{dtm[:4]}-{dtm[4:6]}-{dtm[6:8]}" if dtm and len(dtm) >= 8 else "????-??-??"


def _kind(entry: DocumentEntry) -> str:
    code = entry.type_code or entry.class_code
    return code.code if code is not None else "?"


def main() -> None:
    me = Identity.load(IDENTITY, PASSWORD)
    print(f"appointment app, signing as {me.name} ({me.profession}, NIHII {me.nihii})")
    since = datetime.now(UTC) - timedelta(days=365)

    with VaultClient(HUB, identity=me, trust=CA, protocol="mhd") as vault:
        entries = vault.find(PATIENT, created_from=since)
        if not entries:
            entries = vault.find(PATIENT)  # nothing this year: show what there is
        entries.sort(key=lambda e: e.creation_time or "", reverse=True)
        print(f"found       {len(entries)} document(s) for patient {PATIENT[:6]}***** over MHD, newest first:")
        for entry in entries[:SHOWN]:
            print(f"  {_date(entry.creation_time)}  {_kind(entry):<16} {entry.title or '(untitled)'}")
        if len(entries) > SHOWN:
            print(f"  ... and {len(entries) - SHOWN} more")
        if not entries:
            print("nothing to read before the visit")
            return

        latest = entries[0]
        document = vault.retrieve(latest)
        state = "SHA-1 and size verified" if document.verified else "NOT verified"
        print(f"fetched     the most recent one, {latest.title or latest.unique_id}: {document.size} bytes, {state}")


if __name__ == "__main__":
    main()
