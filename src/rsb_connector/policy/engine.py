"""The Belgian consent and access-control decision: who may publish, find or read a patient's documents.

:func:`decide` applies the barriers in this order and stops at the first that denies, naming it (:class:`Rule`),
saying why and what would fix it:

0. **Identity** (:attr:`Rule.NOT_AUTHENTICATED`): the actor is authenticated and carries the identifier its kind
   needs (a professional or organisation its NIHII — or CBE for an organisation —, a patient their SSIN, a
   representative their SSIN and the minor's).
1. **Consent** (:attr:`Rule.CONSENT`): the patient has an active sharing consent (any of local / prospective /
   retrospective; signed on or before today, not revoked). Without it no professional or organisation publishes,
   finds or reads anything about the patient. *Patients and their representatives are not subject to it*: the
   consent governs sharing with professionals, while a patient's access to their own record is a right of its own
   (Belgian patient rights act of 22 August 2002, art. 9; GDPR art. 15) and a patient must be able to see what was
   shared before a revocation.
2. **Exclusion** (:attr:`Rule.EXCLUSION`): the patient has not excluded this professional (for an organisation's
   publish: neither the organisation nor any author). Applies to publishing too.
3. **Therapeutic link** (:attr:`Rule.THERAPEUTIC_LINK`): a valid link between the professional and the patient
   (started, not past its end or its profession's default validity, not revoked). An author reading or finding
   their own document passes 3–5. Publishing needs the link of the publisher, who must also be one of the
   document's authors (:attr:`Rule.AUTHOR`, checked just before 3); an organisation publishes on behalf of its
   professionals when the organisation itself or one of the document's authors has a valid link.
4. **Access matrix** (:attr:`Rule.ACCESS_MATRIX`): the profession may read the document's class
   (:class:`~rsb_connector.policy.AccessMatrix`). An explicit *allow* access right for this professional and
   document passes it. An unknown profession is denied (break-the-glass cannot fix that: the engine cannot tell
   what the actor is). Organisations do not read: a person reads in their own name.
5. **Per-document rights and confidentiality**: an explicit *disallow* (:attr:`Rule.ACCESS_RIGHT`) denies, always;
   ``V`` is readable by its authors only (:attr:`Rule.CONFIDENTIALITY`, the patient included, never bypassed);
   ``R`` by its authors, physicians, professionals holding an explicit allow, and professionals breaking the glass.
6. **Patient visibility**: a patient finds and reads their own documents (:attr:`Rule.PATIENT_SELF` for anybody
   else's; patients do not publish), except one the author holds back (:attr:`Rule.HELD_BACK`) — until a date, or
   for good. A legal representative acts for a patient under 16 (:attr:`Rule.REPRESENTATIVE` when not registered
   for this patient or the patient is 16 or older or of unknown age).
7. **Break-the-glass**: a professional who gives a reason of 10–200 characters (surrounding whitespace not counted)
   passes 3 and 4 (and ``R``), never 1, 2, a disallow or ``V``; a reason of another length is denied
   (:attr:`Rule.BREAK_THE_GLASS_REASON`) whether or not it was needed. The decision carries
   ``break_the_glass=True`` only when the glass was actually broken (the request would have been denied without
   it), so the hub audits exactly those. Patients and organisations cannot break the glass; a reason they send is
   ignored.

Publishing checks 0–3 only (consent, exclusion, author, link): the matrix, access rights, confidentiality and
holds govern reading. Finding without a document checks the patient-level barriers (0–3); the result list is
then filtered per document with :func:`filter_visible`, which applies the reading rules silently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Final

from .matrix import AccessMatrix
from .model import (
    MINOR_AGE,
    Action,
    Actor,
    ActorKind,
    Confidentiality,
    Decision,
    DocumentFacts,
    PatientState,
    Rule,
    hcparty_of,
)

__all__ = [
    "BREAK_THE_GLASS_MAX_LENGTH",
    "BREAK_THE_GLASS_MIN_LENGTH",
    "break_the_glass_problem",
    "decide",
    "filter_visible",
]

BREAK_THE_GLASS_MIN_LENGTH: Final = 10
"""Shortest accepted break-the-glass reason (characters, surrounding whitespace not counted)."""
BREAK_THE_GLASS_MAX_LENGTH: Final = 200
"""Longest accepted break-the-glass reason."""

_PHYSICIAN: Final = "persphysician"
_BTG_HINT: Final = (
    f"in an emergency, break the glass with a reason of {BREAK_THE_GLASS_MIN_LENGTH}-{BREAK_THE_GLASS_MAX_LENGTH} "
    "characters (it is audited)"
)


def break_the_glass_problem(reason: str) -> str | None:
    """What is wrong with a break-the-glass reason, or None when it is acceptable (10–200 characters once
    surrounding whitespace is removed)."""
    length = len(reason.strip())
    if length < BREAK_THE_GLASS_MIN_LENGTH:
        return f"the break-the-glass reason has {length} characters; at least {BREAK_THE_GLASS_MIN_LENGTH} are needed"
    if length > BREAK_THE_GLASS_MAX_LENGTH:
        return f"the break-the-glass reason has {length} characters; at most {BREAK_THE_GLASS_MAX_LENGTH} are allowed"
    return None


@dataclass(slots=True)
class _Context:
    """One decision in progress: what passed and why (for the allowing reason), and whether glass was broken."""

    actor: Actor
    state: PatientState
    today: date
    matrix: AccessMatrix
    glass: bool = False
    notes: list[str] = field(default_factory=list)

    def allow(self) -> Decision:
        return Decision.allow("; ".join(self.notes) or "allowed", break_the_glass=self.glass)


def decide(
    actor: Actor,
    action: Action,
    patient_state: PatientState,
    *,
    document: DocumentFacts | None = None,
    today: date,
    break_the_glass: str | None = None,
    matrix: AccessMatrix | None = None,
) -> Decision:
    """Whether ``actor`` may ``action`` the patient's documents (or ``document``) on ``today``.

    Args:
        actor: who asks.
        action: publish, find or read. ``read`` needs ``document``; ``find`` without one asks whether the actor may
            search the patient's documents at all; ``publish`` without one whether they may publish for the patient.
        patient_state: what is known about the patient (consents, exclusions, links, rights, holds...).
        document: the document concerned.
        today: the day to decide for.
        break_the_glass: a professional's emergency reason (10–200 characters).
        matrix: the access matrix; None: the one shipped with rsb-connector.

    Returns:
        The :class:`Decision`: allowed, or the denying rule with a reason and a fix.

    Raises:
        ValueError: ``read`` without a document, or a document of another patient than ``patient_state``'s.
    """
    action = Action.parse(action)
    if document is not None and document.patient != patient_state.patient:
        raise ValueError("the document belongs to another patient than the patient state given")
    if action is Action.READ and document is None:
        raise ValueError("deciding a read needs the document's facts (document=...)")
    ctx = _Context(actor, patient_state, today, matrix if matrix is not None else AccessMatrix.load())

    denied = _identity(ctx)
    if denied is not None:
        return denied
    if actor.kind is ActorKind.PROFESSIONAL:
        return _professional(ctx, action, document, break_the_glass)
    if actor.kind is ActorKind.ORGANISATION:
        return _organisation(ctx, action, document)
    return _patient(ctx, action, document)


def filter_visible(
    actor: Actor,
    patient_state: PatientState,
    documents: Iterable[DocumentFacts],
    *,
    today: date,
    break_the_glass: str | None = None,
    matrix: AccessMatrix | None = None,
) -> list[DocumentFacts]:
    """The documents ``actor`` may see in find results, in their order; the others are left out silently.

    Each document is decided as a ``find`` of that document (the reading rules: 1–6, break-the-glass included).
    Documents of another patient than ``patient_state``'s are left out too. The hub, which must audit each
    break-the-glass access, calls :func:`decide` per document instead when it needs the decisions.
    """
    table = matrix if matrix is not None else AccessMatrix.load()
    visible: list[DocumentFacts] = []
    for document in documents:
        if document.patient != patient_state.patient:
            continue
        decision = decide(
            actor,
            Action.FIND,
            patient_state,
            document=document,
            today=today,
            break_the_glass=break_the_glass,
            matrix=table,
        )
        if decision.allowed:
            visible.append(document)
    return visible


# ---------------------------------------------------------------------------------------------------- identity


def _identity(ctx: _Context) -> Decision | None:
    actor = ctx.actor
    if not actor.authenticated:
        return Decision.deny(
            Rule.NOT_AUTHENTICATED,
            f"{actor.describe()} is not authenticated",
            "authenticate with a certificate (WS-Security) or a bearer token (OAuth2) that names who you are",
        )
    missing: str | None = None
    if actor.kind is ActorKind.PROFESSIONAL and not actor.nihii:
        missing = "a professional must be identified by their NIHII"
    elif actor.kind is ActorKind.ORGANISATION and not (actor.nihii or actor.cbe):
        missing = "an organisation must be identified by its NIHII or CBE number"
    elif actor.kind is ActorKind.PATIENT and not actor.ssin:
        missing = "a patient must be identified by their SSIN"
    elif actor.kind is ActorKind.REPRESENTATIVE and not (actor.ssin and actor.represents):
        missing = "a legal representative must be identified by their SSIN and name the patient they act for"
    if missing is not None:
        return Decision.deny(
            Rule.NOT_AUTHENTICATED,
            missing,
            "authenticate with an identity whose certificate or token carries that identifier",
        )
    return None


# ------------------------------------------------------------------------------------------- shared barriers


def _consent(ctx: _Context) -> Decision | None:
    consent = ctx.state.active_consent(ctx.today)
    if consent is not None:
        ctx.notes.append(f"{consent.type.value} consent signed on {consent.signed.isoformat()}")
        return None
    revoked = [c for c in ctx.state.consents if c.revoked is not None and c.revoked <= ctx.today]
    future = [c for c in ctx.state.consents if c.signed > ctx.today]
    if future:
        why = f"this patient's sharing consent only takes effect on {min(c.signed for c in future).isoformat()}"
    elif revoked:
        last = max(c.revoked for c in revoked if c.revoked is not None)
        why = f"this patient revoked their sharing consent on {last.isoformat()}"
    else:
        why = "this patient has not given a sharing consent"
    return Decision.deny(
        Rule.CONSENT,
        f"{why}: nothing about them can be published or read by professionals",
        "the patient (a legal representative if they are under 16) must give a sharing consent (type retrospective); "
        "break-the-glass does not replace it",
    )


def _exclusion(ctx: _Context, nihii: str, who: str) -> Decision | None:
    exclusion = ctx.state.exclusion_of(nihii, ctx.today)
    if exclusion is None:
        return None
    return Decision.deny(
        Rule.EXCLUSION,
        f"this patient has excluded {who} since {exclusion.start.isoformat()}",
        "only the patient can lift an exclusion; break-the-glass does not override it",
    )


def _link_problem(ctx: _Context, nihii: str, profession: str | None) -> str:
    """Why ``nihii`` has no valid link today (for the denial's reason)."""
    months = ctx.matrix.link_validity_months(profession)
    links = ctx.state.links_of(nihii)
    if not links:
        return "no therapeutic link has been declared"
    today = ctx.today
    if any(link.start > today for link in links):
        start = min(link.start for link in links if link.start > today)
        return f"the therapeutic link only starts on {start.isoformat()}"
    if any(link.revoked is not None and link.revoked <= today for link in links):
        return "the therapeutic link was revoked"
    if any(link.last_day(months) is None for link in links):
        return (
            f"the therapeutic link has no end date and the access matrix gives no default validity for "
            f"{profession or 'an unknown profession'}"
        )
    last = max(d for link in links if (d := link.last_day(months)) is not None)
    return f"the therapeutic link expired after {last.isoformat()}"


def _link_note(ctx: _Context, nihii: str, profession: str | None) -> bool:
    """True when ``nihii`` has a valid link today (noted for the allowing reason)."""
    months = ctx.matrix.link_validity_months(profession)
    link = ctx.state.valid_link(nihii, ctx.today, months)
    if link is None:
        return False
    last = link.last_day(months)
    until = f" until {last.isoformat()}" if last is not None else ""
    ctx.notes.append(f"{link.type.value} therapeutic link of NIHII {nihii} valid{until}")
    return True


# ----------------------------------------------------------------------------------------------- professional


def _professional(ctx: _Context, action: Action, document: DocumentFacts | None, reason: str | None) -> Decision:
    actor = ctx.actor
    nihii = actor.nihii or ""
    profession = actor.profession_code
    who = actor.describe()

    # 1, 2
    denied = _consent(ctx) or _exclusion(ctx, nihii, f"NIHII {nihii}")
    if denied is not None:
        return denied

    # break-the-glass reason: checked once the non-bypassable patient barriers passed
    btg = False
    if reason is not None:
        problem = break_the_glass_problem(reason)
        if problem is not None:
            return Decision.deny(
                Rule.BREAK_THE_GLASS_REASON,
                problem,
                f"give a reason of {BREAK_THE_GLASS_MIN_LENGTH} to {BREAK_THE_GLASS_MAX_LENGTH} characters, "
                "or none when you do not need to break the glass",
            )
        btg = True

    if action is Action.PUBLISH:
        if document is not None and not document.is_author(nihii):
            return Decision.deny(
                Rule.AUTHOR,
                f"{who} publishes a document that does not name them among its authors",
                f"publish in your own name: list NIHII {nihii} as an author of the document",
            )
        return _professional_link(ctx, nihii, profession, btg, action.value) or ctx.allow()

    is_author = document is not None and document.is_author(nihii)
    if is_author:
        ctx.notes.append(f"NIHII {nihii} is an author of the document")
        return ctx.allow()

    # 3
    denied = _professional_link(ctx, nihii, profession, btg, action.value)
    if denied is not None:
        return denied
    if document is None:
        return ctx.allow()

    rights = ctx.state.rights_for(document.unique_id, nihii)
    explicit_allow = any(r.allow for r in rights)

    # 4
    if not ctx.matrix.knows(profession):
        known = ", ".join(ctx.matrix.professions)
        return Decision.deny(
            Rule.ACCESS_MATRIX,
            f"the access matrix does not know the profession {profession or '(none)'} of NIHII {nihii}: "
            "it may read nothing",
            f"authenticate with a profession the matrix knows ({known}), or configure the access matrix",
        )
    if explicit_allow:
        ctx.notes.append(f"an access right allows NIHII {nihii} to read this document")
    elif ctx.matrix.allows(profession, document.class_code):
        ctx.notes.append(f"the access matrix lets {profession} read {document.class_code}")
    elif btg:
        ctx.glass = True
        ctx.notes.append(f"break-the-glass: {profession} reads {document.class_code} outside the access matrix")
    else:
        return Decision.deny(
            Rule.ACCESS_MATRIX,
            f"the access matrix does not let a {profession} read documents of class {document.class_code}",
            f"ask the author for an access right to this document, or {_BTG_HINT}",
        )

    # 5
    if any(not r.allow for r in rights):
        return Decision.deny(
            Rule.ACCESS_RIGHT,
            f"the author of this document has disallowed NIHII {nihii} from reading it",
            "only the author can lift that access right; break-the-glass does not override it",
        )
    level = document.level
    if level is Confidentiality.VERY_RESTRICTED:
        return Decision.deny(
            Rule.CONFIDENTIALITY,
            f"the document is very restricted (confidentiality {document.confidentiality or '?'}): "
            "only its authors read it",
            "ask the author to share it or to lower its confidentiality; break-the-glass does not open it",
        )
    if level is Confidentiality.RESTRICTED:
        if explicit_allow or profession == _PHYSICIAN:
            ctx.notes.append("restricted document readable by physicians and explicitly allowed professionals")
        elif btg:
            ctx.glass = True
            ctx.notes.append("break-the-glass: reads a restricted (R) document")
        else:
            return Decision.deny(
                Rule.CONFIDENTIALITY,
                f"the document is restricted (R): physicians and professionals the author allowed read it, "
                f"not a {profession} without an access right",
                f"ask the author for an access right to this document, or {_BTG_HINT}",
            )
    return ctx.allow()


def _professional_link(ctx: _Context, nihii: str, profession: str | None, btg: bool, verb: str) -> Decision | None:
    if _link_note(ctx, nihii, profession):
        return None
    problem = _link_problem(ctx, nihii, profession)
    if btg:
        ctx.glass = True
        ctx.notes.append(f"break-the-glass: {problem} between NIHII {nihii} and this patient")
        return None
    return Decision.deny(
        Rule.THERAPEUTIC_LINK,
        f"no valid therapeutic link between NIHII {nihii} and this patient ({problem}): {verb} refused",
        f"declare a therapeutic link (e.g. gpconsultation) with proof eidreading by reading the patient's eID, "
        f"or {_BTG_HINT}",
    )


# ----------------------------------------------------------------------------------------------- organisation


def _organisation(ctx: _Context, action: Action, document: DocumentFacts | None) -> Decision:
    actor = ctx.actor
    who = actor.describe()
    if action is not Action.PUBLISH:
        return Decision.deny(
            Rule.ACCESS_MATRIX,
            f"{who} cannot {action.value}: organisations have no row in the access matrix; they publish on behalf of "
            "their professionals but do not read",
            "find and read as the professional, in their own name",
        )
    denied = _consent(ctx)
    if denied is not None:
        return denied
    authors = document.author_nihiis if document is not None else ()
    if actor.nihii:
        denied = _exclusion(ctx, actor.nihii, who)
        if denied is not None:
            return denied
    for author in authors:
        denied = _exclusion(ctx, author, f"NIHII {author}, an author of the document")
        if denied is not None:
            return denied
    if actor.nihii and _link_note(ctx, actor.nihii, actor.profession_code):
        return ctx.allow()
    for author in authors:
        if _link_note(ctx, author, hcparty_of(author)):
            ctx.notes.append(f"{who} publishes on behalf of NIHII {author}")
            return ctx.allow()
    named = ", ".join(f"NIHII {a}" for a in authors) or "no author"
    return Decision.deny(
        Rule.THERAPEUTIC_LINK,
        f"neither {who} nor the document's authors ({named}) have a valid therapeutic link with this patient",
        "declare a therapeutic link (e.g. hospitalstay) with proof eidreading for the organisation or an author",
    )


# ---------------------------------------------------------------------------------------- patient / representative


def _patient(ctx: _Context, action: Action, document: DocumentFacts | None) -> Decision:
    actor = ctx.actor
    state = ctx.state
    if actor.kind is ActorKind.REPRESENTATIVE:
        denied = _representative(ctx)
        if denied is not None:
            return denied
        subject = "the patient they represent"
    else:
        if actor.ssin != state.patient:
            return Decision.deny(
                Rule.PATIENT_SELF,
                "a patient may only find and read their own documents, and these belong to another patient",
                "sign in as the patient concerned, or ask one of their professionals",
            )
        subject = "the patient themself"
        ctx.notes.append("the patient's own record")

    if action is Action.PUBLISH:
        return Decision.deny(
            Rule.PATIENT_SELF,
            "patients and their representatives do not publish documents to the vault",
            "ask a professional with a therapeutic link to publish the document",
        )
    if document is None:
        return ctx.allow()

    # 5
    if document.level is Confidentiality.VERY_RESTRICTED:
        return Decision.deny(
            Rule.CONFIDENTIALITY,
            f"the document is very restricted (confidentiality {document.confidentiality or '?'}): only its authors "
            f"read it, not {subject}",
            "ask the author to share it or to lower its confidentiality",
        )
    # 6
    hold = state.held_back_on(document.unique_id, ctx.today)
    if hold is not None:
        if hold.until is None:
            return Decision.deny(
                Rule.HELD_BACK,
                "the author keeps this document from the patient",
                "ask the author (or your doctor) to discuss it with you and release it",
            )
        return Decision.deny(
            Rule.HELD_BACK,
            f"the author holds this document back from the patient until {hold.until.isoformat()}",
            f"it becomes visible on {hold.until.isoformat()}; ask the author to release it sooner",
        )
    return ctx.allow()


def _representative(ctx: _Context) -> Decision | None:
    actor = ctx.actor
    state = ctx.state
    if actor.represents != state.patient:
        return Decision.deny(
            Rule.REPRESENTATIVE,
            "the representative acts for another patient than the one these documents belong to",
            "act for the patient concerned",
        )
    if actor.ssin not in state.legal_representatives:
        return Decision.deny(
            Rule.REPRESENTATIVE,
            "the representative is not registered as a legal representative of this patient",
            "register the legal representation of the minor at the hub first",
        )
    age = state.age_on(ctx.today)
    if age is None:
        return Decision.deny(
            Rule.REPRESENTATIVE,
            "this patient's birth date is unknown, so it cannot be established that they are a minor",
            "record the patient's birth date",
        )
    if age >= MINOR_AGE:
        return Decision.deny(
            Rule.REPRESENTATIVE,
            f"this patient is {age}: a legal representative acts only for a patient under {MINOR_AGE}",
            f"the patient acts for themself from {MINOR_AGE} on",
        )
    ctx.notes.append(f"legal representative of a patient aged {age}")
    return None
