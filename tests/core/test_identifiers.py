"""Belgian identifiers: SSIN / BIS, NIHII, CBE, CX and masking."""

from __future__ import annotations

import copy
import pickle
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rsb_connector.errors import InvalidIdentifier
from rsb_connector.identifiers import (
    CBE_OID,
    NIHDI_OID,
    SSIN_OID,
    Cbe,
    Cx,
    Nihii,
    Ssin,
    format_cx,
    mask_ssin,
    parse_cx,
)

VALID_SSINS = ["73032929895", "72022102793", "82121210976", "17073003384"]
VALID_NIHIIS = ["11478761004", "19006951001", "84450277111"]
# Real enterprise numbers from the public CBE/KBO register: NMBS/SNCB, and Proximus (0202.239.951).
VALID_CBES = ["0203201340", "0417497106", "0202239951"]
THIS_YEAR_2D = date.today().year - 2000


# --------------------------------------------------------------------------------------------------- helpers


def ssin_from(yy: int, mm: int, dd: int, counter: int, century: int) -> str:
    body = f"{yy:02d}{mm:02d}{dd:02d}{counter:03d}"
    number = int(body) + (2_000_000_000 if century == 2000 else 0)
    return f"{body}{97 - number % 97:02d}"


def nihii_from(six: int, rest: str) -> str:
    return f"{six:06d}{97 - six % 97:02d}{rest}"


def cbe_from(first8: int) -> str:
    return f"{first8:08d}{97 - first8 % 97:02d}"


@st.composite
def valid_ssins(draw: st.DrawFn) -> tuple[str, int]:
    century = draw(st.sampled_from([1900, 2000]))
    yy = draw(st.integers(0, 99 if century == 1900 else THIS_YEAR_2D))
    month = draw(st.integers(0, 12))
    month += draw(st.sampled_from([0, 20, 40]))
    day = draw(st.integers(0, 31))
    counter = draw(st.integers(0, 999))
    return ssin_from(yy, month, day, counter, century), century


@st.composite
def valid_nihiis(draw: st.DrawFn) -> str:
    six = draw(st.integers(0, 999_999))
    organisation = draw(st.booleans())
    return nihii_from(six, "" if organisation else f"{draw(st.integers(0, 999)):03d}")


@st.composite
def valid_cbes(draw: st.DrawFn) -> str:
    return cbe_from(draw(st.integers(0, 19_999_999)))


def change_digit(text: str, position: int, digit: int) -> str:
    return text[:position] + str(digit) + text[position + 1 :]


# ------------------------------------------------------------------------------------------------------ SSIN


@pytest.mark.parametrize("text", VALID_SSINS)
def test_known_valid_ssins(text: str) -> None:
    assert Ssin.is_valid(text)
    assert str(Ssin(text)) == text


def test_ssin_facts() -> None:
    assert Ssin("73032929895").birth_date == date(1973, 3, 29)
    assert Ssin("17073003384").birth_date == date(2017, 7, 30)
    assert Ssin("17073003384").birth_year == 2017
    assert not Ssin("72022102793").is_bis


@pytest.mark.parametrize(
    "text", ["85.07.30-033.28", "85 07 30 033 28", "850730-033-28", " 85073003328 ", "85/07/30 033.28"]
)
def test_ssin_accepts_usual_formatting(text: str) -> None:
    assert Ssin(text) == Ssin("85073003328")
    assert str(Ssin(text)) == "85073003328"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("7303292989", "11 digits, got 10"),
        ("730329298955", "11 digits, got 12"),
        ("7303292989A", "characters other than digits"),
        ("73+03292989", "characters other than digits"),
        ("73132929895", "impossible month 13"),
        ("73332929895", "impossible month 33"),
        ("73532929895", "impossible month 53"),
        ("73033229895", "impossible day 32"),
        ("73032929896", "check digits do not match"),
    ],
)
def test_invalid_ssins_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        Ssin(text)
    assert reason in str(caught.value)
    assert caught.value.kind == "SSIN"
    assert not Ssin.is_valid(text)


def test_future_2000s_birth_is_refused() -> None:
    next_year = date.today().year + 1 - 2000
    text = ssin_from(next_year, 1, 1, 1, 2000)
    with pytest.raises(InvalidIdentifier, match="in the future"):
        Ssin(text)


def test_error_messages_never_hold_a_full_ssin() -> None:
    for bad in ["73032929896", "73132929895", "73033229895", "7303292989X5", "730329298951"]:
        with pytest.raises(InvalidIdentifier) as caught:
            Ssin(bad)
        message = str(caught.value) + repr(caught.value)
        assert "7303292989" not in message


