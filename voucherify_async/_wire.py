"""Where requests go and what they carry: credentials, the API's root URL, headers, queries.

Pure (the "sans-I/O" half of sending): imports neither aiohttp nor asyncio. The
client and the command line both resolve their connection here, through
:func:`resolve_connection`, with one set of rules:

- An argument wins over the environment; an environment variable that is set
  but empty counts as unset.
- Credentials: ``oauth_token``, or ``app_id`` and ``app_token`` (defaults
  ``VOUCHERIFY_APP_ID`` / ``VOUCHERIFY_APP_TOKEN``); never both kinds. A
  credential is sent verbatim or refused: empty, leading or trailing whitespace,
  or any character outside printable Latin-1 raises :class:`ValueError` naming
  where it came from, never echoing it.
- The root URL: ``base_url``, or ``cluster`` (``api``, ``us1.api``, ``as1.api``),
  never both; without either, ``VOUCHERIFY_API_URL`` or ``VOUCHERIFY_CLUSTER``
  (not both), else the ``api`` cluster (Europe). ``base_url`` is https (plain
  http on loopback only), has no user info, query or fragment, and its path is
  sent exactly as written: only URL path characters and well-formed
  percent-escapes are accepted.
"""

from __future__ import annotations

import ipaddress
import platform
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import attrs
from yarl import URL

from ._version import __version__

__all__ = [
    "CLUSTERS",
    "LIST_PATH",
    "Connection",
    "request_headers",
    "resolve_connection",
]

CHANNEL = "voucherify-async"
"""The ``X-Voucherify-Channel`` every request sends, naming this integration to Voucherify."""

CLUSTERS = ("api", "us1.api", "as1.api")
"""Voucherify's shared clusters: Europe (the default), the United States, Asia."""

LIST_PATH = "/v1/async-actions"
"""The path of the list endpoint, after the root URL."""

ENV_APP_ID = "VOUCHERIFY_APP_ID"
ENV_APP_TOKEN = "VOUCHERIFY_APP_TOKEN"  # noqa: S105  # the variable's name, not a secret
ENV_API_URL = "VOUCHERIFY_API_URL"
ENV_CLUSTER = "VOUCHERIFY_CLUSTER"

_LOOPBACK_NAMES = frozenset({"localhost"})
# RFC 3986 path characters (unreserved, sub-delims, ":", "@", "/") and percent-escapes.
_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\u2028\u2029]")


def user_agent(aiohttp_version: str) -> str:
    """The ``User-Agent`` every request sends, naming this library, aiohttp and Python."""
    return (
        f"voucherify-async/{__version__} aiohttp/{aiohttp_version} "
        f"{platform.python_implementation()}/{platform.python_version()}"
    )


def request_headers(connection: Connection, aiohttp_version: str) -> dict[str, str]:
    """Every header a request sends: ``Accept``, ``User-Agent``, ``X-Voucherify-Channel``
    and the connection's credentials (the same for every request of a client)."""
    return {
        "Accept": "application/json",
        "User-Agent": user_agent(aiohttp_version),
        "X-Voucherify-Channel": CHANNEL,
        **connection.auth_headers,
    }


@attrs.frozen
class Connection:
    """Where requests go and the headers that authenticate them (see the module docstring)."""

    base_url: URL
    """The API's root URL, no trailing slash, its path exactly as given."""
    auth_headers: Mapping[str, str] = attrs.field(repr=False)
    """``X-App-Id``/``X-App-Token``, or ``Authorization: Bearer``."""
    auth_kind: str
    """``"app keys"`` or ``"oauth token"``, for reprs."""

    def url(self, path: str, query: Mapping[str, str] | None = None) -> URL:
        """The URL of ``path`` (already encoded, starting with ``/``) under the root URL."""
        url = self.base_url.with_path(self.base_url.raw_path.rstrip("/") + path, encoded=True)
        # with_query, not a URL parsed from a string: yarl keeps those in a global cache,
        # which a stream would fill with one URL a page.
        return url.with_query(query) if query else url


PYTHON_NAMES: Mapping[str, str] = {
    "app_id": "app_id",
    "app_token": "app_token",
    "oauth_token": "oauth_token",
    "cluster": "cluster",
    "base_url": "base_url",
}


def _given(value: object, environ: Mapping[str, str], variable: str) -> tuple[object, str]:
    """An argument, else the environment variable (empty counts as unset); and its source."""
    if value is not None:
        return value, ""
    return (environ.get(variable) or None), variable


