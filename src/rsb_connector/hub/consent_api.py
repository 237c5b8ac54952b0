"""Consent management on the hub's FHIR API: sharing consents, exclusions, therapeutic links, the patient's own
audit trail and an access pre-check, authenticated by bearer tokens from ``POST /oauth2/token``.

Who may change what is decided by :class:`~rsb_connector.hub.consent.ConsentRegistry` (see its table); this module
maps FHIR R4 resources (parsed and validated with ``fhir.resources.R4B``) onto it and its refusals onto HTTP.

=====================================================  ===========================================================
route                                                  what
=====================================================  ===========================================================
``POST /fhir/Patient``                                 the patient identity feed: a hospital (or the operator) makes
                                                       a person (SSIN identifier) known to the patient registry
``POST /fhir/Consent``                                 a sharing consent, or an exclusion (``provision.type``
                                                       ``deny`` naming the excluded professional)
``GET /fhir/Consent?patient=SSIN``                     the patient's consents and exclusions (a searchset Bundle)
``DELETE /fhir/Consent/<id>``                          revoke the consent / lift the exclusion (the record stays,
                                                       ``status`` becomes ``inactive``)
``POST /fhir/CareTeam``                                declare a therapeutic link
``GET /fhir/CareTeam?patient=SSIN``                    the patient's therapeutic links
``DELETE /fhir/CareTeam/<id>``                         revoke a therapeutic link
``GET /fhir/AuditEvent?patient=SSIN``                  the patient's own audit trail (masked)
``GET /fhir/$check-access?patient=SSIN&action=read``   the access decision, computed by the hub's engine (JSON)
``POST /fhir/DocumentReference/$hold-back``            an author holds a document back from the patient (Parameters
                                                       ``uniqueId``, optional ``until``)
``POST /fhir/DocumentReference/$release``              an author releases a held-back document to the patient
                                                       (Parameters ``uniqueId``)
=====================================================  ===========================================================

**Revocation is DELETE.** Nothing is erased: ``DELETE`` closes the record (revoked today, or the exclusion lifted)
and answers the resource with ``status: inactive``; ``GET`` keeps listing it as inactive.

**Sharing consent** (``Consent``): ``scope`` ``patient-privacy``
(``http://terminology.hl7.org/CodeSystem/consentscope``); a ``category`` coding of :data:`CONSENT_TYPE_SYSTEM`
with the Belgian type (``local``, ``prospective``, ``retrospective``); ``patient`` as ``Patient/<SSIN>`` or an
identifier of the be-core SSIN system; ``dateTime`` the day it was signed (today when absent); ``provision``
absent or ``type: permit``.

**Exclusion** (``Consent``): as above (the category may be left out), with ``provision.type: deny`` and one
``provision.actor`` whose ``reference.identifier`` is the excluded professional's NIHII (be-core ``nihdi``
system); ``provision.period`` gives its first and last day (from today, until lifted, by default). Resource ids:
``consent-<n>`` and ``exclusion-<n>``.

**Therapeutic link** (``CareTeam`` with profile :data:`LINK_PROFILE`): ``subject`` the patient (as above);
``participant[0].member.identifier`` the professional's NIHII; ``category`` a coding of :data:`LINK_TYPE_SYSTEM`
(KMEHR CD-THERAPEUTICLINKTYPE: ``gpconsultation``...); ``period`` start and end (end absent: the profession's
default validity); the proof of the patient's presence in extension :data:`PROOF_EXTENSION` (``valueCoding`` of
:data:`PROOF_SYSTEM`: ``eidreading``...). Resource ids: ``link-<n>``.

**Held-back documents** (``$hold-back`` / ``$release``): the body is a FHIR ``Parameters`` resource with
``uniqueId`` — the document's uniqueId (``DocumentReference.masterIdentifier``) as ``valueString``, ``valueOid``,
``valueUri`` or ``valueIdentifier``, bare or ``urn:oid:``-prefixed — and, for ``$hold-back``, an optional ``until``
(``valueDate``): the patient sees the document again from that day on (it must be after today); without it the
document is held back for good (until released). Only an author of the document (a professional named in its
authorPerson) may hold it back or release it; anybody else, and an unknown document alike, is 403 (the refusal
does not tell whether the document exists). A new hold replaces the previous one. The answer is a ``Parameters``
with ``uniqueId``, ``status`` (``held-back`` or ``released``) and ``until`` when set. Professionals' access is not
affected: a hold governs the patient's own view (find, retrieve, and the document ids of the patient's audit trail).
Releasing a document that is not held back is 404. Both changes are audited.

**Reading.** The patient (or a minor's registered legal representative) sees everything about the patient; a
professional or an organisation sees the consents, and only the exclusions and links that name them; another
patient is refused. Every read is audited.

**Errors** are OperationOutcomes: a registry refusal ``not-allowed`` → 403 (``forbidden``), ``not-found`` → 404,
``invalid`` and ``no-consent`` → 409 (``conflict``: the patient's current state does not allow it); a malformed
resource or parameter → 400; a missing or refused token → 401 with ``WWW-Authenticate``. The issue's ``details``
carry the refusal kind (system :data:`REFUSAL_SYSTEM`) and its ``diagnostics`` the reason and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any, Final

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InvalidIdentifier
from ..identifiers import NIHDI_SYSTEM, SSIN_SYSTEM, SSIN_SYSTEM_LEGACY, Nihii, Ssin, mask_ssin
from ..mhd.constants import XDS_ERROR_CODE_SYSTEM
from ..policy import Action, ActorKind, Decision, DocumentFacts, decide
from .audit import AuditAction, AuditEvent, AuditTrail
from .auth import BearerError, require_bearer
from .consent import ConsentRegistry, PolicyError, Recorded, RecordKind, Refusal
from .enforcement import Enforcer
from .registry import Caller

__all__ = [
    "CONSENT_TYPE_SYSTEM",
    "LINK_PROFILE",
    "LINK_TYPE_SYSTEM",
    "PROOF_EXTENSION",
    "PROOF_SYSTEM",
    "REFUSAL_SYSTEM",
    "RULE_SYSTEM",
    "consent_routes",
]

FHIR_JSON: Final = "application/fhir+json"
CONSENT_SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_TYPE_SYSTEM: Final = "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-CONSENTTYPE"
"""The KMEHR table CD-CONSENTTYPE as a FHIR code system (rsb-connector's naming: eHealth publishes no FHIR
CodeSystem for it)."""
LINK_TYPE_SYSTEM: Final = "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-THERAPEUTICLINKTYPE"
"""KMEHR CD-THERAPEUTICLINKTYPE as a FHIR code system."""
PROOF_SYSTEM: Final = "urn:be:fgov:ehealth:therapeuticlink:prooftype"
"""The eHealth proof types of a therapeutic link (``eidreading``...)."""
LINK_PROFILE: Final = "urn:rsb-connector:StructureDefinition:therapeutic-link"
"""The profile of a CareTeam that represents a therapeutic link."""
PROOF_EXTENSION: Final = "urn:rsb-connector:StructureDefinition:therapeutic-link-proof"
"""The extension (``valueCoding``) carrying the proof of the patient's presence."""
REFUSAL_SYSTEM: Final = "urn:rsb-connector:CodeSystem:consent-refusal"
"""Codes of a consent registry refusal (``not-allowed``, ``not-found``, ``invalid``, ``no-consent``)."""
RULE_SYSTEM: Final = "urn:rsb-connector:CodeSystem:policy-rule"
"""The rule that denied an access (:class:`rsb_connector.policy.Rule` values)."""
AUDIT_ACTION_SYSTEM: Final = "urn:rsb-connector:CodeSystem:audit-action"
_LOINC_CONSENT: Final = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
_OPT_IN: Final = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
_BTG: Final = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG"}
_SSIN_SYSTEMS: Final = (SSIN_SYSTEM, SSIN_SYSTEM_LEGACY)
_MAX_BODY: Final = 256 * 1024
_STATUS: Final = {
    Refusal.NOT_ALLOWED: (403, "forbidden"),
    Refusal.NOT_FOUND: (404, "not-found"),
    Refusal.INVALID: (409, "conflict"),
    Refusal.NO_CONSENT: (409, "conflict"),
}
_AUDIT_VERB: Final = {"publish": "C", "find": "R", "read": "R", "update-status": "U", "audit": "R"}