def test_bis_numbers() -> None:
    unknown_sex = Ssin(ssin_from(80, 3 + 20, 15, 123, 1900))
    known_sex = Ssin(ssin_from(80, 3 + 40, 15, 123, 1900))
    assert unknown_sex.is_bis
    assert known_sex.is_bis
    assert unknown_sex.birth_date == date(1980, 3, 15)
    assert known_sex.birth_date == date(1980, 3, 15)


@pytest.mark.parametrize(
    ("yy", "mm", "dd"),
    [(80, 0, 0), (80, 5, 0), (80, 0, 12), (80, 2, 30), (81, 2, 29), (80, 4, 31), (80, 20, 0), (80, 40, 0)],
)
def test_unknown_or_overflowed_dates_are_valid_without_a_birth_date(yy: int, mm: int, dd: int) -> None:
    ssin = Ssin(ssin_from(yy, mm, dd, 7, 1900))
    assert ssin.birth_date is None


def test_leap_day_is_a_date() -> None:
    assert Ssin(ssin_from(80, 2, 29, 7, 1900)).birth_date == date(1980, 2, 29)


def test_ssin_is_an_immutable_value_that_reveals_nothing() -> None:
    ssin = Ssin("73032929895")
    assert ssin == Ssin("73.03.29-298.95")
    assert Ssin(ssin) == ssin  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier, match="expected text, got int"):
        Ssin(73032929895)  # type: ignore[arg-type]
    assert hash(ssin) == hash(Ssin("73032929895"))
    assert len({ssin, Ssin("73032929895"), Ssin("72022102793")}) == 2
    assert ssin != "73032929895"
    assert repr(ssin) == "Ssin('73*******95')"
    assert ssin.masked == "73*******95"
    assert "73032929895" not in repr(ssin)
    with pytest.raises(AttributeError):
        ssin._digits = "72022102793"
    with pytest.raises(AttributeError):
        ssin.anything = 1
    assert pickle.loads(pickle.dumps(ssin)) == ssin
    assert copy.deepcopy(ssin) == ssin


def test_ssin_cx_round_trip() -> None:
    ssin = Ssin("73032929895")
    assert ssin.to_cx() == f"73032929895^^^&{SSIN_OID}&ISO"
    assert Ssin.from_cx(ssin.to_cx()) == ssin
    with pytest.raises(InvalidIdentifier, match="not the SSIN authority"):
        Ssin.from_cx(f"73032929895^^^&{NIHDI_OID}&ISO")
    with pytest.raises(InvalidIdentifier, match="check digits"):
        Ssin.from_cx(f"73032929896^^^&{SSIN_OID}&ISO")


@settings(max_examples=300, deadline=None)
@given(valid_ssins())
def test_generated_ssins_validate(case: tuple[str, int]) -> None:
    text, century = case
    ssin = Ssin(text)
    assert str(ssin) == text
    assert ssin.birth_year // 100 * 100 == century
    assert ssin.is_bis == (int(text[2:4]) >= 20)
    assert Ssin.from_cx(ssin.to_cx()) == ssin
    if ssin.birth_date is not None:
        assert ssin.birth_date.year == ssin.birth_year
        assert ssin.birth_date.month == int(text[2:4]) % 20
        assert ssin.birth_date.day == int(text[4:6])


def test_only_the_year_digit_by_six_can_switch_the_century_rule() -> None:
    """The arithmetic behind the single-digit property below.

    Under one rule a single substitution changes the 9-digit body by d·10^k (|d| ≤ 9, k ≤ 8) or the check value by
    d·10^j (j ≤ 1); 97 is prime and divides neither d nor 10^k, so the same rule always rejects. The *other* rule
    (a "2" prefixed, i.e. ±2·10^9) accepts exactly when d·10^k ≡ ±2·10^9 (mod 97). Checking every case: this
    happens only for k = 7 (the second digit of the year) and d = ±6.
    """
    shift = 2 * 10**9 % 97
    switching = {(k, d) for k in range(9) for d in range(-9, 10) if d and (d * 10**k) % 97 in (shift, (-shift) % 97)}
    assert switching == {(7, 6), (7, -6)}
    # And it really happens: a 2013 birth whose year digit 3 becomes 9 is a valid 1919 birth.
    born_2013 = ssin_from(13, 5, 10, 42, 2000)
    changed = change_digit(born_2013, 1, 9)
    assert Ssin(born_2013).birth_year == 2013
    assert Ssin(changed).birth_year == 1919


