"""The value sets of XDS coded metadata for the Brussels Health Network, loaded from a data file.

The data lives in ``metadata/data/valuesets.json`` (shipped in the wheel, read with :mod:`importlib.resources`);
every value set there names its source. In short:

- ``classCode`` / ``typeCode`` / ``contentTypeCode``: the KMEHR ``CD-TRANSACTION`` codes (``sumehr``,
  ``labresult``, ``discharge``...), codingScheme ``CD-TRANSACTION`` (no OID for that table could be confirmed),
  FHIR system ``https://www.ehealth.fgov.be/standards/fhir/core/CodeSystem/cd-transaction``. ``classCode`` and
  ``contentTypeCode`` also hold a project-defined ``genetic`` class (scheme ``RSB-CLASS``) for the access matrix.
- ``confidentialityCode``: HL7 v3 Confidentiality ``N``/``R``/``V`` (``2.16.840.1.113883.5.25``).
- ``formatCode``: IHE format codes (``1.3.6.1.4.1.19376.1.2.3``) plus a project-defined KMEHR format code.
- ``healthcareFacilityTypeCode`` / ``practiceSettingCode``: SNOMED CT (``2.16.840.1.113883.6.96``) codes of HL7's
  facility and practice-setting value sets that fit Belgian care.
- ``languageCode``: ``fr-BE``, ``nl-BE``, ``de-BE``, ``en`` (BCP 47, scheme ``urn:ietf:bcp:47``).
- ``eventCodeList``: open (any code with a code and a scheme).

Each entry may have friendly *aliases* (``hospital``, ``gp``, ``pdf``, ``normal``...) that :meth:`ValueSets.get`
accepts in place of the code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

from .model import Code

__all__ = ["CodeKind", "ValueSet", "ValueSets", "load_value_sets", "parse_value_sets"]

_DATA_FILE = "valuesets.json"


class CodeKind(StrEnum):
    """The coded XDS attributes, named as in XDS (and as :mod:`rsb_connector.metadata.rules` names them)."""

    CLASS_CODE = "classCode"
    TYPE_CODE = "typeCode"
    FORMAT_CODE = "formatCode"
    HEALTHCARE_FACILITY_TYPE_CODE = "healthcareFacilityTypeCode"
    PRACTICE_SETTING_CODE = "practiceSettingCode"
    CONFIDENTIALITY_CODE = "confidentialityCode"
    CONTENT_TYPE_CODE = "contentTypeCode"
    EVENT_CODE_LIST = "eventCodeList"
    LANGUAGE_CODE = "languageCode"


@dataclass(frozen=True, slots=True)
class ValueSet:
    """One value set: its codes, where they come from, their translations and FHIR systems.

    Attributes:
        kind: the XDS attribute it constrains.
        source: where the codes come from (a person-readable citation).
        codes: the codes, in the data file's order, each with its codingScheme and English display.
        open: True when any code (with a code and a scheme) is acceptable.
        aliases: friendly key -> code (lower-case keys).
        displays: code -> language (``en``/``fr``/``nl``) -> display.
        fhir_systems: codingScheme -> FHIR ``Coding.system``.
    """

    kind: CodeKind
    source: str
    codes: tuple[Code, ...]
    open: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)
    displays: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    fhir_systems: Mapping[str, str] = field(default_factory=dict)

    def find(self, key: str) -> Code | None:
        """The code whose code is ``key`` (exactly, then ignoring case) or whose alias is ``key``; else None."""
        for code in self.codes:
            if code.code == key:
                return code
        folded = key.strip().casefold()
        for code in self.codes:
            if code.code.casefold() == folded:
                return code
        target = self.aliases.get(folded)
        if target is not None:
            return self.find(target)
        return None

    def keys(self) -> list[str]:
        """Every key :meth:`find` accepts: the codes, then the aliases."""
        return [c.code for c in self.codes] + sorted(a for a in self.aliases if a not in {c.code for c in self.codes})

    def contains(self, code: Code) -> bool:
        """Code and scheme belong to this value set (an open set takes any code with a code and a scheme)."""
        if self.open:
            return bool(code.code and code.scheme)
        return any(c.same_concept(code) for c in self.codes)


class ValueSets:
    """All value sets, by kind. Get the shared instance with :func:`load_value_sets`."""

    def __init__(self, value_sets: Mapping[CodeKind, ValueSet]) -> None:
        self._sets = dict(value_sets)

    @staticmethod
    def _kind(kind: str) -> CodeKind:
        try:
            return CodeKind(kind)
        except ValueError:
            valid = ", ".join(k.value for k in CodeKind)
            raise ValueError(f"unknown kind of code {kind!r}: use one of {valid}") from None

    def value_set(self, kind: str) -> ValueSet:
        """The value set of ``kind`` (a :class:`CodeKind` or its string value)."""
        return self._sets[self._kind(kind)]

    def get(self, kind: str, key: str) -> Code:
        """The code of ``kind`` whose code (or alias) is ``key``.

        Raises:
            ValueError: the kind or the key is unknown; the message lists the valid keys.
        """
        value_set = self.value_set(kind)
        code = value_set.find(key)
        if code is None:
            valid = ", ".join(value_set.keys()) or "(any code: this value set is open)"
            raise ValueError(f"unknown {value_set.kind.value} {key!r}: use one of {valid}")
        return code

    def contains(self, kind: str, code: Code) -> bool:
        """Whether ``code`` (code and codingScheme; the display does not matter) is in the value set of ``kind``."""
        return self.value_set(kind).contains(code)

    def codes(self, kind: str) -> list[Code]:
        """The codes of ``kind``, in the data file's order (empty for an open value set)."""
        return list(self.value_set(kind).codes)

    def display(self, kind: str, code: str, language: str = "en") -> str | None:
        """The display of ``code`` in ``language`` (``en``, ``fr``, ``nl``; ``fr-BE`` works too), falling back to
        English; None when the code is unknown."""
        value_set = self.value_set(kind)
        names = value_set.displays.get(code)
        if names is None:
            return None
        return names.get(language.split("-")[0].lower()) or names.get("en")

    def fhir_system(self, kind: str, scheme: str) -> str | None:
        """The FHIR ``Coding.system`` for an XDS codingScheme of ``kind`` (None when not known)."""
        return self.value_set(kind).fhir_systems.get(scheme)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k.value}={len(v.codes)}" for k, v in self._sets.items())
        return f"ValueSets({sizes})"


