"""Tests of ``voucherify_async._config``: ``Timeout`` and ``RetryPolicy``.

Both are frozen, keyword-only, validated value objects. ``RetryPolicy.decide`` makes
every retry decision; table-driven tests pin which statuses are retried and when it
gives up, hypothesis pins the full-jitter backoff bounds and ``instant()``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucherify_async._config import RETRYABLE_STATUSES, RetryPolicy, Timeout

BAD_NUMBERS: list[tuple[object, type[Exception]]] = [
    (True, TypeError),
    (False, TypeError),
    ("5", TypeError),
    ([5], TypeError),
    (-1, ValueError),
    (-0.5, ValueError),
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
]


# --- Timeout ------------------------------------------------------------------------------


def test_timeout_defaults_are_finite_limits() -> None:
    """``Timeout()`` bounds both the attempt and the connection."""
    timeout = Timeout()
    assert timeout.total is not None
    assert timeout.total > 0
    assert timeout.connect is not None
    assert timeout.connect > 0


@pytest.mark.parametrize("field", ["total", "connect"])
@pytest.mark.parametrize("value", [0.001, 1, 5.5, 3600, None])
def test_timeout_accepts_positive_seconds_or_none(field: str, value: float | None) -> None:
    """Any finite number of seconds > 0, or ``None`` (no limit), is accepted as given."""
    assert getattr(Timeout(**{field: value}), field) == value


@pytest.mark.parametrize("field", ["total", "connect"])
@pytest.mark.parametrize(("value", "error"), [*BAD_NUMBERS, (0, ValueError), (0.0, ValueError)])
def test_timeout_rejects_bools_non_numbers_and_non_positive_or_non_finite_values(
    field: str, value: object, error: type[Exception]
) -> None:
    """A bool or non-number is a ``TypeError``; 0, negatives, NaN and inf a ``ValueError``."""
    with pytest.raises(error, match=field):
        Timeout(**{field: value})


def test_timeout_is_keyword_only() -> None:
    """``Timeout(5)`` is refused: which limit would 5 be?"""
    with pytest.raises(TypeError):
        Timeout(5)  # type: ignore[misc]


def test_timeout_is_frozen() -> None:
    """Assigning a field raises ``FrozenInstanceError``."""
    timeout = Timeout(total=5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        timeout.total = 10  # type: ignore[misc]
    assert timeout.total == 5


def test_timeout_evolve_is_validated_too() -> None:
    """``attrs.evolve`` runs the validators again."""
    with pytest.raises(ValueError, match="total"):
        attrs.evolve(Timeout(), total=-1)


# --- RetryPolicy: construction ---------------------------------------------------------------


@pytest.mark.parametrize("field", ["backoff_initial", "backoff_max", "max_wait"])
@pytest.mark.parametrize(("value", "error"), BAD_NUMBERS)
def test_retry_policy_rejects_bad_durations(
    field: str, value: object, error: type[Exception]
) -> None:
    """Durations must be finite numbers of seconds, 0 or more, and not bools."""
    with pytest.raises(error, match=field):
        RetryPolicy(**{field: value})


@pytest.mark.parametrize("field", ["backoff_initial", "backoff_max", "max_wait"])
@pytest.mark.parametrize("value", [0, 0.0, 0.25, 10])
def test_retry_policy_accepts_durations_of_zero_or_more(field: str, value: float) -> None:
    """0 is a valid duration (no wait) and so is any finite positive number."""
    assert getattr(RetryPolicy(**{field: value}), field) == value


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (True, TypeError),
        (False, TypeError),
        (1.0, TypeError),
        ("3", TypeError),
        (None, TypeError),
        (-1, ValueError),
    ],
)
def test_retry_policy_rejects_bad_max_retries(value: object, error: type[Exception]) -> None:
    """``max_retries`` is an ``int`` (not a bool, not a float) of 0 or more."""
    with pytest.raises(error, match="max_retries"):
        RetryPolicy(max_retries=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, 1, 10])
def test_retry_policy_accepts_max_retries_of_zero_or_more(value: int) -> None:
    """0 disables retries; any other non-negative int is a retry budget."""
    assert RetryPolicy(max_retries=value).max_retries == value


def test_retry_policy_is_keyword_only_and_frozen() -> None:
    """Positional arguments are refused; assigning a field raises ``FrozenInstanceError``."""
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[misc]
    policy = RetryPolicy()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.max_retries = 10  # type: ignore[misc]
    assert policy.max_retries == 3


def test_retry_policy_evolve_is_validated_too() -> None:
    """``attrs.evolve`` runs the validators again."""
    with pytest.raises(ValueError, match="max_retries"):
        attrs.evolve(RetryPolicy(), max_retries=-1)


def test_retry_policy_statuses_become_a_frozenset() -> None:
    """``statuses`` given as any iterable is stored as a ``frozenset``."""
    assert RetryPolicy(statuses=[500, 503, 500]).statuses == frozenset({500, 503})  # type: ignore[arg-type]
    assert type(RetryPolicy(statuses={418}).statuses) is frozenset  # type: ignore[arg-type]


def test_default_retryable_statuses() -> None:
    """Timeouts, rate limits and server failures are retried by default."""
    assert frozenset({408, 429, 500, 502, 503, 504}) == RETRYABLE_STATUSES
    assert RetryPolicy().statuses == RETRYABLE_STATUSES


# --- RetryPolicy.decide -------------------------------------------------------------------------


def half() -> float:
    return 0.5


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, None])
def test_decide_retries_retryable_statuses_and_transport_failures(status: int | None) -> None:
    """408, 429, 500, 502, 503, 504 and ``status=None`` (no answer) are retried, with
    the jittered backoff of that attempt."""
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=100.0)
    assert policy.decide(0, status=status, rand=half) == pytest.approx(0.5)
    assert policy.decide(2, status=status, rand=half) == pytest.approx(2.0)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 418, 422, 501, 505, 599])
@pytest.mark.parametrize("retry_after", [None, 0.0, 1.0])
def test_decide_never_retries_other_statuses(status: int, retry_after: float | None) -> None:
    """A 400, 401, 403, 404, 422 (or any status outside ``statuses``) is final at once,
    even when the server names a wait."""
    assert RetryPolicy().decide(0, status=status, retry_after=retry_after, rand=half) is None


@pytest.mark.parametrize("max_retries", [0, 1, 3, 5])
def test_decide_gives_up_after_max_retries(max_retries: int) -> None:
    """Attempts ``0 .. max_retries - 1`` are followed by a retry; from ``max_retries``
    on, the answer is ``None`` (raise), also with a server-named wait."""
    policy = RetryPolicy(max_retries=max_retries)
    for attempt in range(max_retries):
        assert policy.decide(attempt, status=503, rand=half) is not None
        assert policy.decide(attempt, status=None, retry_after=1.0) == 1.0
    for attempt in range(max_retries, max_retries + 3):
        assert policy.decide(attempt, status=503, rand=half) is None
        assert policy.decide(attempt, status=None, rand=half) is None
        assert policy.decide(attempt, status=429, retry_after=1.0) is None


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (0.0, 0.0),
        (0.5, 0.5),
        (7.0, 7.0),
        (10.0, 10.0),
        (10.000001, None),
        (60.0, None),
        (math.inf, None),
    ],
)
def test_decide_honours_retry_after_up_to_max_wait(
    retry_after: float, expected: float | None
) -> None:
    """The server's wait is used as is (no jitter) up to ``max_wait`` inclusive; a
    longer one is not waited: ``None``, so the error is raised with ``retry_after``."""
    policy = RetryPolicy(max_wait=10.0, backoff_initial=100.0, backoff_max=100.0)
    assert policy.decide(0, status=429, retry_after=retry_after, rand=half) == expected
    assert policy.decide(1, status=503, retry_after=retry_after, rand=half) == expected


def test_decide_uses_custom_statuses() -> None:
    """``statuses`` replaces the defaults: 418 retried, 500 not."""
    policy = RetryPolicy(statuses={418})  # type: ignore[arg-type]
    assert policy.decide(0, status=418, rand=half) is not None
    assert policy.decide(0, status=500, rand=half) is None
    assert policy.decide(0, status=None, rand=half) is not None


def test_decide_without_rand_stays_within_the_backoff_ceiling() -> None:
    """With the default random source, waits are within ``[0, ceiling]``."""
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=3.0)
    waits = [policy.decide(attempt, status=503) for attempt in (0, 1, 2) for _ in range(50)]
    assert all(wait is not None and 0 <= wait <= 3.0 for wait in waits)
    assert len(set(waits)) > 1


# --- backoff: full jitter -------------------------------------------------------------------------

durations = st.just(0.0) | st.floats(1e-6, 1e6)
unit = st.floats(0, 1, exclude_max=True)


def ceiling(policy: RetryPolicy, attempt: int) -> float:
    """``min(backoff_max, backoff_initial * 2 ** attempt)``, computed exactly."""
    return float(min(Fraction(policy.backoff_max), Fraction(policy.backoff_initial) * 2**attempt))


@given(
    initial=durations,
    maximum=durations,
    attempt=st.integers(0, 2000),
    r=unit,
)
def test_backoff_is_full_jitter_up_to_the_capped_exponential(
    initial: float, maximum: float, attempt: int, r: float
) -> None:
    """``backoff(attempt)`` is ``rand() * min(backoff_max, backoff_initial * 2**attempt)``:
    within ``[0, ceiling]``, 0 when ``rand()`` is 0, and ``decide`` waits the same."""
    policy = RetryPolicy(backoff_initial=initial, backoff_max=maximum, max_retries=10_000)
    top = ceiling(policy, attempt)
    wait = policy.backoff(attempt, rand=lambda: r)
    assert 0 <= wait <= top
    assert wait == pytest.approx(top * r, rel=1e-9, abs=1e-12)
    assert policy.backoff(attempt, rand=lambda: 0.0) == 0
    assert policy.decide(attempt, status=503, rand=lambda: r) == wait


@given(initial=durations, maximum=durations, attempt=st.integers(0, 60))
def test_backoff_ceiling_doubles_until_the_cap(
    initial: float, maximum: float, attempt: int
) -> None:
    """The bound for the next attempt is twice this one's, until ``backoff_max``."""
    policy = RetryPolicy(backoff_initial=initial, backoff_max=maximum)
    almost_one = math.nextafter(1.0, 0.0)
    this = policy.backoff(attempt, rand=lambda: almost_one)
    following = policy.backoff(attempt + 1, rand=lambda: almost_one)
    assert following == pytest.approx(min(maximum * almost_one, 2 * this), rel=1e-9, abs=1e-12)


