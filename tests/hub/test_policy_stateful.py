"""A stateful property test of the real hub's consent enforcement against a tiny independent reference model.

Hypothesis drives random sequences of consents, revocations, exclusions, therapeutic links, publishes, finds,
retrieves and break-the-glass by the development PKI's professionals and patients against a real hub (``build_hub``
on a temporary directory with a PKI; consent changes through :class:`~rsb_connector.hub.consent.ConsentRegistry`,
XDS operations through the :class:`~rsb_connector.hub.registry.Registry` with :class:`Caller` s). Every answer is
checked against :class:`Model`: a few dicts and sets with the rules written out again (not the policy engine),
over a deliberately small world (two adult patients, four professions, three document classes, confidentiality
``N``, everything happening on one day). Invariants: no unauthorized read, no forbidden (and no missing) entry in
find results, every publish / find / retrieve audited under the caller's name, and every broken glass flagged.

``make test`` runs a few hundred steps; ``RSB_STATEFUL_STEPS=10000 pytest tests/hub/test_policy_stateful.py``
(``make soak``) runs longer.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from rsb_connector.hub.consent import PolicyError
from rsb_connector.hub.registry import PATIENT_ROLE, Caller, IncomingDocument
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.identifiers import SSIN_OID
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.query import FindDocuments
from rsb_connector.security.pki import PkiDescription, init_pki
from rsb_connector.xds.constants import DEFAULT_REPOSITORY_UNIQUE_ID

STEPS_PER_RUN: Final = 50
TOTAL_STEPS: Final = int(os.environ.get("RSB_STATEFUL_STEPS", "1500"))
GLASS: Final = "Unconscious patient at the emergency department"

# the reference model's own access table: profession -> classes it reads (a small part of the world)
READS: Final = {
    "persphysician": {"labresult", "contactreport", "medicationscheme"},
    "persnurse": {"labresult", "contactreport", "medicationscheme"},
    "persphysiotherapist": {"contactreport"},
    "perspharmacist": {"medicationscheme"},
}
CLASSES: Final = sorted({c for classes in READS.values() for c in classes})
PROFESSIONALS: Final = ("gp", "nurse", "physiotherapist", "pharmacist")
PATIENTS: Final = ("patient1", "patient2")


@cache
def _pki() -> PkiDescription:
    """One development PKI for the whole module (making one costs a second)."""
    return init_pki(Path(tempfile.mkdtemp(prefix="rsb-stateful-pki-")))


@cache
def _callers() -> dict[str, Caller]:
    """The PKI's professionals and patients as the security layer names them."""
    pki = _pki()
    callers: dict[str, Caller] = {}
    for name in (*PROFESSIONALS, *PATIENTS):
        identity = pki.load_identity(name)
        if identity.kind == "patient":
            callers[name] = Caller(name, PATIENT_ROLE, ssin=str(identity.ssin), authenticated=True)
        else:
            callers[name] = Caller(name, identity.profession, nihii=str(identity.nihii), authenticated=True)
    return callers


@dataclass
class Document:
    """A published document as the model knows it."""

    unique_id: str
    patient: str
    class_code: str
    author: str


@dataclass
class Model:
    """The reference: the rules on one day, as plain sets."""

    consent: set[str] = field(default_factory=set)
    excluded: dict[str, set[str]] = field(default_factory=dict)
    links: dict[str, set[str]] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)

    def patient_barriers(self, who: Caller, patient: str) -> bool:
        return patient in self.consent and who.nihii not in self.excluded.get(patient, set())

    def linked(self, who: Caller, patient: str) -> bool:
        return who.nihii in self.links.get(patient, set())

    def may_publish(self, who: Caller, patient: str) -> bool:
        return who.nihii is not None and self.patient_barriers(who, patient) and self.linked(who, patient)

    def sees(self, who: Caller, doc: Document, glass: bool) -> tuple[bool, bool]:
        """(may see, only thanks to the broken glass)."""
        if who.role == PATIENT_ROLE:
            return who.ssin == doc.patient, False
        if not self.patient_barriers(who, doc.patient):
            return False, False
        if doc.author == who.nihii:
            return True, False
        normal = self.linked(who, doc.patient) and doc.class_code in READS[str(who.role)]
        if normal:
            return True, False
        return glass, glass

    def visible(self, who: Caller, patient: str, glass: bool) -> dict[str, bool]:
        """uniqueId -> needed the glass, for the patient's documents ``who`` sees."""
        found: dict[str, bool] = {}
        for doc in self.documents:
            if doc.patient == patient:
                seen, by_glass = self.sees(who, doc, glass)
                if seen:
                    found[doc.unique_id] = by_glass
        return found


