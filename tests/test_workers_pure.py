"""Pure parts of the worker features: cursor tokens, range splitting, the rate-limit gate."""

from __future__ import annotations

import base64
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voucherify_async import RateLimit, VoucherifyClient
from voucherify_async._ratelimit import RateGate
from voucherify_async._split import first_walks
from voucherify_async._token import decode_token, encode_token, parameters_digest
from voucherify_async._walk import WalkPosition

T0 = datetime(2025, 6, 1, 12, 0, 0, 123000, tzinfo=UTC)
PARAMS = parameters_digest(None, None)


def state(**changes: object) -> WalkPosition:
    values: dict[str, object] = {
        "floor": T0,
        "seen": frozenset({"aa_1", "aa_2"}),
        "inclusive": True,
        "done": False,
        "requests_made": 0,
        "escalate": False,
    }
    values.update(changes)
    return WalkPosition(**values)  # type: ignore[arg-type]


@given(
    floor=st.none() | st.datetimes(timezones=st.just(UTC)),
    seen=st.frozensets(st.from_regex(r"aa_[0-9a-f]{18}", fullmatch=True), max_size=99),
    inclusive=st.sampled_from([None, True, False]),
    done=st.booleans(),
)
def test_a_token_round_trips_the_cursor_state(
    floor: datetime | None, seen: frozenset[str], inclusive: bool | None, done: bool
) -> None:
    original = state(floor=floor, seen=seen, inclusive=inclusive, done=done)
    token = encode_token(original, PARAMS)
    assert decode_token(token, PARAMS) == original


def test_a_token_is_versioned_and_url_safe() -> None:
    token = encode_token(state(), PARAMS)
    assert token.startswith("v1.")
    assert set(token) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def test_an_edited_token_is_refused() -> None:
    version, body, check = encode_token(state(), PARAMS).split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).replace(b"aa_1", b"aa_9")
    edited = ".".join([version, base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), check])
    with pytest.raises(ValueError, match="damaged or was edited"):
        decode_token(edited, PARAMS)


@pytest.mark.parametrize("token", ["", "v1", "v1..", "v2.abc.def", "garbage", "v1.@@@.###"])
def test_a_token_that_is_not_ours_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_token(token, PARAMS)


def test_a_token_of_other_parameters_is_refused() -> None:
    token = encode_token(state(), parameters_digest(T0, None))
    with pytest.raises(ValueError, match="other parameters"):
        decode_token(token, parameters_digest(None, None))
    with pytest.raises(ValueError, match="other parameters"):
        decode_token(token, parameters_digest(T0, T0 - timedelta(days=1)))


def test_a_token_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        decode_token(b"v1.x.y", PARAMS)


@given(
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    span_ms=st.integers(min_value=1, max_value=10**10),
    partitions=st.integers(min_value=1, max_value=64),
)
def test_a_new_scan_starts_with_walks_covering_the_range_disjoint_newest_first(
    start: datetime, span_ms: int, partitions: int
) -> None:
    stop = start + timedelta(milliseconds=span_ms)
    walks = first_walks(start, stop, partitions, now=stop)
    assert 1 <= len(walks) <= partitions
    assert walks[0].end == stop
    assert walks[-1].since == start
    for newer, older in itertools.pairwise(walks):
        assert older.end == newer.since  # contiguous, newest first: no gap, no overlap
        assert newer.since is not None
        assert newer.end is not None
        assert newer.since < newer.end


@pytest.mark.parametrize(
    ("partitions", "error"),
    [(0, ValueError), (65, ValueError), (True, TypeError), (2.0, TypeError)],
)
def test_scan_checks_partitions_at_once(partitions: object, error: type[Exception]) -> None:
    client = VoucherifyClient("a", "b")
    with pytest.raises(error, match="partitions"):
        client.scan_async_actions(
            since=T0,
            end_date=T0 + timedelta(days=1),
            partitions=partitions,  # type: ignore[arg-type]
        )


def test_scan_needs_since_before_end_date() -> None:
    with pytest.raises(ValueError, match="before"):
        VoucherifyClient("a", "b").scan_async_actions(since=T0, end_date=T0, partitions=4)