# --- instant() -----------------------------------------------------------------------


@given(
    max_retries=st.integers(0, 20),
    attempt=st.integers(0, 30),
    status=st.none() | st.sampled_from(sorted(RETRYABLE_STATUSES)) | st.integers(100, 599),
    retry_after=st.none() | st.floats(0, 1e6),
    r=unit,
)
def test_instant_policy_never_waits(
    max_retries: int, attempt: int, status: int | None, retry_after: float | None, r: float
) -> None:
    """``RetryPolicy.instant()`` answers 0 (retry now) or ``None`` (raise), never a wait;
    a server-named wait above 0 raises at once."""
    policy = RetryPolicy.instant(max_retries=max_retries)
    decision = policy.decide(attempt, status=status, retry_after=retry_after, rand=lambda: r)
    assert decision is None or decision == 0
    if retry_after is not None and retry_after > 0:
        assert decision is None
    retryable = status is None or status in RETRYABLE_STATUSES
    if attempt < max_retries and retryable and not retry_after:
        assert decision == 0


def test_instant_policy_keeps_the_retry_budget() -> None:
    """``instant()`` still retries (3 times by default) and gives up after."""
    policy = RetryPolicy.instant()
    assert policy.max_retries == 3
    assert [policy.decide(n, status=503) for n in range(5)] == [0, 0, 0, None, None]
    assert RetryPolicy.instant(max_retries=1).decide(1, status=503) is None