Handler = Callable[[Request], Awaitable[Response]]
Authenticate = Callable[[Request], Awaitable[Caller]]


class _BadRequest(Exception):
    """A malformed request: 400 with an ``invalid`` OperationOutcome."""


# ============================================================================================== responses


def _json(body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(dict(body), status_code=status, media_type=FHIR_JSON, headers=dict(headers or {}))


def operation_outcome(
    status: int,
    code: str,
    diagnostics: str,
    *,
    detail: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An OperationOutcome answer with one error issue (``detail``: a (system, code) coding of the cause)."""
    issue: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": mask_ssin(diagnostics)}
    if detail is not None:
        issue["details"] = {"coding": [{"system": detail[0], "code": detail[1]}]}
    return _json({"resourceType": "OperationOutcome", "issue": [issue]}, status, headers)


def _policy_outcome(exc: PolicyError) -> Response:
    status, code = _STATUS[exc.refusal]
    text = exc.reason + (f" Fix: {exc.fix}" if exc.fix else "")
    return operation_outcome(status, code, text, detail=(REFUSAL_SYSTEM, exc.refusal.value))


def _guarded(handler: Handler) -> Handler:
    """``handler`` with every failure answered as an OperationOutcome."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except BearerError as exc:
            return operation_outcome(exc.status_code, "login", exc.description, headers=exc.headers)
        except PolicyError as exc:
            return _policy_outcome(exc)
        except (_BadRequest, InvalidIdentifier) as exc:
            return operation_outcome(400, "invalid", str(exc))
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
            where = ".".join(str(p) for p in first.get("loc", ()))
            return operation_outcome(400, "structure", f"not a valid R4 resource: {where}: {first.get('msg')}")

    return endpoint


# ============================================================================================== reading input


async def _body(request: Request, resource_type: str) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        raise _BadRequest(f"the {resource_type} is larger than {_MAX_BODY} bytes")
    try:
        data = json.loads(raw)
    except ValueError:
        raise _BadRequest(f"the body is not JSON: send a FHIR {resource_type} as {FHIR_JSON}") from None
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise _BadRequest(f"the body must be a {resource_type} resource")
    return data


def _validate(resource_type: str, data: Mapping[str, Any]) -> None:
    """Validate ``data`` with the fhir.resources R4B model (ValidationError → 400); it must be ``active``."""
    if data.get("status") != "active":
        raise _BadRequest(f"a {resource_type} is registered with status 'active' (revoke with DELETE)")
    if resource_type == "Consent":
        from fhir.resources.R4B.consent import Consent

        Consent.model_validate(dict(data))
    else:
        from fhir.resources.R4B.careteam import CareTeam

        CareTeam.model_validate(dict(data))


def _patient_of(reference: Any, where: str) -> str:
    """The SSIN of a Reference: ``Patient/<SSIN>`` or an identifier of the be-core SSIN system."""
    if not isinstance(reference, Mapping):
        raise _BadRequest(f"{where} is required: Patient/<SSIN> or an identifier of {SSIN_SYSTEM}")
    ref = reference.get("reference")
    if isinstance(ref, str) and ref.startswith("Patient/"):
        return Ssin(ref.removeprefix("Patient/")).digits
    identifier = reference.get("identifier")
    if isinstance(identifier, Mapping) and identifier.get("system") in _SSIN_SYSTEMS:
        return Ssin(str(identifier.get("value", ""))).digits
    raise _BadRequest(f"{where} must be Patient/<SSIN> or an identifier of {SSIN_SYSTEM}")


def _nihii_of(reference: Any, where: str) -> str:
    identifier = reference.get("identifier") if isinstance(reference, Mapping) else None
    if not isinstance(identifier, Mapping) or identifier.get("system") != NIHDI_SYSTEM:
        raise _BadRequest(f"{where} must be a Reference with an identifier of {NIHDI_SYSTEM} (the NIHII)")
    return Nihii(str(identifier.get("value", ""))).digits


def _code_of(concepts: Any, system: str) -> str | None:
    """The first code of ``system`` in a CodeableConcept or a list of them."""
    items = concepts if isinstance(concepts, list) else [concepts]
    for concept in items:
        if isinstance(concept, Mapping):
            for coding in concept.get("coding") or []:
                if isinstance(coding, Mapping) and coding.get("system") == system and coding.get("code"):
                    return str(coding["code"])
    return None


def _day(value: Any, where: str) -> date | None:
    if value is None:
        return None
    text = str(value)
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise _BadRequest(f"{where} is not a date: {text!r}") from None


def _query_patient(request: Request) -> str:
    value = request.query_params.get("patient") or request.query_params.get("patient.identifier")
    if not value:
        raise _BadRequest("the patient search parameter is required: ?patient=<SSIN>")
    value = value.split("|")[-1].removeprefix("Patient/")
    return Ssin(value).digits


def _record_id(raw: str, prefix: str) -> int:
    number = raw.removeprefix(prefix)
    if not raw.startswith(prefix) or not number.isdigit():
        raise PolicyError(f"no resource {raw!r}", refusal=Refusal.NOT_FOUND)
    return int(number)


# ============================================================================================== resources


def _patient_ref(ssin: str) -> dict[str, Any]:
    return {"reference": f"Patient/{ssin}", "identifier": {"system": SSIN_SYSTEM, "value": ssin}}


def _period(start: date | None, end: date | None) -> dict[str, str]:
    period: dict[str, str] = {}
    if start is not None:
        period["start"] = start.isoformat()
    if end is not None:
        period["end"] = end.isoformat()
    return period


def consent_resource(record: Recorded[Any], today: date) -> dict[str, Any]:
    """A sharing consent record as an R4 Consent (``consent-<n>``)."""
    consent = record.value
    active = consent.revoked is None or consent.revoked > today
    return {
        "resourceType": "Consent",
        "id": f"consent-{record.id}",
        "status": "active" if active else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [
            {"coding": [{"system": CONSENT_TYPE_SYSTEM, "code": consent.type.value}]},
            {"coding": [_LOINC_CONSENT]},
        ],
        "patient": _patient_ref(consent.patient),
        "dateTime": consent.signed.isoformat(),
        "policyRule": {"coding": [_OPT_IN]},
        "provision": {"type": "permit", "period": _period(consent.signed, consent.revoked)},
    }


def exclusion_resource(record: Recorded[Any], today: date) -> dict[str, Any]:
    """An exclusion record as an R4 Consent with a deny provision (``exclusion-<n>``)."""
    exclusion = record.value
    active = record.is_open and (exclusion.end is None or exclusion.end >= today)
    actor = {
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}]},
        "reference": {"identifier": {"system": NIHDI_SYSTEM, "value": exclusion.professional_nihii}},
    }
    return {
        "resourceType": "Consent",
        "id": f"exclusion-{record.id}",
        "status": "active" if active else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [_LOINC_CONSENT]}],
        "patient": _patient_ref(exclusion.patient),
        "dateTime": exclusion.start.isoformat(),
        "policyRule": {"coding": [_OPT_IN]},
        "provision": {"type": "deny", "period": _period(exclusion.start, exclusion.end), "actor": [actor]},
    }


