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


def _run(script: str, hub: LiveHub, identity: str) -> str:
    who = hub.pki.identity(identity)
    env = dict(os.environ)
    env.update(
        RSB_HUB_URL=hub.url,
        RSB_IDENTITY=str(hub.pki.path(who.file)),
        RSB_IDENTITY_PASSWORD=who.password,
        RSB_CA=str(hub.pki.ca_cert),
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
