"""Who the caller is: an X.509 certificate chain and its private key, loaded once.

Belgian eHealth certificates are delivered as PKCS#12 files; PEM files (certificate chain + key) are accepted too.
An :class:`Identity` is loaded once (at start-up), refuses certificates that are expired or not yet valid, and
reads from the certificate's subject *who* it names: a healthcare professional, a patient or an organisation.

Two subject layouts are read: the project's own (``layout == "rsb"``, issued by the development PKI) and the
layouts of real eHealth certificates (``layout == "ehealth"``). Which one applies follows from ``serialNumber``:
``<SCHEME>:<digits>`` is the project's layout; no serialNumber, or bare digits, is an eHealth layout. Anything
else, or a subject from which no principal can be read, is refused with an :class:`IdentityError` that says what
was found (SSINs masked).

The project's layout (``rsb``)
------------------------------
One documented layout, what :func:`build_subject` produces and :mod:`rsb_connector.security.pki` issues::

    C            = BE
    O            = Federal Government
    OU           = eHealth-platform Belgium            (free-text OUs are ignored)
    OU           = NIHII=<8 or 11 digits>              (optional, at most one)
    OU           = SSIN=<11 digits>                    (optional, at most one)
    OU           = CBE=<10 digits>                     (optional, at most one)
    title        = <CD-HCPARTY code>                   (2.5.4.12: persphysician, persnurse, orghospital...)
    serialNumber = <SCHEME>:<digits>                   (2.5.4.5, SCHEME = NIHII | SSIN | CBE: the primary id)
    CN           = <display name>

What kind of principal the subject names follows from ``title`` and ``serialNumber``:

===============  =====================  ==========================================================================
kind             title                  identifiers
===============  =====================  ==========================================================================
professional     ``pers*``              serialNumber ``NIHII:<11 digits>``; the NIHII's first digit agrees with the
                                        profession (1 persphysician, 3 persdentist, 4 persnurse/persmidwife...);
                                        an ``OU=SSIN=`` may add the person's SSIN
patient          absent                 serialNumber ``SSIN:<11 digits>``; no NIHII, no CBE
organisation     ``org*`` or absent     serialNumber ``NIHII:<8 digits>`` or ``CBE:<10 digits>``; both may be
                                        given as OUs (a hospital has a NIHII and a CBE)
===============  =====================  ==========================================================================

Every identifier found (serialNumber and OUs) is validated with :mod:`rsb_connector.identifiers` (check digits
included); when both carry the same scheme they must agree.

eHealth certificates (``ehealth``)
----------------------------------
The certificates the eHealth platform issues through the eHealth Certificate Manager (CertRA) name their holder
by an *identifier type* and number, ``<TYPE>=<digits>``, in the CN (followed by ``, <APPLICATION>`` for an
application certificate) and again in an OU; the holder's name is a free-text OU; there is no ``title`` and no
serialNumber. In DER order (``openssl x509 -subject`` prints it this way; Java and .NET print it reversed)::

    C  = BE
    O  = Federal Government
    OU = <APPLICATION>                     (application certificates only, e.g. VITALINKGATEWAY, MYCARENET)
    OU = <TYPE>=<digits>                   (SSIN=..., NIHII-HOSPITAL=..., CBE=..., EHP=...)
    OU = <holder name>                     (person: "FIRSTNAME LASTNAME"; organisation: its registered name)
    OU = eHealth-platform Belgium
    CN = <TYPE>=<digits>[, <APPLICATION>]  (e.g. ``SSIN=87070336167``, ``CBE=0820563481, MYCARENET``)

What is read:

- ``TYPE = SSIN`` (a natural person: the only identifier a person's eHealth certificate carries) → kind
  ``patient`` with that SSIN, :attr:`Principal.may_be_professional` True, no NIHII, no profession. The
  certificate proves *who* the person is, not whether they are a healthcare professional: eHealth asserts the
  quality and the NIHII at authentication time, from its own sources, as SAML attributes of the STS token
  (``urn:be:fgov:person:ssin:ehealth:1.0:doctor:nihii11``...), never in the certificate. So the identity is the
  least privileged reading (the hub treats it as the patient of that SSIN); a professional's NIHII and
  profession must come from elsewhere, and the client does not take such an identity as a document's author.
- ``TYPE = NIHII-<KIND>`` (``NIHII-HOSPITAL``, ``NIHII-PHARMACY``, ``NIHII-LABO``... 8 digits) or ``NIHII`` (8
  digits) → kind ``organisation`` with that NIHII; ``TYPE = CBE`` or ``CBE-<KIND>`` (10 digits) → kind
  ``organisation`` with that CBE. The type gives the CD-HCPARTY code (:attr:`Principal.profession`) where one
  clearly matches: ``NIHII-HOSPITAL`` orghospital, ``NIHII-PHARMACY`` orgpharmacy, ``NIHII-LABO`` orglaboratory,
  ``NIHII-GROUP`` groupofnurses, ``NIHII-GUARD_POST`` guardpost; other types leave it None (the hub then calls
  the caller ``organisation``). :attr:`Principal.ehealth_type` keeps the type as found and
  :attr:`Principal.application` the application id.
- A bare-digit serialNumber is accepted too: an 11-digit valid SSIN names the person when the CN carries no
  identifier (the Belgian eID's ``SERIALNUMBER=<SSIN>, CN=<name>`` form), and otherwise it must repeat the CN's
  number.

Refused, each with an :class:`IdentityError` naming what was found: identifier types that name neither a person
by SSIN nor an organisation by NIHII or CBE (``EHP``, ``SITE``...: eHealth partners and sites have no principal
kind here), an 11-digit NIHII (eHealth certificates name persons by SSIN), a person's certificate that also
names a NIHII or CBE, a CN and OUs (or serialNumber) naming different numbers or types, a ``title`` (eHealth
certificates have none: a profession cannot be read from one), and invalid check digits.

Sources:

- Real subject of a person's eHealth certificate, and the NIHII coming from the STS SAML attributes, not from
  the certificate: ``CN="SSIN=87070336167", OU=eHealth-platform Belgium, OU=ANTOINE PAIRET,
  OU="SSIN=87070336167", O=Federal Government, C=BE`` --
  https://github.com/taktik/freehealth-connector/issues/34
- Real application certificate of an organisation, decoded from egelke/etee ``pki-test/files/vitalink.pem`` (issued
  by "ZetesConfidens Private Trust PKI - eHealth issuing CA 001"; DER order as above):
  https://github.com/egelke/etee/blob/HEAD/pki-test/files/vitalink.pem and its subject asserted in
  https://github.com/egelke/etee/blob/HEAD/pki-test/CertTest.cs
- ``CN="SSIN=<ssin>"`` and ``CN="CBE=0820563481, MYCARENET"`` subjects of eHealth certificates returned by the ETK
  depot: https://github.com/egelke/eHI/blob/HEAD/services-tests/EtkDepotTest.cs
- How the eHealth technical connector reads these subjects (serialNumber → SSIN, else ``OU=<TYPE>=<digits>``,
  application = the OU the CN ends with):
  https://github.com/taktik/freehealth-connector/blob/HEAD/src/main/java/org/taktik/connector/technical/utils/CertificateParser.java
- The identifier types and their lengths (CBE 10, SSIN 11, NIHII 8, NIHII11 11, NIHII-HOSPITAL / -PHARMACY /
  -LABO / -GROUP / -GUARD_POST... 8, EHP 10):
  https://github.com/taktik/freehealth-connector/blob/HEAD/src/main/java/org/taktik/connector/technical/utils/IdentifierType.java
- A certificate request for a person built with ``OU=eHealth-platform Belgium, OU=SSIN=<ssin>, CN=SSIN=<ssin>``
  (CertRA): https://github.com/e-Contract/mycarenet/blob/HEAD/mycarenet-tests/src/test/java/test/integ/be/e_contract/mycarenet/certra/CertRAClientTest.java
- The KMEHR CD-HCPARTY codes the types are mapped to (orghospital, orgpharmacy, orglaboratory, groupofnurses,
  guardpost): https://github.com/taktik/freehealth-connector/blob/HEAD/src/main/java/be/fgov/ehealth/standards/kmehr/cd/v1/CDHCPARTYvalues.java
- What eHealth certificates are and how they are requested (eHealth Certificate Manager):
  https://www.ehealth.fgov.be/ehealthplatform/fr/service-certificats-ehealth
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from rsb_connector.errors import InvalidIdentifier, RsbError
from rsb_connector.identifiers import Cbe, Nihii, Ssin, mask_ssin

__all__ = [
    "MIN_RSA_KEY_SIZE",
    "Identity",
    "IdentityError",
    "IdentityKind",
    "Principal",
    "SubjectLayout",
    "build_subject",
    "check_validity",
    "read_principal",
]

IdentityKind = Literal["professional", "patient", "organisation"]
"""What an identity names: a healthcare professional, a patient, or an organisation (hospital...)."""

SubjectLayout = Literal["rsb", "ehealth"]
"""Which subject layout a certificate was read in: the project's own (``rsb``) or a real eHealth one."""