def link_resource(record: Recorded[Any], today: date) -> dict[str, Any]:
    """A therapeutic link record as a CareTeam of profile :data:`LINK_PROFILE` (``link-<n>``)."""
    link = record.value
    active = link.revoked is None and (link.end is None or link.end >= today)
    return {
        "resourceType": "CareTeam",
        "id": f"link-{record.id}",
        "meta": {"profile": [LINK_PROFILE]},
        "extension": [{"url": PROOF_EXTENSION, "valueCoding": {"system": PROOF_SYSTEM, "code": link.proof.value}}],
        "status": "active" if active else "inactive",
        "category": [{"coding": [{"system": LINK_TYPE_SYSTEM, "code": link.type.value}]}],
        "subject": _patient_ref(link.patient),
        "period": _period(link.start, link.revoked or link.end),
        "participant": [{"member": {"identifier": {"system": NIHDI_SYSTEM, "value": link.professional_nihii}}}],
    }


def audit_event_resource(event: AuditEvent) -> dict[str, Any]:
    """An audit event as an R4 AuditEvent, SSINs masked."""
    data = event.to_dict(masked=True)
    subtype = [{"system": AUDIT_ACTION_SYSTEM, "code": event.action}]
    if event.transaction:
        subtype.append({"system": "urn:ihe:event-type-code", "code": event.transaction})
    who: dict[str, Any] = {"display": data["who"]}
    if event.who_nihii:
        who["identifier"] = {"system": NIHDI_SYSTEM, "value": event.who_nihii}
    agent: dict[str, Any] = {"who": who, "requestor": True}
    if event.role:
        agent["role"] = [{"text": event.role}]
    entities: list[dict[str, Any]] = []
    if data["patient"]:
        entities.append({"what": {"display": f"Patient {data['patient']}"}, "type": {"code": "1"}})
    entities += [{"what": {"identifier": {"value": uid}}, "type": {"code": "2"}} for uid in event.documents]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.seq),
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record",
        },
        "subtype": subtype,
        "action": _AUDIT_VERB.get(event.action, "E"),
        "recorded": event.at.isoformat(),
        "outcome": "0" if event.allowed else "4",
        "outcomeDesc": (f"denied by the {event.rule} rule: " if event.rule else "") + (data["reason"] or ""),
        "agent": [agent],
        "source": {"observer": {"display": "rsb-connector mock hub"}},
    }
    if event.break_the_glass:
        resource["purposeOfUse"] = [{"coding": [_BTG], "text": data["break_the_glass"]}]
    if event.rule:
        resource["extension"] = [{"url": RULE_SYSTEM, "valueCode": event.rule}]
    if entities:
        resource["entity"] = entities
    return resource


