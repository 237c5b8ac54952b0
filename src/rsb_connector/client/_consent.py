"""Consent management in the SDK: ``vault.consent``, ``vault.links``, ``vault.exclusions`` and
``vault.check_access``, over the hub's FHIR consent API (:mod:`rsb_connector.hub.consent_api`) with bearer tokens
obtained with the client's identity.

The operations are sans-IO flows (:class:`ConsentFlows`) run by the sync and the async client alike; the classes
here for each client are one line per method. A refusal by the hub raises
:class:`~rsb_connector.errors.AccessDenied` (HTTP 403: the caller may not; ``rule`` is the refusal kind and
``fix`` what would make it work) or :class:`~rsb_connector.errors.HubRefused` (404 nothing to revoke, 409 the
patient's state does not allow it, 400 a malformed request; the problem code is the FHIR issue code).

::

    with VaultClient(url, identity=Identity.load("patient.p12", pw)) as vault:
        vault.consent.grant("87041213797")                   # retrospective, signed today
        vault.consent.status("87041213797").active            # True
        vault.exclusions.add("87041213797", "43120755401")   # keep this nurse out
    with VaultClient(url, identity=gp) as vault:
        vault.links.declare("87041213797", type="gpconsultation", proof="eidreading")
        vault.check_access("87041213797", action="read", document_class="labresult").allowed
        vault.consent.hold_back(receipt.document.unique_id, until=date(2026, 3, 1))  # the author only
        vault.consent.release(receipt.document.unique_id)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Protocol, TypeVar
from urllib.parse import quote, urlencode

from ..errors import AccessDenied, HubRefused, Problem, ProtocolError
from ..identifiers import NIHDI_SYSTEM, SSIN_SYSTEM, Nihii, Ssin, mask_ssin
from ..policy import Decision, Rule
from ._core import ClientCore, Flow, HttpRequest, Outcome, ResponseSink, Transaction
from ._retry import Safety
from .models import HttpStatusError

__all__ = [
    "AsyncConsentApi",
    "AsyncExclusionsApi",
    "AsyncLinksApi",
    "ConsentApi",
    "ConsentFlows",
    "ConsentRecord",
    "ConsentStatus",
    "DocumentHold",
    "ExclusionRecord",
    "ExclusionsApi",
    "LinkRecord",
    "LinksApi",
]

T = TypeVar("T")

CONSENT_SCOPE_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_TYPE_SYSTEM: Final = "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-CONSENTTYPE"
LINK_TYPE_SYSTEM: Final = "urn:be:fgov:ehealth:2.0:kmehr:cd:CD-THERAPEUTICLINKTYPE"
PROOF_SYSTEM: Final = "urn:be:fgov:ehealth:therapeuticlink:prooftype"
LINK_PROFILE: Final = "urn:rsb-connector:StructureDefinition:therapeutic-link"
PROOF_EXTENSION: Final = "urn:rsb-connector:StructureDefinition:therapeutic-link-proof"
FHIR_JSON: Final = "application/fhir+json"
MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024


# ============================================================================================== results


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """A sharing consent as the hub lists it (``id`` as in ``DELETE /fhir/Consent/<id>``)."""

    id: str
    type: str
    signed: date
    active: bool
    ended: date | None = None


@dataclass(frozen=True, slots=True)
class ConsentStatus:
    """The patient's consents: :attr:`consent` is the active one (None: the patient's data are not shared)."""

    consent: ConsentRecord | None
    records: tuple[ConsentRecord, ...] = ()

    @property
    def active(self) -> bool:
        """Whether the patient has an active sharing consent."""
        return self.consent is not None


@dataclass(frozen=True, slots=True)
class DocumentHold:
    """Whether a document is held back from its patient, as the hub answered ``$hold-back`` / ``$release``.

    Attributes:
        unique_id: the document's uniqueId.
        held: True after a hold, False after a release.
        until: the day the patient sees the document again (None: held for good, or released).
    """

    unique_id: str
    held: bool
    until: date | None = None


@dataclass(frozen=True, slots=True)
class ExclusionRecord:
    """An exclusion of a professional by the patient."""

    id: str
    professional_nihii: str
    start: date | None
    end: date | None
    active: bool


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """A therapeutic link between a professional (or hospital) and the patient."""

    id: str
    professional_nihii: str
    type: str
    proof: str
    start: date | None
    end: date | None
    active: bool


# ============================================================================================== wire


@dataclass(slots=True)
class JsonOutcome(Outcome):
    """A JSON answer of the hub's FHIR side."""

    body: Any = None
    status_code: int = 0


