"""The mock hub's synthetic population: patients and healthcare professionals to develop and test against.

**Everything here is invented test data.** The SSINs and NIHII numbers are built with the real check-digit rules
(so the SDK's validation accepts them) from made-up birth dates and sequence numbers; the names are made up. They
are meant for the mock hub only and are printed in ``seed.json`` on purpose.

The population covers the cases apps must handle:

- adults of several ages, a born-2000+ patient (the SSIN check digits use the ``2`` prefix), a minor under 16
  (consent by a legal representative), and a BIS number (month + 40: a person not in the national register);
- one professional of each kind the access matrix distinguishes: a general practitioner, a specialist, a nurse,
  a physiotherapist and a pharmacist (the NIHII's first digit tells the profession).

``seed.json`` (written by :func:`write_seed_json`) has these fields::

    {
      "format": "rsb-connector seed", "version": 1,
      "notice": "synthetic test data ...",
      "patient_id_format": "<ssin>^^^&2.16.840.1.113883.3.6777.5.1&ISO",
      "patients": [{"key", "ssin", "patient_id", "given", "family", "birth_date", "sex", "bis", "minor", "note"}],
      "professionals": [{"key", "nihii", "given", "family", "profession", "hcparty", "qualification",
                         "author_person", "note"}]
    }

``patient_id`` is the XDS CX to put in ``patientId`` / ``$XDSDocumentEntryPatientId``; ``author_person`` is an
XCN usable as ``authorPerson``; ``birth_date`` is ISO 8601 (``null`` when unknown).

When the hub has a development PKI (``rsb hub serve --pki DIR --seed``), ``seed.json`` also lists its sample
identities under ``"identities"`` (``{"id", "kind", "name", "client_id", "nihii", "ssin", "file", "pem_cert",
"pem_key", "password"}``, file paths absolute), and a patient identity whose SSIN is not one of the seeded patients
is registered too. The sample identities of ``rsb hub pki init`` ARE seeded people (same names and numbers).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ..identifiers import NIHDI_OID, Nihii, Ssin
from .store import Store

if TYPE_CHECKING:
    from ..security.pki import PkiDescription

__all__ = [
    "SEED_FORMAT_VERSION",
    "SEED_PATIENTS",
    "SEED_PROFESSIONALS",
    "SeedPatient",
    "SeedProfessional",
    "describe",
    "seed",
    "write_seed_json",
]

SEED_FORMAT_VERSION: Final = 1
"""Version of the ``seed.json`` layout."""

_NOTICE: Final = (
    "synthetic test data for the rsb-connector mock hub: the SSINs and NIHII numbers pass the check-digit rules but "
    "were generated from invented values, the names are invented; never use them outside development and tests"
)


@dataclass(frozen=True, slots=True)
class SeedPatient:
    """A synthetic patient.

    Attributes:
        key: a short handle for examples and tests (``"lucas"``).
        ssin: 11 digits, valid check digits.
        sex: as the SSIN sequence number says (odd: male, even: female).
        note: what this patient is there to exercise.
    """

    key: str
    ssin: str
    given: str
    family: str
    sex: Literal["female", "male"]
    note: str

    @property
    def patient_id(self) -> str:
        """The XDS patient id: ``<ssin>^^^&2.16.840.1.113883.3.6777.5.1&ISO``."""
        return Ssin(self.ssin).to_cx()

    @property
    def birth_date(self) -> date | None:
        """The date of birth encoded in the SSIN (None when the number does not encode a calendar date)."""
        return Ssin(self.ssin).birth_date

    @property
    def is_bis(self) -> bool:
        """True for a BIS number."""
        return Ssin(self.ssin).is_bis

    def age_on(self, day: date) -> int | None:
        """Age in whole years on ``day`` (None when the birth date is unknown)."""
        born = self.birth_date
        if born is None:
            return None
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def describe(self, today: date | None = None) -> dict[str, Any]:
        """The JSON description written to ``seed.json``."""
        born = self.birth_date
        age = self.age_on(today or date.today())
        return {
            "key": self.key,
            "ssin": self.ssin,
            "patient_id": self.patient_id,
            "given": self.given,
            "family": self.family,
            "birth_date": born.isoformat() if born else None,
            "sex": self.sex,
            "bis": self.is_bis,
            "minor": age is not None and age < 16,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class SeedProfessional:
    """A synthetic healthcare professional.

    Attributes:
        key: a short handle for examples and tests (``"gp"``).
        nihii: 11 digits ``P SSSSS CC QQQ`` with valid check digits; ``P`` gives the profession.
        role: what they are, in words.
    """

    key: str
    nihii: str
    given: str
    family: str
    role: str

    @property
    def profession(self) -> str:
        """The profession the NIHII's first digit denotes (``physician``, ``nurse or midwife``...)."""
        return Nihii(self.nihii).profession

    @property
    def hcparty(self) -> str | None:
        """The KMEHR CD-HCPARTY code (``persphysician``...)."""
        return Nihii(self.nihii).hcparty

    @property
    def author_person(self) -> str:
        """An XCN for the XDS ``authorPerson`` slot: ``<nihii>^Family^Given^^^^^^&<NIHDI OID>&ISO``."""
        return f"{self.nihii}^{self.family}^{self.given}^^^^^^&{NIHDI_OID}&ISO"

    def describe(self) -> dict[str, Any]:
        """The JSON description written to ``seed.json``."""
        return {
            "key": self.key,
            "nihii": self.nihii,
            "given": self.given,
            "family": self.family,
            "profession": self.profession,
            "hcparty": self.hcparty,
            "qualification": Nihii(self.nihii).qualification,
            "author_person": self.author_person,
            "note": self.role,
        }


