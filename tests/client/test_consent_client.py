"""The SDK's consent side: ``vault.consent`` / ``links`` / ``exclusions`` / ``check_access`` (sync and async),
``AccessDenied`` from the hub's policy refusals, and the ``rsb consent|links|exclusions|audit|hub audit`` commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from rsb_connector import AccessDenied, HubRefused, Identity, Problem
from rsb_connector.cli import main
from rsb_connector.client import AsyncVaultClient, VaultClient
from rsb_connector.hub.server import Hub
from rsb_connector.policy import Rule
from rsb_connector.security.pki import PkiDescription
from rsb_connector.testing import LiveHub, SyncASGITransport

LUCAS = "87041213797"
AMINA = "92021415810"
MARC = "59031812513"


def _sync(hub: Hub, pki: PkiDescription, identity: Identity) -> VaultClient:
    return VaultClient(
        "http://rsb-hub.test", transport=SyncASGITransport(hub.app), identity=identity, trust=pki.trust_store()
    )


# ---------------------------------------------------------------------------------------------- AccessDenied


def test_access_denied_is_read_from_the_policy_problem() -> None:
    problem = Problem(
        "LocalPolicyRestrictionError",
        "DocumentEntry[x]: refused by the therapeutic-link rule: no valid therapeutic link between NIHII 1 and this "
        "patient. Fix: declare a therapeutic link with proof eidreading",
        "Policy[THERAPEUTIC_LINK]",
    )
    denied = AccessDenied.from_problems([problem], "refused")
    assert denied is not None
    assert isinstance(denied, HubRefused)
    assert denied.rule == Rule.THERAPEUTIC_LINK.value
    assert denied.reason.startswith("no valid therapeutic link")
    assert denied.fix == "declare a therapeutic link with proof eidreading"
    assert AccessDenied.from_problems([Problem("XDSRegistryError", "boom")]) is None
    bare = AccessDenied.from_problems([Problem("LocalPolicyRestrictionError", "no", "Policy[ACCESS_MATRIX]")])
    assert bare is not None
    assert bare.rule == "access-matrix"
    assert bare.fix is None


def test_publish_without_link_raises_access_denied_naming_rule_and_fix(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    with _sync(rsb_hub, rsb_pki, rsb_identity("specialist")) as specialist:  # their link with Lucas expired
        decision = specialist.check_access(LUCAS, "publish", document_class="labresult")
        assert not decision.allowed
        assert decision.rule is Rule.THERAPEUTIC_LINK
        with pytest.raises(AccessDenied) as caught:
            specialist.publish(b"Hb 14 g/dl", patient=LUCAS, document_type="labresult", mime_type="text/plain")
    assert caught.value.rule == "therapeutic-link"
    assert "therapeutic link" in caught.value.reason
    assert caught.value.fix is not None
    assert "eidreading" in caught.value.fix


def test_break_the_glass_precheck(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    with _sync(rsb_hub, rsb_pki, rsb_identity("specialist")) as specialist:
        glass = specialist.check_access(
            LUCAS, "read", document_class="labresult", break_the_glass="Patient unconscious at the ER"
        )
        short = specialist.check_access(LUCAS, "read", document_class="labresult", break_the_glass="help")
    assert glass.allowed
    assert glass.break_the_glass
    assert not short.allowed
    assert short.rule is Rule.BREAK_THE_GLASS_REASON


# ---------------------------------------------------------------------------------------------- async twin


async def test_async_client_manages_consent(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    transport = httpx.ASGITransport(app=rsb_hub.app)
    async with AsyncVaultClient(
        "http://rsb-hub.test", transport=transport, identity=rsb_identity("pharmacist"), trust=rsb_pki.trust_store()
    ) as pharmacist:
        assert not (await pharmacist.consent.status(MARC)).active
        granted = await pharmacist.consent.grant(MARC)
        assert granted.active
        link = await pharmacist.links.declare(MARC, type="carepath")
        assert [x.id for x in await pharmacist.links.list(MARC)] == [link.id]
        decision = await pharmacist.check_access(MARC, "read", document_class="medicationscheme")
        assert decision.allowed
        assert await pharmacist.exclusions.list(MARC) == []
        revoked = await pharmacist.links.revoke(MARC)
        assert [x.active for x in revoked] == [False]
        await pharmacist.consent.revoke(MARC)
        with pytest.raises(AccessDenied):
            await pharmacist.exclusions.add(MARC, "12345625004")


# ---------------------------------------------------------------------------------------------- CLI


def _cli(live: LiveHub, identity: str, *args: str) -> list[str]:
    pki = live.pki
    spec = next(i for i in pki.identities if i.id == identity)
    return [
        *args,
        "--hub",
        live.url,
        "--identity",
        str(pki.path(spec.file)),
        "--password",
        spec.password,
        "--ca",
        str(pki.ca_cert),
    ]


def test_cli_consent_links_exclusions_and_audit(
    rsb_live_hub: LiveHub, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    live = rsb_live_hub
    assert main(_cli(live, "patient2", "consent", "status", "--patient", AMINA, "--json")) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["active"] is True
    assert main(_cli(live, "nurse", "consent", "grant", "--patient", MARC)) == 1
    assert "physicians and pharmacists" in capsys.readouterr().err
    assert main(_cli(live, "gp", "links", "list", "--patient", AMINA)) == 0
    assert "gmd" in capsys.readouterr().out
    assert main(_cli(live, "patient2", "exclusions", "add", "--patient", AMINA, "--professional", "43120755401")) == 0
    assert main(_cli(live, "patient2", "exclusions", "list", "--patient", AMINA, "--json")) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [e["professional_nihii"] for e in listed] == ["43120755401"]
    assert (
        main(_cli(live, "patient2", "exclusions", "remove", "--patient", AMINA, "--professional", "43120755401")) == 0
    )
    assert main(_cli(live, "patient2", "audit", "--patient", AMINA)) == 0
    trail = capsys.readouterr().out
    assert "exclusion" in trail
    assert AMINA not in trail
    assert main(_cli(live, "gp", "audit", "--patient", AMINA)) == 1
    assert main(["consent", "status", "--patient", AMINA, "--hub", live.url]) == 2
    assert main(["consent", "status", "--patient", "123", "--hub", live.url, "--identity", "nope.p12"]) == 2


def test_cli_hub_audit_reads_the_store_masked(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity], capsys: pytest.CaptureFixture[str]
) -> None:
    with _sync(rsb_hub, rsb_pki, rsb_identity("gp")) as gp:
        gp.find(LUCAS)
    assert main(["hub", "audit", "--data-dir", str(rsb_hub.data_dir), "--patient", LUCAS, "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert any(e["action"] == "find" and e["who_nihii"] == "12345625004" for e in events)
    assert LUCAS not in json.dumps(events)
    assert main(["hub", "audit", "--data-dir", str(rsb_hub.data_dir), "--limit", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["hub", "audit", "--data-dir", str(rsb_hub.data_dir / "missing")]) == 2


# ---------------------------------------------------------------------------------------------- pre-check


def test_publish_precheck_refuses_before_any_document_is_sent(
    rsb_hub: Hub,
    rsb_pki: PkiDescription,
    rsb_identity: Callable[[str], Identity],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        _sync(rsb_hub, rsb_pki, rsb_identity("specialist")) as specialist,
        caplog.at_level("INFO", logger="rsb_connector.hub"),
        pytest.raises(AccessDenied) as caught,
    ):
        specialist.publish(b"Hb 14 g/dl", patient=LUCAS, document_type="labresult", mime_type="text/plain")
    assert caught.value.rule == "therapeutic-link"
    assert "hub's policy would refuse this publish" in str(caught.value)
    hub_lines = [r.getMessage() for r in caplog.records if r.name == "rsb_connector.hub"]
    assert not any("ITI-41" in line for line in hub_lines)  # the document never left the client


def test_publish_without_precheck_gets_the_same_refusal_from_the_hub(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    with (
        VaultClient(
            "http://rsb-hub.test",
            transport=SyncASGITransport(rsb_hub.app),
            identity=rsb_identity("specialist"),
            trust=rsb_pki.trust_store(),
            precheck=False,
        ) as specialist,
        pytest.raises(AccessDenied) as caught,
    ):
        specialist.publish(b"Hb 14 g/dl", patient=LUCAS, document_type="labresult", mime_type="text/plain")
    assert caught.value.rule == "therapeutic-link"
    assert "hub's policy would refuse" not in str(caught.value)


def test_retrieve_after_the_patient_revoked_consent_explains_why(
    rsb_hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    with _sync(rsb_hub, rsb_pki, rsb_identity("gp")) as gp, _sync(rsb_hub, rsb_pki, rsb_identity("patient1")) as lucas:
        gp.publish(b"BP 128/82", patient=LUCAS, document_type="contactreport", mime_type="text/plain")
        entry = gp.find(LUCAS, class_codes=["contactreport"])[0]
        lucas.consent.revoke(LUCAS)
        with pytest.raises(AccessDenied) as caught:
            gp.retrieve(entry)
    assert caught.value.rule == "consent"
    assert caught.value.fix
