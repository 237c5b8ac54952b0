"""The hub's MHD face over HTTP: ITI-65 / ITI-66 / ITI-67 / ITI-68 and the CapabilityStatement, on the same store as
XDS (a document published with one protocol is found and retrieved with the other).

The ITI-65 cases follow the asbestos MHD tests: one document with its Binary, two documents, replace / addendum /
transform, bad profile, bad patient link, and each required element missing (a refusal stores nothing). One hub
is shared by the module (building a hub costs most of a second); every test uses fresh uniqueIds and checks what
it published, so the tests do not depend on each other. The last test runs over a real socket (uvicorn in a thread).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.list import List as FhirList
from fhir.resources.R4B.operationoutcome import OperationOutcome
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request

from rsb_connector.conformance import wire
from rsb_connector.hub import fhir as hub_fhir
from rsb_connector.hub.fhir import (
    capability_statement,
    choose_representation,
    fhir_routes,
    resolve_patient_reference,
    resource_json,
    with_cxi_types,
)
from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.registry import Caller
from rsb_connector.hub.server import Hub, build_hub
from rsb_connector.identifiers import SSIN_SYSTEM, Ssin
from rsb_connector.metadata.builder import new_document, new_submission, professional_author
from rsb_connector.metadata.model import Association, AssociationType, Code, Submission
from rsb_connector.mhd import build_provide_bundle, parse_transaction_response
from rsb_connector.mhd import constants as mc
from rsb_connector.mhd.mapping import as_json, entry_to_document_reference, submission_set_to_list
from rsb_connector.query import FindDocuments
from rsb_connector.testing import SyncASGITransport, free_port
from rsb_connector.xds import constants as xc

PATIENT = SEED_PATIENTS[0].ssin
OTHER_PATIENT = SEED_PATIENTS[1].ssin
UNREGISTERED = "17073003384"  # a valid SSIN the hub does not know
FHIR_JSON = "application/fhir+json"
SCT = "http://snomed.info/sct"
CD_TRANSACTION = "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
FORMAT_SYSTEM = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
EXT_SOURCE_ID = f"{mc.MHD_BASE}/StructureDefinition/ihe-sourceId"
EXT_DESIGNATION = f"{mc.MHD_BASE}/StructureDefinition/ihe-designationType"


# ================================================================================================ environment


@dataclass
class Env:
    """A hub with the XDS and MHD routes on one app, and a client talking to it in-process."""

    hub: Hub
    http: httpx.Client

    def counts(self) -> tuple[int, int, int, int]:
        """(entries, submission sets, associations, blobs) now in the store."""
        with self.hub.store.read() as r:
            return r.count("entries"), r.count("submission_sets"), r.count("associations"), self.hub.store.blob_count()


def mhd_app(hub: Hub, **options: Any) -> Starlette:
    """The hub's XDS routes plus the MHD routes (as the lead will mount them)."""
    xds_routes = [r for r in hub.app.routes if not str(getattr(r, "path", "")).startswith("/fhir")]
    return Starlette(routes=[*xds_routes, *fhir_routes(hub.registry, **options)])


@pytest.fixture(scope="module")
def shared_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    # An anonymous hub: the FHIR routes get their caller from ``authenticate`` (tested below), and the XDS peer
    # of these tests sends unsigned messages.
    hub = build_hub(tmp_path_factory.mktemp("fhir-hub"), seed=True, allow_unsigned=True)
    yield hub
    hub.close()


@pytest.fixture(scope="module")
def env(shared_hub: Hub) -> Iterator[Env]:
    with httpx.Client(base_url="http://hub.test", transport=SyncASGITransport(mhd_app(shared_hub))) as http:
        yield Env(shared_hub, http)


