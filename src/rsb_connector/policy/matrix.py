"""The access matrix: which profession may read which class of document, and how long a therapeutic link lasts.

The default table ships as ``policy/data/access_matrix.json`` (read with :mod:`importlib.resources`); its
``about``, ``sources`` and per-profession ``why`` say where each choice comes from. In short:

============================  =====================================================================================
profession (CD-HCPARTY)       classes it may read
============================  =====================================================================================
``persphysician``             every class, ``genetic`` included (the only profession that reads genetic data)
``persdentist``               summary, medication, prescriptions, alerts, results, reports, referrals, vaccinations
``persnurse``                 summary, medication scheme, care plan, lab results, discharge, notes, telemonitoring...
``persmidwife``               the nurse's set plus results, reports and prescriptions, minus telemonitoring
``persphysiotherapist``       referrals/requests, reports, discharge reports, alerts, care plan, notes (no SUMEHR,
                              no lab results, no medication)
``perspharmacist``            medication scheme, prescriptions, vaccinations, alerts
============================  =====================================================================================

A profession missing from the table reads nothing. Link validity without an end date: physicians, dentists and
pharmacists 15 months, nurses and midwives 12, physiotherapists 3.

Replace the table with :meth:`AccessMatrix.load` (a path) or :meth:`AccessMatrix.from_mapping` (parsed JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["ALL_CLASSES", "AccessMatrix", "ProfessionAccess"]

ALL_CLASSES = "*"
"""In an ``allow`` list: every class, including classes the table does not list."""

_DATA_FILE = "access_matrix.json"


def _key(text: str) -> str:
    return text.strip().casefold()


@dataclass(frozen=True, slots=True)
class ProfessionAccess:
    """One row of the matrix.

    Attributes:
        profession: the CD-HCPARTY code.
        allow: class codes the profession may read (may hold :data:`ALL_CLASSES`).
        deny: class codes taken out of ``allow`` (useful with ``*``).
        why: the reasoning, for people.
    """

    profession: str
    allow: frozenset[str]
    deny: frozenset[str] = frozenset()
    why: str = ""

    def allows(self, class_code: str) -> bool:
        """Whether this profession may read documents of ``class_code``."""
        code = _key(class_code)
        if code in self.deny:
            return False
        return ALL_CLASSES in self.allow or code in self.allow


@dataclass(frozen=True, slots=True)
class AccessMatrix:
    """Profession x document class -> may read; plus the default validity of therapeutic links per profession.

    Attributes:
        rows: the matrix rows by profession code (lower case).
        classes: the document classes the table knows (a typo in ``allow``/``deny`` is caught against them).
        link_validity: months a therapeutic link without an end date lasts, by profession.
        source: where the table comes from (the file's ``about``).
    """

    rows: Mapping[str, ProfessionAccess]
    classes: frozenset[str]
    link_validity: Mapping[str, int] = field(default_factory=dict)
    source: str = ""

    # ------------------------------------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path | None = None) -> AccessMatrix:
        """The table in the JSON file ``path``; None: the table shipped with rsb-connector (loaded once).

        Raises:
            OSError: the file cannot be read.
            ValueError: the file is not valid JSON or not a valid table (the message says what is wrong).
        """
        if path is None:
            return _default_matrix()
        text = Path(path).read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"access matrix {path}: not valid JSON ({exc})") from exc
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AccessMatrix:
        """Build a table from the JSON structure of ``access_matrix.json``.

        Raises:
            ValueError: missing ``classes`` or ``professions``, a class used but not listed, a profession without an
                ``allow`` list, or a validity that is not a positive number of months.
        """
        if not isinstance(data, Mapping):
            raise ValueError("access matrix: expected a JSON object at the top level")
        classes_data = data.get("classes")
        if not isinstance(classes_data, list) or not all(isinstance(c, str) for c in classes_data):
            raise ValueError("access matrix: 'classes' must be a list of class codes")
        classes = frozenset(_key(c) for c in classes_data)
        professions = data.get("professions")
        if not isinstance(professions, Mapping) or not professions:
            raise ValueError("access matrix: 'professions' must map profession codes to their rows")
        rows: dict[str, ProfessionAccess] = {}
        for name, spec in professions.items():
            profession = _key(str(name))
            if not isinstance(spec, Mapping) or not isinstance(spec.get("allow"), list):
                raise ValueError(f"access matrix: profession {name!r} needs an 'allow' list of class codes")
            allow = cls._codes(profession, "allow", spec["allow"], classes, wildcard=True)
            deny = cls._codes(profession, "deny", spec.get("deny", []), classes, wildcard=False)
            rows[profession] = ProfessionAccess(profession, allow, deny, str(spec.get("why", "")))
        validity: dict[str, int] = {}
        for name, spec in (data.get("link_validity_months") or {}).items():
            months = spec.get("months") if isinstance(spec, Mapping) else spec
            if not isinstance(months, int) or isinstance(months, bool) or months <= 0:
                raise ValueError(f"access matrix: link validity of {name!r} must be a positive number of months")
            validity[_key(str(name))] = months
        return cls(rows=rows, classes=classes, link_validity=validity, source=str(data.get("about", "")))

    @staticmethod
    def _codes(
        profession: str, what: str, codes: Iterable[Any], classes: frozenset[str], *, wildcard: bool
    ) -> frozenset[str]:
        found: set[str] = set()
        for code in codes:
            key = _key(str(code))
            if (key == ALL_CLASSES and wildcard) or key in classes:
                found.add(key)
            else:
                valid = ", ".join(sorted(classes))
                raise ValueError(
                    f"access matrix: the {what!r} list of profession {profession!r} names unknown class {code!r}: "
                    f"list it under 'classes' or use one of {valid}"
                )
        return frozenset(found)

    # ------------------------------------------------------------------------------------------------ asking

    @property
    def professions(self) -> list[str]:
        """The professions the table knows, sorted."""
        return sorted(self.rows)

    def knows(self, profession: str | None) -> bool:
        """Whether ``profession`` has a row."""
        return profession is not None and _key(profession) in self.rows

    def allows(self, profession: str | None, class_code: str) -> bool:
        """Whether ``profession`` may read documents of ``class_code``; an unknown profession may read nothing."""
        if profession is None:
            return False
        row = self.rows.get(_key(profession))
        return row is not None and row.allows(class_code)

    def classes_for(self, profession: str | None) -> list[str]:
        """The listed classes ``profession`` may read, sorted (empty when unknown)."""
        if profession is None or _key(profession) not in self.rows:
            return []
        row = self.rows[_key(profession)]
        return sorted(c for c in self.classes if row.allows(c))

    def link_validity_months(self, profession: str | None) -> int | None:
        """Months a therapeutic link without an end date lasts for ``profession``; None when the table has none."""
        if profession is None:
            return None
        return self.link_validity.get(_key(profession))


@cache
def _default_matrix() -> AccessMatrix:
    text = resources.files("rsb_connector.policy").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    return AccessMatrix.from_mapping(json.loads(text))
