"""Other people's FHIR clients against the hub's MHD face, over a real socket.

- ``fhirclient`` (SMART on FHIR, strict R4 models): reads the CapabilityStatement, searches DocumentReferences
  (it sends ``application/fhir+json`` and percent-encodes ``:`` and ``|``), reads a Binary as a resource, posts a
  hand-written ITI-65 bundle to ``[base]/``.
- ``fhirpy``: searches DocumentReferences (it sends ``application/json`` and leaves ``:`` raw), posts a hand-written
  ITI-65 bundle with ``application/json``.

The ITI-65 bundles here are written by hand as plain dicts, as another Document Source would send them: the SDK's
binding is not used to build them.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
from fhirclient import client as smart_client
from fhirclient.models.binary import Binary as SmartBinary
from fhirclient.models.bundle import Bundle as SmartBundle
from fhirclient.models.documentreference import DocumentReference as SmartDocumentReference
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome as FhirpyOutcome

from rsb_connector.hub.population import SEED_PATIENTS
from rsb_connector.hub.server import Hub, build_hub

from .test_fhir_http import mhd_app, serve

PATIENT = SEED_PATIENTS[3].ssin  # born 2003: a patient these tests have to themselves
SSIN = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
SD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/"
CD_TRANSACTION = "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    hub: Hub = build_hub(tmp_path_factory.mktemp("fhir-interop"), seed=True, allow_unsigned=True)
    try:
        with serve(mhd_app(hub)) as url:
            yield f"{url}/fhir"
    finally:
        hub.close()


def oid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def hand_written_bundle(content: bytes, *, title: str) -> tuple[dict[str, Any], str]:
    """An R4 ITI-65 Comprehensive bundle written out by hand; returns it and the document's uniqueId."""
    list_url, dr_url, binary_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    document_oid = oid()
    subject = {"identifier": {"system": SSIN, "value": PATIENT}}
    bundle = {
        "resourceType": "Bundle",
        "meta": {"profile": [f"{SD}IHE.MHD.Comprehensive.ProvideBundle"]},
        "type": "transaction",
        "entry": [
            {
                "fullUrl": list_url,
                "resource": {
                    "resourceType": "List",
                    "meta": {"profile": [f"{SD}IHE.MHD.Comprehensive.SubmissionSet"]},
                    "extension": [
                        {
                            "url": f"{SD}ihe-sourceId",
                            "valueIdentifier": {"system": "urn:ietf:rfc:3986",
                                                "value": "urn:oid:1.3.6.1.4.1.21367.2005.3.7"},
                        },
                        {
                            "url": f"{SD}ihe-designationType",
                            "valueCodeableConcept": {"coding": [{"system": CD_TRANSACTION, "code": "contactreport"}]},
                        },
                    ],
                    "identifier": [
                        {"use": "usual", "system": "urn:ietf:rfc:3986", "value": f"urn:oid:{oid()}"},
                        {"use": "official", "system": "urn:ietf:rfc:3986", "value": list_url},
                    ],
                    "status": "current",
                    "mode": "working",
                    "code": {"coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes",
                                         "code": "submissionset"}]},
                    "subject": subject,
                    "date": "2024-05-01T23:30:00-04:00",
                    "entry": [{"item": {"reference": dr_url}}],
                },
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": dr_url,
                "resource": {
                    "resourceType": "DocumentReference",
                    "meta": {"profile": [f"{SD}IHE.MHD.Comprehensive.DocumentReference"]},
                    "contained": [
                        {"resourceType": "Patient", "id": "sp", "identifier": [{"system": SSIN, "value": PATIENT}]},
                        {
                            "resourceType": "Practitioner",
                            "id": "a1",
                            "identifier": [{"system": "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi",
                                            "value": "11478761004"}],
                            "name": [{"family": "Peeters", "given": ["An"]}],
                        },
                    ],
                    "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{document_oid}"},
                    "status": "current",
                    "type": {"coding": [{"system": CD_TRANSACTION, "code": "contactreport"}]},
                    "category": [{"coding": [{"system": CD_TRANSACTION, "code": "contactreport"}]}],
                    "subject": subject,
                    "author": [{"reference": "#a1"}],
                    "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                                   "code": "N"}]}],
                    "content": [
                        {
                            "attachment": {
                                "contentType": "text/plain",
                                "language": "fr-BE",
                                "url": binary_url,
                                "size": len(content),
                                "hash": base64.b64encode(hashlib.sha1(content).digest()).decode(),
                                "title": title,
                                "creation": "2024-04-30T21:15:00-05:00",
                            },
                            "format": {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                                       "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"},
                        }
                    ],
                    "context": {
                        "facilityType": {"coding": [{"system": "http://snomed.info/sct", "code": "35971002"}]},
                        "practiceSetting": {"coding": [{"system": "http://snomed.info/sct", "code": "394802001"}]},
                        "sourcePatientInfo": {"reference": "#sp"},
                    },
                },
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": binary_url,
                "resource": {"resourceType": "Binary", "contentType": "text/plain",
                             "data": base64.b64encode(content).decode()},
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }  # fmt: skip
    return bundle, document_oid


