"""Actions started on the fake, whose state follows the clock: :class:`ActionTimeline`.

This module owns the lifecycle of an action made by ``fake.start_action()`` or by
a start POST (``POST /v1/customers/metadata/async`` ...). Its state is a pure
function of the seconds elapsed since it started, for a ``duration`` D cut into
``steps + 1`` equal slots (``steps`` S)::

    elapsed   0 ......... D/(S+1) ....... 2D/(S+1) ... SD/(S+1) ........ D ......
    status    ENQUEUED    IN_PROGRESS     IN_PROGRESS  IN_PROGRESS       DONE or FAILED
    progress  0           100*1//(S+1)    100*2//(S+1) 100*S//(S+1)      100

- ``updated_at`` is the start of the current slot (the last change), and
  ``created_at + D`` once finished;
- ``processing_time`` (milliseconds, finished actions only) is D, so it equals
  ``updated_at - created_at`` as in :func:`generate_actions`;
- ``operation_status`` (bulk and metadata updates only) is ``UNKNOWN`` until the
  end, then ``SUCCESS`` (DONE) or ``FAILED`` (FAILED);
- ``result`` appears once finished, fixed when the action started.

:class:`LiveAction` binds a timeline to a clock so that it can sit in the store
next to plain actions; the server asks it for its state at one instant per request.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import attrs

from voucherify_async._models import AsyncActionStatus, OperationStatus
from voucherify_async.testing._clock import Clock
from voucherify_async.testing._generate import UPDATE_TYPES, make_result
from voucherify_async.testing._timestamps import format_timestamp

__all__ = ["ActionOutcome", "ActionTimeline", "LiveAction", "checked_duration", "checked_outcome"]

ActionOutcome = Literal["DONE", "FAILED"]
_OUTCOMES = ("DONE", "FAILED")
_ENQUEUED = AsyncActionStatus.ENQUEUED.value
_IN_PROGRESS = AsyncActionStatus.IN_PROGRESS.value
_UNKNOWN = OperationStatus.UNKNOWN.value
_FINISHED_OPERATION = {
    AsyncActionStatus.DONE.value: OperationStatus.SUCCESS.value,
    AsyncActionStatus.FAILED.value: OperationStatus.FAILED.value,
}


def checked_outcome(value: object) -> ActionOutcome:
    """``value`` if it is ``"DONE"`` or ``"FAILED"``.

    Raises:
        ValueError: any other value.
    """
    if value == "DONE":
        return "DONE"
    if value == "FAILED":
        return "FAILED"
    raise ValueError(f"outcome must be 'DONE' or 'FAILED', not {value!r}")


def checked_duration(value: float) -> float:
    """``value`` if it is a finite number of seconds >= 0.

    Raises:
        ValueError: ``value`` is negative or not finite.
    """
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"duration must be finite and >= 0, not {value}")
    return float(value)


@attrs.frozen(kw_only=True)
class ActionTimeline:
    """The whole course of one started action; :meth:`at` says where it stands."""

    id: str
    type: str
    request_id: str
    created_ms: int
    duration: float
    steps: int
    outcome: ActionOutcome
    result: Mapping[str, Any]

    @classmethod
    def start(
        cls,
        rng: random.Random,
        *,
        action_id: str,
        action_type: str,
        request_id: str,
        created_ms: int,
        duration: float,
        steps: int,
        outcome: str,
        result: Mapping[str, Any] | None,
    ) -> ActionTimeline:
        """A timeline starting at ``created_ms``; ``result`` ``None`` draws one from ``rng``.

        Raises:
            TypeError: ``action_type`` is not a string, ``steps`` not an integer, or
                ``result`` not a mapping.
            ValueError: ``action_type`` is empty, or not one of the 22 documented types
                while ``result`` is ``None``; ``duration`` negative or not finite;
                ``steps`` < 0; ``outcome`` neither ``"DONE"`` nor ``"FAILED"``.
        """
        if not isinstance(action_type, str):
            raise TypeError(f"type must be a string, not {type(action_type).__name__}")
        if not action_type:
            raise ValueError("type must not be empty")
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise TypeError(f"steps must be an int, not {type(steps).__name__}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, not {steps}")
        duration = checked_duration(duration)
        checked = checked_outcome(outcome)
        if result is not None and not isinstance(result, Mapping):
            raise TypeError(f"result must be a mapping, not {type(result).__name__}")
        if result is None:
            finished_ms = created_ms + _millis(duration)
            result = make_result(
                rng, action_type, failed=checked == "FAILED", finished_ms=finished_ms
            )
        return cls(
            id=action_id,
            type=action_type,
            request_id=request_id,
            created_ms=created_ms,
            duration=duration,
            steps=steps,
            outcome=checked,
            result=result,
        )

    def at(self, elapsed: float) -> dict[str, Any]:
        """The get body ``elapsed`` seconds after the start (see the module docstring)."""
        slots = self.steps + 1
        finished = elapsed >= self.duration
        if finished:
            status: str = self.outcome
            progress = 100
            updated_ms = self.created_ms + _millis(self.duration)
        else:
            slot = min(self.steps, math.floor(max(0.0, elapsed) * slots / self.duration))
            status = _IN_PROGRESS if slot else _ENQUEUED
            progress = 100 * slot // slots
            updated_ms = self.created_ms + _millis(self.duration * slot / slots)
        action: dict[str, Any] = {"id": self.id, "type": self.type, "status": status}
        if self.type in UPDATE_TYPES:
            action["operation_status"] = _FINISHED_OPERATION[status] if finished else _UNKNOWN
        if finished:  # where the vendor's examples put it
            action["result"] = self.result
        action["created_at"] = format_timestamp(self.created_ms)
        action["updated_at"] = format_timestamp(updated_ms)
        action["request_id"] = self.request_id
        action["progress"] = progress
        if finished:
            action["processing_time"] = _millis(self.duration)
        action["object"] = "async_action"
        return action


class LiveAction(Mapping[str, Any]):
    """A timeline bound to a clock: a mapping that reads as the action's state *now*.

    Reading it key by key takes the time on each read; the server calls :meth:`at`
    once per request instead, so one answer shows one instant.
    """

    def __init__(self, timeline: ActionTimeline, clock: Clock, started: float) -> None:
        self.timeline = timeline
        self._clock = clock
        self._started = started

    def at(self, monotonic_now: float) -> dict[str, Any]:
        """The action's get body at ``monotonic_now`` (on the bound clock)."""
        return self.timeline.at(monotonic_now - self._started)

    def now(self) -> dict[str, Any]:
        """The action's get body at the clock's current time."""
        return self.at(self._clock.monotonic())

    def __getitem__(self, key: str) -> Any:
        return self.now()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.now())

    def __len__(self) -> int:
        return len(self.now())

    def __repr__(self) -> str:
        return f"<LiveAction {self.now()!r}>"


def _millis(seconds: float) -> int:
    return round(seconds * 1000)
