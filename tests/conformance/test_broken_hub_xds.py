"""The XDS.b cases can fail: against hubs whose registry is broken on purpose, the cases that check the broken
behaviour fail at the step that checks it, with a message saying what a conformant hub does, while a case about
something else still passes on the same hub.

Each broken hub is a real hub (``build_hub`` with the session's PKI, seeded, consent enforced) whose
:class:`~rsb_connector.hub.registry.Registry` is replaced by a test double that gets one thing wrong:

- :class:`IgnoresSuppliedDigests` takes no notice of the hash and size a source supplies (it computes its own), so
  a document whose signed hash or size does not match the bytes received is stored anyway;
- :class:`StoresWhatItCan` is not all or nothing: it answers Failure for a submission with a bad entry but stores
  the entries that pass on their own;
- :class:`KeepsReplacedApproved` registers RPLC / XFRM_RPLC associations without deprecating the replaced document.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from rsb_connector.hub.registry import Caller, IncomingDocument, Registry
from rsb_connector.hub.registry import Outcome as RegistryOutcome
from rsb_connector.metadata.builder import new_submission
from rsb_connector.metadata.model import Submission

from .conftest import Run, fails_at, passes


class IgnoresSuppliedDigests(Registry):
    """Broken: drops the hash and size the source supplied before checking, so a mismatch goes unnoticed."""

    def provide_and_register(
        self, submission: Submission, documents: Mapping[str, IncomingDocument], *, caller: Caller | None = None
    ) -> RegistryOutcome:
        blind = copy.deepcopy(submission)
        for entry in blind.entries:
            entry.hash = None
            entry.size = None
        return super().provide_and_register(blind, documents, caller=caller)


class StoresWhatItCan(Registry):
    """Broken: not all or nothing. A refused submission of several documents is answered Failure, but each of its
    entries that passes on its own is stored anyway (in a submission of its own)."""

    def provide_and_register(
        self, submission: Submission, documents: Mapping[str, IncomingDocument], *, caller: Caller | None = None
    ) -> RegistryOutcome:
        # The registry removes spooled uploads once it has answered: keep the bytes for the second go.
        kept = {
            doc_id: doc.data if doc.data is not None else doc.path.read_bytes() if doc.path is not None else b""
            for doc_id, doc in documents.items()
        }
        outcome = super().provide_and_register(submission, documents, caller=caller)
        if not outcome.ok and len(submission.entries) > 1:
            for entry in submission.entries:
                if entry.entry_uuid in kept:
                    alone = new_submission([copy.deepcopy(entry)], source_id=submission.submission_set.source_id or "")
                    incoming = IncomingDocument.from_bytes(kept[entry.entry_uuid])
                    super().provide_and_register(alone, {entry.entry_uuid: incoming}, caller=caller)
        return outcome


class KeepsReplacedApproved(Registry):
    """Broken: registers RPLC and XFRM_RPLC associations but leaves the replaced document Approved."""

    def _check_against_registry(self, *args: Any, **kwargs: Any) -> Any:
        problems = super()._check_against_registry(*args, **kwargs)
        plan = args[3] if len(args) > 3 else kwargs["plan"]
        plan.deprecate.clear()
        return problems


def test_a_hub_ignoring_supplied_hash_and_size_fails_the_digest_cases(
    broken_hub: Callable[..., Run],
) -> None:
    run = broken_hub(IgnoresSuppliedDigests.__name__, registry=IgnoresSuppliedDigests)
    fails_at(
        run("XDS-012"),
        1,
        "status urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure",
        "XDSRepositoryMetadataError",
        "got 'Success'",
    )
    fails_at(run("XDS-013"), 1, "XDSRepositoryMetadataError", "got 'Success'")
    passes(run("XDS-011"))  # correct digests are still accepted
    passes(run("XDS-024"))


def test_a_hub_storing_part_of_a_refused_submission_fails_all_or_nothing(
    broken_hub: Callable[..., Run],
) -> None:
    run = broken_hub(StoresWhatItCan.__name__, registry=StoresWhatItCan)
    result = run("XDS-008")
    fails_at(result, 2, "FindDocuments (Approved): no entry")
    assert result.steps[0].message.startswith("XDSRegistryMetadataError")  # it did answer Failure at step 1
    fails_at(run("XDS-019"), 2, "nothing registered under the uniqueId")
    passes(run("XDS-002"))
    passes(run("XDS-036"))


def test_a_hub_not_deprecating_replaced_documents_fails_the_replacement_cases(
    broken_hub: Callable[..., Run],
) -> None:
    run = broken_hub(KeepsReplacedApproved.__name__, registry=KeepsReplacedApproved)
    fails_at(run("XDS-003"), 3, "the original is Deprecated", "got 'Approved'")
    fails_at(run("XDS-006"), 3, "the original is Deprecated", "got 'Approved'")
    fails_at(run("XDS-004"), 4, "XDSRegistryDeprecatedDocumentError")  # B was never deprecated: APND accepted
    passes(run("XDS-007"))  # deprecation by ITI-57 is another path
    passes(run("XDS-001"))
