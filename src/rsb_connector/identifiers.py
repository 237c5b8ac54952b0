"""Belgian identifiers (SSIN / BIS, NIHII, CBE) and the HL7 v2 CX form XDS uses for patient ids.

Every identifier is an immutable value type: it validates on construction (raising
:class:`~rsb_connector.errors.InvalidIdentifier` with a reason a person understands), compares and hashes by its
digits, prints as bare digits with ``str()`` and converts to and from the XDS CX form
(``<digits>^^^&<OID>&ISO``).

Privacy: an SSIN is personal data. ``repr()`` of an :class:`Ssin` and every error message show the *masked*
value only (``73*******95``); :func:`mask_ssin` masks SSINs inside free text before it goes to a log.

Check digit rules (see ``domain.md``):

- SSIN ``YYMMDD SSS CC``: ``CC = 97 - (first 9 digits mod 97)``; when that fails, the same with ``2`` prefixed to
  the 9 digits (born in 2000 or later, only if that year is not in the future). BIS numbers add 20 (sex unknown)
  or 40 (sex known) to the month. Month or day ``00`` means unknown; a day beyond the month's length is *valid*
  (the day's counter ran out and the next day number was used), a day above 31 or a month above 12 is not.
- NIHII ``P SSSSS CC QQQ`` (11 digits, a person) or ``P SSSSS CC`` (8 digits, an organisation):
  ``CC = 97 - (first 6 digits mod 97)``.
- CBE / KBO enterprise number, 10 digits starting with 0 or 1: ``CC = 97 - (first 8 digits mod 97)`` for the last
  two digits. (``domain.md`` words it as "(first 8 + last 2) mod 97 == 0", which is the same rule except that it
  would also accept ``00`` where the real rule demands ``97``; the real rule is implemented and checked against
  real enterprise numbers such as 0203.201.340, NMBS/SNCB.)
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar, Final, NoReturn, Self

from .errors import InvalidIdentifier

__all__ = [
    "CBE_OID",
    "CBE_SYSTEM",
    "EHP_OID",
    "EHP_SYSTEM",
    "NIHDI_OID",
    "NIHDI_SYSTEM",
    "SSIN_OID",
    "SSIN_SYSTEM",
    "SSIN_SYSTEM_LEGACY",
    "Cbe",
    "Cx",
    "Nihii",
    "Ssin",
    "format_cx",
    "mask_ssin",
    "parse_cx",
]

SSIN_SYSTEM: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
"""be-core NamingSystem URI of the SSIN (INSZ/NISS), as FHIR ``Identifier.system``."""
SSIN_SYSTEM_LEGACY: Final = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/ssin"
"""The older be-core URI of the SSIN: accept it on input, never produce it."""
SSIN_OID: Final = "2.16.840.1.113883.3.6777.5.1"
"""OID of the SSIN assigning authority (XDS patientId CX)."""
NIHDI_SYSTEM: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi"
"""be-core NamingSystem URI of NIHDI (RIZIV/INAMI) numbers, i.e. NIHII."""
NIHDI_OID: Final = "2.16.840.1.113883.3.6777.5.2"
"""OID of the NIHDI numbering (NIHII of professionals and organisations)."""
CBE_SYSTEM: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/cbe"
"""be-core NamingSystem URI of CBE/KBO/BCE enterprise numbers."""
CBE_OID: Final = "2.16.840.1.113883.3.6777.5.5"
"""OID of CBE enterprise numbers."""
EHP_SYSTEM: Final = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ehp"
"""be-core NamingSystem URI of eHealth-platform (EHP) identifiers."""
EHP_OID: Final = "2.16.840.1.113883.3.6777.5.6"
"""OID of eHealth-platform (EHP) identifiers."""

_SEPARATORS = re.compile(r"[\s.\-/]")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9]\d*))+")


def _mask_digits(digits: str) -> str:
    """First two and last two characters kept, the rest starred (``73*******95``)."""
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def _mod97_check(number: int) -> int:
    """The Belgian mod-97 check value: ``97 - (number mod 97)`` (so 97, never 0, when divisible)."""
    return 97 - number % 97


# ----------------------------------------------------------------------------------------------------------- CX


@dataclass(frozen=True, slots=True)
class Cx:
    """An HL7 v2 CX identifier as XDS uses it: ``id^^^&authority_oid&ISO``.

    ``authority_oid`` is None only for a CX built by hand without an assigning authority; :func:`parse_cx` always
    requires one (XDS patient ids must carry it).
    """

    id: str
    authority_oid: str | None

    def __str__(self) -> str:
        if self.authority_oid is None:
            return self.id
        return format_cx(self.id, self.authority_oid)


def parse_cx(text: str) -> Cx:
    """Parse ``id^^^&OID&ISO`` into a :class:`Cx`.

    Raises:
        InvalidIdentifier: (kind ``"CX"``) when the id is empty, the ``^^^`` separator is missing, the assigning
            authority is not ``&OID&ISO`` with a well-formed OID, or other CX components are filled in.
    """
    masked = mask_ssin(text)
    components = text.split("^")
    if len(components) < 4:
        _fail("CX", masked, "expected id^^^&OID&ISO: the '^^^' before the assigning authority is missing")
    ident = components[0].strip()
    if not ident:
        _fail("CX", masked, "the identifier (first component, before '^^^') is empty")
    if any(c for c in components[1:3]):
        _fail("CX", masked, "components 2 and 3 must be empty: expected id^^^&OID&ISO")
    if len(components) > 4 and any(c for c in components[4:]):
        _fail("CX", masked, "only the id and the assigning authority may be given: expected id^^^&OID&ISO")
    authority = components[3] if len(components) > 3 else ""
    parts = authority.split("&")
    if len(parts) != 3 or parts[0] != "" or parts[2] != "ISO":
        _fail(
            "CX",
            masked,
            f"the assigning authority {authority!r} is not of the form '&OID&ISO' "
            "(empty namespace, an OID, then the literal ISO)",
        )
    oid = parts[1]
    if not _OID.fullmatch(oid):
        _fail("CX", masked, f"the assigning authority {oid!r} is not a valid OID (digits separated by dots)")
    return Cx(ident, oid)


def format_cx(id: str, oid: str) -> str:
    """``id^^^&oid&ISO``; raises :class:`InvalidIdentifier` when ``id`` is empty or holds ``^``/``&`` or the OID
    is malformed."""
    if not id or "^" in id or "&" in id:
        _fail("CX", mask_ssin(id), "the identifier must be non-empty and must not contain '^' or '&'")
    if not _OID.fullmatch(oid):
        _fail("CX", mask_ssin(id), f"the assigning authority {oid!r} is not a valid OID (digits separated by dots)")
    return f"{id}^^^&{oid}&ISO"


def _fail(kind: str, value: str, reason: str) -> NoReturn:
    raise InvalidIdentifier(kind, value, reason)


# --------------------------------------------------------------------------------------------------- value base


class _Identifier(ABC):
    """Shared behaviour of the digit-string identifiers: immutability, equality, CX conversion."""

    __slots__ = ("_digits",)

    KIND: ClassVar[str] = ""
    OID: ClassVar[str] = ""
    _digits: str

    def __init__(self, text: str) -> None:
        object.__setattr__(self, "_digits", self._validate(text))

    # -- subclass hooks
    @classmethod
    @abstractmethod
    def _validate(cls, text: str) -> str:
        """Return the bare digits of ``text`` or raise :class:`InvalidIdentifier`."""

    @classmethod
    def _digits_of(cls, text: str, lengths: tuple[int, ...], mask: bool = False) -> str:
        if isinstance(text, cls):
            text = text.digits
        if not isinstance(text, str):
            _fail(cls.KIND, "", f"expected text, got {type(text).__name__}")
        digits = _SEPARATORS.sub("", text)
        shown = _mask_digits(digits) if mask else digits
        if not digits:
            _fail(cls.KIND, shown, "empty value")
        if not digits.isascii() or not digits.isdigit():
            _fail(
                cls.KIND,
                _mask_digits(digits),
                "contains characters other than digits (only spaces, dots, dashes and slashes may separate them)",
            )
        if len(digits) not in lengths:
            expected = " or ".join(str(n) for n in lengths)
            _fail(cls.KIND, shown, f"must have {expected} digits, got {len(digits)}")
        return digits

    # -- value semantics
    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._digits,))

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._digits == other._digits
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._digits))

    def __str__(self) -> str:
        return self._digits

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._digits!r})"

    # -- conversions
    @property
    def digits(self) -> str:
        """The bare digits (same as ``str(self)``)."""
        return self._digits

    def to_cx(self) -> str:
        """The XDS CX form ``<digits>^^^&<OID>&ISO``."""
        return format_cx(self._digits, self.OID)

    @classmethod
    def from_cx(cls, text: str) -> Self:
        """Parse a CX; raises :class:`InvalidIdentifier` unless its assigning authority is this kind's OID."""
        cx = parse_cx(text)
        if cx.authority_oid != cls.OID:
            _fail(
                cls.KIND,
                mask_ssin(cx.id),
                f"the assigning authority {cx.authority_oid} is not the {cls.KIND} authority {cls.OID}",
            )
        return cls(cx.id)

    @classmethod
    def is_valid(cls, text: str) -> bool:
        """True when ``text`` is a valid identifier of this kind (separators allowed)."""
        try:
            cls(text)
        except InvalidIdentifier:
            return False
        return True


