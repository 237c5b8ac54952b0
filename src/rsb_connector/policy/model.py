"""The facts the Belgian consent and access-control rules decide on, as plain immutable values.

Nothing here talks to a store or the network: the hub loads a :class:`PatientState` from its store and the SDK
builds one from what it knows, and both ask :func:`rsb_connector.policy.decide` the same question.

Identifiers (SSIN, NIHII) are kept as bare digit strings; separators (spaces, dots, dashes, slashes) are removed on
construction so that ``"73.03.29-298.95"`` and ``"73032929895"`` compare equal. Coded values accept their code in
any case and with stray whitespace (``TherapeuticLinkType("carepath ")``: the source table spells it with a trailing
space).

Dates and their edges (all dates are calendar days, Belgian local time is the caller's business):

- a consent is active from the day it was ``signed`` up to the day before it was ``revoked``;
- an exclusion applies from ``start`` to ``end`` inclusive (``end`` None: until lifted);
- a therapeutic link is valid from ``start`` to ``end`` inclusive and stops on the day it is ``revoked``. When
  ``end`` is None the link lasts a number of months that depends on the professional
  (:attr:`rsb_connector.policy.AccessMatrix.link_validity`): it is valid up to the day before
  ``start + months`` (a GP's link declared on 2024-01-10 lasts 15 months: valid on 2025-04-09, not on 2025-04-10);
- a document held back ``until`` a day becomes visible to the patient *on* that day; ``until`` None: never.

Minors: under :data:`MINOR_AGE` (16) a legal representative acts for the patient (``domain.md``: "Minors: under 16
a legal representative consents"). The patient's birth date comes from :attr:`PatientState.birth_date` or, when that
is not given, from the SSIN itself (:attr:`rsb_connector.identifiers.Ssin.birth_date`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any, Final, Self

from ..errors import InvalidIdentifier
from ..identifiers import Nihii, Ssin, mask_ssin

__all__ = [
    "MINOR_AGE",
    "AccessRight",
    "Action",
    "Actor",
    "ActorKind",
    "Confidentiality",
    "ConsentType",
    "Decision",
    "DocumentFacts",
    "Exclusion",
    "HeldBack",
    "PatientState",
    "ProofType",
    "Rule",
    "SharingConsent",
    "TherapeuticLink",
    "TherapeuticLinkType",
    "add_months",
    "hcparty_of",
]

MINOR_AGE: Final = 16
"""Below this age (in whole years) a legal representative acts for the patient (consent, reading)."""

_SEPARATORS = re.compile(r"[\s.\-/]")


def _digits(text: str) -> str:
    """``text`` without the separators people put in identifiers."""
    return _SEPARATORS.sub("", str(text))


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def add_months(day: date, months: int) -> date:
    """``day`` plus ``months`` calendar months, the day clamped to the target month's length.

    ``add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)``.
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# ------------------------------------------------------------------------------------------------------ codes


