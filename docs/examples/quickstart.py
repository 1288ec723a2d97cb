"""Quickstart: stream every async action from the fake server, then fetch one with its result.

Run it from a clone, with no account and no network:

    pip install . && python docs/examples/quickstart.py
"""

from __future__ import annotations

import asyncio
from collections import Counter

from voucherify_async import AsyncActionStatus, VoucherifyClient
from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN, FakeVoucherify, generate_actions


async def main() -> None:
    fake = FakeVoucherify(actions=generate_actions(2_000, seed=1))
    async with (
        fake,
        VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=fake.base_url) as client,
    ):
        # One page, as a web handler would fetch it.
        page = await client.list_async_actions(limit=5)
        print(f"newest {len(page.async_actions)} of the first page (has_more={page.has_more}):")
        for action in page.async_actions:
            print(f"  {action.created_at.isoformat()} {action.id} {action.type} {action.status}")

        # Every action, newest first, each exactly once, as a worker would stream them.
        stream = client.iter_async_actions(page_size=100)
        by_status: Counter[str] = Counter()
        last_failed = None
        async for action in stream:
            by_status[str(action.status)] += 1
            if last_failed is None and action.status == AsyncActionStatus.FAILED:
                last_failed = action
        print(f"streamed {stream.actions_yielded} actions in {stream.requests_made} requests:")
        for status, count in by_status.most_common():
            print(f"  {status:<12} {count}")

        # What the most recent failed action did.
        if last_failed is not None:
            details = await client.get_async_action(last_failed.id)
            assert details.result is not None
            print(f"most recent failure {details.id} ({details.type}): {details.result.message}")
            print(f"  done={details.result.done_count} failed={details.result.failed_count}")


if __name__ == "__main__":
    asyncio.run(main())
