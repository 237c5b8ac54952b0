"""The sans-IO core and the retry policy, with no network and no event loop: a flow is driven by hand."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rsb_connector.client import HttpStatusError, RetryPolicy, Safety
from rsb_connector.client._core import ClientCore, Send, Sleep
from rsb_connector.client._retry import Failure, classify
from rsb_connector.errors import HubRefused, ProtocolError, TransportError
from rsb_connector.xds import constants as c
from rsb_connector.xds import iti18

from . import wire
from .conftest import PATIENT


def _status(code: int) -> HttpStatusError:
    return HttpStatusError("boom", status_code=code, url="http://x")


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (httpx.ConnectError("refused"), Failure.NOT_SENT),
        (httpx.ConnectTimeout("slow connect"), Failure.NOT_SENT),
        (httpx.PoolTimeout("pool"), Failure.NOT_SENT),
        (httpx.ReadTimeout("slow"), Failure.TIMEOUT),
        (httpx.WriteTimeout("slow"), Failure.TIMEOUT),
        (httpx.ReadError("reset"), Failure.DROPPED),
        (httpx.RemoteProtocolError("eof"), Failure.DROPPED),
        (_status(502), Failure.GATEWAY),
        (_status(503), Failure.GATEWAY),
        (_status(504), Failure.GATEWAY),
        (_status(500), Failure.FINAL),
        (HubRefused([]), Failure.FINAL),
        (ProtocolError("bad"), Failure.FINAL),
        (ValueError("bug"), Failure.FINAL),
    ],
)
def test_failures_are_classified(exc: BaseException, failure: Failure) -> None:
    assert classify(exc) is failure


@pytest.mark.parametrize(
    ("safety", "allowed"),
    [
        (Safety.IDEMPOTENT, {Failure.NOT_SENT, Failure.TIMEOUT, Failure.DROPPED, Failure.GATEWAY}),
        (Safety.RESUBMIT, {Failure.NOT_SENT, Failure.TIMEOUT}),
        (Safety.NOT_SAFE, {Failure.NOT_SENT}),
    ],
)
def test_what_each_safety_class_retries(safety: Safety, allowed: set[Failure]) -> None:
    policy = RetryPolicy()
    assert {f for f in Failure if policy.allows(safety, f)} == allowed


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(retries=10, backoff=0.5, max_delay=3.0)
    assert [policy.delay(n, lambda: 0.5) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(1, lambda: 0.0) == 0.25
    assert policy.delay(2, lambda: 0.999) == pytest.approx(1.499)


def test_next_delay_stops_after_the_last_retry_and_for_unrewindable_content() -> None:
    policy = RetryPolicy(retries=2, backoff=1.0)
    timeout = httpx.ReadTimeout("slow")
    assert policy.next_delay(Safety.IDEMPOTENT, timeout, 1, rand=lambda: 0.5) == 1.0
    assert policy.next_delay(Safety.IDEMPOTENT, timeout, 2, rand=lambda: 0.5) == 2.0
    assert policy.next_delay(Safety.IDEMPOTENT, timeout, 3) is None
    assert policy.next_delay(Safety.RESUBMIT, timeout, 1, rewindable=False) is None
    assert policy.next_delay(Safety.RESUBMIT, _status(503), 1) is None
    assert RetryPolicy(retries=0).next_delay(Safety.IDEMPOTENT, timeout, 1) is None


def test_a_policy_refuses_negative_settings() -> None:
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff=-0.1)


def test_a_flow_is_driven_by_hand_without_any_io() -> None:
    """The core only yields instructions: a Send, a Sleep after a failure thrown in, a new Send, then the result."""
    core = ClientCore(wire.BASE, retries=1, backoff=0.1, rand=lambda: 0.5)
    flow = core.find(PATIENT, class_codes=["labresult"])
    first = next(flow)
    assert isinstance(first, Send)
    assert first.request.url == wire.REGISTRY
    assert first.request.headers["content-type"].startswith("application/soap+xml")
    assert isinstance(first.request.body, bytes)
    assert b"$XDSDocumentEntryClassCode" in first.request.body

    pause = flow.throw(httpx.ConnectError("refused"))
    assert pause == Sleep(0.1)
    second = flow.send(None)
    assert isinstance(second, Send)
    assert second.request.body != first.request.body  # a new MessageID

    request = httpx.Request("POST", second.request.url, content=second.request.body)
    response = wire.soap(iti18.build_response(c.STATUS_SUCCESS), c.ACTION_ITI18_RESPONSE, wire.message_id(request))
    second.sink.start(response.status_code, response.headers)
    second.sink.feed(response.content)
    with pytest.raises(StopIteration) as done:
        flow.send(None)
    assert done.value.value == []


def test_a_flow_raises_the_transport_error_when_retries_run_out() -> None:
    core = ClientCore(wire.BASE, retries=0)
    flow = core.get_documents(unique_ids=["1.2.3"])
    next(flow)
    with pytest.raises(TransportError, match="no answer in time") as failure:
        flow.throw(httpx.ReadTimeout("slow"))
    assert isinstance(failure.value.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://hub"}, "http"),
        ({"base_url": "http://hub", "protocol": "hl7v2"}, "protocol"),
        ({"base_url": "http://hub", "retries": -1}, "retries"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientCore(**kwargs)


def test_get_documents_needs_exactly_one_kind_of_id() -> None:
    core = ClientCore(wire.BASE)
    with pytest.raises(ValueError, match="one of the two"):
        next(core.get_documents())
    with pytest.raises(ValueError, match="one of the two"):
        next(core.get_documents(entry_uuids=["urn:uuid:x"], unique_ids=["1.2"]))


def test_find_query_resolves_keys_and_times() -> None:
    core = ClientCore(wire.BASE)
    query = core.find_query(
        PATIENT,
        status="all",
        class_codes=["labresult"],
        confidentiality="N",
        event_codes=["E1^^1.2.3"],
        created_from="2024-05-01T10:00:00+02:00",
        service_from="2024",
        service_to="20250101",
    )
    assert query.patient_id == f"{PATIENT}^^^&2.16.840.1.113883.3.6777.5.1&ISO"
    assert len(query.statuses) == 2
    assert [c.code for c in query.class_codes] == ["labresult"]
    assert [[c.code for c in group] for group in query.confidentiality_codes] == [["N"]]
    assert [[(c.code, c.scheme) for c in group] for group in query.event_codes] == [[("E1", "1.2.3")]]
    assert query.creation_time_from == "20240501080000"
    assert (query.service_stop_time_from, query.service_start_time_to) == ("2024", "20250101")
    with pytest.raises(ValueError, match="classCode"):
        core.find_query(PATIENT, class_codes=["nonsense"])
