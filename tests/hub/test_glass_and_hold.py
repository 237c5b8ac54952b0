"""Break-the-glass over FHIR (``X-Break-The-Glass`` on ITI-66/67/68) and held-back documents over HTTP
(``POST /fhir/DocumentReference/$hold-back`` and ``$release``), against the in-process seeded hub with real bearer
tokens from the development PKI.

The seeded facts used (see :mod:`rsb_connector.hub.seed_consent`): the specialist's therapeutic link with Lucas has
expired; Lucas excludes the nurse; the GP wrote four documents about Lucas, among them a lab result (``N``), a
contact report held back from Lucas, and a very restricted (``V``) note.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.parameters import Parameters

from rsb_connector.hub.auth import BREAK_THE_GLASS_HEADER
from rsb_connector.hub.seed_consent import seed_document_unique_id
from rsb_connector.hub.server import Hub
from rsb_connector.mhd.mapping import resource_id_for

LUCAS = "87041213797"
BASE = "http://rsb-hub.test"
GLASS = "Patient unconscious at the emergency department, no relative reachable"
LAB = seed_document_unique_id("labresult")
HELD = seed_document_unique_id("contactreport")
VERY_RESTRICTED = seed_document_unique_id("note-v")


def _search(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return http.get(
        "/fhir/DocumentReference", params={"patient": f"Patient/{LUCAS}", "status": "current"}, headers=headers
    )


def _unique_ids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    bundle = answer.json()
    assert bundle["resourceType"] == "Bundle"
    return {str(e["resource"]["masterIdentifier"]["value"]).removeprefix("urn:oid:") for e in bundle.get("entry", [])}


def _binary(rsb_hub: Hub, unique_id: str) -> str:
    with rsb_hub.store.read() as r:
        stored = r.entries(unique_ids=[unique_id])
    rid = resource_id_for(stored[0].entry.entry_uuid)
    assert rid is not None
    return f"/fhir/Binary/{rid}"


def _issue(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    issue: dict[str, Any] = body["issue"][0]
    return issue


def _xds_code(answer: httpx.Response) -> str:
    return str(_issue(answer)["details"]["coding"][0]["code"])


def _trail(http: httpx.Client, bearer: Callable[..., dict[str, str]]) -> list[dict[str, Any]]:
    answer = http.get("/fhir/AuditEvent", params={"patient": LUCAS}, headers=bearer("patient1"))
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


# ---------------------------------------------------------------------------------------------- break-the-glass


def test_a_professional_without_a_link_reads_by_breaking_the_glass(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]]
) -> None:
    assert LAB not in _unique_ids(_search(http, bearer("specialist")))  # the link has expired
    assert http.get(_binary(rsb_hub, LAB), headers=bearer("specialist")).status_code == 404

    found = _unique_ids(_search(http, bearer("specialist", glass=GLASS)))
    assert LAB in found
    assert VERY_RESTRICTED not in found  # break-the-glass never opens a V document
    document = http.get(_binary(rsb_hub, LAB), headers={**bearer("specialist", glass=GLASS), "accept": "*/*"})
    assert document.status_code == 200, document.text
    with rsb_hub.store.read() as r:
        assert len(document.content) == r.entries(unique_ids=[LAB])[0].entry.size

    assert rsb_hub.audit is not None
    reads = rsb_hub.audit.query(patient=LUCAS, action="read")
    assert any(e.break_the_glass == GLASS and e.allowed and LAB in e.documents for e in reads)
    flagged = [r for r in _trail(http, bearer) if r.get("purposeOfUse")]
    assert flagged, "the patient sees the break-the-glass access in their trail"
    assert {r["purposeOfUse"][0]["text"] for r in flagged} == {GLASS}
    assert {r["purposeOfUse"][0]["coding"][0]["code"] for r in flagged} == {"BTG"}
    assert {r["agent"][0]["who"]["identifier"]["value"] for r in flagged} == {"14087170580"}


def test_break_the_glass_does_not_override_an_exclusion(
    http: httpx.Client, bearer: Callable[..., dict[str, str]]
) -> None:
    assert _unique_ids(_search(http, bearer("nurse", glass=GLASS))) == set()


@pytest.mark.parametrize("reason", ["too short", "x" * 201, "   nine 9   "])
def test_a_reason_of_the_wrong_length_is_refused_and_audited_for_the_patient(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], reason: str
) -> None:
    answer = _search(http, bearer("specialist", glass=reason))
    assert answer.status_code == 403, answer.text
    assert _xds_code(answer) == "LocalPolicyRestrictionError"
    assert "break-the-glass reason" in _issue(answer)["diagnostics"]
    assert "entry" not in answer.json()
    refused = [r for r in _trail(http, bearer) if r["outcome"] == "4" and r.get("purposeOfUse")]
    assert refused, "the refused attempt shows in the patient's trail"
    assert refused[-1]["extension"][0]["valueCode"] == "break-the-glass-reason"


def test_a_wrong_reason_is_refused_on_retrieve_too(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]]
) -> None:
    answer = http.get(_binary(rsb_hub, LAB), headers=bearer("gp", glass="short"))
    assert answer.status_code == 403
    assert _xds_code(answer) == "LocalPolicyRestrictionError"


def test_a_reason_in_utf8_is_kept_as_text(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]]
) -> None:
    reason = "Réanimation : patient inconscient, aucun proche joignable"
    headers = bearer("specialist")
    raw = [(k.encode(), v.encode()) for k, v in headers.items()] + [
        (BREAK_THE_GLASS_HEADER.encode(), reason.encode("utf-8"))
    ]
    answer = http.get("/fhir/DocumentReference", params={"patient": LUCAS, "status": "current"}, headers=raw)
    assert LAB in _unique_ids(answer)
    assert rsb_hub.audit is not None
    assert any(e.break_the_glass == reason for e in rsb_hub.audit.query(patient=LUCAS, action="find"))


@pytest.mark.parametrize("who", ["patient1", "hospital"])
def test_patients_and_organisations_cannot_break_the_glass(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], who: str
) -> None:
    answer = _search(http, bearer(who, glass=GLASS))
    assert answer.status_code == 403
    assert _issue(answer)["code"] == "forbidden"
    assert "cannot break the glass" in _issue(answer)["diagnostics"]
    assert LUCAS not in answer.text


def test_a_repeated_header_is_400(http: httpx.Client, bearer: Callable[..., dict[str, str]]) -> None:
    headers = [(k, v) for k, v in bearer("specialist").items()]
    headers += [(BREAK_THE_GLASS_HEADER, GLASS), (BREAK_THE_GLASS_HEADER, GLASS)]
    answer = http.get("/fhir/DocumentReference", params={"patient": LUCAS, "status": "current"}, headers=headers)
    assert answer.status_code == 400


def test_publishing_does_not_break_the_glass(http: httpx.Client, bearer: Callable[..., dict[str, str]]) -> None:
    headers = {**bearer("specialist", glass=GLASS), "content-type": "application/fhir+json"}
    answer = http.post("/fhir", json={"resourceType": "Bundle", "type": "transaction"}, headers=headers)
    assert answer.status_code == 400
    assert BREAK_THE_GLASS_HEADER in _issue(answer)["diagnostics"]


def test_the_capability_statement_documents_both_features(http: httpx.Client) -> None:
    statement = http.get("/fhir/metadata").json()
    CapabilityStatement.model_validate(statement)
    rest = statement["rest"][0]
    assert BREAK_THE_GLASS_HEADER in rest["security"]["description"]
    document_reference = next(r for r in rest["resource"] if r["type"] == "DocumentReference")
    assert [o["name"] for o in document_reference["operation"]] == ["hold-back", "release"]


# ---------------------------------------------------------------------------------------------- held back


def _parameters(unique_id: str | None, until: str | None = None, **value: Any) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if unique_id is not None:
        parameters.append({"name": "uniqueId", **(value or {"valueString": unique_id})})
    if until is not None:
        parameters.append({"name": "until", "valueDate": until})
    return {"resourceType": "Parameters", "parameter": parameters}


def _operation(http: httpx.Client, headers: dict[str, str], name: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(
        f"/fhir/DocumentReference/${name}", json=body, headers={**headers, "content-type": "application/fhir+json"}
    )


def test_the_author_holds_a_document_back_and_releases_it(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]]
) -> None:
    assert LAB in _unique_ids(_search(http, bearer("patient1")))
    until = (date.today() + timedelta(days=30)).isoformat()
    held = _operation(http, bearer("gp"), "hold-back", _parameters(LAB, until))
    assert held.status_code == 200, held.text
    Parameters.model_validate(held.json())
    assert held.json()["parameter"] == [
        {"name": "uniqueId", "valueString": LAB},
        {"name": "status", "valueCode": "held-back"},
        {"name": "until", "valueDate": until},
    ]
    assert LAB not in _unique_ids(_search(http, bearer("patient1")))
    assert http.get(_binary(rsb_hub, LAB), headers=bearer("patient1")).status_code == 404
    assert LAB in _unique_ids(_search(http, bearer("gp")))  # professionals are not affected

    released = _operation(http, bearer("gp"), "release", _parameters(f"urn:oid:{LAB}"))
    assert released.status_code == 200, released.text
    assert released.json()["parameter"][1] == {"name": "status", "valueCode": "released"}
    assert LAB in _unique_ids(_search(http, bearer("patient1")))
    assert rsb_hub.audit is not None
    holds = rsb_hub.audit.query(patient=LUCAS, action="hold")
    assert [(e.decision, e.documents) for e in holds[-2:]] == [("allowed", (LAB,)), ("allowed", (LAB,))]


def test_a_hold_for_good_and_a_valueidentifier(http: httpx.Client, bearer: Callable[..., dict[str, str]]) -> None:
    body = _parameters(LAB, valueIdentifier={"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{LAB}"})
    held = _operation(http, bearer("gp"), "hold-back", body)
    assert held.status_code == 200, held.text
    assert [p["name"] for p in held.json()["parameter"]] == ["uniqueId", "status"]
    assert LAB not in _unique_ids(_search(http, bearer("patient1")))


def test_the_seeded_held_back_report_is_released_to_the_patient(
    http: httpx.Client, bearer: Callable[..., dict[str, str]]
) -> None:
    assert HELD not in _unique_ids(_search(http, bearer("patient1")))
    assert _operation(http, bearer("gp"), "release", _parameters(HELD)).status_code == 200
    assert HELD in _unique_ids(_search(http, bearer("patient1")))
    again = _operation(http, bearer("gp"), "release", _parameters(HELD))
    assert again.status_code == 404
    assert "not held back" in _issue(again)["diagnostics"]


@pytest.mark.parametrize("who", ["specialist", "patient1"])
def test_only_an_author_holds_back_and_existence_does_not_leak(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], who: str
) -> None:
    known = _operation(http, bearer(who), "hold-back", _parameters(LAB))
    unknown = _operation(http, bearer(who), "hold-back", _parameters("2.25.1234567890"))
    assert known.status_code == unknown.status_code == 403
    assert _issue(known)["diagnostics"].replace(LAB, "?") == _issue(unknown)["diagnostics"].replace(
        "2.25.1234567890", "?"
    )
    assert _operation(http, bearer(who), "release", _parameters(HELD)).status_code == 403
    assert HELD not in _unique_ids(_search(http, bearer("patient1")))


def test_a_day_that_has_come_is_refused(http: httpx.Client, bearer: Callable[..., dict[str, str]]) -> None:
    answer = _operation(
        http, bearer("gp"), "hold-back", _parameters(LAB, (date.today() - timedelta(days=1)).isoformat())
    )
    assert answer.status_code == 409
    assert "hides nothing" in _issue(answer)["diagnostics"]


@pytest.mark.parametrize(
    "body",
    [
        _parameters(None),
        _parameters(LAB, "next week"),
        _parameters(LAB, "2030-01-01T00:00:00Z"),
        {"resourceType": "Parameters", "parameter": [{"name": "document", "valueString": LAB}]},
        {"resourceType": "Parameters", "parameter": [{"name": "uniqueId"}]},
        {"resourceType": "Parameters", "parameter": [{"name": "uniqueId", "valueString": LAB}] * 2},
        {"resourceType": "Consent"},
    ],
    ids=["no-uniqueid", "until-text", "until-datetime", "unknown-name", "no-value", "twice", "not-parameters"],
)
def test_malformed_operations_are_400(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], body: dict[str, Any]
) -> None:
    answer = _operation(http, bearer("gp"), "hold-back", body)
    assert answer.status_code == 400, answer.text


def test_holding_back_needs_a_token(http: httpx.Client) -> None:
    answer = http.post("/fhir/DocumentReference/$hold-back", json=_parameters(LAB))
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Bearer")
