"""The value sets and the "five arguments, not fifty" metadata builder."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from rsb_connector.errors import InvalidIdentifier
from rsb_connector.identifiers import NIHDI_OID, SSIN_OID, Nihii, Ssin, parse_cx
from rsb_connector.metadata.builder import (
    DEFAULT_FACILITY_TYPE,
    DEFAULT_PRACTICE_SETTING,
    DEFAULT_SOURCE_ID,
    FORMAT_MIME_TYPE_SUFFICIENT,
    FORMAT_PDF,
    new_document,
    new_submission,
    professional_author,
    to_dtm,
)
from rsb_connector.metadata.model import AssociationType, Code, DocumentEntry, Dtm, SubmissionSetStatus
from rsb_connector.metadata.valuesets import CodeKind, ValueSets, load_value_sets, parse_value_sets

PATIENT = "73032929895"
OTHER_PATIENT = "72022102793"
DOCTOR = "11478761004"
OID = re.compile(r"[0-2](\.(0|[1-9]\d*))+")
UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CD_TRANSACTION = [
    "sumehr",
    "contactreport",
    "labresult",
    "note",
    "result",
    "report",
    "referral",
    "request",
    "admission",
    "discharge",
    "dischargereport",
    "vaccination",
    "medicationscheme",
    "pharmaceuticalprescription",
    "alert",
    "clinicalsummary",
    "telemonitoring",
    "careplan",
]


def build(**overrides: Any) -> DocumentEntry:
    arguments: dict[str, Any] = {"patient": PATIENT, "document_type": "sumehr", "mime_type": "text/plain"}
    arguments.update(overrides)
    content = arguments.pop("content", b"hello")
    return new_document(content, **arguments)


# ------------------------------------------------------------------------------------------------ value sets


def test_every_kind_has_a_value_set_with_a_source() -> None:
    sets = load_value_sets()
    assert load_value_sets() is sets  # cached
    for kind in CodeKind:
        value_set = sets.value_set(kind)
        assert len(value_set.source) > 20
        if kind is not CodeKind.EVENT_CODE_LIST:
            assert sets.codes(kind)


def test_cd_transaction_codes_are_class_type_and_content_type_codes() -> None:
    sets = load_value_sets()
    for kind in (CodeKind.CLASS_CODE, CodeKind.TYPE_CODE, CodeKind.CONTENT_TYPE_CODE):
        for key in CD_TRANSACTION:
            code = sets.get(kind, key)
            assert code == Code(key, "CD-TRANSACTION", code.display)
            assert code.display
            assert sets.display(kind, key, "fr")
            assert sets.display(kind, key, "nl-BE")
    assert sets.get(CodeKind.CLASS_CODE, "genetic").scheme == "RSB-CLASS"
    with pytest.raises(ValueError, match="genetic"):
        sets.get(CodeKind.TYPE_CODE, "genetic")
    fhir = sets.fhir_system(CodeKind.TYPE_CODE, "CD-TRANSACTION")
    assert fhir == "https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction"


def test_value_set_schemes_are_the_documented_oids() -> None:
    sets = load_value_sets()
    assert {c.code for c in sets.codes("confidentialityCode")} == {"N", "R", "V"}
    assert {c.scheme for c in sets.codes("confidentialityCode")} == {"2.16.840.1.113883.5.25"}
    assert sets.get("formatCode", "pdf") == Code(
        FORMAT_PDF, "1.3.6.1.4.1.19376.1.2.3", sets.get("formatCode", "pdf").display
    )
    assert sets.get("formatCode", "urn:ihe:iti:xds-sd:text:2008").scheme == "1.3.6.1.4.1.19376.1.2.3"
    assert sets.get("formatCode", FORMAT_MIME_TYPE_SUFFICIENT).scheme == "1.3.6.1.4.1.19376.1.2.3"
    assert sets.get("formatCode", "kmehr").scheme != "1.3.6.1.4.1.19376.1.2.3"
    for kind in ("healthcareFacilityTypeCode", "practiceSettingCode"):
        assert {c.scheme for c in sets.codes(kind)} == {"2.16.840.1.113883.6.96"}
    assert [c.code for c in sets.codes("languageCode")] == ["fr-BE", "nl-BE", "de-BE", "en"]


def test_get_by_alias_and_case() -> None:
    sets = load_value_sets()
    assert sets.get("healthcareFacilityTypeCode", "hospital").code == "22232009"
    assert sets.get("healthcareFacilityTypeCode", "Hospital").code == "22232009"
    assert sets.get("practiceSettingCode", "cardiology").code == "394579002"
    assert sets.get("confidentialityCode", "r").code == "R"
    assert sets.get("languageCode", "nl").code == "nl-BE"
    assert sets.get("typeCode", "SUMEHR").code == "sumehr"


def test_unknown_keys_and_kinds_list_the_valid_ones() -> None:
    sets = load_value_sets()
    with pytest.raises(ValueError, match=r"unknown confidentialityCode 'X': use one of N, R, V"):
        sets.get("confidentialityCode", "X")
    with pytest.raises(ValueError, match=r"unknown kind of code 'colour'.*classCode"):
        sets.get("colour", "red")


def test_contains_compares_code_and_scheme_only() -> None:
    sets = load_value_sets()
    assert sets.contains("classCode", Code("sumehr", "CD-TRANSACTION"))
    assert sets.contains("classCode", Code("sumehr", "CD-TRANSACTION", "another display"))
    assert not sets.contains("classCode", Code("sumehr", "2.16.840.1.113883.6.1"))
    assert not sets.contains("confidentialityCode", Code("U", "2.16.840.1.113883.5.25"))
    assert sets.contains("eventCodeList", Code("anything", "1.2.3"))
    assert not sets.contains("eventCodeList", Code("anything", ""))


def test_bad_data_is_refused() -> None:
    base: dict[str, Any] = {
        "value_sets": {kind.value: {"source": "test", "scheme": "1.2.3", "codes": [{"code": "a"}]} for kind in CodeKind}
    }
    assert isinstance(parse_value_sets(base), ValueSets)
    twice = {
        **base,
        "value_sets": {
            **base["value_sets"],
            "typeCode": {"source": "t", "scheme": "1", "codes": [{"code": "a"}, {"code": "a"}]},
        },
    }
    with pytest.raises(ValueError, match="listed twice"):
        parse_value_sets(twice)
    missing = {"value_sets": {k: v for k, v in base["value_sets"].items() if k != "formatCode"}}
    with pytest.raises(ValueError, match="no formatCode"):
        parse_value_sets(missing)
    unsourced = {**base, "value_sets": {**base["value_sets"], "typeCode": {"scheme": "1", "codes": []}}}
    with pytest.raises(ValueError, match="source"):
        parse_value_sets(unsourced)


# --------------------------------------------------------------------------------------------------- builder


def test_five_arguments_give_a_complete_entry() -> None:
    sets = load_value_sets()
    author = professional_author(DOCTOR, family="Peeters", given="An")
    entry = new_document(
        b"%PDF-1.4 letter", patient=PATIENT, document_type="referral", author=author, mime_type="application/pdf"
    )
    # Every DocumentEntry attribute ITI-41 requires from a Document Source (domain.md).
    assert entry.unique_id
    assert OID.fullmatch(entry.unique_id)
    assert len(entry.unique_id) <= 64
    assert UUID_URN.fullmatch(entry.entry_uuid)
    assert entry.patient_id == f"{PATIENT}^^^&{SSIN_OID}&ISO"
    assert parse_cx(entry.patient_id).authority_oid == SSIN_OID
    assert entry.source_patient_id == entry.patient_id
    assert entry.mime_type == "application/pdf"
    assert entry.language_code == "fr-BE"
    assert entry.creation_time is not None
    assert Dtm(entry.creation_time).precision == 14
    assert entry.confidentiality_codes == [sets.get("confidentialityCode", "N")]
    required = {
        "classCode": entry.class_code,
        "typeCode": entry.type_code,
        "formatCode": entry.format_code,
        "healthcareFacilityTypeCode": entry.healthcare_facility_type_code,
        "practiceSettingCode": entry.practice_setting_code,
    }
    for kind, code in required.items():
        assert code is not None, kind
        assert sets.contains(kind, code), kind
    assert entry.class_code == entry.type_code == sets.get("typeCode", "referral")
    assert entry.format_code is not None
    assert entry.format_code.code == FORMAT_PDF
    assert entry.healthcare_facility_type_code == sets.get("healthcareFacilityTypeCode", DEFAULT_FACILITY_TYPE)
    assert entry.practice_setting_code == sets.get("practiceSettingCode", DEFAULT_PRACTICE_SETTING)
    assert entry.hash == hashlib.sha1(b"%PDF-1.4 letter").hexdigest()
    assert entry.size == len(b"%PDF-1.4 letter")
    assert entry.authors == [author]


def test_creation_time_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    entry = build()
    after = datetime.now(UTC)
    assert entry.creation_time is not None
    assert before <= Dtm(entry.creation_time).to_datetime() <= after


def test_fresh_ids_every_time() -> None:
    first, second = build(), build()
    assert first.unique_id != second.unique_id
    assert first.entry_uuid != second.entry_uuid


def test_given_values_are_used() -> None:
    entry = build(
        class_code="genetic",
        confidentiality="V",
        language="nl",
        facility_type="hospital",
        practice_setting="cardiology",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Résultat",
        unique_id="1.2.3.4^abc",
        entry_uuid="Document01",
        reference_ids=["ref^^^&1.2.3&ISO"],
        event_codes=[Code("E1", "1.2.3")],
        patient=Ssin(PATIENT),
    )
    assert entry.class_code is not None
    assert entry.class_code.code == "genetic"
    assert entry.type_code is not None
    assert entry.type_code.code == "sumehr"
    assert [c.code for c in entry.confidentiality_codes] == ["V"]
    assert entry.language_code == "nl-BE"
    assert entry.healthcare_facility_type_code is not None
    assert entry.healthcare_facility_type_code.code == "22232009"
    assert entry.practice_setting_code is not None
    assert entry.practice_setting_code.code == "394579002"
    assert entry.format_code is not None
    assert entry.format_code.code == "urn:ihe:iti:xds-sd:text:2008"
    assert (entry.title, entry.unique_id, entry.entry_uuid) == ("Résultat", "1.2.3.4^abc", "Document01")
    assert entry.reference_ids == ["ref^^^&1.2.3&ISO"]
    assert entry.event_codes == [Code("E1", "1.2.3")]


def test_unknown_document_type_lists_the_valid_keys() -> None:
    with pytest.raises(ValueError, match="unknown typeCode 'letter'") as caught:
        build(document_type="letter")
    for key in CD_TRANSACTION:
        assert key in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"confidentiality": "secret"}, "unknown confidentialityCode"),
        ({"language": "es-ES"}, "unknown languageCode"),
        ({"facility_type": "spaceship"}, "unknown healthcareFacilityTypeCode"),
        ({"practice_setting": "astrology"}, "unknown practiceSettingCode"),
        ({"format_code": "urn:nope"}, "unknown formatCode"),
        ({"mime_type": "pdf"}, "not a MIME type"),
        ({"unique_id": "1.2 3"}, "unique_id"),
        ({"creation_time": "yesterday"}, "creation_time 'yesterday' is not a time"),
    ],
)
def test_bad_arguments_say_what_to_send(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(**overrides)


def test_invalid_patient() -> None:
    with pytest.raises(InvalidIdentifier, match="check digits"):
        build(patient="73032929896")


def test_text_content_is_refused_with_advice() -> None:
    with pytest.raises(TypeError, match=r"pathlib\.Path"):
        build(content="letter.pdf")


# ------------------------------------------------------------------------------------------- content / digest


def test_path_stream_and_bytes_give_the_hashlib_hash_and_size(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000 + b"tail"
    path = tmp_path / "scan.pdf"
    path.write_bytes(data)
    expected = (hashlib.sha1(data).hexdigest(), len(data))
    from_bytes = build(content=data)
    from_path = build(content=path)
    with path.open("rb") as stream:
        from_stream = build(content=stream)
    from_bytearray = build(content=bytearray(data))
    for entry in (from_bytes, from_path, from_stream, from_bytearray):
        assert (entry.hash, entry.size) == expected


def test_a_stream_stays_at_its_position() -> None:
    data = b"0123456789" * 10_000
    stream = io.BytesIO(data)
    stream.seek(10)
    entry = build(content=stream)
    assert stream.tell() == 10
    assert (entry.hash, entry.size) == (hashlib.sha1(data[10:]).hexdigest(), len(data) - 10)
    assert stream.read() == data[10:]


class _OneWayStream(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        return self._inner.readinto(buffer)


def test_a_stream_that_cannot_seek_back_is_not_consumed() -> None:
    stream = _OneWayStream(b"data")
    with pytest.raises(ValueError, match="compute_digest=False"):
        build(content=stream)
    entry = build(content=stream, compute_digest=False)
    assert stream.reads == 0
    assert (entry.hash, entry.size) == (None, None)


# ---------------------------------------------------------------------------------------------- MIME guessing


@pytest.mark.parametrize(
    ("name", "mime", "format_code"),
    [
        ("letter.pdf", "application/pdf", FORMAT_PDF),
        ("LETTER.PDF", "application/pdf", FORMAT_PDF),
        ("note.txt", "text/plain", FORMAT_MIME_TYPE_SUFFICIENT),
        ("kmehr.xml", "text/xml", FORMAT_MIME_TYPE_SUFFICIENT),
        ("photo.jpg", "image/jpeg", FORMAT_MIME_TYPE_SUFFICIENT),
    ],
)
def test_mime_type_is_guessed_from_the_file_name(tmp_path: Path, name: str, mime: str, format_code: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"x")
    entry = new_document(path, patient=PATIENT, document_type="report")
    assert entry.mime_type == mime
    assert entry.format_code is not None
    assert entry.format_code.code == format_code
    with path.open("rb") as stream:
        assert new_document(stream, patient=PATIENT, document_type="report").mime_type == mime


def test_explicit_mime_type_wins(tmp_path: Path) -> None:
    path = tmp_path / "message.xml"
    path.write_bytes(b"<kmehrmessage/>")
    entry = new_document(path, patient=PATIENT, document_type="note", mime_type="application/xml", format_code="kmehr")
    assert entry.mime_type == "application/xml"
    assert entry.format_code is not None
    assert entry.format_code.code == "urn:be:fgov:ehealth:kmehr"


def test_mime_type_is_required_when_it_cannot_be_guessed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mime_type is required"):
        new_document(b"data", patient=PATIENT, document_type="note")
    odd = tmp_path / "data.unknownsuffix"
    odd.write_bytes(b"x")
    with pytest.raises(ValueError, match="mime_type is required"):
        new_document(odd, patient=PATIENT, document_type="note")
    with pytest.raises(ValueError, match="mime_type is required"):
        new_document(io.BytesIO(b"x"), patient=PATIENT, document_type="note")


# ------------------------------------------------------------------------------------------------------ times


PLUS_TWO = timezone(timedelta(hours=2))
MINUS_FIVE = timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 5, 1, 12, 30, 15, tzinfo=PLUS_TWO), "20240501103015"),
        # The negative-offset pitfall: 22:30 at -05:00 is 03:30 UTC the *next day* (and here the next year).
        (datetime(2024, 12, 31, 22, 30, 0, tzinfo=MINUS_FIVE), "20250101033000"),
        ("2024-12-31T22:30:00-05:00", "20250101033000"),
        ("2024-05-01T12:30:15+02:00", "20240501103015"),
        ("2024-05-01T10:30:15Z", "20240501103015"),
        (datetime(2024, 5, 1, 10, 30, 15), "20240501103015"),
        ("2004", "2004"),
        ("200412", "200412"),
        ("20041224", "20041224"),
        ("2004122415", "2004122415"),
        ("2004-12-24", "20041224"),
        ("2004-12", "200412"),
    ],
)
def test_times_are_utc_dtm(value: datetime | str, expected: str) -> None:
    assert to_dtm(value) == expected
    assert build(creation_time=value).creation_time == expected


def test_service_times() -> None:
    entry = build(service_start="20240501", service_stop=datetime(2024, 5, 2, 1, 0, tzinfo=MINUS_FIVE))
    assert (entry.service_start_time, entry.service_stop_time) == ("20240501", "20240502060000")
    # Coarse start within the same day as a precise stop is not "after" it.
    same_day = build(service_start="20240501", service_stop="20240501083000")
    assert same_day.service_start_time == "20240501"
    with pytest.raises(ValueError, match=r"service_start .* is after service_stop"):
        build(service_start="20240502", service_stop="20240501235959")


@pytest.mark.parametrize("bad", ["20241301", "2024-13-01", "24/12/2004", "2024-05-01T25:00"])
def test_bad_times_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not a time|not a real time|not a DTM"):
        to_dtm(bad, "creation_time")


# ----------------------------------------------------------------------------------------------------- author


def test_professional_author() -> None:
    author = professional_author(DOCTOR, family="Peeters", given="An", institution="CHU Saint-Pierre")
    assert author.person == f"{DOCTOR}^Peeters^An^^^^^^&{NIHDI_OID}&ISO"
    # XCN: the assigning authority is component 9.
    assert author.person is not None
    assert author.person.split("^")[8] == f"&{NIHDI_OID}&ISO"
    assert author.roles == ("persphysician",)
    assert author.institutions == ("CHU Saint-Pierre",)
    assert professional_author(Nihii(DOCTOR)).person == f"{DOCTOR}^^^^^^^^&{NIHDI_OID}&ISO"


def test_professional_author_escapes_and_overrides() -> None:
    author = professional_author(DOCTOR, family="Van^Dam & Co", profession="persmidwife", institution="X^^^^^^^^^1.2.3")
    assert author.person is not None
    assert author.person.startswith(f"{DOCTOR}^Van\\S\\Dam \\T\\ Co^^")
    assert author.roles == ("persmidwife",)
    assert author.institutions == ("X^^^^^^^^^1.2.3",)


def test_professional_author_needs_a_profession_when_the_nihii_does_not_tell() -> None:
    six = 912345
    other = f"{six}{97 - six % 97:02d}000"
    with pytest.raises(ValueError, match="give profession="):
        professional_author(other)
    assert professional_author(other, profession="persnurse").roles == ("persnurse",)
    with pytest.raises(InvalidIdentifier):
        professional_author("11478762004")


# ------------------------------------------------------------------------------------------------- submission


def test_submission_ties_entries_by_has_member_original() -> None:
    author = professional_author(DOCTOR, family="Peeters")
    first, second = build(document_type="labresult"), build(document_type="note")
    submission = new_submission([first, second], author=author, title="Visit", intended_recipients=["|ppp^^^&1.2&ISO"])
    ss = submission.submission_set
    assert ss.patient_id == first.patient_id
    assert ss.source_id == DEFAULT_SOURCE_ID
    assert OID.fullmatch(DEFAULT_SOURCE_ID)
    assert ss.unique_id is not None
    assert OID.fullmatch(ss.unique_id)
    assert UUID_URN.fullmatch(ss.entry_uuid)
    assert ss.content_type_code == load_value_sets().get("contentTypeCode", "labresult")
    assert ss.submission_time is not None
    assert Dtm(ss.submission_time).precision == 14
    assert ss.authors == [author]
    assert (ss.title, ss.intended_recipients) == ("Visit", ["|ppp^^^&1.2&ISO"])
    assert submission.entries == [first, second]
    assert submission.document_ids == [first.entry_uuid, second.entry_uuid]
    assert len(submission.associations) == 2
    for association, entry in zip(submission.associations, (first, second), strict=True):
        assert association.type is AssociationType.HAS_MEMBER
        assert association.source == ss.entry_uuid
        assert association.target == entry.entry_uuid
        assert association.submission_set_status is SubmissionSetStatus.ORIGINAL
        assert UUID_URN.fullmatch(association.entry_uuid)
    assert len({a.entry_uuid for a in submission.associations}) == 2


def test_submission_given_values() -> None:
    submission = new_submission(
        [build()],
        source_id="1.2.3",
        content_type="contactreport",
        submission_time=datetime(2024, 1, 1, 0, 30, tzinfo=PLUS_TWO),
        entry_uuid="SubmissionSet01",
        unique_id="1.2.3.4",
    )
    ss = submission.submission_set
    assert (ss.source_id, ss.entry_uuid, ss.unique_id) == ("1.2.3", "SubmissionSet01", "1.2.3.4")
    assert ss.submission_time == "20231231223000"
    assert ss.content_type_code is not None
    assert ss.content_type_code.code == "contactreport"


def test_submission_refuses_what_cannot_be_one_submission() -> None:
    with pytest.raises(ValueError, match="at least one"):
        new_submission([])
    with pytest.raises(ValueError, match="2 different patients"):
        new_submission([build(), build(patient=OTHER_PATIENT)])
    orphan = build()
    orphan.patient_id = None
    with pytest.raises(ValueError, match="needs a patient_id"):
        new_submission([orphan])
    with pytest.raises(ValueError, match="same entry_uuid"):
        new_submission([build(entry_uuid="Document01"), build(entry_uuid="Document01")])
    with pytest.raises(ValueError, match="same unique_id"):
        new_submission([build(unique_id="1.2.3"), build(unique_id="1.2.3")])
    with pytest.raises(ValueError, match="unknown contentTypeCode 'party'"):
        new_submission([build()], content_type="party")