MIN_RSA_KEY_SIZE: Final = 2048
"""Smallest RSA key accepted for an identity."""

DEFAULT_ORGANISATION: Final = "Federal Government"
DEFAULT_UNIT: Final = "eHealth-platform Belgium"

_SCHEMES: Final = ("NIHII", "SSIN", "CBE")
# NIHII first digit -> the CD-HCPARTY professions it may carry (identifiers.Nihii.hcparty gives the main one).
_COMPATIBLE_PROFESSIONS: Final[dict[int, frozenset[str]]] = {
    1: frozenset({"persphysician"}),
    2: frozenset({"perspharmacist"}),
    3: frozenset({"persdentist"}),
    4: frozenset({"persnurse", "persmidwife"}),
    5: frozenset({"persphysiotherapist", "perslogopedist"}),
    6: frozenset({"perspharmacist"}),
}

# eHealth layout: "<TYPE>=<digits>" (an identifier, freehealth-connector's CertificateParser reads OUs with
# [A-Z(-|_)]+=[0-9]+), optionally followed by ", <APPLICATION>" in the CN.
_EHEALTH_IDENTIFIER: Final = re.compile(r"([A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)\s*=\s*(\d+)")
_EHEALTH_CN: Final = re.compile(
    r"([A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z0-9_]+)*)\s*=\s*(\d+)(?:\s*,\s*([^,=\"]*[^,=\"\s]))?"
)
_EHEALTH_UNIT: Final = "ehealth-platform belgium"
_EHEALTH_FREE_TEXT_IGNORED: Final = frozenset({_EHEALTH_UNIT, DEFAULT_ORGANISATION.casefold()})
# eHealth organisation identifier types -> the KMEHR CD-HCPARTY code that clearly matches (others: none).
_EHEALTH_PROFESSIONS: Final[dict[str, str]] = {
    "NIHII-HOSPITAL": "orghospital",
    "NIHII-PHARMACY": "orgpharmacy",
    "NIHII-LABO": "orglaboratory",
    "NIHII-GROUP": "groupofnurses",
    "NIHII-GUARD_POST": "guardpost",
}
_EHEALTH_TYPES_READ: Final = "SSIN, NIHII-<KIND> (8 digits), NIHII (8 digits), CBE and CBE-<KIND>"