def test_the_gate_waits_until_the_reset_when_nothing_remains() -> None:
    gate = RateGate()
    gate.observe(200, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": "1000.5"}, wall=999.0)
    assert gate.reserve(monotonic=50.0, wall=999.0) == pytest.approx(1.5)
    assert gate.reserve(monotonic=52.0, wall=1001.0) == 0.0
    assert gate.blocked_until is None


def test_the_gate_does_not_wait_while_requests_remain() -> None:
    gate = RateGate()
    gate.observe(200, {"x-rate-limit-remaining": "5", "x-rate-limit-retry": "2000"}, wall=1000.0)
    assert gate.reserve(monotonic=0.0, wall=1000.0) == 0.0


def test_a_429_blocks_for_its_retry_after() -> None:
    gate = RateGate()
    headers = {"Retry-After": "3", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": "1100"}
    gate.observe(429, headers, wall=1000.0)
    assert gate.blocked_until == 1003.0


def test_unreadable_headers_are_ignored() -> None:
    gate = RateGate()
    gate.observe(200, {"X-Rate-Limit-Remaining": "none", "X-Rate-Limit-Retry": "x"}, wall=1.0)
    assert gate.reserve(monotonic=0.0, wall=1.0) == 0.0


def test_pacing_spaces_requests_evenly_whoever_asks() -> None:
    gate = RateGate(RateLimit(requests=10, per=1.0))
    waits = [gate.reserve(monotonic=100.0, wall=0.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])
    # Later, after the queue has drained, a request goes at once again.
    assert gate.reserve(monotonic=200.0, wall=0.0) == 0.0


def test_pacing_starts_after_a_block() -> None:
    gate = RateGate(RateLimit.per_second(2))
    gate.observe(200, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": "10"}, wall=9.0)
    assert gate.reserve(monotonic=0.0, wall=9.0) == pytest.approx(1.0)
    assert gate.reserve(monotonic=0.0, wall=9.0) == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"requests": 0}, ValueError),
        ({"requests": -1}, ValueError),
        ({"requests": float("inf")}, ValueError),
        ({"requests": True}, TypeError),
        ({"requests": 5, "per": 0}, ValueError),
    ],
)
def test_rate_limit_is_validated(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        RateLimit(**kwargs)  # type: ignore[arg-type]


def test_rate_limit_per_minute_and_interval() -> None:
    assert RateLimit.per_minute(120).interval == pytest.approx(0.5)
    assert RateLimit(requests=100, per=60).interval == pytest.approx(0.6)


def test_requests_in_flight_count_against_what_remains_of_the_window() -> None:
    """Eight tasks at once: an answer's Remaining does not count the requests sent before
    it came back, so the gate holds the next request once those would use it up."""
    gate = RateGate()
    headers = {"X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Retry": "1010"}
    assert gate.reserve(monotonic=0.0, wall=1000.0) == 0.0
    gate.observe(200, headers, wall=1000.1)  # 3 left; nothing in flight
    waits = [gate.reserve(monotonic=0.0, wall=1000.2) for _ in range(4)]
    assert waits == [0.0, 0.0, 0.0, pytest.approx(9.8)]  # the fourth waits for the window
    gate.observe(200, {**headers, "X-Rate-Limit-Remaining": "5"}, wall=1000.3)  # stale, higher
    assert gate.reserve(monotonic=0.0, wall=1000.3) == pytest.approx(9.7)
    # A new window: nothing is known of it until an answer says so.
    assert gate.reserve(monotonic=0.0, wall=1010.0) == 0.0


def test_a_request_never_answered_stops_counting_as_in_flight() -> None:
    def gate_with_one_lost() -> RateGate:
        gate = RateGate()
        gate.reserve(monotonic=0.0, wall=1000.0)  # its connection drops: no answer, ever
        gate.reserve(monotonic=0.0, wall=1000.0)
        headers = {"X-Rate-Limit-Remaining": "1", "X-Rate-Limit-Retry": "1100"}
        gate.observe(200, headers, wall=1000.0)
        return gate

    assert gate_with_one_lost().reserve(monotonic=0.0, wall=1001.0) == pytest.approx(99.0)
    assert gate_with_one_lost().reserve(monotonic=0.0, wall=1040.0) == 0.0