SEED_PATIENTS: Final[tuple[SeedPatient, ...]] = (
    SeedPatient("lucas", "87041213797", "Lucas", "Peeters", "male", "adult, the quickstart's patient"),
    SeedPatient("amina", "92021415810", "Amina", "El Idrissi", "female", "adult"),
    SeedPatient("jean-pierre", "67090527179", "Jean-Pierre", "Dubois", "male", "adult with a chronic condition"),
    SeedPatient(
        "lina", "03041208464", "Lina", "Janssens", "female", "born in 2003: SSIN check digits with the 2000+ rule"
    ),
    SeedPatient("georges", "48112231711", "Georges", "Vandenberghe", "male", "elderly patient"),
    SeedPatient(
        "oksana",
        "79510504674",
        "Oksana",
        "Kovalenko",
        "female",
        "BIS number (month + 40): not in the national register",
    ),
    SeedPatient(
        "noor", "11062020282", "Noor", "Maes", "female", "minor under 16, born 2011: a legal representative consents"
    ),
    SeedPatient("marc", "59031812513", "Marc", "Lambert", "male", "adult"),
)
"""The seeded patients (synthetic)."""

SEED_PROFESSIONALS: Final[tuple[SeedProfessional, ...]] = (
    SeedProfessional("gp", "12345625004", "Sophie", "Claes", "general practitioner"),
    SeedProfessional("specialist", "14087170580", "Karim", "Benali", "specialist physician (hospital)"),
    SeedProfessional("nurse", "43120755401", "Els", "De Smet", "home care nurse"),
    SeedProfessional("physio", "51834424527", "Thomas", "Wouters", "physiotherapist"),
    SeedProfessional("pharmacist", "62771965010", "Nadia", "Haddad", "community pharmacist"),
)
"""The seeded healthcare professionals (synthetic)."""


def _identity_patients(pki: PkiDescription, known: Sequence[str], today: date | None) -> list[dict[str, Any]]:
    """The PKI's patient identities that are not seeded patients, described like seeded patients."""
    extra = []
    for record in pki.identities:
        if record.kind != "patient" or not record.ssin or record.ssin in known:
            continue
        given, _, family = record.name.partition(" ")
        sex: Literal["female", "male"] = "male" if int(record.ssin[6:9]) % 2 else "female"  # odd sequence: male
        patient = SeedPatient(record.id, str(Ssin(record.ssin)), given, family or given, sex, "a PKI identity")
        extra.append(patient.describe(today))
    return extra


def _identities(pki: PkiDescription) -> list[dict[str, Any]]:
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "name": r.name,
            "client_id": r.client_id,
            "nihii": r.nihii,
            "ssin": r.ssin,
            "file": str(pki.path(r.file)),
            "pem_cert": str(pki.path(r.pem_cert)),
            "pem_key": str(pki.path(r.pem_key)),
            "password": r.password,
        }
        for r in pki.identities
    ]


def describe(today: date | None = None, *, pki: PkiDescription | None = None) -> dict[str, Any]:
    """The JSON-able description of the synthetic population (what ``seed.json`` holds); with ``pki``, its sample
    identities and the patients they name."""
    patients = [p.describe(today) for p in SEED_PATIENTS]
    description: dict[str, Any] = {
        "format": "rsb-connector seed",
        "version": SEED_FORMAT_VERSION,
        "notice": _NOTICE,
        "patient_id_format": f"<ssin>^^^&{Ssin.OID}&ISO",
        "patients": patients,
        "professionals": [p.describe() for p in SEED_PROFESSIONALS],
    }
    if pki is not None:
        patients += _identity_patients(pki, [p["ssin"] for p in patients], today)
        description["pki"] = str(pki.directory)
        description["identities"] = _identities(pki)
    return description


def seed(store: Store, *, today: date | None = None, pki: PkiDescription | None = None) -> dict[str, Any]:
    """Register the synthetic patients (and, with ``pki``, every patient its identities name) in the store's patient
    registry (idempotent) and describe the population."""
    description = describe(today, pki=pki)
    with store.write() as w:
        for patient in description["patients"]:
            w.register_patient(patient["patient_id"], patient)
    return description


def write_seed_json(data_dir: Path, description: dict[str, Any]) -> Path:
    """Write ``description`` to ``data_dir/seed.json`` atomically (temp file + rename); return its path."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / "seed.json"
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".seed-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(description, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
