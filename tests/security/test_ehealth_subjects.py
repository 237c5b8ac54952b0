"""Identity reads the subject layouts of real eHealth certificates (persons by SSIN, organisations by NIHII-<KIND>
or CBE, application certificates), refuses what it cannot read, and leaves the project's own layout alone.

Every certificate is generated here, in the attribute order of the real ones (see the sources in
``rsb_connector.security.identity``); no key material is stored. The numbers are the project's synthetic samples
(valid check digits), never real people's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from rsb_connector.hub.auth import caller_from_principal
from rsb_connector.identifiers import Cbe, Nihii, Ssin
from rsb_connector.policy.model import ActorKind, hcparty_of
from rsb_connector.security.identity import Identity, IdentityError, Principal, read_principal
from rsb_connector.security.pki import DevelopmentCa

SSIN = "87041213797"  # the development PKI's patient1
OTHER_SSIN = "73032929895"
HOSPITAL_NIHII = "71000436"  # the development PKI's hospital
CBE = "0412345614"
EHEALTH_UNIT = "eHealth-platform Belgium"
FEDERAL = "Federal Government"

Attr = tuple[x509.ObjectIdentifier, str]


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """One key for every certificate of this module (generating one per certificate is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _subject(*attributes: Attr) -> x509.Name:
    """A subject with the attributes in this (DER) order, one per RDN, as eHealth certificates have them."""
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def _ehealth(kind: str, number: str, holder: str | None, application: str | None = None) -> x509.Name:
    """The real eHealth layout: C, O, [OU=<APP>], OU=<TYPE>=<n>, [OU=<holder>], OU=eHealth-platform Belgium,
    CN=<TYPE>=<n>[, <APP>] (the order of the Vitalink certificate decoded from egelke/etee)."""
    attributes: list[Attr] = [(NameOID.COUNTRY_NAME, "BE"), (NameOID.ORGANIZATION_NAME, FEDERAL)]
    if application:
        attributes.append((NameOID.ORGANIZATIONAL_UNIT_NAME, application))
    attributes.append((NameOID.ORGANIZATIONAL_UNIT_NAME, f"{kind}={number}"))
    if holder:
        attributes.append((NameOID.ORGANIZATIONAL_UNIT_NAME, holder))
    attributes.append((NameOID.ORGANIZATIONAL_UNIT_NAME, EHEALTH_UNIT))
    cn = f"{kind}={number}" + (f", {application}" if application else "")
    attributes.append((NameOID.COMMON_NAME, cn))
    return _subject(*attributes)


def _with(name: x509.Name, *extra: Attr) -> x509.Name:
    return _subject(*[(a.oid, str(a.value)) for a in name], *extra)


def _read(ca: DevelopmentCa, key: rsa.RSAPrivateKey, subject: x509.Name) -> Principal:
    return read_principal(ca.issue(subject, key=key)[0])


# ------------------------------------------------------------------------------------------------------ persons


def test_person_certificate(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey) -> None:
    """CN="SSIN=<n>", OU=eHealth-platform Belgium, OU=<NAME>, OU="SSIN=<n>", O=Federal Government, C=BE."""
    principal = _read(dev_ca, key, _ehealth("SSIN", SSIN, "LUCAS PEETERS"))
    assert principal.kind == "patient"
    assert principal.ssin == Ssin(SSIN)
    assert principal.nihii is None
    assert principal.cbe is None
    assert principal.profession is None
    assert principal.name == "LUCAS PEETERS"
    assert principal.layout == "ehealth"
    assert principal.ehealth_type == "SSIN"
    assert principal.application is None
    assert principal.may_be_professional
    assert principal.client_id == f"ssin:{SSIN}"
    assert SSIN not in principal.describe()
    assert SSIN not in repr(principal)
    assert "patient or professional" in principal.describe()


def test_person_certificate_is_the_least_privileged_caller_on_the_hub(
    dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey
) -> None:
    """No NIHII in the certificate: the hub sees the patient of that SSIN, never a professional."""
    caller = caller_from_principal(_read(dev_ca, key, _ehealth("SSIN", SSIN, "LUCAS PEETERS")))
    assert caller.role == "patient"
    assert caller.ssin == SSIN
    assert caller.nihii is None
    actor = caller.actor()
    assert actor.kind is ActorKind.PATIENT
    assert actor.authenticated


def test_person_certificate_request_layout_without_a_name(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey) -> None:
    """The CertRA request subject: C, O, OU=eHealth-platform Belgium, OU=SSIN=<n>, CN=SSIN=<n> (no name OU)."""
    subject = _subject(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.ORGANIZATION_NAME, FEDERAL),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, EHEALTH_UNIT),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, f"SSIN={SSIN}"),
        (NameOID.COMMON_NAME, f"SSIN={SSIN}"),
    )
    principal = _read(dev_ca, key, subject)
    assert principal.kind == "patient"
    assert principal.ssin == Ssin(SSIN)
    assert principal.name == "SSIN=87*******97"  # the CN, masked: the name goes to logs


