"""Consent cases (``conformance/catalogue/consent.toml``): the hub enforces the Belgian sharing rules and audits them.

The cases talk to the hub as its users would: XDS.b with the raw peer of :mod:`~rsb_connector.conformance.wire`
(signed as the identity concerned, answers checked), MHD and the consent resources with raw FHIR requests and bearer
tokens (:meth:`~rsb_connector.conformance.context.CaseContext.bearer`), so that every check is made on what came over
the wire: XDS error codes and locations, HTTP statuses, OperationOutcomes, audit events.

Most cases bring their own patient (:meth:`~rsb_connector.conformance.context.CaseContext.new_patient`). A case that
needs the patient's own identity (an exclusion, a held-back document, the patient's audit trail) uses the seeded
sample patient ``patient1`` and puts back what it changed in a ``finally`` block, whatever happened.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import date, timedelta
from typing import Any, Final

import httpx

from ...identifiers import NIHDI_SYSTEM, SSIN_SYSTEM, Ssin
from ...metadata.builder import new_document, new_submission
from ...metadata.model import AvailabilityStatus, DocumentEntry, Submission
from ...mhd.bundle import build_provide_bundle
from ...mhd.constants import BREAK_THE_GLASS_HEADER
from ...mhd.mapping import as_json
from ...query import FindDocuments, GetDocuments
from ...xds import constants as c
from ...xds.iti18 import QueryResponse
from ...xds.iti43 import RetrieveResponse
from ...xds.rs import RegistryResult
from .. import wire
from ..context import AUTHOR, CaseContext, MissingNeed
from . import implements
from ._common import attachment_url

FHIR_JSON: Final = "application/fhir+json"
XDS_CODE_SYSTEM: Final = "https://profiles.ihe.net/ITI/TF/Volume3/ch-4.2.html#4.2.4.1"
CONSENT_TYPE_SYSTEM: Final = "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-CONSENTTYPE"
LINK_TYPE_SYSTEM: Final = "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-THERAPEUTICLINKTYPE"
LINK_PROFILE: Final = "urn:rsb-connector:StructureDefinition:therapeutic-link"
PROOF_EXTENSION: Final = "urn:rsb-connector:StructureDefinition:therapeutic-link-proof"
PROOF_SYSTEM: Final = "urn:be:fgov:ehealth:therapeuticlink:prooftype"
PARTICIPATION_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
POLICY_ERROR: Final = "LocalPolicyRestrictionError"
UNKNOWN_DOCUMENT: Final = "XDSDocumentUniqueIdError"
DENIED: Final = "4"
ALLOWED: Final = "0"


# ============================================================================================== building blocks


def _reason(t: CaseContext) -> str:
    """A break-the-glass reason of 10-200 characters, unique to this run of the case (to find it in the trail)."""
    return f"Conformance {t.case.id}: patient unconscious at the emergency department, ref {uuid.uuid4().hex[:12]}"


def _content(t: CaseContext, label: str) -> bytes:
    return f"rsb-connector conformance {t.case.id}: {label} ({uuid.uuid4()})\n".encode()


def _entry(
    t: CaseContext, patient: str, label: str, *, who: str = AUTHOR, document_type: str, confidentiality: str = "N"
) -> tuple[DocumentEntry, bytes]:
    content = _content(t, label)
    entry = new_document(
        content,
        patient=patient,
        document_type=document_type,
        author=t.author(who),
        mime_type="text/plain",
        title=f"{t.case.id} {label}",
        confidentiality=confidentiality,
        unique_id=t.unique_id(),
    )
    return entry, content


def _submission(t: CaseContext, entries: Sequence[tuple[DocumentEntry, bytes]], who: str = AUTHOR) -> Submission:
    return new_submission([e for e, _ in entries], author=t.author(who), unique_id=t.unique_id())


def _provide(
    t: CaseContext, who: str, entries: Sequence[tuple[DocumentEntry, bytes]], submission: Submission | None = None
) -> RegistryResult:
    """ITI-41 (MTOM) of ``entries`` in one submission, signed as ``who``."""
    sub = submission or _submission(t, entries, who)
    return wire.provide(t.peer(who), sub, {e.entry_uuid: data for e, data in entries})


def _errors(result: RegistryResult | QueryResponse | RetrieveResponse) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in result.problems if p.is_error]


def _check_success(t: CaseContext, result: RegistryResult, what: str) -> None:
    t.check(
        result.status == c.STATUS_SUCCESS and not _errors(result),
        f"{what}: RegistryResponse status Success",
        got=(result.status.rpartition(":")[2], [str(p) for p in result.problems]),
    )


def _check_policy_refusal(t: CaseContext, result: RegistryResult, rule: str) -> None:
    """Failure with exactly one error: LocalPolicyRestrictionError at Policy[<rule>]."""
    t.check(
        result.status == c.STATUS_FAILURE and _errors(result) == [(POLICY_ERROR, f"Policy[{rule}]")],
        f"RegistryResponse Failure with exactly one error, {POLICY_ERROR} at location Policy[{rule}]",
        got=(result.status.rpartition(":")[2], [str(p) for p in result.problems]),
    )


def _find(t: CaseContext, who: str, patient: str) -> QueryResponse:
    """FindDocuments (Approved) for ``patient`` as ``who``; the answer must be a Success."""
    answer = wire.query(t.peer(who), FindDocuments(patient_id=Ssin(patient).to_cx()))
    t.check(
        answer.status == c.STATUS_SUCCESS and not answer.problems,
        f"FindDocuments as {who}: Success without errors or warnings",
        got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
    )
    return answer


def _get(t: CaseContext, who: str, unique_ids: Sequence[str]) -> QueryResponse:
    answer = wire.query(t.peer(who), GetDocuments(unique_ids=tuple(unique_ids)))
    t.check(
        answer.status == c.STATUS_SUCCESS and not answer.problems,
        f"GetDocuments as {who}: Success without errors or warnings",
        got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
    )
    return answer


def _ids(entries: Sequence[DocumentEntry]) -> list[str]:
    return sorted(e.unique_id or "" for e in entries)


def _repository(t: CaseContext, unique_id: str) -> str:
    """The repositoryUniqueId of a registered document, as its author sees it (setup)."""
    found = wire.query(t.peer(AUTHOR), GetDocuments(unique_ids=(unique_id,))).entries
    if len(found) != 1 or not found[0].repository_unique_id:
        raise RuntimeError(f"setup: the author's GetDocuments does not give the repository of {unique_id}")
    return found[0].repository_unique_id


def _retrieve(
    t: CaseContext, who: str, repository: str, unique_ids: Sequence[str]
) -> tuple[RetrieveResponse, dict[str, bytes]]:
    return wire.retrieve(t.peer(who), [(repository, uid) for uid in unique_ids])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------- FHIR


def _headers(t: CaseContext, who: str, *, glass: str | None = None, accept: str = FHIR_JSON) -> dict[str, str]:
    headers = {**t.bearer(who), "accept": accept}
    if glass is not None:
        headers[BREAK_THE_GLASS_HEADER] = glass
    return headers


def _search(t: CaseContext, who: str, patient: str, *, glass: str | None = None) -> httpx.Response:
    """ITI-67: the patient's current DocumentReferences, as ``who``."""
    params = {"patient": f"Patient/{patient}", "status": "current"}
    return t.http().get("/fhir/DocumentReference", params=params, headers=_headers(t, who, glass=glass))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _listed(t: CaseContext, response: httpx.Response) -> list[str]:
    """The uniqueIds (masterIdentifier) of an ITI-67 searchset; the answer must be 200 with a searchset Bundle."""
    body = _json(response)
    t.check(
        response.status_code == 200 and body.get("resourceType") == "Bundle" and body.get("type") == "searchset",
        "ITI-67 answers HTTP 200 with a searchset Bundle",
        got=(response.status_code, body.get("resourceType"), _diagnostics(body)),
    )
    ids = []
    for item in body.get("entry") or []:
        value = ((item.get("resource") or {}).get("masterIdentifier") or {}).get("value", "")
        ids.append(str(value).removeprefix("urn:oid:"))
    t.check(body.get("total", len(ids)) == len(ids), "the Bundle's total counts its entries", got=body.get("total"))
    return sorted(ids)


