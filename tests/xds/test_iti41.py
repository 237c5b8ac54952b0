"""ITI-41 Provide and Register: request and response bodies, XSD-valid, round trips, real-world samples."""

from __future__ import annotations

import base64
import dataclasses
from typing import TYPE_CHECKING

import pytest
from lxml import etree

from rsb_connector.errors import Problem, Severity
from rsb_connector.metadata.model import AssociationType, Code, Submission, SubmissionSetStatus
from rsb_connector.xds import constants as c
from rsb_connector.xds.ebrim import submission_set_to_registry_package
from rsb_connector.xds.iti41 import (
    Inline,
    XopRef,
    build_request,
    build_response,
    parse_request,
    parse_response,
)

if TYPE_CHECKING:
    from conftest import Xsd

PATIENT = "73032929895^^^&2.16.840.1.113883.3.6777.5.1&ISO"
XDSB = f"{{{c.XDSB}}}"
XOP = f"{{{c.XOP}}}"
PDF = b"%PDF-1.4 fake pdf\n\x00\x01\x02\xff"
TEXT = b"Bonjour, ceci est une note.\n"


def _documents() -> dict[str, XopRef | Inline]:
    return {"Document01": XopRef("doc1@rsb.example"), "Document02": Inline(TEXT)}


def test_request_round_trip(submission: Submission) -> None:
    el = build_request(submission, _documents())
    assert el.tag == f"{XDSB}ProvideAndRegisterDocumentSetRequest"
    parsed = parse_request(el)
    assert parsed.problems == []
    assert parsed.submission == submission
    assert parsed.documents == _documents()


def test_request_structure(submission: Submission) -> None:
    el = build_request(submission, _documents())
    children = [etree.QName(child).localname for child in el]
    assert children == ["SubmitObjectsRequest", "Document", "Document"]
    first, second = el.iterchildren(f"{XDSB}Document")
    assert first.get("id") == "Document01"
    include = first.find(f"{XOP}Include")
    assert include is not None
    assert include.get("href") == "cid:doc1@rsb.example"
    assert second.get("id") == "Document02"
    assert base64.b64decode(second.text or "") == TEXT


def test_request_validates_with_xop_resolved_and_inline(submission: Submission, xsd: Xsd) -> None:
    mtom = build_request(submission, {"Document01": XopRef("doc1@rsb.example"), "Document02": XopRef("doc2")})
    assert xsd.errors(mtom) != []  # xop:Include is not base64: the raw XOP document is not the schema's infoset
    xsd.assert_valid(mtom, {"doc1@rsb.example": PDF, "doc2": TEXT})
    xsd.assert_valid(build_request(submission, {"Document01": Inline(PDF), "Document02": Inline(TEXT)}))


def test_unsafe_cid_characters_are_percent_encoded(submission: Submission) -> None:
    cid = "doc 1/<é>%@rsb.example"
    el = build_request(submission, {"Document01": XopRef(cid)})
    href = el.find(f"{XDSB}Document/{XOP}Include").get("href")
    assert href is not None
    assert href.startswith("cid:")
    assert all(ch not in href[4:] for ch in " /<>é")
    assert "%25" in href  # the percent sign itself is escaped
    assert parse_request(el).documents == {"Document01": XopRef(cid)}


def test_percent_encoded_cid_from_the_wire_is_unquoted(submission: Submission) -> None:
    el = build_request(submission, {})
    doc = etree.SubElement(el, f"{XDSB}Document", id="Document01")
    etree.SubElement(doc, f"{XOP}Include", href="cid:1.urn%3Auuid%3A0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0%40apache.org")
    parsed = parse_request(el)
    assert parsed.documents["Document01"] == XopRef("1.urn:uuid:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0@apache.org")


def test_inline_base64_with_line_breaks_is_accepted(submission: Submission) -> None:
    el = build_request(submission, {})
    encoded = base64.encodebytes(PDF * 20).decode()  # 76-column lines, as MIME encoders write them
    etree.SubElement(el, f"{XDSB}Document", id="Document01").text = "\n  " + encoded
    parsed = parse_request(el)
    assert parsed.problems == []
    assert parsed.documents == {"Document01": Inline(PDF * 20)}