# --------------------------------------------------------------------------------------------------- loading


def _display_en(entry: Mapping[str, Any]) -> str | None:
    display = entry.get("display")
    if isinstance(display, Mapping):
        return str(display["en"]) if "en" in display else None
    return str(display) if display is not None else None


def _build(kind: CodeKind, spec: Mapping[str, Any], code_lists: Mapping[str, list[Mapping[str, Any]]]) -> ValueSet:
    default_scheme = str(spec.get("scheme", ""))
    default_system = spec.get("fhir_system")
    entries: list[Mapping[str, Any]] = []
    if "include" in spec:
        entries.extend(code_lists[spec["include"]])
    entries.extend(spec.get("codes", []))
    codes: list[Code] = []
    aliases: dict[str, str] = {}
    displays: dict[str, dict[str, str]] = {}
    systems: dict[str, str] = {}
    if default_scheme and default_system:
        systems[default_scheme] = str(default_system)
    for entry in entries:
        code_text = str(entry["code"])
        scheme = str(entry.get("scheme", default_scheme))
        if not scheme:
            raise ValueError(f"value set {kind.value}: code {code_text!r} has no scheme")
        if any(c.code == code_text for c in codes):
            raise ValueError(f"value set {kind.value}: code {code_text!r} is listed twice")
        codes.append(Code(code_text, scheme, _display_en(entry)))
        display = entry.get("display")
        if isinstance(display, Mapping):
            displays[code_text] = {str(k): str(v) for k, v in display.items()}
        if "fhir_system" in entry:
            systems[scheme] = str(entry["fhir_system"])
        for alias in entry.get("aliases", []):
            folded = str(alias).casefold()
            if folded in aliases and aliases[folded] != code_text:
                raise ValueError(f"value set {kind.value}: alias {alias!r} names two codes")
            aliases[folded] = code_text
    return ValueSet(
        kind=kind,
        source=str(spec["source"]),
        codes=tuple(codes),
        open=bool(spec.get("open", False)),
        aliases=aliases,
        displays=displays,
        fhir_systems=systems,
    )


def parse_value_sets(data: Mapping[str, Any]) -> ValueSets:
    """Build :class:`ValueSets` from the data file's JSON structure (every :class:`CodeKind` must be present).

    Raises:
        ValueError: a kind is missing or unknown, a code is listed twice, an alias is ambiguous, a code has no
            scheme, or a value set has no source.
    """
    specs: Mapping[str, Mapping[str, Any]] = data["value_sets"]
    code_lists: Mapping[str, list[Mapping[str, Any]]] = data.get("code_lists", {})
    unknown = set(specs) - {k.value for k in CodeKind}
    if unknown:
        raise ValueError(f"unknown value set kinds in the data: {sorted(unknown)}")
    built: dict[CodeKind, ValueSet] = {}
    for kind in CodeKind:
        spec = specs.get(kind.value)
        if spec is None:
            raise ValueError(f"the value set data has no {kind.value}")
        if not spec.get("source"):
            raise ValueError(f"value set {kind.value} does not say where its codes come from ('source')")
        if "same_as" not in spec:
            built[kind] = _build(kind, spec, code_lists)
    for kind in CodeKind:
        spec = specs[kind.value]
        if "same_as" in spec:
            base = built[CodeKind(spec["same_as"])]
            built[kind] = ValueSet(
                kind=kind,
                source=str(spec["source"]),
                codes=base.codes,
                open=base.open,
                aliases=base.aliases,
                displays=base.displays,
                fhir_systems=base.fhir_systems,
            )
    return ValueSets({kind: built[kind] for kind in CodeKind})


@cache
def load_value_sets() -> ValueSets:
    """The value sets shipped with rsb-connector (loaded once, then cached)."""
    text = resources.files("rsb_connector.metadata").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    return parse_value_sets(json.loads(text))