def _attachment_url(t: CaseContext, who: str, patient: str, unique_id: str) -> str:
    """The ITI-68 URL of a document (its DocumentReference's attachment.url), as ``who`` (who may see it) finds it."""
    url = attachment_url(_json(_search(t, who, patient)), unique_id)
    if url:
        return url
    raise RuntimeError(f"setup: {who} does not find the DocumentReference of {unique_id} over MHD (ITI-67)")


def _diagnostics(body: Mapping[str, Any]) -> list[str]:
    return [str(i.get("diagnostics", "")) for i in body.get("issue") or [] if isinstance(i, Mapping)]


def _outcome_codes(body: Mapping[str, Any]) -> list[str]:
    """The XDS error codes an OperationOutcome carries (issue.details.coding)."""
    codes = []
    for issue in body.get("issue") or []:
        for coding in ((issue.get("details") or {}).get("coding")) or []:
            if coding.get("code"):
                codes.append(str(coding["code"]))
    return codes


def _check_policy_403(t: CaseContext, response: httpx.Response, what: str) -> None:
    body = _json(response)
    t.check(
        response.status_code == 403
        and body.get("resourceType") == "OperationOutcome"
        and POLICY_ERROR in _outcome_codes(body)
        and "entry" not in body,
        f"{what}: HTTP 403 with an OperationOutcome carrying {POLICY_ERROR}, and nothing else",
        got=(response.status_code, body.get("resourceType"), _outcome_codes(body), _diagnostics(body)),
    )


