"""rs:RegistryResponse / rs:RegistryErrorList: Problems in, Problems out."""

from __future__ import annotations

import pytest
from lxml import etree

from rsb_connector.errors import Problem, ProtocolError, Severity
from rsb_connector.security.xml import parse_xml
from rsb_connector.xds.constants import (
    QUERY,
    RS,
    SEVERITY_ERROR,
    SEVERITY_WARNING,
    STATUS_FAILURE,
    STATUS_PARTIAL_SUCCESS,
    STATUS_SUCCESS,
)
from rsb_connector.xds.rs import (
    RegistryResult,
    build_registry_error_list,
    build_registry_response,
    parse_registry_error_list,
    parse_registry_response,
    parse_severity,
)
from rsb_connector.xds.soap import serialize

PROBLEMS = [
    Problem("XDSRegistryMetadataError", "classCode is missing: send one classCode", "DocumentEntry[Doc01].classCode"),
    Problem("XDSRepositoryMetadataError", "size differs from the document (12 ≠ 13)", "", Severity.WARNING),
]


def test_response_round_trip_through_the_wire() -> None:
    element = build_registry_response(STATUS_FAILURE, PROBLEMS)
    parsed = parse_registry_response(parse_xml(serialize(element)))
    assert parsed == RegistryResult(STATUS_FAILURE, PROBLEMS)
    assert parsed.failed
    assert not parsed.ok
    assert not parsed.partial
    assert parsed.errors == PROBLEMS[:1]
    assert parsed.warnings == PROBLEMS[1:]


def test_error_list_attributes() -> None:
    error_list = build_registry_error_list(PROBLEMS)
    assert error_list.tag == f"{{{RS}}}RegistryErrorList"
    assert error_list.get("highestSeverity") == SEVERITY_ERROR
    first, second = error_list
    assert dict(first.items()) == {
        "errorCode": "XDSRegistryMetadataError",
        "codeContext": "classCode is missing: send one classCode",
        "location": "DocumentEntry[Doc01].classCode",
        "severity": SEVERITY_ERROR,
    }
    assert "location" not in second.attrib
    assert second.get("severity") == SEVERITY_WARNING


def test_highest_severity_of_warnings_only_and_optional() -> None:
    assert build_registry_error_list(PROBLEMS[1:]).get("highestSeverity") == SEVERITY_WARNING
    assert build_registry_error_list(PROBLEMS, highest_severity=False).get("highestSeverity") is None


def test_success_without_problems_has_no_error_list() -> None:
    element = build_registry_response(STATUS_SUCCESS)
    assert len(element) == 0
    parsed = parse_registry_response(element)
    assert parsed.ok
    assert parsed.problems == []


def test_partial_success() -> None:
    parsed = parse_registry_response(build_registry_response(STATUS_PARTIAL_SUCCESS, PROBLEMS[:1]))
    assert parsed.partial
    assert not parsed.ok


def test_lenient_parsing_of_foreign_error_lists() -> None:
    data = (
        f'<rs:RegistryResponse xmlns:rs="{RS}" status="{STATUS_FAILURE}"><rs:RegistryErrorList>'
        '<rs:RegistryError errorCode="XDSRegistryError" codeContext="">text context</rs:RegistryError>'
        '<rs:RegistryError errorCode="XDSRepositoryError" codeContext="c" severity="Warning"/>'
        '<rs:RegistryError errorCode="XDSMissingDocument" codeContext="d" severity="urn:unknown"/>'
        "</rs:RegistryErrorList></rs:RegistryResponse>"
    ).encode()
    problems = parse_registry_response(parse_xml(data)).problems
    assert problems == [
        Problem("XDSRegistryError", "text context"),
        Problem("XDSRepositoryError", "c", "", Severity.WARNING),
        Problem("XDSMissingDocument", "d"),
    ]


def test_other_response_elements_with_status_are_read() -> None:
    data = (
        f'<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rs="{RS}" status="{STATUS_FAILURE}">'
        '<rs:RegistryErrorList><rs:RegistryError errorCode="XDSUnknownStoredQuery" codeContext="x"/>'
        "</rs:RegistryErrorList></query:AdhocQueryResponse>"
    ).encode()
    parsed = parse_registry_response(parse_xml(data))
    assert [p.code for p in parsed.problems] == ["XDSUnknownStoredQuery"]


def test_missing_status_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="no status"):
        parse_registry_response(etree.Element(f"{{{RS}}}RegistryResponse"))


def test_error_list_parsing_edges() -> None:
    assert parse_registry_error_list(None) == []
    with pytest.raises(ProtocolError, match="RegistryErrorList"):
        parse_registry_error_list(etree.Element(f"{{{RS}}}RegistryResponse"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Severity.ERROR),
        (SEVERITY_ERROR, Severity.ERROR),
        (SEVERITY_WARNING, Severity.WARNING),
        ("warning", Severity.WARNING),
        ("Error", Severity.ERROR),
        ("nonsense", Severity.ERROR),
    ],
)
def test_parse_severity(value: str | None, expected: Severity) -> None:
    assert parse_severity(value) is expected
