"""The fake's data: an immutable, sorted snapshot of actions, and page selection. Pure.

A :class:`ActionStore` is built once per :meth:`FakeVoucherify.set_actions` /
``add_actions`` and then only read, so the server can swap in a new one while
requests are being served. Actions are kept newest first; actions created in the
same millisecond keep the order they were given in. ``created_at`` is indexed as a
list of negated milliseconds (ascending), so a page starts with one bisection:
``O(log n + limit)`` per request, whatever the size of the store.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import random
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from voucherify_async.testing._timestamps import timestamp_ms

__all__ = ["ActionStore", "list_body"]

Action = Mapping[str, Any]

# add_actions() inserts up to this many actions one by one, more by sorting again.
_INSERT_AT_MOST = 64


class Page(NamedTuple):
    """The actions of one list answer, newest first, and whether more match beyond them."""

    actions: list[Action]
    has_more: bool


class ActionStore:
    """Actions sorted newest first, indexed by ``created_at`` and by ``id``."""

    __slots__ = ("_actions", "_by_id", "_neg_ms")

    def __init__(self, actions: list[Action], neg_ms: list[int], by_id: dict[str, Action]) -> None:
        # Use ActionStore.build(): this trusts its arguments to be sorted and consistent.
        self._actions = actions
        self._neg_ms = neg_ms
        self._by_id = by_id

    @classmethod
    def build(cls, actions: Iterable[Action]) -> ActionStore:
        """Index ``actions`` (any order) into a new store.

        Each action must be a mapping with a string ``id`` and a ``created_at``
        timestamp of at most millisecond precision; everything else is served as
        given. The mappings are kept, not copied.

        Raises:
            TypeError: an action is not a mapping, or its ``id`` / ``created_at`` is
                not a string.
            ValueError: an ``id`` is repeated, or a ``created_at`` is not a timestamp.
        """
        neg_ms, items = _keyed(actions)
        neg_ms, items = _sorted(neg_ms, items)
        by_id = {action["id"]: action for action in items}
        if len(by_id) != len(items):
            seen: set[str] = set()
            for action in items:
                if action["id"] in seen:
                    raise ValueError(f"duplicate action id {action['id']!r}")
                seen.add(action["id"])
        return cls(items, neg_ms, by_id)

    def merged(self, actions: Iterable[Action], *, before_ties: bool = False) -> ActionStore:
        """A new store with this one's actions plus ``actions``.

        An added action sharing its millisecond with stored ones comes after them,
        or before them with ``before_ties`` (newest first: for one started action).

        Raises:
            TypeError: as for :meth:`build`.
            ValueError: as for :meth:`build`, also when an ``id`` is already stored.
        """
        new_neg_ms, new_items = _keyed(actions)
        by_id = self._by_id.copy()
        for action in new_items:
            if action["id"] in by_id:
                raise ValueError(f"duplicate action id {action['id']!r}")
            by_id[action["id"]] = action
        if len(new_items) > _INSERT_AT_MOST:
            if before_ties:
                neg_ms, items = _sorted(new_neg_ms + self._neg_ms, new_items + self._actions)
            else:
                neg_ms, items = _sorted(self._neg_ms + new_neg_ms, self._actions + new_items)
            return ActionStore(items, neg_ms, by_id)
        # A few actions: insert them into copies (C memmoves) rather than sort again.
        neg_ms = self._neg_ms.copy()
        items = self._actions.copy()
        for key, action in zip(new_neg_ms, new_items, strict=True):
            index = (bisect.bisect_left if before_ties else bisect.bisect_right)(neg_ms, key)
            neg_ms.insert(index, key)
            items.insert(index, action)
        return ActionStore(items, neg_ms, by_id)

    def __len__(self) -> int:
        return len(self._actions)

    def newest_first(self) -> list[Action]:
        """A new list of every stored action, newest first."""
        return list(self._actions)

    def get(self, action_id: str) -> Action | None:
        """The action with this ``id``, or ``None``."""
        return self._by_id.get(action_id)

    def page(
        self,
        *,
        limit: int,
        before_ms: int | None,
        shuffle_ties: random.Random | None = None,
    ) -> Page:
        """Up to ``limit`` newest actions created before ``before_ms`` (all when ``None``).

        ``has_more`` is true exactly when more actions match beyond the page. With
        ``shuffle_ties``, actions sharing a millisecond come in an order drawn from
        that generator, so a tie group cut by the end of the page contributes a
        random subset of itself, as from a server whose sort is not stable.
        """
        neg_ms = self._neg_ms
        start = 0 if before_ms is None else bisect.bisect_right(neg_ms, -before_ms)
        end = min(start + limit, len(neg_ms))
        if shuffle_ties is None:
            actions = self._actions[start:end]
        else:
            actions = self._shuffled_ties(start, end, shuffle_ties)
        return Page(actions, end < len(neg_ms))

    def _shuffled_ties(self, start: int, end: int, rng: random.Random) -> list[Action]:
        neg_ms = self._neg_ms
        # Take the whole tie group the page ends in, shuffle every group, cut back.
        stop = bisect.bisect_right(neg_ms, neg_ms[end - 1]) if end > start else end
        actions = self._actions[start:stop]
        group_start = 0
        for offset in range(1, len(actions) + 1):
            if offset == len(actions) or neg_ms[start + offset] != neg_ms[start + group_start]:
                if offset - group_start > 1:
                    group = actions[group_start:offset]
                    rng.shuffle(group)
                    actions[group_start:offset] = group
                group_start = offset
        del actions[end - start :]
        return actions


def list_body(actions: Iterable[Action], has_more: bool | None) -> dict[str, Any]:
    """The list call's JSON body: ``actions`` without their ``result``.

    ``has_more`` is left out of the body when ``None`` (as older API versions did).
    """
    body: dict[str, Any] = {
        "object": "list",
        "data_ref": "async_actions",
        "async_actions": [
            {key: value for key, value in action.items() if key != "result"} for action in actions
        ],
    }
    if has_more is not None:
        body["has_more"] = has_more
    return body


def _sorted(neg_ms: list[int], items: list[Action]) -> tuple[list[int], list[Action]]:
    """Both lists reordered by ``neg_ms``, stably (ties keep their order)."""
    if all(map(operator.le, neg_ms, itertools.islice(neg_ms, 1, None))):
        return neg_ms, items  # already sorted, as generate_actions() makes them
    order = sorted(range(len(neg_ms)), key=neg_ms.__getitem__)
    return [neg_ms[i] for i in order], [items[i] for i in order]


def _keyed(actions: Iterable[Action]) -> tuple[list[int], list[Action]]:
    """The sort key of each action, ``-created_at`` in milliseconds, and the actions.

    Raises:
        TypeError: an action is not a mapping, or ``id`` / ``created_at`` is no string.
        ValueError: a ``created_at`` is not a timestamp.
    """
    neg_ms: list[int] = []
    items: list[Action] = []
    for action in actions:
        if not isinstance(action, Mapping):
            raise TypeError(f"an action must be a mapping, not {type(action).__name__}")
        action_id = action.get("id")
        created_at = action.get("created_at")
        if not isinstance(action_id, str) or not isinstance(created_at, str):
            raise TypeError(f"an action needs a string 'id' and 'created_at': {action!r:.200}")
        try:
            neg_ms.append(-timestamp_ms(created_at))
        except ValueError as exc:
            raise ValueError(f"action {action_id!r}: bad created_at: {exc}") from exc
        items.append(action)
    return neg_ms, items
