"""``fetch_connector_report``: the hub's connector-validation JSON as a SuiteResult, end to end over an in-process
transport, and the errors it raises."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from rsb_connector.client import VaultClient
from rsb_connector.conformance import Outcome, wire
from rsb_connector.conformance.connector import connector_suite, fetch_connector_report
from rsb_connector.errors import ConnectorValidationUnavailable, ProtocolError
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.metadata.builder import new_document, new_submission
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import SyncASGITransport

BASE = "http://rsb-hub.test"
PATIENT = SEED_PATIENTS[0].ssin


@pytest.fixture
def hub(tmp_path: Path, rsb_pki: PkiDescription) -> Iterator[Hub]:
    built = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki, connector_validation=True)
    yield built
    built.close()


def test_the_report_of_a_session_as_a_suite_result(
    hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    with VaultClient(
        BASE,
        transport=SyncASGITransport(hub.app),
        identity=rsb_identity("gp"),
        trust=rsb_pki.trust_store(),
        precheck=False,
    ) as vault:  # a good message
        vault.publish(b"fine\n", patient=PATIENT, document_type="contactreport", mime_type="text/plain")
    entry = new_document(
        b"bad\n", author=wire.GP_AUTHOR, patient=PATIENT, document_type="contactreport", mime_type="text/plain"
    )
    sub = new_submission([entry])
    entry.class_code = None
    unsigned = wire.Peer(base_url=BASE, transport=SyncASGITransport(hub.app), trust=rsb_pki.trust_store())
    with unsigned, pytest.raises(ProtocolError):  # a fault, not an ITI-41 answer
        wire.provide(unsigned, sub, {entry.entry_uuid: b"bad\n"})

    with httpx.Client(base_url=BASE, transport=SyncASGITransport(hub.app)) as http:
        raw = http.get("/conformance/report").json()
    suite = fetch_connector_report(BASE, transport=SyncASGITransport(hub.app))

    assert suite.kind == "connector" and suite.target == BASE
    assert raw["summary"] == {"messages": 2, "passed": 1, "failed": 1}
    assert suite.summary() == {"passed": 1, "failed": 1, "error": 0, "skipped": 0, "total": 2}
    assert not suite.passed
    assert "schema check not run: start the hub with --schemas DIR" in suite.notes

    good, bad = suite.cases
    assert good.id == raw["messages"][0]["id"] and good.outcome is Outcome.PASSED
    assert good.title == "ITI-41 Provide and Register Document Set-b from nihii:12*******04 (persphysician)"
    assert (good.profile, good.actor, good.reference) == ("XDS.b", "Document Source (your connector)", "ITI TF-2b 3.41")
    assert [s.do for s in good.steps] == [
        "Check transport",
        "Check schema",
        "Check security",
        "Check metadata",
        "Check mhd-profile",
    ]
    assert [s.outcome for s in good.steps] == [
        Outcome.PASSED,
        Outcome.SKIPPED,  # not run: no schemas
        Outcome.PASSED,
        Outcome.PASSED,
        Outcome.SKIPPED,  # not applicable to SOAP
    ]
    assert good.steps[1].message.startswith("not-run: schema check not run")
    assert good.steps[4].message.startswith("not-applicable: ")

    assert bad.outcome is Outcome.FAILED and bad.title.endswith("from unsigned")
    security, metadata = bad.steps[2], bad.steps[3]
    assert security.outcome is Outcome.FAILED and security.message.startswith("wsse:InvalidSecurity at ")
    assert metadata.outcome is Outcome.FAILED
    assert f"XDSRegistryMetadataError at DocumentEntry[{entry.entry_uuid}].classCode" in metadata.message
    assert bad.failed_step is security
    assert "security: wsse:InvalidSecurity" in bad.message and "metadata: XDSRegistryMetadataError" in bad.message
    (evidence,) = bad.setup
    assert evidence.status == 400 and "Fault" in evidence.response
    assert evidence.request.startswith("POST /xds/repository") and PATIENT not in evidence.request

    json.dumps(suite.to_json())  # renders like a suite run
    later = fetch_connector_report(BASE, since="2999-01-01", transport=SyncASGITransport(hub.app))
    assert later.cases == [] and "messages received since 2999-01-01T00:00:00.000000Z" in later.notes
    as_datetime = fetch_connector_report(BASE, since=suite.started, transport=SyncASGITransport(hub.app))
    assert [c.id for c in as_datetime.cases] == [good.id, bad.id]


def test_a_hub_without_connector_validation_raises_a_clear_error(rsb_hub: Hub) -> None:
    with pytest.raises(ConnectorValidationUnavailable, match="--connector-validation") as caught:
        fetch_connector_report(BASE, transport=SyncASGITransport(rsb_hub.app))
    assert caught.value.hub_url == BASE


def test_other_answers_are_protocol_errors() -> None:
    def teapot(request: httpx.Request) -> httpx.Response:
        return httpx.Response(418, json={"message": "I am a teapot"})

    with pytest.raises(ProtocolError, match="HTTP 418: I am a teapot"):
        fetch_connector_report(BASE, transport=httpx.MockTransport(teapot))
    with pytest.raises(ProtocolError, match="did not answer JSON"):
        fetch_connector_report(BASE, transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")))
    with pytest.raises(ProtocolError, match="not a connector-validation report"):
        connector_suite({"messages": [{"id": "MSG-1"}]}, BASE)
    with pytest.raises(ValueError, match="ISO 8601"):
        fetch_connector_report(BASE, since="last tuesday", transport=httpx.MockTransport(teapot))


def test_an_empty_recording_does_not_pass_and_says_why() -> None:
    result = connector_suite({"messages": [], "since": "2026-11-22T10:00:00Z", "notes": []}, BASE)
    assert not result.passed
    assert result.cases == []
    assert any("no message was recorded since then" in note for note in result.notes)