def _bundle(request: Request, resources: list[dict[str, Any]]) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


# ============================================================================================== the API


class ConsentApi:
    """The handlers (see the module docstring); build the routes with :func:`consent_routes`."""

    def __init__(
        self,
        consents: ConsentRegistry,
        audit: AuditTrail,
        enforcer: Enforcer | None,
        authenticate: Authenticate,
    ) -> None:
        self.consents = consents
        self.audit = audit
        self.enforcer = enforcer
        self.authenticate = authenticate

    # ------------------------------------------------------------------------------------------ helpers
    def _created(self, request: Request, resource: dict[str, Any]) -> Response:
        location = f"{str(request.base_url).rstrip('/')}/fhir/{resource['resourceType']}/{resource['id']}"
        return _json(resource, 201, {"location": location})

    def _reader(self, caller: Caller, patient: str, what: AuditAction, transaction: str) -> str | None:
        """Who reads the patient's registry records: None for the patient's side (everything), the caller's NIHII
        for a professional or organisation (their own records only); PolicyError (audited) for anyone else."""
        actor = caller.actor(profession=self.consents.profession_of(caller.nihii))
        refusal: str | None = None
        nihii: str | None = None
        if not caller.authenticated:
            refusal = "reading consent records needs an authenticated caller"
        elif actor.kind is ActorKind.PATIENT:
            if actor.ssin != patient:
                refusal = "a patient reads only their own consent records"
        elif actor.kind is ActorKind.REPRESENTATIVE:
            state = self.consents.patient_state(patient)
            if actor.represents != patient or actor.ssin not in state.legal_representatives:
                refusal = "the caller is not a registered legal representative of this patient"
        else:
            nihii = actor.nihii or actor.cbe or ""
        self.audit.record(
            caller,
            action=what,
            decision=refusal is None,
            patient=patient,
            rule="patient-self" if refusal else None,
            reason=refusal or f"{what.value} records read",
            transaction=transaction,
        )
        if refusal:
            raise PolicyError(refusal, fix="sign in as the patient concerned (or their legal representative)")
        return nihii

    def _record(self, kind: RecordKind, record_id: int) -> Recorded[Any]:
        with self.consents.store.read() as r:
            rows = r.policy_records(kind.table, where={"id": record_id})
        if not rows:
            raise PolicyError(f"no {kind.value} record {record_id}", refusal=Refusal.NOT_FOUND)
        return self.consents._recorded(kind, rows[0])

    # ------------------------------------------------------------------------------------------ Patient
    async def post_patient(self, request: Request) -> Response:
        """``POST /fhir/Patient``: the patient identity feed (a hospital makes a person known to the registry).

        The body is a Patient with an identifier of the be-core SSIN system; 201 when the patient is new, 200 when
        it was already known. Only the SSIN and, when given, the birth date are kept.
        """
        caller = await self.authenticate(request)
        data = await _body(request, "Patient")
        if data.get("active") is False:
            raise _BadRequest("the identity feed registers active patients (Patient.active false)")
        try:
            from fhir.resources.R4B.patient import Patient

            Patient.model_validate(dict(data))
        except ValidationError as exc:
            raise _BadRequest(f"not a valid FHIR R4 Patient: {exc.errors()[0].get('msg', exc)}") from None
        ssins = [
            str(i.get("value", ""))
            for i in data.get("identifier") or []
            if isinstance(i, Mapping) and i.get("system") in _SSIN_SYSTEMS
        ]
        if len(ssins) != 1:
            raise _BadRequest(f"a Patient of the identity feed carries exactly one identifier of {SSIN_SYSTEM}")
        ssin = Ssin(ssins[0])
        info: dict[str, Any] = {}
        if isinstance(data.get("birthDate"), str):
            info["birth_date"] = data["birthDate"]
        created = self.consents.feed_patient(ssin.digits, by=caller, info=info)
        resource = {
            "resourceType": "Patient",
            "id": ssin.digits,
            "identifier": [{"system": SSIN_SYSTEM, "value": ssin.digits}],
        }
        if created:
            return self._created(request, resource)
        return _json(resource)

    # ------------------------------------------------------------------------------------------ Consent
    async def post_consent(self, request: Request) -> Response:
        """``POST /fhir/Consent``: register a sharing consent or an exclusion."""
        caller = await self.authenticate(request)
        data = await _body(request, "Consent")
        _validate("Consent", data)
        patient = _patient_of(data.get("patient"), "Consent.patient")
        provision = data.get("provision") or {}
        today = self.consents.today()
        if provision.get("type") == "deny":
            actors = provision.get("actor") or []
            if len(actors) != 1:
                raise _BadRequest("an exclusion names exactly one professional in provision.actor")
            nihii = _nihii_of(actors[0].get("reference"), "Consent.provision.actor.reference")
            period = provision.get("period") or {}
            record = self.consents.add_exclusion(
                patient,
                nihii,
                by=caller,
                start=_day(period.get("start"), "provision.period.start"),
                end=_day(period.get("end"), "provision.period.end"),
            )
            return self._created(request, exclusion_resource(record, today))
        kind = _code_of(data.get("category"), CONSENT_TYPE_SYSTEM)
        if kind is None:
            raise _BadRequest(f"a sharing consent needs a category coding of {CONSENT_TYPE_SYSTEM} (retrospective...)")
        if _code_of(data.get("scope"), CONSENT_SCOPE_SYSTEM) not in (None, "patient-privacy"):
            raise _BadRequest("a sharing consent has scope patient-privacy")
        granted = self.consents.grant_consent(
            patient, by=caller, type=kind, signed=_day(data.get("dateTime"), "Consent.dateTime")
        )
        return self._created(request, consent_resource(granted, today))

    async def search_consents(self, request: Request) -> Response:
        """``GET /fhir/Consent?patient=SSIN``: consents and exclusions (all, active and inactive)."""
        caller = await self.authenticate(request)
        patient = _query_patient(request)
        nihii = self._reader(caller, patient, AuditAction.CONSENT, "FHIR Consent search")
        today = self.consents.today()
        resources = [consent_resource(r, today) for r in self.consents.records(RecordKind.CONSENT, patient)]
        for record in self.consents.records(RecordKind.EXCLUSION, patient):
            if nihii is None or record.value.professional_nihii == nihii:
                resources.append(exclusion_resource(record, today))
        return _json(_bundle(request, resources))

    async def delete_consent(self, request: Request) -> Response:
        """``DELETE /fhir/Consent/<id>``: revoke the consent or lift the exclusion."""
        caller = await self.authenticate(request)
        raw = request.path_params["id"]
        today = self.consents.today()
        if raw.startswith("exclusion-"):
            found = self._record(RecordKind.EXCLUSION, _record_id(raw, "exclusion-"))
            exclusion = found.value
            lifted = self.consents.remove_exclusion(exclusion.patient, exclusion.professional_nihii, by=caller)
            return _json(exclusion_resource(lifted[-1], today))
        consent = self._record(RecordKind.CONSENT, _record_id(raw, "consent-"))
        revoked = self.consents.revoke_consent(consent.value.patient, by=caller)
        return _json(consent_resource(revoked, today))

    # ------------------------------------------------------------------------------------------ CareTeam
    async def post_link(self, request: Request) -> Response:
        """``POST /fhir/CareTeam``: declare a therapeutic link."""
        caller = await self.authenticate(request)
        data = await _body(request, "CareTeam")
        _validate("CareTeam", data)
        patient = _patient_of(data.get("subject"), "CareTeam.subject")
        participants = data.get("participant") or []
        if len(participants) != 1:
            raise _BadRequest("a therapeutic link names exactly one professional in CareTeam.participant")
        nihii = _nihii_of(participants[0].get("member"), "CareTeam.participant.member")
        kind = _code_of(data.get("category"), LINK_TYPE_SYSTEM)
        if kind is None:
            raise _BadRequest(f"a therapeutic link needs a category coding of {LINK_TYPE_SYSTEM} (gpconsultation...)")
        proof = None
        for extension in data.get("extension") or []:
            if extension.get("url") == PROOF_EXTENSION:
                proof = (extension.get("valueCoding") or {}).get("code")
        if not proof:
            raise _BadRequest(
                f"a therapeutic link needs the proof of the patient's presence (extension {PROOF_EXTENSION})"
            )
        period = data.get("period") or {}
        record = self.consents.declare_link(
            patient,
            nihii,
            kind,
            proof,
            by=caller,
            start=_day(period.get("start"), "CareTeam.period.start"),
            end=_day(period.get("end"), "CareTeam.period.end"),
        )
        return self._created(request, link_resource(record, self.consents.today()))

    async def search_links(self, request: Request) -> Response:
        """``GET /fhir/CareTeam?patient=SSIN``: the therapeutic links (a professional sees their own)."""
        caller = await self.authenticate(request)
        patient = _query_patient(request)
        nihii = self._reader(caller, patient, AuditAction.LINK, "FHIR CareTeam search")
        today = self.consents.today()
        resources = [
            link_resource(r, today)
            for r in self.consents.records(RecordKind.LINK, patient)
            if nihii is None or r.value.professional_nihii == nihii
        ]
        return _json(_bundle(request, resources))

    async def delete_link(self, request: Request) -> Response:
        """``DELETE /fhir/CareTeam/<id>``: revoke the link (and any other open link of that professional and type
        with the patient)."""
        caller = await self.authenticate(request)
        found = self._record(RecordKind.LINK, _record_id(request.path_params["id"], "link-"))
        link = found.value
        if not found.is_open:
            raise PolicyError("this therapeutic link is already revoked", refusal=Refusal.NOT_FOUND)
        revoked = self.consents.revoke_link(link.patient, link.professional_nihii, by=caller, type=link.type)
        return _json(link_resource(revoked[-1], self.consents.today()))

    # ------------------------------------------------------------------------------------------ AuditEvent
    async def search_audit(self, request: Request) -> Response:
        """``GET /fhir/AuditEvent?patient=SSIN[&date=geYYYY-MM-DD]``: the patient's own trail."""
        caller = await self.authenticate(request)
        patient = _query_patient(request)
        if self.enforcer is None:
            return operation_outcome(501, "not-supported", "this hub does not enforce consent: it keeps no trail")
        since: datetime | None = None
        raw = request.query_params.get("date")
        if raw:
            day = _day(raw.removeprefix("ge"), "date")
            since = datetime(day.year, day.month, day.day) if day else None
        events = self.enforcer.patient_trail(caller, patient, since=since)
        return _json(_bundle(request, [audit_event_resource(e) for e in events]))

    # ------------------------------------------------------------------------------------------ $check-access
    async def check_access(self, request: Request) -> Response:
        """``GET /fhir/$check-access?patient=SSIN&action=read|find|publish[&class=...][&confidentiality=N]
        [&author=NIHII][&break-the-glass=reason]``: the engine's decision for the caller, as JSON."""
        caller = await self.authenticate(request)
        params = request.query_params
        patient = _query_patient(request)
        try:
            action = Action.parse(params.get("action", "read"))
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        with self.consents.store.read() as reader:
            known = reader.has_patient(Ssin(patient).to_cx())
        if not known:  # as the XDS and MHD transactions would answer: no policy verdict about an unknown patient
            return operation_outcome(
                404,
                "not-found",
                "this patient is not known to the hub's patient registry",
                detail=(XDS_ERROR_CODE_SYSTEM, "XDSUnknownPatientId"),
            )
        document_class = params.get("class")
        document: DocumentFacts | None = None
        if document_class:
            authors = tuple(a for a in params.getlist("author") if a)
            document = DocumentFacts(
                "urn:rsb:check-access",
                patient,
                document_class,
                params.get("confidentiality", "N"),
                authors,
            )
        elif action is Action.READ:
            raise _BadRequest("a read check needs the document class: &class=labresult (for example)")
        if action is Action.PUBLISH and document is not None and caller.nihii and not document.author_nihiis:
            document = DocumentFacts(
                document.unique_id, patient, document.class_code, document.confidentiality, (caller.nihii,)
            )
        if self.enforcer is not None:
            actor, matrix, today = self.enforcer.actor(caller), self.enforcer.matrix, self.enforcer.today()
        else:
            actor, matrix, today = caller.actor(), self.consents.matrix, self.consents.today()
        decision = decide(
            actor,
            action,
            self.consents.patient_state(patient),
            document=document,
            today=today,
            break_the_glass=params.get("break-the-glass") or None,
            matrix=matrix,
        )
        return JSONResponse(decision_json(decision))

    # ------------------------------------------------------------------------------------------ held back
    async def hold_back(self, request: Request) -> Response:
        """``POST /fhir/DocumentReference/$hold-back``: an author holds a document back from the patient."""
        caller = await self.authenticate(request)
        values = _operation_parameters(await _body(request, "Parameters"), {"uniqueId", "until"})
        unique_id = _unique_id_parameter(values)
        until = _until_parameter(values.get("until"))
        held = self.consents.hold_back(unique_id, by=caller, until=until)
        return _json(_hold_parameters(unique_id, "held-back", held.value.until))

    async def release(self, request: Request) -> Response:
        """``POST /fhir/DocumentReference/$release``: an author releases a held-back document to the patient."""
        caller = await self.authenticate(request)
        values = _operation_parameters(await _body(request, "Parameters"), {"uniqueId"})
        unique_id = _unique_id_parameter(values)
        self.consents.release(unique_id, by=caller)
        return _json(_hold_parameters(unique_id, "released", None))