class JsonSink(ResponseSink[JsonOutcome]):
    """Reads a FHIR JSON answer; an OperationOutcome error raises (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.status_code = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()

    def start(self, status_code: int, headers: Mapping[str, str]) -> None:
        self.status_code = status_code
        self.headers = {k.lower(): v for k, v in headers.items()}
        if status_code in (502, 503, 504):
            raise HttpStatusError(f"{self.url}: HTTP {status_code}", status_code=status_code, url=self.url)

    def feed(self, chunk: bytes) -> None:
        self.body += chunk
        if len(self.body) > MAX_ANSWER_BYTES:
            raise ProtocolError(f"{self.url}: the answer is larger than {MAX_ANSWER_BYTES} bytes")

    def finish(self) -> JsonOutcome:
        try:
            document = json.loads(bytes(self.body)) if self.body else None
        except ValueError:
            document = None
        if self.status_code >= 400:
            raise _refusal(self.status_code, document, self.url)
        if not isinstance(document, dict):
            raise ProtocolError(f"{self.url}: HTTP {self.status_code} without a JSON object")
        return JsonOutcome("Success", body=document, status_code=self.status_code)

    def abort(self) -> None:
        self.body.clear()


def _refusal(status_code: int, document: Any, url: str) -> Exception:
    issues = document.get("issue") if isinstance(document, dict) else None
    if not isinstance(issues, list) or not issues:
        return HttpStatusError(f"{url}: HTTP {status_code}", status_code=status_code, url=url)
    issue = issues[0] if isinstance(issues[0], dict) else {}
    code = str(issue.get("code") or "exception")
    text = str(issue.get("diagnostics") or "the hub refused")
    reason, _, fix = text.partition(" Fix: ")
    detail = None
    for coding in (issue.get("details") or {}).get("coding") or []:
        detail = coding.get("code") or detail
    problem = Problem(str(detail or code), text, f"HTTP {status_code}")
    message = mask_ssin(f"the hub refused (HTTP {status_code} {code}): {text}")
    if status_code == 403:
        return AccessDenied([problem], message, rule=detail or code, reason=reason, fix=fix or None)
    return HubRefused([problem], message)


def _unique_id(unique_id: str) -> str:
    text = unique_id.strip()
    if not text:
        raise ValueError("give the document's uniqueId")
    return text[len("urn:oid:") :] if text.lower().startswith("urn:oid:") else text


def document_hold(parameters: Mapping[str, Any]) -> DocumentHold:
    """The hub's ``Parameters`` answer to ``$hold-back`` / ``$release``."""
    values: dict[str, Any] = {}
    for parameter in parameters.get("parameter") or []:
        if isinstance(parameter, Mapping):
            values[str(parameter.get("name"))] = next((v for k, v in parameter.items() if k.startswith("value")), None)
    status = values.get("status")
    if not isinstance(values.get("uniqueId"), str) or status not in ("held-back", "released"):
        raise ProtocolError(f"the hub's answer is not a $hold-back / $release Parameters: {values}")
    return DocumentHold(str(values["uniqueId"]), status == "held-back", _day(values.get("until")))


def _ssin(patient: Ssin | str) -> str:
    return patient.digits if isinstance(patient, Ssin) else Ssin(patient).digits


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _code(concepts: Any, system: str) -> str | None:
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        for coding in (concept or {}).get("coding") or []:
            if coding.get("system") == system:
                return str(coding.get("code"))
    return None


def _resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry") or [] if isinstance(e, dict) and "resource" in e]


