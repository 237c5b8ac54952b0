"""MHD (IHE Mobile access to Health Documents 4.2.x, FHIR R4) constants.

Canonical URLs are those of the IHE/ITI.MHD implementation guide (``input/fsh``: ``documentReference.fsh``,
``submissionSet.fsh``, ``provideBundle.fsh``, ``identifier.fsh``): profiles under
``https://profiles.ihe.net/ITI/MHD/StructureDefinition/``, the List type code system
``https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes``, and the SubmissionSet extensions ``ihe-sourceId``,
``ihe-designationType``, ``ihe-intendedRecipient`` and ``ihe-authorOrg``. Older tools (asbestos) wrote the extension
URLs with ``http://``; :func:`canonical` folds those onto the ``https://`` form on input.

The Belgian naming systems (SSIN, NIHDI, CBE, EHP) come from :mod:`rsb_connector.identifiers`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from ..identifiers import (
    CBE_OID,
    CBE_SYSTEM,
    EHP_OID,
    EHP_SYSTEM,
    NIHDI_OID,
    NIHDI_SYSTEM,
    SSIN_OID,
    SSIN_SYSTEM,
    SSIN_SYSTEM_LEGACY,
)
from ..metadata.model import AssociationType

__all__ = [
    "DOCUMENT_REFERENCE_COMPREHENSIVE",
    "DOCUMENT_REFERENCE_MINIMAL",
    "DOCUMENT_REFERENCE_STATUS_SYSTEM",
    "DOCUMENT_REFERENCE_UNCONTAINED",
    "DOCUMENT_RELATIONSHIP_SYSTEM",
    "ENCOUNTER_ID_TYPE",
    "EXT_AUTHOR_ORG",
    "EXT_DESIGNATION_TYPE",
    "EXT_INTENDED_RECIPIENT",
    "EXT_SOURCE_ID",
    "IDENTIFIER_SYSTEMS",
    "LIST_TYPES_SYSTEM",
    "LIST_TYPE_FOLDER",
    "LIST_TYPE_SUBMISSION_SET",
    "MHD_BASE",
    "OID_BY_SYSTEM",
    "RELATES_TO_CODES",
    "SUBMISSION_SET_COMPREHENSIVE",
    "SUBMISSION_SET_MINIMAL",
    "SUBMISSION_SET_UNCONTAINED",
    "URI_SYSTEM",
    "XDS_ERROR_CODE_SYSTEM",
    "XDS_SCHEME_PREFIX",
    "ProvideBundleProfile",
    "canonical",
]

BREAK_THE_GLASS_HEADER: Final = "X-Break-The-Glass"
"""The request header carrying a professional's break-the-glass reason on the hub's FHIR reads (ITI-66/67/68): an
rsb-connector extension, sent by the SDK and read by the hub."""

MHD_BASE: Final = "https://profiles.ihe.net/ITI/MHD"
"""Base of every MHD canonical URL."""
_SD: Final = f"{MHD_BASE}/StructureDefinition/"

DOCUMENT_REFERENCE_MINIMAL: Final = f"{_SD}IHE.MHD.Minimal.DocumentReference"
DOCUMENT_REFERENCE_COMPREHENSIVE: Final = f"{_SD}IHE.MHD.Comprehensive.DocumentReference"
"""The profile every DocumentReference this SDK writes declares (author and sourcePatientInfo contained)."""
DOCUMENT_REFERENCE_UNCONTAINED: Final = f"{_SD}IHE.MHD.UnContained.Comprehensive.DocumentReference"

SUBMISSION_SET_MINIMAL: Final = f"{_SD}IHE.MHD.Minimal.SubmissionSet"
SUBMISSION_SET_COMPREHENSIVE: Final = f"{_SD}IHE.MHD.Comprehensive.SubmissionSet"
SUBMISSION_SET_UNCONTAINED: Final = f"{_SD}IHE.MHD.UnContained.Comprehensive.SubmissionSet"

LIST_TYPES_SYSTEM: Final = f"{MHD_BASE}/CodeSystem/MHDlistTypes"
"""Code system of ``List.code``: ``submissionset`` or ``folder``."""
LIST_TYPE_SUBMISSION_SET: Final = "submissionset"
LIST_TYPE_FOLDER: Final = "folder"

EXT_SOURCE_ID: Final = f"{_SD}ihe-sourceId"
"""SubmissionSet.sourceId: ``valueIdentifier`` (``urn:ietf:rfc:3986`` + ``urn:oid:<OID>``)."""
EXT_DESIGNATION_TYPE: Final = f"{_SD}ihe-designationType"
"""SubmissionSet.contentTypeCode: ``valueCodeableConcept``."""
EXT_INTENDED_RECIPIENT: Final = f"{_SD}ihe-intendedRecipient"
"""SubmissionSet.intendedRecipient: ``valueReference``."""
EXT_AUTHOR_ORG: Final = f"{_SD}ihe-authorOrg"
"""SubmissionSet.author when it is an organisation: ``valueReference`` (MHD 3:4.5.2 mapping table)."""

URI_SYSTEM: Final = "urn:ietf:rfc:3986"
"""``Identifier.system`` of identifiers whose value is a URI (``urn:oid:…``, ``urn:uuid:…``), ITI TF-2 E.3."""
DOCUMENT_REFERENCE_STATUS_SYSTEM: Final = "http://hl7.org/fhir/document-reference-status"
DOCUMENT_RELATIONSHIP_SYSTEM: Final = "http://hl7.org/fhir/document-relationship-type"

ENCOUNTER_ID_TYPE: Final = "urn:ihe:iti:xds:2015:encounterId"
"""referenceIdList CXi type carried by ``DocumentReference.context.encounter`` (MHD ITI-65 grouping rules)."""

XDS_ERROR_CODE_SYSTEM: Final = "https://profiles.ihe.net/ITI/TF/Volume3/ch-4.2.html#4.2.4.1"
"""``OperationOutcome.issue.details.coding.system`` for XDS error codes (``XDSRegistryMetadataError``...).

