"""The SDK's break-the-glass (sync and async): ``break_the_glass=`` on ``find`` / ``get_documents`` / ``retrieve`` /
``retrieve_many`` over MHD, checked locally with the engine's own rule, refused over XDS with the fix named, and
audited by the hub where the patient reads it.

Seeded facts used (:mod:`rsb_connector.hub.seed_consent`): the specialist's therapeutic link with Lucas has expired;
the GP wrote Lucas's documents, among them a lab result and a very restricted (``V``) note.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rsb_connector import AccessDenied, Identity
from rsb_connector.client import NotFoundError, PartialRetrieveError
from rsb_connector.hub.seed_consent import seed_document_unique_id
from rsb_connector.hub.server import Hub
from rsb_connector.policy import BREAK_THE_GLASS_MAX_LENGTH

from .conftest import PATIENT, Vault

LUCAS = PATIENT
GLASS = "Patient unconscious at the emergency department, no relative reachable"
LAB = seed_document_unique_id("labresult")
VERY_RESTRICTED = seed_document_unique_id("note-v")

MakeVault = Callable[..., Vault]


@pytest.fixture
def specialist(make_vault: MakeVault, hub: Hub, rsb_identity: Callable[[str], Identity]) -> Vault:
    """The specialist (no valid therapeutic link with Lucas), over MHD."""
    return make_vault(app=hub.app, protocol="mhd", identity=rsb_identity("specialist"))


def _trail(vault: Vault, patient: str) -> list[dict[str, Any]]:
    """``vault.consent.trail(patient)``, awaited for the async client."""
    trail = vault.client.consent.trail(patient)
    if vault.loop is not None:
        trail = vault.loop.run_until_complete(trail)
    assert isinstance(trail, list)
    return trail


def _btg_events(trail: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(outcome, transaction, reason) of the trail's break-the-glass events."""
    found = []
    for event in trail:
        if not event.get("purposeOfUse"):
            continue
        codes = [c["code"] for c in event["subtype"] if c["system"] == "urn:ihe:event-type-code"]
        found.append((event["outcome"], codes[0] if codes else "", event["purposeOfUse"][0]["text"]))
    return found


def test_a_professional_without_a_link_finds_and_reads_by_breaking_the_glass(
    specialist: Vault, make_vault: MakeVault, hub: Hub, rsb_identity: Callable[[str], Identity]
) -> None:
    assert specialist.find(LUCAS) == []  # the hub leaves out, silently, what the link no longer opens
    with pytest.raises(NotFoundError):
        specialist.retrieve(LAB)

    entries = specialist.find(LUCAS, break_the_glass=GLASS)
    found = {e.unique_id for e in entries}
    assert LAB in found
    assert VERY_RESTRICTED not in found  # break-the-glass never opens a very restricted document
    lab = next(e for e in entries if e.unique_id == LAB)
    with pytest.raises(AccessDenied) as denied:  # without the reason, the pre-check refuses before any request
        specialist.retrieve(lab)
    assert denied.value.rule == "therapeutic-link"

    doc = specialist.retrieve(lab, break_the_glass=GLASS)  # the pre-check passes the reason too
    assert doc.verified
    assert doc.size == lab.size
    assert doc.content is not None and len(doc.content) == lab.size
    # by uniqueId: the lookup (ITI-67) breaks the glass as well
    assert specialist.retrieve(LAB, break_the_glass=GLASS).hash == doc.hash
    [again] = specialist.get_documents(unique_ids=[LAB], break_the_glass=GLASS)
    assert again.entry_uuid == lab.entry_uuid
    assert specialist.get_documents(unique_ids=[LAB]) == []
    many = specialist.retrieve_many([LAB], break_the_glass=GLASS)
    assert [d.unique_id for d in many] == [LAB]

    patient = make_vault(app=hub.app, protocol="mhd", identity=rsb_identity("patient1"))
    seen = _btg_events(_trail(patient, LUCAS))
    assert ("0", "ITI-67", GLASS) in seen, "the patient sees the search made by breaking the glass"
    assert ("0", "ITI-68", GLASS) in seen, "and the document read that way"


def test_the_reason_is_sent_as_one_stripped_line(specialist: Vault, hub: Hub) -> None:
    assert specialist.find(LUCAS, break_the_glass=f"  {GLASS}  ")
    assert hub.audit is not None
    assert hub.audit.query(patient=LUCAS, action="find")[-1].break_the_glass == GLASS
    with pytest.raises(ValueError, match="one line"):  # never a header injection
        specialist.find(LUCAS, break_the_glass=GLASS + "\r\nX-Other: injected")


def test_a_reason_with_accents_is_sent_in_utf8(specialist: Vault, hub: Hub) -> None:
    reason = "Réanimation : patient inconscient, aucun proche joignable"
    assert LAB in {e.unique_id for e in specialist.find(LUCAS, break_the_glass=reason)}
    assert hub.audit is not None
    assert any(e.break_the_glass == reason for e in hub.audit.query(patient=LUCAS, action="find"))


@pytest.mark.parametrize("reason", ["too short", "x" * (BREAK_THE_GLASS_MAX_LENGTH + 1), "   nine 9   "])
def test_a_reason_of_the_wrong_length_is_refused_before_anything_is_sent(
    specialist: Vault, hub: Hub, reason: str
) -> None:
    assert hub.audit is not None
    before = len(hub.audit.query())
    with pytest.raises(ValueError, match=r"break-the-glass reason has .* 10 to 200 characters"):
        specialist.find(LUCAS, break_the_glass=reason)
    with pytest.raises(ValueError, match="break-the-glass reason has"):
        specialist.retrieve(LAB, break_the_glass=reason)
    with pytest.raises(ValueError, match="break-the-glass reason has"):
        specialist.retrieve_many([LAB], break_the_glass=reason)
    with pytest.raises(ValueError, match="break-the-glass reason has"):
        specialist.get_documents(unique_ids=[LAB], break_the_glass=reason)
    assert len(hub.audit.query()) == before  # nothing reached the hub


def test_over_xds_the_reason_is_refused_with_the_fix(
    make_vault: MakeVault, hub: Hub, rsb_identity: Callable[[str], Identity]
) -> None:
    over_xds = make_vault(app=hub.app, identity=rsb_identity("specialist"))  # protocol="xds", the default
    for call in (
        lambda: over_xds.find(LUCAS, break_the_glass=GLASS),
        lambda: over_xds.retrieve(LAB, break_the_glass=GLASS),
        lambda: over_xds.retrieve_many([LAB], break_the_glass=GLASS),
        lambda: over_xds.get_documents(unique_ids=[LAB], break_the_glass=GLASS),
    ):
        with pytest.raises(ValueError, match='protocol="mhd"'):
            call()
    assert over_xds.find(LUCAS) == []  # and without a reason, XDS works as before


def test_only_a_professional_may_break_the_glass(
    make_vault: MakeVault, hub: Hub, rsb_identity: Callable[[str], Identity]
) -> None:
    patient = make_vault(app=hub.app, protocol="mhd", identity=rsb_identity("patient1"))
    with pytest.raises(ValueError, match="only a healthcare professional"):
        patient.find(LUCAS, break_the_glass=GLASS)


def test_partial_results_keep_the_reason(specialist: Vault) -> None:
    with pytest.raises(PartialRetrieveError) as partial:
        specialist.retrieve_many([LAB, VERY_RESTRICTED], break_the_glass=GLASS)
    assert [d.unique_id for d in partial.value.partial] == [LAB]
