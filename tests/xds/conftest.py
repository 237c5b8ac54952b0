"""Shared fixtures of the XDS binding tests: sample metadata built by hand, and the official XSDs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from rsb_connector.metadata.model import (
    DOCUMENT_ENTRY_STABLE,
    Association,
    AssociationType,
    Author,
    AvailabilityStatus,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
    SubmissionSetStatus,
)
from rsb_connector.xds.schema import load_schema, validate
from rsb_connector.xds.xop import resolve_for_validation

SCHEMA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "ihe-xds-schemas"
"""The official XDS.b / ebRS 3.0 schemas, beside the repository (``../shared/reference``)."""

PATIENT = "73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO"
SOURCE_ID = "1.3.6.1.4.1.21367.2017.2.1.7"
LOINC = "2.16.840.1.113883.6.1"
CONFIDENTIALITY = "2.16.840.1.113883.5.25"


@dataclass(frozen=True)
class Xsd:
    """The XDS.b schema with helpers that show every error."""

    schema: etree.XMLSchema

    def errors(self, el: etree._Element, attachments: Mapping[str, bytes] | None = None) -> list[str]:
        """Schema errors of ``el``; with ``attachments``, of its XOP-resolved copy."""
        target = resolve_for_validation(el, attachments) if attachments is not None else el
        return validate(target, schema=self.schema)

    def assert_valid(self, el: etree._Element, attachments: Mapping[str, bytes] | None = None) -> None:
        """Fail with the schema errors and the message when ``el`` does not validate."""
        errors = self.errors(el, attachments)
        if errors:
            text = etree.tostring(el, pretty_print=True).decode()
            pytest.fail("schema errors:\n" + "\n".join(errors) + "\n\n" + text)


@pytest.fixture(scope="session")
def xsd() -> Xsd:
    """The official XDS.b_DocumentRepository.xsd (with rs, lcm, query, rim). Fails loudly when absent."""
    if not (SCHEMA_DIR / "iti" / "schema" / "IHE" / "XDS.b_DocumentRepository.xsd").is_file():
        pytest.fail(
            f"the official XDS schemas are missing: expected {SCHEMA_DIR}/iti/schema/IHE/XDS.b_DocumentRepository.xsd "
            "(the shared/reference/ihe-xds-schemas folder beside the repository)"
        )
    return Xsd(load_schema(SCHEMA_DIR))


def make_rich_entry(entry_uuid: str = "Document01") -> DocumentEntry:
    """A DocumentEntry with every field set, several authors, event and confidentiality codes, reference ids."""
    return DocumentEntry(
        entry_uuid=entry_uuid,
        unique_id="2.25.176543210987654321098765432109876543",
        patient_id=PATIENT,
        mime_type="application/pdf",
        class_code=Code("report", "CD-TRANSACTION", "Report"),
        type_code=Code("11488-4", LOINC, "Consult note"),
        format_code=Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3", "Format from mimeType"),
        healthcare_facility_type_code=Code("hospital", "CD-HCPARTY", "Hospital"),
        practice_setting_code=Code("cardiology", "CD-SPECIALITY"),
        confidentiality_codes=[Code("N", CONFIDENTIALITY, "normal"), Code("R", CONFIDENTIALITY, "restricted")],
        event_codes=[Code("T-D4000", "SNOMED", "Abdomen"), Code("F-03000", "SNOMED")],
        creation_time="20240315101500",
        language_code="fr-BE",
        source_patient_id="73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO",
        source_patient_info=["PID-3|73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO", "PID-5|Dupont^Marie", "PID-8|F"],
        legal_authenticator="11478761004^Janssens^Luc^^^Dr^^^&2.16.840.1.113883.3.6777.5.2&ISO",
        service_start_time="202403140800",
        service_stop_time="202403141700",
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=12345,
        repository_unique_id="1.3.6.1.4.1.21367.2017.3.1990000728.1",
        uri="https://vault.example/doc/1",
        title="Consultation cardiologique",
        comments="Avec ECG d'effort",
        authors=[
            Author(
                person="11478761004^Janssens^Luc^^^Dr^^^&2.16.840.1.113883.3.6777.5.2&ISO",
                institutions=("Clinique Saint-Jean^^^^^&2.16.840.1.113883.3.6777.5.2&ISO^^^^71000436",),
                roles=("persphysician",),
                specialties=("cardiology^^^&1.2.3&ISO", "internal medicine"),
                telecommunications=("^^Internet^luc.janssens@example.be",),
            ),
            Author(institutions=("CHU Brugmann", "Site Horta")),
        ],
        reference_ids=[
            "A123^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession",
            "Order-9^^^&1.2.4&ISO^urn:ihe:iti:xds:2013:order",
        ],
        availability_status=AvailabilityStatus.DEPRECATED,
        object_type=DOCUMENT_ENTRY_STABLE,
        home_community_id="urn:oid:1.3.6.1.4.1.21367.2017.3.1990000728",
        logical_id="urn:uuid:2d0b8a7c-6ad1-4e7e-9a31-1b2f1b5a7f10",
        version="2",
        extra_slots={"urn:be:rsb:visibility": ["patient-hidden"], "urn:be:rsb:tags": ["a", "b"]},
    )


def make_submission_set(entry_uuid: str = "SubmissionSet01") -> SubmissionSet:
    """A SubmissionSet with every field set."""
    return SubmissionSet(
        entry_uuid=entry_uuid,
        unique_id="2.25.98765432109876543210987654321",
        source_id=SOURCE_ID,
        patient_id=PATIENT,
        submission_time="20240315103000",
        content_type_code=Code("contactreport", "CD-TRANSACTION", "Contact report"),
        authors=[Author(person="^Peeters^An^^^^^^&2.16.840.1.113883.3.6777.5.2&ISO", roles=("persnurse",))],
        title="Consultation",
        comments="Envoyé par l'application",
        intended_recipients=["|^Martin^Paul^^^^^^&1.2.3&ISO"],
    )


def make_submission() -> Submission:
    """A valid two-document Provide and Register submission (symbolic ids, as a Document Source sends them)."""
    first = make_rich_entry("Document01")
    first.availability_status = AvailabilityStatus.APPROVED
    first.logical_id = None
    first.version = None
    first.home_community_id = None
    first.extra_slots = {}
    second = DocumentEntry(
        entry_uuid="Document02",
        unique_id="2.25.1111",
        patient_id=PATIENT,
        mime_type="text/plain",
        class_code=Code("note", "CD-TRANSACTION", "Note"),
        type_code=Code("34133-9", LOINC, "Summary"),
        format_code=Code("urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3"),
        healthcare_facility_type_code=Code("hospital", "CD-HCPARTY"),
        practice_setting_code=Code("cardiology", "CD-SPECIALITY"),
        confidentiality_codes=[Code("N", CONFIDENTIALITY)],
        creation_time="2024",
        language_code="nl-BE",
        source_patient_id=PATIENT,
    )
    ss = make_submission_set()
    return Submission(
        submission_set=ss,
        entries=[first, second],
        associations=[
            Association(
                entry_uuid="Association01",
                type=AssociationType.HAS_MEMBER,
                source=ss.entry_uuid,
                target="Document01",
                submission_set_status=SubmissionSetStatus.ORIGINAL,
            ),
            Association(
                entry_uuid="Association02",
                type=AssociationType.HAS_MEMBER,
                source=ss.entry_uuid,
                target="Document02",
                submission_set_status=SubmissionSetStatus.ORIGINAL,
            ),
        ],
        document_ids=["Document01", "Document02"],
    )


@pytest.fixture
def rich_entry() -> DocumentEntry:
    """A fresh DocumentEntry with every field set."""
    return make_rich_entry()


@pytest.fixture
def submission_set() -> SubmissionSet:
    """A fresh SubmissionSet with every field set."""
    return make_submission_set()


@pytest.fixture
def submission() -> Submission:
    """A fresh, valid two-document submission."""
    return make_submission()
