"""Identity: loading PKCS#12 and PEM once, refusing bad files and certificates, reading the subject layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from rsb_connector.errors import RsbError
from rsb_connector.identifiers import Cbe, Nihii, Ssin
from rsb_connector.security.identity import Identity, IdentityError, build_subject, read_principal
from rsb_connector.security.pki import DevelopmentCa, PkiDescription, SampleSpec


def _p12(path: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey, ca: x509.Certificate, password: bytes) -> Path:
    encryption = serialization.BestAvailableEncryption(password)
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"test", key, cert, [ca], encryption))
    return path


# ------------------------------------------------------------------------------------------------------ loading


def test_from_pkcs12_reads_the_professional(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    identity = Identity.from_pkcs12(pki.path(record.file), record.password)
    assert identity.kind == "professional"
    assert identity.nihii == Nihii("12345625004")
    assert identity.nihii is not None
    assert identity.nihii.qualification == "004"
    assert identity.profession == "persphysician"
    assert identity.ssin is None
    assert identity.cbe is None
    assert identity.name == "Dr Sophie Claes"
    assert identity.client_id == "nihii:12345625004"
    assert identity.chain[0] == identity.certificate
    assert identity.chain[1] == pki.ca_certificate()
    assert identity.intermediates == (pki.ca_certificate(),)
    assert identity.fingerprint_sha256 == identity.certificate.fingerprint(hashes.SHA256()).hex()
    assert "SERIALNUMBER" in identity.subject_dn or "2.5.4.5=NIHII:12345625004" in identity.subject_dn
    assert identity.not_valid_after == identity.certificate.not_valid_after_utc


def test_from_pem_gives_the_same_identity(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    from_p12 = Identity.from_pkcs12(pki.path(record.file), record.password)
    from_pem = Identity.from_pem(pki.path(record.pem_cert), pki.path(record.pem_key), record.password)
    assert from_pem.certificate == from_p12.certificate
    assert from_pem.chain == from_p12.chain
    assert from_pem.private_key.private_numbers() == from_p12.private_key.private_numbers()


def test_load_dispatches_on_suffix(pki: PkiDescription) -> None:
    record = pki.identity("patient1")
    by_p12 = Identity.load(pki.path(record.file), record.password)
    # No key_path: the sibling <stem>-key.pem is found.
    by_pem = Identity.load(pki.path(record.pem_cert), record.password)
    assert by_p12.certificate == by_pem.certificate
    assert by_p12.kind == by_pem.kind == "patient"


def test_load_pem_with_key_and_chain_in_one_file(pki: PkiDescription, tmp_path: Path) -> None:
    record = pki.identity("nurse")
    combined = tmp_path / "nurse-all.pem"
    # chain first, then the key, then the leaf: order must not matter
    pem_certs = pki.path(record.pem_cert).read_bytes()
    combined.write_bytes(pki.ca_cert.read_bytes() + pki.path(record.pem_key).read_bytes() + pem_certs)
    identity = Identity.load(combined, record.password)
    assert identity.profession == "persnurse"
    assert identity.chain[0].subject != identity.chain[1].subject
    assert identity.chain[-1] == pki.ca_certificate()


def test_wrong_pkcs12_password_is_a_clear_error(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    with pytest.raises(IdentityError, match="password is wrong") as caught:
        Identity.from_pkcs12(pki.path(record.file), "not-the-password")
    assert record.file.split("/")[-1] in str(caught.value)
    assert isinstance(caught.value, RsbError)


def test_missing_pkcs12_password_is_named(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    with pytest.raises(IdentityError, match="no password was given"):
        Identity.from_pkcs12(pki.path(record.file), None)


def test_wrong_pem_password_and_missing_password(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    with pytest.raises(IdentityError, match="wrong password"):
        Identity.from_pem(pki.path(record.pem_cert), pki.path(record.pem_key), "nope")
    with pytest.raises(IdentityError, match="give its password"):
        Identity.from_pem(pki.path(record.pem_cert), pki.path(record.pem_key), None)


def test_key_of_another_certificate_is_refused(pki: PkiDescription) -> None:
    gp, nurse = pki.identity("gp"), pki.identity("nurse")
    with pytest.raises(IdentityError, match="matches the private key"):
        Identity.from_pem(pki.path(gp.pem_cert), pki.path(nurse.pem_key), nurse.password)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="cannot read"):
        Identity.from_pkcs12(tmp_path / "absent.p12", "x")
    odd = tmp_path / "identity.jks"
    odd.write_bytes(b"\x00")
    with pytest.raises(IdentityError, match="unknown identity file type"):
        Identity.load(odd)


def test_not_a_pkcs12_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.p12"
    junk.write_bytes(b"this is not DER")
    with pytest.raises(IdentityError, match="not PKCS#12"):
        Identity.from_pkcs12(junk, "x")


# ------------------------------------------------------------------------------------------------------ validity


def test_expired_certificate_refused_at_load(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    identity = pki.load_identity("gp")
    later = identity.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(IdentityError, match="expired on"):
        Identity.from_pkcs12(pki.path(record.file), record.password, now=later)


def test_future_certificate_refused_at_load(pki: PkiDescription) -> None:
    record = pki.identity("gp")
    identity = pki.load_identity("gp")
    earlier = identity.certificate.not_valid_before_utc - timedelta(days=1)
    with pytest.raises(IdentityError, match="not valid yet"):
        Identity.from_pkcs12(pki.path(record.file), record.password, now=earlier)


def test_really_expired_pkcs12_refused(dev_ca: DevelopmentCa, tmp_path: Path) -> None:
    ca = dev_ca
    now = datetime.now(UTC)
    spec = SampleSpec("old", "expired GP", "professional", "Dr Old", nihii="12345625003", profession="persphysician")
    cert, key = ca.issue_identity(spec, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1))
    path = _p12(tmp_path / "old.p12", cert, key, ca.certificate, b"pw")
    with pytest.raises(IdentityError, match=r"expired on .*renew it"):
        Identity.load(path, "pw")
    # the same file was fine while it was valid
    assert Identity.load(path, "pw", now=now - timedelta(days=10)).name == "Dr Old"


# ------------------------------------------------------------------------------------------------------ subjects


def test_patient_hospital_and_hub_subjects(pki: PkiDescription) -> None:
    patient = pki.load_identity("patient2")
    assert patient.kind == "patient"
    assert patient.ssin == Ssin("92021415810")
    assert patient.nihii is None
    assert patient.profession is None
    assert patient.client_id == "ssin:92021415810"
    hospital = pki.load_identity("hospital")
    assert hospital.kind == "organisation"
    assert hospital.nihii == Nihii("71000436")
    assert hospital.nihii is not None
    assert hospital.nihii.is_organisation
    assert hospital.cbe == Cbe("0412345614")
    assert hospital.profession == "orghospital"
    assert hospital.client_id == "nihii:71000436"
    hub = pki.load_hub_identity()
    assert hub.kind == "organisation"
    assert hub.name == "rsb-mock-hub"
    assert hub.client_id.startswith("cbe:")


def test_repr_masks_the_ssin(pki: PkiDescription) -> None:
    patient = pki.load_identity("patient1")
    assert "87041213797" not in repr(patient)
    assert "87041213797" not in repr(patient.principal)
    assert "87*******97" in repr(patient)


def _cert_with(ca: DevelopmentCa, subject: x509.Name) -> x509.Certificate:
    return ca.issue(subject)[0]


def test_invalid_identifier_in_subject(dev_ca: DevelopmentCa) -> None:
    ca = dev_ca
    bad = x509.Name(
        [
            x509.NameAttribute(NameOID.TITLE, "persphysician"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "NIHII:12345626003"),  # check digits 26 instead of 25
            x509.NameAttribute(NameOID.COMMON_NAME, "Dr Typo"),
        ]
    )
    with pytest.raises(IdentityError, match="invalid NIHII"):
        read_principal(_cert_with(ca, bad))


def test_profession_must_match_the_nihii(dev_ca: DevelopmentCa) -> None:
    with pytest.raises(IdentityError, match="does not match the NIHII"):
        read_principal(_cert_with(dev_ca, build_subject(name="X", nihii="12345625003", profession="persnurse")))


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ([(NameOID.COMMON_NAME, "No serial")], "no serialNumber"),
        ([(NameOID.SERIAL_NUMBER, "PASSPORT:123"), (NameOID.COMMON_NAME, "X")], "not of the form"),
        ([(NameOID.SERIAL_NUMBER, "SSIN:73032929895")], "no CN"),
        (
            [(NameOID.SERIAL_NUMBER, "SSIN:73032929895"), (NameOID.TITLE, "wizard"), (NameOID.COMMON_NAME, "X")],
            "not a CD-HCPARTY",
        ),
        (
            [
                (NameOID.SERIAL_NUMBER, "SSIN:73032929895"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "SSIN=82121210976"),
                (NameOID.COMMON_NAME, "X"),
            ],
            "two different SSIN",
        ),
        (
            [
                (NameOID.SERIAL_NUMBER, "SSIN:73032929895"),
                (NameOID.ORGANIZATIONAL_UNIT_NAME, "NIHII=12345625003"),
                (NameOID.COMMON_NAME, "X"),
            ],
            "must not carry a NIHII",
        ),
        (
            [(NameOID.SERIAL_NUMBER, "NIHII:12345625003"), (NameOID.TITLE, "orghospital"), (NameOID.COMMON_NAME, "X")],
            "has 8 digits",
        ),
    ],
)
def test_subject_layout_violations(
    dev_ca: DevelopmentCa, attributes: list[tuple[x509.ObjectIdentifier, str]], message: str
) -> None:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    with pytest.raises(IdentityError, match=message):
        read_principal(_cert_with(dev_ca, name))


def test_build_subject_refuses_bad_identifiers() -> None:
    with pytest.raises(IdentityError, match="invalid SSIN"):
        build_subject(name="X", ssin="73032929896")
    with pytest.raises(IdentityError, match="needs a NIHII"):
        build_subject(name="X")


# ------------------------------------------------------------------------------------------------------ signing


def test_sign_is_rsa_sha256_pkcs1(gp: Identity) -> None:
    signature = gp.sign(b"hello")
    gp.public_key.verify(signature, b"hello", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        gp.public_key.verify(signature, b"hellO", padding.PKCS1v15(), hashes.SHA256())