def test_document_problems(submission: Submission) -> None:
    el = build_request(submission, {})
    etree.SubElement(el, f"{XDSB}Document", id="Document01").text = "this is not base64!"
    etree.SubElement(el, f"{XDSB}Document", id="Document02")
    etree.SubElement(el, f"{XDSB}Document").text = "AAAA"
    doc = etree.SubElement(el, f"{XDSB}Document", id="Document03")
    etree.SubElement(doc, f"{XOP}Include", href="http://example.org/doc")
    etree.SubElement(el, f"{XDSB}Document", id="Document03").text = "AAAA"
    parsed = parse_request(el)
    assert parsed.documents == {}
    assert parsed.submission.document_ids == ["Document01", "Document02", "Document03", "Document03"]
    assert [(p.code, p.path) for p in parsed.problems] == [
        ("XDSRepositoryError", "Document[Document01]"),
        ("XDSRepositoryError", "Document[Document02]"),
        ("XDSRepositoryError", "Document[]"),
        ("XDSRepositoryError", "Document[Document03]"),
        ("XDSRepositoryError", "Document[Document03]"),
    ]
    assert parsed.problems[0].message.startswith("Document[Document01]: not base64")
    assert "empty" in parsed.problems[1].message
    assert "cid:" in parsed.problems[3].message
    assert "two Documents" in parsed.problems[4].message


def test_submission_set_count_is_checked(submission: Submission) -> None:
    el = build_request(submission, {})
    object_list = el.find(f"{{{c.LCM}}}SubmitObjectsRequest/{{{c.RIM}}}RegistryObjectList")
    assert object_list is not None
    second = dataclasses.replace(submission.submission_set, entry_uuid="SubmissionSet02", authors=[])
    object_list.append(submission_set_to_registry_package(second))
    parsed = parse_request(el)
    assert parsed.submission.submission_set.entry_uuid == "SubmissionSet01"
    assert [(p.code, p.path) for p in parsed.problems if p.is_error] == [("XDSRegistryMetadataError", "SubmissionSet")]
    assert "2 SubmissionSets" in parsed.problems[-1].message

    for package in object_list.findall(f"{{{c.RIM}}}RegistryPackage"):
        object_list.remove(package)
    for classification in object_list.findall(f"{{{c.RIM}}}Classification"):
        object_list.remove(classification)
    parsed = parse_request(el)
    assert parsed.submission.submission_set.entry_uuid == ""
    assert [(p.code, p.path) for p in parsed.problems] == [("XDSRegistryMetadataError", "SubmissionSet")]


def test_wrong_or_empty_body_is_reported_not_raised() -> None:
    parsed = parse_request(etree.Element(f"{{{c.LCM}}}SubmitObjectsRequest"))
    assert [p.path for p in parsed.problems] == ["Body", "SubmitObjectsRequest", "SubmissionSet"]
    assert all(p.code == "XDSRegistryMetadataError" for p in parsed.problems)


@pytest.mark.parametrize(
    ("status", "problems"),
    [
        (c.STATUS_SUCCESS, ()),
        (
            c.STATUS_FAILURE,
            (
                Problem("XDSMissingDocument", "no Document for entry Document02", "DocumentEntry[Document02]"),
                Problem(
                    "XDSRegistryMetadataError", "unknown slot ignored", "DocumentEntry[Document01]", Severity.WARNING
                ),
            ),
        ),
    ],
)
def test_response_validates_and_round_trips(status: str, problems: tuple[Problem, ...], xsd: Xsd) -> None:
    el = build_response(status, problems)
    assert el.tag == f"{{{c.RS}}}RegistryResponse"
    xsd.assert_valid(el)
    result = parse_response(el)
    assert result.status == status
    assert result.problems == list(problems)


