"""Connector validation: the hub grades every message it receives and serves the verdicts at /conformance/report.

Each test starts a new session (``DELETE /conformance/report``) on a hub shared by the module, sends what a
connector would send — the SDK client, the raw XDS peer of :mod:`rsb_connector.conformance.wire`, hand-made FHIR
requests — and reads the report back. The schema check runs with the official XSDs of
``../shared/reference/ihe-xds-schemas`` (or ``$RSB_XDS_SCHEMAS``).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from rsb_connector.client import VaultClient
from rsb_connector.conformance import wire
from rsb_connector.errors import ProtocolError
from rsb_connector.hub.connector_validation import NOT_RUN_NOTE, normalise_since
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.metadata.builder import new_document, new_submission
from rsb_connector.metadata.model import Submission
from rsb_connector.mhd import build_provide_bundle
from rsb_connector.mhd.mapping import as_json
from rsb_connector.query import FindDocuments
from rsb_connector.security.identity import Identity
from rsb_connector.security.jwt import CLIENT_ASSERTION_TYPE, make_client_assertion
from rsb_connector.security.pki import SAMPLE_IDENTITIES, DevelopmentCa, PkiDescription
from rsb_connector.security.wssec import sign_envelope
from rsb_connector.testing import SyncASGITransport
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti18, iti41, soap
from rsb_connector.xds.mtom import MtomWriter, OutgoingAttachment
from rsb_connector.xds.parts import Inline, XopRef

BASE = "http://rsb-hub.test"
PATIENT = SEED_PATIENTS[0].ssin
FHIR_JSON = "application/fhir+json"
SCHEMA_DIR = Path(
    os.environ.get("RSB_XDS_SCHEMAS")
    or Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ihe-xds-schemas"
)


@pytest.fixture(scope="module")
def schemas() -> Path:
    """The official XDS.b / ebRS schemas. Fails loudly when absent: the schema check is part of what is tested."""
    if not (SCHEMA_DIR / "iti" / "schema" / "IHE" / "XDS.b_DocumentRepository.xsd").is_file():
        pytest.fail(f"the official XDS schemas are missing: expected them in {SCHEMA_DIR} (or set RSB_XDS_SCHEMAS)")
    return SCHEMA_DIR


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, rsb_pki: PkiDescription, schemas: Path) -> Iterator[Hub]:
    built = build_hub(
        tmp_path_factory.mktemp("cv-hub"), seed=True, pki=rsb_pki, connector_validation=True, schemas=schemas
    )
    yield built
    built.close()


@dataclass
class Env:
    """The module's hub and the ways a connector talks to it."""

    hub: Hub
    http: httpx.Client
    pki: PkiDescription
    identity: Callable[[str], Identity]

    def report(self, **params: str) -> dict[str, Any]:
        response = self.http.get("/conformance/report", params=params)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def messages(self, transaction: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.report()["messages"]
        return [m for m in found if transaction is None or m["transaction"] == transaction]

    def only(self, transaction: str) -> dict[str, Any]:
        found = self.messages(transaction)
        assert len(found) == 1, [(m["transaction"], m["path"]) for m in self.messages()]
        return found[0]

    def peer(self, name: str | None = "gp") -> wire.Peer:
        return wire.Peer(
            base_url=BASE,
            transport=SyncASGITransport(self.hub.app),
            identity=self.identity(name) if name else None,
            trust=self.pki.trust_store(),
        )

    def vault(self, name: str = "gp", **kwargs: Any) -> VaultClient:
        return VaultClient(
            BASE,
            transport=SyncASGITransport(self.hub.app),
            identity=self.identity(name),
            trust=self.pki.trust_store(),
            precheck=False,
            **kwargs,
        )

    def bearer(self, name: str = "gp") -> dict[str, str]:
        assertion = make_client_assertion(self.identity(name), token_url=f"{BASE}/oauth2/token")
        answer = self.http.post(
            "/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        return {"authorization": f"Bearer {token}", "accept": FHIR_JSON, "content-type": FHIR_JSON}

    def counts(self) -> tuple[int, int, int]:
        with self.hub.store.read() as r:
            return r.count("entries"), r.count("submission_sets"), r.count("associations")


@pytest.fixture
def env(hub: Hub, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]) -> Iterator[Env]:
    with httpx.Client(base_url=BASE, transport=SyncASGITransport(hub.app)) as http:
        assert http.delete("/conformance/report").status_code == 200  # a new session per test
        yield Env(hub, http, rsb_pki, rsb_identity)


def submission(content: bytes = b"consultation report\r\n", **kw: Any) -> tuple[Submission, bytes]:
    kw.setdefault("mime_type", "text/plain")
    entry = new_document(content, author=wire.GP_AUTHOR, patient=PATIENT, document_type="contactreport", **kw)
    return new_submission([entry]), content


def statuses(message: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in message["checks"].items()}


def failures(message: dict[str, Any], family: str) -> list[tuple[str, str]]:
    return [(f["code"], f["path"]) for f in message["checks"][family]["failures"]]


# ================================================================================================ XDS


def test_a_good_signed_iti41_from_the_sdk_passes_every_check(env: Env) -> None:
    content = b"a consultation report from the SDK\n"
    with env.vault() as vault:
        receipt = vault.publish(
            content, patient=PATIENT, document_type="contactreport", mime_type="text/plain", author=wire.GP_AUTHOR
        )
    message = env.only("ITI-41")
    assert message["verdict"] == "passed", json.dumps(message["checks"], indent=1)
    assert statuses(message) == {
        "transport": "passed",
        "schema": "passed",
        "security": "passed",
        "metadata": "passed",
        "mhd-profile": "not-applicable",
    }
    assert message["id"] == f"MSG-{message['seq']:06d}"
    assert message["path"] == "/xds/repository" and message["transport"] == "soap"
    assert message["caller"] == "nihii:12*******04 (persphysician)"
    assert message["answer"] == {"http_status": 200, "status": "Success", "errors": [], "message": ""}
    assert str(SCHEMA_DIR.resolve()) in message["checks"]["schema"]["detail"]
    excerpt = message["excerpt"]
    assert receipt.document.unique_id in excerpt  # the metadata is kept...
    assert content.decode().strip() not in excerpt  # ...the document is not: only its size
    assert f"{len(content)} bytes, not kept" in excerpt
    assert PATIENT not in excerpt and f"{PATIENT[:2]}*******{PATIENT[-2:]}" in excerpt
    assert "Timestamp, BinarySecurityToken, Signature: graded by the security check, not kept" in excerpt


def test_a_missing_class_code_fails_metadata_at_its_path_and_nothing_is_stored(env: Env) -> None:
    sub, content = submission()
    entry = sub.entries[0]
    entry.class_code = None
    before = env.counts()
    with env.peer() as peer:
        result = wire.provide(peer, sub, {entry.entry_uuid: content})
    assert not result.ok
    assert env.counts() == before  # the hub's all-or-nothing is intact
    message = env.only("ITI-41")
    assert message["verdict"] == "failed"
    assert statuses(message)["security"] == "passed"  # signed by the GP
    assert statuses(message)["schema"] == "passed"  # well-formed ebRIM: the rules, not the XSD, catch it
    assert ("XDSRegistryMetadataError", f"DocumentEntry[{entry.entry_uuid}].classCode") in failures(message, "metadata")
    assert message["answer"]["status"] == "Failure"
    assert "XDSRegistryMetadataError" in message["answer"]["errors"]


def test_an_unsigned_message_fails_security_and_is_still_graded(env: Env) -> None:
    sub, content = submission()
    sub.entries[0].class_code = None
    before = env.counts()
    with env.peer(None) as peer, pytest.raises(ProtocolError, match="not an ITI-41 response"):  # a SOAP Fault
        wire.provide(peer, sub, {sub.entries[0].entry_uuid: content})
    assert env.counts() == before
    message = env.only("ITI-41")
    assert message["verdict"] == "failed"
    assert message["caller"] == "unsigned"
    assert failures(message, "security") == [("wsse:InvalidSecurity", "Header/wsse:Security")]
    assert message["answer"]["status"] == "Fault" and message["answer"]["http_status"] == 400
    # refused before processing, yet graded: the local ITI-41 rules ran on the message as received
    metadata = message["checks"]["metadata"]
    assert metadata["status"] == "failed" and "as received" in metadata["detail"]
    assert ("XDSRegistryMetadataError", f"DocumentEntry[{sub.entries[0].entry_uuid}].classCode") in failures(
        message, "metadata"
    )


def test_a_signature_from_an_untrusted_ca_is_an_invalid_signature(env: Env) -> None:
    rogue = DevelopmentCa.create(name="Rogue CA", key_size=2048)
    cert, key = rogue.issue_identity(SAMPLE_IDENTITIES[0])
    impostor = Identity(cert, key, [rogue.certificate], source="impostor")
    sub, content = submission()
    envelope = soap.build_envelope(
        iti41.build_request(sub, {sub.entries[0].entry_uuid: XopRef("doc0@rsb.test")}), action=c.ACTION_ITI41
    )

    root = soap.serialize(sign_envelope(envelope, impostor))
    writer = MtomWriter(root, [OutgoingAttachment("doc0@rsb.test", content, "text/plain")], action=c.ACTION_ITI41)
    response = env.http.post(
        "/xds/repository", content=writer.to_bytes(), headers={"content-type": writer.content_type}
    )
    assert response.status_code == 400
    message = env.only("ITI-41")
    assert message["caller"] == "invalid signature"
    assert failures(message, "security") == [("wsse:InvalidSecurityToken", "Header/wsse:Security")]
    assert statuses(message)["metadata"] == "passed"  # a good message, badly signed


def test_a_schema_invalid_message_fails_the_schema_check_with_the_xsd_message(env: Env) -> None:
    payload = iti18.build_request(FindDocuments(patient_id=f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"))
    response_option = payload.find(f"{{{c.QUERY}}}ResponseOption")
    assert response_option is not None
    response_option.tag = "{urn:example:wrong}ResponseOption"  # the right name in the wrong namespace
    with env.peer() as peer:
        wire.post(peer, "/xds/registry", payload, c.ACTION_ITI18, mtom=False)
    message = env.only("ITI-18")
    assert message["verdict"] == "failed"
    schema = message["checks"]["schema"]
    assert schema["status"] == "failed"
    assert any("{urn:example:wrong}ResponseOption" in f["message"] and "not expected" in f["message"]
               for f in schema["failures"]), schema  # fmt: skip
    assert statuses(message)["security"] == "passed"


def test_a_good_stored_query_and_retrieve_pass(env: Env) -> None:
    with env.vault() as vault:
        receipt = vault.publish(
            b"to be found\n", patient=PATIENT, document_type="contactreport", mime_type="text/plain",
            author=wire.GP_AUTHOR,
        )  # fmt: skip
        assert receipt.document.unique_id in {e.unique_id for e in vault.find(PATIENT)}
        assert vault.retrieve(receipt.document.unique_id).content == b"to be found\n"
    messages = env.messages()
    assert {m["transaction"] for m in messages} == {"ITI-41", "ITI-18", "ITI-43"}  # retrieve looks the entry up
    for message in messages:
        assert message["verdict"] == "passed", (message["transaction"], message["checks"])
        assert statuses(message)["schema"] == "passed"


def test_a_stored_query_without_its_required_parameter_fails_metadata(env: Env) -> None:
    payload = iti18.build_request(FindDocuments(patient_id=f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"))
    for slot in payload.iter(f"{{{c.RIM}}}Slot"):
        if slot.get("name") == "$XDSDocumentEntryPatientId":
            parent = slot.getparent()
            assert parent is not None
            parent.remove(slot)
    with env.peer() as peer:
        wire.post(peer, "/xds/registry", payload, c.ACTION_ITI18, mtom=False)
    message = env.only("ITI-18")
    codes = [code for code, _ in failures(message, "metadata")]
    assert "XDSStoredQueryMissingParam" in codes
    assert statuses(message)["schema"] == "passed"


def test_a_wrong_action_fails_transport(env: Env) -> None:
    sub, content = submission()
    payload = iti41.build_request(sub, {sub.entries[0].entry_uuid: XopRef("doc0@rsb.test")})
    with env.peer() as peer:
        exchange = wire.post(peer, "/xds/registry", payload, c.ACTION_ITI41, mtom=True,
                             attachments=[OutgoingAttachment("doc0@rsb.test", content, "text/plain")])  # fmt: skip
    assert exchange.http_status == 400
    message = env.only("ITI-41")
    assert failures(message, "transport") == [("wsa:ActionNotSupported", "Envelope")]
    assert message["answer"]["status"] == "Fault"


def test_an_unreadable_message_is_recorded(env: Env) -> None:
    response = env.http.post(
        "/xds/repository", content=b"<not-xml " + PATIENT.encode(), headers={"content-type": soap.SOAP_CONTENT_TYPE}
    )
    assert response.status_code == 400
    message = env.only("SOAP")
    assert statuses(message)["transport"] == "failed"
    assert statuses(message)["schema"] == "not-run"
    assert PATIENT not in message["excerpt"]


# ================================================================================================ FHIR


def test_an_mhd_bundle_with_a_bad_profile_fails_mhd_profile(env: Env) -> None:
    sub, content = submission()
    bundle = as_json(build_provide_bundle(sub, {sub.entries[0].entry_uuid: content}))
    bundle["meta"]["profile"] = ["https://example.org/not-an-mhd-profile"]
    before = env.counts()
    response = env.http.post("/fhir", content=json.dumps(bundle).encode(), headers=env.bearer())
    assert response.status_code >= 400
    assert env.counts() == before
    message = env.only("ITI-65")
    assert message["verdict"] == "failed"
    assert ("XDSRegistryMetadataError", "Bundle.meta.profile") in failures(message, "mhd-profile")
    assert statuses(message) == {
        "transport": "passed",
        "schema": "not-applicable",
        "security": "passed",
        "metadata": "not-run",
        "mhd-profile": "failed",
    }
    assert message["caller"] == "nihii:12*******04 (persphysician)"
    assert "[document content:" in message["excerpt"] and content.decode().strip() not in message["excerpt"]
    assert "Bearer [token]" in message["excerpt"]
    token = env.only("token")
    assert token["verdict"] == "passed" and token["transport"] == "oauth"
    assert "[signed assertion]" in token["excerpt"]


def test_a_good_mhd_bundle_passes_and_its_metadata_is_graded(env: Env) -> None:
    sub, content = submission()
    bundle = as_json(build_provide_bundle(sub, {sub.entries[0].entry_uuid: content}))
    response = env.http.post("/fhir", content=json.dumps(bundle).encode(), headers=env.bearer())
    assert response.status_code == 200, response.text
    message = env.only("ITI-65")
    assert statuses(message) == {
        "transport": "passed",
        "schema": "not-applicable",
        "security": "passed",
        "metadata": "passed",
        "mhd-profile": "passed",
    }, message["checks"]


def test_a_bundle_the_registry_refuses_fails_metadata_at_the_fhir_path(env: Env) -> None:
    sub, content = submission()
    bundle = as_json(build_provide_bundle(sub, {sub.entries[0].entry_uuid: content}))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "DocumentReference":
            entry["resource"]["content"][0]["attachment"]["size"] = len(content) + 1
    response = env.http.post("/fhir", content=json.dumps(bundle).encode(), headers=env.bearer())
    assert response.status_code >= 400
    message = env.only("ITI-65")
    assert statuses(message)["mhd-profile"] == "passed"
    assert statuses(message)["metadata"] == "failed"
    codes = failures(message, "metadata")
    assert any(code == "XDSRepositoryMetadataError" and path.startswith("Bundle.entry[") for code, path in codes)


def test_fhir_without_a_token_or_with_a_bad_one_fails_security(env: Env) -> None:
    assert env.http.get("/fhir/DocumentReference", params={"patient": f"Patient/{PATIENT}"}).status_code == 401
    env.http.get("/fhir/DocumentReference", params={"patient": "x"}, headers={"authorization": "Bearer not.a.jwt"})
    first, second = env.messages("ITI-67")
    assert first["caller"] == "no token" and second["caller"] == "invalid token"
    assert statuses(first)["security"] == statuses(second)["security"] == "failed"
    assert statuses(first)["mhd-profile"] == "not-run"
    assert PATIENT not in first["path"] + first["excerpt"]
    assert "Bearer [token]" in second["excerpt"]


def test_bad_search_parameters_fail_mhd_profile(env: Env) -> None:
    response = env.http.get("/fhir/DocumentReference", params={"patient": f"Patient/{PATIENT}"}, headers=env.bearer())
    assert response.status_code == 400  # status is required with patient
    message = env.only("ITI-67")
    assert statuses(message)["security"] == "passed"
    assert statuses(message)["mhd-profile"] == "failed"
    assert message["checks"]["mhd-profile"]["failures"]


# ================================================================================================ the report


def test_since_filters_and_delete_clears(env: Env) -> None:
    with env.peer() as peer:
        wire.query(peer, FindDocuments(patient_id=f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"))
        time.sleep(0.01)
        middle = datetime.now(UTC)
        time.sleep(0.01)
        wire.query(peer, FindDocuments(patient_id=f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"))
    everything = env.report()
    assert everything["summary"] == {"messages": 2, "passed": 2, "failed": 0}
    later = env.report(since=middle.isoformat())
    assert [m["seq"] for m in later["messages"]] == [everything["messages"][1]["seq"]]
    naive = (middle + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert env.report(since=naive)["messages"] == []  # a naive time is UTC
    unencoded = env.http.get("/conformance/report?since=" + (middle + timedelta(hours=1)).isoformat())
    assert unencoded.status_code == 200 and unencoded.json()["messages"] == []  # "+00:00" read as " 00:00"
    assert unencoded.json()["since"] == normalise_since((middle + timedelta(hours=1)).isoformat())
    bad = env.http.get("/conformance/report", params={"since": "yesterday"})
    assert bad.status_code == 400 and "ISO 8601" in bad.json()["message"]
    cleared = env.http.delete("/conformance/report")
    assert cleared.status_code == 200 and cleared.json()["deleted"] == 2
    assert env.report()["messages"] == []
    with env.peer() as peer:  # ids are never reused after a new session
        wire.query(peer, FindDocuments(patient_id=f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"))
    assert env.report()["messages"][0]["seq"] > everything["messages"][1]["seq"]


def test_the_report_names_the_schema_folder(env: Env, schemas: Path) -> None:
    report = env.report()
    assert report["schema_check"] == {"run": True, "schemas": str(schemas.resolve())}
    assert NOT_RUN_NOTE not in report["notes"]


def test_the_store_keeps_only_the_most_recent_messages(tmp_path: Path) -> None:
    hub = build_hub(tmp_path / "hub", allow_unsigned=True, connector_validation=True)
    try:
        assert hub.connector is not None
        hub.connector.keep = 3
        with httpx.Client(base_url=BASE, transport=SyncASGITransport(hub.app)) as http:
            for _ in range(5):
                http.post("/xds/registry", content=b"<x/>", headers={"content-type": soap.SOAP_CONTENT_TYPE})
            seqs = [m["seq"] for m in http.get("/conformance/report").json()["messages"]]
        assert len(seqs) == 3 and seqs == sorted(seqs) and seqs[-1] == 5
    finally:
        hub.close()


def test_without_schemas_the_schema_check_is_not_run_and_the_report_says_so(
    tmp_path: Path, rsb_pki: PkiDescription, rsb_identity: Callable[[str], Identity]
) -> None:
    hub = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki, connector_validation=True)
    try:
        with wire.Peer(
            base_url=BASE, transport=SyncASGITransport(hub.app), identity=rsb_identity("gp"),
            trust=rsb_pki.trust_store(),
        ) as peer:  # fmt: skip
            wire.query(peer, FindDocuments(patient_id=f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"))
            report = peer.get("/conformance/report").json()
        assert report["schema_check"] == {"run": False, "schemas": None}
        assert "schema check not run: start the hub with --schemas DIR" in report["notes"]
        (message,) = report["messages"]
        assert message["checks"]["schema"]["status"] == "not-run"
        assert message["checks"]["schema"]["detail"] == NOT_RUN_NOTE
        assert message["verdict"] == "passed"  # not run is not failed
    finally:
        hub.close()


def test_recording_off_answers_404_and_records_nothing(rsb_hub: Hub) -> None:
    assert rsb_hub.connector is None  # the pytest plugin's hub runs without it
    with httpx.Client(base_url=BASE, transport=SyncASGITransport(rsb_hub.app)) as http:
        for method in ("GET", "DELETE"):
            response = http.request(method, "/conformance/report")
            assert response.status_code == 404
            assert response.json()["error"] == "connector-validation-off"
            assert "--connector-validation" in response.json()["message"]
    with rsb_hub.store.read() as r:
        assert r.connector_messages() == []


def test_schemas_need_connector_validation(tmp_path: Path, schemas: Path) -> None:
    with pytest.raises(ValueError, match="connector_validation"):
        build_hub(tmp_path / "hub", allow_unsigned=True, schemas=schemas)


def test_an_inline_document_is_never_kept(env: Env) -> None:
    content = b"tiny"  # too short for a pattern: the hub replaces it by structure
    sub, _ = submission(content)
    with env.peer() as peer:
        assert wire.provide(peer, sub, {sub.entries[0].entry_uuid: content}, mtom=False).ok
    message = env.only("ITI-41")
    assert message["verdict"] == "passed", message["checks"]
    assert base64.b64encode(content).decode() not in message["excerpt"]
    assert "[document content: 8 base64 characters, not kept]" in message["excerpt"]
    parsed = etree.fromstring(message["excerpt"].split("\n\n", 1)[1].encode())
    assert parsed.tag == f"{{{c.SOAP12}}}Envelope"
    assert copy.deepcopy(parsed) is not None


def test_a_document_in_another_namespace_is_not_kept_either(env: Env) -> None:
    content = b"short"
    sub, _ = submission(content)
    payload = iti41.build_request(sub, {sub.entries[0].entry_uuid: Inline(content)})
    for document in payload.iter(f"{{{c.XDSB}}}Document"):
        document.tag = "{urn:example:elsewhere}Document"
    with env.peer() as peer:
        wire.post(peer, "/xds/repository", payload, c.ACTION_ITI41, mtom=False)
    message = env.only("ITI-41")
    assert base64.b64encode(content).decode() not in message["excerpt"]
    assert "[document content: 8 characters, not kept]" in message["excerpt"]
    assert statuses(message)["schema"] == "failed"  # the XSD has no such element there
    assert "XDSMissingDocument" in [code for code, _ in failures(message, "metadata")]


def test_a_bundle_larger_than_what_is_captured_keeps_no_document_content(env: Env) -> None:
    content = os.urandom(1536 * 1024)  # its base64 runs past the 1 MiB the hub keeps of a request
    sub, _ = submission(content, mime_type="application/octet-stream")
    bundle = as_json(build_provide_bundle(sub, {sub.entries[0].entry_uuid: content}))
    binary = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Binary")
    bundle["entry"].remove(binary)
    bundle["entry"].append(binary)  # the document last: the cut falls inside it
    response = env.http.post("/fhir", content=json.dumps(bundle).encode(), headers=env.bearer())
    assert response.status_code == 200, response.text
    message = env.only("ITI-65")
    assert message["verdict"] == "passed", message["checks"]
    excerpt = message["excerpt"]
    assert "[document content, not kept]" in excerpt and "more bytes not kept" in excerpt
    assert base64.b64encode(content[:48]).decode() not in excerpt
    assert len(excerpt) < 13_000