def smart(base_url: str) -> smart_client.FHIRClient:
    return smart_client.FHIRClient(settings={"app_id": "rsb-interop-test", "api_base": f"{base_url}/"})


def test_fhirclient_reads_the_capability_statement(base_url: str) -> None:
    server = smart(base_url).server
    server.get_capability()  # parsed with fhirclient's strict R4 models
    statement = server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert {r.type for r in statement.rest[0].resource} == {"DocumentReference", "List", "Patient", "Binary"}


def test_fhirclient_posts_a_hand_written_bundle_then_searches_and_reads_the_binary(base_url: str) -> None:
    content = b"written by hand, posted by fhirclient\n"
    bundle, unique_id = hand_written_bundle(content, title="fhirclient")
    server = smart(base_url).server
    response = server.post_json("", bundle)  # [base]/ with application/fhir+json
    answer = SmartBundle(response.json())
    assert [e.response.status for e in answer.entry] == ["201 Created"] * 3
    location = answer.entry[1].response.location
    assert location.startswith("DocumentReference/")

    search = SmartDocumentReference.where(struct={"patient.identifier": f"{SSIN}|{PATIENT}", "status": "current"})
    found = list(search.perform_resources_iter(server))
    assert all(isinstance(r, SmartDocumentReference) for r in found)
    mine = next(r for r in found if r.masterIdentifier.value == f"urn:oid:{unique_id}")
    assert f"DocumentReference/{mine.id}" == location
    assert mine.content[0].attachment.contentType == "text/plain"
    assert mine.context.sourcePatientInfo.reference == "#sourcePatient"

    binary = SmartBinary.read(mine.id, server)  # Accept: application/fhir+json -> a Binary resource
    assert binary.contentType == "text/plain"
    assert base64.b64decode(binary.data) == content
    assert httpx.get(mine.content[0].attachment.url).content == content


def test_fhirpy_posts_a_hand_written_bundle_then_searches(base_url: str) -> None:
    content = b"written by hand, posted by fhirpy\n"
    bundle, unique_id = hand_written_bundle(content, title="fhirpy")
    fhir = SyncFHIRClient(base_url)
    answer = fhir.execute("/", method="post", data=bundle)  # [base]/ with application/json
    assert answer["type"] == "transaction-response"

    found = (
        fhir.resources("DocumentReference").search(patient__identifier=f"{SSIN}|{PATIENT}", status="current").fetch()
    )
    mine = [r for r in found if r["masterIdentifier"]["value"] == f"urn:oid:{unique_id}"]
    assert len(mine) == 1
    assert mine[0]["resourceType"] == "DocumentReference"
    assert mine[0]["subject"]["identifier"] == {"system": SSIN, "value": PATIENT}
    by_type = fhir.resources("DocumentReference").search(
        patient=f"Patient/{PATIENT}", status="current", type=f"{CD_TRANSACTION}|sumehr"
    )
    assert unique_id not in {r["masterIdentifier"]["value"].removeprefix("urn:oid:") for r in by_type.fetch()}
    raw = (
        fhir.resources("List").search(patient=f"Patient/{PATIENT}", code="submissionset", status="current").fetch_raw()
    )
    assert raw["type"] == "searchset" and raw["total"] >= 1


def test_a_refused_hand_written_bundle_is_an_operation_outcome_for_both_clients(base_url: str) -> None:
    bundle, _ = hand_written_bundle(b"refused\n", title="refused")
    del bundle["entry"][1]["resource"]["type"]
    with pytest.raises(FhirpyOutcome) as refused:
        SyncFHIRClient(base_url).execute("/", method="post", data=bundle)
    assert "typeCode" in str(refused.value)
    assert "XDSRegistryMetadataError" in str(refused.value)
    with pytest.raises(requests.HTTPError) as raised:  # fhirclient lets requests raise for a 400
        smart(base_url).server.post_json("", bundle)
    assert raised.value.response.status_code == 400
    assert raised.value.response.json()["resourceType"] == "OperationOutcome"