def _patient_ref(ssin: str) -> dict[str, Any]:
    return {"reference": f"Patient/{ssin}", "identifier": {"system": SSIN_SYSTEM, "value": ssin}}


def consent_record(resource: Mapping[str, Any]) -> ConsentRecord:
    """A sharing consent Consent resource as a :class:`ConsentRecord`."""
    period = (resource.get("provision") or {}).get("period") or {}
    return ConsentRecord(
        id=str(resource.get("id")),
        type=_code(resource.get("category"), CONSENT_TYPE_SYSTEM) or "",
        signed=_day(resource.get("dateTime")) or date.min,
        active=resource.get("status") == "active",
        ended=_day(period.get("end")),
    )


def exclusion_record(resource: Mapping[str, Any]) -> ExclusionRecord:
    """An exclusion Consent resource as an :class:`ExclusionRecord`."""
    provision = resource.get("provision") or {}
    actor = (provision.get("actor") or [{}])[0]
    period = provision.get("period") or {}
    return ExclusionRecord(
        id=str(resource.get("id")),
        professional_nihii=str(((actor.get("reference") or {}).get("identifier") or {}).get("value", "")),
        start=_day(period.get("start")),
        end=_day(period.get("end")),
        active=resource.get("status") == "active",
    )


def link_record(resource: Mapping[str, Any]) -> LinkRecord:
    """A therapeutic link CareTeam resource as a :class:`LinkRecord`."""
    member = ((resource.get("participant") or [{}])[0].get("member") or {}).get("identifier") or {}
    proof = ""
    for extension in resource.get("extension") or []:
        if extension.get("url") == PROOF_EXTENSION:
            proof = str((extension.get("valueCoding") or {}).get("code", ""))
    period = resource.get("period") or {}
    return LinkRecord(
        id=str(resource.get("id")),
        professional_nihii=str(member.get("value", "")),
        type=_code(resource.get("category"), LINK_TYPE_SYSTEM) or "",
        proof=proof,
        start=_day(period.get("start")),
        end=_day(period.get("end")),
        active=resource.get("status") == "active",
    )


def decision_of(body: Mapping[str, Any]) -> Decision:
    """The ``$check-access`` JSON as a :class:`~rsb_connector.policy.Decision`."""
    rule = body.get("rule")
    return Decision(
        allowed=bool(body.get("allowed")),
        rule=Rule(rule) if rule else None,
        reason=str(body.get("reason") or ""),
        fix=body.get("fix") or None,
        break_the_glass=bool(body.get("break_the_glass")),
    )


# ============================================================================================== flows


