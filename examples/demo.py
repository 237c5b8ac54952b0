"""`make demo`: the whole story on a fresh machine, in a minute.

1. the core at work (identifiers, metadata from five arguments, validation) — no hub needed;
2. a development PKI (`rsb hub pki init`): a CA, the hub's certificate, and identities for seeded people;
3. start the mock hub on it with its seeded population (a real process on a free port, fresh data dir);
4. a teleconsultation app publishes a PDF report over XDS.b, signed as the GP;
5. before the visit, the appointment app finds and fetches the patient's recent documents over MHD (FHIR);
6. show how refusals read: local validation before sending, the hub's verdict, a consent refusal and what would
   fix it, and an unsigned request;
7. prove it: a slice of the conformance suite against the hub, with its HTML report (``build/demo-report``);
8. stop the hub and say how to run it yourself and where the docs are.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rsb_connector import AccessDenied, HubRefused, MetadataError, VaultClient
from rsb_connector.security.pki import load_pki
from rsb_connector.testing import LiveHub

HERE = Path(__file__).parent


def chapter(title: str) -> None:
    print(f"\n\033[1m== {title} ==\033[0m")


def main() -> None:
    chapter("1. The core, no hub needed")
    subprocess.run([sys.executable, str(HERE / "core_walkthrough.py")], check=True)

    with tempfile.TemporaryDirectory(prefix="rsb-demo-") as tmp:
        chapter("2. A development PKI: who may sign")
        pki_dir = Path(tmp) / "pki"
        subprocess.run([sys.executable, "-m", "rsb_connector.cli", "hub", "pki", "init", str(pki_dir)], check=True)
        pki = load_pki(pki_dir)

        chapter("3. Starting the mock hub with its seeded population, trusting that PKI")
        with LiveHub(Path(tmp) / "data", seed=True, pki=pki) as hub:
            print(f"   hub at {hub.url} (data in {hub.data_dir}; who is who: {hub.data_dir / 'seed.json'})")
            print("   it refuses unsigned requests and signs its answers")

            chapter("4. A teleconsultation app publishes its PDF report (XDS.b), signed as the GP")
            env = {
                **os.environ,
                "RSB_HUB_URL": hub.url,
                "RSB_IDENTITY": str(pki.path(pki.identity("gp").file)),
                "RSB_IDENTITY_PASSWORD": pki.password,
                "RSB_CA": str(pki.ca_cert),
            }
            subprocess.run([sys.executable, str(HERE / "teleconsultation.py")], check=True, env=env)

            chapter("5. Before the visit: the appointment app finds and fetches over MHD (FHIR)")
            subprocess.run([sys.executable, str(HERE / "appointment.py")], check=True, env=env)

            chapter("6. When the answer is no")
            with hub.client("gp") as vault:
                try:
                    vault.publish(
                        b"note",
                        patient="87041213797",
                        document_type="contactreport",
                        mime_type="text/plain",
                        creation_time="24/12/2024",
                    )
                except (MetadataError, ValueError) as exc:
                    print(f"   refused before sending: {exc}")
                try:
                    vault.publish(b"note", patient="82121210976", document_type="note", mime_type="text/plain")
                except HubRefused as exc:
                    for problem in exc.problems:
                        print(f"   the hub said {problem.code}: {problem.message}")
                try:  # Marc Lambert never gave a sharing consent (see seed.json, "no_consent")
                    vault.publish(b"note", patient="59031812513", document_type="note", mime_type="text/plain")
                except AccessDenied as exc:
                    print(f"   consent rule '{exc.rule}': {exc.reason}")
                    print(f"   what would fix it: {exc.fix}")
            with VaultClient(hub.url) as anonymous:
                try:
                    anonymous.find("87041213797")
                except HubRefused as exc:
                    print(f"   without a signature: {exc.code}: {exc.problems[0].message}")

            chapter("7. Prove it: conformance cases against this hub")
            report = Path("build") / "demo-report"
            subprocess.run(
                [
                    *(sys.executable, "-m", "rsb_connector.cli", "conformance", "run", "--hub", hub.url),
                    *("--identity", env["RSB_IDENTITY"], "--password", pki.password, "--report-dir", str(report)),
                    *("--only", "XDS-001,XDS-012,MHD-001,MHD-022,SEC-001,SEC-004,CON-003"),
                ],
                check=True,
            )
            print(f"   open {report / 'report.html'} for each case's steps and exchanges (SSINs masked)")
            print("   the whole catalogue: .venv/bin/rsb conformance list; run it all by leaving out --only")

            chapter("8. Done")
            print("   The hub is stopping. Run your own with:   .venv/bin/rsb hub serve --seed   (Ctrl+C stops it)")
            print("   (it creates .rsb-data/pki; sign with .rsb-data/pki/identities/gp.p12, password rsb-dev)")
            print("   Documentation:                            .venv/bin/mkdocs serve   (then http://127.0.0.1:8000)")


if __name__ == "__main__":
    main()