class _Code(StrEnum):
    """A coded value that also accepts its code in any case and with surrounding whitespace."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            key = value.strip().casefold()
            for member in cls:
                if member.value.casefold() == key:
                    return member
        return None

    @classmethod
    def parse(cls, text: str) -> Self:
        """The member whose code is ``text`` (case and surrounding whitespace ignored).

        Raises:
            ValueError: unknown code; the message lists the valid ones.
        """
        try:
            return cls(text)
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown {cls.__name__} {text!r}: use one of {valid}") from None


class ConsentType(_Code):
    """KMEHR CD-CONSENTTYPE. All three make the patient's data shareable; ``retrospective`` is the one used in
    practice (it also covers data recorded before the consent was signed)."""

    LOCAL = "local"
    PROSPECTIVE = "prospective"
    RETROSPECTIVE = "retrospective"


class TherapeuticLinkType(_Code):
    """KMEHR CD-THERAPEUTICLINKTYPE (``"carepath "`` with the source table's trailing space is accepted)."""

    HOSPITALSTAY = "hospitalstay"
    HOSPITALAMBULATORY = "hospitalambulatory"
    HOSPITALURGENCY = "hospitalurgency"
    GPCONSULTATION = "gpconsultation"
    SPECIALISTCONSULTATION = "specialistconsultation"
    GMD = "gmd"
    CAREPATH = "carepath"
    MEDICALHOUSE = "medicalhouse"


class ProofType(_Code):
    """How the patient's presence was proven when a therapeutic link was declared (eHealth proof types)."""

    EIDREADING = "eidreading"
    SISREADING = "sisreading"
    ISIREADING = "isireading"
    EIDSIGNING = "eidsigning"
    EIDENCODING_HOUSECALL = "eidencoding_housecall"
    EIDENCODING_NOCARD = "eidencoding_nocard"
    EIDENCODING_TECHPROBLEM = "eidencoding_techproblem"


class Confidentiality(_Code):
    """HL7 v3 confidentiality of a document, as the rules read it.

    - ``N`` normal: the access matrix decides.
    - ``R`` restricted: its authors, physicians, and professionals the author allowed by an explicit access right
      (or who break the glass) — on top of the other barriers. Patients read it.
    - ``V`` very restricted: its authors only. Nobody else, the patient included, and break-the-glass does not
      open it (an author who wants the patient to read it chooses ``R`` or ``N``).
    """

    NORMAL = "N"
    RESTRICTED = "R"
    VERY_RESTRICTED = "V"

    @classmethod
    def of(cls, code: str) -> Confidentiality:
        """The level of ``code`` (``N``/``R``/``V``, any case); an unknown code counts as ``V`` (fail closed)."""
        try:
            return cls(code)
        except ValueError:
            return cls.VERY_RESTRICTED

    @classmethod
    def strictest(cls, codes: Iterable[str]) -> Confidentiality:
        """The most restrictive of several codes (an entry may carry more than one); ``N`` when there are none."""
        order = [cls.NORMAL, cls.RESTRICTED, cls.VERY_RESTRICTED]
        levels = [cls.of(c) for c in codes]
        return max(levels, key=order.index) if levels else cls.NORMAL


class Action(_Code):
    """What the actor wants to do with the patient's documents."""

    PUBLISH = "publish"
    FIND = "find"
    READ = "read"


class ActorKind(_Code):
    """Who asks."""

    PROFESSIONAL = "professional"
    PATIENT = "patient"
    ORGANISATION = "organisation"
    REPRESENTATIVE = "representative"


class Rule(StrEnum):
    """The barrier that denied a request (the value is what the hub writes to its audit trail)."""

    NOT_AUTHENTICATED = "not-authenticated"
    """Who asks is not established (not authenticated, or no NIHII / SSIN for their kind)."""
    CONSENT = "consent"
    """The patient has no active sharing consent."""
    EXCLUSION = "exclusion"
    """The patient has excluded this professional."""
    AUTHOR = "author"
    """A professional publishes a document that does not name them as an author."""
    THERAPEUTIC_LINK = "therapeutic-link"
    """No valid therapeutic link between the professional and the patient."""
    ACCESS_MATRIX = "access-matrix"
    """The profession may not read this class of document (or is unknown, or is an organisation)."""
    ACCESS_RIGHT = "access-right"
    """The document's author disallowed this professional explicitly."""
    CONFIDENTIALITY = "confidentiality"
    """The document's confidentiality (R or V) keeps the actor out."""
    HELD_BACK = "held-back"
    """The author holds the document back from the patient."""
    PATIENT_SELF = "patient-self"
    """A patient asks for somebody else's documents, or tries to publish."""
    BREAK_THE_GLASS_REASON = "break-the-glass-reason"
    """A break-the-glass reason was given but is not 10–200 characters long."""
    REPRESENTATIVE = "representative"
    """The representative is not registered for this patient, or the patient is not a minor."""


# ---------------------------------------------------------------------------------------------- patient facts


@dataclass(frozen=True, slots=True)
class SharingConsent:
    """The patient's consent to sharing their health data through the hubs (one national consent).

    Attributes:
        patient: the patient's SSIN (digits).
        type: the consent type.
        signed: the day it was given.
        revoked: the day it was withdrawn (no longer active from that day on), None while in force.
        registered_by: NIHII or SSIN of whoever registered it (a professional, the patient, a legal representative).
    """

    patient: str
    type: ConsentType
    signed: date
    revoked: date | None = None
    registered_by: str | None = None

    def __post_init__(self) -> None:
        _set(self, "patient", _digits(self.patient))
        _set(self, "type", ConsentType.parse(self.type))

    def active_on(self, day: date) -> bool:
        """Signed on or before ``day`` and not revoked on or before it."""
        return self.signed <= day and (self.revoked is None or day < self.revoked)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """The patient forbids a named professional any access to their data.

    Attributes:
        patient: the patient's SSIN.
        professional_nihii: the excluded professional's NIHII.
        start: first day of the exclusion.
        end: last day (inclusive), None until lifted.
    """

    patient: str
    professional_nihii: str
    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        _set(self, "patient", _digits(self.patient))
        _set(self, "professional_nihii", _digits(self.professional_nihii))

    def active_on(self, day: date) -> bool:
        """``start <= day <= end`` (no end: from ``start`` on)."""
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True, slots=True)
class TherapeuticLink:
    """A declared care relation between a professional (or a care organisation) and the patient.

    A link is never updated: revoke it and declare a new one.

    Attributes:
        patient: the patient's SSIN.
        professional_nihii: NIHII of the professional (or the organisation, for hospital links).
        type: the kind of relation.
        start: first day of validity.
        end: last day of validity (inclusive); None: the professional's default validity applies
            (see :meth:`last_day`).
        proof: how the patient's presence was proven.
        revoked: the day it was revoked (invalid from that day on), None while in force.
    """

    patient: str
    professional_nihii: str
    type: TherapeuticLinkType
    start: date
    end: date | None = None
    proof: ProofType = ProofType.EIDREADING
    revoked: date | None = None

    def __post_init__(self) -> None:
        _set(self, "patient", _digits(self.patient))
        _set(self, "professional_nihii", _digits(self.professional_nihii))
        _set(self, "type", TherapeuticLinkType.parse(self.type))
        _set(self, "proof", ProofType.parse(self.proof))

    def last_day(self, default_months: int | None) -> date | None:
        """The last day the link is valid, revocation aside.

        ``end`` when given; otherwise the day before ``start + default_months`` months. None when neither is known
        (such a link is treated as *not* valid: fail closed).
        """
        if self.end is not None:
            return self.end
        if default_months is None:
            return None
        return add_months(self.start, default_months) - timedelta(days=1)

    def valid_on(self, day: date, default_months: int | None) -> bool:
        """Started, not past its last day, and not revoked on ``day``."""
        last = self.last_day(default_months)
        if last is None or not (self.start <= day <= last):
            return False
        return self.revoked is None or day < self.revoked


