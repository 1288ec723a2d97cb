"""The exact shape of what the client sends, and that bad input sends nothing (aioresponses)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from aioresponses import aioresponses
from yarl import URL

from voucherify_async import (
    AuthenticationError,
    NotFoundError,
    RetryPolicy,
    VoucherifyClient,
    __version__,
)

LIST = re.compile(r"^https://api\.voucherify\.io/v1/async-actions(\?.*)?$")
EMPTY_PAGE: dict[str, Any] = {
    "object": "list",
    "data_ref": "async_actions",
    "async_actions": [],
    "has_more": False,
}


def sent(mock: aioresponses) -> list[tuple[str, URL, dict[str, Any]]]:
    """Every request the client sent: method, URL, keyword arguments."""
    return [
        (method, url, call.kwargs)
        for (method, url), calls in mock.requests.items()
        for call in calls
    ]


def only_request(mock: aioresponses) -> tuple[URL, dict[str, str]]:
    requests = sent(mock)
    assert len(requests) == 1, requests
    method, url, kwargs = requests[0]
    assert method == "GET"
    return url, kwargs["headers"]


@pytest.fixture
def client() -> VoucherifyClient:
    return VoucherifyClient("my-app-id", "my-app-token", retry=RetryPolicy.instant())


@pytest.mark.asyncio
async def test_list_sends_limit_and_end_date_in_the_api_format(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    """end_date goes out as UTC with milliseconds and Z, whatever zone it came in."""
    mock_api.get(LIST, payload=EMPTY_PAGE)
    moment = datetime(2022, 9, 5, 13, 40, 17, 98765, tzinfo=timezone(timedelta(hours=2)))
    async with client:
        await client.list_async_actions(limit=25, end_date=moment)
    url, _ = only_request(mock_api)
    assert url.path == "/v1/async-actions"
    assert dict(url.query) == {"limit": "25", "end_date": "2022-09-05T11:40:17.098Z"}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("end_date", "expected"),
    [
        (date(2016, 11, 16), "2016-11-16T00:00:00.000Z"),
        ("2016-11-16", "2016-11-16T00:00:00.000Z"),
        ("2016-11-16T14:14:31Z", "2016-11-16T14:14:31.000Z"),
        ("2022-09-06T00:00:00.000000+0000", "2022-09-06T00:00:00.000Z"),
        ("2022-09-06T02:00:00+02:00", "2022-09-06T00:00:00.000Z"),
    ],
)
async def test_end_date_forms_are_normalised(
    client: VoucherifyClient, mock_api: aioresponses, end_date: object, expected: str
) -> None:
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with client:
        await client.list_async_actions(end_date=end_date)
    url, _ = only_request(mock_api)
    assert url.query == {"end_date": expected}


@pytest.mark.asyncio
async def test_list_without_arguments_sends_no_query(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with client:
        page = await client.list_async_actions()
    url, _ = only_request(mock_api)
    assert url.query_string == ""
    assert page.async_actions == ()
    assert page.has_more is False


@pytest.mark.asyncio
async def test_app_key_headers_user_agent_and_channel(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with client:
        await client.list_async_actions(limit=1)
    _, headers = only_request(mock_api)
    assert headers["X-App-Id"] == "my-app-id"
    assert headers["X-App-Token"] == "my-app-token"
    assert "Authorization" not in headers
    assert headers["User-Agent"].startswith(f"voucherify-async/{__version__} ")
    assert headers["X-Voucherify-Channel"] == "voucherify-async"
    assert headers["Accept"] == "application/json"


@pytest.mark.asyncio
async def test_oauth_token_is_sent_as_bearer_and_no_app_keys(mock_api: aioresponses) -> None:
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with VoucherifyClient(oauth_token="oauth-secret") as client:
        await client.list_async_actions()
    _, headers = only_request(mock_api)
    assert headers["Authorization"] == "Bearer oauth-secret"
    assert "X-App-Id" not in headers
    assert "X-App-Token" not in headers


@pytest.mark.asyncio
async def test_credentials_default_to_the_environment(
    mock_api: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOUCHERIFY_APP_ID", "env-id")
    monkeypatch.setenv("VOUCHERIFY_APP_TOKEN", "env-token")
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with VoucherifyClient() as client:
        await client.list_async_actions()
    _, headers = only_request(mock_api)
    assert (headers["X-App-Id"], headers["X-App-Token"]) == ("env-id", "env-token")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("cluster", "host"),
    [
        ("api", "api.voucherify.io"),
        ("us1.api", "us1.api.voucherify.io"),
        ("as1.api", "as1.api.voucherify.io"),
    ],
)
async def test_cluster_picks_the_host(mock_api: aioresponses, cluster: str, host: str) -> None:
    mock_api.get(re.compile(r".*"), payload=EMPTY_PAGE)
    async with VoucherifyClient("a", "b", cluster=cluster) as client:
        await client.list_async_actions()
    url, _ = only_request(mock_api)
    assert (url.scheme, url.host, url.path) == ("https", host, "/v1/async-actions")


@pytest.mark.asyncio
async def test_base_url_keeps_its_path(mock_api: aioresponses) -> None:
    mock_api.get(re.compile(r".*"), payload={"id": "aa_1", "created_at": "2022-01-01T00:00:00Z"})
    async with VoucherifyClient("a", "b", base_url="https://proxy.example/vf/") as c:
        await c.get_async_action("aa_1")
    url, _ = only_request(mock_api)
    assert str(url) == "https://proxy.example/vf/v1/async-actions/aa_1"


@pytest.mark.asyncio
async def test_get_requests_the_action_path(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    mock_api.get(
        "https://api.voucherify.io/v1/async-actions/aa_0ba518c55290c6fd62",
        payload={"id": "aa_0ba518c55290c6fd62", "created_at": "2022-09-05T11:40:17.098Z"},
    )
    async with client:
        details = await client.get_async_action("aa_0ba518c55290c6fd62")
    assert details.id == "aa_0ba518c55290c6fd62"
    assert details.result is None
    url, _ = only_request(mock_api)
    assert url.query_string == ""


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.list_async_actions(limit=0), ValueError),
        (lambda c: c.list_async_actions(limit=101), ValueError),
        (lambda c: c.list_async_actions(limit=True), TypeError),
        (lambda c: c.list_async_actions(limit=10.0), TypeError),
        (lambda c: c.list_async_actions(limit="10"), TypeError),
        (lambda c: c.list_async_actions(end_date=datetime(2022, 1, 1)), ValueError),
        (lambda c: c.list_async_actions(end_date="2023-02-30"), ValueError),
        (lambda c: c.list_async_actions(end_date="yesterday"), ValueError),
        (lambda c: c.list_async_actions(end_date=1662374417), TypeError),
        (lambda c: c.get_async_action("../../v1/vouchers"), ValueError),
        (lambda c: c.get_async_action("aa_1?limit=1"), ValueError),
        (lambda c: c.get_async_action("aa_1#x"), ValueError),
        (lambda c: c.get_async_action("aa%2F1"), ValueError),
        (lambda c: c.get_async_action(""), ValueError),
        (lambda c: c.get_async_action(123), TypeError),
    ],
)
async def test_bad_arguments_raise_before_any_request(
    client: VoucherifyClient, mock_api: aioresponses, call: Any, error: type[Exception]
) -> None:
    mock_api.get(re.compile(r".*"), payload=EMPTY_PAGE, repeat=True)
    async with client:
        with pytest.raises(error):
            await call(client)
    assert sent(mock_api) == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"page_size": 0}, ValueError),
        ({"page_size": 101}, ValueError),
        ({"page_size": False}, TypeError),
        ({"page_size": "100"}, TypeError),
        ({"end_date": datetime(2022, 1, 1)}, ValueError),
        ({"end_date": "not a date"}, ValueError),
        ({"end_date": 3.5}, TypeError),
    ],
)
async def test_iter_checks_arguments_when_called_before_any_request(
    client: VoucherifyClient, mock_api: aioresponses, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    """The error comes from iter_async_actions() itself, not from the first await."""
    async with client:
        with pytest.raises(error):
            client.iter_async_actions(**kwargs)
    assert sent(mock_api) == []


@pytest.mark.asyncio
async def test_iter_sends_nothing_until_the_first_action_is_awaited(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with client:
        stream = client.iter_async_actions(page_size=7)
        assert sent(mock_api) == []
        assert [action async for action in stream] == []
    url, _ = only_request(mock_api)
    assert url.query == {"limit": "7"}


@pytest.mark.asyncio
async def test_iter_with_end_date_sends_it_rounded_up_to_the_millisecond(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    """Rounded up, so that an exclusive server still returns actions in the last millisecond."""
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with client:
        stop = datetime(2022, 9, 5, 11, 40, 17, 98500, tzinfo=UTC)
        assert [a async for a in client.iter_async_actions(page_size=3, end_date=stop)] == []
    url, _ = only_request(mock_api)
    assert url.query == {"limit": "3", "end_date": "2022-09-05T11:40:17.099Z"}


@pytest.mark.asyncio
async def test_iter_second_request_moves_end_date_to_just_after_the_oldest_action(
    client: VoucherifyClient, mock_api: aioresponses
) -> None:
    first = {
        "async_actions": [
            {"id": "aa_2", "created_at": "2022-09-05T11:40:17.098Z"},
            {"id": "aa_1", "created_at": "2022-09-05T10:37:56.051Z"},
        ],
        "has_more": True,
    }
    second = {
        "async_actions": [{"id": "aa_1", "created_at": "2022-09-05T10:37:56.051Z"}],
        "has_more": False,
    }
    mock_api.get(LIST, payload=first)
    mock_api.get(LIST, payload=second)
    async with client:
        ids = [a.id async for a in client.iter_async_actions(page_size=2)]
    assert ids == ["aa_2", "aa_1"]
    urls = [url for _, url, _ in sent(mock_api)]
    assert [dict(url.query) for url in urls] == [
        {"limit": "2"},
        {"limit": "3", "end_date": "2022-09-05T10:37:56.052Z"},
    ]


@pytest.mark.asyncio
async def test_redirects_are_not_followed(client: VoucherifyClient, mock_api: aioresponses) -> None:
    """A 3xx is an error, so the credentials never travel to the redirect's origin."""
    mock_api.get(LIST, status=302, headers={"Location": "https://evil.example/steal?x=1"})
    async with client:
        with pytest.raises(Exception, match="redirect") as raised:
            await client.list_async_actions()
    assert "evil.example/steal" in str(raised.value)
    assert "x=1" not in str(raised.value)
    assert len(sent(mock_api)) == 1
    assert sent(mock_api)[0][2]["allow_redirects"] is False