class IdentityError(RsbError):
    """An identity could not be loaded or does not name a principal: the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a certificate names, read from its subject (see the module docstring for the layout).

    Attributes:
        kind: ``"professional"``, ``"patient"`` or ``"organisation"``.
        name: the display name (CN).
        nihii: the NIHII (11 digits for a professional, 8 for an organisation), if any.
        ssin: the SSIN (a patient's, or a professional's own), if any.
        cbe: the enterprise number of an organisation, if any.
        profession: the CD-HCPARTY code (``persphysician``, ``orghospital``...), if any: from ``title`` in the
            project's layout, from the identifier type in an eHealth one (``NIHII-HOSPITAL`` → ``orghospital``).
        subject_dn: the subject as an RFC 4514 string.
        layout: the subject layout read: ``"rsb"`` (the project's) or ``"ehealth"`` (a real eHealth certificate).
        ehealth_type: in the eHealth layout, the identifier type as found (``SSIN``, ``NIHII-HOSPITAL``, ``CBE``...).
        application: in the eHealth layout, the application id of an application certificate (``MYCARENET``...).
    """

    kind: IdentityKind
    name: str
    nihii: Nihii | None
    ssin: Ssin | None
    cbe: Cbe | None
    profession: str | None
    subject_dn: str = field(repr=False)  # holds the SSIN in clear: kept out of repr() and logs
    layout: SubjectLayout = "rsb"
    ehealth_type: str | None = None
    application: str | None = None

    @property
    def may_be_professional(self) -> bool:
        """True for an eHealth person certificate: it names a natural person by SSIN only.

        Such a certificate never says whether its holder is a healthcare professional, nor carries a NIHII or a
        profession (eHealth asserts those at authentication, as STS SAML attributes). The principal is then read as
        the least privileged kind, ``patient`` with that SSIN; the holder may be a patient or a professional, and
        a professional's NIHII is not known from the certificate.
        """
        return self.layout == "ehealth" and self.kind == "patient"

    @property
    def client_id(self) -> str:
        """A stable id of the principal: ``nihii:<n>`` (professional, or organisation with a NIHII),
        ``ssin:<n>`` (patient) or ``cbe:<n>`` (organisation without NIHII). Used as OAuth2 ``client_id``."""
        if self.kind == "patient":
            assert self.ssin is not None
            return f"ssin:{self.ssin}"
        if self.nihii is not None:
            return f"nihii:{self.nihii}"
        assert self.cbe is not None
        return f"cbe:{self.cbe}"

    def describe(self) -> str:
        """A one-line description for logs; the SSIN is masked."""
        ids = []
        if self.nihii is not None:
            ids.append(f"NIHII {self.nihii}")
        if self.ssin is not None:
            ids.append(f"SSIN {self.ssin.masked}")
        if self.cbe is not None:
            ids.append(f"CBE {self.cbe}")
        if self.application:
            ids.append(f"application {self.application}")
        role = f" ({self.profession})" if self.profession else ""
        note = (
            " [eHealth person certificate: patient or professional, no NIHII in it]" if self.may_be_professional else ""
        )
        return f"{self.kind} {self.name}{role}, {', '.join(ids)}{note}"