@dataclass(frozen=True, slots=True)
class AccessRight:
    """The author's explicit decision about one professional and one document.

    ``allow=True`` lets the professional past the access matrix and an ``R`` confidentiality (never past consent,
    exclusion, the therapeutic link or a ``V``); ``allow=False`` denies them the document, break-the-glass or not.
    When both exist for the same professional and document, the disallow wins.
    """

    document_unique_id: str
    professional_nihii: str
    allow: bool

    def __post_init__(self) -> None:
        _set(self, "professional_nihii", _digits(self.professional_nihii))


@dataclass(frozen=True, slots=True)
class HeldBack:
    """The author keeps a document from the patient: until ``until`` (visible from that day on), or forever (None)."""

    document_unique_id: str
    until: date | None = None

    def hides_on(self, day: date) -> bool:
        """True while the patient may not see the document."""
        return self.until is None or day < self.until


@dataclass(frozen=True, slots=True)
class PatientState:
    """Everything the rules need to know about one patient.

    Attributes:
        patient: the patient's SSIN.
        consents: sharing consents, current and past.
        exclusions: professionals the patient excluded.
        links: therapeutic links, current and past.
        access_rights: explicit per-document allow / disallow decisions.
        held_back: documents held back from the patient.
        birth_date: for the minor rule; None: taken from the SSIN when it has one.
        legal_representatives: SSINs of the patient's registered legal representatives (parents, guardians).

    Raises:
        ValueError: a consent, exclusion or link concerns another patient.
    """

    patient: str
    consents: tuple[SharingConsent, ...] = ()
    exclusions: tuple[Exclusion, ...] = ()
    links: tuple[TherapeuticLink, ...] = ()
    access_rights: tuple[AccessRight, ...] = ()
    held_back: tuple[HeldBack, ...] = ()
    birth_date: date | None = None
    legal_representatives: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        _set(self, "patient", _digits(self.patient))
        for name in ("consents", "exclusions", "links", "access_rights", "held_back"):
            _set(self, name, tuple(getattr(self, name)))
        _set(self, "legal_representatives", tuple(_digits(s) for s in self.legal_representatives))
        items: tuple[SharingConsent | Exclusion | TherapeuticLink, ...] = (
            *self.consents,
            *self.exclusions,
            *self.links,
        )
        for item in items:
            if item.patient != self.patient:
                raise ValueError(
                    f"{type(item).__name__} of patient {mask_ssin(item.patient)} given in the state of patient "
                    f"{mask_ssin(self.patient)}"
                )

    def active_consent(self, day: date) -> SharingConsent | None:
        """A consent active on ``day`` (the most recently signed), None when there is none."""
        active = [c for c in self.consents if c.active_on(day)]
        return max(active, key=lambda c: c.signed) if active else None

    def exclusion_of(self, nihii: str, day: date) -> Exclusion | None:
        """The patient's exclusion of ``nihii`` in force on ``day``, if any."""
        wanted = _digits(nihii)
        return next((e for e in self.exclusions if e.professional_nihii == wanted and e.active_on(day)), None)

    def links_of(self, nihii: str) -> list[TherapeuticLink]:
        """Every link (valid or not) between ``nihii`` and the patient."""
        wanted = _digits(nihii)
        return [link for link in self.links if link.professional_nihii == wanted]

    def valid_link(self, nihii: str, day: date, default_months: int | None) -> TherapeuticLink | None:
        """A link of ``nihii`` valid on ``day`` (the one lasting longest), None when there is none."""
        valid = [link for link in self.links_of(nihii) if link.valid_on(day, default_months)]
        if not valid:
            return None
        return max(valid, key=lambda link: link.last_day(default_months) or date.max)

    def rights_for(self, document_unique_id: str, nihii: str) -> list[AccessRight]:
        """The explicit access rights about ``nihii`` on that document."""
        wanted = _digits(nihii)
        return [
            r
            for r in self.access_rights
            if r.document_unique_id == document_unique_id and r.professional_nihii == wanted
        ]

    def held_back_on(self, document_unique_id: str, day: date) -> HeldBack | None:
        """The hold keeping that document from the patient on ``day``, if any."""
        return next((h for h in self.held_back if h.document_unique_id == document_unique_id and h.hides_on(day)), None)

    def known_birth_date(self) -> date | None:
        """:attr:`birth_date`, else the birth date the SSIN encodes, else None."""
        if self.birth_date is not None:
            return self.birth_date
        try:
            return Ssin(self.patient).birth_date
        except InvalidIdentifier:
            return None

    def age_on(self, day: date) -> int | None:
        """The patient's age in whole years on ``day``; None when the birth date is unknown."""
        born = self.known_birth_date()
        if born is None:
            return None
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# ----------------------------------------------------------------------------------------------------- asking


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks, as authentication established it.

    Build one with :meth:`professional`, :meth:`patient`, :meth:`representative` or :meth:`organisation`.

    Attributes:
        kind: professional, patient, organisation (a hospital publishing for its professionals) or legal
            representative.
        nihii: the professional's or organisation's NIHII.
        profession: KMEHR CD-HCPARTY code (``persphysician``, ``persnurse``...); None: derived from the NIHII's
            first digit (see :attr:`profession_code`).
        ssin: the patient's own SSIN, or the representative's.
        represents: for a representative, the SSIN of the minor they act for.
        cbe: an organisation's enterprise number, when it has no NIHII.
        authenticated: False for a caller whose identity was not verified.
    """

    kind: ActorKind
    nihii: str | None = None
    profession: str | None = None
    ssin: str | None = None
    represents: str | None = None
    cbe: str | None = None
    authenticated: bool = True

    def __post_init__(self) -> None:
        _set(self, "kind", ActorKind.parse(self.kind))
        for name in ("nihii", "ssin", "represents", "cbe"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _digits(value) or None)
        if self.profession is not None:
            _set(self, "profession", self.profession.strip().casefold() or None)

    @classmethod
    def professional(cls, nihii: str, profession: str | None = None) -> Actor:
        """A healthcare professional; ``profession`` defaults to what the NIHII's first digit says."""
        return cls(ActorKind.PROFESSIONAL, nihii=nihii, profession=profession)

    @classmethod
    def patient(cls, ssin: str) -> Actor:
        """A patient acting for themselves."""
        return cls(ActorKind.PATIENT, ssin=ssin)

    @classmethod
    def representative(cls, ssin: str, represents: str) -> Actor:
        """A legal representative (SSIN ``ssin``) acting for the minor ``represents``."""
        return cls(ActorKind.REPRESENTATIVE, ssin=ssin, represents=represents)

    @classmethod
    def organisation(cls, nihii: str | None = None, *, cbe: str | None = None) -> Actor:
        """A care organisation (hospital...) by NIHII or CBE number."""
        return cls(ActorKind.ORGANISATION, nihii=nihii, cbe=cbe)

    @property
    def profession_code(self) -> str | None:
        """:attr:`profession`, else the CD-HCPARTY code of the NIHII's first digit (1 physician, 3 dentist,
        4 nurse, 5 physiotherapist, 2/6 pharmacist...), else None."""
        if self.profession:
            return self.profession
        return hcparty_of(self.nihii)

    def describe(self) -> str:
        """A short description for reasons (SSINs never spelled out)."""
        if self.kind is ActorKind.PROFESSIONAL:
            return f"NIHII {self.nihii} ({self.profession_code or 'unknown profession'})"
        if self.kind is ActorKind.ORGANISATION:
            return f"organisation {self.nihii or self.cbe}"
        if self.kind is ActorKind.REPRESENTATIVE:
            return "the legal representative"
        return "the patient"


