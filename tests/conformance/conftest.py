"""Run conformance cases against the in-process mock hub (the session's ``rsb_hub``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rsb_connector.conformance import CaseResult, Environment, Outcome, load_catalogue, run_case
from rsb_connector.conformance.cases import implementations
from rsb_connector.hub import server
from rsb_connector.hub.audit import AuditTrail
from rsb_connector.hub.registry import Registry
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import SyncASGITransport

BASE = "http://rsb-hub.test"


def environment(hub: Hub, pki: PkiDescription, identity: Callable[[str], Identity], work: Path) -> Environment:
    """The suite's environment on ``hub``: author = the sample GP, every other sample identity by name."""
    identities = {i.id: identity(i.id) for i in pki.identities}
    identities["author"] = identities["gp"]
    return Environment(
        hub_url=BASE,
        identities=identities,
        trust=pki.trust_store(),
        transport=lambda: SyncASGITransport(hub.app),
        work_dir=work,
        seeded=True,
    )


@pytest.fixture
def conformance_env(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity], tmp_path: Path
) -> Environment:
    return environment(rsb_hub, rsb_pki, rsb_identity, tmp_path)


@pytest.fixture
def run(conformance_env: Environment) -> Callable[[str], CaseResult]:
    """``run("XDS-001")``: the case's result against the session hub."""
    catalogue = load_catalogue()
    registry = implementations()

    def go(case_id: str) -> CaseResult:
        return run_case(catalogue.get(case_id), registry[case_id], conformance_env)

    return go


# ---------------------------------------------------------------------------------------------- broken hubs

Run = Callable[[str], CaseResult]


@pytest.fixture
def broken_hub(
    tmp_path: Path, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> Iterator[Callable[..., Run]]:
    """``broken_hub("name", registry=RegistryDouble, audit=TrailDouble, **build_hub_options)`` → ``run(case_id)``
    against a real hub (seeded, the session's PKI) built with those doubles and options: a hub wrong on purpose, to
    prove that the cases checking what it gets wrong can fail."""
    catalogue = load_catalogue()
    registry_of = implementations()
    hubs: list[Hub] = []

    def build(
        name: str, *, registry: type[Registry] | None = None, audit: type[AuditTrail] | None = None, **options: Any
    ) -> Run:
        with pytest.MonkeyPatch.context() as patch:
            if registry is not None:
                patch.setattr(server, "Registry", registry)  # build_hub makes its registry of this class
            if audit is not None:
                patch.setattr(server, "AuditTrail", audit)  # and its audit trail of this one
            hub = build_hub(tmp_path / name, seed=True, pki=rsb_pki, **options)
        hubs.append(hub)
        assert registry is None or type(hub.registry) is registry
        env = environment(hub, rsb_pki, rsb_identity, tmp_path)
        return lambda case_id: run_case(catalogue.get(case_id), registry_of[case_id], env)

    yield build
    for hub in hubs:
        hub.close()


def fails_at(result: CaseResult, step: int, *expected: str) -> None:
    """The case failed (a check, not an error) at ``step``, the steps before passed, those after did not run, and
    its message names what was expected (and what came)."""
    assert result.outcome is Outcome.FAILED, f"{result.id} {result.outcome.value}: {result.message}"
    failed = result.failed_step
    assert failed is not None and failed.number == step, f"{result.id} failed at {failed}: {result.message}"
    assert failed.outcome is Outcome.FAILED
    for text in expected:
        assert text in result.message, result.message
    assert all(s.outcome is Outcome.PASSED for s in result.steps[: step - 1])
    assert all(s.outcome is Outcome.SKIPPED for s in result.steps[step:])


def passes(result: CaseResult) -> None:
    """The case passed."""
    assert result.outcome is Outcome.PASSED, f"{result.id} {result.outcome.value}: {result.message}"