@contextlib.contextmanager
def serve(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a background thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-fhir-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# ================================================================================================ helpers


def new_doc(content: bytes = b"consultation report\r\n", patient: str = PATIENT, **kw: Any) -> tuple[Submission, bytes]:
    entry = new_document(content, patient=patient, document_type="contactreport", mime_type="text/plain", **kw)
    return new_submission([entry]), content


def bundle_of(submission: Submission, documents: dict[str, bytes], **kw: Any) -> dict[str, Any]:
    return as_json(build_provide_bundle(submission, documents, **kw))


def one_bundle(content: bytes = b"consultation report\r\n", **kw: Any) -> tuple[dict[str, Any], Submission]:
    submission, data = new_doc(content, **kw)
    return bundle_of(submission, {submission.entries[0].entry_uuid: data}), submission


def post(http: httpx.Client, bundle: Any, content_type: str = FHIR_JSON, path: str = "/fhir") -> httpx.Response:
    body = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    return http.post(path, content=body, headers={"content-type": content_type})


def locations(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["response"]["location"] for e in response.json()["entry"]]


def publish(http: httpx.Client, content: bytes = b"a document\n", **kw: Any) -> tuple[str, Submission]:
    """ITI-65 one document; returns its DocumentReference id."""
    bundle, submission = one_bundle(content, **kw)
    locs = locations(post(http, bundle))
    return locs[1].removeprefix("DocumentReference/"), submission


def search(http: httpx.Client, *pairs: tuple[str, str], path: str = "/fhir/DocumentReference") -> dict[str, Any]:
    response = http.get(path, params=list(pairs))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    data: dict[str, Any] = response.json()
    return data


def found_ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def by_patient(patient: str = PATIENT, status: str = "current") -> list[tuple[str, str]]:
    return [("patient.identifier", f"{SSIN_SYSTEM}|{patient}"), ("status", status)]


def codes(outcome: dict[str, Any]) -> set[str]:
    OperationOutcome.model_validate(outcome)
    return {i.get("details", {}).get("text", i["code"]) for i in outcome["issue"] if i["severity"] == "error"}


def relate(submission: Submission, kind: AssociationType, target_id: str) -> None:
    """Add a relationship from the submission's (only) entry to the DocumentReference ``target_id``."""
    submission.associations.append(
        Association(
            entry_uuid=f"urn:uuid:{uuid.uuid4()}",
            type=kind,
            source=submission.entries[0].entry_uuid,
            target=f"urn:uuid:{target_id}",
        )
    )


# ================================================================================================ ITI-65


def test_iti65_single_document_with_binary(env: Env) -> None:
    before = env.counts()
    bundle, submission = one_bundle(b"one document\r\n")
    response = post(env.http, bundle)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    answer = Bundle.model_validate(response.json())
    assert answer.type == "transaction-response"
    entry_id = submission.entries[0].entry_uuid.removeprefix("urn:uuid:")
    ss_id = submission.submission_set.entry_uuid.removeprefix("urn:uuid:")
    assert locations(response) == [f"List/{ss_id}", f"DocumentReference/{entry_id}", f"Binary/{entry_id}"]
    assert [e["response"]["status"] for e in response.json()["entry"]] == ["201 Created"] * 3
    assert parse_transaction_response(response.json()).statuses == ["201 Created"] * 3
    after = env.counts()
    assert (after[0] - before[0], after[1] - before[1], after[3] - before[3]) == (1, 1, 1)
    read = env.http.get(f"/fhir/DocumentReference/{entry_id}")
    assert read.status_code == 200
    document = DocumentReference.model_validate(read.json())
    assert document.id == entry_id and document.status == "current"
    assert document.masterIdentifier.value == f"urn:oid:{submission.entries[0].unique_id}"
    assert document.content[0].attachment.url == f"http://hub.test/fhir/Binary/{entry_id}"


def test_iti65_two_documents(env: Env) -> None:
    entries = [
        new_document(b"first", patient=PATIENT, document_type="contactreport", mime_type="text/plain"),
        new_document(b"second", patient=PATIENT, document_type="labresult", mime_type="text/plain"),
    ]
    submission = new_submission(entries)
    bundle = bundle_of(submission, {entries[0].entry_uuid: b"first", entries[1].entry_uuid: b"second"})
    locs = locations(post(env.http, bundle))
    ids = [e.entry_uuid.removeprefix("urn:uuid:") for e in entries]
    assert [loc.split("/")[0] for loc in locs] == ["List", "DocumentReference", "DocumentReference", "Binary", "Binary"]
    assert set(ids) <= found_ids(search(env.http, *by_patient()))
    assert [env.http.get(f"/fhir/Binary/{i}").content for i in ids] == [b"first", b"second"]


def test_iti65_replace_supersedes_the_old_document(env: Env) -> None:
    old_id, _ = publish(env.http, b"version 1\n")
    submission, data = new_doc(b"version 2\n")
    relate(submission, AssociationType.RPLC, old_id)
    new_id = locations(post(env.http, bundle_of(submission, {submission.entries[0].entry_uuid: data})))[1].split("/")[1]
    current = search(env.http, *by_patient())
    assert new_id in found_ids(current) and old_id not in found_ids(current)
    superseded = search(env.http, *by_patient(status="superseded"))
    assert old_id in found_ids(superseded)
    new_resource = next(e["resource"] for e in current["entry"] if e["resource"]["id"] == new_id)
    assert new_resource["relatesTo"] == [
        {
            "code": "replaces",
            "target": {
                "reference": f"DocumentReference/{old_id}",
                "identifier": {"use": "official", "system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{old_id}"},
            },
        }
    ]
    assert env.http.get(f"/fhir/DocumentReference/{old_id}").json()["status"] == "superseded"
    gone = env.http.get(f"/fhir/Binary/{old_id}")
    assert gone.status_code == 410
    assert codes(gone.json()) == {"XDSRegistryDeprecatedDocumentError"}
    assert env.http.get(f"/fhir/Binary/{new_id}").content == b"version 2\n"
    # replacing the superseded version again is refused, and stores nothing
    again, data3 = new_doc(b"version 3\n")
    relate(again, AssociationType.RPLC, old_id)
    before = env.counts()
    refused = post(env.http, bundle_of(again, {again.entries[0].entry_uuid: data3}))
    assert refused.status_code == 422
    assert "XDSRegistryDeprecatedDocumentError" in codes(refused.json())
    assert env.counts() == before


@pytest.mark.parametrize(
    ("kind", "code"),
    [(AssociationType.APND, "appends"), (AssociationType.XFRM, "transforms")],
    ids=["addendum", "transform"],
)
def test_iti65_addendum_and_transform_keep_the_original_current(env: Env, kind: AssociationType, code: str) -> None:
    original_id, _ = publish(env.http, b"original\n")
    submission, data = new_doc(b"related\n")
    relate(submission, kind, original_id)
    new_id = locations(post(env.http, bundle_of(submission, {submission.entries[0].entry_uuid: data})))[1].split("/")[1]
    current = search(env.http, *by_patient())
    assert {original_id, new_id} <= found_ids(current)
    resource = env.http.get(f"/fhir/DocumentReference/{new_id}").json()
    assert [(r["code"], r["target"]["reference"]) for r in resource["relatesTo"]] == [
        (code, f"DocumentReference/{original_id}")
    ]
    assert env.http.get(f"/fhir/Binary/{original_id}").status_code == 200


@pytest.mark.parametrize(
    "profile",
    [None, "http://example.org/StructureDefinition/SomethingElse", f"{mc.MHD_BASE}/StructureDefinition/IHE.MHD.Foo"],
    ids=["absent", "foreign", "unknown-mhd"],
)
def test_iti65_bad_profile_is_refused_and_stores_nothing(env: Env, profile: str | None) -> None:
    bundle, _ = one_bundle()
    if profile is None:
        del bundle["meta"]
    else:
        bundle["meta"]["profile"] = [profile]
    before = env.counts()
    response = post(env.http, bundle)
    assert response.status_code == 400
    outcome = response.json()
    assert "XDSRegistryMetadataError" in codes(outcome)
    assert any("Bundle.meta.profile" in i.get("expression", []) for i in outcome["issue"])
    assert env.counts() == before


@pytest.mark.parametrize(
    ("reference", "entries"),
    [
        ("Patient/not-an-ssin", 2),
        ("urn:uuid:0b7e4c2a-7d1e-4f0e-9a55-1f2a3b4c5d6e", 2),
        (f"Patient/{UNREGISTERED}", 2),
        ("urn:uuid:0b7e4c2a-7d1e-4f0e-9a55-1f2a3b4c5d6e", 1),
    ],
    ids=["unknown-id", "dangling-fullurl", "unknown-patient", "document-only"],
)
def test_iti65_bad_patient_link_is_400_and_stores_nothing(env: Env, reference: str, entries: int) -> None:
    # 400, not 404: the endpoint exists, the bundle is the bad part (FHIR R4 http.html; asbestos Bad_Patient_Link).
    bundle, _ = one_bundle()
    for item in bundle["entry"][2 - entries : 2]:
        item["resource"]["subject"] = {"reference": reference}
    before = env.counts()
    response = post(env.http, bundle)
    assert response.status_code == 400, response.text
    assert "XDSUnknownPatientId" in codes(response.json())
    assert env.counts() == before


def test_iti65_subject_may_reference_patient_by_ssin(env: Env) -> None:
    bundle, submission = one_bundle()
    for item in bundle["entry"][:2]:
        item["resource"]["subject"] = {"reference": f"Patient/{PATIENT}"}
    post_response = post(env.http, bundle)
    assert post_response.status_code == 200, post_response.text
    assert submission.entries[0].entry_uuid.removeprefix("urn:uuid:") in found_ids(search(env.http, *by_patient()))


def _drop(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(bundle: dict[str, Any]) -> None:
        node: Any = bundle
        for key in path[:-1]:
            node = node[key]
        last = path[-1]
        if callable(last):
            node[:] = [x for x in node if not last(x)]
        else:
            del node[last]

    return mutate


def _without_extension(url: str) -> Callable[[Any], bool]:
    return lambda ext: ext.get("url") == url


def _drop_source_patient(bundle: dict[str, Any]) -> None:
    resource = bundle["entry"][1]["resource"]
    del resource["context"]["sourcePatientInfo"]
    resource["contained"] = [r for r in resource.get("contained", []) if r["resourceType"] != "Patient"]
    if not resource["contained"]:
        del resource["contained"]


DR = ["entry", 1, "resource"]
LIST = ["entry", 0, "resource"]
ATTACHMENT = [*DR, "content", 0, "attachment"]

MISSING = {
    "typeCode": (_drop([*DR, "type"]), "XDSRegistryMetadataError"),
    "formatCode": (_drop([*DR, "content", 0, "format"]), "XDSRegistryMetadataError"),
    "languageCode": (_drop([*ATTACHMENT, "language"]), "XDSRegistryMetadataError"),
    "mimeType": (_drop([*ATTACHMENT, "contentType"]), "XDSRegistryMetadataError"),
    "patient": (_drop([*DR, "subject"]), "XDSRegistryMetadataError"),
    "practiceSetting": (_drop([*DR, "context", "practiceSetting"]), "XDSRegistryMetadataError"),
    "facilityType": (_drop([*DR, "context", "facilityType"]), "XDSRegistryMetadataError"),
    "sourceId": (_drop([*LIST, "extension", _without_extension(EXT_SOURCE_ID)]), "XDSRegistryMetadataError"),
    "sourcePatientId": (_drop_source_patient, "XDSRegistryMetadataError"),
    "submissionTime": (_drop([*LIST, "date"]), "XDSRegistryMetadataError"),
    "uniqueId": (_drop([*DR, "masterIdentifier"]), "XDSRegistryMetadataError"),
    "contentTypeCode": (_drop([*LIST, "extension", _without_extension(EXT_DESIGNATION)]), "XDSRegistryMetadataError"),
    "document": (_drop(["entry", 2]), "XDSMissingDocument"),
}


@pytest.mark.parametrize("element", list(MISSING))
def test_iti65_missing_required_element_is_refused_and_stores_nothing(env: Env, element: str) -> None:
    bundle, submission = one_bundle(f"missing {element}\n".encode())
    mutate, expected = MISSING[element]
    original = copy.deepcopy(bundle)
    mutate(bundle)
    assert bundle != original
    before = env.counts()
    response = post(env.http, bundle)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert expected in codes(response.json())
    assert env.counts() == before
    assert submission.entries[0].unique_id not in {
        e.unique_id for e in env.hub.registry.stored_query(FindDocuments(patient_id=Ssin(PATIENT).to_cx())).entries
    }


@pytest.mark.parametrize(
    ("content_type", "path", "status"),
    [
        ("application/fhir+json", "/fhir", 200),
        ("application/json; charset=utf-8", "/fhir/", 200),
        ("application/fhir+json; fhirVersion=4.0", "/fhir/", 200),
        ("application/fhir+xml", "/fhir", 415),
        ("text/plain", "/fhir", 415),
        ("", "/fhir", 415),
    ],
)
def test_iti65_content_types(env: Env, content_type: str, path: str, status: int) -> None:
    bundle, _ = one_bundle()
    before = env.counts()
    response = post(env.http, bundle, content_type=content_type, path=path)
    assert response.status_code == status, response.text
    if status == 200:
        assert env.counts() != before
    else:
        OperationOutcome.model_validate(response.json())
        assert env.counts() == before


def test_iti65_body_limit_is_413_and_stores_nothing(env: Env) -> None:
    app = mhd_app(env.hub, max_bundle_bytes=4096)
    bundle, _ = one_bundle(b"x" * 8192)
    before = env.counts()
    with httpx.Client(base_url="http://hub.test", transport=SyncASGITransport(app)) as small:
        response = post(small, bundle)
        assert response.status_code == 413
        assert response.json()["issue"][0]["code"] == "too-long"
        assert post(small, one_bundle(b"small")[0]).status_code == 200
    assert env.counts()[0] == before[0] + 1


def test_iti65_not_json_and_not_a_bundle_are_400(env: Env) -> None:
    assert post(env.http, b"{not json").status_code == 400
    response = post(env.http, {"resourceType": "Patient"})
    assert response.status_code == 400
    assert "XDSRegistryError" in codes(response.json())


def test_iti65_registry_refusal_points_into_the_bundle(env: Env) -> None:
    first, submission = one_bundle(b"original content")
    assert post(env.http, first).status_code == 200
    clash, data = new_doc(b"other content", unique_id=submission.entries[0].unique_id)
    before = env.counts()
    response = post(env.http, bundle_of(clash, {clash.entries[0].entry_uuid: data}))
    assert response.status_code == 409
    issue = next(i for i in response.json()["issue"] if i["details"]["text"] == "XDSNonIdenticalHash")
    assert issue["expression"] == ["Bundle.entry[1].resource.masterIdentifier"]
    assert env.counts() == before


def test_iti65_identical_retry_succeeds_without_storing_twice(env: Env) -> None:
    bundle, _ = one_bundle(b"sent twice")
    first = locations(post(env.http, bundle))
    before = env.counts()
    assert locations(post(env.http, bundle)) == first
    assert env.counts() == before


# ================================================================================================ across protocols


def test_published_over_xds_is_found_and_retrieved_over_mhd(env: Env) -> None:
    content = b"  XDS document\r\n\x00\xff binary tail"
    submission, _ = new_doc(content)
    result = wire.provide(env.http, submission, {submission.entries[0].entry_uuid: content})
    assert result.status == xc.STATUS_SUCCESS, result.problems
    uid = submission.entries[0].unique_id
    found = search(env.http, *by_patient())
    resource = next(
        e["resource"] for e in found["entry"] if e["resource"]["masterIdentifier"]["value"] == f"urn:oid:{uid}"
    )
    DocumentReference.model_validate(resource)
    url = resource["content"][0]["attachment"]["url"]
    assert url == f"http://hub.test/fhir/Binary/{resource['id']}"
    retrieved = env.http.get(url)
    assert retrieved.status_code == 200
    assert retrieved.content == content
    assert retrieved.headers["content-type"] == "text/plain"
    assert resource["content"][0]["attachment"]["size"] == len(content)
    lists = search(env.http, *by_patient()[:1], ("code", "submissionset"), path="/fhir/List")
    ss_id = submission.submission_set.entry_uuid.removeprefix("urn:uuid:")
    listed = next(e["resource"] for e in lists["entry"] if e["resource"]["id"] == ss_id)
    assert [i["item"]["reference"] for i in listed["entry"]] == [f"DocumentReference/{resource['id']}"]


def test_published_over_mhd_is_found_and_retrieved_over_xds(env: Env) -> None:
    content = b"MHD document\r\n\x00\x01\x02\xfe\xff"
    bundle, submission = one_bundle(content)
    assert post(env.http, bundle).status_code == 200
    uid = submission.entries[0].unique_id or ""
    found = wire.query(env.http, FindDocuments(patient_id=Ssin(PATIENT).to_cx()))
    entry = next(e for e in found.entries if e.unique_id == uid)
    assert entry.mime_type == "text/plain" and entry.size == len(content)
    response, documents = wire.retrieve(env.http, [(xc.DEFAULT_REPOSITORY_UNIQUE_ID, uid)])
    assert response.status == xc.STATUS_SUCCESS
    assert documents[uid] == content


# ================================================================================================ ITI-67


@pytest.fixture(scope="module")
def rich(env: Env) -> dict[str, Any]:
    """One fully described document of PATIENT; returns what the searches need to know about it."""
    content = b"rich document\n"
    entry = new_document(
        content,
        patient=PATIENT,
        document_type="labresult",
        class_code="report",
        mime_type="text/plain",
        facility_type="hospital",
        practice_setting="cardiology",
        confidentiality="R",
        creation_time="20240315101500",
        service_start="20240301",
        service_stop="20240310",
        event_codes=[Code("E1", "1.2.3.4.5")],
        author=professional_author("12345625004", family="Claes", given="Sophie"),
        reference_ids=["ORDER-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:order"],
    )
    submission = new_submission([entry])
    assert post(env.http, bundle_of(submission, {entry.entry_uuid: content})).status_code == 200
    return {"id": entry.entry_uuid.removeprefix("urn:uuid:"), "unique_id": entry.unique_id}


SEARCHES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "category": (("category", f"{CD_TRANSACTION}|report"), ("category", f"{CD_TRANSACTION}|note")),
    "type": (("type", f"{CD_TRANSACTION}|labresult"), ("type", f"{CD_TRANSACTION}|sumehr")),
    "type-or": (("type", f"{CD_TRANSACTION}|sumehr,{CD_TRANSACTION}|labresult"), ("type", f"{CD_TRANSACTION}|note")),
    "setting": (("setting", f"{SCT}|394579002"), ("setting", f"{SCT}|394591006")),
    "facility": (("facility", f"{SCT}|22232009"), ("facility", f"{SCT}|264362003")),
    "format": (
        ("format", f"{FORMAT_SYSTEM}|urn:ihe:iti:xds:2017:mimeTypeSufficient"),
        ("format", f"{FORMAT_SYSTEM}|urn:ihe:iti:xds-sd:pdf:2008"),
    ),
    "event": (("event", "urn:oid:1.2.3.4.5|E1"), ("event", "urn:oid:1.2.3.4.5|E2")),
    "security-label": (("security-label", f"{CONFIDENTIALITY}|R"), ("security-label", f"{CONFIDENTIALITY}|V")),
    "creation": (("creation", "ge2024-03-15"), ("creation", "ge2024-03-16")),
    "date": (("date", "le2024-03-15"), ("date", "lt2024-03-15")),
    "period": (("period", "ge2024-03-05"), ("period", "ge2024-03-11")),
    "author.family": (("author.family", "Claes"), ("author.family", "Peeters")),
    "author.given": (("author.given", "Sophie"), ("author.given", "An")),
    "related": (("related", "urn:oid:1.2.3.4|ORDER-1"), ("related", "urn:oid:1.2.3.4|ORDER-2")),
}


@pytest.mark.parametrize("param", list(SEARCHES))
def test_iti67_search_by_each_parameter(env: Env, rich: dict[str, Any], param: str) -> None:
    positive, negative = SEARCHES[param]
    assert rich["id"] in found_ids(search(env.http, *by_patient(), positive))
    assert rich["id"] not in found_ids(search(env.http, *by_patient(), negative))


def test_iti67_search_by_patient_status_identifier_and_id(env: Env, rich: dict[str, Any]) -> None:
    assert rich["id"] in found_ids(search(env.http, ("patient", f"Patient/{PATIENT}"), ("status", "current")))
    assert rich["id"] not in found_ids(search(env.http, ("patient", f"Patient/{OTHER_PATIENT}"), ("status", "current")))
    assert rich["id"] not in found_ids(search(env.http, *by_patient(status="superseded")))
    assert rich["id"] in found_ids(search(env.http, *by_patient(status="current,superseded")))
    by_uid = search(env.http, ("identifier", f"urn:ietf:rfc:3986|urn:oid:{rich['unique_id']}"))
    assert found_ids(by_uid) == {rich["id"]}
    assert found_ids(search(env.http, ("identifier", "urn:ietf:rfc:3986|urn:oid:1.2.3.999"))) == set()
    assert found_ids(search(env.http, ("_id", rich["id"]))) == {rich["id"]}
    assert found_ids(search(env.http, ("_id", str(uuid.uuid4())))) == set()


def test_iti67_identifier_is_anded_with_patient_and_status(env: Env, rich: dict[str, Any]) -> None:
    # FHIR ANDs search parameters: the identifier names a candidate, patient and status must hold for it too.
    by_uid = ("identifier", f"urn:ietf:rfc:3986|urn:oid:{rich['unique_id']}")
    by_uuid = ("identifier", f"urn:ietf:rfc:3986|urn:uuid:{rich['id']}")
    for identifier in (by_uid, by_uuid, ("_id", rich["id"])):
        assert found_ids(search(env.http, *by_patient(), identifier)) == {rich["id"]}
        assert found_ids(search(env.http, *by_patient(status="current,superseded"), identifier)) == {rich["id"]}
        assert found_ids(search(env.http, *by_patient(status="superseded"), identifier)) == set()
        assert found_ids(search(env.http, *by_patient(OTHER_PATIENT), identifier)) == set()
        assert found_ids(search(env.http, ("status", "superseded"), identifier)) == set()
        assert found_ids(search(env.http, ("patient", f"Patient/{PATIENT}"), identifier)) == {rich["id"]}
    bad = env.http.get("/fhir/DocumentReference", params=[by_uid, ("status", "finished")])
    assert bad.status_code == 400 and codes(bad.json()) == {"XDSRegistryError"}


@pytest.mark.parametrize(
    "query",
    [
        f"patient.identifier={SSIN_SYSTEM}|{PATIENT}&status=current",
        f"patient.identifier=https%3A%2F%2Fwww.ehealth.fgov.be%2Fstandards%2Ffhir%2Fcore%2FNamingSystem%2Fssin%7C{PATIENT}"
        "&status=current",
        f"patient.identifier=https%253A%252F%252Fwww.ehealth.fgov.be%252Fstandards%252Ffhir%252Fcore%252FNamingSystem"
        f"%252Fssin%257C{PATIENT}&status=current",
        f"patient%3Aidentifier={SSIN_SYSTEM}|{PATIENT}&status=current",
        f"patient:identifier=urn:oid:2.16.840.1.113883.3.6777.5.1|{PATIENT}&status=current",
        f"patient=Patient%2F{PATIENT}&status=current",
        f"patient=http://hub.test/fhir/Patient/{PATIENT}&status=current",
        f"patient={PATIENT}&status=current",
    ],
    ids=["raw", "encoded", "double-encoded", "encoded-key", "colon-key-oid", "patient-ref", "patient-url", "bare-ssin"],
)
def test_iti67_patient_forms(env: Env, rich: dict[str, Any], query: str) -> None:
    response = env.http.get(f"/fhir/DocumentReference?{query}")
    assert response.status_code == 200, response.text
    assert rich["id"] in found_ids(response.json())


@pytest.mark.parametrize(
    ("query", "missing"),
    [("", {"patient", "status"}), (f"patient=Patient/{PATIENT}", {"status"}), ("status=current", {"patient"})],
    ids=["nothing", "no-status", "no-patient"],
)
def test_iti67_patient_and_status_are_required(env: Env, query: str, missing: set[str]) -> None:
    response = env.http.get(f"/fhir/DocumentReference?{query}")
    assert response.status_code == 400
    outcome = response.json()
    assert codes(outcome) == {"XDSStoredQueryMissingParam"}
    assert {i["expression"][0] for i in outcome["issue"]} == missing


def test_iti67_unknown_patient_reference_and_bad_values_are_400(env: Env) -> None:
    response = env.http.get("/fhir/DocumentReference?patient=Patient/nobody&status=current")
    assert response.status_code == 400
    assert codes(response.json()) == {"XDSUnknownPatientId"}
    bad = env.http.get(f"/fhir/DocumentReference?patient=Patient/{PATIENT}&status=finished&creation=yesterday")
    assert bad.status_code == 400
    assert {i["expression"][0] for i in bad.json()["issue"]} == {"status", "creation"}


def test_iti67_empty_result_is_200_with_a_self_link(env: Env) -> None:
    answer = search(env.http, *by_patient(UNREGISTERED))
    Bundle.model_validate(answer)
    assert answer["type"] == "searchset" and answer["total"] == 0 and "entry" not in answer
    assert answer["link"][0]["relation"] == "self"
    assert answer["link"][0]["url"].startswith("http://hub.test/fhir/DocumentReference?patient.identifier=")


def test_iti67_result_is_a_valid_searchset(env: Env, rich: dict[str, Any]) -> None:
    answer = search(env.http, *by_patient())
    bundle = Bundle.model_validate(answer)
    assert bundle.total == len(bundle.entry or []) >= 1
    for item in bundle.entry or []:
        assert item.search.mode == "match"
        assert item.fullUrl == f"http://hub.test/fhir/DocumentReference/{item.resource.id}"


def test_iti67_post_search_with_a_form_body(env: Env, rich: dict[str, Any]) -> None:
    form = {
        "patient.identifier": f"{SSIN_SYSTEM}|{PATIENT}",
        "status": "current",
        "type": f"{CD_TRANSACTION}|labresult",
    }
    response = env.http.post("/fhir/DocumentReference/_search", data=form)
    assert response.status_code == 200, response.text
    assert rich["id"] in found_ids(response.json())
    as_json_body = env.http.post("/fhir/DocumentReference/_search", json=form)
    assert as_json_body.status_code == 415
    assert env.http.get("/fhir/DocumentReference/_search").status_code == 405


def test_iti67_read_unknown_document_reference_is_404(env: Env) -> None:
    for rid in (str(uuid.uuid4()), "not-a-uuid"):
        response = env.http.get(f"/fhir/DocumentReference/{rid}")
        assert response.status_code == 404
        assert codes(response.json()) == {"XDSDocumentUniqueIdError"}


def test_iti67_xml_answers_are_406(env: Env) -> None:
    query = f"/fhir/DocumentReference?patient=Patient/{PATIENT}&status=current"
    assert env.http.get(query, headers={"accept": "application/fhir+xml"}).status_code == 406
    assert env.http.get(query + "&_format=xml").status_code == 406
    assert env.http.get(query, headers={"accept": "application/fhir+xml;q=0.9, application/json"}).status_code == 200


# ================================================================================================ ITI-66


def test_iti66_find_submission_sets(env: Env) -> None:
    patient = SEED_PATIENTS[2].ssin
    entries = [
        new_document(b"one", patient=patient, document_type="labresult", mime_type="text/plain"),
        new_document(b"two", patient=patient, document_type="labresult", mime_type="text/plain"),
    ]
    submission = new_submission(entries, submission_time="20240402093000")
    locs = locations(
        post(env.http, bundle_of(submission, {entries[0].entry_uuid: b"one", entries[1].entry_uuid: b"two"}))
    )
    ss_id = locs[0].removeprefix("List/")
    doc_refs = {loc for loc in locs if loc.startswith("DocumentReference/")}
    base = [("patient.identifier", f"{SSIN_SYSTEM}|{patient}"), ("code", "submissionset"), ("status", "current")]

    answer = search(env.http, *base, path="/fhir/List")
    Bundle.model_validate(answer)
    listed = next(e["resource"] for e in answer["entry"] if e["resource"]["id"] == ss_id)
    FhirList.model_validate(listed)
    assert {i["item"]["reference"] for i in listed["entry"]} == doc_refs
    assert listed["code"]["coding"][0] == {"system": mc.LIST_TYPES_SYSTEM, "code": "submissionset"}
    read = env.http.get(f"/fhir/List/{ss_id}")
    assert read.status_code == 200 and read.json()["entry"] == listed["entry"]

    source_id = submission.submission_set.source_id
    positives = [
        ("code", f"{mc.LIST_TYPES_SYSTEM}|submissionset"),
        ("designationType", f"{CD_TRANSACTION}|labresult"),
        ("sourceId", f"urn:ietf:rfc:3986|urn:oid:{source_id}"),
        ("date", "ge2024-04-02"),
        ("date", "le2024-04-02"),
        ("identifier", f"urn:ietf:rfc:3986|urn:oid:{submission.submission_set.unique_id}"),
        ("_id", ss_id),
    ]
    negatives = [
        ("designationType", f"{CD_TRANSACTION}|sumehr"),
        ("sourceId", "urn:oid:1.2.3.999"),
        ("date", "gt2024-04-02"),
        ("date", "lt2024-04-02"),
        ("identifier", "urn:ietf:rfc:3986|urn:oid:1.2.3.999"),
    ]
    for extra in positives:
        assert ss_id in found_ids(search(env.http, *base, extra, path="/fhir/List")), extra
    for extra in negatives:
        assert ss_id not in found_ids(search(env.http, *base, extra, path="/fhir/List")), extra
    assert ss_id not in found_ids(search(env.http, *base[:2], ("status", "superseded"), path="/fhir/List"))
    posted = env.http.post("/fhir/List/_search", data=dict(base))
    assert posted.status_code == 200 and ss_id in found_ids(posted.json())


def test_iti66_folders_are_empty_and_required_parameters(env: Env) -> None:
    patient = ("patient", f"Patient/{PATIENT}")
    folders = search(env.http, patient, ("code", "folder"), ("status", "current"), path="/fhir/List")
    assert folders["total"] == 0
    no_code = env.http.get("/fhir/List", params=[patient, ("status", "current")])
    assert no_code.status_code == 400 and codes(no_code.json()) == {"XDSStoredQueryMissingParam"}
    no_patient = env.http.get("/fhir/List", params=[("code", "submissionset")])
    assert no_patient.status_code == 400 and codes(no_patient.json()) == {"XDSStoredQueryMissingParam"}
    bad_code = env.http.get("/fhir/List", params=[patient, ("code", "something")])
    assert bad_code.status_code == 400 and codes(bad_code.json()) == {"XDSRegistryError"}
    assert env.http.get(f"/fhir/List/{uuid.uuid4()}").status_code == 404


# ================================================================================================ ITI-68


@pytest.mark.parametrize(
    ("accept", "status", "kind"),
    [
        (None, 200, "document"),
        ("*/*", 200, "document"),
        ("text/plain", 200, "document"),
        ("text/*", 200, "document"),
        ("application/pdf, */*;q=0.1", 200, "document"),
        ("application/fhir+json", 200, "resource"),
        ("application/json", 200, "resource"),
        ("application/fhir+json, text/plain;q=0.5", 200, "resource"),
        ("application/pdf", 406, None),
        ("text/plain;q=0, application/pdf", 406, None),
    ],
)
def test_iti68_content_negotiation(env: Env, accept: str | None, status: int, kind: str | None) -> None:
    content = b"negotiated\r\n\xc3\xa9"
    rid, _ = publish(env.http, content)
    headers = {"accept": accept} if accept is not None else {}
    response = env.http.get(f"/fhir/Binary/{rid}", headers=headers)
    assert response.status_code == status, response.text
    if kind == "document":
        assert response.content == content
        assert response.headers["content-type"] == "text/plain"
    elif kind == "resource":
        assert response.headers["content-type"].startswith(FHIR_JSON)
        resource = response.json()
        assert (resource["resourceType"], resource["id"], resource["contentType"]) == ("Binary", rid, "text/plain")
        assert base64.b64decode(resource["data"]) == content
    else:
        assert response.json()["issue"][0]["code"] == "not-supported"


def test_iti68_unknown_document_is_404(env: Env) -> None:
    for rid in (str(uuid.uuid4()), "nope"):
        response = env.http.get(f"/fhir/Binary/{rid}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith(FHIR_JSON)
        OperationOutcome.model_validate(response.json())


def test_choose_representation_rules() -> None:
    assert choose_representation(None, "application/pdf") == "document"
    assert choose_representation("application/*", "application/pdf") == "document"
    assert choose_representation("application/*;q=0.5, application/fhir+json", "application/pdf") == "resource"
    assert choose_representation("application/json", "application/json") == "document"
    assert choose_representation("image/png", "application/pdf") is None
    assert choose_representation("*/*;q=0", "application/pdf") is None


def test_patient_reference_convention() -> None:
    cx = Ssin(PATIENT).to_cx()
    assert resolve_patient_reference(f"Patient/{PATIENT}") == cx
    assert resolve_patient_reference(f"https://hub.example/fhir/Patient/{PATIENT}") == cx
    assert resolve_patient_reference(PATIENT) == cx
    assert resolve_patient_reference("Patient/12345678901") is None  # bad check digits
    assert resolve_patient_reference("Organization/87041213797") is None
    assert resolve_patient_reference("urn:uuid:0b7e4c2a-7d1e-4f0e-9a55-1f2a3b4c5d6e") is None


def test_related_search_values_cover_the_cxi_types() -> None:
    values = with_cxi_types(["ORDER-1^^^&1.2.3.4&ISO", "X^^^&1.2&ISO^urn:local:type"])
    assert values[0] == "ORDER-1^^^&1.2.3.4&ISO"
    assert "ORDER-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:order" in values
    assert "ORDER-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2015:encounterId" in values
    assert [v for v in values if v.startswith("X^")] == ["X^^^&1.2&ISO^urn:local:type"]  # typed: kept as sent


def _models() -> list[Any]:
    """Resources of every shape the hub writes, and a few it might meet."""
    rich_entry = new_document(
        b"rich",
        patient=PATIENT,
        document_type="labresult",
        class_code="report",
        mime_type="text/plain",
        confidentiality="R",
        creation_time="20240315101500",
        service_start="2024",
        service_stop="20240310",
        event_codes=[Code("E1", "1.2.3.4.5"), Code("E2", "1.2.3.4.5")],
        author=professional_author("12345625004", family="Claes", given="Sophie", institution="Hospital"),
        reference_ids=[
            "ORDER-1^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:order",
            "ENC-9^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2015:encounterId",
        ],
    )
    rich_entry.legal_authenticator = "12345625004^Claes^Sophie^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO"
    rich_entry.comments = "a comment"
    plain_entry = new_document(b"plain", patient=PATIENT, document_type="sumehr", mime_type="application/pdf")
    target = f"urn:uuid:{uuid.uuid4()}"
    models: list[Any] = []
    for entry in (rich_entry, plain_entry):
        for relates in ((), ((AssociationType.RPLC, target),), ((AssociationType.XFRM_RPLC, target),)):
            models.append(
                entry_to_document_reference(entry, base_url="http://x/fhir", resource_id="abc", relates_to=relates)
            )
    submission = new_submission(
        [rich_entry], author=professional_author("12345625004", family="Claes"), intended_recipients=["Dr Who"]
    )
    models.append(submission_set_to_list(submission.submission_set, [rich_entry], resource_id="ss"))
    extended = as_json(models[0])
    extended["_status"] = {"extension": [{"url": "http://example.org/x", "valueString": "y"}]}
    extended["fhir_comments"] = ["a comment for people"]
    models.append(DocumentReference.model_validate(extended))
    models.append(Binary.model_validate({"resourceType": "Binary", "contentType": "text/plain", "data": "aGVsbG8="}))
    models.append(CapabilityStatement.model_validate(capability_statement("http://x/fhir", token_url="http://x/t")))
    return models


def test_resource_json_writes_exactly_what_the_models_write() -> None:
    for model in _models():
        assert json.dumps(resource_json(model)) == json.dumps(as_json(model)), type(model).__name__


def test_resource_json_falls_back_to_the_model_serializer(monkeypatch: pytest.MonkeyPatch) -> None:
    model = _models()[0]

    def unknown(*args: Any) -> Any:
        raise AttributeError("no element table")

    monkeypatch.setattr(hub_fhir, "_plan", unknown)
    assert resource_json(model) == as_json(model)


# ================================================================================================ errors, callers


def test_unknown_paths_and_methods_answer_operation_outcomes(env: Env) -> None:
    unknown = env.http.get("/fhir/Patient/123")
    assert unknown.status_code == 404 and unknown.json()["resourceType"] == "OperationOutcome"
    not_allowed = env.http.delete(f"/fhir/DocumentReference/{uuid.uuid4()}")
    assert not_allowed.status_code == 405
    assert not_allowed.headers["allow"] == "GET, HEAD"
    assert env.http.put("/fhir", content=b"{}").status_code == 405
    assert env.http.get("/fhir/Binary").status_code == 404


def test_authentication_refusal_and_the_caller_reaching_the_registry(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Caller | None] = []
    registry = env.hub.registry
    for name in ("stored_query", "provide_and_register", "retrieve"):
        original = getattr(registry, name)

        def spy(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(kwargs.get("caller"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(registry, name, spy)
    doctor = Caller(subject="CN=Dr Test", role="persphysician", nihii="12345625004", authenticated=True)

    async def authenticate(request: Request) -> Caller:
        if request.headers.get("authorization") != "Bearer good":
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        return doctor

    app = mhd_app(env.hub, authenticate=authenticate)
    with httpx.Client(base_url="http://hub.test", transport=SyncASGITransport(app)) as http:
        refused = http.get("/fhir/DocumentReference", params=by_patient())
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["issue"][0]["code"] == "login"
        before = env.counts()
        assert post(http, one_bundle()[0]).status_code == 401
        assert env.counts() == before
        assert seen == []
        assert http.get("/fhir/metadata").status_code == 200  # public: clients find the token endpoint there
        good = {"authorization": "Bearer good"}
        bundle, submission = one_bundle(b"with a caller")
        assert http.post("/fhir", json=bundle, headers=good).status_code == 200
        rid = submission.entries[0].entry_uuid.removeprefix("urn:uuid:")
        assert http.get("/fhir/DocumentReference", params=by_patient(), headers=good).status_code == 200
        assert http.get(f"/fhir/Binary/{rid}", headers=good).content == b"with a caller"
    assert seen and all(caller is doctor for caller in seen)


def test_internal_errors_hide_their_details(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret database detail")

    monkeypatch.setattr(env.hub.registry, "stored_query", broken)
    response = env.http.get("/fhir/DocumentReference", params=by_patient())
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(FHIR_JSON)
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.json()["issue"][0]["code"] == "exception"


# ================================================================================================ metadata


def test_capability_statement_anonymous(env: Env) -> None:
    response = env.http.get("/fhir/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    assert "json" in statement.format
    assert f"{mc.MHD_BASE}/CapabilityStatement/IHE.MHD.DocumentResponder" in statement.instantiates
    assert f"{mc.MHD_BASE}/CapabilityStatement/IHE.MHD.DocumentRecipient" in statement.instantiates
    rest = statement.rest[0]
    assert rest.security.service is None  # no authentication: it does not pretend to OAuth
    assert [i.code for i in rest.interaction] == ["transaction"]
    declared = {r.type: {i.code for i in r.interaction} for r in rest.resource}
    assert declared == {
        "DocumentReference": {"read", "search-type"},
        "List": {"read", "search-type"},
        "Patient": {"create"},
        "Binary": {"read"},
    }
    # what it declares answers (not the catch-all 404), what it does not declare is not served
    for resource in rest.resource:
        if "search-type" in declared[resource.type]:
            params = {p.name for p in resource.searchParam}
            assert {"patient", "patient.identifier", "status"} <= params
            assert env.http.get(f"/fhir/{resource.type}").status_code == 400
    assert env.http.get("/fhir/Binary").status_code == 404


def test_capability_statement_with_authentication_names_the_token_endpoint(env: Env) -> None:
    async def authenticate(request: Request) -> Caller:
        raise HTTPException(401, "no")

    with httpx.Client(
        base_url="https://hub.example", transport=SyncASGITransport(mhd_app(env.hub, authenticate=authenticate))
    ) as http:
        statement = CapabilityStatement.model_validate(http.get("/fhir/metadata").json())
    security = statement.rest[0].security
    assert security.service[0].coding[0].code == "OAuth"
    assert security.extension[0].extension[0].url == "token"
    assert security.extension[0].extension[0].valueUri == "https://hub.example/oauth2/token"
    assert statement.implementation.url == "https://hub.example/fhir"


# ================================================================================================ real socket


def test_over_a_real_socket(shared_hub: Hub, tmp_path: Path) -> None:
    with serve(mhd_app(shared_hub)) as url, httpx.Client(base_url=url, timeout=30) as http:
        content = b"over a socket\r\n"
        bundle, submission = one_bundle(content)
        locs = locations(post(http, copy.deepcopy(bundle)))
        rid = locs[1].removeprefix("DocumentReference/")
        answer = search(http, *by_patient())
        resource = next(e["resource"] for e in answer["entry"] if e["resource"]["id"] == rid)
        assert resource["content"][0]["attachment"]["url"] == f"{url}/fhir/Binary/{rid}"
        retrieved = http.get(resource["content"][0]["attachment"]["url"])
        assert (retrieved.status_code, retrieved.content) == (200, content)
        assert http.get(f"{url}/fhir/metadata").json()["implementation"]["url"] == f"{url}/fhir"
        _, documents = wire.retrieve(http, [(xc.DEFAULT_REPOSITORY_UNIQUE_ID, submission.entries[0].unique_id or "")])
        assert documents[submission.entries[0].unique_id or ""] == content


def test_mhd_on_a_secured_hub_needs_a_bearer_token_and_applies_consent(rsb_hub: Any, rsb_client: Any) -> None:
    """On the default (PKI) hub the FHIR routes are mounted behind bearer tokens from /oauth2/token."""
    from rsb_connector.identifiers import SSIN_SYSTEM
    from rsb_connector.testing import SyncASGITransport

    patient = rsb_hub.seed["patients"][0]["ssin"]
    params = {"patient.identifier": f"{SSIN_SYSTEM}|{patient}", "status": "current"}
    with httpx.Client(base_url="http://rsb-hub.test", transport=SyncASGITransport(rsb_hub.app)) as http:
        refused = http.get("/fhir/DocumentReference", params=params)
        assert refused.status_code == 401
        assert "bearer" in refused.headers.get("www-authenticate", "").lower()
        receipt = rsb_client.publish(b"note", patient=patient, document_type="note", mime_type="text/plain")
        token = rsb_client.access_token()
        found = http.get("/fhir/DocumentReference", params=params, headers={"authorization": f"Bearer {token}"})
    assert found.status_code == 200
    ids = [e["resource"]["masterIdentifier"]["value"] for e in found.json().get("entry", [])]
    assert f"urn:oid:{receipt.documents[0].unique_id}" in ids