def hcparty_of(nihii: str | None) -> str | None:
    """The CD-HCPARTY code the first digit of a valid NIHII denotes; None for None or an invalid NIHII."""
    if not nihii:
        return None
    try:
        return Nihii(nihii).hcparty
    except InvalidIdentifier:
        return None


@dataclass(frozen=True, slots=True)
class DocumentFacts:
    """What the rules need to know about one document.

    Attributes:
        unique_id: the DocumentEntry uniqueId.
        patient: the patient's SSIN.
        class_code: the class, a CD-TRANSACTION key (``sumehr``, ``labresult``...) or ``genetic``.
        confidentiality: ``N``, ``R`` or ``V`` (when the entry has several, pass
            :meth:`Confidentiality.strictest`); anything else counts as ``V``.
        author_nihiis: NIHIIs of the authoring professionals (and organisation, if any).
    """

    unique_id: str
    patient: str
    class_code: str
    confidentiality: str = "N"
    author_nihiis: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "patient", _digits(self.patient))
        _set(self, "class_code", self.class_code.strip().casefold())
        _set(self, "author_nihiis", tuple(_digits(n) for n in self.author_nihiis))

    @property
    def level(self) -> Confidentiality:
        """The confidentiality as a :class:`Confidentiality` (unknown codes count as ``V``)."""
        return Confidentiality.of(self.confidentiality)

    def is_author(self, nihii: str | None) -> bool:
        """Whether ``nihii`` is one of the document's authors."""
        return nihii is not None and _digits(nihii) in self.author_nihiis


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: allowed or not, which rule denied, why, and what would fix it.

    Attributes:
        allowed: the request may proceed.
        rule: the barrier that denied (None when allowed).
        reason: why, for a person (never a full SSIN).
        fix: what would make it allowed (None when allowed or when nothing can).
        break_the_glass: allowed only because the professional broke the glass: the hub must audit it as such.
    """

    allowed: bool
    rule: Rule | None
    reason: str
    fix: str | None = None
    break_the_glass: bool = False

    def __post_init__(self) -> None:
        _set(self, "reason", mask_ssin(self.reason))
        if self.fix is not None:
            _set(self, "fix", mask_ssin(self.fix))

    @classmethod
    def allow(cls, reason: str, *, break_the_glass: bool = False) -> Decision:
        """An allowing decision."""
        return cls(True, None, reason, None, break_the_glass)

    @classmethod
    def deny(cls, rule: Rule, reason: str, fix: str | None = None) -> Decision:
        """A denial by ``rule``."""
        return cls(False, rule, reason, fix, False)

    def __str__(self) -> str:
        if self.allowed:
            glass = " (break-the-glass)" if self.break_the_glass else ""
            return f"allowed{glass}: {self.reason}"
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"denied by {self.rule}: {self.reason}{fix}"