@dataclass(slots=True)
class ConsentFlows:
    """Every consent operation as a flow over one :class:`~rsb_connector.client._core.ClientCore`."""

    core: ClientCore
    _fhir: str = field(init=False)

    def __post_init__(self) -> None:
        self._fhir = f"{self.core.base_url}/fhir"

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Flow[JsonOutcome]:
        """One authenticated FHIR request (a fresh token when the kept one expired; once more on a 401)."""
        url = f"{self._fhir}{path}"
        safety = Safety.IDEMPOTENT if method in ("GET", "DELETE") else Safety.NOT_SAFE
        for attempt in (1, 2):
            token = yield from self.core.tokens.flow()
            headers = {"authorization": f"Bearer {token}", "accept": FHIR_JSON}
            payload = b""
            if body is not None:
                headers["content-type"] = FHIR_JSON
                payload = json.dumps(body).encode()

            def prepare(
                headers: dict[str, str] = headers, payload: bytes = payload
            ) -> tuple[HttpRequest, ResponseSink[JsonOutcome]]:
                return HttpRequest(method, url, headers, payload), JsonSink(url)

            tx = Transaction(f"FHIR {method} {path.split('?')[0]}", f"{method} {path}", url, safety, prepare)
            try:
                return (yield from self.core.exchange(tx))
            except HttpStatusError as exc:
                if exc.status_code == 401 and attempt == 1:
                    self.core.tokens.invalidate()
                    continue
                raise
            except HubRefused as exc:
                if attempt == 1 and "HTTP 401" in (exc.problems[0].path if exc.problems else ""):
                    self.core.tokens.invalidate()
                    continue
                raise
        raise ProtocolError(f"{url}: the hub refused the access token twice")  # pragma: no cover - loop exits above

    def _own_nihii(self) -> str:
        identity = self.core.identity
        if identity is None or identity.nihii is None:
            raise ValueError("give the professional's NIHII: the client's identity names none")
        return str(identity.nihii)

    # ------------------------------------------------------------------------------------------ consent
    def grant(
        self, patient: Ssin | str, type: str = "retrospective", signed: date | None = None
    ) -> Flow[ConsentRecord]:
        """Register the patient's sharing consent."""
        ssin = _ssin(patient)
        resource: dict[str, Any] = {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": CONSENT_TYPE_SYSTEM, "code": type}]}],
            "patient": _patient_ref(ssin),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": {"type": "permit"},
        }
        if signed is not None:
            resource["dateTime"] = signed.isoformat()
        answer = yield from self.request("POST", "/Consent", resource)
        return consent_record(answer.body)

    def _consents(self, patient: Ssin | str) -> Flow[list[dict[str, Any]]]:
        query = urlencode({"patient": _ssin(patient)})
        answer = yield from self.request("GET", f"/Consent?{query}")
        return _resources(answer.body)

    def status(self, patient: Ssin | str) -> Flow[ConsentStatus]:
        """The patient's consents and the active one."""
        found = yield from self._consents(patient)
        records = tuple(consent_record(r) for r in found if str(r.get("id", "")).startswith("consent-"))
        active = next((r for r in records if r.active), None)
        return ConsentStatus(active, records)

    def revoke(self, patient: Ssin | str) -> Flow[ConsentRecord]:
        """Revoke the patient's active consent (from today on)."""
        current = yield from self.status(patient)
        if current.consent is None:
            raise HubRefused(
                [Problem("not-found", "this patient has no active consent to revoke", "Consent")],
                "the patient has no active consent to revoke",
            )
        answer = yield from self.request("DELETE", f"/Consent/{quote(current.consent.id)}")
        return consent_record(answer.body)

    # ------------------------------------------------------------------------------------------ exclusions
    def exclude(
        self, patient: Ssin | str, professional_nihii: str, start: date | None = None, end: date | None = None
    ) -> Flow[ExclusionRecord]:
        """The patient excludes a professional."""
        period = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        provision: dict[str, Any] = {
            "type": "deny",
            "actor": [
                {
                    "role": {"text": "excluded professional"},
                    "reference": {"identifier": {"system": NIHDI_SYSTEM, "value": Nihii(professional_nihii).digits}},
                }
            ],
        }
        if period:
            provision["period"] = period
        resource = {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": _patient_ref(_ssin(patient)),
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
            "provision": provision,
        }
        answer = yield from self.request("POST", "/Consent", resource)
        return exclusion_record(answer.body)

    def exclusions(self, patient: Ssin | str) -> Flow[list[ExclusionRecord]]:
        """The patient's exclusions (a professional sees only their own)."""
        found = yield from self._consents(patient)
        return [exclusion_record(r) for r in found if str(r.get("id", "")).startswith("exclusion-")]

    def lift(self, patient: Ssin | str, professional_nihii: str) -> Flow[list[ExclusionRecord]]:
        """Lift the patient's active exclusion(s) of a professional."""
        nihii = Nihii(professional_nihii).digits
        found = yield from self.exclusions(patient)
        targets = [e for e in found if e.active and e.professional_nihii == nihii]
        if not targets:
            raise HubRefused(
                [Problem("not-found", f"NIHII {nihii} is not excluded by this patient", "Consent")],
                f"NIHII {nihii} is not excluded by this patient",
            )
        lifted = []
        for target in targets:
            answer = yield from self.request("DELETE", f"/Consent/{quote(target.id)}")
            lifted.append(exclusion_record(answer.body))
        return lifted

    # ------------------------------------------------------------------------------------------ links
    def declare(
        self,
        patient: Ssin | str,
        type: str = "gpconsultation",
        proof: str = "eidreading",
        start: date | None = None,
        end: date | None = None,
        professional_nihii: str | None = None,
    ) -> Flow[LinkRecord]:
        """Declare a therapeutic link of the client's professional (or ``professional_nihii``) with the patient."""
        nihii = Nihii(professional_nihii).digits if professional_nihii else self._own_nihii()
        resource: dict[str, Any] = {
            "resourceType": "CareTeam",
            "meta": {"profile": [LINK_PROFILE]},
            "extension": [{"url": PROOF_EXTENSION, "valueCoding": {"system": PROOF_SYSTEM, "code": proof}}],
            "status": "active",
            "category": [{"coding": [{"system": LINK_TYPE_SYSTEM, "code": type}]}],
            "subject": _patient_ref(_ssin(patient)),
            "participant": [{"member": {"identifier": {"system": NIHDI_SYSTEM, "value": nihii}}}],
        }
        period = {k: v.isoformat() for k, v in (("start", start), ("end", end)) if v is not None}
        if period:
            resource["period"] = period
        answer = yield from self.request("POST", "/CareTeam", resource)
        return link_record(answer.body)

    def links(self, patient: Ssin | str) -> Flow[list[LinkRecord]]:
        """The patient's therapeutic links (a professional sees their own)."""
        answer = yield from self.request("GET", "/CareTeam?" + urlencode({"patient": _ssin(patient)}))
        return [link_record(r) for r in _resources(answer.body)]

    def unlink(
        self, patient: Ssin | str, professional_nihii: str | None = None, type: str | None = None
    ) -> Flow[list[LinkRecord]]:
        """Revoke the open links of the client's professional (or ``professional_nihii``) with the patient."""
        nihii = Nihii(professional_nihii).digits if professional_nihii else self._own_nihii()
        found = yield from self.links(patient)
        targets = [
            link
            for link in found
            if link.active and link.professional_nihii == nihii and (type is None or link.type == type)
        ]
        if not targets:
            raise HubRefused(
                [Problem("not-found", f"no open therapeutic link of NIHII {nihii} with this patient", "CareTeam")],
                f"no open therapeutic link of NIHII {nihii} with this patient to revoke",
            )
        revoked = []
        for target in targets:
            answer = yield from self.request("DELETE", f"/CareTeam/{quote(target.id)}")
            revoked.append(link_record(answer.body))
        return revoked

    # ------------------------------------------------------------------------------------------ access
    def check_access(
        self,
        patient: Ssin | str,
        action: str = "read",
        document_class: str | None = None,
        break_the_glass: str | None = None,
        confidentiality: str = "N",
    ) -> Flow[Decision]:
        """The hub's decision for the client's identity (``GET /fhir/$check-access``)."""
        params: dict[str, str] = {"patient": _ssin(patient), "action": action, "confidentiality": confidentiality}
        if document_class:
            params["class"] = document_class
        if break_the_glass:
            params["break-the-glass"] = break_the_glass
        answer = yield from self.request("GET", "/$check-access?" + urlencode(params))
        return decision_of(answer.body)

    def trail(self, patient: Ssin | str) -> Flow[list[dict[str, Any]]]:
        """The patient's own audit trail (AuditEvent resources, SSINs masked)."""
        answer = yield from self.request("GET", "/AuditEvent?" + urlencode({"patient": _ssin(patient)}))
        return _resources(answer.body)

    # ------------------------------------------------------------------------------------------ held back
    def hold(self, unique_id: str, until: date | None) -> Flow[DocumentHold]:
        """Hold a document back from its patient (``POST /fhir/DocumentReference/$hold-back``)."""
        parameters: list[dict[str, Any]] = [{"name": "uniqueId", "valueString": _unique_id(unique_id)}]
        if until is not None:
            parameters.append({"name": "until", "valueDate": until.isoformat()})
        body = {"resourceType": "Parameters", "parameter": parameters}
        answer = yield from self.request("POST", "/DocumentReference/$hold-back", body)
        return document_hold(answer.body)

    def release(self, unique_id: str) -> Flow[DocumentHold]:
        """Release a held-back document to its patient (``POST /fhir/DocumentReference/$release``)."""
        body = {"resourceType": "Parameters", "parameter": [{"name": "uniqueId", "valueString": _unique_id(unique_id)}]}
        answer = yield from self.request("POST", "/DocumentReference/$release", body)
        return document_hold(answer.body)