class ConsentStateMachine(RuleBasedStateMachine):
    """The real hub and the model, side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory(prefix="rsb-stateful-")
        self.hub: Hub = build_hub(Path(self.directory.name), pki=_pki())
        self.callers = _callers()
        self.model = Model()
        self.counter = 0

    @initialize()
    def register_patients(self) -> None:
        for name in PATIENTS:
            self.hub.registry.register_patient(self._cx(self._ssin(name)))

    def teardown(self) -> None:
        self.hub.close()
        self.directory.cleanup()

    # ------------------------------------------------------------------------------------------ helpers
    def _ssin(self, patient: str) -> str:
        return str(self.callers[patient].ssin)

    @staticmethod
    def _cx(ssin: str) -> str:
        return f"{ssin}^^^&{SSIN_OID}&ISO"

    def _audit_count(self) -> int:
        assert self.hub.audit is not None
        return len(self.hub.audit.query())

    def _new_events(self, before: int) -> list[object]:
        assert self.hub.audit is not None
        events = self.hub.audit.query()
        assert len(events) > before, "the operation was not audited"
        new = events[before:]
        return list(new)

    @staticmethod
    def _glassed(caller: Caller, glass: bool) -> Caller:
        return dataclasses.replace(caller, break_the_glass=GLASS) if glass else caller

    def _changed(self, change: object, expected: bool) -> None:
        """Run a consent registry change; the model says whether the hub must accept it."""
        assert callable(change)
        refusal: PolicyError | None = None
        try:
            change()
        except PolicyError as exc:
            refusal = exc
        if expected:
            assert refusal is None, f"refused but the model allows it: {refusal}"
        else:
            assert refusal is not None, "accepted but the model refuses it"

    # ------------------------------------------------------------------------------------------ consent changes
    @rule(patient=st.sampled_from(PATIENTS))
    def grant(self, patient: str) -> None:
        ssin = self._ssin(patient)
        expected = ssin not in self.model.consent
        assert self.hub.consents is not None
        consents = self.hub.consents
        self._changed(lambda: consents.grant_consent(ssin, by=self.callers[patient]), expected)
        self.model.consent.add(ssin)

    @rule(patient=st.sampled_from(PATIENTS))
    def revoke(self, patient: str) -> None:
        ssin = self._ssin(patient)
        assert self.hub.consents is not None
        consents = self.hub.consents
        self._changed(lambda: consents.revoke_consent(ssin, by=self.callers[patient]), ssin in self.model.consent)
        self.model.consent.discard(ssin)

    @rule(patient=st.sampled_from(PATIENTS), professional=st.sampled_from(PROFESSIONALS))
    def exclude(self, patient: str, professional: str) -> None:
        ssin, nihii = self._ssin(patient), str(self.callers[professional].nihii)
        excluded = self.model.excluded.setdefault(ssin, set())
        assert self.hub.consents is not None
        consents = self.hub.consents
        self._changed(lambda: consents.add_exclusion(ssin, nihii, by=self.callers[patient]), nihii not in excluded)
        excluded.add(nihii)

    @rule(patient=st.sampled_from(PATIENTS), professional=st.sampled_from(PROFESSIONALS))
    def lift(self, patient: str, professional: str) -> None:
        ssin, nihii = self._ssin(patient), str(self.callers[professional].nihii)
        excluded = self.model.excluded.setdefault(ssin, set())
        assert self.hub.consents is not None
        consents = self.hub.consents
        self._changed(lambda: consents.remove_exclusion(ssin, nihii, by=self.callers[patient]), nihii in excluded)
        excluded.discard(nihii)

    @rule(patient=st.sampled_from(PATIENTS), professional=st.sampled_from(PROFESSIONALS))
    def declare_link(self, patient: str, professional: str) -> None:
        who = self.callers[professional]
        ssin, nihii = self._ssin(patient), str(who.nihii)
        links = self.model.links.setdefault(ssin, set())
        expected = self.model.patient_barriers(who, ssin) and nihii not in links
        kind = "gpconsultation" if who.role == "persphysician" else "carepath"
        assert self.hub.consents is not None
        consents = self.hub.consents
        self._changed(lambda: consents.declare_link(ssin, nihii, kind, "eidreading", by=who), expected)
        if expected:
            links.add(nihii)

    @rule(patient=st.sampled_from(PATIENTS), professional=st.sampled_from(PROFESSIONALS), by_patient=st.booleans())
    def revoke_link(self, patient: str, professional: str, by_patient: bool) -> None:
        who = self.callers[professional]
        ssin, nihii = self._ssin(patient), str(who.nihii)
        links = self.model.links.setdefault(ssin, set())
        by = self.callers[patient] if by_patient else who
        assert self.hub.consents is not None
        consents = self.hub.consents
        self._changed(lambda: consents.revoke_link(ssin, nihii, by=by), nihii in links)
        links.discard(nihii)

    # ------------------------------------------------------------------------------------------ XDS
    @rule(
        professional=st.sampled_from(PROFESSIONALS),
        patient=st.sampled_from(PATIENTS),
        class_code=st.sampled_from(CLASSES),
    )
    def publish(self, professional: str, patient: str, class_code: str) -> None:
        who = self.callers[professional]
        ssin = self._ssin(patient)
        self.counter += 1
        content = f"document {self.counter}".encode()
        author = professional_author(str(who.nihii))
        entry = new_document(content, patient=ssin, document_type=class_code, author=author, mime_type="text/plain")
        submission = new_submission([entry], author=author)
        before = self._audit_count()
        outcome = self.hub.registry.provide_and_register(
            submission, {entry.entry_uuid: IncomingDocument.from_bytes(content)}, caller=who
        )
        expected = self.model.may_publish(who, ssin)
        assert outcome.ok == expected, [str(p) for p in outcome.problems]
        new = self._new_events(before)
        assert all(e.who == who.subject for e in new)
        if expected:
            self.model.documents.append(Document(entry.unique_id, ssin, class_code, str(who.nihii)))

    @rule(
        who=st.sampled_from((*PROFESSIONALS, *PATIENTS)),
        patient=st.sampled_from(PATIENTS),
        glass=st.booleans(),
    )
    def find(self, who: str, patient: str, glass: bool) -> None:
        caller = self.callers[who]
        ssin = self._ssin(patient)
        glass = glass and caller.role != PATIENT_ROLE
        before = self._audit_count()
        result = self.hub.registry.stored_query(
            FindDocuments(patient_id=self._cx(ssin)), caller=self._glassed(caller, glass)
        )
        found = {entry.unique_id for entry in result.entries}
        expected = self.model.visible(caller, ssin, glass)
        assert found == set(expected), f"{who} found {len(found)} documents, the model {len(expected)}"
        new = self._new_events(before)
        assert all(e.who == caller.subject for e in new)
        if any(expected.values()):
            assert any(e.break_the_glass for e in new), "a broken glass was not flagged"

    @rule(who=st.sampled_from((*PROFESSIONALS, *PATIENTS)), glass=st.booleans(), data=st.data())
    def retrieve(self, who: str, glass: bool, data: st.DataObject) -> None:
        if not self.model.documents:
            return
        doc = data.draw(st.sampled_from(self.model.documents))
        caller = self.callers[who]
        glass = glass and caller.role != PATIENT_ROLE
        before = self._audit_count()
        outcome = self.hub.registry.retrieve(
            [(DEFAULT_REPOSITORY_UNIQUE_ID, doc.unique_id)], caller=self._glassed(caller, glass)
        )
        returned = {d.unique_id for d in outcome.documents}  # their paths are the store's own files: kept
        allowed, by_glass = self.model.sees(caller, doc, glass)
        assert returned == ({doc.unique_id} if allowed else set()), f"{who} retrieve: model says {allowed}"
        new = self._new_events(before)
        assert all(e.who == caller.subject for e in new)
        if by_glass:
            assert any(e.break_the_glass for e in new), "a broken glass was not flagged"

    @invariant()
    def audit_trail_is_append_only(self) -> None:
        assert self.hub.audit is not None
        seqs = [e.seq for e in self.hub.audit.query()]
        assert seqs == sorted(set(seqs))


ConsentStateMachine.TestCase.settings = settings(
    max_examples=max(1, TOTAL_STEPS // STEPS_PER_RUN),
    stateful_step_count=STEPS_PER_RUN,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestConsentStateMachine = ConsentStateMachine.TestCase
