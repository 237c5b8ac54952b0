"""The consent and access-control decision engine: one row per rule and denial reason, the order of the rules,
break-the-glass, holds, minors, link validity, the access matrix, find filtering, and invariant properties."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rsb_connector.metadata.valuesets import load_value_sets
from rsb_connector.policy import (
    BREAK_THE_GLASS_MAX_LENGTH,
    BREAK_THE_GLASS_MIN_LENGTH,
    AccessMatrix,
    AccessRight,
    Action,
    Actor,
    ActorKind,
    Confidentiality,
    ConsentType,
    Decision,
    DocumentFacts,
    Exclusion,
    HeldBack,
    PatientState,
    ProofType,
    Rule,
    SharingConsent,
    TherapeuticLink,
    TherapeuticLinkType,
    add_months,
    break_the_glass_problem,
    decide,
    filter_visible,
    hcparty_of,
)


def nihii(first6: str, qualification: str = "004") -> str:
    """A NIHII with correct check digits (97 - first 6 digits mod 97)."""
    return f"{first6}{97 - int(first6) % 97:02d}{qualification}"


PATIENT = "73032929895"  # born 1973
OTHER_PATIENT = "72022102793"
MINOR = "17073003384"  # born 2017-07-30
UNKNOWN_BIRTH = "00000000097"  # month and day 00: birth date unknown
PARENT = "82121210976"

GP = "11478761004"  # physician
SPECIALIST = "19006951001"  # physician
NURSE = nihii("412345")
PHYSIO = nihii("512345")
PHARMACIST = nihii("612345")
DENTIST = nihii("312345")
HOSPITAL = nihii("712345", "")  # 8-digit organisation NIHII

TODAY = date(2025, 3, 1)
LINK_START = date(2025, 1, 10)

SUMEHR = DocumentFacts("1.2.3.1", PATIENT, "sumehr", "N", (SPECIALIST,))
LAB = DocumentFacts("1.2.3.2", PATIENT, "labresult", "N", (SPECIALIST,))
GENETIC = DocumentFacts("1.2.3.3", PATIENT, "genetic", "N", (SPECIALIST,))
MEDS = DocumentFacts("1.2.3.4", PATIENT, "medicationscheme", "N", (SPECIALIST,))
SECRET = DocumentFacts("1.2.3.5", PATIENT, "note", "V", (SPECIALIST,))
RESTRICTED = DocumentFacts("1.2.3.6", PATIENT, "sumehr", "R", (SPECIALIST,))
GP_NOTE = DocumentFacts("1.2.3.7", PATIENT, "contactreport", "N", (GP,))
PHYSIO_LAB = DocumentFacts("1.2.3.8", PATIENT, "labresult", "N", (PHYSIO,))
ODD_CONF = DocumentFacts("1.2.3.9", PATIENT, "sumehr", "X", (SPECIALIST,))

REASON = "patient unconscious in the emergency room"


def link(
    who: str, start: date = LINK_START, *, end: date | None = None, revoked: date | None = None
) -> TherapeuticLink:
    return TherapeuticLink(PATIENT, who, TherapeuticLinkType.GPCONSULTATION, start, end, revoked=revoked)


BASE = PatientState(
    PATIENT,
    consents=(SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, date(2024, 1, 1)),),
    links=tuple(link(n) for n in (GP, NURSE, PHYSIO, PHARMACIST, DENTIST)),
)


def no_consent(s: PatientState) -> PatientState:
    return replace(s, consents=())


def no_links(s: PatientState) -> PatientState:
    return replace(s, links=())


Modifier = Callable[[PatientState], PatientState]


def with_(**extra: tuple[object, ...]) -> Modifier:
    """A state modifier appending items to the given tuple fields."""

    def apply(s: PatientState) -> PatientState:
        changes: dict[str, Any] = {k: (*getattr(s, k), *v) for k, v in extra.items()}
        return replace(s, **changes)

    return apply


def only_links(*links: TherapeuticLink) -> Modifier:
    def apply(s: PatientState) -> PatientState:
        return replace(s, links=links)

    return apply


def identity(s: PatientState) -> PatientState:
    return s


# ------------------------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    id: str
    actor: Actor
    action: Action
    state: Modifier = identity
    document: DocumentFacts | None = None
    btg: str | None = None
    rule: Rule | None = None  # None: allowed
    reason: str = ""  # expected in the reason
    fix: str = ""  # expected in the fix
    glass: bool = False


GP_A = Actor.professional(GP)
SPEC_A = Actor.professional(SPECIALIST)
NURSE_A = Actor.professional(NURSE)
PHYSIO_A = Actor.professional(PHYSIO)
PHARMA_A = Actor.professional(PHARMACIST)
DENTIST_A = Actor.professional(DENTIST)
PATIENT_A = Actor.patient(PATIENT)
HOSPITAL_A = Actor.organisation(HOSPITAL)
R, F, P = Action.READ, Action.FIND, Action.PUBLISH

CASES = [
    # --- 0 identity
    Case(
        "unauthenticated", Actor(ActorKind.PROFESSIONAL, nihii=GP, authenticated=False), F, rule=Rule.NOT_AUTHENTICATED
    ),
    Case("professional-without-nihii", Actor(ActorKind.PROFESSIONAL), F, rule=Rule.NOT_AUTHENTICATED, reason="NIHII"),
    Case("patient-without-ssin", Actor(ActorKind.PATIENT), F, rule=Rule.NOT_AUTHENTICATED, reason="SSIN"),
    Case("organisation-without-id", Actor(ActorKind.ORGANISATION), P, rule=Rule.NOT_AUTHENTICATED),
    Case("representative-without-minor", Actor(ActorKind.REPRESENTATIVE, ssin=PARENT), F, rule=Rule.NOT_AUTHENTICATED),
    Case(
        "unauthenticated-before-consent",
        Actor(ActorKind.PATIENT, authenticated=False),
        F,
        no_consent,
        rule=Rule.NOT_AUTHENTICATED,
    ),
    # --- 1 consent
    Case(
        "consent-none",
        GP_A,
        R,
        no_consent,
        GP_NOTE,
        rule=Rule.CONSENT,
        reason="has not given a sharing consent",
        fix="retrospective",
    ),
    Case(
        "consent-revoked",
        GP_A,
        F,
        lambda s: replace(
            s,
            consents=(SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, date(2024, 1, 1), revoked=date(2025, 2, 1)),),
        ),
        rule=Rule.CONSENT,
        reason="revoked their sharing consent on 2025-02-01",
    ),
    Case(
        "consent-revoked-today",
        GP_A,
        F,
        lambda s: replace(
            s, consents=(SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, date(2024, 1, 1), revoked=TODAY),)
        ),
        rule=Rule.CONSENT,
    ),
    Case(
        "consent-revoked-tomorrow",
        GP_A,
        F,
        lambda s: replace(
            s,
            consents=(
                SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, date(2024, 1, 1), revoked=TODAY + timedelta(1)),
            ),
        ),
    ),
    Case(
        "consent-signed-later",
        GP_A,
        F,
        lambda s: replace(s, consents=(SharingConsent(PATIENT, ConsentType.LOCAL, TODAY + timedelta(1)),)),
        rule=Rule.CONSENT,
        reason="takes effect",
    ),
    Case(
        "consent-signed-today",
        GP_A,
        F,
        lambda s: replace(s, consents=(SharingConsent(PATIENT, ConsentType.PROSPECTIVE, TODAY),)),
    ),
    Case(
        "consent-renewed-after-revocation",
        GP_A,
        F,
        lambda s: replace(
            s,
            consents=(
                SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, date(2023, 1, 1), revoked=date(2023, 6, 1)),
                SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, date(2024, 1, 1)),
            ),
        ),
    ),
    Case("order-consent-before-link", GP_A, R, lambda s: no_links(no_consent(s)), SUMEHR, rule=Rule.CONSENT),
    Case(
        "order-consent-before-exclusion",
        GP_A,
        F,
        lambda s: replace(no_consent(s), exclusions=(Exclusion(PATIENT, GP, date(2024, 1, 1)),)),
        rule=Rule.CONSENT,
    ),
    Case("consent-needed-for-publish", GP_A, P, no_consent, GP_NOTE, rule=Rule.CONSENT),
    Case("consent-needed-by-author", SPEC_A, R, no_consent, SUMEHR, rule=Rule.CONSENT),
    Case("consent-not-bypassed-by-glass", GP_A, R, no_consent, SUMEHR, btg=REASON, rule=Rule.CONSENT),
    Case("consent-before-bad-glass-reason", GP_A, R, no_consent, SUMEHR, btg="short", rule=Rule.CONSENT),
    Case("patient-reads-own-without-consent", PATIENT_A, R, no_consent, SUMEHR),
    # --- 2 exclusion
    Case(
        "exclusion",
        GP_A,
        F,
        with_(exclusions=(Exclusion(PATIENT, GP, date(2024, 6, 1)),)),
        rule=Rule.EXCLUSION,
        reason="has excluded NIHII",
        fix="only the patient",
    ),
    Case(
        "exclusion-ended",
        GP_A,
        F,
        with_(exclusions=(Exclusion(PATIENT, GP, date(2024, 6, 1), end=TODAY - timedelta(1)),)),
    ),
    Case(
        "exclusion-last-day",
        GP_A,
        F,
        with_(exclusions=(Exclusion(PATIENT, GP, date(2024, 6, 1), end=TODAY),)),
        rule=Rule.EXCLUSION,
    ),
    Case("exclusion-of-someone-else", GP_A, F, with_(exclusions=(Exclusion(PATIENT, NURSE, date(2024, 6, 1)),))),
    Case(
        "order-exclusion-before-link",
        GP_A,
        R,
        lambda s: replace(no_links(s), exclusions=(Exclusion(PATIENT, GP, date(2024, 1, 1)),)),
        SUMEHR,
        rule=Rule.EXCLUSION,
    ),
    Case(
        "exclusion-not-bypassed-by-glass",
        GP_A,
        R,
        with_(exclusions=(Exclusion(PATIENT, GP, date(2024, 1, 1)),)),
        SUMEHR,
        btg=REASON,
        rule=Rule.EXCLUSION,
    ),
    Case(
        "exclusion-applies-to-author",
        SPEC_A,
        R,
        with_(exclusions=(Exclusion(PATIENT, SPECIALIST, date(2024, 1, 1)),)),
        SUMEHR,
        rule=Rule.EXCLUSION,
    ),
    Case(
        "exclusion-applies-to-publish",
        GP_A,
        P,
        with_(exclusions=(Exclusion(PATIENT, GP, date(2024, 1, 1)),)),
        GP_NOTE,
        rule=Rule.EXCLUSION,
    ),
    # --- 3 therapeutic link
    Case(
        "link-none",
        SPEC_A,
        F,
        rule=Rule.THERAPEUTIC_LINK,
        reason="no therapeutic link has been declared",
        fix="eidreading",
    ),
    Case("link-none-read", SPEC_A, R, document=GP_NOTE, rule=Rule.THERAPEUTIC_LINK, reason="and this patient"),
    Case("link-revoked", GP_A, F, only_links(link(GP, revoked=TODAY)), rule=Rule.THERAPEUTIC_LINK, reason="revoked"),
    Case("link-revoked-tomorrow", GP_A, F, only_links(link(GP, revoked=TODAY + timedelta(1)))),
    Case(
        "link-not-started",
        GP_A,
        F,
        only_links(link(GP, start=TODAY + timedelta(1))),
        rule=Rule.THERAPEUTIC_LINK,
        reason="only starts on",
    ),
    Case("link-explicit-end-inclusive", GP_A, F, only_links(link(GP, end=TODAY))),
    Case(
        "link-expired",
        GP_A,
        F,
        only_links(link(GP, end=TODAY - timedelta(1))),
        rule=Rule.THERAPEUTIC_LINK,
        reason="expired after 2025-02-28",
    ),
    Case("link-other-professional-only", GP_A, F, only_links(link(NURSE)), rule=Rule.THERAPEUTIC_LINK),
    Case(
        "link-one-valid-among-stale",
        GP_A,
        F,
        only_links(link(GP, end=date(2024, 1, 1)), link(GP, revoked=date(2025, 1, 1)), link(GP)),
    ),
    Case(
        "link-unknown-profession-no-default",
        Actor.professional(GP, "persdietician"),
        F,
        rule=Rule.THERAPEUTIC_LINK,
        reason="no default validity",
    ),
    Case("link-needed-for-publish", SPEC_A, P, document=SUMEHR, rule=Rule.THERAPEUTIC_LINK, reason="publish refused"),
    Case("author-reads-own-without-link", SPEC_A, R, document=SUMEHR),
    Case("author-reads-own-outside-matrix", PHYSIO_A, R, document=PHYSIO_LAB),
    Case("author-finds-own-without-link", SPEC_A, F, document=SUMEHR),
    # --- publish
    Case("publish-own-document", GP_A, P, document=GP_NOTE),
    Case("publish-without-document", GP_A, P),
    Case("publish-not-author", GP_A, P, document=SUMEHR, rule=Rule.AUTHOR, fix="as an author"),
    Case("publish-ignores-matrix", PHYSIO_A, P, document=replace(PHYSIO_LAB, class_code="genetic")),
    Case("publish-glass", SPEC_A, P, document=SUMEHR, btg=REASON, glass=True),
    Case("patient-cannot-publish", PATIENT_A, P, document=SUMEHR, rule=Rule.PATIENT_SELF),
    # --- organisation
    Case(
        "hospital-publishes-with-own-link",
        HOSPITAL_A,
        P,
        with_(
            links=(
                TherapeuticLink(
                    PATIENT, HOSPITAL, TherapeuticLinkType.HOSPITALSTAY, LINK_START, end=date(2025, 12, 31)
                ),
            )
        ),
        SUMEHR,
    ),
    Case("hospital-publishes-for-linked-author", HOSPITAL_A, P, document=GP_NOTE),
    Case(
        "hospital-publish-no-link",
        HOSPITAL_A,
        P,
        document=SUMEHR,
        rule=Rule.THERAPEUTIC_LINK,
        reason="nor the document's authors",
    ),
    Case(
        "hospital-publish-excluded-author",
        HOSPITAL_A,
        P,
        with_(exclusions=(Exclusion(PATIENT, GP, date(2024, 1, 1)),)),
        GP_NOTE,
        rule=Rule.EXCLUSION,
    ),
    Case(
        "hospital-publish-excluded-hospital",
        HOSPITAL_A,
        P,
        with_(exclusions=(Exclusion(PATIENT, HOSPITAL, date(2024, 1, 1)),)),
        GP_NOTE,
        rule=Rule.EXCLUSION,
    ),
    Case("hospital-publish-no-consent", HOSPITAL_A, P, no_consent, GP_NOTE, rule=Rule.CONSENT),
    Case("hospital-cannot-read", HOSPITAL_A, R, document=GP_NOTE, rule=Rule.ACCESS_MATRIX, reason="do not read"),
    Case("hospital-cannot-find", HOSPITAL_A, F, rule=Rule.ACCESS_MATRIX),
    # --- 4 access matrix
    Case("matrix-physician-genetic", GP_A, R, document=GENETIC, reason="persphysician read genetic"),
    Case(
        "matrix-nurse-genetic",
        NURSE_A,
        R,
        document=GENETIC,
        rule=Rule.ACCESS_MATRIX,
        reason="persnurse read documents of class genetic",
        fix="access right",
    ),
    Case("matrix-nurse-sumehr", NURSE_A, R, document=SUMEHR),
    Case("matrix-physio-labresult", PHYSIO_A, R, document=LAB, rule=Rule.ACCESS_MATRIX),
    Case("matrix-physio-sumehr", PHYSIO_A, R, document=SUMEHR, rule=Rule.ACCESS_MATRIX),
    Case("matrix-pharmacist-meds", PHARMA_A, R, document=MEDS),
    Case("matrix-pharmacist-sumehr", PHARMA_A, R, document=SUMEHR, rule=Rule.ACCESS_MATRIX),
    Case("matrix-dentist-genetic", DENTIST_A, R, document=GENETIC, rule=Rule.ACCESS_MATRIX),
    Case("matrix-midwife-by-profession", Actor.professional(NURSE, "persmidwife"), R, document=LAB),
    Case(
        "matrix-unknown-profession",
        Actor.professional(GP, "persdietician"),
        R,
        only_links(link(GP, end=date(2025, 12, 31))),
        SUMEHR,
        rule=Rule.ACCESS_MATRIX,
        reason="does not know",
    ),
    Case(
        "matrix-unknown-profession-glass",
        Actor.professional(GP, "persdietician"),
        R,
        only_links(link(GP, end=date(2025, 12, 31))),
        SUMEHR,
        btg=REASON,
        rule=Rule.ACCESS_MATRIX,
    ),
    Case("matrix-after-link", PHYSIO_A, R, no_links, LAB, rule=Rule.THERAPEUTIC_LINK),
    Case("matrix-not-for-find-without-document", PHYSIO_A, F),
    # --- 5 access rights
    Case(
        "right-allow-passes-matrix",
        PHYSIO_A,
        R,
        with_(access_rights=(AccessRight(LAB.unique_id, PHYSIO, True),)),
        LAB,
        reason="access right allows",
    ),
    Case(
        "right-allow-not-past-link",
        PHYSIO_A,
        R,
        lambda s: replace(no_links(s), access_rights=(AccessRight(LAB.unique_id, PHYSIO, True),)),
        LAB,
        rule=Rule.THERAPEUTIC_LINK,
    ),
    Case(
        "right-allow-other-document",
        PHYSIO_A,
        R,
        with_(access_rights=(AccessRight(SUMEHR.unique_id, PHYSIO, True),)),
        LAB,
        rule=Rule.ACCESS_MATRIX,
    ),
    Case(
        "right-disallow",
        GP_A,
        R,
        with_(access_rights=(AccessRight(SUMEHR.unique_id, GP, False),)),
        SUMEHR,
        rule=Rule.ACCESS_RIGHT,
        reason="disallowed",
        fix="only the author",
    ),
    Case(
        "right-disallow-wins-over-allow",
        GP_A,
        R,
        with_(access_rights=(AccessRight(SUMEHR.unique_id, GP, True), AccessRight(SUMEHR.unique_id, GP, False))),
        SUMEHR,
        rule=Rule.ACCESS_RIGHT,
    ),
    Case(
        "right-disallow-not-bypassed-by-glass",
        GP_A,
        R,
        with_(access_rights=(AccessRight(SUMEHR.unique_id, GP, False),)),
        SUMEHR,
        btg=REASON,
        rule=Rule.ACCESS_RIGHT,
    ),
    Case(
        "right-disallow-ignored-for-author",
        SPEC_A,
        R,
        with_(access_rights=(AccessRight(SUMEHR.unique_id, SPECIALIST, False),)),
        SUMEHR,
    ),
    Case(
        "order-matrix-before-disallow",
        PHYSIO_A,
        R,
        with_(access_rights=(AccessRight(LAB.unique_id, PHYSIO, False),)),
        LAB,
        rule=Rule.ACCESS_MATRIX,
    ),
    # --- 5 confidentiality
    Case("v-non-author", GP_A, R, document=SECRET, rule=Rule.CONFIDENTIALITY, reason="only its authors"),
    Case("v-author", SPEC_A, R, document=SECRET),
    Case("v-not-bypassed-by-glass", GP_A, R, document=SECRET, btg=REASON, rule=Rule.CONFIDENTIALITY),
    Case(
        "v-not-opened-by-allow",
        GP_A,
        R,
        with_(access_rights=(AccessRight(SECRET.unique_id, GP, True),)),
        SECRET,
        rule=Rule.CONFIDENTIALITY,
    ),
    Case("v-patient", PATIENT_A, R, document=SECRET, rule=Rule.CONFIDENTIALITY),
    Case("unknown-confidentiality-is-v", GP_A, R, document=ODD_CONF, rule=Rule.CONFIDENTIALITY),
    Case("r-physician", GP_A, R, document=RESTRICTED),
    Case("r-nurse", NURSE_A, R, document=RESTRICTED, rule=Rule.CONFIDENTIALITY, reason="restricted (R)"),
    Case(
        "r-nurse-allowed",
        NURSE_A,
        R,
        with_(access_rights=(AccessRight(RESTRICTED.unique_id, NURSE, True),)),
        RESTRICTED,
    ),
    Case("r-nurse-glass", NURSE_A, R, document=RESTRICTED, btg=REASON, glass=True),
    Case("r-patient", PATIENT_A, R, document=RESTRICTED),
    # --- 6 patient
    Case("patient-own", PATIENT_A, R, document=SUMEHR, reason="own record"),
    Case("patient-find", PATIENT_A, F),
    Case(
        "patient-other",
        Actor.patient(OTHER_PATIENT),
        R,
        document=SUMEHR,
        rule=Rule.PATIENT_SELF,
        fix="sign in as the patient",
    ),
    Case("patient-other-find", Actor.patient(OTHER_PATIENT), F, rule=Rule.PATIENT_SELF),
    Case(
        "held-back-forever",
        PATIENT_A,
        R,
        with_(held_back=(HeldBack(LAB.unique_id),)),
        LAB,
        rule=Rule.HELD_BACK,
        reason="keeps this document",
    ),
    Case(
        "held-back-until-later",
        PATIENT_A,
        R,
        with_(held_back=(HeldBack(LAB.unique_id, TODAY + timedelta(1)),)),
        LAB,
        rule=Rule.HELD_BACK,
        reason="until 2025-03-02",
        fix="visible on 2025-03-02",
    ),
    Case("held-back-until-today", PATIENT_A, R, with_(held_back=(HeldBack(LAB.unique_id, TODAY),)), LAB),
    Case("held-back-until-past", PATIENT_A, R, with_(held_back=(HeldBack(LAB.unique_id, date(2025, 1, 1)),)), LAB),
    Case("held-back-in-find", PATIENT_A, F, with_(held_back=(HeldBack(LAB.unique_id),)), LAB, rule=Rule.HELD_BACK),
    Case("held-back-other-document", PATIENT_A, R, with_(held_back=(HeldBack(SUMEHR.unique_id),)), LAB),
    Case("held-back-not-for-professionals", SPEC_A, R, with_(held_back=(HeldBack(LAB.unique_id),)), LAB),
    Case("patient-glass-ignored", PATIENT_A, R, document=SUMEHR, btg="x"),
    # --- 7 break-the-glass
    Case(
        "glass-reason-too-short",
        GP_A,
        R,
        document=SUMEHR,
        btg="x" * (BREAK_THE_GLASS_MIN_LENGTH - 1),
        rule=Rule.BREAK_THE_GLASS_REASON,
        reason="9 characters",
    ),
    Case("glass-reason-shortest", SPEC_A, F, btg="x" * BREAK_THE_GLASS_MIN_LENGTH, glass=True),
    Case("glass-reason-longest", SPEC_A, F, btg="x" * BREAK_THE_GLASS_MAX_LENGTH, glass=True),
    Case(
        "glass-reason-too-long",
        SPEC_A,
        F,
        btg="x" * (BREAK_THE_GLASS_MAX_LENGTH + 1),
        rule=Rule.BREAK_THE_GLASS_REASON,
        reason="at most 200",
    ),
    Case("glass-reason-whitespace", SPEC_A, F, btg="   short    ", rule=Rule.BREAK_THE_GLASS_REASON),
    Case("glass-reason-checked-even-if-unneeded", GP_A, F, btg="no", rule=Rule.BREAK_THE_GLASS_REASON),
    Case("glass-bypasses-link", SPEC_A, R, document=GP_NOTE, btg=REASON, glass=True, reason="break-the-glass"),
    Case("glass-bypasses-matrix", PHYSIO_A, R, document=LAB, btg=REASON, glass=True),
    Case("glass-bypasses-link-and-matrix", PHYSIO_A, R, no_links, GENETIC, btg=REASON, glass=True),
    Case("glass-not-needed", GP_A, R, document=SUMEHR, btg=REASON, glass=False),
    Case("glass-without-reason", SPEC_A, R, document=GP_NOTE, rule=Rule.THERAPEUTIC_LINK, fix="break the glass"),
    # --- minors and representatives
    Case("representative-of-minor", Actor.representative(PARENT, MINOR), R, document=replace(SUMEHR, patient=MINOR)),
    Case(
        "representative-not-registered",
        Actor.representative(OTHER_PATIENT, MINOR),
        F,
        rule=Rule.REPRESENTATIVE,
        reason="not registered",
    ),
    Case(
        "representative-of-other",
        Actor.representative(PARENT, OTHER_PATIENT),
        F,
        rule=Rule.REPRESENTATIVE,
        reason="another patient",
    ),
    Case("representative-cannot-publish", Actor.representative(PARENT, MINOR), P, rule=Rule.PATIENT_SELF),
    Case(
        "representative-held-back",
        Actor.representative(PARENT, MINOR),
        R,
        with_(held_back=(HeldBack(SUMEHR.unique_id),)),
        replace(SUMEHR, patient=MINOR),
        rule=Rule.HELD_BACK,
    ),
    Case("minor-reads-own", Actor.patient(MINOR), R, document=replace(SUMEHR, patient=MINOR)),
]

MINOR_STATE = PatientState(
    MINOR,
    consents=(SharingConsent(MINOR, ConsentType.RETROSPECTIVE, date(2024, 1, 1), registered_by=PARENT),),
    legal_representatives=(PARENT,),
)


def _state_for(case: Case) -> PatientState:
    minor = case.actor.kind is ActorKind.REPRESENTATIVE or case.actor.ssin == MINOR
    base = MINOR_STATE if minor else BASE
    return case.state(base)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decision_table(case: Case) -> None:
    decision = decide(
        case.actor,
        case.action,
        _state_for(case),
        document=case.document,
        today=TODAY,
        break_the_glass=case.btg,
    )
    assert decision.rule is case.rule, str(decision)
    assert decision.allowed is (case.rule is None)
    assert decision.reason
    assert case.reason in decision.reason, decision.reason
    if case.rule is None:
        assert decision.fix is None
    else:
        assert decision.fix, "a denial says what would fix it"
        assert case.fix in decision.fix, decision.fix
    assert decision.break_the_glass is case.glass
    for ssin in (PATIENT, MINOR, OTHER_PATIENT, PARENT):
        assert ssin not in str(decision)


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_rule_denies_in_some_row() -> None:
    assert {c.rule for c in CASES if c.rule is not None} == set(Rule)


# -------------------------------------------------------------------------------------------- explanations


def test_link_denial_names_professional_masked_and_fix() -> None:
    decision = decide(SPEC_A, Action.FIND, BASE, today=TODAY)
    assert decision.rule is Rule.THERAPEUTIC_LINK
    assert "NIHII 19*******01" in decision.reason
    assert "this patient" in decision.reason
    assert decision.fix is not None
    assert "proof eidreading" in decision.fix
    assert str(decision).startswith("denied by therapeutic-link: ")


def test_allowed_reason_says_what_passed() -> None:
    decision = decide(NURSE_A, Action.READ, BASE, document=SUMEHR, today=TODAY)
    assert decision.allowed
    assert "retrospective consent signed on 2024-01-01" in decision.reason
    assert "gpconsultation therapeutic link" in decision.reason
    assert "valid until 2026-01-09" in decision.reason  # nurse: 12 months
    assert str(decision).startswith("allowed: ")


def test_glass_decision_prints_as_such() -> None:
    decision = decide(SPEC_A, Action.READ, BASE, document=GP_NOTE, today=TODAY, break_the_glass=REASON)
    assert decision.break_the_glass
    assert str(decision).startswith("allowed (break-the-glass): ")


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        ("", "0 characters"),
        ("x" * 9, "at least 10"),
        ("  " + "x" * 10 + "  ", None),
        ("x" * 200, None),
        ("x" * 201, "at most 200"),
    ],
)
def test_break_the_glass_problem(reason: str, problem: str | None) -> None:
    found = break_the_glass_problem(reason)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_read_needs_a_document() -> None:
    with pytest.raises(ValueError, match="document"):
        decide(GP_A, Action.READ, BASE, today=TODAY)


def test_document_of_another_patient_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="another patient"):
        decide(GP_A, Action.READ, BASE, document=replace(SUMEHR, patient=OTHER_PATIENT), today=TODAY)


def test_action_given_as_text() -> None:
    assert decide(GP_A, "find", BASE, today=TODAY).allowed  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ link validity


@pytest.mark.parametrize(
    ("who", "profession", "start", "last_valid"),
    [
        (GP, None, date(2024, 1, 10), date(2025, 4, 9)),  # physician: 15 months
        (PHARMACIST, None, date(2024, 1, 10), date(2025, 4, 9)),  # pharmacist: 15 months
        (NURSE, None, date(2024, 3, 1), date(2025, 2, 28)),  # nurse: 12 months
        (NURSE, "persmidwife", date(2024, 3, 1), date(2025, 2, 28)),  # midwife: 12 months
        (PHYSIO, None, date(2025, 1, 10), date(2025, 4, 9)),  # physiotherapist: 3 months
        (PHYSIO, None, date(2024, 11, 30), date(2025, 2, 27)),  # Feb 30 clamps to Feb 28, minus a day
    ],
)
def test_default_link_validity_by_profession(who: str, profession: str | None, start: date, last_valid: date) -> None:
    state = replace(BASE, links=(link(who, start=start),))
    actor = Actor.professional(who, profession)
    on_last = decide(actor, Action.FIND, state, today=last_valid)
    after = decide(actor, Action.FIND, state, today=last_valid + timedelta(days=1))
    assert on_last.allowed, str(on_last)
    assert not after.allowed
    assert after.rule is Rule.THERAPEUTIC_LINK
    assert f"expired after {last_valid.isoformat()}" in after.reason


def test_gp_link_day_before_and_after_expiry() -> None:
    state = replace(BASE, links=(link(GP, start=date(2024, 1, 10)),))
    assert decide(GP_A, Action.FIND, state, today=date(2025, 4, 9)).allowed
    assert decide(GP_A, Action.FIND, state, today=date(2025, 4, 10)).rule is Rule.THERAPEUTIC_LINK


def test_link_last_day() -> None:
    open_link = link(GP, start=date(2024, 1, 10))
    assert open_link.last_day(15) == date(2025, 4, 9)
    assert open_link.last_day(None) is None
    assert not open_link.valid_on(date(2024, 2, 1), None)
    assert link(GP, end=date(2030, 1, 1)).last_day(3) == date(2030, 1, 1)


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 10), 15, date(2025, 4, 10)),
        (date(2024, 12, 15), 1, date(2025, 1, 15)),
        (date(2024, 3, 31), -1, date(2024, 2, 29)),
    ],
)
def test_add_months(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


# ------------------------------------------------------------------------------------------------- minors


@pytest.mark.parametrize(
    ("today", "allowed"),
    [(date(2033, 7, 29), True), (date(2033, 7, 30), False)],  # 16th birthday on 2033-07-30
)
def test_representation_ends_at_sixteen(today: date, allowed: bool) -> None:
    decision = decide(Actor.representative(PARENT, MINOR), Action.FIND, MINOR_STATE, today=today)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.rule is Rule.REPRESENTATIVE
        assert "under 16" in decision.reason


def test_representative_of_an_adult_is_refused() -> None:
    state = replace(BASE, legal_representatives=(PARENT,))
    decision = decide(Actor.representative(PARENT, PATIENT), Action.FIND, state, today=TODAY)
    assert decision.rule is Rule.REPRESENTATIVE
    assert "this patient is 51" in decision.reason


def test_recorded_birth_date_wins_over_the_ssin() -> None:
    state = replace(MINOR_STATE, birth_date=date(2000, 1, 1))
    assert state.age_on(TODAY) == 25
    assert decide(Actor.representative(PARENT, MINOR), Action.FIND, state, today=TODAY).rule is Rule.REPRESENTATIVE


def test_unknown_birth_date_refuses_representation() -> None:
    state = PatientState(UNKNOWN_BIRTH, legal_representatives=(PARENT,))
    assert state.age_on(TODAY) is None
    decision = decide(Actor.representative(PARENT, UNKNOWN_BIRTH), Action.FIND, state, today=TODAY)
    assert decision.rule is Rule.REPRESENTATIVE
    assert "birth date is unknown" in decision.reason
    with_birth = replace(state, birth_date=date(2015, 5, 5))
    assert decide(Actor.representative(PARENT, UNKNOWN_BIRTH), Action.FIND, with_birth, today=TODAY).allowed


# ------------------------------------------------------------------------------------------------- matrix


def test_default_matrix_loads_and_is_cached() -> None:
    matrix = AccessMatrix.load()
    assert matrix is AccessMatrix.load()
    assert matrix.professions == [
        "persdentist",
        "persmidwife",
        "persnurse",
        "perspharmacist",
        "persphysician",
        "persphysiotherapist",
    ]
    assert matrix.allows("persphysician", "genetic")
    assert matrix.allows("PersPhysician ", " Genetic")
    assert matrix.allows("persphysician", "a-class-nobody-listed")
    assert not matrix.allows("persnurse", "a-class-nobody-listed")
    assert not matrix.allows("persdietician", "sumehr")
    assert not matrix.allows(None, "sumehr")
    assert matrix.link_validity_months("persphysician") == 15
    assert matrix.link_validity_months("persphysiotherapist") == 3
    assert matrix.link_validity_months("persdietician") is None
    assert matrix.classes_for("perspharmacist") == [
        "alert",
        "medicationscheme",
        "pharmaceuticalprescription",
        "vaccination",
    ]
    assert matrix.classes_for("persdietician") == []


def test_genetic_data_for_physicians_only() -> None:
    matrix = AccessMatrix.load()
    assert [p for p in matrix.professions if matrix.allows(p, "genetic")] == ["persphysician"]


def test_physiotherapists_see_less_than_nurses() -> None:
    matrix = AccessMatrix.load()
    physio = set(matrix.classes_for("persphysiotherapist"))
    assert physio < set(matrix.classes_for("persphysician"))
    assert not {"labresult", "sumehr", "medicationscheme", "genetic"} & physio


def test_matrix_classes_are_the_class_code_value_set() -> None:
    codes = {c.code for c in load_value_sets().codes("classCode")}
    assert AccessMatrix.load().classes == codes


def test_every_matrix_row_explains_itself() -> None:
    matrix = AccessMatrix.load()
    assert matrix.source
    assert all(row.why for row in matrix.rows.values())
    assert set(matrix.link_validity) == set(matrix.rows)


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_matrix_is_replaceable(tmp_path: Path) -> None:
    custom = AccessMatrix.load(
        _write(
            tmp_path,
            {
                "about": "test table",
                "classes": ["labresult", "sumehr", "genetic"],
                "professions": {
                    "persphysiotherapist": {"allow": ["labresult"]},
                    "persphysician": {"allow": ["*"], "deny": ["genetic"]},
                },
                "link_validity_months": {"persphysiotherapist": {"months": 3}, "persphysician": 2},
            },
        )
    )
    assert custom.source == "test table"
    assert decide(PHYSIO_A, Action.READ, BASE, document=LAB, today=TODAY, matrix=custom).allowed
    assert not decide(PHYSIO_A, Action.READ, BASE, document=LAB, today=TODAY).allowed
    denied = decide(GP_A, Action.READ, BASE, document=GENETIC, today=TODAY, matrix=custom)
    assert denied.rule is Rule.ACCESS_MATRIX
    # the custom validity applies: a physician's link of 2025-01-10 lasts two months, not 15
    assert decide(GP_A, Action.FIND, BASE, today=date(2025, 3, 9), matrix=custom).allowed
    expired = decide(GP_A, Action.FIND, BASE, today=date(2025, 3, 10), matrix=custom)
    assert expired.rule is Rule.THERAPEUTIC_LINK
    assert "expired after 2025-03-09" in expired.reason
    assert decide(GP_A, Action.FIND, BASE, today=date(2025, 3, 10)).allowed
    nurse = decide(NURSE_A, Action.READ, BASE, document=SUMEHR, today=TODAY, matrix=custom)
    assert nurse.rule is Rule.THERAPEUTIC_LINK  # unknown to this table: no default validity either


def test_filter_visible_uses_the_given_matrix() -> None:
    custom = AccessMatrix.from_mapping(
        {
            "classes": ["labresult", "sumehr"],
            "professions": {"persphysiotherapist": {"allow": ["labresult"]}},
            "link_validity_months": {"persphysiotherapist": 3},
        }
    )
    assert filter_visible(PHYSIO_A, BASE, [SUMEHR, LAB], today=TODAY, matrix=custom) == [LAB]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"professions": {"persnurse": {"allow": []}}}, "'classes'"),
        ({"classes": ["sumehr"]}, "'professions'"),
        ({"classes": ["sumehr"], "professions": {"persnurse": {}}}, "needs an 'allow' list"),
        ({"classes": ["sumehr"], "professions": {"persnurse": {"allow": ["sumher"]}}}, "unknown class 'sumher'"),
        ({"classes": ["sumehr"], "professions": {"persnurse": {"allow": ["*"], "deny": ["*"]}}}, "unknown class '*'"),
        (
            {"classes": ["sumehr"], "professions": {"persnurse": {"allow": ["*"]}}, "link_validity_months": {"x": 0}},
            "positive number of months",
        ),
        (
            {
                "classes": ["sumehr"],
                "professions": {"persnurse": {"allow": ["*"]}},
                "link_validity_months": {"x": {"months": True}},
            },
            "positive number of months",
        ),
    ],
)
def test_invalid_matrix_is_refused(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccessMatrix.load(_write(tmp_path, data))


def test_matrix_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        AccessMatrix.load(path)


# ----------------------------------------------------------------------------------------------- filtering


ALL_DOCS = [SUMEHR, LAB, GENETIC, MEDS, SECRET, RESTRICTED, GP_NOTE, PHYSIO_LAB, ODD_CONF]


def test_filter_visible_physiotherapist() -> None:
    visible = filter_visible(PHYSIO_A, BASE, ALL_DOCS, today=TODAY)
    assert visible == [GP_NOTE, PHYSIO_LAB]  # contactreport by the matrix, own labresult as its author


def test_filter_visible_physician_and_author() -> None:
    assert filter_visible(GP_A, BASE, ALL_DOCS, today=TODAY) == [
        SUMEHR,
        LAB,
        GENETIC,
        MEDS,
        RESTRICTED,
        GP_NOTE,
        PHYSIO_LAB,
    ]
    assert filter_visible(SPEC_A, BASE, ALL_DOCS, today=TODAY) == [
        SUMEHR,
        LAB,
        GENETIC,
        MEDS,
        SECRET,
        RESTRICTED,
        ODD_CONF,
    ]


def test_filter_visible_patient_never_sees_held_back() -> None:
    state = replace(
        BASE,
        held_back=(HeldBack(LAB.unique_id), HeldBack(SUMEHR.unique_id, TODAY + timedelta(days=30))),
    )
    visible = filter_visible(PATIENT_A, state, ALL_DOCS, today=TODAY)
    assert LAB not in visible
    assert SUMEHR not in visible
    assert SECRET not in visible
    assert visible == [GENETIC, MEDS, RESTRICTED, GP_NOTE, PHYSIO_LAB]
    later = filter_visible(PATIENT_A, state, ALL_DOCS, today=TODAY + timedelta(days=30))
    assert SUMEHR in later
    assert LAB not in later


def test_filter_visible_with_break_the_glass() -> None:
    visible = filter_visible(PHYSIO_A, replace(BASE, links=()), ALL_DOCS, today=TODAY, break_the_glass=REASON)
    assert visible == [SUMEHR, LAB, GENETIC, MEDS, RESTRICTED, GP_NOTE, PHYSIO_LAB]
    assert filter_visible(PHYSIO_A, BASE, ALL_DOCS, today=TODAY, break_the_glass="short") == []


def test_filter_visible_drops_everything_without_consent_and_other_patients() -> None:
    assert filter_visible(GP_A, replace(BASE, consents=()), ALL_DOCS, today=TODAY) == []
    foreign = replace(SUMEHR, patient=OTHER_PATIENT)
    assert filter_visible(GP_A, BASE, [foreign, SUMEHR], today=TODAY) == [SUMEHR]


def test_filter_visible_accepts_any_iterable() -> None:
    assert filter_visible(GP_A, BASE, iter([SUMEHR]), today=TODAY) == [SUMEHR]


# --------------------------------------------------------------------------------------------------- model


def test_codes_accept_case_and_whitespace() -> None:
    assert TherapeuticLinkType("carepath ") is TherapeuticLinkType.CAREPATH
    assert TherapeuticLinkType.parse(" GMD") is TherapeuticLinkType.GMD
    assert ProofType.parse("EIDReading") is ProofType.EIDREADING
    assert ConsentType.parse("Retrospective") is ConsentType.RETROSPECTIVE
    with pytest.raises(ValueError, match="use one of hospitalstay"):
        TherapeuticLinkType.parse("friendship")
    carepath = TherapeuticLink(PATIENT, GP, "carepath ", LINK_START, proof="eidsigning")  # type: ignore[arg-type]
    assert carepath.type is TherapeuticLinkType.CAREPATH
    assert carepath.proof is ProofType.EIDSIGNING


def test_confidentiality_levels() -> None:
    assert Confidentiality.of("n") is Confidentiality.NORMAL
    assert Confidentiality.of("bogus") is Confidentiality.VERY_RESTRICTED
    assert Confidentiality.strictest(["N", "R"]) is Confidentiality.RESTRICTED
    assert Confidentiality.strictest(["V", "N"]) is Confidentiality.VERY_RESTRICTED
    assert Confidentiality.strictest([]) is Confidentiality.NORMAL


def test_identifiers_are_normalised() -> None:
    consent = SharingConsent("73.03.29-298.95", ConsentType.RETROSPECTIVE, date(2024, 1, 1))
    state = PatientState("73 03 29 298 95", consents=[consent])  # type: ignore[arg-type]
    assert state.patient == PATIENT
    assert isinstance(state.consents, tuple)
    assert state.active_consent(TODAY) == consent
    doc = DocumentFacts("u", PATIENT, " SUMEHR ", "N", ("1-14787-61-004",))
    assert doc.class_code == "sumehr"
    assert doc.is_author(GP)
    assert not doc.is_author(None)


def test_patient_state_rejects_facts_of_another_patient() -> None:
    with pytest.raises(ValueError, match="given in the state of patient") as info:
        PatientState(PATIENT, links=(TherapeuticLink(OTHER_PATIENT, GP, TherapeuticLinkType.GMD, LINK_START),))
    assert OTHER_PATIENT not in str(info.value)
    assert PATIENT not in str(info.value)


def test_actor_profession_from_nihii() -> None:
    assert Actor.professional(GP).profession_code == "persphysician"
    assert Actor.professional(NURSE).profession_code == "persnurse"
    assert Actor.professional(NURSE, "PersMidwife").profession_code == "persmidwife"
    assert Actor.professional(PHARMACIST).profession_code == "perspharmacist"
    assert Actor.professional("12345678901").profession_code is None  # invalid check digits
    assert hcparty_of(PHYSIO) == "persphysiotherapist"
    assert hcparty_of(None) is None
    assert Actor.organisation(cbe="0203.201.340").cbe == "0203201340"


def test_decision_masks_ssins() -> None:
    decision = Decision.deny(Rule.CONSENT, f"patient {PATIENT}", f"ask {PATIENT}")
    assert PATIENT not in decision.reason
    assert decision.fix is not None
    assert PATIENT not in decision.fix
    assert "73*******95" in decision.reason


# ---------------------------------------------------------------------------------------------- properties

_BASE_DAY = date(2025, 1, 1)
_days = st.integers(0, 90).map(lambda n: _BASE_DAY + timedelta(days=n))
_maybe_days = st.none() | _days
_nihiis = st.sampled_from([GP, SPECIALIST, NURSE, PHYSIO, PHARMACIST, DENTIST, HOSPITAL])
_doc_ids = st.sampled_from(["d1", "d2", "d3"])
_classes = st.sampled_from(["sumehr", "labresult", "genetic", "medicationscheme", "note", "unlisted"])

_states = st.builds(
    PatientState,
    st.just(PATIENT),
    consents=st.lists(
        st.builds(SharingConsent, st.just(PATIENT), st.sampled_from(ConsentType), _days, _maybe_days), max_size=2
    ).map(tuple),
    exclusions=st.lists(st.builds(Exclusion, st.just(PATIENT), _nihiis, _days, _maybe_days), max_size=2).map(tuple),
    links=st.lists(
        st.builds(
            TherapeuticLink,
            st.just(PATIENT),
            _nihiis,
            st.sampled_from(TherapeuticLinkType),
            _days,
            _maybe_days,
            st.sampled_from(ProofType),
            _maybe_days,
        ),
        max_size=4,
    ).map(tuple),
    access_rights=st.lists(st.builds(AccessRight, _doc_ids, _nihiis, st.booleans()), max_size=3).map(tuple),
    held_back=st.lists(st.builds(HeldBack, _doc_ids, _maybe_days), max_size=2).map(tuple),
    legal_representatives=st.sampled_from([(), (PARENT,)]),
)
_documents = st.builds(
    DocumentFacts,
    _doc_ids,
    st.just(PATIENT),
    _classes,
    st.sampled_from(["N", "R", "V", "?"]),
    st.lists(_nihiis, max_size=2).map(tuple),
)
_actors = st.one_of(
    st.builds(Actor.professional, _nihiis, st.none() | st.sampled_from(["persdietician", "persphysician"])),
    st.sampled_from(
        [
            Actor.patient(PATIENT),
            Actor.patient(OTHER_PATIENT),
            Actor.organisation(HOSPITAL),
            Actor.representative(PARENT, PATIENT),
            Actor(ActorKind.PROFESSIONAL, nihii=GP, authenticated=False),
        ]
    ),
)
_reasons = st.none() | st.text(max_size=12) | st.just(REASON) | st.text(min_size=195, max_size=205)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actor=_actors,
    action=st.sampled_from(Action),
    state=_states,
    document=_documents,
    today=_days,
    reason=_reasons,
)
def test_invariants(
    actor: Actor, action: Action, state: PatientState, document: DocumentFacts, today: date, reason: str | None
) -> None:
    decision = decide(actor, action, state, document=document, today=today, break_the_glass=reason)
    assert decision.allowed is (decision.rule is None)
    assert decision.reason
    assert PATIENT not in str(decision)
    if not decision.allowed:
        return
    assert actor.authenticated
    if actor.kind in (ActorKind.PROFESSIONAL, ActorKind.ORGANISATION):
        assert state.active_consent(today) is not None, "a professional never gets in without an active consent"
    if actor.kind is ActorKind.PROFESSIONAL:
        assert actor.nihii is not None
        assert state.exclusion_of(actor.nihii, today) is None, "an excluded professional never gets in"
        if action is not Action.PUBLISH and not document.is_author(actor.nihii):
            assert not any(not r.allow for r in state.rights_for(document.unique_id, actor.nihii))
    if action is not Action.PUBLISH and document.level is Confidentiality.VERY_RESTRICTED:
        assert actor.kind is ActorKind.PROFESSIONAL, "V is for its authors only"
        assert document.is_author(actor.nihii), "V is for its authors only"
    if actor.kind is ActorKind.ORGANISATION:
        assert action is Action.PUBLISH
    if actor.kind in (ActorKind.PATIENT, ActorKind.REPRESENTATIVE):
        assert action is not Action.PUBLISH
        assert state.held_back_on(document.unique_id, today) is None
    if decision.break_the_glass:
        assert actor.kind is ActorKind.PROFESSIONAL
        assert reason is not None
        assert break_the_glass_problem(reason) is None


@settings(max_examples=150, deadline=None)
@given(actor=_actors, state=_states, documents=st.lists(_documents, max_size=5), today=_days, reason=_reasons)
def test_filter_visible_is_find_per_document(
    actor: Actor, state: PatientState, documents: list[DocumentFacts], today: date, reason: str | None
) -> None:
    visible = filter_visible(actor, state, documents, today=today, break_the_glass=reason)
    expected = [
        d
        for d in documents
        if decide(actor, Action.FIND, state, document=d, today=today, break_the_glass=reason).allowed
    ]
    assert visible == expected


_professionals = st.builds(
    Actor.professional, _nihiis, st.none() | st.sampled_from(["persphysician", "persnurse", "persdietician"])
)
_professional_actions = st.sampled_from(Action)
_friendly_reasons = st.none() | st.just(REASON)


@settings(max_examples=200, deadline=None)
@given(actor=_professionals, action=_professional_actions, state=_states, document=_documents, reason=_friendly_reasons)
def test_excluded_professional_is_always_refused(
    actor: Actor, action: Action, state: PatientState, document: DocumentFacts, reason: str | None
) -> None:
    assert actor.nihii is not None
    today = _BASE_DAY + timedelta(days=45)
    # give every other barrier a chance to pass: an active consent and a valid link for the actor
    state = replace(
        state,
        consents=(*state.consents, SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, _BASE_DAY)),
        links=(
            *state.links,
            TherapeuticLink(PATIENT, actor.nihii, TherapeuticLinkType.GMD, _BASE_DAY, date(2030, 1, 1)),
        ),
        exclusions=(*state.exclusions, Exclusion(PATIENT, actor.nihii, _BASE_DAY)),
    )
    decision = decide(actor, action, state, document=document, today=today, break_the_glass=reason)
    assert not decision.allowed
    assert decision.rule in (Rule.CONSENT, Rule.EXCLUSION)


@settings(max_examples=200, deadline=None)
@given(actor=_professionals, action=_professional_actions, state=_states, document=_documents, reason=_friendly_reasons)
def test_professional_is_always_refused_without_active_consent(
    actor: Actor, action: Action, state: PatientState, document: DocumentFacts, reason: str | None
) -> None:
    assert actor.nihii is not None
    today = _BASE_DAY + timedelta(days=45)
    state = replace(
        state,
        consents=tuple(c for c in state.consents if not c.active_on(today)),
        links=(
            *state.links,
            TherapeuticLink(PATIENT, actor.nihii, TherapeuticLinkType.GMD, _BASE_DAY, date(2030, 1, 1)),
        ),
        exclusions=(),
    )
    decision = decide(actor, action, state, document=document, today=today, break_the_glass=reason)
    assert not decision.allowed
    assert decision.rule is Rule.CONSENT


@settings(max_examples=200, deadline=None)
@given(actor=_actors, state=_states, document=_documents, reason=_friendly_reasons, action=st.sampled_from([R, F]))
def test_very_restricted_is_never_shown_to_a_non_author(
    actor: Actor, state: PatientState, document: DocumentFacts, reason: str | None, action: Action
) -> None:
    today = _BASE_DAY + timedelta(days=45)
    document = replace(
        document, confidentiality="V", author_nihiis=tuple(a for a in document.author_nihiis if a != actor.nihii)
    )
    state = replace(
        state,
        consents=(*state.consents, SharingConsent(PATIENT, ConsentType.RETROSPECTIVE, _BASE_DAY)),
        access_rights=(*state.access_rights, *(AccessRight(document.unique_id, n, True) for n in (actor.nihii,) if n)),
        held_back=(),
    )
    decision = decide(actor, action, state, document=document, today=today, break_the_glass=reason)
    assert not decision.allowed
