"""When to try a request again, and how long to wait first: pure decisions, no sleeping here.

Each transaction declares how safe it is to send twice (:class:`Safety`); each failure is sorted into a
:class:`Failure` kind; :class:`RetryPolicy` combines the two:

============================  ==========  ========  =========  ================
failure                       IDEMPOTENT  RESUBMIT  NOT_SAFE   why
============================  ==========  ========  =========  ================
connect error / connect or    yes         yes       yes        nothing was sent
pool timeout
read / write timeout          yes         yes       no         it may have been done
connection dropped            yes         no        no         it may have been done
HTTP 502 / 503 / 504          yes         no        no         a gateway failed
a refusal, a fault, anything  no          no        no         asking again changes nothing
else
============================  ==========  ========  =========  ================

- IDEMPOTENT: ITI-18 stored queries and ITI-43 retrieves (reading twice does no harm).
- RESUBMIT: ITI-41 Provide and Register. Sending the same submission again is harmless *because of an XDS rule*:
  a registry accepts a document whose uniqueId is already registered with the same hash, and the hub treats a
  repeated submission set (same uniqueId, same documents) as success. A retry is a new message (new
  ``wsa:MessageID``) with identical metadata. Only connect errors and timeouts are retried; a content stream that
  cannot be rewound is never retried.
- NOT_SAFE: ITI-57 status updates (a repeated Approved→Deprecated would be refused once done): only retried when the
  request surely never left.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import httpx

from .models import HttpStatusError

__all__ = ["Failure", "RetryPolicy", "Safety", "classify"]

GATEWAY_STATUSES = frozenset({502, 503, 504})


class Safety(Enum):
    """How safe a transaction is to send more than once."""

    IDEMPOTENT = "idempotent"
    RESUBMIT = "resubmit"
    NOT_SAFE = "not-safe"


class Failure(Enum):
    """What kind of failure ended an attempt."""

    NOT_SENT = "not-sent"
    """Connection refused or not established in time, or no pooled connection: the request never left."""
    TIMEOUT = "timeout"
    """The request was (maybe partly) sent, the answer did not come in time."""
    DROPPED = "dropped"
    """The connection broke while sending or receiving."""
    GATEWAY = "gateway"
    """HTTP 502, 503 or 504 without a SOAP answer."""
    FINAL = "final"
    """Anything else: a refusal, a fault, a malformed answer, a local error."""


def classify(exc: BaseException) -> Failure:
    """Sort an exception raised while exchanging a message into a :class:`Failure` kind."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Failure.NOT_SENT
    if isinstance(exc, httpx.TimeoutException):
        return Failure.TIMEOUT
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return Failure.DROPPED
    if isinstance(exc, HttpStatusError) and exc.status_code in GATEWAY_STATUSES:
        return Failure.GATEWAY
    return Failure.FINAL


_ALLOWED: dict[Safety, frozenset[Failure]] = {
    Safety.IDEMPOTENT: frozenset({Failure.NOT_SENT, Failure.TIMEOUT, Failure.DROPPED, Failure.GATEWAY}),
    Safety.RESUBMIT: frozenset({Failure.NOT_SENT, Failure.TIMEOUT}),
    Safety.NOT_SAFE: frozenset({Failure.NOT_SENT}),
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter.

    Attributes:
        retries: how many times a failed attempt may be repeated (0: never), so at most ``retries + 1`` attempts.
        backoff: the first delay in seconds; it doubles with each retry, up to ``max_delay``. Each delay is
            multiplied by a random factor in [0.5, 1.5) so that many clients do not retry in lockstep.
        max_delay: the longest delay, in seconds.
    """

    retries: int = 3
    backoff: float = 0.2
    max_delay: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, not {self.retries}")
        if self.backoff < 0:
            raise ValueError(f"backoff must be 0 or more seconds, not {self.backoff}")

    def allows(self, safety: Safety, failure: Failure) -> bool:
        """Whether a ``failure`` of a transaction of this ``safety`` may be retried at all."""
        return failure in _ALLOWED[safety]

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), jitter included."""
        base = min(self.max_delay, self.backoff * (2.0 ** (attempt - 1)))
        return min(self.max_delay, base * (0.5 + rand()))

    def next_delay(
        self,
        safety: Safety,
        exc: BaseException,
        attempt: int,
        *,
        rewindable: bool = True,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """The delay before the next attempt, or ``None`` when the failure must be raised.

        Args:
            safety: the transaction's :class:`Safety`.
            exc: what ended attempt number ``attempt``.
            attempt: 1 for the first attempt.
            rewindable: False when the request's content cannot be sent again (a stream that cannot seek back).
            rand: a source of floats in [0, 1) for the jitter.
        """
        if attempt > self.retries or not rewindable:
            return None
        if not self.allows(safety, classify(exc)):
            return None
        return self.delay(attempt, rand)
