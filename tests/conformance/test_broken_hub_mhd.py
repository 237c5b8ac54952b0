"""The MHD cases can fail: against hubs broken on purpose, the case that checks the broken behaviour fails at the
step that checks it, with a message saying what a conformant hub does, while a case about something else still
passes on the same hub.

Most breakages are in the hub's FHIR face (:mod:`rsb_connector.hub.fhir`), patched for one test on the session hub:

- a bad patient link answered 404 (as this hub once did) instead of 400;
- a bundle without ``Bundle.meta.profile`` accepted as Comprehensive;
- an ``identifier`` search that forgets the ``status`` and ``patient`` given with it;
- an unknown search parameter refused instead of ignored;
- superseded documents served by ITI-68, and ``Accept`` ignored.

One is in the registry, so it gets a hub of its own: :class:`KeepsReplacedCurrent` registers ``relatesTo replaces``
(RPLC) without superseding the original.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from rsb_connector.hub import fhir as hub_fhir
from rsb_connector.hub.registry import Registry
from rsb_connector.metadata.model import DocumentEntry
from rsb_connector.mhd.bundle import ParsedBundle

from .conftest import Run, fails_at, passes


class KeepsReplacedCurrent(Registry):
    """Broken: registers RPLC associations but leaves the replaced document Approved (current)."""

    def _check_against_registry(self, *args: Any, **kwargs: Any) -> Any:
        problems = super()._check_against_registry(*args, **kwargs)
        plan = args[3] if len(args) > 3 else kwargs["plan"]
        plan.deprecate.clear()
        return problems


def test_a_hub_answering_404_for_a_bad_patient_link_fails_mhd_008(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_fhir, "_provide_status", lambda status: status)  # XDSUnknownPatientId -> 404
    fails_at(run("MHD-008"), 1, "the hub answers 400", "HTTP 404", "XDSUnknownPatientId")
    passes(run("MHD-009"))


def test_a_hub_accepting_a_bundle_without_profile_fails_mhd_007(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    original = hub_fhir.parse_provide_bundle

    def lenient(*args: Any, **kwargs: Any) -> ParsedBundle:
        parsed = original(*args, **kwargs)
        kept = [p for p in parsed.problems if p.path != "Bundle.meta.profile"]
        return dataclasses.replace(parsed, problems=kept)

    monkeypatch.setattr(hub_fhir, "parse_provide_bundle", lenient)
    fails_at(run("MHD-007"), 1, "the hub answers 400", "HTTP 200", "transaction-response")
    passes(run("MHD-001"))


def test_a_hub_letting_an_identifier_override_the_other_parameters_fails_mhd_018(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unfiltered(self: Any, entries: Sequence[DocumentEntry], params: Any) -> list[DocumentEntry]:
        return list(entries)

    monkeypatch.setattr(hub_fhir._FhirApi, "_narrow", unfiltered)
    fails_at(run("MHD-018"), 4, "no match for status=superseded")
    passes(run("MHD-015"))


def test_a_hub_refusing_unknown_search_parameters_fails_mhd_019(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_fhir, "parse_search", functools.partial(hub_fhir.parse_search, strict=True))
    fails_at(run("MHD-019"), 2, "the search answers 200 OK", "HTTP 400", "x-rsb-unknown")
    passes(run("MHD-017"))


def test_a_hub_serving_superseded_documents_fails_mhd_022(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Registry.retrieve_entry

    def serves_all(self: Registry, entry_uuid: str, *, caller: Any = None, transaction: str = "ITI-68") -> Any:
        """ITI-68 that delivers a Deprecated document as if it were current."""
        with self.store.read() as r:
            stored = r.entries(entry_uuids=[entry_uuid])
        if not stored:
            return original(self, entry_uuid, caller=caller, transaction=transaction)
        entry = stored[0].entry
        uid = entry.unique_id or entry.entry_uuid
        repository = entry.repository_unique_id or self.repository_unique_id
        return self._deliver([(repository, uid)], {uid: stored[0]}, caller, transaction, current=False)

    monkeypatch.setattr(Registry, "retrieve_entry", serves_all)
    fails_at(run("MHD-022"), 2, "410 Gone", "HTTP 200")
    passes(run("MHD-021"))


def test_a_hub_ignoring_accept_fails_mhd_022(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_fhir, "choose_representation", lambda accept, mime_type: "document")
    fails_at(run("MHD-022"), 3, "406 Not Acceptable", "HTTP 200")
    passes(run("MHD-021"))


def test_a_hub_keeping_replaced_documents_current_fails_the_replace_cases(
    broken_hub: Callable[..., Run],
) -> None:
    run = broken_hub(KeepsReplacedCurrent.__name__, registry=KeepsReplacedCurrent)
    fails_at(run("MHD-004"), 3, "status superseded", "got 'current'")
    fails_at(run("MHD-015"), 1, "only the replacement")
    passes(run("MHD-005"))  # an addendum supersedes nothing
    passes(run("MHD-006"))