@pytest.mark.asyncio
async def test_other_4xx_are_not_retried(mock_api: aioresponses) -> None:
    mock_api.get(
        LIST, status=401, payload={"code": 401, "key": "unauthorized", "message": "Unauthorized"}
    )
    mock_api.get(LIST, status=404, payload={"code": 404, "key": "not_found", "message": "nope"})
    async with VoucherifyClient("a", "b", retry=RetryPolicy.instant(max_retries=5)) as client:
        with pytest.raises(AuthenticationError):
            await client.list_async_actions()
        with pytest.raises(NotFoundError):
            await client.list_async_actions()
    assert len(sent(mock_api)) == 2


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses_are_retried_up_to_max_retries(
    mock_api: aioresponses, status: int
) -> None:
    for _ in range(3):
        mock_api.get(LIST, status=status, payload={"code": status, "message": "try again"})
    mock_api.get(LIST, payload=EMPTY_PAGE)
    async with VoucherifyClient("a", "b", retry=RetryPolicy.instant(max_retries=3)) as client:
        page = await client.list_async_actions()
    assert page.async_actions == ()
    assert len(sent(mock_api)) == 4


@pytest.mark.asyncio
async def test_max_retries_overrides_the_policy(mock_api: aioresponses) -> None:
    for _ in range(2):
        mock_api.get(LIST, status=503, payload={"code": 503, "message": "down"})
    async with VoucherifyClient(
        "a", "b", retry=RetryPolicy.instant(max_retries=5), max_retries=1
    ) as client:
        assert client.retry.max_retries == 1
        with pytest.raises(Exception, match="HTTP 503"):
            await client.list_async_actions()
    assert len(sent(mock_api)) == 2


def test_cluster_and_base_url_together_are_refused(mock_api: aioresponses) -> None:
    """One root URL or the other: both at once is a ValueError, and nothing is sent."""
    with pytest.raises(ValueError, match="either cluster or base_url"):
        VoucherifyClient("a", "b", cluster="us1.api", base_url="https://proxy.example/vf/")
    assert not mock_api.requests
