"""Belgian consent and access control as pure decisions with reasons.

The hub loads a patient's state from its store and asks :func:`decide`; the SDK's pre-check asks the same function
with what it knows. Nothing here stores or sends anything.

>>> from datetime import date
>>> state = PatientState(
...     "73032929895",
...     consents=(SharingConsent("73032929895", ConsentType.RETROSPECTIVE, date(2024, 1, 1)),),
... )
>>> gp = Actor.professional("11478761004")
>>> decision = decide(gp, Action.FIND, state, today=date(2024, 6, 1))
>>> decision.allowed, decision.rule
(False, <Rule.THERAPEUTIC_LINK: 'therapeutic-link'>)

See :mod:`rsb_connector.policy.engine` for the order of the rules and every choice made,
:mod:`rsb_connector.policy.matrix` for the access matrix and :mod:`rsb_connector.policy.model` for the facts.
"""

from .engine import (
    BREAK_THE_GLASS_MAX_LENGTH,
    BREAK_THE_GLASS_MIN_LENGTH,
    break_the_glass_problem,
    decide,
    filter_visible,
)
from .matrix import ALL_CLASSES, AccessMatrix, ProfessionAccess
from .model import (
    MINOR_AGE,
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
    hcparty_of,
)

__all__ = [
    "ALL_CLASSES",
    "BREAK_THE_GLASS_MAX_LENGTH",
    "BREAK_THE_GLASS_MIN_LENGTH",
    "MINOR_AGE",
    "AccessMatrix",
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
    "ProfessionAccess",
    "ProofType",
    "Rule",
    "SharingConsent",
    "TherapeuticLink",
    "TherapeuticLinkType",
    "add_months",
    "break_the_glass_problem",
    "decide",
    "filter_visible",
    "hcparty_of",
]
