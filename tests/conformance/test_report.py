"""The reports of a run, rendered from hand-built results: HTML (self-contained, escaped, says why a case failed),
JUnit XML (structure, counts, accepted by the JUnit schema CI tools read) and JSON (round trip)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from rsb_connector.conformance.report import render_html, render_json, render_junit, write_reports
from rsb_connector.conformance.results import (
    CaseResult,
    Evidence,
    Outcome,
    ResultFormatError,
    StepResult,
    SuiteResult,
)

STARTED = datetime(2025, 3, 1, 9, 30, 0, tzinfo=UTC)
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def _passed() -> CaseResult:
    return CaseResult(
        id="XDS-001",
        title="Single document submission",
        profile="XDS.b",
        actor="Document Repository + Document Registry",
        reference="ITI TF-2b 3.41.4.1.3; NIST 12360",
        description="The basic round trip.",
        outcome=Outcome.PASSED,
        seconds=0.5,
        setup=[Evidence("POST /fhir/Patient", "{}", '{"resourceType": "Patient"}', 201)],
        steps=[
            StepResult(
                1,
                "Provide and Register one document",
                "RegistryResponse status Success",
                Outcome.PASSED,
                "Success",
                0.25,
                [Evidence("POST /xds/repository (ITI-41)", "<Envelope/>", "<RegistryResponse/>", 200)],
            ),
            StepResult(2, "FindDocuments", "Exactly the published entry", Outcome.PASSED, "", 0.25),
        ],
    )


def _failed() -> CaseResult:
    return CaseResult(
        id="XDS-012",
        title="Wrong supplied hash <b>bold</b>",
        profile="XDS.b",
        actor="Document Repository",
        reference="ITI TF-2b 3.41.4.1.3.1; NIST 12369",
        description="A hash that does not match the content is refused & reported.",
        outcome=Outcome.FAILED,
        message="step 2: XDSRepositoryMetadataError; got 'Success'",
        seconds=0.75,
        steps=[
            StepResult(1, "Register the patient", "201 Created", Outcome.PASSED, "", 0.1),
            StepResult(
                2,
                "Provide and Register with a wrong hash",
                "Failure with XDSRepositoryMetadataError",
                Outcome.FAILED,
                "XDSRepositoryMetadataError; got 'Success'",
                0.6,
                [Evidence("POST /xds/repository (ITI-41)", "sent " + HOSTILE, "answer " + HOSTILE, 200)],
            ),
            StepResult(3, "FindDocuments", "Nothing was stored", Outcome.SKIPPED, "not run"),
        ],
    )


def _error() -> CaseResult:
    return CaseResult(
        id="MHD-003",
        title="Provide bundle",
        profile="MHD",
        actor="Document Recipient",
        reference="ITI TF-2 3.65",
        outcome=Outcome.ERROR,
        message="setup: ConnectError: connection refused \x00\x1b[31m",
        seconds=0.1,
        steps=[StepResult(1, "POST the bundle", "201", Outcome.SKIPPED, "not run")],
    )


def _skipped() -> CaseResult:
    return CaseResult(
        id="CON-004",
        title="Break the glass",
        profile="consent",
        actor="Consent enforcement",
        reference="Abrumet rules",
        outcome=Outcome.SKIPPED,
        message="needs nurse, which this run does not have",
        steps=[StepResult(1, "Retrieve with a reason", "Allowed and audited", Outcome.SKIPPED, "not run")],
    )


def _suite(*cases: CaseResult, kind: str = "conformance", notes: tuple[str, ...] = ()) -> SuiteResult:
    return SuiteResult(
        title="rsb-connector conformance run",
        target="https://hub.example.test",
        started=STARTED,
        finished=STARTED + timedelta(seconds=2.5),
        cases=list(cases),
        caller="professional Dr <Test>, NIHII 12345625004",
        notes=list(notes),
        kind=kind,
    )


def _mixed() -> SuiteResult:
    return _suite(_passed(), _failed(), _error(), _skipped(), notes=("1 of 60 cases & more were selected.",))


# ------------------------------------------------------------------------------------------------- HTML


def test_html_escapes_everything_a_hub_or_a_case_sends() -> None:
    page = render_html(_mixed())
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>bold</b>" not in page
    assert "Dr <Test>" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "Wrong supplied hash &lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("<script>") == 1  # the report's own expand/collapse helper, nothing else
    doc = lxml.html.document_fromstring(page)
    scripts = doc.xpath("//script")
    assert len(scripts) == 1 and not scripts[0].get("src")
    assert not doc.xpath("//*[@onerror]")
    assert "refused & reported" in doc.text_content()


def test_html_is_self_contained() -> None:
    page = render_html(_mixed())
    doc = lxml.html.document_fromstring(page)
    assert not doc.xpath("//link | //img | //iframe | //object | //*[@src]")
    external = [a.get("href") for a in doc.xpath("//a[@href]") if not a.get("href", "").startswith("#")]
    assert external == []
    assert doc.xpath("//head/style")
    anchors = {a.get("href")[1:] for a in doc.xpath("//a[@href]")}
    ids = set(doc.xpath("//@id"))
    assert anchors <= ids, "every link of the case table leads to its case"


def test_html_summary_and_case_table() -> None:
    doc = lxml.html.document_fromstring(render_html(_mixed()))
    text = doc.text_content()
    verdict = doc.get_element_by_id("verdict")
    assert "fail" in verdict.get("class")
    assert verdict.text_content().startswith("FAIL — 3 of 4 cases did not pass")
    for fact in ("https://hub.example.test", "Dr <Test>", "2025-03-01 09:30:00 UTC", "2.50 s"):
        assert fact in text
    assert "1 of 60 cases & more were selected." in text
    counts = doc.xpath("//table[@class='counts']//td")
    assert [c.text_content() for c in counts] == ["1", "1", "1", "1", "4"]
    rows = doc.xpath("//table[@class='cases']//tr[contains(@class, 'case-row')]")
    assert [r.xpath("string(td[1])") for r in rows] == ["XDS-001", "XDS-012", "MHD-003", "CON-004"]
    assert [r.xpath("string(td[5])") for r in rows] == ["PASSED", "FAILED", "ERROR", "SKIPPED"]
    assert [r.xpath("string(td[6])") for r in rows] == ["0.50", "0.75", "0.10", "0.00"]
    assert "needs nurse" in rows[3].text_content()
    assert "step 2: XDSRepositoryMetadataError" in rows[1].text_content()


def test_html_case_details_steps_evidence_and_why() -> None:
    doc = lxml.html.document_fromstring(render_html(_mixed()))
    cases = doc.xpath("//details[contains(@class, 'case ')]")
    assert len(cases) == 4
    passed, failed, error, skipped = cases
    assert passed.get("open") is None and skipped.get("open") is None
    assert failed.get("open") is not None and error.get("open") is not None

    why = failed.xpath(".//div[contains(@class, 'why')]")[0].text_content()
    assert "Step 2: Provide and Register with a wrong hash" in why
    assert "Expected: Failure with XDSRepositoryMetadataError" in why
    assert "Got: XDSRepositoryMetadataError; got 'Success'" in why
    assert "ITI TF-2b 3.41.4.1.3.1; NIST 12369" in failed.text_content()
    assert "refused & reported" in failed.text_content()
    steps = failed.xpath(".//table[@class='steps']/tr[starts-with(@class, 'step-') and not(contains(@class, 'ex'))]")
    assert [s.xpath("string(td[5])") for s in steps] == ["", "XDSRepositoryMetadataError; got 'Success'", "not run"]
    exchanges = failed.xpath(".//details[@class='exchange']")
    assert len(exchanges) == 1 and exchanges[0].get("open") is None
    assert [p.text_content() for p in exchanges[0].xpath(".//pre")] == ["sent " + HOSTILE, "answer " + HOSTILE]

    assert "Setup exchanges" in passed.text_content()
    assert "POST /fhir/Patient" in passed.text_content()
    assert not passed.xpath(".//div[contains(@class, 'why')]")
    assert "ConnectError: connection refused" in error.xpath(".//div[contains(@class, 'why')]")[0].text_content()
    assert "Not run" in skipped.xpath(".//div[contains(@class, 'why')]")[0].text_content()


def test_html_banner_when_everything_passed_and_when_nothing_ran() -> None:
    doc = lxml.html.document_fromstring(render_html(_suite(_passed())))
    verdict = doc.get_element_by_id("verdict")
    assert "pass" in verdict.get("class").split()
    assert verdict.text_content() == "PASS — every selected case passed (1 case)"
    empty = lxml.html.document_fromstring(render_html(_suite()))
    assert empty.get_element_by_id("verdict").text_content() == "FAIL — no case was run"


def test_html_wording_of_a_connector_report() -> None:
    message = _failed()
    message.id, message.title = "msg-17", "ITI-41 from nihii:12345625004 at 09:31"
    result = _suite(_passed(), message, kind="connector")
    doc = lxml.html.document_fromstring(render_html(result))
    text = doc.text_content()
    assert doc.xpath("string(//h1)").startswith("Connector validation report")
    assert doc.get_element_by_id("verdict").text_content() == "FAIL — 1 of 2 messages do not conform"
    assert "Rule family" in text and "Why it does not conform" in text
    assert "Messages" in doc.xpath("string(//section/h2)")
    assert "case" not in doc.get_element_by_id("verdict").text_content()


# ------------------------------------------------------------------------------------------------- JUnit

# The JUnit XML format as GitLab and Jenkins read it: a condensed form of Jenkins' junit-10.xsd (testsuites of
# testsuite of testcase; failure/error/skipped; system-out), strict about element order and attribute types.
JUNIT_XSD = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" elementFormDefault="qualified">
  <xs:simpleType name="seconds"><xs:restriction base="xs:decimal"><xs:minInclusive value="0"/></xs:restriction>
  </xs:simpleType>
  <xs:complexType name="problem" mixed="true">
    <xs:attribute name="message" type="xs:string"/><xs:attribute name="type" type="xs:string"/>
  </xs:complexType>
  <xs:element name="testsuites">
    <xs:complexType><xs:sequence><xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
      <xs:attribute name="name" type="xs:string"/><xs:attribute name="time" type="seconds"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuite">
    <xs:complexType><xs:sequence>
        <xs:element name="properties" minOccurs="0"><xs:complexType><xs:sequence>
          <xs:element name="property" minOccurs="0" maxOccurs="unbounded"><xs:complexType>
            <xs:attribute name="name" type="xs:string" use="required"/>
            <xs:attribute name="value" type="xs:string" use="required"/></xs:complexType></xs:element>
        </xs:sequence></xs:complexType></xs:element>
        <xs:element name="testcase" minOccurs="0" maxOccurs="unbounded"><xs:complexType><xs:sequence>
            <xs:choice minOccurs="0">
              <xs:element name="skipped"><xs:complexType mixed="true">
                <xs:attribute name="message" type="xs:string"/></xs:complexType></xs:element>
              <xs:element name="error" type="problem"/>
              <xs:element name="failure" type="problem"/>
            </xs:choice>
            <xs:element name="system-out" type="xs:string" minOccurs="0"/>
            <xs:element name="system-err" type="xs:string" minOccurs="0"/>
          </xs:sequence>
          <xs:attribute name="name" type="xs:string" use="required"/>
          <xs:attribute name="classname" type="xs:string" use="required"/>
          <xs:attribute name="time" type="seconds" use="required"/>
        </xs:complexType></xs:element>
        <xs:element name="system-out" type="xs:string" minOccurs="0"/>
        <xs:element name="system-err" type="xs:string" minOccurs="0"/>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="tests" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="failures" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="errors" type="xs:nonNegativeInteger" use="required"/>
      <xs:attribute name="skipped" type="xs:nonNegativeInteger"/>
      <xs:attribute name="time" type="seconds" use="required"/>
      <xs:attribute name="timestamp" use="required"><xs:simpleType><xs:restriction base="xs:dateTime">
        <xs:pattern value="[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"/></xs:restriction></xs:simpleType>
      </xs:attribute>
      <xs:attribute name="hostname" type="xs:string" use="required"/>
      <xs:attribute name="id" type="xs:int"/>
      <xs:attribute name="package" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def _junit(result: SuiteResult) -> etree._Element:
    data = render_junit(result)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(data)
    schema = etree.XMLSchema(etree.fromstring(JUNIT_XSD))
    assert schema.validate(root), schema.error_log
    return root


def test_junit_structure_and_counts() -> None:
    root = _junit(_mixed())
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "4",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "2.500",
    }
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["XDS.b", "MHD", "consent"]
    xds, mhd, consent = suites
    assert {k: xds.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "2",
        "failures": "1",
        "errors": "0",
        "skipped": "0",
        "time": "1.250",
    }
    assert (mhd.get("tests"), mhd.get("errors")) == ("1", "1")
    assert (consent.get("tests"), consent.get("skipped")) == ("1", "1")
    assert xds.get("timestamp") == "2025-03-01T09:30:00"
    properties = {p.get("name"): p.get("value") for p in xds.find("properties")}
    assert properties["target"] == "https://hub.example.test"
    assert properties["note"] == "1 of 60 cases & more were selected."

    cases = xds.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("rsb.conformance.XDS_b", "XDS-001 Single document submission", "0.500"),
        ("rsb.conformance.XDS_b", "XDS-012 Wrong supplied hash <b>bold</b>", "0.750"),
    ]
    assert mhd.find("testcase").get("classname") == "rsb.conformance.MHD"


def test_junit_outcome_elements() -> None:
    root = _junit(_mixed())
    passed, failed = root.findall("testsuite")[0].findall("testcase")
    assert [child.tag for child in passed] == ["system-out"]
    out = passed.findtext("system-out")
    assert "Step 1 [passed] Provide and Register one document" in out
    assert "exchange: POST /xds/repository (ITI-41) → 200" in out

    failure = failed.find("failure")
    assert failure is not None and [c.tag for c in failed] == ["failure", "system-out"]
    assert failure.get("message") == "step 2: XDSRepositoryMetadataError; got 'Success'"
    assert "Step 2: Provide and Register with a wrong hash" in failure.text
    assert "Expected: Failure with XDSRepositoryMetadataError" in failure.text
    assert "answer " + HOSTILE in failure.text  # the last exchange's answer, as text
    assert "Step 3 [skipped] FindDocuments" in failed.findtext("system-out")

    error = root.findall("testsuite")[1].find("testcase/error")
    assert error is not None
    assert error.get("message").startswith("setup: ConnectError: connection refused")  # control characters replaced
    skipped = root.findall("testsuite")[2].find("testcase/skipped")
    assert skipped is not None and skipped.get("message") == "needs nurse, which this run does not have"


def test_junit_of_an_empty_run_and_of_a_connector_report() -> None:
    root = _junit(_suite())
    assert root.get("tests") == "0" and root.findall("testsuite") == []
    message = _failed()
    message.profile = "MHD"
    root = _junit(_suite(message, kind="connector"))
    assert root.find("testsuite/testcase").get("classname") == "rsb.connector.MHD"


# ------------------------------------------------------------------------------------------------- JSON


def test_json_round_trip() -> None:
    result = _mixed()
    text = render_json(result)
    data = json.loads(text)
    assert data["summary"] == {"passed": 1, "failed": 1, "error": 1, "skipped": 1, "total": 4}
    assert data["passed"] is False
    again = SuiteResult.from_json(data)
    assert again == result
    assert again.to_json() == data
    assert SuiteResult.from_json(json.loads(render_json(_suite()))) == _suite()


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda d: d.pop("target"), "'target' is missing"),
        (lambda d: d.update(started="yesterday"), "not an ISO 8601 time"),
        (lambda d: d["cases"][0].update(outcome="maybe"), "unknown outcome 'maybe'"),
        (lambda d: d["cases"][1]["steps"][1].update(number="two"), "'number' has the wrong type"),
        (lambda d: d["cases"][1]["steps"][1]["evidence"][0].update(status=True), "'status' has the wrong type"),
        (lambda d: d.update(cases={}), "'cases' has the wrong type"),
    ],
)
def test_json_that_is_not_a_report_is_refused(change: object, complaint: str) -> None:
    data = json.loads(render_json(_mixed()))
    change(data)  # type: ignore[operator]
    with pytest.raises(ResultFormatError, match=re.escape(complaint)):
        SuiteResult.from_json(data)


def test_write_reports(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    paths = write_reports(_mixed(), folder)
    assert paths == {"html": folder / "report.html", "junit": folder / "junit.xml", "json": folder / "report.json"}
    assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert etree.parse(str(paths["junit"])).getroot().get("tests") == "4"
    assert SuiteResult.from_json(json.loads(paths["json"].read_text(encoding="utf-8"))) == _mixed()