def _consent_resource(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": CONSENT_TYPE_SYSTEM, "code": "retrospective"}]}],
        "patient": {"reference": f"Patient/{patient}", "identifier": {"system": SSIN_SYSTEM, "value": patient}},
        "provision": {"type": "permit"},
    }


def _exclusion_resource(patient: str, nihii: str) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{patient}"},
        "provision": {
            "type": "deny",
            "actor": [
                {
                    "role": {"coding": [{"system": PARTICIPATION_SYSTEM, "code": "PRCP"}]},
                    "reference": {"identifier": {"system": NIHDI_SYSTEM, "value": nihii}},
                }
            ],
        },
    }


def _link_resource(patient: str, nihii: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "meta": {"profile": [LINK_PROFILE]},
        "extension": [{"url": PROOF_EXTENSION, "valueCoding": {"system": PROOF_SYSTEM, "code": "eidreading"}}],
        "status": "active",
        "category": [{"coding": [{"system": LINK_TYPE_SYSTEM, "code": "gpconsultation"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"member": {"identifier": {"system": NIHDI_SYSTEM, "value": nihii}}}],
    }


def _post(t: CaseContext, who: str, path: str, resource: Mapping[str, Any]) -> httpx.Response:
    return t.http().post(path, json=dict(resource), headers=t.bearer(who))


def _check_created(t: CaseContext, response: httpx.Response, what: str) -> dict[str, Any]:
    body = _json(response)
    t.check(
        response.status_code == 201 and body.get("status") == "active",
        f"{what}: HTTP 201 with the resource, status active",
        got=(response.status_code, body.get("status"), _diagnostics(body)),
    )
    return body


def _nihii(t: CaseContext, who: str) -> str:
    nihii = t.identity(who).nihii
    if nihii is None:
        raise MissingNeed(f"identity {who!r} as a professional with an NIHII")
    return nihii.digits


def _ssin(t: CaseContext, who: str) -> str:
    ssin = t.identity(who).ssin
    if ssin is None:
        raise MissingNeed(f"identity {who!r} as a patient with an SSIN")
    return ssin.digits


def _read_trail(t: CaseContext, patient_name: str) -> tuple[httpx.Response, dict[str, Any]]:
    patient = _ssin(t, patient_name)
    response = t.http().get("/fhir/AuditEvent", params={"patient": patient}, headers=t.bearer(patient_name))
    return response, _json(response)


def _events(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The AuditEvent resources of a trail Bundle, in the order they were written."""
    events = [item.get("resource") or {} for item in body.get("entry") or []]
    return sorted(events, key=_event_number)


def _trail(t: CaseContext, patient_name: str) -> list[dict[str, Any]]:
    """The patient's audit trail as they read it (GET /fhir/AuditEvent); it must be readable."""
    response, body = _read_trail(t, patient_name)
    t.check(
        response.status_code == 200 and body.get("resourceType") == "Bundle",
        "the patient reads their audit trail: HTTP 200 with a Bundle of AuditEvents",
        got=(response.status_code, _diagnostics(body)),
    )
    return _events(body)


def _event_number(event: Mapping[str, Any]) -> int:
    raw = str(event.get("id", ""))
    return int(raw) if raw.isdigit() else -1


def _last_event(t: CaseContext, patient_name: str) -> int:
    """The number of the patient's latest audit event, before the case acts (the case then looks at what comes
    after); -1 when the trail cannot be read now (the step reading it will say so)."""
    response, body = _read_trail(t, patient_name)
    if response.status_code != 200:
        return -1
    return max((_event_number(e) for e in _events(body)), default=-1)


def _by(event: Mapping[str, Any], nihii: str) -> bool:
    return any(((a.get("who") or {}).get("identifier") or {}).get("value") == nihii for a in event.get("agent") or [])


def _rule(event: Mapping[str, Any]) -> str | None:
    for extension in event.get("extension") or []:
        if extension.get("valueCode"):
            return str(extension["valueCode"])
    return None


def _actions(event: Mapping[str, Any]) -> set[str]:
    return {str(s.get("code")) for s in event.get("subtype") or []}


def _glass_text(event: Mapping[str, Any]) -> str | None:
    for purpose in event.get("purposeOfUse") or []:
        if any(cd.get("code") == "BTG" for cd in purpose.get("coding") or []):
            return str(purpose.get("text", ""))
    return None


def _summary(events: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return [(sorted(_actions(e)), e.get("outcome"), _rule(e), _glass_text(e)) for e in events]


# ============================================================================================== cases


@implements("CON-001")
def no_consent(t: CaseContext) -> None:
    patient = t.new_patient(consent=False, links=())
    first = [_entry(t, patient, "contact report", document_type="contactreport")]
    with t.step(1):
        result = _provide(t, AUTHOR, first)
        _check_policy_refusal(t, result, "CONSENT")
    with t.step(2):
        entry, content = _entry(t, patient, "MHD contact report", document_type="contactreport")
        bundle = as_json(build_provide_bundle(new_submission([entry], author=t.author()), {entry.entry_uuid: content}))
        response = t.http().post("/fhir", json=bundle, headers=t.bearer(AUTHOR))
        _check_policy_403(t, response, "ITI-65 without consent")
    with t.step(3):
        consent = _post(t, AUTHOR, "/fhir/Consent", _consent_resource(patient))
        _check_created(t, consent, "POST /fhir/Consent")
        link = _post(t, AUTHOR, "/fhir/CareTeam", _link_resource(patient, _nihii(t, AUTHOR)))
        _check_created(t, link, "POST /fhir/CareTeam")
        found = _find(t, AUTHOR, patient).entries
        t.check(not found, "no entry: the refused submissions stored nothing", got=_ids(found))
    with t.step(4):
        _check_success(t, _provide(t, AUTHOR, first), "the same ITI-41 once the consent is given")
        found = _find(t, AUTHOR, patient).entries
        t.check(_ids(found) == [first[0][0].unique_id], "FindDocuments lists exactly that document", got=_ids(found))


@implements("CON-002")
def revoked_consent(t: CaseContext) -> None:
    patient = t.new_patient()
    first = [_entry(t, patient, "first report", document_type="contactreport")]
    second = [_entry(t, patient, "second report", document_type="contactreport")]
    uid = first[0][0].unique_id or ""
    with t.step(1):
        _check_success(t, _provide(t, AUTHOR, first), "ITI-41 with consent and link")
    repository = _repository(t, uid)
    with t.step(2):
        listed = _json(t.http().get("/fhir/Consent", params={"patient": patient}, headers=t.bearer(AUTHOR)))
        active = [
            r["id"]
            for item in listed.get("entry") or []
            if (r := item.get("resource") or {}).get("status") == "active"
            and (r.get("provision") or {}).get("type", "permit") == "permit"  # not an exclusion (deny)
        ]
        t.check(len(active) == 1, "GET /fhir/Consent lists the patient's one active consent", got=active)
        revoked = t.http().delete(f"/fhir/Consent/{active[0]}", headers=t.bearer(AUTHOR))
        body = _json(revoked)
        t.check(
            revoked.status_code == 200 and body.get("status") == "inactive",
            "DELETE answers 200 with the Consent, status inactive",
            got=(revoked.status_code, body.get("status"), _diagnostics(body)),
        )
    with t.step(3):
        _check_policy_refusal(t, _provide(t, AUTHOR, second), "CONSENT")
    with t.step(4):
        found = _find(t, AUTHOR, patient).entries
        t.check(not found, "FindDocuments: no entry after the revocation", got=_ids(found))
        answer, data = _retrieve(t, AUTHOR, repository, [uid])
        t.check(
            answer.status == c.STATUS_FAILURE
            and [code for code, _ in _errors(answer)] == [UNKNOWN_DOCUMENT]
            and not data,
            f"retrieve: Failure with {UNKNOWN_DOCUMENT} and no document",
            got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
        )
    with t.step(5):
        _check_created(t, _post(t, AUTHOR, "/fhir/Consent", _consent_resource(patient)), "POST /fhir/Consent")
        found = _find(t, AUTHOR, patient).entries
        t.check(_ids(found) == [uid], "FindDocuments lists exactly the first document", got=_ids(found))


@implements("CON-003")
def no_therapeutic_link(t: CaseContext) -> None:
    patient = t.new_patient(links=(AUTHOR,))
    document = [_entry(t, patient, "contact report", document_type="contactreport")]
    uid = document[0][0].unique_id or ""
    never = t.unique_id()
    with t.step(1):
        _check_success(t, _provide(t, AUTHOR, document), "ITI-41 by the author")
    repository = _repository(t, uid)
    url = _attachment_url(t, AUTHOR, patient, uid)
    with t.step(2):
        found = _find(t, "nurse", patient).entries
        t.check(not found, "the nurse's FindDocuments holds no entry", got=_ids(found))
        got = _get(t, "nurse", [uid]).entries
        t.check(not got, "the nurse's GetDocuments holds no entry", got=_ids(got))
    with t.step(3):
        hidden, data = _retrieve(t, "nurse", repository, [uid])
        unknown, _ = _retrieve(t, "nurse", repository, [never])
        for answer, name in ((hidden, "the hidden document"), (unknown, "the unknown uniqueId")):
            t.check(
                answer.status == c.STATUS_FAILURE and [code for code, _ in _errors(answer)] == [UNKNOWN_DOCUMENT],
                f"retrieve of {name}: Failure with {UNKNOWN_DOCUMENT} only",
                got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
            )
        t.check(not data, "no document bytes come back", got=len(data))
        said = [p.message.replace(uid, "<uniqueId>") for p in hidden.problems]
        said_unknown = [p.message.replace(never, "<uniqueId>") for p in unknown.problems]
        t.check(said == said_unknown, "the same answer as for a document that does not exist", got=(said, said_unknown))
    with t.step(4):
        listed = _listed(t, _search(t, "nurse", patient))
        t.check(listed == [], "ITI-67: total 0", got=listed)
        bogus = f"{url.rsplit('/', 1)[0]}/{uuid.uuid4()}"
        real = t.http().get(url, headers=_headers(t, "nurse", accept="*/*"))
        fake = t.http().get(bogus, headers=_headers(t, "nurse", accept="*/*"))
        t.check(
            real.status_code == fake.status_code == 404,
            "ITI-68: HTTP 404 for the hidden document and for a Binary id never issued",
            got=(real.status_code, fake.status_code),
        )
        rid, other = url.rsplit("/", 1)[1], bogus.rsplit("/", 1)[1]
        text = [d.replace(rid, "<id>") for d in _diagnostics(_json(real))]
        text_unknown = [d.replace(other, "<id>") for d in _diagnostics(_json(fake))]
        t.check(text == text_unknown, "the same OperationOutcome for both", got=(text, text_unknown))
    with t.step(5):
        _check_created(
            t, _post(t, "nurse", "/fhir/CareTeam", _link_resource(patient, _nihii(t, "nurse"))), "POST /fhir/CareTeam"
        )
        found = _find(t, "nurse", patient).entries
        t.check(_ids(found) == [uid], "FindDocuments lists exactly the document", got=_ids(found))


@implements("CON-004")
def exclusion(t: CaseContext) -> None:
    patient = _ssin(t, "patient1")
    physio = _nihii(t, "physiotherapist")
    exclusion_id: str | None = None
    since = _last_event(t, "patient1")
    try:
        with t.step(1):
            response = _post(t, "patient1", "/fhir/Consent", _exclusion_resource(patient, physio))
            body = _check_created(t, response, "POST /fhir/Consent (exclusion)")
            exclusion_id = str(body.get("id"))
            provision = body.get("provision") or {}
            actors = [
                ((a.get("reference") or {}).get("identifier") or {}).get("value") for a in provision.get("actor") or []
            ]
            t.check(
                provision.get("type") == "deny" and actors == [physio],
                "the Consent's provision is deny, naming the physiotherapist's NIHII",
                got=(provision.get("type"), actors),
            )
        with t.step(2):
            plan = [_entry(t, patient, "care plan", who="physiotherapist", document_type="careplan")]
            _check_policy_refusal(t, _provide(t, "physiotherapist", plan), "EXCLUSION")
            stored = _get(t, AUTHOR, [plan[0][0].unique_id or ""]).entries
            t.check(not stored, "the author's GetDocuments: no entry (nothing stored)", got=_ids(stored))
        with t.step(3):
            found = _find(t, "physiotherapist", patient).entries
            t.check(not found, "the physiotherapist's FindDocuments holds no entry", got=_ids(found))
        with t.step(4):
            events = [e for e in _trail(t, "patient1") if _event_number(e) > since and _by(e, physio)]
            refused = [
                e
                for e in events
                if e.get("outcome") == DENIED and _rule(e) == "exclusion" and _actions(e) & {"publish", "find"}
            ]
            t.check(
                {a for e in refused for a in _actions(e)} >= {"publish", "find"},
                "the trail shows the publication and the find by the physiotherapist, denied by rule exclusion",
                got=_summary(events),
            )
        with t.step(5):
            lifted = t.http().delete(f"/fhir/Consent/{exclusion_id}", headers=t.bearer("patient1"))
            body = _json(lifted)
            t.check(
                lifted.status_code == 200 and body.get("status") == "inactive",
                "DELETE answers 200 with the exclusion, status inactive",
                got=(lifted.status_code, body.get("status"), _diagnostics(body)),
            )
            exclusion_id = None
            decision = _json(
                t.http().get(
                    "/fhir/$check-access",
                    params={"patient": patient, "action": "find"},
                    headers=t.bearer("physiotherapist"),
                )
            )
            t.check(
                "allowed" in decision and decision.get("rule") != "exclusion",
                "$check-access no longer names the exclusion rule",
                got=decision,
            )
    finally:
        if exclusion_id is not None:  # put patient1 back as it was, whatever happened
            with suppress(Exception):
                t.http().delete(f"/fhir/Consent/{exclusion_id}", headers=t.bearer("patient1"))


@implements("CON-005")
def access_matrix(t: CaseContext) -> None:
    patient = t.new_patient(links=(AUTHOR, "physiotherapist"))
    lab = _entry(t, patient, "lab result", document_type="labresult")
    report = _entry(t, patient, "contact report", document_type="contactreport")
    lab_uid, report_uid = lab[0].unique_id or "", report[0].unique_id or ""
    with t.step(1):
        _check_success(t, _provide(t, AUTHOR, [lab, report]), "ITI-41 of both documents")
    repository = _repository(t, lab_uid)
    with t.step(2):
        found = _find(t, "physiotherapist", patient).entries
        t.check(_ids(found) == [report_uid], "exactly the contact report", got=_ids(found))
    with t.step(3):
        answer, data = _retrieve(t, "physiotherapist", repository, [report_uid, lab_uid])
        t.check(
            answer.status == c.STATUS_PARTIAL_SUCCESS,
            "PartialSuccess",
            got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
        )
        t.check(
            set(data) == {report_uid} and _sha256(data[report_uid]) == _sha256(report[1]),
            "the contact report's bytes come back, and only them",
            got=sorted(data),
        )
        t.check(
            [code for code, _ in _errors(answer)] == [UNKNOWN_DOCUMENT],
            f"one error, {UNKNOWN_DOCUMENT}, for the lab result",
            got=[str(p) for p in answer.problems],
        )
    with t.step(4):
        found = _find(t, AUTHOR, patient).entries
        t.check(_ids(found) == sorted([lab_uid, report_uid]), "the author finds both documents", got=_ids(found))
        answer, data = _retrieve(t, AUTHOR, repository, [lab_uid])
        t.check(
            answer.status == c.STATUS_SUCCESS and _sha256(data.get(lab_uid, b"")) == _sha256(lab[1]),
            "the author retrieves the lab result's bytes",
            got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
        )


@implements("CON-006")
def very_restricted(t: CaseContext) -> None:
    patient = t.new_patient(links=(AUTHOR, "specialist"))
    secret = _entry(t, patient, "very restricted note", document_type="note", confidentiality="V")
    normal = _entry(t, patient, "normal note", document_type="note")
    secret_uid, normal_uid = secret[0].unique_id or "", normal[0].unique_id or ""
    with t.step(1):
        _check_success(t, _provide(t, AUTHOR, [secret, normal]), "ITI-41 of both notes")
    repository = _repository(t, secret_uid)
    with t.step(2):
        found = _find(t, "specialist", patient).entries
        t.check(_ids(found) == [normal_uid], "exactly the N note", got=_ids(found))
    with t.step(3):
        answer, data = _retrieve(t, "specialist", repository, [secret_uid])
        t.check(
            answer.status == c.STATUS_FAILURE
            and [code for code, _ in _errors(answer)] == [UNKNOWN_DOCUMENT]
            and not data,
            f"Failure with {UNKNOWN_DOCUMENT} and no document",
            got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
        )
    with t.step(4):
        reason = _reason(t)
        listed = _listed(t, _search(t, "specialist", patient, glass=reason))
        t.check(listed == [normal_uid], "break-the-glass shows exactly the N note", got=listed)
        t.observe(f"{BREAK_THE_GLASS_HEADER}: {reason}")
    with t.step(5):
        found = _find(t, AUTHOR, patient).entries
        t.check(_ids(found) == sorted([secret_uid, normal_uid]), "the author finds both notes", got=_ids(found))
        answer, data = _retrieve(t, AUTHOR, repository, [secret_uid])
        t.check(
            answer.status == c.STATUS_SUCCESS and _sha256(data.get(secret_uid, b"")) == _sha256(secret[1]),
            "the author retrieves the V note's bytes",
            got=(answer.status.rpartition(":")[2], [str(p) for p in answer.problems]),
        )


def _operation(t: CaseContext, who: str, name: str, unique_id: str, until: date | None = None) -> httpx.Response:
    parameters: list[dict[str, Any]] = [{"name": "uniqueId", "valueString": unique_id}]
    if until is not None:
        parameters.append({"name": "until", "valueDate": until.isoformat()})
    body = {"resourceType": "Parameters", "parameter": parameters}
    return t.http().post(f"/fhir/DocumentReference/${name}", json=body, headers=t.bearer(who))


def _parameters(body: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for parameter in body.get("parameter") or []:
        value = next((v for k, v in parameter.items() if k.startswith("value")), None)
        values[str(parameter.get("name"))] = value
    return values


@implements("CON-007")
def held_back(t: CaseContext) -> None:
    patient = _ssin(t, "patient1")
    document = [_entry(t, patient, "contact report held back", document_type="contactreport")]
    uid = document[0][0].unique_id or ""
    until = date.today() + timedelta(days=30)
    stored = False
    held = False
    try:
        with t.step(1):
            result = _provide(t, AUTHOR, document)
            stored = result.status == c.STATUS_SUCCESS
            _check_success(t, result, "ITI-41 for patient1")
        url = _attachment_url(t, AUTHOR, patient, uid)
        with t.step(2):
            response = _operation(t, AUTHOR, "hold-back", uid, until)
            body = _json(response)
            held = response.status_code == 200
            values = _parameters(body)
            t.check(
                response.status_code == 200
                and values == {"uniqueId": uid, "status": "held-back", "until": until.isoformat()},
                "HTTP 200; Parameters uniqueId, status held-back, until",
                got=(response.status_code, values or _diagnostics(body)),
            )
        with t.step(3):
            listed = _listed(t, _search(t, "patient1", patient))
            t.check(uid not in listed, "patient1's search does not list the held-back document", got=listed)
            read = t.http().get(url, headers=_headers(t, "patient1", accept="*/*"))
            t.check(read.status_code == 404, "ITI-68: HTTP 404", got=read.status_code)
        with t.step(4):
            release = _operation(t, "patient1", "release", uid)
            glass = _search(t, "patient1", patient, glass=_reason(t))
            t.check(
                release.status_code == 403 and glass.status_code == 403,
                "HTTP 403 for the patient's $release and for the patient's break-the-glass search",
                got=(release.status_code, glass.status_code, _diagnostics(_json(glass))),
            )
        with t.step(5):
            found = _find(t, AUTHOR, patient).entries
            t.check(uid in _ids(found), "the author still finds the document", got=len(found))
        with t.step(6):
            response = _operation(t, AUTHOR, "release", uid)
            values = _parameters(_json(response))
            t.check(
                response.status_code == 200 and values.get("status") == "released" and values.get("uniqueId") == uid,
                "HTTP 200; Parameters status released",
                got=(response.status_code, values or _diagnostics(_json(response))),
            )
            held = False
            listed = _listed(t, _search(t, "patient1", patient))
            t.check(uid in listed, "patient1's search lists the document again", got=listed)
            read = t.http().get(url, headers=_headers(t, "patient1", accept="*/*"))
            t.check(
                read.status_code == 200 and _sha256(read.content) == _sha256(document[0][1]),
                "ITI-68 returns the bytes sent",
                got=(read.status_code, len(read.content)),
            )
    finally:  # put patient1 back as it was: nothing held back, no new current document
        with suppress(Exception):
            if held:
                _operation(t, AUTHOR, "release", uid)
        with suppress(Exception):
            if stored:
                entries = wire.query(t.peer(AUTHOR), GetDocuments(unique_ids=(uid,))).entries
                for entry in entries:
                    wire.update_status(
                        t.peer(AUTHOR),
                        patient_id=Ssin(patient).to_cx(),
                        entry_uuid=entry.entry_uuid,
                        original=AvailabilityStatus.APPROVED,
                        new=AvailabilityStatus.DEPRECATED,
                    )


@implements("CON-008")
def break_the_glass(t: CaseContext) -> None:
    patient = t.new_patient(links=(AUTHOR,))
    document = [_entry(t, patient, "contact report", document_type="contactreport")]
    uid = document[0][0].unique_id or ""
    reason = _reason(t)
    with t.step(1):
        _check_success(t, _provide(t, AUTHOR, document), "ITI-41 by the author")
    url = _attachment_url(t, AUTHOR, patient, uid)
    with t.step(2):
        listed = _listed(t, _search(t, "specialist", patient))
        t.check(listed == [], "ITI-67 without a reason: total 0", got=listed)
        read = t.http().get(url, headers=_headers(t, "specialist", accept="*/*"))
        t.check(read.status_code == 404, "ITI-68 without a reason: HTTP 404", got=read.status_code)
    with t.step(3):
        listed = _listed(t, _search(t, "specialist", patient, glass=reason))
        t.check(listed == [uid], "ITI-67 with a reason: exactly the document", got=listed)
        read = t.http().get(url, headers=_headers(t, "specialist", glass=reason, accept="*/*"))
        t.check(
            read.status_code == 200 and _sha256(read.content) == _sha256(document[0][1]),
            "ITI-68 with a reason: HTTP 200 with the bytes sent",
            got=(read.status_code, len(read.content)),
        )
        t.observe(f"{BREAK_THE_GLASS_HEADER}: {reason}")
    with t.step(4):
        for bad in ("9 chars!!", "x" * 201):
            _check_policy_403(t, _search(t, "specialist", patient, glass=bad), f"a reason of {len(bad)} characters")
        t.observe(f"{BREAK_THE_GLASS_HEADER} with 9 and with 201 characters: both refused")


@implements("CON-009")
def audited_decisions(t: CaseContext) -> None:
    patient = _ssin(t, "patient1")
    specialist = _nihii(t, "specialist")
    precheck = _json(
        t.http().get(
            "/fhir/$check-access", params={"patient": patient, "action": "find"}, headers=t.bearer("specialist")
        )
    )
    if precheck.get("allowed") is not False or precheck.get("rule") != "therapeutic-link":
        raise MissingNeed("a professional without a valid therapeutic link with patient1 (the seeded specialist)")
    since = _last_event(t, "patient1")
    reason = _reason(t)
    with t.step(1):
        listed = _listed(t, _search(t, "specialist", patient))
        t.check(listed == [], "total 0: the documents are left out silently", got=f"{len(listed)} documents")
    with t.step(2):
        _listed(t, _search(t, "specialist", patient, glass=reason))
        t.observe(f"{BREAK_THE_GLASS_HEADER}: {reason}")
    with t.step(3):
        _check_policy_403(t, _search(t, "specialist", patient, glass="short"), "a reason of 5 characters")
        t.observe(f"{BREAK_THE_GLASS_HEADER}: short")
    with t.step(4):
        events = [e for e in _trail(t, "patient1") if _event_number(e) > since and _by(e, specialist)]
        expected = [
            (DENIED, "therapeutic-link", None),
            (ALLOWED, None, reason),
            (DENIED, "break-the-glass-reason", "short"),
        ]
        seen = [(e.get("outcome"), _rule(e), _glass_text(e)) for e in events]
        decisions = [d for n, d in enumerate(seen) if n == 0 or d != seen[n - 1]]  # one request may log twice
        t.check(
            decisions == expected,
            "the new events by the specialist are, in order: denied (therapeutic-link), allowed with purposeOfUse "
            "BTG and the reason given, denied (break-the-glass-reason)",
            got=_summary(events),
        )
