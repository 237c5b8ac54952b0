"""The development PKI's sample identities ARE the hub's seeded people, and ``--seed`` with a PKI registers every
patient its identities name."""

from __future__ import annotations

import json
from pathlib import Path

from rsb_connector.hub.population import SEED_PATIENTS, SEED_PROFESSIONALS
from rsb_connector.hub.server import build_hub
from rsb_connector.identifiers import Ssin
from rsb_connector.security.pki import SAMPLE_IDENTITIES, PkiDescription, SampleSpec, init_pki


def test_every_sample_person_is_seeded() -> None:
    professionals = {p.nihii: p for p in SEED_PROFESSIONALS}
    patients = {p.ssin: p for p in SEED_PATIENTS}
    for spec in SAMPLE_IDENTITIES:
        if spec.kind == "professional":
            seeded = professionals[spec.nihii or ""]
            assert spec.name.removeprefix("Dr ") == f"{seeded.given} {seeded.family}", spec.id
            assert seeded.hcparty == spec.profession, spec.id
        elif spec.kind == "patient":
            seeded_patient = patients[spec.ssin or ""]
            assert spec.name == f"{seeded_patient.given} {seeded_patient.family}", spec.id
    assert {s.id for s in SAMPLE_IDENTITIES if s.kind == "professional"} >= {"gp", "specialist", "nurse", "pharmacist"}
    assert "82121210976" not in patients  # the unknown patient of the NIST cases stays unknown


def test_seed_json_lists_the_identities(tmp_path: Path, rsb_pki: PkiDescription) -> None:
    hub = build_hub(tmp_path / "hub", seed=True, pki=rsb_pki)
    hub.close()
    seed = json.loads((tmp_path / "hub" / "seed.json").read_text())
    assert seed["pki"] == str(rsb_pki.directory)
    gp = next(i for i in seed["identities"] if i["id"] == "gp")
    assert gp["nihii"] == "12345625004" and Path(gp["file"]).is_file() and gp["password"] == rsb_pki.password
    assert len(seed["patients"]) == len(SEED_PATIENTS)  # the sample patients are seeded ones: nothing added


def test_a_pki_patient_who_is_not_seeded_is_registered(tmp_path: Path) -> None:
    newcomer = SampleSpec("newcomer", "patient", "patient", "Rita Dubois", ssin="82121210976")
    pki = init_pki(tmp_path / "pki", ca_key_size=2048, samples=[newcomer])
    hub = build_hub(tmp_path / "hub", seed=True, pki=pki)
    try:
        with hub.store.read() as r:
            assert r.has_patient(Ssin("82121210976").to_cx())
        added = [p for p in (hub.seed or {})["patients"] if p["ssin"] == "82121210976"]
        assert added and added[0]["given"] == "Rita" and added[0]["family"] == "Dubois"
    finally:
        hub.close()


def test_without_a_pki_the_hub_makes_one_in_its_data_dir(tmp_path: Path) -> None:
    hub = build_hub(tmp_path / "hub")
    try:
        assert hub.pki is not None and hub.security is not None
        assert hub.pki.directory == (tmp_path / "hub" / "pki").absolute()
        assert not hub.security.allow_unsigned
    finally:
        hub.close()
    again = build_hub(tmp_path / "hub")  # reused, not replaced
    try:
        assert again.pki is not None and again.pki.hub.fingerprint_sha256 == hub.pki.hub.fingerprint_sha256
    finally:
        again.close()
