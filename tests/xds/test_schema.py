"""Messages built by this package validate against the official XDS.b / ebRS 3.0 XSDs, and invalid ones fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from rsb_connector.errors import Problem, RsbError, Severity
from rsb_connector.xds.constants import DEFAULT_REPOSITORY_UNIQUE_ID, RS, STATUS_FAILURE, STATUS_SUCCESS, XDSB
from rsb_connector.xds.iti43 import DocumentRequest, DocumentResponse, build_request, build_response
from rsb_connector.xds.parts import Inline, XopRef
from rsb_connector.xds.rs import build_registry_response
from rsb_connector.xds.schema import ENV_VAR, SchemaUnavailable, default_schema_dir, load_schema, validate
from rsb_connector.xds.xop import resolve_for_validation

REQUEST = DocumentRequest(DEFAULT_REPOSITORY_UNIQUE_ID, "1.2.3.4.1", "urn:oid:1.3.6.1.4.1.21367.13.70.1")
PROBLEMS = [
    Problem("XDSDocumentUniqueIdError", "no document 1.2.3.4.9 here", "1.2.3.4.9"),
    Problem("XDSRepositoryError", "slow disk", "", Severity.WARNING),
]


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return load_schema()


def test_schema_dir_is_found_and_cached(schema: etree.XMLSchema) -> None:
    directory = default_schema_dir()
    assert directory is not None
    assert (directory / "iti/schema/IHE/XDS.b_DocumentRepository.xsd").is_file()
    assert load_schema(directory) is load_schema(directory)


def test_env_var_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert default_schema_dir() == tmp_path
    with pytest.raises(SchemaUnavailable, match="incomplete"):
        load_schema()
    assert issubclass(SchemaUnavailable, RsbError)


def test_retrieve_request_is_valid(schema: etree.XMLSchema) -> None:
    assert validate(build_request([REQUEST, DocumentRequest("1.2", "1.3")]), schema=schema) == []


def test_retrieve_response_xop_resolved_is_valid(schema: etree.XMLSchema) -> None:
    documents = [
        DocumentResponse(REQUEST, "application/pdf", XopRef("doc@1@rsb")),
        DocumentResponse(DocumentRequest("1.2", "1.3"), "text/plain", Inline(b"hello")),
    ]
    response = build_response(STATUS_FAILURE, documents, PROBLEMS)
    errors = validate(response, schema=schema)
    assert len(errors) == 1  # xop:Include is not base64: the raw XOP document is not the schema's infoset
    assert "Document" in errors[0]
    assert validate(resolve_for_validation(response, {"doc@1@rsb": b"%PDF"}), schema=schema) == []


def test_registry_response_with_errors_is_valid(schema: etree.XMLSchema) -> None:
    assert validate(build_registry_response(STATUS_FAILURE, PROBLEMS), schema=schema) == []
    assert validate(build_registry_response(STATUS_SUCCESS), schema=schema) == []


def test_invalid_messages_are_reported_with_lines(schema: etree.XMLSchema) -> None:
    no_status = etree.Element(f"{{{RS}}}RegistryResponse")
    errors = validate(no_status, schema=schema)
    assert errors
    assert "status" in errors[0]
    assert errors[0].startswith("line ")

    request = build_request([REQUEST])
    document_request = request[0]
    document_request.remove(document_request[2])  # drop DocumentUniqueId
    errors = validate(request, schema=schema)
    assert errors
    assert "DocumentUniqueId" in errors[0]

    unknown = etree.Element(f"{{{XDSB}}}NoSuchThing")
    assert validate(unknown, schema=schema)


def test_validate_loads_the_default_schema() -> None:
    assert validate(build_request([REQUEST])) == []
