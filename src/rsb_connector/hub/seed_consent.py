"""Consent data for the seeded population: so that every rule can be seen at work right after ``rsb hub serve --seed``.

:func:`seed_consent` fills the consent registries for the synthetic people of :mod:`rsb_connector.hub.population`
(and publishes four small synthetic documents by the sample GP for the first sample patient), then describes it:
who holds which consent, link and exclusion, and — computed with the decision engine on the stored state — which
caller would be allowed or refused what, by which rule (the ``cases``). The lead merges that description into
``seed.json``.

What is seeded (``today`` is the seeding day):

- the five sample professionals in the professionals registry;
- Noor (a minor) has Amina as legal representative (while Noor is under 16);
- retrospective consents for everybody but Marc (the patient *without* consent): Lucas's registered by the GP,
  Jean-Pierre's by the pharmacist, Oksana's by the GP, Noor's by Amina, the others by themselves; Georges gives his
  and revokes it the same day (a revoked consent);
- therapeutic links: the GP with Lucas (gpconsultation, eidreading: the quickstart's pair), Amina, Jean-Pierre and
  Noor; the specialist with Jean-Pierre, and an *expired* one with Lucas; the nurse, the physiotherapist and the
  pharmacist with Lucas (carepath); the GP with Georges (before his revocation);
- Lucas excludes the nurse;
- four documents by the GP about Lucas: a lab result (``N``), a contact report held back from Lucas for 30 days, a
  medication scheme on which the pharmacist is disallowed, and a very restricted (``V``) note.

Seeding is done once: when Lucas already has a consent record the registries are left as they are and only the
description is computed again (on the stored state, for ``today``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from ..identifiers import Ssin
from ..metadata.builder import new_document, new_submission, professional_author
from ..metadata.model import DocumentEntry
from ..policy import MINOR_AGE, Action, Actor, DocumentFacts, PatientState, decide
from ..xds.constants import DEFAULT_REPOSITORY_UNIQUE_ID
from .consent import ConsentRegistry, RecordKind, document_facts
from .population import SEED_PATIENTS, SEED_PROFESSIONALS, SeedPatient, SeedProfessional
from .registry import HUB_OPERATOR_ROLE, Caller, IncomingDocument, Registry
from .store import Store

__all__ = ["SEED_CONSENT_FORMAT_VERSION", "seed_callers", "seed_consent", "seed_document_unique_id"]

SEED_CONSENT_FORMAT_VERSION: Final = 1
"""Version of the description's layout."""

_OPERATOR: Final = Caller("rsb hub seed", HUB_OPERATOR_ROLE, authenticated=True)
_GLASS: Final = "Patient unconscious at the emergency department, no relative reachable"


def _patient(key: str) -> SeedPatient:
    return next(p for p in SEED_PATIENTS if p.key == key)


def _professional(key: str) -> SeedProfessional:
    return next(p for p in SEED_PROFESSIONALS if p.key == key)


def _stable_oid(name: str) -> str:
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:rsb-connector:seed:{name}').int}"


def _stable_uuid(name: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'urn:rsb-connector:seed:{name}')}"


def seed_document_unique_id(key: str) -> str:
    """The uniqueId of a seeded document (``labresult``, ``contactreport``, ``medicationscheme``, ``note-v``):
    stable across data directories."""
    return _stable_oid(f"document:{key}")


def seed_callers() -> dict[str, Caller]:
    """The seeded people as the :class:`~rsb_connector.hub.registry.Caller` the security layer would make of their
    identity: ``gp``, ``specialist``... (professionals), ``patient:<key>`` (patients) and
    ``representative:amina>noor``."""
    callers: dict[str, Caller] = {}
    for pro in SEED_PROFESSIONALS:
        callers[pro.key] = Caller(f"{pro.given} {pro.family}", pro.hcparty, nihii=pro.nihii, authenticated=True)
    for patient in SEED_PATIENTS:
        callers[f"patient:{patient.key}"] = Caller(
            f"{patient.given} {patient.family}", "patient", ssin=patient.ssin, authenticated=True
        )
    amina, noor = _patient("amina"), _patient("noor")
    callers["representative:amina>noor"] = Caller(
        f"{amina.given} {amina.family}", "patient", ssin=amina.ssin, represents=noor.ssin, authenticated=True
    )
    return callers


@dataclass(frozen=True, slots=True)
class _Document:
    key: str
    document_type: str
    title: str
    confidentiality: str = "N"