# ---------------------------------------------------------------------------------------------------------- SSIN


class Ssin(_Identifier):
    """A Belgian social security identification number (INSZ / NISS), national register or BIS number.

    Accepts separators: ``Ssin("85.07.30-033.28")``. ``str()`` gives the 11 digits, ``repr()`` the masked value.

    Raises:
        InvalidIdentifier: (kind ``"SSIN"``) length, non-digit characters, impossible month or day, or check digits
            that match neither the 1900s nor the 2000s rule.
    """

    __slots__ = ("_century",)

    KIND: ClassVar[str] = "SSIN"
    OID: ClassVar[str] = SSIN_OID
    _century: int

    def __init__(self, text: str) -> None:
        digits, century = self._check(text)
        object.__setattr__(self, "_digits", digits)
        object.__setattr__(self, "_century", century)

    @classmethod
    def _validate(cls, text: str) -> str:
        return cls._check(text)[0]

    @classmethod
    def _check(cls, text: str, today: date | None = None) -> tuple[str, int]:
        digits = cls._digits_of(text, (11,), mask=True)
        masked = _mask_digits(digits)
        month = int(digits[2:4])
        day = int(digits[4:6])
        if not (month <= 12 or 20 <= month <= 32 or 40 <= month <= 52):
            _fail(
                "SSIN",
                masked,
                f"impossible month {month:02d}: expected 00-12, or 20-32 / 40-52 for a BIS number",
            )
        if day > 31:
            _fail("SSIN", masked, f"impossible day {day:02d}: expected 00-31")
        base = int(digits[:9])
        check = int(digits[9:])
        if _mod97_check(base) == check:
            return digits, 1900
        if _mod97_check(2_000_000_000 + base) == check:
            year = 2000 + int(digits[:2])
            if year > (today or date.today()).year:
                _fail(
                    "SSIN",
                    masked,
                    f"check digits match only a birth in {year}, which is in the future",
                )
            return digits, 2000
        _fail("SSIN", masked, "check digits do not match the first 9 digits (mod 97, for a birth in 19xx or 20xx)")

    def __repr__(self) -> str:
        return f"Ssin({self.masked!r})"

    @property
    def masked(self) -> str:
        """The first two and last two digits, the rest starred: ``73*******95``."""
        return _mask_digits(self._digits)

    @property
    def is_bis(self) -> bool:
        """True for a BIS number (month + 20 or + 40): a person not in the national register."""
        return int(self._digits[2:4]) >= 20

    @property
    def birth_year(self) -> int:
        """Year of birth, from the century the check digits identify."""
        return self._century + int(self._digits[:2])

    @property
    def birth_date(self) -> date | None:
        """Date of birth; None when month or day is 00 (unknown) or the day is beyond the month's length (the day
        counter ran out and the number took the next day number: valid, but not a calendar date)."""
        month = int(self._digits[2:4]) % 20
        day = int(self._digits[4:6])
        if month == 0 or day == 0:
            return None
        year = self.birth_year
        if day > calendar.monthrange(year, month)[1]:
            return None
        return date(year, month, day)


