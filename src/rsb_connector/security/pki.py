"""A development PKI: a CA, the mock hub's certificate and sample identities for every consent role.

``rsb hub pki init DIR`` calls :func:`init_pki`, which writes::

    DIR/ca.pem                  the development CA certificate (the trust anchor of hub and clients)
    DIR/ca-key.pem              its key, encrypted with the password (0600), to issue more identities later
    DIR/hub.pem, hub-key.pem    the hub's certificate (+ CA) and encrypted key (0600); CN rsb-mock-hub,
                                SAN localhost / 127.0.0.1, serverAuth + clientAuth
    DIR/hub.p12                 the same as PKCS#12 (0600)
    DIR/identities/<id>.p12     each sample identity as PKCS#12 (0600)
    DIR/identities/<id>.pem     its certificate followed by the CA certificate
    DIR/identities/<id>-key.pem its encrypted private key (0600)
    DIR/identities.json         what is where: see :class:`PkiDescription`

Every sample identity has valid Belgian identifiers (check digits computed) in the subject layout of
:mod:`rsb_connector.security.identity`. The identifiers are fictitious: the people are the mock hub's synthetic
seeded population. Everything here is for development and tests only: the password is shared and written down.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rsb_connector.errors import RsbError
from rsb_connector.security.identity import Identity, IdentityKind, build_subject, read_principal
from rsb_connector.security.trust import TrustStore

__all__ = [
    "DEFAULT_PASSWORD",
    "DESCRIPTION_FILE",
    "HUB_CN",
    "SAMPLE_IDENTITIES",
    "DevelopmentCa",
    "PkiDescription",
    "PkiError",
    "SampleIdentity",
    "SampleSpec",
    "init_pki",
    "load_pki",
]

DEFAULT_PASSWORD: Final = "rsb-dev"  # noqa: S105 - the documented development password
HUB_CN: Final = "rsb-mock-hub"
HUB_CBE: Final = "0874426393"
"""A fictitious (checksum-valid) enterprise number for the mock hub's certificate subject."""
DESCRIPTION_FILE: Final = "identities.json"
FORMAT_VERSION: Final = 1

_CA_YEARS: Final = 5
_LEAF_DAYS: Final = 2 * 365
_BACKDATE: Final = timedelta(hours=1)


class PkiError(RsbError):
    """The development PKI cannot be created or read."""


@dataclass(frozen=True, slots=True)
class SampleSpec:
    """What a sample identity is: its role in the consent model and the identifiers in its subject."""

    id: str
    role: str
    kind: IdentityKind
    name: str
    nihii: str | None = None
    ssin: str | None = None
    cbe: str | None = None
    profession: str | None = None


SAMPLE_IDENTITIES: Final[tuple[SampleSpec, ...]] = (
    SampleSpec("gp", "general practitioner (NIHII qualification 004)", "professional", "Dr Sophie Claes",
               nihii="12345625004", profession="persphysician"),
    SampleSpec("specialist", "specialist physician (NIHII qualification 580)", "professional", "Dr Karim Benali",
               nihii="14087170580", profession="persphysician"),
    SampleSpec("nurse", "home care nurse (NIHII qualification 401)", "professional", "Els De Smet",
               nihii="43120755401", profession="persnurse"),
    SampleSpec("physiotherapist", "physiotherapist (NIHII qualification 527)", "professional", "Thomas Wouters",
               nihii="51834424527", profession="persphysiotherapist"),
    SampleSpec("pharmacist", "community pharmacist", "professional", "Nadia Haddad",
               nihii="62771965010", profession="perspharmacist"),
    SampleSpec("patient1", "patient", "patient", "Lucas Peeters", ssin="87041213797"),
    SampleSpec("patient2", "patient", "patient", "Amina El Idrissi", ssin="92021415810"),
    SampleSpec("hospital", "hospital (organisation NIHII and CBE)", "organisation", "Hopital Saint-Exemple",
               nihii="71000436", cbe="0412345614", profession="orghospital"),
)  # fmt: skip
"""The sample population of :func:`init_pki`: two physicians (GP, specialist), a nurse, a physiotherapist, a
pharmacist, two patients and a hospital. The people are the mock hub's seeded population
(:mod:`rsb_connector.hub.population`: same names, NIHIIs and SSINs), so that ``rsb hub serve --seed`` knows every
patient a sample identity names and every professional is a seeded one."""