# ============================================================================================== faces


class SyncRun(Protocol):
    """Runs a flow to its result (:meth:`VaultClient._run`)."""

    def __call__(self, flow: Flow[T], /) -> T: ...


class AsyncRun(Protocol):
    """Runs a flow to its result (:meth:`AsyncVaultClient._run`)."""

    def __call__(self, flow: Flow[T], /) -> Awaitable[T]: ...


class ConsentApi:
    """``vault.consent``: the patient's sharing consent."""

    def __init__(self, flows: ConsentFlows, run: SyncRun) -> None:
        self._flows, self._run = flows, run

    def grant(self, patient: Ssin | str, type: str = "retrospective", *, signed: date | None = None) -> ConsentRecord:
        """Register the patient's consent (``local``, ``prospective`` or ``retrospective``; signed today by default).

        Raises:
            AccessDenied: the caller may not (only the patient, a minor's representative, a physician, a
                pharmacist or a hospital registers consents).
            HubRefused: the patient already has an active consent (409), a malformed request (400).
        """
        return self._run(self._flows.grant(patient, type, signed))

    def revoke(self, patient: Ssin | str) -> ConsentRecord:
        """Revoke the patient's active consent from today on (HubRefused when there is none)."""
        return self._run(self._flows.revoke(patient))

    def status(self, patient: Ssin | str) -> ConsentStatus:
        """The patient's consents; ``.active`` says whether their data are shared."""
        return self._run(self._flows.status(patient))

    def trail(self, patient: Ssin | str) -> list[dict[str, Any]]:
        """The patient's own audit trail: who accessed what, allowed or not (for the patient or a minor's
        representative; AuditEvent resources)."""
        return self._run(self._flows.trail(patient))

    def hold_back(self, unique_id: str, *, until: date | None = None) -> DocumentHold:
        """Hold a document back from its patient until ``until`` (a day after today; the patient sees it again
        that day) or, without it, until released. Professionals' access is not affected.

        Raises:
            AccessDenied: the client's identity is not an author of the document (an unknown document is refused
                the same way).
            HubRefused: ``until`` is not after today (409).
        """
        return self._run(self._flows.hold(unique_id, until))

    def release(self, unique_id: str) -> DocumentHold:
        """Release a held-back document to its patient at once (AccessDenied for anyone but an author;
        HubRefused (404) when it is not held back)."""
        return self._run(self._flows.release(unique_id))


