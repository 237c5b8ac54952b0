"""Conformance: run catalogue cases against a hub from Python and write report.html, junit.xml and report.json.

This is what ``rsb conformance run`` does, as an API: load the catalogue (shipped in the wheel), describe the run
(the hub, the identity the suite signs as, the other identities some cases need, the CA that signs the hub's
answers), run a selection, write the reports. Each case registers its own patients through the hub's patient
identity feed, so it runs against a hub that holds other data.

Run: ``rsb hub serve --seed`` in one terminal (it writes the development PKI to ``.rsb-data/pki``), then
``python examples/conformance_suite.py``. Environment: ``RSB_HUB_URL`` (default ``http://127.0.0.1:8080``),
``RSB_PKI`` (the development PKI folder, default ``.rsb-data/pki``), ``RSB_CONFORMANCE_ONLY`` (ids or prefixes,
comma-separated; ``*`` for the whole catalogue), ``RSB_REPORT_DIR`` (default ``conformance-report``).
"""

from __future__ import annotations

import os
import sys

from rsb_connector.conformance import Environment, load_catalogue, run_suite
from rsb_connector.conformance.report import write_reports
from rsb_connector.security.pki import load_pki

HUB = os.environ.get("RSB_HUB_URL", "http://127.0.0.1:8080")
PKI = os.environ.get("RSB_PKI", ".rsb-data/pki")
ONLY = os.environ.get("RSB_CONFORMANCE_ONLY", "XDS-001,XDS-012,XDS-039,MHD-001,MHD-022,SEC-001,SEC-008,CON-003")
REPORTS = os.environ.get("RSB_REPORT_DIR", "conformance-report")


def main() -> int:
    pki = load_pki(PKI)
    identities = {record.id: pki.load_identity(record.id) for record in pki.identities}
    identities["author"] = identities["gp"]  # the suite publishes as the GP; cases use the others by name
    # seeded: the hub was started with --seed (three consent cases need the seeded patients)
    env = Environment(hub_url=HUB, identities=identities, trust=pki.trust_store(), seeded=True)

    catalogue = load_catalogue()
    only = [] if ONLY.strip() == "*" else [ONLY]
    print(f"conformance: {len(catalogue)} cases in the catalogue; running {ONLY} against {HUB}")
    result = run_suite(
        catalogue,
        env,
        only=only,
        on_result=lambda case: print(f"  {case.outcome.value:<7} {case.id}  {case.title}  ({case.seconds:.2f} s)"),
        caller=identities["author"].name,
    )
    paths = write_reports(result, REPORTS)
    counts = result.summary()
    print(f"{counts['passed']} of {counts['total']} passed in {result.seconds:.1f} s")
    for case in result.cases:
        if case.message and case.outcome.value != "passed":
            print(f"  {case.id}: {case.message}")
    print(f"reports     {paths['html']}  {paths['junit']}  {paths['json']}")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
