"""Trust decisions: which certificates the hub (or the client) believes, and which messages it has already seen.

:class:`TrustStore` decides whether a certificate chains to a trusted CA. It is where trust is decided: the XML
signature check only proves that the certificate's key signed, never that the certificate itself is trustworthy.
Path building and checks come from ``cryptography.x509.verification`` (RFC 5280 / CA-B Forum profile) with one
relaxation: the end-entity certificate need not carry a subjectAltName, since Belgian eHealth certificates name
their holder in the subject only. So the leaf must have an AuthorityKeyIdentifier, no CA basicConstraints, and
(when it has an extendedKeyUsage) ``clientAuth``; every CA in the path needs basicConstraints CA and keyCertSign;
signatures are RSA ≥ 2048 bits or ECDSA; every certificate is checked against its validity window.

:class:`ReplayCache` remembers message ids (``wsa:MessageID``, JWT ``jti``) until they expire, so a captured
message cannot be played again within its validity window. It is thread-safe and bounded; when full of
unexpired entries it refuses new ones (fail closed) rather than forgetting one that might be replayed.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from rsb_connector.errors import RsbError
from rsb_connector.identifiers import mask_ssin

__all__ = ["ReplayCache", "ReplayCacheFull", "TrustStore", "UntrustedCertificate"]


class UntrustedCertificate(RsbError):
    """A certificate does not chain to a trusted CA, is outside its validity window, or violates the profile."""


class ReplayCacheFull(RsbError):
    """The replay cache holds its maximum number of unexpired entries: the message cannot be checked for replay."""


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _describe(certificate: x509.Certificate) -> str:
    """The subject for messages, SSINs masked (messages reach logs and SOAP faults)."""
    try:
        return mask_ssin(certificate.subject.rfc4514_string())
    except ValueError:  # pragma: no cover - undecodable subject
        return f"serial {certificate.serial_number}"


class TrustStore:
    """A set of trusted CA certificates (trust anchors) and optional known intermediates.

    Args:
        ca_certs: the trust anchors (e.g. the development CA of ``rsb hub pki init``).
        intermediates: intermediate CA certificates to use for path building when the peer sends only its leaf
            (a ``BinarySecurityToken`` carries one certificate). They are not trusted by themselves.
        max_chain_depth: the longest accepted path, leaf excluded.
    """

    __slots__ = ("_anchors", "_ca_policy", "_ee_policy", "_intermediates", "_max_depth", "_store")

    def __init__(
        self,
        ca_certs: Sequence[x509.Certificate],
        *,
        intermediates: Sequence[x509.Certificate] = (),
        max_chain_depth: int = 4,
    ) -> None:
        if not ca_certs:
            raise ValueError("a TrustStore needs at least one CA certificate")
        self._anchors = tuple(ca_certs)
        self._intermediates = tuple(intermediates)
        self._store = Store(list(self._anchors))
        self._max_depth = max_chain_depth
        self._ca_policy = ExtensionPolicy.webpki_defaults_ca()
        self._ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )

    @classmethod
    def from_pem(cls, data: bytes) -> TrustStore:
        """A trust store of every certificate in PEM ``data``."""
        return cls(x509.load_pem_x509_certificates(data))

    @classmethod
    def from_pem_file(cls, path: str | Path) -> TrustStore:
        """A trust store of every certificate in a PEM file (e.g. ``ca.pem``)."""
        return cls.from_pem(Path(path).read_bytes())

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        """The trusted CA certificates."""
        return self._anchors

    def verify_chain(
        self,
        leaf: x509.Certificate,
        intermediates: Iterable[x509.Certificate] = (),
        *,
        now: datetime | None = None,
    ) -> list[x509.Certificate]:
        """Check that ``leaf`` chains to a trust anchor at time ``now``.

        Args:
            leaf: the end-entity certificate (the signer).
            intermediates: untrusted certificates the peer sent along (x5c, PKCS#12 chain...).
            now: the verification time (default: now).

        Returns:
            The verified path, leaf first, trust anchor last.

        Raises:
            UntrustedCertificate: outside its validity window, not issued (directly or through intermediates) by
                a trusted CA, or violating the certificate profile.
        """
        at = _utc(now)
        who = _describe(leaf)
        if at < leaf.not_valid_before_utc:
            raise UntrustedCertificate(
                f"the certificate {who} is not valid yet (valid from {leaf.not_valid_before_utc.isoformat()})"
            )
        if at > leaf.not_valid_after_utc:
            raise UntrustedCertificate(f"the certificate {who} expired on {leaf.not_valid_after_utc.isoformat()}")
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .max_chain_depth(self._max_depth)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, [*intermediates, *self._intermediates])
        except VerificationError as exc:
            reason = str(exc).split(" (encountered processing", 1)[0]
            raise UntrustedCertificate(
                f"the certificate {who} (issuer {mask_ssin(leaf.issuer.rfc4514_string())}) is not trusted: {reason}"
            ) from exc
        return list(verified.chain)

    def is_trusted(
        self, leaf: x509.Certificate, intermediates: Iterable[x509.Certificate] = (), *, now: datetime | None = None
    ) -> bool:
        """True when :meth:`verify_chain` accepts ``leaf``."""
        try:
            self.verify_chain(leaf, intermediates, now=now)
        except UntrustedCertificate:
            return False
        return True


class ReplayCache:
    """Remembers message ids until they expire; thread-safe and bounded.

    Args:
        max_entries: the most unexpired ids held. When full, :meth:`remember` raises :class:`ReplayCacheFull`
            (the caller refuses the message) instead of evicting an id that could then be replayed.
    """

    __slots__ = ("_expiry", "_heap", "_lock", "_max")

    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max = max_entries
        self._expiry: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._lock = threading.Lock()

    def _purge(self, now: datetime) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            until, key = heapq.heappop(heap)
            if self._expiry.get(key) == until:
                del self._expiry[key]

    def remember(self, key: str, until: datetime, *, now: datetime | None = None) -> bool:
        """Record ``key`` as seen until ``until``.

        Returns:
            True when ``key`` is new (the message may be processed); False when it was seen and has not expired
            (a replay). Nothing is recorded in that case.

        Raises:
            ReplayCacheFull: the cache holds ``max_entries`` unexpired ids.
        """
        at = _utc(now)
        expires = _utc(until)
        with self._lock:
            self._purge(at)
            seen = self._expiry.get(key)
            if seen is not None and seen > at:
                return False
            if len(self._expiry) >= self._max:
                raise ReplayCacheFull(
                    f"the replay cache holds {self._max} unexpired message ids; refusing new messages until some expire"
                )
            self._expiry[key] = expires
            heapq.heappush(self._heap, (expires, key))
            return True

    def seen(self, key: str, *, now: datetime | None = None) -> bool:
        """True when ``key`` is remembered and not yet expired."""
        at = _utc(now)
        with self._lock:
            until = self._expiry.get(key)
            return until is not None and until > at

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)