# --------------------------------------------------------------------------------------------------------- NIHII

_NIHII_PROFESSIONS: Final[dict[int, str]] = {
    0: "other",
    1: "physician",
    2: "hospital pharmacist",
    3: "dentist",
    4: "nurse or midwife",
    5: "physiotherapist or speech therapist",
    6: "pharmacist",
    7: "hospital",
    8: "laboratory",
    9: "other",
}

_NIHII_HCPARTY: Final[dict[int, str]] = {
    1: "persphysician",
    2: "perspharmacist",
    3: "persdentist",
    4: "persnurse",
    5: "persphysiotherapist",
    6: "perspharmacist",
    7: "orghospital",
    8: "orglaboratory",
}


class Nihii(_Identifier):
    """A NIHII (RIZIV / INAMI) number: 11 digits ``P SSSSS CC QQQ`` for a professional, or 8 digits
    ``P SSSSS CC`` for an organisation; ``CC = 97 - (first 6 digits mod 97)``.

    Raises:
        InvalidIdentifier: (kind ``"NIHII"``) length, non-digit characters or check digits.
    """

    __slots__ = ()

    KIND: ClassVar[str] = "NIHII"
    OID: ClassVar[str] = NIHDI_OID

    @classmethod
    def _validate(cls, text: str) -> str:
        digits = cls._digits_of(text, (11, 8))
        if _mod97_check(int(digits[:6])) != int(digits[6:8]):
            _fail("NIHII", digits, "check digits (7th and 8th) do not match the first 6 digits (97 - n mod 97)")
        return digits

    @property
    def profession_digit(self) -> int:
        """The first digit, which tells the profession or kind of organisation."""
        return int(self._digits[0])

    @property
    def profession(self) -> str:
        """The profession (or kind of organisation) the first digit denotes, in English."""
        return _NIHII_PROFESSIONS[self.profession_digit]

    @property
    def hcparty(self) -> str | None:
        """The KMEHR CD-HCPARTY code matching the first digit (``persphysician``...), None when there is none."""
        return _NIHII_HCPARTY.get(self.profession_digit)

    @property
    def qualification(self) -> str:
        """The qualification code ``QQQ`` (last three digits of a professional's number); ``""`` for the 8-digit
        organisation form."""
        return self._digits[8:]

    @property
    def is_organisation(self) -> bool:
        """True for the 8-digit organisation form."""
        return len(self._digits) == 8


