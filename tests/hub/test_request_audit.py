"""One request, one audit event: MHD reads (ITI-66, ITI-67, ITI-68) are audited under their own transaction, once,
however many registry steps they take; and a refused break-the-glass reason is audited under the patient concerned
whenever the hub can know it (the patient searched for, the patient of the document asked for), with the same answer
to the caller whether the document exists or not.

Against the in-process seeded hub (see :mod:`rsb_connector.hub.seed_consent`): the GP has a therapeutic link with
Lucas and wrote his documents (among them a lab result); the specialist's link with Lucas has expired.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rsb_connector.hub.audit import AuditEvent
from rsb_connector.hub.auth import caller_from_principal
from rsb_connector.hub.registry import Caller
from rsb_connector.hub.seed_consent import seed_document_unique_id
from rsb_connector.hub.server import Hub
from rsb_connector.identifiers import Ssin
from rsb_connector.metadata.builder import new_document, new_submission
from rsb_connector.mhd import build_provide_bundle
from rsb_connector.mhd.mapping import as_json, resource_id_for
from rsb_connector.query import FindDocuments

LUCAS = "87041213797"
BASE = "http://rsb-hub.test"
LAB = seed_document_unique_id("labresult")
UNKNOWN_ID = "0f0f0f0f-0000-4000-8000-000000000000"
SHORT = "too short"


class Trail:
    """The audit events written since the last :meth:`mark`."""

    def __init__(self, hub: Hub) -> None:
        assert hub.audit is not None
        self.audit = hub.audit
        self.seq = 0
        self.mark()

    def mark(self) -> None:
        events = self.audit.query(limit=1)
        self.seq = events[-1].seq if events else 0

    def new(self) -> list[AuditEvent]:
        return [e for e in self.audit.query() if e.seq > self.seq]


@pytest.fixture
def trail(rsb_hub: Hub) -> Trail:
    return Trail(rsb_hub)


def _rid(hub: Hub, unique_id: str) -> str:
    with hub.store.read() as r:
        stored = r.entries(unique_ids=[unique_id])
    rid = resource_id_for(stored[0].entry.entry_uuid)
    assert rid is not None
    return rid


def _search(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return http.get(
        "/fhir/DocumentReference", params={"patient": f"Patient/{LUCAS}", "status": "current"}, headers=headers
    )


def _lists(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return http.get("/fhir/List", params={"patient": f"Patient/{LUCAS}", "code": "submissionset"}, headers=headers)


def _entries(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return [e["resource"] for e in answer.json().get("entry", [])]


def _summary(events: list[AuditEvent]) -> list[tuple[str, str | None, str | None, str]]:
    return [(e.action, e.transaction, e.patient, e.decision.value) for e in events]


# ------------------------------------------------------------------------------------- one request, one event


def test_one_iti67_search_is_one_find_event(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = bearer("gp")
    trail.mark()
    found = {str(r["masterIdentifier"]["value"]).removeprefix("urn:oid:") for r in _entries(_search(http, headers))}
    assert LAB in found  # so the search also looked up the documents' relationships (GetAssociations)
    events = trail.new()
    assert _summary(events) == [("find", "ITI-67", LUCAS, "allowed")]
    assert set(events[0].documents) == found


def test_one_iti66_search_is_one_find_event(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = bearer("gp")
    trail.mark()
    lists = _entries(_lists(http, headers))
    assert lists
    referenced = {e["item"]["reference"].removeprefix("DocumentReference/") for r in lists for e in r.get("entry", [])}
    assert _rid(rsb_hub, LAB) in referenced  # members were looked up (GetAssociations, GetDocuments)
    events = trail.new()
    assert _summary(events) == [("find", "ITI-66", LUCAS, "allowed")]
    assert LAB in events[0].documents
    assert len(events[0].documents) == len(referenced)


def test_one_list_read_is_one_iti66_event(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = bearer("gp")
    list_id = _entries(_lists(http, headers))[0]["id"]
    trail.mark()
    assert http.get(f"/fhir/List/{list_id}", headers=headers).status_code == 200
    assert _summary(trail.new()) == [("find", "ITI-66", LUCAS, "allowed")]


def test_one_document_reference_read_is_one_iti67_event(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = bearer("gp")
    trail.mark()
    answer = http.get(f"/fhir/DocumentReference/{_rid(rsb_hub, LAB)}", headers=headers)
    assert answer.status_code == 200, answer.text
    events = trail.new()
    assert _summary(events) == [("find", "ITI-67", LUCAS, "allowed")]
    assert events[0].documents == (LAB,)


def test_one_iti68_read_is_one_read_event(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = {**bearer("gp"), "accept": "*/*"}
    trail.mark()
    answer = http.get(f"/fhir/Binary/{_rid(rsb_hub, LAB)}", headers=headers)
    assert answer.status_code == 200, answer.text
    events = trail.new()
    assert _summary(events) == [("read", "ITI-68", LUCAS, "allowed")]
    assert events[0].documents == (LAB,)


def test_an_iti68_read_refused_is_one_denied_read_and_looks_like_an_unknown_document(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = {**bearer("specialist"), "accept": "*/*"}  # the specialist's link with Lucas has expired
    rid = _rid(rsb_hub, LAB)
    trail.mark()
    hidden = http.get(f"/fhir/Binary/{rid}", headers=headers)
    events = trail.new()
    assert _summary(events) == [("read", "ITI-68", LUCAS, "denied")]
    assert events[0].documents == (LAB,)
    assert events[0].rule == "therapeutic-link"

    trail.mark()
    unknown = http.get(f"/fhir/Binary/{UNKNOWN_ID}", headers=headers)
    assert _summary(trail.new()) == [("read", "ITI-68", None, "denied")]
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.text.replace(rid, "<id>") == unknown.text.replace(UNKNOWN_ID, "<id>")


def test_an_iti65_submission_is_audited_as_iti65(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    entry = new_document(b"a report\n", patient=LUCAS, document_type="contactreport", mime_type="text/plain")
    submission = new_submission([entry])
    bundle = as_json(build_provide_bundle(submission, {entry.entry_uuid: b"a report\n"}))
    headers = {**bearer("specialist"), "content-type": "application/fhir+json"}  # no valid link with Lucas
    trail.mark()
    answer = http.post("/fhir", json=bundle, headers=headers)
    assert answer.status_code == 403, answer.text
    assert _summary(trail.new()) == [("publish", "ITI-65", LUCAS, "denied")]


def test_an_xds_stored_query_is_still_one_iti18_event(rsb_hub: Hub, trail: Trail) -> None:
    gp = _professional(rsb_hub, "gp")
    rsb_hub.registry.stored_query(FindDocuments(patient_id=Ssin(LUCAS).to_cx()), caller=gp)
    assert _summary(trail.new()) == [("find", "ITI-18", LUCAS, "allowed")]


# ------------------------------------------------------------------------ a wrong break-the-glass reason: audited


def _patient_trail(http: httpx.Client, bearer: Callable[..., dict[str, str]]) -> list[dict[str, Any]]:
    return _entries(http.get("/fhir/AuditEvent", params={"patient": LUCAS}, headers=bearer("patient1")))


def _refused_glass(events: list[AuditEvent]) -> list[tuple[str, str | None, str | None, str]]:
    assert all(e.rule == "break-the-glass-reason" and e.break_the_glass == SHORT for e in events)
    return _summary(events)


def test_a_wrong_reason_on_iti66_is_audited_for_the_patient(
    http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = bearer("specialist", glass=SHORT)
    trail.mark()
    answer = _lists(http, headers)
    assert answer.status_code == 403, answer.text
    assert _refused_glass(trail.new()) == [("find", "ITI-66", LUCAS, "denied")]
    seen = [r for r in _patient_trail(http, bearer) if r.get("purposeOfUse") and r["outcome"] == "4"]
    assert seen, "Lucas sees the refused attempt in his trail"
    assert seen[-1]["purposeOfUse"][0]["text"] == SHORT


def test_a_wrong_reason_on_iti68_is_audited_for_the_documents_patient_without_telling_the_caller(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    headers = {**bearer("specialist", glass=SHORT), "accept": "*/*"}
    trail.mark()
    existing = http.get(f"/fhir/Binary/{_rid(rsb_hub, LAB)}", headers=headers)  # a document the caller cannot see
    assert _refused_glass(trail.new()) == [("read", "ITI-68", LUCAS, "denied")]

    trail.mark()
    unknown = http.get(f"/fhir/Binary/{UNKNOWN_ID}", headers=headers)
    assert _refused_glass(trail.new()) == [("read", "ITI-68", None, "denied")]
    # the same answer: the caller cannot tell whether the document exists
    assert existing.status_code == unknown.status_code == 403
    assert existing.json() == unknown.json()

    seen = [r for r in _patient_trail(http, bearer) if r.get("purposeOfUse") and r["outcome"] == "4"]
    assert seen, "Lucas sees the refused attempt in his trail"


def test_a_wrong_reason_on_a_document_reference_read_is_audited_for_the_patient(
    rsb_hub: Hub, http: httpx.Client, bearer: Callable[..., dict[str, str]], trail: Trail
) -> None:
    trail.mark()
    answer = http.get(f"/fhir/DocumentReference/{_rid(rsb_hub, LAB)}", headers=bearer("specialist", glass=SHORT))
    assert answer.status_code == 403
    assert _refused_glass(trail.new()) == [("find", "ITI-67", LUCAS, "denied")]


def _professional(hub: Hub, name: str, glass: str | None = None) -> Caller:
    """The caller a sample professional's verified certificate makes, with a break-the-glass reason."""
    assert hub.pki is not None
    caller = caller_from_principal(hub.pki.load_identity(name).principal)
    return dataclasses.replace(caller, break_the_glass=glass)


def test_a_wrong_reason_on_iti43_is_audited_for_the_documents_patient(rsb_hub: Hub, trail: Trail) -> None:
    specialist = _professional(rsb_hub, "specialist", glass=SHORT)
    repository = rsb_hub.registry.repository_unique_id
    outcome = rsb_hub.registry.retrieve([(repository, LAB)], caller=specialist)
    assert [p.code for p in outcome.problems] == ["LocalPolicyRestrictionError"]
    assert _refused_glass(trail.new()) == [("read", "ITI-43", LUCAS, "denied")]
    trail.mark()
    unknown = rsb_hub.registry.retrieve([(repository, "1.2.3.4.404")], caller=specialist)
    assert unknown.problems == outcome.problems
    assert _refused_glass(trail.new()) == [("read", "ITI-43", None, "denied")]