def test_person_by_bare_serial_number(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey) -> None:
    """serialNumber = the bare SSIN and a display CN (the Belgian eID form)."""
    subject = _subject(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.COMMON_NAME, "Lucas Peeters (Authentication)"),
        (NameOID.SURNAME, "Peeters"),
        (NameOID.GIVEN_NAME, "Lucas"),
        (NameOID.SERIAL_NUMBER, SSIN),
    )
    principal = _read(dev_ca, key, subject)
    assert principal.kind == "patient"
    assert principal.ssin == Ssin(SSIN)
    assert principal.name == "Lucas Peeters (Authentication)"
    assert principal.layout == "ehealth"
    assert principal.may_be_professional


def test_serial_number_repeating_the_cn(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey) -> None:
    subject = _with(_ehealth("SSIN", SSIN, "LUCAS PEETERS"), (NameOID.SERIAL_NUMBER, SSIN))
    assert _read(dev_ca, key, subject).ssin == Ssin(SSIN)
    hospital = _ehealth("NIHII-HOSPITAL", HOSPITAL_NIHII, "HOPITAL SAINT-EXEMPLE")
    principal = _read(dev_ca, key, _with(hospital, (NameOID.SERIAL_NUMBER, HOSPITAL_NIHII)))
    assert principal.nihii == Nihii(HOSPITAL_NIHII)


def test_identity_loads_an_ehealth_pkcs12(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey, tmp_path: Path) -> None:
    """Identity.load of a .p12 in the eHealth layout (written to a temporary directory, never committed)."""
    cert, _ = dev_ca.issue(_ehealth("SSIN", SSIN, "LUCAS PEETERS"), key=key)
    path = tmp_path / f"SSIN={SSIN} 20250101-120000.acc-p12"  # how the eHealth Certificate Manager names them
    encryption = serialization.BestAvailableEncryption(b"pw")
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(b"authentication", key, cert, [dev_ca.certificate], encryption)
    )
    identity = Identity.load(path, "pw")
    assert identity.kind == "patient"
    assert identity.ssin == Ssin(SSIN)
    assert identity.nihii is None
    assert identity.layout == "ehealth"
    assert identity.may_be_professional
    assert identity.name == "LUCAS PEETERS"
    assert SSIN not in repr(identity)
    assert "SSIN=87*******97 20250101-120000.acc-p12" in repr(identity)
    with pytest.raises(IdentityError, match=r"SSIN=87\*{7}97 20250101-120000\.acc-p12: cannot open") as caught:
        Identity.load(path, "wrong")
    assert SSIN not in str(caught.value)


# ------------------------------------------------------------------------------------------------ organisations


def test_hospital_certificate(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey) -> None:
    principal = _read(dev_ca, key, _ehealth("NIHII-HOSPITAL", HOSPITAL_NIHII, "HOPITAL SAINT-EXEMPLE"))
    assert principal.kind == "organisation"
    assert principal.nihii == Nihii(HOSPITAL_NIHII)
    assert principal.ssin is None
    assert principal.cbe is None
    assert principal.profession == "orghospital"
    assert principal.name == "HOPITAL SAINT-EXEMPLE"
    assert principal.ehealth_type == "NIHII-HOSPITAL"
    assert not principal.may_be_professional
    assert principal.client_id == f"nihii:{HOSPITAL_NIHII}"
    caller = caller_from_principal(principal)
    assert caller.role == "orghospital"
    assert caller.organisation == HOSPITAL_NIHII
    actor = caller.actor()
    assert actor.kind is ActorKind.ORGANISATION
    assert actor.nihii == HOSPITAL_NIHII
    assert hcparty_of(actor.nihii) == "orghospital"  # what the hub's consent rules look for


@pytest.mark.parametrize(
    ("kind", "number", "profession"),
    [
        ("NIHII-PHARMACY", "21047317", "orgpharmacy"),
        ("NIHII-LABO", "81234530", "orglaboratory"),
        ("NIHII-GROUP", "40012302", "groupofnurses"),
        ("NIHII-GUARD_POST", "99123409", "guardpost"),
        ("NIHII-MEDICAL_HOUSE", "30012392", None),
        ("NIHII", HOSPITAL_NIHII, None),
    ],
)
def test_organisations_by_nihii(
    dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey, kind: str, number: str, profession: str | None
) -> None:
    principal = _read(dev_ca, key, _ehealth(kind, number, "SOME ORGANISATION"))
    assert principal.kind == "organisation"
    assert principal.nihii == Nihii(number)
    assert principal.profession == profession
    assert principal.ehealth_type == kind
    assert principal.client_id == f"nihii:{number}"
    assert caller_from_principal(principal).role == (profession or "organisation")