# ----------------------------------------------------------------------------------------------------------- CBE


class Cbe(_Identifier):
    """A CBE / KBO / BCE enterprise number: 10 digits starting with 0 or 1, ``CC = 97 - (first 8 mod 97)``.

    Accepts ``0203.201.340``, a ``BE`` prefix (the VAT form) and the old 9-digit form (a leading 0 is added).

    Raises:
        InvalidIdentifier: (kind ``"CBE"``) length, characters, first digit or check digits.
    """

    __slots__ = ()

    KIND: ClassVar[str] = "CBE"
    OID: ClassVar[str] = CBE_OID

    @classmethod
    def _validate(cls, text: str) -> str:
        if isinstance(text, str) and text.strip()[:2].upper() == "BE":
            text = text.strip()[2:]
        digits = cls._digits_of(text, (10, 9))
        if len(digits) == 9:
            digits = "0" + digits
        if digits[0] not in "01":
            _fail("CBE", digits, f"the first digit must be 0 or 1, got {digits[0]}")
        if _mod97_check(int(digits[:8])) != int(digits[8:]):
            _fail("CBE", digits, "check digits (last two) do not match the first 8 digits (97 - n mod 97)")
        return digits

    @property
    def formatted(self) -> str:
        """The usual printed form ``0203.201.340``."""
        d = self._digits
        return f"{d[:4]}.{d[4:7]}.{d[7:]}"


# ------------------------------------------------------------------------------------------------------- masking

_SSIN_IN_TEXT = re.compile(r"(?<!\d)(\d{2})[ .\-]?\d{2}[ .\-]?\d{2}[ .\-]?\d{3}[ .\-]?(\d{2})(?!\d)")


def mask_ssin(text: str) -> str:
    """Mask every SSIN-like run in ``text`` (11 digits, bare or with ``.``/``-``/space separators) for logs.

    Keeps the first and last two digits (``73*******95``). Any 11-digit run is masked, checksum or not (an NIHII
    included): better too much than a leaked SSIN. Never raises; a non-string is converted with ``str()``.
    """
    try:
        return _SSIN_IN_TEXT.sub(lambda m: f"{m.group(1)}*******{m.group(2)}", str(text))
    except Exception:  # pragma: no cover - str() of an exotic object failing
        return "<unprintable>"