@settings(max_examples=300, deadline=None)
@given(valid_ssins(), st.integers(0, 10), st.integers(1, 9))
def test_any_single_digit_change_of_an_ssin_is_caught(case: tuple[str, int], position: int, step: int) -> None:
    """Every single-digit change is rejected, except the one the arithmetic above allows: the year's second digit
    moved by exactly 6 may give a valid number *under the other century rule* (a different person's number,
    not a checksum miss). We assert exactly that, and nothing weaker, for that case."""
    text, century = case
    new_digit = (int(text[position]) + step) % 10
    changed = change_digit(text, position, new_digit)
    delta = new_digit - int(text[position])
    if position == 1 and abs(delta) == 6:
        if Ssin.is_valid(changed):
            assert Ssin(changed).birth_year // 100 * 100 != century
    else:
        assert not Ssin.is_valid(changed)


# ------------------------------------------------------------------------------------------------------ NIHII


@pytest.mark.parametrize("text", VALID_NIHIIS)
def test_known_valid_nihiis(text: str) -> None:
    nihii = Nihii(text)
    assert str(nihii) == text
    assert not nihii.is_organisation


def test_nihii_facts() -> None:
    physician = Nihii("1-14787-61-004")
    assert physician == Nihii("11478761004")
    assert physician.profession_digit == 1
    assert physician.profession == "physician"
    assert physician.hcparty == "persphysician"
    assert physician.qualification == "004"
    assert repr(physician) == "Nihii('11478761004')"
    lab = Nihii("84450277111")
    assert lab.profession == "laboratory"
    assert lab.qualification == "111"
    hospital = Nihii("71000436")
    assert hospital.is_organisation
    assert hospital.profession == "hospital"
    assert hospital.qualification == ""
    assert Nihii.from_cx(f"11478761004^^^&{NIHDI_OID}&ISO") == physician
    assert physician.to_cx() == f"11478761004^^^&{NIHDI_OID}&ISO"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1147876100", "11 or 8 digits, got 10"),
        ("114787610045", "11 or 8 digits, got 12"),
        ("1147876100x", "characters other than digits"),
        ("11478762004", "check digits"),
        ("71000437", "check digits"),
    ],
)
def test_invalid_nihiis_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason) as caught:
        Nihii(text)
    assert caught.value.kind == "NIHII"


def test_nihii_from_cx_wrong_authority() -> None:
    with pytest.raises(InvalidIdentifier, match="NIHII authority"):
        Nihii.from_cx(f"11478761004^^^&{SSIN_OID}&ISO")


@settings(max_examples=200, deadline=None)
@given(valid_nihiis())
def test_generated_nihiis_validate(text: str) -> None:
    nihii = Nihii(text)
    assert str(nihii) == text
    assert nihii.is_organisation == (len(text) == 8)


@settings(max_examples=300, deadline=None)
@given(valid_nihiis(), st.integers(0, 7), st.integers(1, 9))
def test_any_single_digit_change_of_a_nihii_number_is_caught(text: str, position: int, step: int) -> None:
    """The check covers the first 8 digits (number + check digits) only: a qualification change (QQQ) is by design
    not detectable, so the property is about positions 0-7, where mod 97 catches every single substitution."""
    changed = change_digit(text, position, (int(text[position]) + step) % 10)
    assert not Nihii.is_valid(changed)


# -------------------------------------------------------------------------------------------------------- CBE


@pytest.mark.parametrize("text", VALID_CBES)
def test_known_valid_cbes(text: str) -> None:
    assert Cbe.is_valid(text)


def test_cbe_rule_agrees_with_domain_wording_on_real_numbers() -> None:
    # domain.md words the rule as "(first 8 + last 2) mod 97 == 0"; the real rule is 97 - (first 8 mod 97).
    for text in VALID_CBES:
        assert (int(text[:8]) + int(text[8:])) % 97 == 0
        assert 97 - int(text[:8]) % 97 == int(text[8:])
    # They differ only when the first 8 digits are a multiple of 97: the real check is 97, never 00.
    multiple = 97 * 20_000
    assert Cbe.is_valid(f"{multiple:08d}97")
    assert not Cbe.is_valid(f"{multiple:08d}00")


