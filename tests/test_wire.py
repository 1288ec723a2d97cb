"""One connection resolver (``_wire.resolve_connection``) for the client and the command line.

Its rules, as plain sync asserts on an explicit environment; then the client reading
the real environment, over loopback HTTP; then the command line and the client given
the same environment, with the same outcome.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import pytest

from voucherify_async import VoucherifyClient
from voucherify_async._wire import (
    CLUSTERS,
    Connection,
    request_headers,
    resolve_connection,
)
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify

KEYS = {"VOUCHERIFY_APP_ID": "env-id", "VOUCHERIFY_APP_TOKEN": "env-token"}
FLAGS = {
    "app_id": "--app-id",
    "app_token": "--app-token",
    "oauth_token": "--oauth-token",
    "cluster": "--cluster",
    "base_url": "--base-url",
}


def resolve(environ: Mapping[str, str] | None = None, **kwargs: Any) -> Connection:
    return resolve_connection(environ=environ or {}, **kwargs)


# --- credentials -----------------------------------------------------------------------


def test_arguments_beat_the_environment() -> None:
    connection = resolve(KEYS, app_id="arg-id", app_token="arg-token")
    assert dict(connection.auth_headers) == {"X-App-Id": "arg-id", "X-App-Token": "arg-token"}


def test_one_argument_and_one_variable_make_a_pair() -> None:
    connection = resolve(KEYS, app_id="arg-id")
    assert dict(connection.auth_headers) == {"X-App-Id": "arg-id", "X-App-Token": "env-token"}


def test_credentials_come_from_the_environment() -> None:
    connection = resolve(KEYS)
    assert dict(connection.auth_headers) == {"X-App-Id": "env-id", "X-App-Token": "env-token"}
    assert connection.auth_kind == "app keys"


@pytest.mark.parametrize("empty", ["VOUCHERIFY_APP_ID", "VOUCHERIFY_APP_TOKEN"])
def test_an_empty_variable_counts_as_unset(empty: str) -> None:
    with pytest.raises(ValueError, match="no credentials"):
        resolve({**KEYS, empty: ""})


def test_an_oauth_token_beats_app_keys_in_the_environment() -> None:
    connection = resolve(KEYS, oauth_token="bearer-1")
    assert dict(connection.auth_headers) == {"Authorization": "Bearer bearer-1"}
    assert connection.auth_kind == "oauth token"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"app_id": "a", "app_token": "b", "oauth_token": "c"},
        {"app_id": "a", "oauth_token": "c"},
        {"app_token": "b", "oauth_token": "c"},
    ],
)
def test_both_kinds_of_credentials_are_refused(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="not both"):
        resolve(**kwargs)


def test_a_credential_from_the_environment_is_named_by_its_variable_never_echoed() -> None:
    with pytest.raises(ValueError, match="VOUCHERIFY_APP_TOKEN") as raised:
        resolve({**KEYS, "VOUCHERIFY_APP_TOKEN": "secret\u2028tail"})
    assert "secret" not in str(raised.value)


# --- the root URL ----------------------------------------------------------------------


def test_without_anything_the_europe_cluster_is_used() -> None:
    assert str(resolve(KEYS).base_url) == "https://api.voucherify.io"


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_a_cluster_names_its_host(cluster: str) -> None:
    assert resolve(KEYS, cluster=cluster).base_url.host == f"{cluster}.voucherify.io"
    assert resolve({**KEYS, "VOUCHERIFY_CLUSTER": cluster}).base_url.host == (
        f"{cluster}.voucherify.io"
    )


def test_the_base_url_variable_is_read() -> None:
    environ = {**KEYS, "VOUCHERIFY_API_URL": "https://proxy.example/vf/"}
    assert str(resolve(environ).base_url) == "https://proxy.example/vf"


@pytest.mark.parametrize(
    "kwargs",
    [{"cluster": "us1.api"}, {"base_url": "https://arg.example"}],
)
def test_a_cluster_or_base_url_argument_beats_both_variables(kwargs: dict[str, str]) -> None:
    environ = {
        **KEYS,
        "VOUCHERIFY_API_URL": "https://env.example",
        "VOUCHERIFY_CLUSTER": "as1.api",
    }
    host = resolve(environ, **kwargs).base_url.host
    assert host == ("us1.api.voucherify.io" if "cluster" in kwargs else "arg.example")


def test_cluster_and_base_url_arguments_together_are_refused() -> None:
    with pytest.raises(ValueError, match="either cluster or base_url"):
        resolve(KEYS, cluster="api", base_url="https://proxy.example")


def test_cluster_and_base_url_variables_together_are_refused() -> None:
    environ = {**KEYS, "VOUCHERIFY_API_URL": "https://x.example", "VOUCHERIFY_CLUSTER": "api"}
    with pytest.raises(ValueError, match="VOUCHERIFY_API_URL and VOUCHERIFY_CLUSTER"):
        resolve(environ)


@pytest.mark.parametrize("empty", ["VOUCHERIFY_API_URL", "VOUCHERIFY_CLUSTER"])
def test_an_empty_url_or_cluster_variable_counts_as_unset(empty: str) -> None:
    other = "VOUCHERIFY_CLUSTER" if empty == "VOUCHERIFY_API_URL" else "VOUCHERIFY_API_URL"
    value = "us1.api" if other == "VOUCHERIFY_CLUSTER" else "https://proxy.example"
    connection = resolve({**KEYS, empty: "", other: value})
    assert connection.base_url.host in {"us1.api.voucherify.io", "proxy.example"}


@pytest.mark.parametrize(
    ("kwargs", "environ", "named"),
    [
        ({"cluster": "eu1"}, {}, "cluster"),
        ({}, {"VOUCHERIFY_CLUSTER": "eu1"}, "VOUCHERIFY_CLUSTER"),
    ],
)
def test_an_unknown_cluster_lists_the_clusters(
    kwargs: dict[str, str], environ: dict[str, str], named: str
) -> None:
    with pytest.raises(ValueError, match=named) as raised:
        resolve({**KEYS, **environ}, **kwargs)
    assert all(cluster in str(raised.value) for cluster in CLUSTERS)


def test_a_refused_base_url_variable_is_named() -> None:
    with pytest.raises(ValueError, match="VOUCHERIFY_API_URL"):
        resolve({**KEYS, "VOUCHERIFY_API_URL": "http://example.com"})


# --- names= spells the arguments as the caller does -------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "--app-id and --app-token"),
        ({"app_id": "a", "oauth_token": "c"}, "--oauth-token"),
        ({"app_id": "a", "app_token": "b", "cluster": "eu1"}, "--cluster"),
        (
            {"app_id": "a", "app_token": "b", "cluster": "api", "base_url": "https://x.y"},
            "--base-url",
        ),
        ({"app_id": "a", "app_token": " b"}, "--app-token"),
    ],
)
def test_names_spell_the_arguments_in_messages(kwargs: dict[str, str], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        resolve(names=FLAGS, **kwargs)


# --- the headers every request sends ----------------------------------------------------


def test_request_headers_carry_the_credentials_agent_and_channel() -> None:
    headers = request_headers(resolve(KEYS), "3.99")
    assert headers["X-App-Id"] == "env-id"
    assert headers["Accept"] == "application/json"
    assert headers["X-Voucherify-Channel"] == "voucherify-async"
    assert " aiohttp/3.99 " in headers["User-Agent"]


# --- the client reads the same environment ---------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("VOUCHERIFY_"):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.asyncio
async def test_the_client_honours_voucherify_api_url(clean_env: pytest.MonkeyPatch) -> None:
    async with FakeVoucherify() as fake:
        clean_env.setenv("VOUCHERIFY_API_URL", fake.base_url)
        clean_env.setenv("VOUCHERIFY_APP_ID", FAKE_APP_ID)
        clean_env.setenv("VOUCHERIFY_APP_TOKEN", FAKE_APP_TOKEN)
        async with VoucherifyClient() as client:
            await client.list_async_actions(limit=1)
        assert len(fake.requests) == 1


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_the_client_honours_voucherify_cluster(clean_env: pytest.MonkeyPatch, cluster: str) -> None:
    clean_env.setenv("VOUCHERIFY_CLUSTER", cluster)
    assert str(VoucherifyClient("a", "b").base_url) == f"https://{cluster}.voucherify.io"


# --- the command line and the client: same environment, same outcome ---------------------


def _python_name(flag: re.Match[str]) -> str:
    return flag[3] or f"{flag[1]}_{flag[2]}"


def _cli_outcome(env: dict[str, str]) -> tuple[int, str]:
    completed = subprocess.run(  # our own interpreter, fixed arguments
        [sys.executable, "-m", "voucherify_async", "list", "--limit", "1", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return completed.returncode, completed.stderr


ENVIRONMENTS: dict[str, dict[str, str]] = {
    "url from the environment": {"VOUCHERIFY_API_URL": "{fake}"},
    "empty cluster next to the url": {"VOUCHERIFY_API_URL": "{fake}", "VOUCHERIFY_CLUSTER": ""},
    "url and cluster": {"VOUCHERIFY_API_URL": "{fake}", "VOUCHERIFY_CLUSTER": "api"},
    "unknown cluster": {"VOUCHERIFY_CLUSTER": "eu1"},
    "plain http elsewhere": {"VOUCHERIFY_API_URL": "http://example.com"},
    "empty app id": {"VOUCHERIFY_API_URL": "{fake}", "VOUCHERIFY_APP_ID": ""},
}


@pytest.mark.parametrize("case", list(ENVIRONMENTS))
def test_the_command_line_and_the_client_agree_on_an_environment(
    clean_env: pytest.MonkeyPatch, case: str
) -> None:
    with FakeVoucherify().run_in_thread() as fake:
        extra = {k: v.replace("{fake}", fake.base_url) for k, v in ENVIRONMENTS[case].items()}
        variables = {"VOUCHERIFY_APP_ID": FAKE_APP_ID, "VOUCHERIFY_APP_TOKEN": FAKE_APP_TOKEN}
        variables.update(extra)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERIFY_")}
        code, stderr = _cli_outcome({**env, **variables})
        cli_requests = len(fake.requests)
        fake_url = fake.base_url
        for name, value in variables.items():
            clean_env.setenv(name, value)
        try:
            client_error: str | None = None
            client_base = str(VoucherifyClient().base_url)
        except ValueError as error:
            client_error = str(error)
    if client_error is None:
        assert code == 0, stderr
        assert cli_requests == 1
        assert client_base == fake_url
    else:
        assert code == 2, stderr
        assert cli_requests == 0
        # The same message, but for the spelling of the arguments (flags there).
        unflagged = re.sub(r"--([a-z]+)-([a-z]+)|--(cluster)", _python_name, stderr)
        assert client_error in unflagged