@pytest.mark.parametrize("kind", ["CBE", "CBE-TREAT_CENTER"])
def test_organisations_by_cbe(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey, kind: str) -> None:
    principal = _read(dev_ca, key, _ehealth(kind, CBE, "SOME ENTERPRISE"))
    assert principal.kind == "organisation"
    assert principal.cbe == Cbe(CBE)
    assert principal.nihii is None
    assert principal.profession is None
    assert principal.client_id == f"cbe:{CBE}"
    caller = caller_from_principal(principal)
    assert caller.organisation == CBE
    assert caller.actor().cbe == CBE


def test_application_certificate(dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey) -> None:
    """CN="CBE=<n>, MYCARENET" with OU=MYCARENET: the application is not taken for the holder's name."""
    principal = _read(dev_ca, key, _ehealth("CBE", CBE, "SOME ENTERPRISE", application="MYCARENET-EC"))
    assert principal.kind == "organisation"
    assert principal.cbe == Cbe(CBE)
    assert principal.application == "MYCARENET-EC"
    assert principal.name == "SOME ENTERPRISE"
    assert "application MYCARENET-EC" in principal.describe()


# ----------------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        # the real Vitalink gateway certificate's layout: an eHealth partner (EHP) is no principal kind here
        (_ehealth("EHP", "1990001916", "VLAAMS AGENTSCHAP ZORG EN GEZONDHEID", "VITALINKGATEWAY"), "type 'EHP'"),
        (_ehealth("SSIN", "87041213798", "X"), "invalid SSIN"),
        (
            _subject(
                (NameOID.ORGANIZATIONAL_UNIT_NAME, f"SSIN={OTHER_SSIN}"),
                (NameOID.COMMON_NAME, f"SSIN={SSIN}"),
            ),
            r"two different SSIN identifiers: CN SSIN=87\*\*\*\*\*\*\*97 and OU SSIN=73\*\*\*\*\*\*\*95",
        ),
        (
            _subject(
                (NameOID.ORGANIZATIONAL_UNIT_NAME, f"NIHII-PHARMACY={HOSPITAL_NIHII}"),
                (NameOID.COMMON_NAME, f"NIHII-HOSPITAL={HOSPITAL_NIHII}"),
            ),
            "two different NIHII identifiers",
        ),
        (_with(_ehealth("SSIN", SSIN, "X"), (NameOID.SERIAL_NUMBER, OTHER_SSIN)), "is not the number its CN names"),
        (_ehealth("NIHII", "12345625004", "Dr X"), "11-digit NIHII"),
        (
            _with(_ehealth("SSIN", SSIN, "X"), (NameOID.ORGANIZATIONAL_UNIT_NAME, f"NIHII-HOSPITAL={HOSPITAL_NIHII}")),
            "names a person \\(SSIN\\) and also a NIHII",
        ),
        (_with(_ehealth("SSIN", SSIN, "X"), (NameOID.TITLE, "persphysician")), "carry no title"),
        (
            _subject((NameOID.ORGANIZATIONAL_UNIT_NAME, EHEALTH_UNIT), (NameOID.COMMON_NAME, "Someone")),
            "no eHealth identifier .*found CN 'Someone' and OU 'eHealth-platform Belgium'",
        ),
        (_subject((NameOID.SERIAL_NUMBER, "12345"), (NameOID.COMMON_NAME, "Someone")), "nor an 11-digit SSIN"),
    ],
)
def test_unreadable_subjects_are_refused(
    dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey, subject: x509.Name, message: str
) -> None:
    with pytest.raises(IdentityError, match=message) as caught:
        _read(dev_ca, key, subject)
    assert SSIN not in str(caught.value)
    assert OTHER_SSIN not in str(caught.value)


def test_identity_load_names_the_file_and_what_was_found(
    dev_ca: DevelopmentCa, key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    cert, _ = dev_ca.issue(_ehealth("EHP", "1990001916", "SOME PARTNER", "SOMEGATEWAY"), key=key)
    path = tmp_path / "partner.pem"
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(pem + key_pem)
    with pytest.raises(IdentityError, match=r"partner\.pem: .*eHealth identifier type 'EHP' \(EHP=1990001916\)"):
        Identity.load(path)


# ------------------------------------------------------------------------------------------ the project's layout


def test_the_project_layout_is_read_as_before(gp: Identity, patient: Identity) -> None:
    assert gp.layout == "rsb"
    assert gp.kind == "professional"
    assert gp.principal.ehealth_type is None
    assert gp.principal.application is None
    assert not gp.may_be_professional
    assert gp.principal.describe() == "professional Dr Sophie Claes (persphysician), NIHII 12345625004"
    assert patient.layout == "rsb"
    assert patient.kind == "patient"
    assert not patient.may_be_professional  # a patient certificate of the project's layout says so