def test_config_objects_compare_and_hash_by_value() -> None:
    """Equal settings are equal and hash alike, so they can be shared and cached."""
    pairs: list[tuple[Any, Any]] = [
        (Timeout(total=5, connect=1), Timeout(total=5, connect=1)),
        (RetryPolicy(max_retries=2), RetryPolicy(max_retries=2)),
    ]
    for left, right in pairs:
        assert left == right
        assert hash(left) == hash(right)
    assert RetryPolicy(max_retries=2) != RetryPolicy(max_retries=3)


def test_decide_gives_up_when_the_wait_would_end_past_max_time() -> None:
    policy = RetryPolicy(max_wait=60, backoff_initial=1.0, backoff_max=1.0)
    assert policy.decide(0, status=503, retry_after=5, time_left=6) == 5
    assert policy.decide(0, status=503, retry_after=5, time_left=5) is None
    assert policy.decide(0, status=None, time_left=2, rand=lambda: 1.0) == 1.0
    assert policy.decide(0, status=None, time_left=0.5, rand=lambda: 1.0) is None
    assert policy.decide(0, status=None, time_left=None, rand=lambda: 1.0) == 1.0


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_decide_honours_retry_after_on_every_retryable_status(status: int) -> None:
    policy = RetryPolicy(max_wait=10)
    assert policy.decide(0, status=status, retry_after=7) == 7
    assert policy.decide(0, status=status, retry_after=11) is None


def test_max_time_is_a_positive_number_of_seconds_or_none() -> None:
    assert RetryPolicy().max_time == 120.0
    assert RetryPolicy(max_time=None).max_time is None
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="max_time"):
            RetryPolicy(max_time=bad)
    with pytest.raises(TypeError, match="max_time"):
        RetryPolicy(max_time="5")  # type: ignore[arg-type]