@pytest.mark.parametrize("text", ["0203.201.340", "BE 0203.201.340", "be0203201340", "203201340"])
def test_cbe_accepts_usual_forms(text: str) -> None:
    cbe = Cbe(text)
    assert str(cbe) == "0203201340"
    assert cbe.formatted == "0203.201.340"
    assert Cbe.from_cx(cbe.to_cx()) == cbe
    assert cbe.to_cx() == f"0203201340^^^&{CBE_OID}&ISO"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2203201340", "first digit must be 0 or 1"),
        ("0203201341", "check digits"),
        ("02032013", "10 or 9 digits, got 8"),
        ("02O3201340", "characters other than digits"),
    ],
)
def test_invalid_cbes_say_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason):
        Cbe(text)


@settings(max_examples=200, deadline=None)
@given(valid_cbes(), st.integers(0, 9), st.integers(1, 9))
def test_generated_cbes_validate_and_single_changes_are_caught(text: str, position: int, step: int) -> None:
    assert Cbe.is_valid(text)
    changed = change_digit(text, position, (int(text[position]) + step) % 10)
    assert not Cbe.is_valid(changed)


# --------------------------------------------------------------------------------------------------------- CX


def test_parse_and_format_cx() -> None:
    assert parse_cx(f"73032929895^^^&{SSIN_OID}&ISO") == Cx("73032929895", SSIN_OID)
    assert format_cx("abc", "1.2.3") == "abc^^^&1.2.3&ISO"
    assert str(Cx("abc", "1.2.3")) == "abc^^^&1.2.3&ISO"
    assert str(Cx("abc", None)) == "abc"
    assert parse_cx(format_cx("X-1", "1.2.3")) == Cx("X-1", "1.2.3")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("73032929895", "'^^^' before the assigning authority is missing"),
        ("73032929895^^&1.2&ISO", "'^^^' before the assigning authority is missing"),
        ("73032929895^^^", "not of the form '&OID&ISO'"),
        ("^^^&1.2.3&ISO", "identifier (first component"),
        ("abc^^^1.2.3&ISO", "not of the form '&OID&ISO'"),
        ("abc^^^&1.2.3", "not of the form '&OID&ISO'"),
        ("abc^^^NS&1.2.3&ISO", "not of the form '&OID&ISO'"),
        ("abc^^^&1.2.3&DNS", "not of the form '&OID&ISO'"),
        ("abc^^^&one.two&ISO", "not a valid OID"),
        ("abc^^^&1.02.3&ISO", "not a valid OID"),
        ("abc^x^^&1.2.3&ISO", "components 2 and 3 must be empty"),
        ("abc^^^&1.2.3&ISO^PI", "only the id and the assigning authority"),
    ],
)
def test_malformed_cx_says_why(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_cx(text)
    assert caught.value.kind == "CX"
    assert reason in str(caught.value)


def test_format_cx_refuses_bad_parts() -> None:
    with pytest.raises(InvalidIdentifier, match="non-empty"):
        format_cx("", "1.2.3")
    with pytest.raises(InvalidIdentifier, match="must not contain"):
        format_cx("a^b", "1.2.3")
    with pytest.raises(InvalidIdentifier, match="not a valid OID"):
        format_cx("abc", "1.2.x")


def test_cx_errors_do_not_leak_the_ssin() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_cx("73032929895^^^&1.2.3")
    assert "73032929895" not in str(caught.value)


# ---------------------------------------------------------------------------------------------------- masking


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("patient 73032929895 seen", "patient 73*******95 seen"),
        ("ssin=85.07.30-033.28;", "ssin=85*******28;"),
        (f"73032929895^^^&{SSIN_OID}&ISO", f"73*******95^^^&{SSIN_OID}&ISO"),
        ("a 73032929895 and 72022102793", "a 73*******95 and 72*******93"),
        ("no number here", "no number here"),
        ("2.25.218574699959423712980111536068325869413", "2.25.218574699959423712980111536068325869413"),
        ("123456789012 twelve digits stay", "123456789012 twelve digits stay"),
        ("", ""),
    ],
)
def test_mask_ssin(text: str, expected: str) -> None:
    assert mask_ssin(text) == expected


def test_mask_ssin_never_raises() -> None:
    assert mask_ssin(None) == "None"  # type: ignore[arg-type]
    assert mask_ssin(73032929895) == "73*******95"  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(valid_ssins(), st.text(alphabet="abc ;:=", max_size=10), st.text(alphabet="abc ;:=", max_size=10))
def test_masked_text_never_contains_the_ssin(case: tuple[str, int], before: str, after: str) -> None:
    text, _ = case
    masked = mask_ssin(before + text + after)
    assert text not in masked
    assert masked == before + Ssin(text).masked + after
