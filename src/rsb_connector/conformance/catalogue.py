"""The conformance catalogue: test cases described as data (TOML), one file per profile.

The catalogue lives in the repository's top-level ``conformance/catalogue/`` folder and is shipped inside the wheel
as ``rsb_connector/conformance/catalogue/``, so that ``rsb conformance`` works from ``pip install``. Each case::

    [[case]]
    id = "XDS-001"                      # <PREFIX>-<three digits>: XDS, MHD, SEC, CON
    title = "Single document submission"
    profile = "XDS.b"                   # one of PROFILES
    actor = "Document Repository + Document Registry"   # the actor under test
    reference = "ITI TF-2b 3.41.4.1; NIST 12360"        # what it mirrors
    needs = ["author", "hospital"]      # identities (names of the development PKI, "author" = --identity), and
                                        # "seed" when the case relies on the mock hub's seeded population
    description = "What the case proves, in a sentence or two."
    steps = [
      { do = "What the suite sends", expect = "What a conformant hub answers" },
    ]

The steps are what ``rsb conformance list`` prints and what the reports show; the implementation of each case (in
:mod:`rsb_connector.conformance.cases`) performs them in order and records, step by step, what was exchanged.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from ..errors import RsbError

__all__ = [
    "PROFILES",
    "Case",
    "Catalogue",
    "CatalogueError",
    "Step",
    "catalogue_dir",
    "load_catalogue",
]

PROFILES: Final = ("XDS.b", "MHD", "security", "consent")
"""The profiles a case belongs to (``--profile`` takes these, case-insensitively)."""

_PREFIXES: Final = {"XDS": "XDS.b", "MHD": "MHD", "SEC": "security", "CON": "consent"}
_ID: Final = re.compile(r"^(XDS|MHD|SEC|CON)-\d{3}$")
_KEYS: Final = {"id", "title", "profile", "actor", "reference", "needs", "description", "steps"}


class CatalogueError(RsbError):
    """The catalogue is malformed (a missing field, a duplicate id...) or a selection names no case."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a case: what the suite does and what a conformant hub answers."""

    do: str
    expect: str