def _attribute(kind: str, scheme: str, value: str) -> Nihii | Ssin | Cbe:
    try:
        if scheme == "NIHII":
            return Nihii(value)
        if scheme == "SSIN":
            return Ssin(value)
        return Cbe(value)
    except InvalidIdentifier as exc:
        raise IdentityError(f"the certificate subject's {kind} carries an invalid {scheme}: {exc.reason}") from exc


def _single(name: x509.Name, oid: x509.ObjectIdentifier, label: str, *, required: bool) -> str | None:
    values = [str(attr.value) for attr in name.get_attributes_for_oid(oid)]
    if len(values) > 1:
        raise IdentityError(f"the certificate subject carries {len(values)} {label} attributes; expected one")
    if not values:
        if required:
            raise IdentityError(f"the certificate subject has no {label} attribute")
        return None
    return values[0].strip()


def read_principal(certificate: x509.Certificate) -> Principal:
    """Read who ``certificate`` names from its subject (layouts in the module docstring).

    A serialNumber ``<SCHEME>:<digits>`` selects the project's layout; no serialNumber or a bare-digit one, an
    eHealth layout.

    Raises:
        IdentityError: the subject follows neither layout, or an identifier is invalid; the message says what was
            found.
    """
    subject = certificate.subject
    dn = subject.rfc4514_string()
    name = _single(subject, NameOID.COMMON_NAME, "CN (common name)", required=True) or ""
    if not name:
        raise IdentityError("the certificate subject's CN (display name) is empty")
    serial = _single(subject, NameOID.SERIAL_NUMBER, "serialNumber", required=False)
    if serial is None or (serial.isascii() and serial.isdigit()):
        return _read_ehealth(subject, dn, name, serial)
    return _read_rsb(subject, dn, name, serial)


def _read_rsb(subject: x509.Name, dn: str, name: str, serial: str) -> Principal:
    """The project's layout: serialNumber ``<SCHEME>:<digits>``, ``title``, ``OU=<SCHEME>=<digits>``."""
    scheme, sep, digits = serial.partition(":")
    scheme = scheme.strip().upper()
    if not sep or scheme not in _SCHEMES:
        raise IdentityError(
            f"the certificate subject's serialNumber {serial!r} is not of the form NIHII:<digits>, SSIN:<digits> "
            "or CBE:<digits>"
        )
    found: dict[str, Nihii | Ssin | Cbe] = {scheme: _attribute("serialNumber", scheme, digits)}
    for attr in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        key, sep, value = str(attr.value).partition("=")
        key = key.strip().upper()
        if not sep or key not in _SCHEMES:
            continue  # a free-text OU
        parsed = _attribute(f"OU {key}=", key, value)
        previous = found.get(key)
        if previous is not None and previous != parsed:
            raise IdentityError(f"the certificate subject names two different {key} values (serialNumber and OU)")
        found[key] = parsed
    nihii = found.get("NIHII")
    ssin = found.get("SSIN")
    cbe = found.get("CBE")
    assert nihii is None or isinstance(nihii, Nihii)
    assert ssin is None or isinstance(ssin, Ssin)
    assert cbe is None or isinstance(cbe, Cbe)
    title = _single(subject, NameOID.TITLE, "title (profession)", required=False)
    kind: IdentityKind
    if title and title.startswith("pers"):
        kind = "professional"
        if scheme != "NIHII" or nihii is None or nihii.is_organisation:
            raise IdentityError(
                f"a professional's certificate ({title}) must carry serialNumber NIHII:<11 digits>, got {serial!r}"
            )
        allowed = _COMPATIBLE_PROFESSIONS.get(nihii.profession_digit)
        if allowed is None or title not in allowed:
            raise IdentityError(
                f"the profession {title!r} does not match the NIHII {nihii}, whose first digit denotes a "
                f"{nihii.profession}"
            )
        if cbe is not None:
            raise IdentityError("a professional's certificate must not carry a CBE (enterprise) number")
    elif (title and title.startswith("org")) or (not title and scheme in ("NIHII", "CBE")):
        kind = "organisation"
        if scheme == "SSIN" or ssin is not None:
            raise IdentityError("an organisation's certificate must not carry an SSIN")
        if nihii is not None and not nihii.is_organisation:
            raise IdentityError(f"an organisation's NIHII has 8 digits, got {nihii} (a professional's number)")
    elif not title:
        kind = "patient"
        if nihii is not None or cbe is not None:
            raise IdentityError("a patient's certificate (serialNumber SSIN:...) must not carry a NIHII or a CBE")
    else:
        raise IdentityError(f"the certificate subject's title {title!r} is not a CD-HCPARTY pers* or org* code")
    return Principal(kind=kind, name=name, nihii=nihii, ssin=ssin, cbe=cbe, profession=title or None, subject_dn=dn)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return value


