"""Run conformance cases against the in-process mock hub (the session's ``rsb_hub``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rsb_connector.conformance import CaseResult, Environment, load_catalogue, run_case
from rsb_connector.conformance.cases import implementations
from rsb_connector.hub.server import Hub
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
