"""Resume tokens: a stream's position as an opaque, versioned, URL-safe string.

Pure: imports neither aiohttp nor asyncio. A token holds what the time walk
(``_walk``) needs to go on right after the last action a stream yielded: the time
bound (``floor``), the ids already yielded at that bound, what was learned of the
API's ``end_date`` reading, whether the walk is over, and a digest of the stream's
parameters (``end_date``, ``since``), so that a token cannot be applied to another
walk. A checksum catches a damaged or edited token; it is not a signature (the
token only ever steers which of your own actions you list again).

Format: ``v1.<base64url JSON>.<base64url checksum>``. The public API calls a token a
"cursor" (``AsyncActionStream.cursor``, ``iter_async_actions(cursor=...)``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._walk import WalkPosition

__all__ = ["decode_token", "encode_token", "parameters_digest", "seal", "unseal"]

TOKEN_VERSION = "v1"  # noqa: S105  # a format version, not a secret


_SALTS = {
    TOKEN_VERSION: b"voucherify-async cursor v1\n",
    "scan1": b"voucherify-async scan cursor v1\n",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _checksum(version: str, raw: bytes) -> bytes:
    return hashlib.sha256(_SALTS[version] + raw).digest()[:12]


def seal(version: str, payload: Mapping[str, Any]) -> str:
    """``payload`` as a token of the format ``version`` (``v1``: a stream's, ``scan1``: a
    scan's): ``<version>.<base64url JSON>.<base64url checksum>``."""
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return f"{version}.{_b64(raw)}.{_b64(_checksum(version, raw))}"


def unseal(token: object, version: str, not_this_version: str) -> Any:
    """The JSON payload of a token made by :func:`seal` with ``version``.

    Raises:
        TypeError: ``token`` is not a string.
        ValueError: another version (the message is ``not_this_version``, with
            ``{start}`` the token's first characters), a damaged or edited token, or
            a payload that is not JSON.
    """
    if not isinstance(token, str):
        raise TypeError(f"cursor must be a str, not {type(token).__name__}")
    start, _, rest = token.partition(".")
    if start != version:
        raise ValueError(not_this_version.format(start=repr(start[:10])))
    body, _, check = rest.partition(".")
    try:
        raw = _unb64(body)
        valid = _unb64(check) == _checksum(version, raw)
    except (binascii.Error, ValueError):
        valid = False
    if not valid:
        raise ValueError("cursor token is damaged or was edited (its checksum does not match)")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"cursor token is not readable: {exc}") from None


def parameters_digest(end_date: datetime | None, since: datetime | None) -> str:
    """A short digest of the stream parameters a token belongs to."""
    parts = [moment.isoformat() if moment is not None else "" for moment in (end_date, since)]
    text = "end_date={};since={}".format(*parts)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(state: WalkPosition, parameters: str) -> str:
    """The token for ``state`` in a stream whose parameters digest to ``parameters``."""
    return seal(TOKEN_VERSION, {**state.portable(), "p": parameters})


def decode_token(token: object, parameters: str) -> WalkPosition:
    """Read a token made by :func:`encode_token` for a stream with the same parameters.

    Raises:
        TypeError: ``token`` is not a string.
        ValueError: not a token of this library (damaged, edited, or another
            version), or made for a stream with other ``end_date``/``since``.
    """
    payload = unseal(
        token,
        TOKEN_VERSION,
        f"cursor is not a {TOKEN_VERSION} cursor token of voucherify-async (it starts with "
        "{start})",
    )
    try:
        state, made_for = WalkPosition.from_portable(payload), payload["p"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cursor token is not readable: {exc}") from None
    if made_for != parameters:
        raise ValueError(
            "cursor token belongs to a stream with other parameters (end_date, since): "
            "resume with the same end_date and since it was made with"
        )
    return state