def _ehealth_identifier(where: str, kind: str, digits: str) -> tuple[str, Nihii | Ssin | Cbe]:
    """The scheme (``SSIN`` / ``NIHII`` / ``CBE``) and value an eHealth ``<TYPE>=<digits>`` names."""
    if kind == "SSIN":
        return "SSIN", _attribute(f"{where} {kind}=", "SSIN", digits)
    if kind == "CBE" or kind.startswith("CBE-"):
        return "CBE", _attribute(f"{where} {kind}=", "CBE", digits)
    if kind == "NIHII" or kind.startswith("NIHII-"):
        nihii = _attribute(f"{where} {kind}=", "NIHII", digits)
        assert isinstance(nihii, Nihii)
        if not nihii.is_organisation:
            raise IdentityError(
                f"the certificate subject's {where} {kind}={mask_ssin(digits)} is an 11-digit NIHII (a professional's "
                "number): eHealth certificates name a person by SSIN (CN=SSIN=<11 digits>) and an organisation by an "
                "8-digit NIHII or a CBE, so this subject cannot be read"
            )
        return "NIHII", nihii
    raise IdentityError(
        f"the certificate subject's {where} names the eHealth identifier type {kind!r} ({kind}={mask_ssin(digits)}), "
        f"which names no principal rsb-connector knows; the types read are {_EHEALTH_TYPES_READ}"
    )


def _read_ehealth(subject: x509.Name, dn: str, cn: str, serial: str | None) -> Principal:
    """A real eHealth certificate: ``CN=<TYPE>=<digits>[, <APP>]``, ``OU=<TYPE>=<digits>``, a name OU; or a bare
    serialNumber SSIN (see the module docstring)."""
    found_cn = _EHEALTH_CN.fullmatch(_unquote(cn))
    application = found_cn.group(3).strip() if found_cn and found_cn.group(3) else None
    identifiers: list[tuple[str, str, str]] = []  # (where, TYPE, digits), the CN's first
    if found_cn:
        identifiers.append(("CN", found_cn.group(1).upper(), found_cn.group(2)))
    free_text: list[str] = []
    for attr in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME):
        value = _unquote(str(attr.value))
        match = _EHEALTH_IDENTIFIER.fullmatch(value)
        if match:
            identifiers.append(("OU", match.group(1).upper(), match.group(2)))
        elif value and value.casefold() not in _EHEALTH_FREE_TEXT_IGNORED and value != application:
            free_text.append(value)
    if not identifiers and serial is None:
        ous = [mask_ssin(str(a.value)) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        raise IdentityError(
            "the certificate subject has no serialNumber attribute (the project's layout: serialNumber "
            "SSIN:/NIHII:/CBE:<digits>) and no eHealth identifier (CN or OU <TYPE>=<digits>, such as "
            f"SSIN=<11 digits>, NIHII-HOSPITAL=<8 digits> or CBE=<10 digits>); found CN {mask_ssin(cn)!r}"
            + (f" and OU {', '.join(repr(o) for o in ous)}" if ous else " and no OU")
        )
    title = _single(subject, NameOID.TITLE, "title (profession)", required=False)
    if title:
        raise IdentityError(
            f"the certificate subject has title {title!r} but no serialNumber <SCHEME>:<digits>: the project's layout "
            "needs both, and eHealth certificates carry no title (their profession is not in the certificate), so "
            "the profession cannot be read"
        )

    found: dict[str, tuple[Nihii | Ssin | Cbe, str, str]] = {}  # scheme -> (value, TYPE, where)
    for where, id_type, digits in identifiers:
        scheme, parsed = _ehealth_identifier(where, id_type, digits)
        previous = found.get(scheme)
        if previous is None:
            found[scheme] = (parsed, id_type, where)
        elif previous[0] != parsed or previous[1] != id_type:
            raise IdentityError(
                f"the certificate subject names two different {scheme} identifiers: {previous[2]} "
                f"{previous[1]}={mask_ssin(str(previous[0]))} and {where} {id_type}={mask_ssin(str(parsed))}"
            )
    primary_kind: str
    if identifiers:
        primary_kind = identifiers[0][1]
        primary_digits = str(_ehealth_identifier(*identifiers[0])[1])
        if serial is not None and serial != primary_digits and serial != identifiers[0][2]:
            raise IdentityError(
                f"the certificate subject's serialNumber {mask_ssin(serial)} is not the number its "
                f"{identifiers[0][0]} names ({primary_kind}={mask_ssin(primary_digits)})"
            )
    else:
        assert serial is not None
        if len(serial) != 11:
            raise IdentityError(
                f"the certificate subject's serialNumber {serial!r} is neither of the form NIHII:<digits>, "
                "SSIN:<digits> or CBE:<digits> (the project's layout) nor an 11-digit SSIN (an eHealth or eID person "
                f"certificate), and its CN {mask_ssin(cn)!r} names no eHealth identifier"
            )
        primary_kind = "SSIN"
        found["SSIN"] = (_attribute("serialNumber", "SSIN", serial), "SSIN", "serialNumber")

    nihii = found["NIHII"][0] if "NIHII" in found else None
    ssin = found["SSIN"][0] if "SSIN" in found else None
    cbe = found["CBE"][0] if "CBE" in found else None
    assert nihii is None or isinstance(nihii, Nihii)
    assert ssin is None or isinstance(ssin, Ssin)
    assert cbe is None or isinstance(cbe, Cbe)
    kind: IdentityKind
    profession: str | None = None
    if ssin is not None:
        kind = "patient"
        if nihii is not None or cbe is not None:
            other = "NIHII" if nihii is not None else "CBE"
            raise IdentityError(
                f"the certificate subject names a person (SSIN) and also a {other}: an eHealth person certificate "
                "carries the SSIN only, an organisation's no SSIN, so this subject cannot be read"
            )
    else:
        kind = "organisation"
        nihii_kind = found["NIHII"][1] if "NIHII" in found else None
        profession = _EHEALTH_PROFESSIONS.get(primary_kind) or (
            _EHEALTH_PROFESSIONS.get(nihii_kind) if nihii_kind else None
        )
    # The CN names the identifier: the holder's name is the free-text OU (masked CN when there is none).
    name = cn if not found_cn else free_text[0] if free_text else mask_ssin(cn)
    return Principal(
        kind=kind,
        name=name,
        nihii=nihii,
        ssin=ssin,
        cbe=cbe,
        profession=profession,
        subject_dn=dn,
        layout="ehealth",
        ehealth_type=primary_kind,
        application=application,
    )


def build_subject(
    *,
    name: str,
    nihii: str | None = None,
    ssin: str | None = None,
    cbe: str | None = None,
    profession: str | None = None,
    organisation: str = DEFAULT_ORGANISATION,
    unit: str = DEFAULT_UNIT,
) -> x509.Name:
    """An X.509 subject in the project's layout (see the module docstring).

    The serialNumber carries the primary identifier: the NIHII when given (professionals, hospitals), else the SSIN
    for a person without NIHII (patients), else the CBE. Identifiers are validated first.

    Raises:
        IdentityError: an identifier is invalid, or none is given.
    """
    ids: dict[str, str] = {}
    for scheme, value in (("NIHII", nihii), ("SSIN", ssin), ("CBE", cbe)):
        if value is not None:
            ids[scheme] = str(_attribute("subject", scheme, value))
    if not ids:
        raise IdentityError("a subject needs a NIHII, an SSIN or a CBE")
    primary = "NIHII" if "NIHII" in ids else ("SSIN" if "SSIN" in ids else "CBE")
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
    ]
    attrs.extend(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{k}={v}") for k, v in ids.items())
    if profession:
        attrs.append(x509.NameAttribute(NameOID.TITLE, profession))
    attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, f"{primary}:{ids[primary]}"))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
    return x509.Name(attrs)


