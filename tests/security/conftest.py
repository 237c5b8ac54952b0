"""Shared fixtures of the security tests: one development PKI per session (keys are slow to make), identities,
a second CA nobody trusts, and SOAP envelopes to sign."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from rsb_connector.security.identity import Identity
from rsb_connector.security.pki import SAMPLE_IDENTITIES, DevelopmentCa, PkiDescription
from rsb_connector.security.trust import TrustStore
from rsb_connector.xds.constants import ACTION_ITI18, QUERY, RIM
from rsb_connector.xds.soap import build_envelope

REGISTRY_URL = "http://localhost:8080/xds/registry"
TOKEN_URL = "http://localhost:8080/oauth2/token"


@pytest.fixture(scope="session")
def pki(rsb_pki: PkiDescription) -> PkiDescription:
    """The session's development PKI (the plugin's ``rsb_pki``: written once, CA key 2048 bits for speed)."""
    return rsb_pki


@pytest.fixture(scope="session")
def pki_dir(pki: PkiDescription) -> Path:
    return pki.directory


@pytest.fixture(scope="session")
def trust(pki: PkiDescription) -> TrustStore:
    return pki.trust_store()


@pytest.fixture(scope="session")
def gp(pki: PkiDescription) -> Identity:
    return pki.load_identity("gp")


@pytest.fixture(scope="session")
def nurse(pki: PkiDescription) -> Identity:
    return pki.load_identity("nurse")


@pytest.fixture(scope="session")
def patient(pki: PkiDescription) -> Identity:
    return pki.load_identity("patient1")


@pytest.fixture(scope="session")
def hub_identity(pki: PkiDescription) -> Identity:
    return pki.load_hub_identity()


@pytest.fixture(scope="session")
def dev_ca(pki: PkiDescription) -> DevelopmentCa:
    """The development CA with its key, to issue certificates on purpose (expired, odd subjects...)."""
    return pki.ca()


@pytest.fixture(scope="session")
def other_ca() -> DevelopmentCa:
    """A CA that is not in the trust store."""
    return DevelopmentCa.create(name="Untrusted CA", key_size=2048)


@pytest.fixture(scope="session")
def impostor(other_ca: DevelopmentCa) -> Identity:
    """The GP's subject, issued by the untrusted CA."""
    cert, key = other_ca.issue_identity(SAMPLE_IDENTITIES[0])
    return Identity(cert, key, [other_ca.certificate], source="impostor")


def query_payload(size: int = 10_000) -> etree._Element:
    """An ITI-18 request body of about ``size`` bytes (a FindDocuments query with a padding slot)."""
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(request, f"{{{QUERY}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    query = etree.SubElement(request, f"{{{RIM}}}AdhocQuery", id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d")
    slot = etree.SubElement(query, f"{{{RIM}}}Slot", name="$XDSDocumentEntryPatientId")
    values = etree.SubElement(slot, f"{{{RIM}}}ValueList")
    etree.SubElement(values, f"{{{RIM}}}Value").text = "'73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO'"
    padding = etree.SubElement(query, f"{{{RIM}}}Slot", name="$XDSDocumentEntryClassCode")
    padding_values = etree.SubElement(padding, f"{{{RIM}}}ValueList")
    while len(etree.tostring(request)) < size:
        etree.SubElement(padding_values, f"{{{RIM}}}Value").text = "('sumehr^^1.3.6.1.4.1.48336.1.1')"
    return request


@pytest.fixture
def make_envelope() -> Callable[..., etree._Element]:
    """Build an unsigned ITI-18 envelope (``soap.build_envelope``) with a ~10 KB body."""

    def make(message_id: str | None = None, size: int = 10_000) -> etree._Element:
        return build_envelope(query_payload(size), action=ACTION_ITI18, message_id=message_id, to=REGISTRY_URL)

    return make
