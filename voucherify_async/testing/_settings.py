"""The fake's knobs: :class:`FakeSettings`, attrs fields checked on every assignment.

:class:`~voucherify_async.testing.FakeVoucherify` inherits these fields, so
``fake.latency = 0.5`` runs the same converter and validator as
``FakeVoucherify(latency=0.5)``: a bad value raises ``TypeError`` or
``ValueError`` and leaves the old one in place. ``clock`` and ``seed`` are
read-only once set. Setting ``rate_limit`` (even to the same value) starts a
fresh window. Nothing here answers requests (see ``_answers``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

from voucherify_async.testing._clock import SYSTEM_CLOCK, Clock
from voucherify_async.testing._lifecycle import ActionOutcome, checked_duration, checked_outcome
from voucherify_async.testing._rate_limit import FixedWindow, checked_rate_limit

__all__ = ["FAKE_APP_ID", "FAKE_APP_TOKEN", "FakeSettings", "Order", "rate_window"]

#: The ``X-App-Id`` a :class:`FakeVoucherify` accepts by default.
FAKE_APP_ID = "fake-app-id"
#: The ``X-App-Token`` a :class:`FakeVoucherify` accepts by default.
FAKE_APP_TOKEN = "fake-app-token"  # noqa: S105 - a published test credential, not a secret

Order = Literal["newest_first", "shuffled"]

_FLAG = attrs.validators.instance_of(bool)


def _check_credential(_settings: object, field: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{field.name} must be a string or None, not {type(value).__name__}")


def _check_order(_settings: object, _field: attrs.Attribute[Any], value: object) -> None:
    if value not in ("newest_first", "shuffled"):
        raise ValueError(f"order must be 'newest_first' or 'shuffled', not {value!r}")


def _check_latency(_settings: object, _field: attrs.Attribute[Any], value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"latency must be finite and >= 0, not {value}")


def _check_default_limit(_settings: object, _field: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"default_limit must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"default_limit must be >= 1, not {value}")


def _action_duration(value: float) -> float:
    try:
        return checked_duration(value)
    except ValueError as exc:
        raise ValueError(f"action_duration: {exc}") from None


def _action_outcome(value: object) -> ActionOutcome:
    try:
        return checked_outcome(value)
    except ValueError as exc:
        raise ValueError(f"action_outcome: {exc}") from None


def _restart_window(
    settings: FakeSettings, _field: attrs.Attribute[Any], value: tuple[int, float] | None
) -> tuple[int, float] | None:
    """On every assignment of ``rate_limit``: a fresh window (or none)."""
    settings._rate_window = None if value is None else FixedWindow(*value)
    return value


def _first_window(settings: FakeSettings) -> FixedWindow | None:
    limit = settings.rate_limit
    return None if limit is None else FixedWindow(*limit)


@attrs.define(kw_only=True, eq=False)
class FakeSettings:
    """Every knob of :class:`FakeVoucherify` (its docstring says what each does).

    Usage: ``fake.latency = 0.2`` (checked at once).

    Raises:
        TypeError, ValueError: a value out of range, at construction or when set:
            ``order`` unknown, ``latency`` < 0 or not finite, ``default_limit`` < 1,
            ``rate_limit`` not ``None`` nor ``(int >= 1, seconds > 0)``,
            ``action_duration`` < 0, ``action_outcome`` unknown; ``app_id``,
            ``app_token``, ``oauth_token`` not a string or ``None``; a flag not a bool.
        attrs.exceptions.FrozenAttributeError: setting ``clock`` or ``seed``.
    """

    app_id: str | None = attrs.field(default=FAKE_APP_ID, validator=_check_credential)
    app_token: str | None = attrs.field(
        default=FAKE_APP_TOKEN, validator=_check_credential, repr=False
    )
    oauth_token: str | None = attrs.field(default=None, validator=_check_credential, repr=False)
    end_date_inclusive: bool = attrs.field(default=False, validator=_FLAG)
    send_has_more: bool = attrs.field(default=True, validator=_FLAG)
    order: Order = attrs.field(default="newest_first", validator=_check_order)
    shuffle_ties: bool = attrs.field(default=False, validator=_FLAG)
    latency: float = attrs.field(default=0.0, validator=_check_latency)
    default_limit: int = attrs.field(default=10, validator=_check_default_limit)
    rate_limit: tuple[int, float] | None = attrs.field(
        default=None,
        converter=checked_rate_limit,
        on_setattr=attrs.setters.pipe(attrs.setters.convert, _restart_window),
    )
    action_duration: float = attrs.field(default=1.0, converter=_action_duration)
    action_outcome: ActionOutcome = attrs.field(default="DONE", converter=_action_outcome)
    clock: Clock = attrs.field(default=SYSTEM_CLOCK, on_setattr=attrs.setters.frozen)
    seed: int = attrs.field(default=0, on_setattr=attrs.setters.frozen)
    _rate_window: FixedWindow | None = attrs.field(
        init=False,
        default=attrs.Factory(_first_window, takes_self=True),
        on_setattr=attrs.setters.NO_OP,
        repr=False,
    )


def rate_window(settings: FakeSettings) -> FixedWindow | None:
    """The window ``settings.rate_limit`` is counted in now (``None`` without a limit).

    A function, not a method, so that :class:`FakeVoucherify` (which inherits the
    settings) shows no more public names than its knobs.
    """
    return settings._rate_window