def check_validity(certificate: x509.Certificate, now: datetime | None = None, *, what: str = "certificate") -> None:
    """Raise :class:`IdentityError` unless ``certificate`` is valid at ``now`` (default: the current time)."""
    at = _utc(now)
    subject = mask_ssin(certificate.subject.rfc4514_string())
    if at < certificate.not_valid_before_utc:
        raise IdentityError(
            f"the {what} {subject} is not valid yet: valid from {certificate.not_valid_before_utc.isoformat()} "
            f"(now {at.isoformat()}); check the computer's clock or use a current certificate"
        )
    if at > certificate.not_valid_after_utc:
        raise IdentityError(
            f"the {what} {subject} expired on {certificate.not_valid_after_utc.isoformat()} "
            f"(now {at.isoformat()}); renew it"
        )


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _password_bytes(password: str | bytes | None) -> bytes | None:
    if password is None or isinstance(password, bytes):
        return password
    return password.encode("utf-8")


def _same_key(certificate: x509.Certificate, key: rsa.RSAPrivateKey) -> bool:
    public = certificate.public_key()
    return isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == key.public_key().public_numbers()


def _order_chain(leaf: x509.Certificate, others: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """Leaf first, then each issuer in turn; certificates that do not belong to the path come last."""
    remaining = [c for c in others if c != leaf]
    chain = [leaf]
    current = leaf
    while remaining and current.issuer != current.subject:
        issuer = next((c for c in remaining if c.subject == current.issuer), None)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return (*chain, *remaining)


class Identity:
    """An X.509 certificate chain (leaf first) and its RSA private key, plus who the certificate names.

    Build one with :meth:`load`, :meth:`from_pkcs12` or :meth:`from_pem`; everything is checked at load time
    (validity window of the leaf, key matches the certificate, RSA ≥ 2048 bits, subject layout) so that a bad
    identity fails at start-up with a clear :class:`IdentityError` rather than on the first request.
    Instances are immutable and safe to share between threads.
    """

    __slots__ = ("_chain", "_fingerprint", "_key", "_principal", "_source")

    def __init__(
        self,
        certificate: x509.Certificate,
        private_key: rsa.RSAPrivateKey,
        chain: Sequence[x509.Certificate] = (),
        *,
        now: datetime | None = None,
        source: str = "identity",
    ) -> None:
        """Check and wrap a certificate and its key.

        Args:
            certificate: the leaf certificate.
            private_key: its RSA private key.
            chain: further certificates (intermediates, root); ordered leaf → root automatically.
            now: the time at which validity is checked (default: now).
            source: where the identity came from, for error messages (a file name).

        Raises:
            IdentityError: expired / not yet valid, key mismatch, weak or non-RSA key, subject not in the layout.
        """
        source = mask_ssin(source)  # eHealth names its files "SSIN=<ssin> <date>.acc-p12"
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise IdentityError(f"{source}: the private key is not an RSA key (RSA-SHA256 signatures need one)")
        if private_key.key_size < MIN_RSA_KEY_SIZE:
            raise IdentityError(
                f"{source}: the RSA key has {private_key.key_size} bits; at least {MIN_RSA_KEY_SIZE} are required"
            )
        if not _same_key(certificate, private_key):
            raise IdentityError(f"{source}: the private key does not belong to the certificate")
        check_validity(certificate, now, what=f"certificate in {source}")
        try:
            principal = read_principal(certificate)
        except IdentityError as exc:
            raise IdentityError(f"{source}: {exc}") from exc
        self._chain = _order_chain(certificate, chain)
        self._key = private_key
        self._principal = principal
        self._source = source
        self._fingerprint = certificate.fingerprint(hashes.SHA256()).hex()

    # ------------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pkcs12_bytes(
        cls, data: bytes, password: str | bytes | None, *, now: datetime | None = None, source: str = "PKCS#12 data"
    ) -> Identity:
        """Load an identity from PKCS#12 bytes (certificate, key, and optional chain).

        Raises:
            IdentityError: wrong password, not a PKCS#12 file, no key or certificate inside, or any check of
                :class:`Identity` failing.
        """
        source = mask_ssin(source)
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, _password_bytes(password))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            hint = "no password was given" if password is None else "the password is wrong"
            raise IdentityError(
                f"{source}: cannot open the PKCS#12 file: {hint}, or the file is not PKCS#12 ({exc})"
            ) from exc
        if key is None or cert is None:
            raise IdentityError(f"{source}: the PKCS#12 file must hold a private key and its certificate")
        if not isinstance(key, rsa.RSAPrivateKey):
            raise IdentityError(f"{source}: the private key is not an RSA key")
        return cls(cert, key, extra, now=now, source=source)

    @classmethod
    def from_pkcs12(
        cls, path: str | os.PathLike[str], password: str | bytes | None, *, now: datetime | None = None
    ) -> Identity:
        """Load an identity from a PKCS#12 file (``.p12`` / ``.pfx``), as eHealth certificates are delivered."""
        file = Path(path)
        return cls.from_pkcs12_bytes(_read(file), password, now=now, source=str(file))

    @classmethod
    def from_pem(
        cls,
        cert_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str] | None = None,
        password: str | bytes | None = None,
        *,
        now: datetime | None = None,
    ) -> Identity:
        """Load an identity from PEM files.

        Args:
            cert_path: the certificate, optionally followed by its chain (any order), optionally with the key.
            key_path: the private key (PKCS#8 or traditional, optionally encrypted); ``None`` when it is inside
                ``cert_path``.
            password: the key's password, if it is encrypted.
            now: the time at which validity is checked.
        """
        cert_file = Path(cert_path)
        cert_data = _read(cert_file)
        key_file = Path(key_path) if key_path is not None else cert_file
        key_data = _read(key_file) if key_path is not None else cert_data
        cert_shown, key_shown = _shown(cert_file), _shown(key_file)
        try:
            certs = x509.load_pem_x509_certificates(cert_data)
        except ValueError as exc:
            raise IdentityError(f"{cert_shown}: no PEM certificate could be read ({exc})") from exc
        if b"PRIVATE KEY-----" not in key_data:
            raise IdentityError(f"{key_shown}: no PEM private key found")
        try:
            key = serialization.load_pem_private_key(key_data, _password_bytes(password))
        except TypeError as exc:
            hint = "the key is encrypted: give its password" if password is None else "the key is not encrypted"
            raise IdentityError(f"{key_shown}: cannot read the private key: {hint}") from exc
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise IdentityError(f"{key_shown}: cannot read the private key: wrong password or corrupt file") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise IdentityError(f"{key_shown}: the private key is not an RSA key")
        leaf = next((c for c in certs if _same_key(c, key)), None)
        if leaf is None:
            raise IdentityError(f"{cert_shown}: none of its certificates matches the private key in {key_shown}")
        return cls(leaf, key, certs, now=now, source=str(cert_file))

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        password: str | bytes | None = None,
        *,
        key_path: str | os.PathLike[str] | None = None,
        now: datetime | None = None,
    ) -> Identity:
        """Load an identity by file suffix: ``.p12`` / ``.pfx`` / ``.acc-p12`` → PKCS#12, ``.pem`` / ``.crt`` → PEM.

        The eHealth Certificate Manager writes keystores named ``<TYPE>=<number> <date>.acc-p12`` for the acceptance
        environment (``<env>-p12``): any suffix ending in ``-p12`` is PKCS#12 too.

        For PEM, the key is read from ``key_path`` or, when not given, from the same file; failing that, from the
        sibling ``<stem>-key.pem`` (the development PKI's naming).
        """
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix in (".p12", ".pfx") or suffix.endswith("-p12"):
            return cls.from_pkcs12(file, password, now=now)
        if suffix in (".pem", ".crt", ".cer"):
            if key_path is None and b"PRIVATE KEY-----" not in _read(file):
                sibling = file.with_name(f"{file.stem}-key.pem")
                key_path = sibling if sibling.exists() else None
            return cls.from_pem(file, key_path, password, now=now)
        raise IdentityError(
            f"{_shown(file)}: unknown identity file type {suffix!r}; use .p12/.pfx/.acc-p12 (PKCS#12) or .pem"
        )

    # ------------------------------------------------------------------------------------------------ reading
    @property
    def certificate(self) -> x509.Certificate:
        """The leaf certificate."""
        return self._chain[0]

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The certificate chain, leaf first (then its issuers as far as they were supplied)."""
        return self._chain

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        """The chain without the leaf."""
        return self._chain[1:]

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The RSA private key (loaded once)."""
        return self._key

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The RSA public key of the certificate."""
        return self._key.public_key()

    @property
    def principal(self) -> Principal:
        """Who the certificate names."""
        return self._principal

    @property
    def kind(self) -> IdentityKind:
        """``"professional"``, ``"patient"`` or ``"organisation"``."""
        return self._principal.kind

    @property
    def name(self) -> str:
        """The display name (CN)."""
        return self._principal.name

    @property
    def nihii(self) -> Nihii | None:
        """The NIHII, if the subject carries one."""
        return self._principal.nihii

    @property
    def ssin(self) -> Ssin | None:
        """The SSIN, if the subject carries one."""
        return self._principal.ssin

    @property
    def cbe(self) -> Cbe | None:
        """The CBE enterprise number, if the subject carries one."""
        return self._principal.cbe

    @property
    def profession(self) -> str | None:
        """The CD-HCPARTY code (``persphysician``...), if any."""
        return self._principal.profession

    @property
    def layout(self) -> SubjectLayout:
        """The subject layout read: ``"rsb"`` (the project's) or ``"ehealth"`` (a real eHealth certificate)."""
        return self._principal.layout

    @property
    def may_be_professional(self) -> bool:
        """True for an eHealth person certificate (kind ``patient`` by SSIN): the holder may be a professional, but
        the certificate carries no NIHII nor profession (see :attr:`Principal.may_be_professional`)."""
        return self._principal.may_be_professional

    @property
    def client_id(self) -> str:
        """``nihii:<n>``, ``ssin:<n>`` or ``cbe:<n>`` (see :attr:`Principal.client_id`)."""
        return self._principal.client_id

    @property
    def subject_dn(self) -> str:
        """The certificate subject as an RFC 4514 string."""
        return self._principal.subject_dn

    @property
    def fingerprint_sha256(self) -> str:
        """SHA-256 of the leaf certificate's DER, lower-case hex."""
        return self._fingerprint

    @property
    def not_valid_after(self) -> datetime:
        """End of the leaf certificate's validity (UTC)."""
        return self.certificate.not_valid_after_utc

    def sign(self, data: bytes) -> bytes:
        """RSA-SHA256 (PKCS#1 v1.5) signature of ``data``."""
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def __repr__(self) -> str:
        return f"<Identity {self._principal.describe()} from {self._source}>"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"{_shown(path)}: cannot read the file ({exc.strerror or exc})") from exc


def _shown(path: Path) -> str:
    """A file name for messages, SSINs masked (eHealth names its keystores ``SSIN=<ssin> <date>.acc-p12``)."""
    return mask_ssin(str(path))