def check_credential(name: str, value: object) -> str:
    """Return ``value`` if it can be sent verbatim in a header.

    Raises:
        TypeError: not a str.
        ValueError: empty, leading or trailing whitespace, or a character outside
            printable Latin-1 (control characters, NEL, U+2028, ...). The message
            names ``name`` and never echoes the value: it is a secret.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} is empty")
    if value != value.strip():
        raise ValueError(f"{name} has leading or trailing whitespace: refused, not stripped")
    if not value.isprintable() or any(ord(char) > 0xFF for char in value):
        raise ValueError(
            f"{name} contains a control character or another character that cannot be sent "
            "as is in a header (only printable Latin-1 can): refused"
        )
    return value


def _auth(
    app_id: object,
    app_token: object,
    oauth_token: object,
    environ: Mapping[str, str],
    names: Mapping[str, str],
) -> tuple[dict[str, str], str]:
    if oauth_token is not None:
        if app_id is not None or app_token is not None:
            raise ValueError(
                f"pass either {names['app_id']} and {names['app_token']}, or "
                f"{names['oauth_token']}, not both"
            )
        token = check_credential(names["oauth_token"], oauth_token)
        return {"Authorization": f"Bearer {token}"}, "oauth token"
    app_id, id_source = _given(app_id, environ, ENV_APP_ID)
    app_token, token_source = _given(app_token, environ, ENV_APP_TOKEN)
    if app_id is None or app_token is None:
        raise ValueError(
            f"no credentials: pass {names['app_id']} and {names['app_token']} (or set "
            f"{ENV_APP_ID} and {ENV_APP_TOKEN}), or pass {names['oauth_token']}"
        )
    return {
        "X-App-Id": check_credential(id_source or names["app_id"], app_id),
        "X-App-Token": check_credential(token_source or names["app_token"], app_token),
    }, "app keys"


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cluster_url(cluster: object, source: str) -> URL:
    if not isinstance(cluster, str):
        raise TypeError(f"{source} must be a str, not {type(cluster).__name__}")
    if cluster not in CLUSTERS:
        raise ValueError(
            f"{source} {cluster!r} is not a Voucherify cluster: use one of "
            f"{', '.join(CLUSTERS)} (or a base URL for a dedicated host)"
        )
    return URL.build(scheme="https", host=f"{cluster}.voucherify.io")


def check_base_url(base_url: object, source: str = "base_url") -> URL:
    """The root URL ``base_url`` names, its path kept exactly as written, no trailing slash.

    Raises:
        TypeError: not a str or ``yarl.URL``.
        ValueError: not an absolute https URL (http is allowed on loopback only), or
            with user info, a query, a fragment, a control character, a space, or a
            path character that would have to be encoded first.
    """
    if isinstance(base_url, URL):
        text = str(base_url)
    elif isinstance(base_url, str):
        text = base_url
    else:
        raise TypeError(f"{source} must be a str or yarl.URL, not {type(base_url).__name__}")
    if _CONTROL_OR_SPACE.search(text):
        raise ValueError(f"{source} contains a space or a control character")
    try:
        parts = urlsplit(text)
        port = parts.port
        url = URL(text)
    except ValueError as exc:
        raise ValueError(f"{source} {text!r} is not a URL: {exc}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname or not url.host:
        raise ValueError(f"{source} {text!r} is not an absolute https URL")
    if parts.scheme == "http" and not _is_loopback(url.host):
        raise ValueError(
            f"{source} {text!r} must use https (plain http is allowed only on loopback)"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{source} must not carry credentials")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError(f"{source} must not carry a query or a fragment")
    if not _PATH.fullmatch(parts.path):
        raise ValueError(
            f"{source} has a path that is not sent as written ({parts.path!r}): encode it "
            "(only path characters and %XX escapes)"
        )
    root = URL.build(scheme=parts.scheme, host=url.host, port=port)
    return root.with_path(parts.path.rstrip("/"), encoded=True)


def _root_url(
    base_url: object, cluster: object, environ: Mapping[str, str], names: Mapping[str, str]
) -> URL:
    if base_url is not None and cluster is not None:
        raise ValueError(f"pass either {names['cluster']} or {names['base_url']}, not both")
    if base_url is not None:
        return check_base_url(base_url, names["base_url"])
    if cluster is not None:
        return _cluster_url(cluster, names["cluster"])
    from_env_url = environ.get(ENV_API_URL) or None
    from_env_cluster = environ.get(ENV_CLUSTER) or None
    if from_env_url is not None and from_env_cluster is not None:
        raise ValueError(
            f"{ENV_API_URL} and {ENV_CLUSTER} are both set: unset one, or pass "
            f"{names['base_url']} or {names['cluster']}"
        )
    if from_env_url is not None:
        return check_base_url(from_env_url, ENV_API_URL)
    if from_env_cluster is not None:
        return _cluster_url(from_env_cluster, ENV_CLUSTER)
    return _cluster_url(CLUSTERS[0], names["cluster"])


def resolve_connection(
    *,
    app_id: object = None,
    app_token: object = None,
    oauth_token: object = None,
    cluster: object = None,
    base_url: object = None,
    environ: Mapping[str, str],
    names: Mapping[str, str] = PYTHON_NAMES,
) -> Connection:
    """The root URL and credentials that the arguments and ``environ`` name (see the
    module docstring for the rules); the client and the command line both use it.

    Raises:
        TypeError, ValueError: no credentials, both kinds, a credential that cannot
            be sent verbatim, both a cluster and a base URL (as arguments, or in the
            environment), an unknown cluster, or a base URL that is refused.

    ``names`` maps each argument's Python name to the way the caller spells it in
    messages (the command line: ``--app-id`` ...).
    """
    headers, kind = _auth(app_id, app_token, oauth_token, environ, names)
    return Connection(
        base_url=_root_url(base_url, cluster, environ, names), auth_headers=headers, auth_kind=kind
    )
