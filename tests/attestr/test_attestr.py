"""The Attestr client against pytest-httpx: answers, every error class, timeouts, junk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from service.attestr.client import AttestrClient
from service.attestr.errors import (
    Action,
    AttestrAccessDenied,
    AttestrAnswerTooLarge,
    AttestrAnswerUnreadable,
    AttestrCreditsExhausted,
    AttestrDailyLimit,
    AttestrError,
    AttestrMalformedRequest,
    AttestrNotConfigured,
    AttestrRateLimited,
    AttestrUnavailable,
    AttestrUnprocessable,
)

URL = "https://attestr.test/api/v2/public/leadx/mca-cin-contact"
CIN = "U74999TG2017PTC118280"


@pytest.fixture
async def client():
    client = AttestrClient(URL, "dG9rZW4tZnJvbS1hdHRlc3Ry", max_contacts=25, timeout_s=2)
    yield client
    await client.aclose()


async def test_request_shape_and_contacts(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=URL,
        method="POST",
        json={
            "valid": True,
            "indexId": CIN,
            "businessName": "ACME PRIVATE LIMITED",
            "contacts": [
                {
                    "indexId": "07864946",
                    "fullName": "GITANJALI RAHEJA",
                    "mobileNumber": "9845067321",
                    "emailAddress": "G.Raheja@Example.com",
                    "addresses": [{"fullAddress": "1 MG Road, Pune"}],
                },
            ],
        },
    )
    answer = await client.fetch(CIN)
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Authorization"] == "Basic dG9rZW4tZnJvbS1hdHRlc3Ry"  # sent as issued
    assert request.read() == b'{"reg":"U74999TG2017PTC118280"}'  # what Attestr documents, nothing more
    assert answer.outcome == "synced"
    assert answer.business_name == "ACME PRIVATE LIMITED"
    (contact,) = answer.contacts
    assert (contact.din, contact.phone.e164, contact.email.address) == (
        "07864946",
        "+919845067321",
        "g.raheja@example.com",
    )


async def test_no_more_contacts_are_read_than_were_asked_for(
    client: AttestrClient, httpx_mock: HTTPXMock
) -> None:
    """Thousands of contacts where 25 were asked for: 25 are read (and normalised), the rest not."""
    contacts = [{"indexId": f"{n:08d}", "fullName": f"DIRECTOR {n}"} for n in range(1, 5001)]
    httpx_mock.add_response(url=URL, method="POST", json={"valid": True, "contacts": contacts})
    answer = await client.fetch(CIN)
    assert [c.din for c in answer.contacts] == [f"{n:08d}" for n in range(1, 26)]
    assert len(answer.raw["contacts"]) == 5000  # kept as received


async def test_valid_false_is_no_data_not_an_error(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"valid": False, "message": "No records found for the input"})
    answer = await client.fetch(CIN)
    assert answer.outcome == "no_data"
    assert answer.message == "No records found for the input"
    assert answer.contacts == []


async def test_junk_fields_are_survived(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        json={
            "valid": "true",
            "businessName": {"nested": "object"},
            "indexId": 12,
            "contacts": [
                None,
                17,
                "a string",
                [],
                {
                    "indexId": None,
                    "fullName": "<script>alert(1)</script>Neha   Gupta",
                    "mobileNumber": 919812345678,
                    "emailAddress": None,
                    "addresses": "Mumbai",
                },
                {"indexId": True, "fullName": 42, "mobileNumber": ["x"], "emailAddress": {"a": 1}},
            ],
        }
    )
    answer = await client.fetch(CIN)
    assert answer.business_name is None
    # A number given as the name is no name, and that contact has nothing else to be known by.
    assert [c.name for c in answer.contacts] == ["alert(1) Neha Gupta"]
    assert answer.contacts[0].phone.e164 == "+919812345678"
    assert answer.contacts[0].addresses == []


async def test_contacts_not_a_list(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"valid": True, "contacts": {"0": {"fullName": "X"}}})
    assert (await client.fetch(CIN)).outcome == "no_data"


@pytest.mark.parametrize(
    ("status", "code", "error", "action"),
    [
        (400, 4001, AttestrMalformedRequest, Action.FAIL),
        (400, 4005, AttestrCreditsExhausted, Action.PAUSE),
        (401, 4016, AttestrAccessDenied, Action.PAUSE),
        (403, 4031, AttestrAccessDenied, Action.PAUSE),
        (403, 4035, AttestrAccessDenied, Action.PAUSE),
        (403, 4039, AttestrAccessDenied, Action.PAUSE),
        (429, 4291, AttestrRateLimited, Action.RETRY_SOON),
        (429, 4292, AttestrRateLimited, Action.RETRY_SOON),
        (429, 4293, AttestrDailyLimit, Action.WAIT_RESET),
        (429, 4294, AttestrDailyLimit, Action.WAIT_RESET),
        (500, 5001, AttestrUnprocessable, Action.RETRY_ONCE),
        (502, None, AttestrUnavailable, Action.RETRY),
        (503, 5003, AttestrUnavailable, Action.RETRY),
        (401, None, AttestrAccessDenied, Action.PAUSE),
        (429, None, AttestrRateLimited, Action.RETRY_SOON),
        (400, "9999", AttestrMalformedRequest, Action.FAIL),
    ],
)
async def test_error_table(
    client: AttestrClient,
    httpx_mock: HTTPXMock,
    status: int,
    code: object,
    error: type[AttestrError],
    action: Action,
) -> None:
    body = {"httpStatusCode": status, "code": code, "message": "Details from Attestr"} if code else None
    if body is None:
        httpx_mock.add_response(status_code=status, text="<html>Bad Gateway</html>")
    else:
        httpx_mock.add_response(status_code=status, json=body)
    with pytest.raises(error) as caught:
        await client.fetch(CIN)
    assert caught.value.action is action
    assert caught.value.http_status == status
    assert caught.value.code == (str(code) if code else None)
    if code:
        assert f"code {code}: Details from Attestr" in str(caught.value)


async def test_error_inside_a_200(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"httpStatusCode": 400, "code": 4005, "message": "Insufficient credits"})
    with pytest.raises(AttestrCreditsExhausted):
        await client.fetch(CIN)


async def test_timeout_is_transient(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("timed out"))
    with pytest.raises(AttestrUnavailable, match="did not answer within 2 s"):
        await client.fetch(CIN)


async def test_connection_error_is_transient(client: AttestrClient, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"))
    with pytest.raises(AttestrUnavailable, match="could not be reached"):
        await client.fetch(CIN)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"valid": true, "contacts": ['])
async def test_a_garbled_200_was_paid_for_and_fails_without_asking_again(
    client: AttestrClient, httpx_mock: HTTPXMock, body: bytes
) -> None:
    httpx_mock.add_response(content=body)
    with pytest.raises(AttestrAnswerUnreadable) as unreadable:
        await client.fetch(CIN)
    assert unreadable.value.action is Action.FAIL and unreadable.value.paid
    assert "not asked for again" in unreadable.value.message


class _CutOff(httpx.AsyncByteStream):
    """A 200 whose body stops partway: the connection reset inside it, or bytes trickling past
    the call's deadline (`pause_s` between chunks)."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.pause_s = pause_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b'{"valid": true, '
            if not self.pause_s:
                raise httpx.RemoteProtocolError(
                    "peer closed connection without sending complete message body"
                )
            await asyncio.sleep(self.pause_s)


async def test_a_200_cut_off_inside_its_body_was_paid_for_and_fails(
    client: AttestrClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, stream=_CutOff())
    with pytest.raises(AttestrAnswerUnreadable, match=r"cut off \(RemoteProtocolError\)") as cut:
        await client.fetch(CIN)
    assert cut.value.action is Action.FAIL and cut.value.paid


async def test_one_deadline_bounds_the_whole_call_not_each_read(httpx_mock: HTTPXMock) -> None:
    """Each chunk arrives well within the read timeout; the call as a whole does not."""
    client = AttestrClient(URL, "dG9rZW4tZnJvbS1hdHRlc3Ry", timeout_s=0.5)
    httpx_mock.add_response(url=URL, stream=_CutOff(pause_s=0.1))
    try:
        with pytest.raises(AttestrAnswerUnreadable, match="past the call's deadline"):
            await client.fetch(CIN)
    finally:
        await client.aclose()


async def test_missing_token_is_a_pause_naming_the_variable() -> None:
    client = AttestrClient(URL, None)
    with pytest.raises(AttestrNotConfigured, match="ATTESTR_API_KEY"):
        await client.fetch(CIN)
    await client.aclose()


async def test_an_answer_too_large_fails_at_once_however_it_is_sent(
    client: AttestrClient, httpx_mock: HTTPXMock
) -> None:
    """Refused by its Content-Length before it is read, or as its bytes arrive without one; it was
    paid for, so the job fails without a retry (which would pay again)."""
    big = b'{"valid": true, "contacts": [' + b'{"fullName": "A"},' * 100_000 + b"{}]}"
    httpx_mock.add_response(url=URL, content=big)  # with its Content-Length
    with pytest.raises(AttestrAnswerTooLarge) as announced:
        await client.fetch(CIN)
    assert announced.value.action is Action.FAIL and "bytes announced" in announced.value.message

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65_536):
            yield big[start : start + 65_536]

    httpx_mock.add_response(url=URL, stream=IteratorStream(chunks()))  # chunked: no Content-Length
    with pytest.raises(AttestrAnswerTooLarge) as counted:
        await client.fetch(CIN)
    assert "bytes sent" in counted.value.message and "not asked for again" in counted.value.message


async def test_an_answer_nested_too_deeply_is_garbled_not_a_crash(
    client: AttestrClient, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=URL, content=b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(AttestrAnswerUnreadable, match="not a JSON object"):
        await client.fetch(CIN)