class LinksApi:
    """``vault.links``: therapeutic links."""

    def __init__(self, flows: ConsentFlows, run: SyncRun) -> None:
        self._flows, self._run = flows, run

    def declare(
        self,
        patient: Ssin | str,
        type: str = "gpconsultation",
        proof: str = "eidreading",
        start: date | None = None,
        end: date | None = None,
        *,
        professional_nihii: str | None = None,
    ) -> LinkRecord:
        """Declare a link of the client's professional with the patient (needs the patient's consent)."""
        return self._run(self._flows.declare(patient, type, proof, start, end, professional_nihii))

    def revoke(
        self, patient: Ssin | str, professional_nihii: str | None = None, *, type: str | None = None
    ) -> list[LinkRecord]:
        """Revoke the open links of a professional (the client's by default) with the patient."""
        return self._run(self._flows.unlink(patient, professional_nihii, type))

    def list(self, patient: Ssin | str) -> list[LinkRecord]:
        """The patient's links (all of them for the patient; their own for a professional)."""
        return self._run(self._flows.links(patient))


class ExclusionsApi:
    """``vault.exclusions``: professionals the patient keeps out."""

    def __init__(self, flows: ConsentFlows, run: SyncRun) -> None:
        self._flows, self._run = flows, run

    def add(
        self, patient: Ssin | str, professional_nihii: str, *, start: date | None = None, end: date | None = None
    ) -> ExclusionRecord:
        """Exclude a professional (the patient, or a minor's representative, only)."""
        return self._run(self._flows.exclude(patient, professional_nihii, start, end))

    def remove(self, patient: Ssin | str, professional_nihii: str) -> list[ExclusionRecord]:
        """Lift the exclusion of a professional."""
        return self._run(self._flows.lift(patient, professional_nihii))

    def list(self, patient: Ssin | str) -> list[ExclusionRecord]:
        """The patient's exclusions."""
        return self._run(self._flows.exclusions(patient))


