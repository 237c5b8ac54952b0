"""The application examples (teleconsultation, appointment, remote monitoring, patient app) run against a real hub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rsb_connector.testing import LiveHub

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LUCAS = "87041213797"


def _run(script: str, hub: LiveHub, identity: str, **extra: str) -> str:
    who = hub.pki.identity(identity)
    env = dict(os.environ)
    env.update(
        RSB_HUB_URL=hub.url,
        RSB_IDENTITY=str(hub.pki.path(who.file)),
        RSB_IDENTITY_PASSWORD=who.password,
        RSB_CA=str(hub.pki.ca_cert),
        **extra,
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10, f"{script} took more than 10 s"
    return done.stdout


@pytest.fixture(scope="module")
def teleconsultation_out(rsb_live_hub: LiveHub) -> str:
    return _run("teleconsultation.py", rsb_live_hub, "gp")


def test_teleconsultation_publishes_a_pdf_report_and_shows_the_receipt(teleconsultation_out: str) -> None:
    out = teleconsultation_out
    assert "signing as Dr Sophie Claes" in out
    assert "published   the teleconsultation report" in out
    assert "MIME type       application/pdf" in out
    assert "SHA-1" in out and "submission set" in out


def test_appointment_lists_recent_documents_and_fetches_the_latest_verified(
    rsb_live_hub: LiveHub, teleconsultation_out: str
) -> None:
    out = _run("appointment.py", rsb_live_hub, "gp")
    assert "over MHD, newest first" in out
    assert "Teleconsultation - allergy follow-up" in out  # published by the teleconsultation example
    assert "fetched     the most recent one" in out
    assert "SHA-1 and size verified" in out


def test_remote_monitoring_replaces_and_deprecates(rsb_live_hub: LiveHub) -> None:
    out = _run("remote_monitoring.py", rsb_live_hub, "gp")
    assert "published   the measurement report (telemonitoring)" in out
    assert "replaced" in out
    assert "old version  deprecated" in out
    assert "new version  approved" in out
    assert "only the corrected report is approved: True" in out


def test_patient_app_lists_documents_and_who_accessed_them(rsb_live_hub: LiveHub, teleconsultation_out: str) -> None:
    out = _run("patient_app.py", rsb_live_hub, "patient1")
    assert "signed in as Lucas Peeters" in out
    assert "my record" in out and "Teleconsultation - allergy follow-up" in out
    assert "accessed" in out and "event(s) in my audit trail" in out
    assert "NIHII 12345625004" in out and "publish" in out  # the GP's publication is in the trail
    assert LUCAS not in out  # SSINs are masked


def test_conformance_suite_runs_a_selection_and_writes_the_three_reports(rsb_live_hub: LiveHub, tmp_path: Path) -> None:
    reports = tmp_path / "conformance"
    out = _run(
        "conformance_suite.py", rsb_live_hub, "gp", RSB_PKI=str(rsb_live_hub.pki_dir), RSB_REPORT_DIR=str(reports)
    )
    assert "8 of 8 passed" in out
    for case_id in ("XDS-001", "XDS-012", "MHD-001", "SEC-001", "CON-003"):
        assert f"passed  {case_id}" in out
    assert {p.name for p in reports.iterdir()} == {"report.html", "junit.xml", "report.json"}
    assert LUCAS not in (reports / "report.html").read_text()


def test_connector_validation_grades_the_sdk_and_a_broken_connector(rsb_live_hub: LiveHub, tmp_path: Path) -> None:
    reports = tmp_path / "connector"
    out = _run("connector_validation.py", rsb_live_hub, "gp", RSB_REPORT_DIR=str(reports))
    assert "home-made   the hub answered Failure: ['XDSRegistryMetadataError']" in out
    graded = [line for line in out.splitlines() if line.startswith("  MSG-")]
    assert any("ITI-41" in line and line.endswith(": conforms") for line in graded)
    assert any("ITI-67" in line and line.endswith(": conforms") for line in graded)
    broken = [line for line in graded if "does not conform" in line]
    assert len(broken) == 1 and "ITI-41" in broken[0] and "metadata" in broken[0]
    assert ".classCode: classCode is missing" in out
    assert "schema check" in out and "not run" in out  # the live hub runs without --schemas
    assert (reports / "report.html").is_file() and (reports / "junit.xml").is_file()
    assert LUCAS not in out and LUCAS not in (reports / "report.json").read_text()
