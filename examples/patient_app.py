"""Patient app: the patient lists the documents in their shared record and reads who accessed it.

Signed in with their own certificate (the seeded patient Lucas Peeters, identity ``patient1``), the patient finds
their documents (ITI-18) and reads their audit trail (``vault.consent.trail``: FHIR AuditEvent resources), printing
who did what and when, allowed or denied. SSINs are masked, by the hub and again here before anything is printed.

Run: ``rsb hub serve --seed`` in one terminal, then ``python examples/patient_app.py``. Environment as in
``examples/quickstart.py``: ``RSB_HUB_URL``, ``RSB_IDENTITY`` / ``RSB_IDENTITY_PASSWORD`` (default: the seeded
patient, ``.rsb-data/pki/identities/patient1.p12``), ``RSB_CA``.
"""

from __future__ import annotations

import os
import re
from typing import Any

from rsb_connector import Identity, VaultClient

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
IDENTITY = os.environ.get("RSB_IDENTITY", ".rsb-data/pki/identities/patient1.p12")
PASSWORD = os.environ.get("RSB_IDENTITY_PASSWORD", "rsb-dev")
CA = os.environ.get("RSB_CA", ".rsb-data/pki/ca.pem")
PATIENT = "87041213797"  # Lucas Peeters himself, seeded by `rsb hub serve --seed`
SHOWN = 15  # how many audit events the app shows (the most recent)

_SSIN = re.compile(r"\b(\d{6})[\d.-]{5,7}\b")


def mask(text: str) -> str:
    """Mask every SSIN-looking number: ``87041213797`` -> ``870412*****`` (birth date kept, the rest hidden)."""
    return _SSIN.sub(lambda m: m.group(1) + "*****", text)


def _line(event: dict[str, Any]) -> str:
    when = str(event.get("recorded", ""))[:19].replace("T", " ")
    agents = event.get("agent") or [{}]
    who = mask(agents[0].get("who", {}).get("display", "?"))
    nihii = agents[0].get("who", {}).get("identifier", {}).get("value")
    if nihii and who.startswith("nihii:"):  # a professional: their NIHII number is public, show it
        who = f"NIHII {nihii}"
    role = (agents[0].get("role") or [{}])[0].get("text")
    what = next((c.get("code") for c in event.get("subtype", []) if c.get("system") != "urn:ihe:event-type-code"), "?")
    documents = sum(1 for e in event.get("entity", []) if e.get("type", {}).get("code") == "2")
    outcome = "allowed" if event.get("outcome") == "0" else "DENIED"
    detail = f", {documents} document(s)" if documents else ""
    return f"  {when}  {who}{f' ({role})' if role else ''}: {what}{detail} - {outcome}"


def main() -> None:
    me = Identity.load(IDENTITY, PASSWORD)
    print(mask(f"patient app, signed in as {me.name}"))

    with VaultClient(HUB, identity=me, trust=CA) as vault:
        entries = sorted(vault.find(PATIENT), key=lambda e: e.creation_time or "", reverse=True)
        print(f"my record   {len(entries)} document(s):")
        for entry in entries:
            kind = entry.type_code.code if entry.type_code is not None else "?"
            print(mask(f"  {kind:<16} {entry.title or '(untitled)'}"))

        trail = sorted(vault.consent.trail(PATIENT), key=lambda e: str(e.get("recorded", "")))
        print(f"accessed    {len(trail)} event(s) in my audit trail; the latest {min(len(trail), SHOWN)}:")
        for event in trail[-SHOWN:]:
            print(_line(event))


if __name__ == "__main__":
    main()