# ============================================================================================== operations


_VALUE_KEYS: Final = ("valueString", "valueOid", "valueUri", "valueCode", "valueIdentifier", "valueDate")


def _operation_parameters(data: Mapping[str, Any], allowed: set[str]) -> dict[str, Any]:
    """An operation's ``Parameters``: name → value (each parameter at most once, only ``allowed`` names)."""
    from fhir.resources.R4B.parameters import Parameters

    Parameters.model_validate(dict(data))
    values: dict[str, Any] = {}
    for parameter in data.get("parameter") or []:
        name = parameter.get("name") if isinstance(parameter, Mapping) else None
        if name not in allowed:
            raise _BadRequest(f"unknown parameter {name!r}: this operation takes {', '.join(sorted(allowed))}")
        if name in values:
            raise _BadRequest(f"the parameter {name!r} is given twice")
        found = [parameter[k] for k in _VALUE_KEYS if k in parameter]
        if len(found) != 1:
            raise _BadRequest(f"the parameter {name!r} needs one value ({', '.join(_VALUE_KEYS)})")
        values[name] = found[0]
    return values


def _unique_id_parameter(values: Mapping[str, Any]) -> str:
    """The document uniqueId of the ``uniqueId`` parameter (``urn:oid:`` removed)."""
    raw = values.get("uniqueId")
    if isinstance(raw, Mapping):
        raw = raw.get("value")
    if not isinstance(raw, str) or not raw.strip():
        raise _BadRequest(
            "the uniqueId parameter is required: the document's uniqueId (DocumentReference.masterIdentifier), "
            "e.g. valueString 2.25.1234 or valueIdentifier urn:oid:2.25.1234"
        )
    text = raw.strip()
    return text[len("urn:oid:") :] if text.lower().startswith("urn:oid:") else text