@dataclass(frozen=True, slots=True)
class Case:
    """A catalogue entry (see the module docstring for the fields)."""

    id: str
    title: str
    profile: str
    actor: str
    reference: str
    steps: tuple[Step, ...]
    needs: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    """The catalogue file it comes from."""

    def to_json(self) -> dict[str, Any]:
        """The case as JSON (``rsb conformance list --json`` and the JSON report)."""
        return {
            "id": self.id,
            "title": self.title,
            "profile": self.profile,
            "actor": self.actor,
            "reference": self.reference,
            "needs": list(self.needs),
            "description": self.description,
            "steps": [{"do": s.do, "expect": s.expect} for s in self.steps],
        }


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The cases, in catalogue order (by file, then as written)."""

    cases: tuple[Case, ...]

    def __iter__(self) -> Iterator[Case]:
        return iter(self.cases)

    def __len__(self) -> int:
        return len(self.cases)

    def get(self, case_id: str) -> Case:
        """The case of that id (case-insensitive); CatalogueError when there is none."""
        wanted = case_id.strip().upper()
        for case in self.cases:
            if case.id == wanted:
                return case
        raise CatalogueError(f"no case {case_id!r} in the catalogue (rsb conformance list shows them)")

    def select(self, only: Iterable[str] = (), profiles: Iterable[str] = ()) -> list[Case]:
        """The cases named in ``only`` (ids, or id prefixes ending in ``*`` such as ``XDS-0*``) and of the
        ``profiles``; everything when both are empty.

        Raises:
            CatalogueError: an id or a profile that matches nothing.
        """
        chosen = list(self.cases)
        wanted_profiles = {_profile(p) for p in profiles}
        if wanted_profiles:
            chosen = [c for c in chosen if c.profile in wanted_profiles]
        patterns = [p.strip().upper() for item in only for p in item.split(",") if p.strip()]
        if patterns:
            for pattern in patterns:
                if not any(_matches(c.id, pattern) for c in self.cases):
                    raise CatalogueError(f"--only {pattern!r} matches no case (rsb conformance list shows them)")
            chosen = [c for c in chosen if any(_matches(c.id, p) for p in patterns)]
        return chosen


def _matches(case_id: str, pattern: str) -> bool:
    if pattern.endswith("*"):
        return case_id.startswith(pattern[:-1])
    return case_id == pattern


def _profile(name: str) -> str:
    for profile in PROFILES:
        if profile.lower() == name.strip().lower() or (profile == "XDS.b" and name.strip().lower() == "xds"):
            return profile
    raise CatalogueError(f"unknown profile {name!r}: use one of {', '.join(PROFILES)}")


def catalogue_dir() -> Path:
    """Where the catalogue files are: inside the installed package (a wheel), else the source tree's
    ``conformance/catalogue`` (an editable install or a checkout)."""
    packaged = resources.files(__package__ or "rsb_connector.conformance") / "catalogue"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parents[3] / "conformance" / "catalogue"
    if source.is_dir():
        return source
    raise CatalogueError(
        "the conformance catalogue is not installed: reinstall rsb-connector (the wheel ships it under "
        "rsb_connector/conformance/catalogue)"
    )


def _text(raw: dict[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: {key!r} must be a non-empty string")
    return " ".join(value.split())


def _case(raw: Any, where: str) -> Case:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: a case is a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    case_id = _text(raw, "id", where)
    where = f"{where} ({case_id})"
    match = _ID.match(case_id)
    if match is None:
        raise CatalogueError(f"{where}: an id is PREFIX-NNN with PREFIX one of {', '.join(_PREFIXES)}")
    profile = _text(raw, "profile", where)
    if profile not in PROFILES:
        raise CatalogueError(f"{where}: profile {profile!r} is not one of {', '.join(PROFILES)}")
    if _PREFIXES[match.group(1)] != profile:
        raise CatalogueError(f"{where}: a {match.group(1)} case has profile {_PREFIXES[match.group(1)]}")
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise CatalogueError(f"{where}: 'steps' is a non-empty list of {{do, expect}} tables")
    steps = []
    for n, step in enumerate(steps_raw, 1):
        if not isinstance(step, dict) or set(step) != {"do", "expect"}:
            raise CatalogueError(f"{where}: step {n} has exactly the keys 'do' and 'expect'")
        steps.append(Step(_text(step, "do", f"{where} step {n}"), _text(step, "expect", f"{where} step {n}")))
    needs = raw.get("needs", [])
    if not isinstance(needs, list) or not all(isinstance(n, str) and n for n in needs):
        raise CatalogueError(f"{where}: 'needs' is a list of identity names")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise CatalogueError(f"{where}: 'description' is a string")
    return Case(
        id=case_id,
        title=_text(raw, "title", where),
        profile=profile,
        actor=_text(raw, "actor", where),
        reference=_text(raw, "reference", where),
        steps=tuple(steps),
        needs=tuple(needs),
        description=" ".join(description.split()),
        source=where.split(" ")[0],
    )


def load_catalogue(directory: Path | str | None = None, *, files: Sequence[Path] | None = None) -> Catalogue:
    """Read every ``*.toml`` of ``directory`` (default :func:`catalogue_dir`), in name order.

    Raises:
        CatalogueError: unreadable TOML, a malformed case, or an id used twice.
    """
    paths = list(files) if files is not None else sorted(Path(directory or catalogue_dir()).glob("*.toml"))
    if not paths:
        raise CatalogueError(f"no catalogue files (*.toml) in {directory or catalogue_dir()}")
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError(f"{path.name}: {exc}") from None
        entries = data.get("case", [])
        if not isinstance(entries, list):
            raise CatalogueError(f"{path.name}: cases are [[case]] tables")
        for n, raw in enumerate(entries, 1):
            case = _case(raw, f"{path.name} case {n}")
            if case.id in seen:
                raise CatalogueError(f"{path.name}: id {case.id} is already used in {seen[case.id]}")
            seen[case.id] = path.name
            cases.append(case)
    return Catalogue(tuple(cases))