class AsyncConsentApi:
    """``vault.consent`` of the async client (see :class:`ConsentApi`)."""

    def __init__(self, flows: ConsentFlows, run: AsyncRun) -> None:
        self._flows, self._run = flows, run

    async def grant(
        self, patient: Ssin | str, type: str = "retrospective", *, signed: date | None = None
    ) -> ConsentRecord:
        """See :meth:`ConsentApi.grant`."""
        return await self._run(self._flows.grant(patient, type, signed))

    async def revoke(self, patient: Ssin | str) -> ConsentRecord:
        """See :meth:`ConsentApi.revoke`."""
        return await self._run(self._flows.revoke(patient))

    async def status(self, patient: Ssin | str) -> ConsentStatus:
        """See :meth:`ConsentApi.status`."""
        return await self._run(self._flows.status(patient))

    async def trail(self, patient: Ssin | str) -> list[dict[str, Any]]:
        """See :meth:`ConsentApi.trail`."""
        return await self._run(self._flows.trail(patient))

    async def hold_back(self, unique_id: str, *, until: date | None = None) -> DocumentHold:
        """See :meth:`ConsentApi.hold_back`."""
        return await self._run(self._flows.hold(unique_id, until))

    async def release(self, unique_id: str) -> DocumentHold:
        """See :meth:`ConsentApi.release`."""
        return await self._run(self._flows.release(unique_id))


class AsyncLinksApi:
    """``vault.links`` of the async client (see :class:`LinksApi`)."""

    def __init__(self, flows: ConsentFlows, run: AsyncRun) -> None:
        self._flows, self._run = flows, run

    async def declare(
        self,
        patient: Ssin | str,
        type: str = "gpconsultation",
        proof: str = "eidreading",
        start: date | None = None,
        end: date | None = None,
        *,
        professional_nihii: str | None = None,
    ) -> LinkRecord:
        """See :meth:`LinksApi.declare`."""
        return await self._run(self._flows.declare(patient, type, proof, start, end, professional_nihii))

    async def revoke(
        self, patient: Ssin | str, professional_nihii: str | None = None, *, type: str | None = None
    ) -> list[LinkRecord]:
        """See :meth:`LinksApi.revoke`."""
        return await self._run(self._flows.unlink(patient, professional_nihii, type))

    async def list(self, patient: Ssin | str) -> list[LinkRecord]:
        """See :meth:`LinksApi.list`."""
        return await self._run(self._flows.links(patient))


class AsyncExclusionsApi:
    """``vault.exclusions`` of the async client (see :class:`ExclusionsApi`)."""

    def __init__(self, flows: ConsentFlows, run: AsyncRun) -> None:
        self._flows, self._run = flows, run

    async def add(
        self, patient: Ssin | str, professional_nihii: str, *, start: date | None = None, end: date | None = None
    ) -> ExclusionRecord:
        """See :meth:`ExclusionsApi.add`."""
        return await self._run(self._flows.exclude(patient, professional_nihii, start, end))

    async def remove(self, patient: Ssin | str, professional_nihii: str) -> list[ExclusionRecord]:
        """See :meth:`ExclusionsApi.remove`."""
        return await self._run(self._flows.lift(patient, professional_nihii))

    async def list(self, patient: Ssin | str) -> list[ExclusionRecord]:
        """See :meth:`ExclusionsApi.list`."""
        return await self._run(self._flows.exclusions(patient))