_DOCUMENTS: Final = (
    _Document("labresult", "labresult", "Blood test results"),
    _Document("contactreport", "contactreport", "Consultation report (held back from the patient)"),
    _Document("medicationscheme", "medicationscheme", "Medication scheme"),
    _Document("note-v", "note", "Very restricted note", "V"),
)


def seed_consent(
    store: Store,
    consents: ConsentRegistry,
    *,
    today: date | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """Seed the consent registries for the synthetic population (once) and describe them (see the module docstring).

    Args:
        store: the hub's store; the seeded patients are registered in its patient registry if they are not yet.
        consents: the hub's consent registry (its clock's day is the day changes take effect).
        today: the day the description's cases are decided for; None: the consent registry's day.
        registry: the hub's registry, to publish the sample documents through (its repository id is used);
            None: a registry without enforcement over ``store``.

    Returns:
        A JSON-able description: ``format``, ``version``, ``today``, ``seeded`` (False when it was done before),
        ``professionals``, ``representatives``, ``consents``, ``no_consent``, ``links``, ``exclusions``,
        ``documents`` and ``cases`` (who would be allowed or refused what, and by which rule).
    """
    day = today or consents.today()
    callers = seed_callers()
    lucas = _patient("lucas")
    with store.read() as r:
        missing = [p for p in SEED_PATIENTS if not r.has_patient(p.patient_id)]
    if missing:
        with store.write() as w:
            for p in missing:
                w.register_patient(p.patient_id, p.describe(day))
    seeded = not consents.records(RecordKind.CONSENT, lucas.ssin)
    if seeded:
        _seed(store, consents, callers, registry)
    return _describe(store, consents, callers, day, seeded=seeded)


def _seed(store: Store, consents: ConsentRegistry, callers: dict[str, Caller], registry: Registry | None) -> None:
    start = consents.today()
    for pro in SEED_PROFESSIONALS:
        consents.register_professional(
            pro.nihii, by=_OPERATOR, profession=pro.hcparty, given=pro.given, family=pro.family
        )
    key = {p.key: p.ssin for p in SEED_PATIENTS}
    registrar = {"lucas": "gp", "jean-pierre": "pharmacist", "oksana": "gp"}
    age = _patient("noor").age_on(start)
    if age is not None and age < MINOR_AGE:  # Noor grows up: from 16 on she gives her consent herself
        consents.add_representative(key["noor"], key["amina"], by=_OPERATOR)
        registrar["noor"] = "representative:amina>noor"

    signed = start - timedelta(days=365)
    for patient in SEED_PATIENTS:
        if patient.key == "marc":
            continue  # the patient without consent
        by = callers[registrar.get(patient.key, f"patient:{patient.key}")]
        consents.grant_consent(patient.ssin, by=by, type="retrospective", signed=signed)

    def link(pro: str, patient: str, kind: str, proof: str = "eidreading", **dates: date) -> None:
        nihii = callers[pro].nihii or ""
        consents.declare_link(key[patient], nihii, kind, proof, by=callers[pro], **dates)

    link("gp", "lucas", "gpconsultation")
    link("gp", "amina", "gmd")
    link("gp", "jean-pierre", "gmd")
    link("gp", "noor", "gpconsultation")
    link("gp", "georges", "gmd")
    link("specialist", "jean-pierre", "specialistconsultation")
    link(
        "specialist",
        "lucas",
        "specialistconsultation",
        start=start - timedelta(days=400),
        end=start - timedelta(days=35),
    )
    link("nurse", "lucas", "carepath")
    link("physio", "lucas", "carepath")
    link("pharmacist", "lucas", "carepath")
    consents.add_exclusion(key["lucas"], callers["nurse"].nihii or "", by=callers["patient:lucas"])
    consents.revoke_consent(key["georges"], by=callers["patient:georges"])

    _publish(store, callers, registry)
    gp = callers["gp"]
    consents.hold_back(seed_document_unique_id("contactreport"), by=gp, until=start + timedelta(days=30))
    pharmacist = callers["pharmacist"].nihii or ""
    consents.set_access_right(seed_document_unique_id("medicationscheme"), pharmacist, False, by=gp)


def _publish(store: Store, callers: dict[str, Caller], registry: Registry | None) -> None:
    gp = _professional("gp")
    lucas = _patient("lucas")
    hub = registry or Registry(store, repository_unique_id=DEFAULT_REPOSITORY_UNIQUE_ID)
    author = professional_author(gp.nihii, family=gp.family, given=gp.given)
    entries: list[DocumentEntry] = []
    contents: dict[str, bytes] = {}
    for doc in _DOCUMENTS:
        content = (
            f"{doc.title} for {lucas.given} {lucas.family}: synthetic test document of the rsb-connector mock hub.\n"
        ).encode()
        entry = new_document(
            content,
            patient=lucas.ssin,
            document_type=doc.document_type,
            author=author,
            mime_type="text/plain",
            title=doc.title,
            confidentiality=doc.confidentiality,
            unique_id=seed_document_unique_id(doc.key),
            entry_uuid=_stable_uuid(f"entry:{doc.key}"),
        )
        entries.append(entry)
        contents[entry.entry_uuid] = content
    submission = new_submission(
        entries,
        author=author,
        unique_id=_stable_oid("submission:lucas"),
        entry_uuid=_stable_uuid("submission:lucas"),
        title="Seeded documents",
    )
    documents = {doc_id: IncomingDocument.from_bytes(data) for doc_id, data in contents.items()}
    outcome = hub.provide_and_register(submission, documents, caller=callers["gp"])
    if not outcome.ok:
        raise RuntimeError("seeding the sample documents failed: " + "; ".join(str(p) for p in outcome.problems))


# ============================================================================================== description


def _describe(
    store: Store, consents: ConsentRegistry, callers: dict[str, Caller], day: date, *, seeded: bool
) -> dict[str, Any]:
    patient_key = {p.ssin: p.key for p in SEED_PATIENTS}
    pro_key = {p.nihii: p.key for p in SEED_PROFESSIONALS}
    states = {p.key: consents.patient_state(p.ssin) for p in SEED_PATIENTS}
    with store.read() as r:
        stored = r.entries(unique_ids=[seed_document_unique_id(d.key) for d in _DOCUMENTS])
    facts = {
        d.key: document_facts(s.entry)
        for d in _DOCUMENTS
        for s in stored
        if s.entry.unique_id == seed_document_unique_id(d.key)
    }

    consents_out: list[dict[str, Any]] = []
    links_out: list[dict[str, Any]] = []
    exclusions_out: list[dict[str, Any]] = []
    representatives_out: list[dict[str, Any]] = []
    for key, state in states.items():
        for c in state.consents:
            consents_out.append(
                {
                    "patient": key,
                    "type": c.type.value,
                    "signed": c.signed.isoformat(),
                    "revoked": c.revoked.isoformat() if c.revoked else None,
                    "registered_by": pro_key.get(c.registered_by or "") or patient_key.get(c.registered_by or ""),
                }
            )
        for link in state.links:
            months = consents.matrix.link_validity_months(_pro_hcparty(link.professional_nihii))
            last = link.last_day(months)
            links_out.append(
                {
                    "patient": key,
                    "professional": pro_key.get(link.professional_nihii, link.professional_nihii),
                    "type": link.type.value,
                    "proof": link.proof.value,
                    "start": link.start.isoformat(),
                    "last_day": last.isoformat() if last else None,
                    "revoked": link.revoked.isoformat() if link.revoked else None,
                    "valid_today": link.valid_on(day, months),
                }
            )
        for e in state.exclusions:
            exclusions_out.append(
                {
                    "patient": key,
                    "professional": pro_key.get(e.professional_nihii, e.professional_nihii),
                    "start": e.start.isoformat(),
                    "end": e.end.isoformat() if e.end else None,
                }
            )
        for rep in state.legal_representatives:
            representatives_out.append({"patient": key, "representative": patient_key.get(rep, rep)})

    lucas_state = states["lucas"]
    documents_out: list[dict[str, Any]] = []
    for doc in _DOCUMENTS:
        f = facts.get(doc.key)
        if f is None:
            continue
        hold = next((h for h in lucas_state.held_back if h.document_unique_id == f.unique_id), None)
        rights = [r for r in lucas_state.access_rights if r.document_unique_id == f.unique_id]
        documents_out.append(
            {
                "key": doc.key,
                "unique_id": f.unique_id,
                "entry_uuid": _stable_uuid(f"entry:{doc.key}"),
                "patient": "lucas",
                "class": f.class_code,
                "confidentiality": f.confidentiality,
                "authors": [pro_key.get(n, n) for n in f.author_nihiis],
                "held_back_until": (hold.until.isoformat() if hold.until else "forever") if hold else None,
                "access_rights": [
                    {"professional": pro_key.get(r.professional_nihii, r.professional_nihii), "allow": r.allow}
                    for r in rights
                ],
            }
        )

    return {
        "format": "rsb-connector consent seed",
        "version": SEED_CONSENT_FORMAT_VERSION,
        "today": day.isoformat(),
        "seeded": seeded,
        "professionals": [{"key": p.key, "nihii": p.nihii, "hcparty": p.hcparty} for p in SEED_PROFESSIONALS],
        "representatives": representatives_out,
        "consents": consents_out,
        "no_consent": [k for k, s in states.items() if not s.consents],
        "links": links_out,
        "exclusions": exclusions_out,
        "documents": documents_out,
        "cases": _cases(callers, states, facts, day, consents),
    }


def _pro_hcparty(nihii: str) -> str | None:
    found = next((p for p in SEED_PROFESSIONALS if p.nihii == nihii), None)
    return found.hcparty if found else None


# (who, patient, action, document key or None, break-the-glass reason, what it shows)
_CASES: Final[tuple[tuple[str, str, Action, str | None, str | None, str], ...]] = (
    ("gp", "lucas", Action.PUBLISH, None, None, "the quickstart: the GP publishes for their patient"),
    ("gp", "lucas", Action.READ, "labresult", None, "the GP reads their patient's lab result"),
    ("patient:lucas", "lucas", Action.READ, "labresult", None, "a patient reads their own document"),
    ("specialist", "lucas", Action.READ, "labresult", None, "an expired therapeutic link"),
    ("specialist", "lucas", Action.READ, "labresult", _GLASS, "break-the-glass passes the link (audited)"),
    ("nurse", "lucas", Action.FIND, None, None, "the patient excluded this nurse"),
    ("physio", "lucas", Action.READ, "labresult", None, "the access matrix: no lab results for physiotherapists"),
    ("pharmacist", "lucas", Action.READ, "medicationscheme", None, "the author disallowed the pharmacist"),
    ("patient:lucas", "lucas", Action.READ, "contactreport", None, "held back from the patient for 30 days"),
    ("patient:lucas", "lucas", Action.READ, "note-v", None, "very restricted: its author only"),
    ("specialist", "lucas", Action.READ, "note-v", _GLASS, "break-the-glass does not open a V document"),
    ("gp", "marc", Action.PUBLISH, None, None, "a patient without consent"),
    ("gp", "georges", Action.FIND, None, None, "a revoked consent beats a valid link"),
    ("gp", "oksana", Action.PUBLISH, None, None, "consent but no therapeutic link"),
    ("representative:amina>noor", "noor", Action.FIND, None, None, "a legal representative acts for a minor"),
    ("patient:jean-pierre", "noor", Action.FIND, None, None, "another patient's record"),
    ("patient:amina", "lucas", Action.FIND, None, None, "a patient finds only their own documents"),
)


def _cases(
    callers: dict[str, Caller],
    states: dict[str, PatientState],
    facts: dict[str, DocumentFacts],
    day: date,
    consents: ConsentRegistry,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for who, patient, action, document_key, glass, shows in _CASES:
        caller = callers[who]
        actor: Actor = caller.actor()
        state = states[patient]
        document = facts.get(document_key) if document_key else None
        if document_key and document is None:
            continue  # the sample documents were not published in this data directory
        if action is Action.PUBLISH:
            gp = _professional(who) if who in {p.key for p in SEED_PROFESSIONALS} else None
            document = DocumentFacts(
                unique_id="(new document)",
                patient=state.patient,
                class_code="contactreport",
                author_nihiis=(gp.nihii,) if gp else (),
            )
        decision = decide(
            actor, action, state, document=document, today=day, break_the_glass=glass, matrix=consents.matrix
        )
        out.append(
            {
                "who": who,
                "patient": patient,
                "patient_id": Ssin(state.patient).to_cx(),
                "action": action.value,
                "document": document_key,
                "document_unique_id": document.unique_id if document is not None and document_key else None,
                "break_the_glass": glass,
                "shows": shows,
                "allowed": decision.allowed,
                "rule": decision.rule.value if decision.rule else None,
                "reason": decision.reason,
                "fix": decision.fix,
            }
        )
    return out