@dataclass(frozen=True, slots=True)
class SampleIdentity:
    """One entry of ``identities.json``. Paths are relative to the PKI directory.

    Attributes:
        id: short name (``gp``, ``patient1``...), also the file stem.
        role: what the identity stands for in the consent model, for people.
        kind: ``professional``, ``patient`` or ``organisation``.
        file: the PKCS#12 file; ``password`` opens it and the PEM key.
        pem_cert / pem_key: the PEM certificate (+ CA) and the encrypted PEM key.
        nihii / ssin / cbe / profession: the identifiers in the certificate subject.
        client_id: the OAuth2 client id the identity presents (``nihii:...``).
    """

    id: str
    role: str
    kind: IdentityKind
    name: str
    file: str
    password: str
    pem_cert: str
    pem_key: str
    nihii: str | None
    ssin: str | None
    cbe: str | None
    profession: str | None
    client_id: str
    fingerprint_sha256: str

    def to_json(self) -> dict[str, Any]:
        """The ``identities.json`` record."""
        return {
            "id": self.id,
            "role": self.role,
            "kind": self.kind,
            "name": self.name,
            "file": self.file,
            "password": self.password,
            "pem_cert": self.pem_cert,
            "pem_key": self.pem_key,
            "nihii": self.nihii,
            "ssin": self.ssin,
            "cbe": self.cbe,
            "profession": self.profession,
            "client_id": self.client_id,
            "fingerprint_sha256": self.fingerprint_sha256,
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> SampleIdentity:
        """Read an ``identities.json`` record."""

        def text(name: str) -> str:
            value = record.get(name)
            if not isinstance(value, str):
                raise PkiError(f"identity record {record.get('id')!r}: {name!r} is missing or not text")
            return value

        def optional(name: str) -> str | None:
            value = record.get(name)
            return value if isinstance(value, str) else None

        kind_text = text("kind")
        kinds: dict[str, IdentityKind] = {
            "professional": "professional",
            "patient": "patient",
            "organisation": "organisation",
        }
        kind = kinds.get(kind_text)
        if kind is None:
            raise PkiError(f"identity record {record.get('id')!r}: unknown kind {kind_text!r}")
        return cls(
            id=text("id"),
            role=text("role"),
            kind=kind,
            name=text("name"),
            file=text("file"),
            password=text("password"),
            pem_cert=text("pem_cert"),
            pem_key=text("pem_key"),
            nihii=optional("nihii"),
            ssin=optional("ssin"),
            cbe=optional("cbe"),
            profession=optional("profession"),
            client_id=text("client_id"),
            fingerprint_sha256=text("fingerprint_sha256"),
        )


@dataclass(frozen=True, slots=True)
class PkiDescription:
    """A development PKI on disk, as described by its ``identities.json``.

    Attributes:
        directory: the PKI directory (absolute).
        ca_cert / ca_key: the CA certificate and encrypted key.
        hub: the hub's identity record (``file`` = ``hub.p12``, ``pem_cert`` = ``hub.pem``...).
        identities: the sample identities.
    """

    directory: Path
    ca_cert: Path
    ca_key: Path
    password: str
    hub: SampleIdentity
    identities: tuple[SampleIdentity, ...] = field(default=())

    def identity(self, identity_id: str) -> SampleIdentity:
        """The sample identity called ``identity_id``; KeyError naming the known ids otherwise."""
        for record in self.identities:
            if record.id == identity_id:
                return record
        known = ", ".join(r.id for r in self.identities)
        raise KeyError(f"no identity {identity_id!r} in {self.directory} (known: {known})")

    def path(self, relative: str) -> Path:
        """An absolute path for a path relative to the PKI directory."""
        return self.directory / relative

    def load_identity(self, identity_id: str, *, now: datetime | None = None) -> Identity:
        """Load a sample identity from its PKCS#12 file."""
        record = self.identity(identity_id)
        return Identity.from_pkcs12(self.path(record.file), record.password, now=now)

    def load_hub_identity(self, *, now: datetime | None = None) -> Identity:
        """Load the hub's identity (to sign responses and access tokens)."""
        return Identity.from_pkcs12(self.path(self.hub.file), self.hub.password, now=now)

    def ca_certificate(self) -> x509.Certificate:
        """The development CA certificate."""
        return x509.load_pem_x509_certificate(self.ca_cert.read_bytes())

    def trust_store(self) -> TrustStore:
        """A trust store holding the development CA."""
        return TrustStore([self.ca_certificate()])

    def ca(self) -> DevelopmentCa:
        """The CA with its key, to issue more certificates (tests, conformance)."""
        return DevelopmentCa.load(self.ca_cert, self.ca_key, self.password)

    def to_json(self) -> dict[str, Any]:
        """The ``identities.json`` document."""
        return {
            "format": FORMAT_VERSION,
            "ca": self.ca_cert.name,
            "ca_key": self.ca_key.name,
            "password": self.password,
            "hub": self.hub.to_json(),
            "identities": [r.to_json() for r in self.identities],
        }


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class DevelopmentCa:
    """A development certificate authority: a self-signed CA certificate and its key.

    Use :meth:`create` for a new one, :meth:`load` to reopen one written by :func:`init_pki`, and :meth:`issue` to
    issue end-entity certificates (any validity window: tests issue expired ones on purpose).
    """

    __slots__ = ("certificate", "key")

    def __init__(self, certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        self.certificate = certificate
        self.key = key

    @classmethod
    def create(
        cls,
        *,
        name: str = "RSB Development CA",
        key_size: int = 3072,
        now: datetime | None = None,
        years: int = _CA_YEARS,
    ) -> DevelopmentCa:
        """A new self-signed CA (basicConstraints CA, keyCertSign + cRLSign), valid ``years`` from ``now``."""
        at = _utc(now)
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rsb-connector development"),
                x509.NameAttribute(NameOID.COMMON_NAME, name),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - _BACKDATE)
            .not_valid_after(at + timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path, password: str | None) -> DevelopmentCa:
        """Reopen a CA from its PEM certificate and (encrypted) key."""
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password.encode() if password else None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise PkiError(f"{key_path}: the CA key is not an RSA key")
        return cls(cert, key)

    def issue(
        self,
        subject: x509.Name,
        *,
        key: rsa.RSAPrivateKey | None = None,
        key_size: int = 2048,
        now: datetime | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        days: int = _LEAF_DAYS,
        server: bool = False,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """Issue an end-entity certificate.

        Args:
            subject: the subject (see :func:`rsb_connector.security.identity.build_subject`).
            key: the subject's key; a new RSA key of ``key_size`` bits when ``None``.
            now: reference time; the certificate is valid from ``now - 1 h`` for ``days`` days unless
                ``not_before`` / ``not_after`` say otherwise.
            server: add serverAuth to the extended key usage (clientAuth is always there).
            dns_names / ip_addresses: subjectAltName entries.

        Returns:
            The certificate and its private key.
        """
        at = _utc(now)
        if key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if server:
            usages.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_utc(not_before) if not_before else at - _BACKDATE)
            .not_valid_after(_utc(not_after) if not_after else at + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        names.extend(x509.IPAddress(IPv4Address(ip)) for ip in ip_addresses)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def issue_identity(
        self, spec: SampleSpec, *, now: datetime | None = None, **kwargs: Any
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """Issue a certificate for a :class:`SampleSpec` (``kwargs`` go to :meth:`issue`)."""
        subject = build_subject(
            name=spec.name, nihii=spec.nihii, ssin=spec.ssin, cbe=spec.cbe, profession=spec.profession
        )
        return self.issue(subject, now=now, **kwargs)


# ----------------------------------------------------------------------------------------------- writing files


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _pem_key(key: rsa.RSAPrivateKey, password: str) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )


def _p12(name: str, cert: x509.Certificate, key: rsa.RSAPrivateKey, ca: x509.Certificate, password: str) -> bytes:
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(name.encode(), key, cert, [ca], encryption)


def _write_identity(
    directory: Path, stem: str, cert: x509.Certificate, key: rsa.RSAPrivateKey, ca: x509.Certificate, password: str
) -> tuple[str, str, str]:
    p12, pem, pem_key = f"{stem}.p12", f"{stem}.pem", f"{stem}-key.pem"
    _write(directory / p12, _p12(Path(stem).name, cert, key, ca, password), secret=True)
    _write(directory / pem, _pem(cert, ca))
    _write(directory / pem_key, _pem_key(key, password), secret=True)
    return p12, pem, pem_key


def _record(spec: SampleSpec, cert: x509.Certificate, files: tuple[str, str, str], password: str) -> SampleIdentity:
    principal = read_principal(cert)  # read back through the code the SDK uses: the record is what it will see
    if principal.kind != spec.kind:  # pragma: no cover - a mistake in SAMPLE_IDENTITIES
        raise PkiError(f"{spec.id}: the subject reads as a {principal.kind}, expected a {spec.kind}")
    return SampleIdentity(
        id=spec.id,
        role=spec.role,
        kind=principal.kind,
        name=principal.name,
        file=files[0],
        password=password,
        pem_cert=files[1],
        pem_key=files[2],
        nihii=str(principal.nihii) if principal.nihii else None,
        ssin=str(principal.ssin) if principal.ssin else None,
        cbe=str(principal.cbe) if principal.cbe else None,
        profession=principal.profession,
        client_id=principal.client_id,
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def init_pki(
    directory: str | Path,
    *,
    password: str = DEFAULT_PASSWORD,
    now: datetime | None = None,
    force: bool = False,
    key_size: int = 2048,
    ca_key_size: int = 3072,
    samples: Sequence[SampleSpec] = SAMPLE_IDENTITIES,
) -> PkiDescription:
    """Create a development PKI in ``directory`` (layout in the module docstring).

    Args:
        directory: where to write; created if missing.
        password: protects every PKCS#12 file and PEM key (recorded in ``identities.json``).
        now: reference time of every validity window (default: now).
        force: overwrite an existing PKI; without it an existing ``identities.json`` or ``ca.pem`` is an error.
        key_size / ca_key_size: RSA sizes of end-entity and CA keys.
        samples: the identities to issue.

    Raises:
        PkiError: the directory already holds a PKI and ``force`` is false.
    """
    root = Path(directory).absolute()
    if not force and ((root / DESCRIPTION_FILE).exists() or (root / "ca.pem").exists()):
        raise PkiError(f"{root} already holds a PKI (ca.pem / {DESCRIPTION_FILE}); pass force=True to replace it")
    if not password:
        raise PkiError("a development PKI needs a non-empty password")
    root.mkdir(parents=True, exist_ok=True)
    at = _utc(now)
    ca = DevelopmentCa.create(key_size=ca_key_size, now=at)
    _write(root / "ca.pem", _pem(ca.certificate))
    _write(root / "ca-key.pem", _pem_key(ca.key, password), secret=True)

    hub_subject = build_subject(name=HUB_CN, cbe=HUB_CBE)
    hub_cert, hub_key = ca.issue(
        hub_subject, key_size=key_size, now=at, server=True, dns_names=["localhost"], ip_addresses=["127.0.0.1"]
    )
    hub_files = _write_identity(root, "hub", hub_cert, hub_key, ca.certificate, password)
    hub = _record(SampleSpec("hub", "the mock hub", "organisation", HUB_CN, cbe=HUB_CBE), hub_cert, hub_files, password)

    records = []
    for spec in samples:
        cert, key = ca.issue_identity(spec, now=at, key_size=key_size)
        files = _write_identity(root, f"identities/{spec.id}", cert, key, ca.certificate, password)
        records.append(_record(spec, cert, files, password))

    description = PkiDescription(
        directory=root,
        ca_cert=root / "ca.pem",
        ca_key=root / "ca-key.pem",
        password=password,
        hub=hub,
        identities=tuple(records),
    )
    _write(root / DESCRIPTION_FILE, (json.dumps(description.to_json(), indent=2) + "\n").encode())
    return description


def load_pki(directory: str | Path) -> PkiDescription:
    """Read a PKI written by :func:`init_pki` from its ``identities.json``.

    Raises:
        PkiError: no ``identities.json``, or it cannot be read.
    """
    root = Path(directory).absolute()
    path = root / DESCRIPTION_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PkiError(f"{root} holds no development PKI ({DESCRIPTION_FILE} missing): run `rsb hub pki init`") from exc
    except (OSError, ValueError) as exc:
        raise PkiError(f"{path}: cannot read ({exc})") from exc
    try:
        return PkiDescription(
            directory=root,
            ca_cert=root / document["ca"],
            ca_key=root / document["ca_key"],
            password=document["password"],
            hub=SampleIdentity.from_json(document["hub"]),
            identities=tuple(SampleIdentity.from_json(r) for r in document["identities"]),
        )
    except (KeyError, TypeError) as exc:
        raise PkiError(f"{path}: not a description written by `rsb hub pki init` ({exc})") from exc