# A Provide and Register request written the way Document Sources (NIST toolkit samples, IPF, OpenXDS) send it:
# default-namespace-free prefixes, the SubmissionSet classification and a classCode as siblings in the list,
# comments, pretty-printing, ExternalIdentifiers without objectType, a percent-encoded cid.
NIST_STYLE = """<?xml version="1.0" encoding="UTF-8"?>
<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="urn:ihe:iti:xds-b:2007">
  <lcm:SubmitObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0">
    <rim:RegistryObjectList xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
      <rim:ExtrinsicObject id="Document01" mimeType="text/plain"
          objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1">
        <rim:Slot name="creationTime">
          <rim:ValueList><rim:Value>20051224</rim:Value></rim:ValueList>
        </rim:Slot>
        <rim:Slot name="languageCode">
          <rim:ValueList><rim:Value>en-us</rim:Value></rim:ValueList>
        </rim:Slot>
        <rim:Slot name="sourcePatientId">
          <rim:ValueList><rim:Value>89765a87b^^^&amp;3.4.5&amp;ISO</rim:Value></rim:ValueList>
        </rim:Slot>
        <rim:Slot name="sourcePatientInfo">
          <rim:ValueList>
            <rim:Value>PID-3|pid1^^^&amp;1.2.3&amp;ISO</rim:Value>
            <rim:Value>PID-5|Doe^John^^^</rim:Value>
            <rim:Value>PID-7|19560527</rim:Value>
          </rim:ValueList>
        </rim:Slot>
        <rim:Name><rim:LocalizedString value="DocA"/></rim:Name>
        <rim:Description/>
        <!-- author -->
        <rim:Classification id="cl01" classificationScheme="urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
            classifiedObject="Document01" nodeRepresentation="">
          <rim:Slot name="authorPerson">
            <rim:ValueList><rim:Value>^Smitty^Gerald^^^</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Slot name="authorInstitution">
            <rim:ValueList>
              <rim:Value>Cleveland Clinic</rim:Value>
              <rim:Value>Parma Community</rim:Value>
            </rim:ValueList>
          </rim:Slot>
          <rim:Slot name="authorRole"><rim:ValueList><rim:Value>Attending</rim:Value></rim:ValueList></rim:Slot>
          <rim:Slot name="authorSpecialty"><rim:ValueList><rim:Value>Orthopedic</rim:Value></rim:ValueList></rim:Slot>
        </rim:Classification>
        <rim:Classification id="cl03" classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
            classifiedObject="Document01" nodeRepresentation="1.3.6.1.4.1.21367.2006.7.101">
          <rim:Slot name="codingScheme">
            <rim:ValueList><rim:Value>Connect-a-thon confidentialityCodes</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Name><rim:LocalizedString value="Clinical-Staff"/></rim:Name>
        </rim:Classification>
        <rim:Classification id="cl04" classificationScheme="urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
            classifiedObject="Document01" nodeRepresentation="CDAR2/IHE 1.0">
          <rim:Slot name="codingScheme">
            <rim:ValueList><rim:Value>Connect-a-thon formatCodes</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Name><rim:LocalizedString value="CDAR2/IHE 1.0"/></rim:Name>
        </rim:Classification>
        <rim:Classification id="cl05" classificationScheme="urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
            classifiedObject="Document01" nodeRepresentation="Outpatient">
          <rim:Slot name="codingScheme">
            <rim:ValueList><rim:Value>Connect-a-thon healthcareFacilityTypeCodes</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Name><rim:LocalizedString value="Outpatient"/></rim:Name>
        </rim:Classification>
        <rim:Classification id="cl06" classificationScheme="urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
            classifiedObject="Document01" nodeRepresentation="General Medicine">
          <rim:Slot name="codingScheme">
            <rim:ValueList><rim:Value>Connect-a-thon practiceSettingCodes</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Name><rim:LocalizedString value="General Medicine"/></rim:Name>
        </rim:Classification>
        <rim:Classification id="cl07" classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
            classifiedObject="Document01" nodeRepresentation="34108-1">
          <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>LOINC</rim:Value></rim:ValueList></rim:Slot>
          <rim:Name><rim:LocalizedString value="Outpatient Evaluation And Management"/></rim:Name>
        </rim:Classification>
        <rim:ExternalIdentifier id="ei01" registryObject="Document01"
            identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
            value="73032929895^^^&amp;2.16.840.1.113883.3.6777.5.1&amp;ISO">
          <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
        </rim:ExternalIdentifier>
        <rim:ExternalIdentifier id="ei02" registryObject="Document01"
            identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="1.42.20051224.1.1">
          <rim:Name><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name>
        </rim:ExternalIdentifier>
      </rim:ExtrinsicObject>
      <!-- classCode sent as a sibling -->
      <rim:Classification id="cl02" classificationScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
          classifiedObject="Document01" nodeRepresentation="History and Physical">
        <rim:Slot name="codingScheme">
          <rim:ValueList><rim:Value>Connect-a-thon classCodes</rim:Value></rim:ValueList>
        </rim:Slot>
        <rim:Name><rim:LocalizedString value="History and Physical"/></rim:Name>
      </rim:Classification>
      <rim:RegistryPackage id="SubmissionSet01">
        <rim:Slot name="submissionTime"><rim:ValueList><rim:Value>20041225235050</rim:Value></rim:ValueList></rim:Slot>
        <rim:Name><rim:LocalizedString value="Physical"/></rim:Name>
        <rim:Description><rim:LocalizedString value="Annual physical"/></rim:Description>
        <rim:Classification id="cl08" classificationScheme="urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
            classifiedObject="SubmissionSet01" nodeRepresentation="">
          <rim:Slot name="authorPerson">
            <rim:ValueList><rim:Value>^Dopplemeyer^Sherry^^^</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Slot name="authorInstitution">
            <rim:ValueList><rim:Value>Cleveland Clinic</rim:Value></rim:ValueList>
          </rim:Slot>
        </rim:Classification>
        <rim:Classification id="cl09" classificationScheme="urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
            classifiedObject="SubmissionSet01" nodeRepresentation="History and Physical">
          <rim:Slot name="codingScheme">
            <rim:ValueList><rim:Value>Connect-a-thon contentTypeCodes</rim:Value></rim:ValueList>
          </rim:Slot>
          <rim:Name><rim:LocalizedString value="History and Physical"/></rim:Name>
        </rim:Classification>
        <rim:ExternalIdentifier id="ei03" registryObject="SubmissionSet01"
            identificationScheme="urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8" value="1.42.20051224.1.2">
          <rim:Name><rim:LocalizedString value="XDSSubmissionSet.uniqueId"/></rim:Name>
        </rim:ExternalIdentifier>
        <rim:ExternalIdentifier id="ei04" registryObject="SubmissionSet01"
            identificationScheme="urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832" value="1.3.6.1.4.1.21367.2005.3.7">
          <rim:Name><rim:LocalizedString value="XDSSubmissionSet.sourceId"/></rim:Name>
        </rim:ExternalIdentifier>
        <rim:ExternalIdentifier id="ei05" registryObject="SubmissionSet01"
            identificationScheme="urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
            value="73032929895^^^&amp;2.16.840.1.113883.3.6777.5.1&amp;ISO">
          <rim:Name><rim:LocalizedString value="XDSSubmissionSet.patientId"/></rim:Name>
        </rim:ExternalIdentifier>
      </rim:RegistryPackage>
      <rim:Classification id="cl10" classifiedObject="SubmissionSet01"
          classificationNode="urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"/>
      <rim:Association id="as01" associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
          sourceObject="SubmissionSet01" targetObject="Document01">
        <rim:Slot name="SubmissionSetStatus"><rim:ValueList><rim:Value>Original</rim:Value></rim:ValueList></rim:Slot>
      </rim:Association>
    </rim:RegistryObjectList>
  </lcm:SubmitObjectsRequest>
  <xdsb:Document id="Document01"><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include"
      href="cid:1.urn%3Auuid%3AB0A1C2D3E4F5%40apache.org"/></xdsb:Document>
</xdsb:ProvideAndRegisterDocumentSetRequest>
"""


