"""The hub's consent management API (``/fhir/Consent``, ``/fhir/CareTeam``, ``/fhir/AuditEvent``,
``/fhir/$check-access``) over in-process HTTP with real bearer tokens from the development PKI."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.careteam import CareTeam
from fhir.resources.R4B.consent import Consent

from rsb_connector import AccessDenied, HubRefused, Identity
from rsb_connector.client import VaultClient
from rsb_connector.hub.consent_api import CONSENT_TYPE_SYSTEM, LINK_PROFILE, REFUSAL_SYSTEM
from rsb_connector.hub.seed_consent import seed_callers, seed_document_unique_id
from rsb_connector.hub.server import Hub
from rsb_connector.identifiers import NIHDI_SYSTEM, SSIN_OID, SSIN_SYSTEM
from rsb_connector.query import FindDocuments
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import SyncASGITransport

LUCAS = "87041213797"  # patient1: consent, links with the GP, nurse (excluded), physiotherapist, pharmacist
AMINA = "92021415810"  # patient2: consent, GMD link with the GP
MARC = "59031812513"  # no consent
BASE = "http://rsb-hub.test"
GLASS = "Patient unconscious at the emergency department, no relative reachable"


@pytest.fixture
def vault(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Iterator[Callable[[str], VaultClient]]:
    """``vault("gp")``: a client of the in-process hub signing as that sample identity."""
    opened: list[VaultClient] = []

    def make(name: str) -> VaultClient:
        client = VaultClient(
            BASE, transport=SyncASGITransport(rsb_hub.app), identity=rsb_identity(name), trust=rsb_pki.trust_store()
        )
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


def _http(hub: Hub, client: VaultClient, method: str, path: str, body: Any = None) -> httpx.Response:
    with httpx.Client(transport=SyncASGITransport(hub.app), base_url=BASE) as http:
        headers = {"authorization": f"Bearer {client.access_token()}", "content-type": "application/fhir+json"}
        return http.request(method, path, json=body, headers=headers)


def _consent(patient: str, kind: str = "retrospective") -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": CONSENT_TYPE_SYSTEM, "code": kind}]}],
        "patient": {"identifier": {"system": SSIN_SYSTEM, "value": patient}},
        "dateTime": "2026-01-05",
        "provision": {"type": "permit"},
    }


# ---------------------------------------------------------------------------------------------- consents


def test_patient_revokes_and_grants_own_consent(vault: Callable[[str], VaultClient]) -> None:
    amina = vault("patient2")
    assert amina.consent.status(AMINA).active
    revoked = amina.consent.revoke(AMINA)
    assert not revoked.active
    assert revoked.ended is not None
    assert not amina.consent.status(AMINA).active
    granted = amina.consent.grant(AMINA, "prospective")
    assert granted.type == "prospective"
    assert granted.active
    status = amina.consent.status(AMINA)
    assert status.consent == granted
    assert len(status.records) == 2


def test_consent_resource_is_valid_r4_and_located(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    pharmacist = vault("pharmacist")
    answer = _http(rsb_hub, pharmacist, "POST", "/fhir/Consent", _consent(MARC))
    assert answer.status_code == 201, answer.text
    resource = answer.json()
    Consent.model_validate(resource)
    assert answer.headers["location"].endswith(f"/fhir/Consent/{resource['id']}")
    assert resource["status"] == "active"
    assert resource["dateTime"] == "2026-01-05"
    assert resource["patient"]["identifier"] == {"system": SSIN_SYSTEM, "value": MARC}
    listed = _http(rsb_hub, pharmacist, "GET", f"/fhir/Consent?patient={MARC}").json()
    assert listed["resourceType"] == "Bundle"
    assert [e["resource"]["id"] for e in listed["entry"]] == [resource["id"]]


def test_nurse_cannot_register_a_consent(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    nurse = vault("nurse")
    with pytest.raises(AccessDenied) as caught:
        nurse.consent.grant(MARC)
    assert caught.value.rule == "not-allowed"
    assert "physicians and pharmacists" in caught.value.reason
    answer = _http(rsb_hub, nurse, "POST", "/fhir/Consent", _consent(MARC))
    assert answer.status_code == 403
    issue = answer.json()["issue"][0]
    assert issue["code"] == "forbidden"
    assert issue["details"]["coding"][0] == {"system": REFUSAL_SYSTEM, "code": "not-allowed"}
    refused = rsb_hub.audit.query(patient=MARC, action="consent", decision=False) if rsb_hub.audit else []
    assert refused, "the refusal is audited"


def test_second_consent_conflicts_and_revoking_none_is_not_found(vault: Callable[[str], VaultClient]) -> None:
    amina = vault("patient2")
    with pytest.raises(HubRefused) as conflict:
        amina.consent.grant(AMINA)
    assert "HTTP 409" in str(conflict.value)
    pharmacist = vault("pharmacist")
    with pytest.raises(HubRefused, match="no active consent"):
        pharmacist.consent.revoke(MARC)


def test_malformed_resources_are_400(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    gp = vault("gp")
    bad_status = {**_consent(MARC), "status": "maybe"}
    assert _http(rsb_hub, gp, "POST", "/fhir/Consent", bad_status).status_code == 400
    no_type = {**_consent(MARC), "category": [{"text": "consent"}]}
    assert _http(rsb_hub, gp, "POST", "/fhir/Consent", no_type).status_code == 400
    bad_ssin = _consent("12345678901")
    assert _http(rsb_hub, gp, "POST", "/fhir/Consent", bad_ssin).status_code == 400
    assert _http(rsb_hub, gp, "GET", "/fhir/Consent").status_code == 400
    assert _http(rsb_hub, gp, "DELETE", "/fhir/Consent/consent-999999").status_code == 404


def test_no_token_is_401(rsb_hub: Hub) -> None:
    with httpx.Client(transport=SyncASGITransport(rsb_hub.app), base_url=BASE) as http:
        answer = http.get(f"/fhir/Consent?patient={LUCAS}")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_another_patient_cannot_read_consents(vault: Callable[[str], VaultClient]) -> None:
    with pytest.raises(AccessDenied):
        vault("patient2").consent.status(LUCAS)


# ---------------------------------------------------------------------------------------------- links


def test_gp_declares_a_link_with_proof_and_may_then_read(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    gp = vault("gp")
    before = gp.check_access(MARC, "find")
    assert not before.allowed
    assert before.rule is not None
    assert before.rule.value == "consent"
    with pytest.raises(HubRefused, match="409"):
        gp.links.declare(MARC, type="gpconsultation", proof="eidreading")
    vault("pharmacist").consent.grant(MARC)
    link = gp.links.declare(MARC, type="gpconsultation", proof="eidreading")
    assert link.active
    assert link.proof == "eidreading"
    assert link.type == "gpconsultation"
    assert link.professional_nihii == str(gp.identity.nihii if gp.identity else "")
    assert gp.check_access(MARC, "read", document_class="labresult").allowed
    assert [x.id for x in gp.links.list(MARC)] == [link.id]
    listed = _http(rsb_hub, gp, "GET", f"/fhir/CareTeam?patient={MARC}").json()
    resource = listed["entry"][0]["resource"]
    CareTeam.model_validate(resource)
    assert resource["meta"]["profile"] == [LINK_PROFILE]
    revoked = gp.links.revoke(MARC)
    assert [r.active for r in revoked] == [False]
    assert not gp.check_access(MARC, "find").allowed


def test_link_without_proof_is_400_and_for_someone_else_403(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    gp = vault("gp")
    body = {
        "resourceType": "CareTeam",
        "status": "active",
        "category": [
            {"coding": [{"system": "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-THERAPEUTICLINKTYPE", "code": "gmd"}]}
        ],
        "subject": {"reference": f"Patient/{AMINA}"},
        "participant": [{"member": {"identifier": {"system": NIHDI_SYSTEM, "value": "12345625004"}}}],
    }
    assert _http(rsb_hub, gp, "POST", "/fhir/CareTeam", body).status_code == 400
    with pytest.raises(AccessDenied, match="own name"):
        gp.links.declare(AMINA, type="gmd", professional_nihii="43120755401")


def test_professional_sees_only_own_links_patient_sees_all(vault: Callable[[str], VaultClient]) -> None:
    lucas = vault("patient1")
    every = lucas.links.list(LUCAS)
    assert len({link.professional_nihii for link in every}) >= 4
    physio = vault("physiotherapist")
    own = physio.links.list(LUCAS)
    assert own
    assert {link.professional_nihii for link in own} == {str(physio.identity.nihii if physio.identity else "")}


# ---------------------------------------------------------------------------------------------- exclusions


def test_excluded_professional_is_refused_on_xds(vault: Callable[[str], VaultClient]) -> None:
    physio = vault("physiotherapist")
    assert physio.check_access(LUCAS, "find").allowed  # before: a carepath link
    lucas = vault("patient1")
    excluded = lucas.exclusions.add(LUCAS, "51834424527")
    assert excluded.active
    assert "51834424527" in [e.professional_nihii for e in lucas.exclusions.list(LUCAS)]
    assert physio.find(LUCAS) == []  # find results silently leave out what the caller may not see
    with pytest.raises(AccessDenied) as publish:
        physio.publish(b"physio note", patient=LUCAS, document_type="labresult", mime_type="text/plain")
    assert publish.value.rule == "exclusion"
    assert publish.value.fix
    decision = physio.check_access(LUCAS, "read", document_class="labresult")
    assert not decision.allowed
    assert decision.rule is not None
    assert decision.rule.value == "exclusion"
    with pytest.raises(HubRefused):
        physio.retrieve(seed_document_unique_id("labresult"))
    lifted = lucas.exclusions.remove(LUCAS, "51834424527")
    assert [e.active for e in lifted] == [False]
    assert physio.check_access(LUCAS, "find").allowed


def test_only_the_patient_excludes(vault: Callable[[str], VaultClient]) -> None:
    with pytest.raises(AccessDenied):
        vault("gp").exclusions.add(LUCAS, "51834424527")


def test_excluded_professional_sees_own_exclusion_only(vault: Callable[[str], VaultClient]) -> None:
    nurse = vault("nurse")  # the seeded case: Lucas excludes the nurse
    assert [e.professional_nihii for e in nurse.exclusions.list(LUCAS)] == ["43120755401"]
    assert vault("gp").exclusions.list(LUCAS) == []


# ---------------------------------------------------------------------------------------------- audit trail


def test_patient_reads_own_trail_and_sees_who_accessed(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    gp = vault("gp")
    gp.find(LUCAS)
    trail = vault("patient1").consent.trail(LUCAS)
    for resource in trail:
        AuditEvent.model_validate(resource)
    finds = [
        r
        for r in trail
        if any(c["code"] == "find" for c in r["subtype"]) and r["agent"][0]["who"].get("identifier", {}).get("value")
    ]
    assert any(r["agent"][0]["who"]["identifier"] == {"system": NIHDI_SYSTEM, "value": "12345625004"} for r in finds)
    assert LUCAS not in str(trail), "SSINs are masked"
    with pytest.raises(AccessDenied):
        gp.consent.trail(LUCAS)


def test_break_the_glass_is_flagged_in_the_trail(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    specialist = seed_callers()["specialist"]  # their link with Lucas expired
    glass = dataclasses.replace(specialist, break_the_glass=GLASS)
    result = rsb_hub.registry.stored_query(FindDocuments(patient_id=f"{LUCAS}^^^&{SSIN_OID}&ISO"), caller=glass)
    assert result is not None
    trail = vault("patient1").consent.trail(LUCAS)
    flagged = [r for r in trail if r.get("purposeOfUse")]
    assert flagged
    assert flagged[-1]["purposeOfUse"][0]["coding"][0]["code"] == "BTG"
    assert flagged[-1]["agent"][0]["who"]["identifier"]["value"] == "14087170580"


def test_check_access_needs_a_class_for_read(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    gp = vault("gp")
    assert _http(rsb_hub, gp, "GET", f"/fhir/$check-access?patient={LUCAS}&action=read").status_code == 400
    answer = _http(rsb_hub, gp, "GET", f"/fhir/$check-access?patient={LUCAS}&action=find").json()
    assert answer == {"allowed": True, "rule": None, "reason": answer["reason"], "fix": None, "break_the_glass": False}


# ---------------------------------------------------------------------------------------------- patient feed

FRESH = "68110912345"  # a valid SSIN no seed uses


def _patient(ssin: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SSIN_SYSTEM, "value": ssin}],
        "birthDate": "1968-11-09",
    }


def test_patient_feed_makes_a_patient_publishable(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    gp = vault("gp")
    with pytest.raises(HubRefused) as refused:
        gp.publish(
            b"%PDF-1.7 before the feed",
            patient=FRESH,
            document_type="contactreport",
            mime_type="application/pdf",
        )
    assert [p.code for p in refused.value.problems] == ["XDSUnknownPatientId"]

    assert _http(rsb_hub, gp, "POST", "/fhir/Patient", _patient(FRESH)).status_code == 403
    hospital = vault("hospital")
    first = _http(rsb_hub, hospital, "POST", "/fhir/Patient", _patient(FRESH))
    assert first.status_code == 201, first.text
    assert first.json()["identifier"] == [{"system": SSIN_SYSTEM, "value": FRESH}]
    assert _http(rsb_hub, hospital, "POST", "/fhir/Patient", _patient(FRESH)).status_code == 200

    gp.consent.grant(FRESH)
    gp.links.declare(FRESH)
    receipt = gp.publish(
        b"%PDF-1.7 after the feed", patient=FRESH, document_type="contactreport", mime_type="application/pdf"
    )
    assert gp.find(patient=FRESH)[0].unique_id == receipt.document.unique_id
    assert rsb_hub.audit is not None
    feeds = [e for e in rsb_hub.audit.for_patient(FRESH) if e.action == "patient-feed"]
    assert [(e.decision, e.reason) for e in feeds] == [
        ("denied", "only a hospital (or the hub operator) feeds the patient registry"),
        ("allowed", "patient registered"),
        ("allowed", "patient already known"),
    ]


def test_patient_feed_refuses_bis_numbers_and_bad_bodies(rsb_hub: Hub, vault: Callable[[str], VaultClient]) -> None:
    hospital = vault("hospital")
    bis = _http(rsb_hub, hospital, "POST", "/fhir/Patient", _patient("87441213786"))
    assert bis.status_code == 403, bis.text
    assert "BIS" in bis.json()["issue"][0]["diagnostics"]
    none = _http(rsb_hub, hospital, "POST", "/fhir/Patient", {"resourceType": "Patient"})
    assert none.status_code == 400