def _until_parameter(raw: Any) -> date | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) != 10:
        raise _BadRequest(f"until is a date (valueDate YYYY-MM-DD), not {raw!r}")
    return _day(raw, "until")


def _hold_parameters(unique_id: str, status: str, until: date | None) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": "uniqueId", "valueString": unique_id},
        {"name": "status", "valueCode": status},
    ]
    if until is not None:
        parameters.append({"name": "until", "valueDate": until.isoformat()})
    return {"resourceType": "Parameters", "parameter": parameters}


def decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as the JSON ``$check-access`` answers."""
    return {
        "allowed": decision.allowed,
        "rule": decision.rule.value if decision.rule else None,
        "reason": decision.reason,
        "fix": decision.fix,
        "break_the_glass": decision.break_the_glass,
    }


def consent_routes(
    consents: ConsentRegistry,
    audit: AuditTrail,
    enforcer: Enforcer | None,
    *,
    authenticate: Authenticate = require_bearer,
    base_path: str = "/fhir",
) -> list[Route]:
    """The consent management routes (module docstring), to mount before the FHIR catch-all route."""
    api = ConsentApi(consents, audit, enforcer, authenticate)
    prefix = "/" + base_path.strip("/")
    table: list[tuple[str, Handler, str]] = [
        ("/Patient", api.post_patient, "POST"),
        ("/Consent", api.post_consent, "POST"),
        ("/Consent", api.search_consents, "GET"),
        ("/Consent/{id}", api.delete_consent, "DELETE"),
        ("/CareTeam", api.post_link, "POST"),
        ("/CareTeam", api.search_links, "GET"),
        ("/CareTeam/{id}", api.delete_link, "DELETE"),
        ("/AuditEvent", api.search_audit, "GET"),
        ("/$check-access", api.check_access, "GET"),
        ("/DocumentReference/$hold-back", api.hold_back, "POST"),
        ("/DocumentReference/$release", api.release, "POST"),
    ]
    return [
        Route(prefix + path, _guarded(handler), methods=[method], name=f"consent-{method.lower()}{path}")
        for path, handler, method in table
    ]