def test_nist_style_sample_parses(xsd: Xsd) -> None:
    el = etree.fromstring(NIST_STYLE.encode())
    xsd.assert_valid(el, {"1.urn:uuid:B0A1C2D3E4F5@apache.org": b"hello"})
    parsed = parse_request(el)
    assert parsed.problems == []
    sub = parsed.submission
    assert sub.document_ids == ["Document01"]
    assert parsed.documents == {"Document01": XopRef("1.urn:uuid:B0A1C2D3E4F5@apache.org")}
    (entry,) = sub.entries
    assert entry.class_code == Code("History and Physical", "Connect-a-thon classCodes", "History and Physical")
    assert entry.type_code == Code("34108-1", "LOINC", "Outpatient Evaluation And Management")
    assert entry.confidentiality_codes == [
        Code("1.3.6.1.4.1.21367.2006.7.101", "Connect-a-thon confidentialityCodes", "Clinical-Staff")
    ]
    assert entry.authors[0].person == "^Smitty^Gerald^^^"
    assert entry.authors[0].institutions == ("Cleveland Clinic", "Parma Community")
    assert entry.source_patient_info == ["PID-3|pid1^^^&1.2.3&ISO", "PID-5|Doe^John^^^", "PID-7|19560527"]
    assert entry.patient_id == PATIENT
    assert entry.unique_id == "1.42.20051224.1.1"
    assert entry.title == "DocA"
    assert entry.comments is None
    assert entry.creation_time == "20051224"
    ss = sub.submission_set
    assert ss.entry_uuid == "SubmissionSet01"
    assert ss.patient_id == PATIENT
    assert ss.source_id == "1.3.6.1.4.1.21367.2005.3.7"
    assert ss.content_type_code == Code(
        "History and Physical", "Connect-a-thon contentTypeCodes", "History and Physical"
    )
    assert ss.authors[0].person == "^Dopplemeyer^Sherry^^^"
    (has_member,) = sub.associations
    assert has_member.type is AssociationType.HAS_MEMBER
    assert has_member.submission_set_status is SubmissionSetStatus.ORIGINAL
    assert (has_member.source, has_member.target) == ("SubmissionSet01", "Document01")