MHD defines no FHIR code system for the XDS ``errorCode`` vocabulary (IHE/ITI.MHD issue #35 left the mapping to the
implementer; CH:EPR puts the code in ``details.text``). The system used here is the URL of the table that defines
the codes, ITI TF-3 4.2.4.1; the code is also repeated in ``details.text`` for readers that look there.
"""

XDS_SCHEME_PREFIX: Final = "urn:rsb-connector:xds-scheme:"
"""Project-defined prefix turning an XDS codingScheme that is neither an OID nor a URI (and has no known FHIR
system) into a ``Coding.system`` and back, losslessly."""

IDENTIFIER_SYSTEMS: Final[dict[str, str]] = {
    SSIN_OID: SSIN_SYSTEM,
    NIHDI_OID: NIHDI_SYSTEM,
    CBE_OID: CBE_SYSTEM,
    EHP_OID: EHP_SYSTEM,
}
"""Assigning-authority OID -> be-core NamingSystem URI (written as ``Identifier.system``)."""

OID_BY_SYSTEM: Final[dict[str, str]] = {
    **{system: oid for oid, system in IDENTIFIER_SYSTEMS.items()},
    SSIN_SYSTEM_LEGACY: SSIN_OID,
}
"""be-core NamingSystem URI (the legacy SSIN one included) -> assigning-authority OID (read)."""

RELATES_TO_CODES: Final[dict[AssociationType, str]] = {
    AssociationType.RPLC: "replaces",
    AssociationType.APND: "appends",
    AssociationType.XFRM: "transforms",
    AssociationType.SIGNS: "signs",
}
"""XDS document relationship -> ``relatesTo.code`` (MHD ConceptMap AssociationTypeVsRelatesTo). XFRM_RPLC is written
as two relatesTo (``replaces`` and ``transforms``) with the same target and read back as XFRM_RPLC."""


class ProvideBundleProfile(StrEnum):
    """The three ITI-65 Provide Document Bundle profiles (``Bundle.meta.profile``)."""

    MINIMAL = f"{_SD}IHE.MHD.Minimal.ProvideBundle"
    COMPREHENSIVE = f"{_SD}IHE.MHD.Comprehensive.ProvideBundle"
    UNCONTAINED = f"{_SD}IHE.MHD.UnContained.Comprehensive.ProvideBundle"

    @property
    def short(self) -> str:
        """``Minimal``, ``Comprehensive`` or ``UnContained.Comprehensive``."""
        return self.value.removeprefix(f"{_SD}IHE.MHD.").removesuffix(".ProvideBundle")

    @property
    def document_reference_profile(self) -> str:
        """The DocumentReference profile that goes with this bundle profile."""
        return {
            ProvideBundleProfile.MINIMAL: DOCUMENT_REFERENCE_MINIMAL,
            ProvideBundleProfile.COMPREHENSIVE: DOCUMENT_REFERENCE_COMPREHENSIVE,
            ProvideBundleProfile.UNCONTAINED: DOCUMENT_REFERENCE_UNCONTAINED,
        }[self]

    @property
    def submission_set_profile(self) -> str:
        """The SubmissionSet List profile that goes with this bundle profile."""
        return {
            ProvideBundleProfile.MINIMAL: SUBMISSION_SET_MINIMAL,
            ProvideBundleProfile.COMPREHENSIVE: SUBMISSION_SET_COMPREHENSIVE,
            ProvideBundleProfile.UNCONTAINED: SUBMISSION_SET_UNCONTAINED,
        }[self]

    @property
    def comprehensive(self) -> bool:
        """Comprehensive metadata (both the contained and the UnContained variant)."""
        return self is not ProvideBundleProfile.MINIMAL

    @property
    def contained(self) -> bool:
        """Author, authenticator and sourcePatientInfo must be contained resources (Comprehensive, not UnContained)."""
        return self is ProvideBundleProfile.COMPREHENSIVE

    @classmethod
    def parse(cls, text: str) -> ProvideBundleProfile:
        """Accept the canonical URL or a short name (``Comprehensive``, ``Minimal``, ``UnContained``,
        ``UnContained.Comprehensive``; any case).

        Raises:
            ValueError: naming the accepted values.
        """
        folded = canonical(text).strip()
        for profile in cls:
            if folded == profile.value or folded.casefold() == profile.short.casefold():
                return profile
        if folded.casefold() == "uncontained":
            return cls.UNCONTAINED
        valid = ", ".join(p.value for p in cls)
        raise ValueError(f"unknown MHD Provide Document Bundle profile {text!r}: use one of {valid}")


def canonical(url: str) -> str:
    """Fold an ``http://profiles.ihe.net/ITI/MHD/...`` URL (older tools) onto its ``https://`` canonical form."""
    if url.startswith("http://profiles.ihe.net/"):
        return "https://" + url.removeprefix("http://")
    return url
