"""Connector validation: the mock hub grades every message your app sends it; read the verdicts and fix.

A startup's connector talks to ``rsb hub serve`` (connector validation is on by default). This example plays two
connectors in one session: the SDK publishing and searching (conformant), and a home-made one that forgets the
document's classCode (not conformant). It then fetches the hub's grading of everything received since the session
began — schema, metadata (exact XDS codes and where), security, MHD profile, transport — prints it and writes the
same report.html / junit.xml / report.json as the conformance suite.

Run: ``rsb hub serve --seed --schemas ../shared/reference/ihe-xds-schemas`` (without ``--schemas`` the report says
the schema check was not run), then ``python examples/connector_validation.py``. Environment as in
``examples/quickstart.py`` (``RSB_HUB_URL``, ``RSB_IDENTITY`` / ``RSB_IDENTITY_PASSWORD``, ``RSB_CA``), plus
``RSB_REPORT_DIR`` (default ``connector-report``).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from rsb_connector import Identity, VaultClient
from rsb_connector.conformance import wire
from rsb_connector.conformance.connector import fetch_connector_report
from rsb_connector.conformance.report import write_reports
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.security.trust import TrustStore

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
IDENTITY = os.environ.get("RSB_IDENTITY", ".rsb-data/pki/identities/gp.p12")
PASSWORD = os.environ.get("RSB_IDENTITY_PASSWORD", "rsb-dev")
CA = os.environ.get("RSB_CA", ".rsb-data/pki/ca.pem")
REPORTS = os.environ.get("RSB_REPORT_DIR", "connector-report")
PATIENT = "87041213797"  # Lucas Peeters, seeded by `rsb hub serve --seed` (the GP has his consent and a link)
LETTER = b"Dear colleague, the patient was seen today for a follow-up of his asthma. No change to the treatment."


def main() -> None:
    me = Identity.load(IDENTITY, PASSWORD)
    author = professional_author(me.nihii.digits if me.nihii else "", family="Claes", given="Sophie")
    session = datetime.now(UTC)
    print(f"session     started {session:%H:%M:%S} UTC, signing as {me.name}")

    # 1. The SDK: a signed ITI-41, then a search over MHD.
    with VaultClient(HUB, identity=me, trust=CA) as vault:
        receipt = vault.publish(LETTER, patient=PATIENT, document_type="note", author=author, mime_type="text/plain")
        print(f"sdk         published {receipt.document.unique_id}")
    with VaultClient(HUB, identity=me, trust=CA, protocol="mhd") as vault:
        print(f"sdk         found {len(vault.find(PATIENT))} document(s) over MHD")

    # 2. A home-made connector: the same kind of submission without a classCode (the SDK would refuse to send it).
    entry = new_document(LETTER, patient=PATIENT, document_type="note", author=author, mime_type="text/plain")
    entry.class_code = None
    submission = new_submission([entry], content_type="note")
    with wire.Peer(base_url=HUB, identity=me, trust=TrustStore.from_pem_file(CA)) as peer:
        answer = wire.provide(peer, submission, {entry.entry_uuid: LETTER})
    print(f"home-made   the hub answered {answer.status.rsplit(':', 1)[-1]}: {[p.code for p in answer.problems]}")

    # 3. What the hub thought of each message.
    report = fetch_connector_report(HUB, since=session, verify=CA)
    print(f"report      {len(report.cases)} message(s) graded since the session began:")
    for message in report.cases:
        failed = [step.do.removeprefix("Check ") for step in message.steps if step.outcome.value == "failed"]
        verdict = "conforms" if not failed else "does not conform: " + ", ".join(failed)
        print(f"  {message.id}  {message.title}: {verdict}")
        for step in message.steps:
            if step.outcome.value == "failed":
                print(f"      {step.message.splitlines()[0]}")
    for note in report.notes:
        print(f"note        {note}")
    paths = write_reports(report, REPORTS)
    print(f"reports     {paths['html']}  {paths['junit']}  {paths['json']}")


if __name__ == "__main__":
    main()
