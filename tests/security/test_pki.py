"""Development PKI, trust store and replay cache."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from rsb_connector.identifiers import Cbe, Nihii, Ssin
from rsb_connector.security.identity import Identity, build_subject
from rsb_connector.security.pki import (
    SAMPLE_IDENTITIES,
    DevelopmentCa,
    PkiDescription,
    PkiError,
    init_pki,
    load_pki,
)
from rsb_connector.security.trust import ReplayCache, ReplayCacheFull, TrustStore, UntrustedCertificate

# ---------------------------------------------------------------------------------------------------------- PKI


def test_identities_json_describes_every_identity(pki: PkiDescription) -> None:
    document = json.loads((pki.directory / "identities.json").read_text())
    ids = [r["id"] for r in document["identities"]]
    assert ids == [s.id for s in SAMPLE_IDENTITIES]
    for record in document["identities"]:
        assert set(record) >= {
            "id", "role", "kind", "name", "file", "password", "pem_cert", "pem_key", "nihii", "ssin", "cbe",
            "profession",
        }  # fmt: skip
        assert not Path(record["file"]).is_absolute()
        assert (pki.directory / record["file"]).is_file()
        assert (pki.directory / record["pem_cert"]).is_file()
        assert (pki.directory / record["pem_key"]).is_file()
    assert document["hub"]["file"] == "hub.p12"
    assert load_pki(pki.directory) == pki


def test_every_identity_loads_validates_and_chains(pki: PkiDescription, trust: TrustStore) -> None:
    loaded = load_pki(pki.directory)
    for record in loaded.identities:
        identity = loaded.load_identity(record.id)
        from_pem = Identity.from_pem(loaded.path(record.pem_cert), loaded.path(record.pem_key), record.password)
        assert from_pem.certificate == identity.certificate
        assert identity.kind == record.kind
        assert identity.client_id == record.client_id
        if record.nihii:
            assert Nihii(record.nihii) == identity.nihii
        if record.ssin:
            assert Ssin(record.ssin) == identity.ssin
        if record.cbe:
            assert Cbe(record.cbe) == identity.cbe
        assert identity.profession == record.profession
        chain = trust.verify_chain(identity.certificate, identity.intermediates)
        assert chain[0] == identity.certificate
        assert chain[-1] == loaded.ca_certificate()


def test_sample_population_covers_the_consent_roles(pki: PkiDescription) -> None:
    by_id = {r.id: r for r in pki.identities}
    professions = sorted(r.profession or "" for r in pki.identities if r.kind == "professional")
    assert professions == ["persnurse", "perspharmacist", "persphysician", "persphysician", "persphysiotherapist"]
    assert Nihii(by_id["gp"].nihii or "").qualification in ("003", "004")  # general practitioner
    assert Nihii(by_id["specialist"].nihii or "").qualification not in ("003", "004")
    assert [r.id for r in pki.identities if r.kind == "patient"] == ["patient1", "patient2"]
    hospital = by_id["hospital"]
    assert hospital.kind == "organisation"
    assert Nihii(hospital.nihii or "").is_organisation
    assert hospital.cbe


def test_key_files_are_private(pki: PkiDescription) -> None:
    secret = [pki.ca_key, pki.path("hub-key.pem"), pki.path("hub.p12")]
    for record in pki.identities:
        secret += [pki.path(record.file), pki.path(record.pem_key)]
    for path in secret:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert b"ENCRYPTED PRIVATE KEY" in pki.path("hub-key.pem").read_bytes()


def test_ca_and_hub_certificates(pki: PkiDescription, hub_identity: Identity) -> None:
    ca = pki.ca_certificate()
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert timedelta(days=5 * 365) <= lifetime <= timedelta(days=5 * 366)
    hub = hub_identity.certificate
    assert hub.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "rsb-mock-hub"
    usages = hub.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    san = hub.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [IPv4Address("127.0.0.1")]
    pem = Identity.load(pki.path("hub.pem"), pki.password)  # the hub's PEM pair
    assert pem.certificate == hub


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    subset = SAMPLE_IDENTITIES[:1]
    first_ca = init_pki(tmp_path, ca_key_size=2048, samples=subset, password="pw").ca_certificate()
    with pytest.raises(PkiError, match="already holds a PKI"):
        init_pki(tmp_path, ca_key_size=2048, samples=subset)
    second = init_pki(tmp_path, ca_key_size=2048, samples=subset, password="pw", force=True)
    assert second.ca_certificate() != first_ca
    assert load_pki(tmp_path).identity("gp").fingerprint_sha256 == second.identity("gp").fingerprint_sha256


def test_load_pki_without_description(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="rsb hub pki init"):
        load_pki(tmp_path)
    (tmp_path / "identities.json").write_text('{"format": 1}')
    with pytest.raises(PkiError, match="not a description"):
        load_pki(tmp_path)


def test_unknown_identity_names_the_known_ones(pki: PkiDescription) -> None:
    with pytest.raises(KeyError, match="patient1"):
        pki.identity("dentist")


# ------------------------------------------------------------------------------------------------------- trust


def test_chain_from_another_ca_is_refused(trust: TrustStore, impostor: Identity) -> None:
    with pytest.raises(UntrustedCertificate, match="not trusted"):
        trust.verify_chain(impostor.certificate, impostor.intermediates)
    assert not trust.is_trusted(impostor.certificate)


def test_a_foreign_chain_does_not_become_trusted_by_being_sent(
    trust: TrustStore, impostor: Identity, other_ca: DevelopmentCa
) -> None:
    # the impostor sends its own CA along: still refused (intermediates are never anchors)
    with pytest.raises(UntrustedCertificate):
        trust.verify_chain(impostor.certificate, [other_ca.certificate])


def test_validity_window_is_checked(trust: TrustStore, gp: Identity) -> None:
    cert = gp.certificate
    with pytest.raises(UntrustedCertificate, match="expired"):
        trust.verify_chain(cert, now=cert.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(UntrustedCertificate, match="not valid yet"):
        trust.verify_chain(cert, now=cert.not_valid_before_utc - timedelta(seconds=1))
    assert trust.is_trusted(cert, now=cert.not_valid_before_utc + timedelta(seconds=1))


def test_leaf_posing_as_ca_cannot_issue(trust: TrustStore, pki: PkiDescription, dev_ca: DevelopmentCa) -> None:
    # A certificate issued by an end-entity (the GP) is not trusted, even though the GP's chain is.
    gp = pki.load_identity("gp")
    rogue_ca = DevelopmentCa(gp.certificate, gp.private_key)
    cert, _ = rogue_ca.issue(build_subject(name="Rogue", nihii="12345625003", profession="persphysician"))
    with pytest.raises(UntrustedCertificate):
        trust.verify_chain(cert, [gp.certificate])


def test_trust_store_needs_an_anchor_and_reads_pem(pki: PkiDescription) -> None:
    with pytest.raises(ValueError, match="at least one"):
        TrustStore([])
    store = TrustStore.from_pem_file(pki.ca_cert)
    assert store.anchors == (pki.ca_certificate(),)


# -------------------------------------------------------------------------------------------------- replay cache


def test_replay_cache_remembers_until_expiry() -> None:
    cache = ReplayCache()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    until = now + timedelta(seconds=60)
    assert cache.remember("m1", until, now=now)
    assert not cache.remember("m1", until, now=now + timedelta(seconds=59))
    assert cache.seen("m1", now=now)
    assert cache.remember("m1", until + timedelta(seconds=60), now=now + timedelta(seconds=61))
    assert len(cache) == 1


def test_replay_cache_is_bounded_and_fails_closed() -> None:
    cache = ReplayCache(max_entries=2)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert cache.remember("a", now + timedelta(seconds=10), now=now)
    assert cache.remember("b", now + timedelta(seconds=20), now=now)
    with pytest.raises(ReplayCacheFull):
        cache.remember("c", now + timedelta(seconds=30), now=now)
    assert not cache.remember("a", now + timedelta(seconds=10), now=now)  # still a replay, not "full"
    # once "a" expired there is room again, and "a" is forgotten
    assert cache.remember("c", now + timedelta(seconds=30), now=now + timedelta(seconds=11))
    assert not cache.seen("a", now=now + timedelta(seconds=11))
    assert len(cache) == 2


def test_replay_cache_is_thread_safe() -> None:
    cache = ReplayCache()
    until = datetime.now(UTC) + timedelta(minutes=5)
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        results.append(cache.remember("same-id", until))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1
    assert results.count(False) == 15
