"""How a startup tests its own app with the rsb-connector pytest plugin (installed with the package).

The fixtures come from ``rsb_connector.testing``: ``rsb_client`` talks to a fresh in-process mock hub (no network),
``rsb_seed`` says who its patients and professionals are. Run: ``pytest examples/test_with_plugin.py``.
"""

from __future__ import annotations

import pytest

from rsb_connector import HubRefused, MetadataError, VaultClient
from rsb_connector.metadata.builder import new_document


def publish_lab_result(vault: VaultClient, patient: str, pdf: bytes) -> str:
    """The app code under test: publish a lab result, return its uniqueId."""
    receipt = vault.publish(pdf, patient=patient, document_type="labresult", mime_type="application/pdf")
    return receipt.documents[0].unique_id


def test_the_lab_result_can_be_found_and_read_back(rsb_client: VaultClient, rsb_seed: dict) -> None:
    patient = rsb_seed["patients"][0]["ssin"]
    unique_id = publish_lab_result(rsb_client, patient, b"%PDF-1.7 haemoglobin 14.1 g/dL")
    found = rsb_client.find(patient, class_codes=["labresult"])
    assert unique_id in [e.unique_id for e in found]  # beside the lab results the seed already holds
    assert rsb_client.retrieve(unique_id).content == b"%PDF-1.7 haemoglobin 14.1 g/dL"


def test_an_unknown_patient_is_refused_by_the_hub(rsb_client: VaultClient) -> None:
    with pytest.raises(HubRefused) as refused:
        publish_lab_result(rsb_client, "82121210976", b"%PDF-1.7")
    assert refused.value.code == "XDSUnknownPatientId"


def test_bad_metadata_never_leaves_the_app(rsb_client: VaultClient, rsb_seed: dict) -> None:
    patient = rsb_seed["patients"][0]["ssin"]
    entry = new_document(b"x", patient=patient, document_type="note", mime_type="text/plain")
    entry.type_code = None  # a bug in the app's own metadata mapping
    with pytest.raises(MetadataError) as invalid:
        rsb_client.publish_many([(b"x", entry)])
    assert invalid.value.codes == ["XDSRegistryMetadataError"]
    assert invalid.value.problems[0].path.endswith(".typeCode")


async def test_the_async_client_works_the_same(rsb_async_client, rsb_seed: dict) -> None:  # type: ignore[no-untyped-def]
    patient = rsb_seed["patients"][1]["ssin"]
    receipt = await rsb_async_client.publish(b"note", patient=patient, document_type="note", mime_type="text/plain")
    assert [e.unique_id for e in await rsb_async_client.find(patient)] == [receipt.documents[0].unique_id]
