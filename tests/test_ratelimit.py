"""``_ratelimit.RateGate``: a block the API asks for is honoured, never for longer
than ``max_wait``, and it clears (plain sync asserts; the clocks are passed in)."""

from __future__ import annotations

import pytest

from voucherify_async._ratelimit import RateGate

NOW = 1_700_000_000.0


def used_up(reset: str) -> dict[str, str]:
    return {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Retry": reset}


@pytest.mark.parametrize(
    "reset", [str(NOW + 10), str(int((NOW + 10) * 1000)), "10"], ids=["s", "ms", "delay"]
)
def test_a_reset_in_any_form_blocks_until_it(reset: str) -> None:
    gate = RateGate()
    gate.observe(200, used_up(reset), wall=NOW, max_wait=60)
    assert gate.blocked_for(wall=NOW + 4) == pytest.approx(6)
    assert gate.blocked_for(wall=NOW + 10) == 0.0
    assert gate.blocked_until is None


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (429, {"Retry-After": "9999999999"}),
        (200, used_up(str(int((NOW + 1e9) * 1000)))),
        (200, used_up(str(NOW + 1e9))),
    ],
)
def test_a_block_past_max_wait_is_forgotten_max_wait_after_it_was_seen(
    status: int, headers: dict[str, str]
) -> None:
    gate = RateGate()
    gate.observe(status, headers, wall=NOW, max_wait=30)
    assert gate.blocked_for(wall=NOW + 29) > 30  # the client refuses to wait that long
    assert gate.blocked_for(wall=NOW + 30) == 0.0
    assert gate.reserve(monotonic=0.0, wall=NOW + 31) == 0.0


def test_a_later_answer_with_requests_left_clears_the_block() -> None:
    gate = RateGate()
    gate.observe(429, {"Retry-After": "20"}, wall=NOW, max_wait=60)
    gate.observe(200, {"X-Rate-Limit-Remaining": "3"}, wall=NOW + 1, max_wait=60)
    assert gate.blocked_for(wall=NOW + 1) == 0.0
