"""Remote monitoring: a telemonitoring app publishes a measurement report, then corrects it with a new version.

The app files the week's blood-pressure readings, notices a mis-calibrated cuff, and publishes the corrected report
with ``vault.replace`` (an RPLC association): the registry deprecates the first version in the same transaction.
``find(status="all")`` then shows both versions, the old one Deprecated and the corrected one Approved.

Run: ``rsb hub serve --seed`` in one terminal, then ``python examples/remote_monitoring.py``. Environment as in
``examples/quickstart.py``: ``RSB_HUB_URL``, ``RSB_IDENTITY`` / ``RSB_IDENTITY_PASSWORD`` (default: the seeded GP,
``.rsb-data/pki/identities/gp.p12``), ``RSB_CA``.
"""

from __future__ import annotations

import os

from rsb_connector import Identity, VaultClient
from rsb_connector.metadata.builder import professional_author
from rsb_connector.metadata.valuesets import CodeKind, load_value_sets

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
IDENTITY = os.environ.get("RSB_IDENTITY", ".rsb-data/pki/identities/gp.p12")
PASSWORD = os.environ.get("RSB_IDENTITY_PASSWORD", "rsb-dev")
CA = os.environ.get("RSB_CA", ".rsb-data/pki/ca.pem")
PATIENT = "87041213797"  # Lucas Peeters, seeded by `rsb hub serve --seed` (the GP has his consent and a link)

FIRST = b"Home blood pressure, week 46 (mmHg): 152/95 148/94 155/97 150/96 -- mean 151/96\n"
CORRECTED = b"Home blood pressure, week 46 (mmHg), cuff recalibrated (-12/-8): mean 139/88\n"


def _document_type() -> str:
    """``telemonitoring`` when the typeCode value set has it, else the generic ``result``."""
    types = load_value_sets().value_set(CodeKind.TYPE_CODE)
    return "telemonitoring" if types.find("telemonitoring") is not None else "result"


def main() -> None:
    me = Identity.load(IDENTITY, PASSWORD)
    print(f"remote-monitoring app, signing as {me.name} ({me.profession}, NIHII {me.nihii})")
    given, _, family = me.name.removeprefix("Dr ").rpartition(" ")
    author = professional_author(str(me.nihii), family=family, given=given or None)
    kind = _document_type()

    with VaultClient(HUB, identity=me, trust=CA) as vault:
        first = vault.publish(
            FIRST,
            patient=PATIENT,
            document_type=kind,
            mime_type="text/plain",
            author=author,
            title="Blood pressure, week 46",
        )
        old_id = first.document.unique_id
        print(f"published   the measurement report ({kind}): {old_id}")

        print("correcting  the cuff was mis-calibrated; replacing the report with a corrected version")
        second = vault.replace(old_id, CORRECTED, author=author, title="Blood pressure, week 46 (corrected)")
        new_id = second.document.unique_id
        print(f"replaced    {old_id} by {new_id}")

        versions = {e.unique_id: e for e in vault.find(PATIENT, status="all", type_codes=[kind])}
        for label, uid in (("old", old_id), ("new", new_id)):
            entry = versions[uid]
            print(f"  {label} version  {entry.availability_status.name.lower():<10} {entry.title}")
        current = [e.unique_id for e in vault.find(PATIENT, type_codes=[kind])]
        print(f"current     only the corrected report is approved: {new_id in current and old_id not in current}")


if __name__ == "__main__":
    main()
