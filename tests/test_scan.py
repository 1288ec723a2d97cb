"""scan_async_actions over real HTTP against the fake: rebalancing, an optional since and
end_date, resuming from the scan's token after a crash (also of a real process), stopping
cleanly, and staying within the rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from voucherify_async import (
    AsyncActionScan,
    ClientClosedError,
    RetryPolicy,
    VoucherifyClient,
    VoucherifyError,
)
from voucherify_async.testing import (
    FAKE_APP_ID,
    FAKE_APP_TOKEN,
    FakeVoucherify,
    Fault,
    generate_actions,
)

ROOT = Path(__file__).resolve().parent.parent


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def history(
    count: int, *, seed: int = 3, burst: float = 0.0, newest: datetime | None = None
) -> list[dict[str, Any]]:
    """``count`` actions over 30 days, newest first; ``burst`` of them in the newest 5%."""
    rng = random.Random(seed)
    newest = newest or datetime(2026, 1, 1, tzinfo=UTC)
    span = 30 * 86_400_000
    dense = int(count * burst)
    offsets = sorted(
        [rng.randrange(span // 20) for _ in range(dense)]
        + [rng.randrange(span) for _ in range(count - dense)]
    )
    for index in range(1, len(offsets)):
        if rng.random() < 0.1:
            offsets[index] = offsets[index - 1]  # ties
    actions = generate_actions(count, seed=seed, newest=newest)
    for action, offset in zip(actions, offsets, strict=True):
        action["created_at"] = stamp(newest - timedelta(milliseconds=offset))
    return actions


def created(action: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(action["created_at"])


def ids(actions: list[dict[str, Any]]) -> set[str]:
    return {action["id"] for action in actions}


def client_for(fake: FakeVoucherify, **kwargs: Any) -> VoucherifyClient:
    kwargs.setdefault("retry", RetryPolicy.instant(max_retries=3))
    return VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=fake.base_url, **kwargs)


def probes(fake: FakeVoucherify) -> int:
    return sum(1 for r in fake.requests if r.query.get("limit") == "1")


# --- rebalancing, since and end_date --------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("inclusive", [False, True], ids=["exclusive", "inclusive"])
async def test_a_burst_is_split_among_the_walks_and_every_action_comes_once(
    inclusive: bool,
) -> None:
    """80% of the actions in the newest 5% of the range: the walks that finish early split
    the busy one, and still no action is lost or repeated."""
    actions = history(3000, burst=0.8)
    fake = FakeVoucherify(actions=actions, end_date_inclusive=inclusive, shuffle_ties=True)
    since, end = created(actions[-1]), created(actions[0]) + timedelta(milliseconds=1)
    async with fake, client_for(fake) as client:
        scan = client.scan_async_actions(since=since, end_date=end, partitions=6, page_size=50)
        got = [a.id async for a in scan]
    assert len(got) == len(set(got)), "an action came twice"
    assert set(got) == ids(actions), "an action was lost"
    assert scan.splits >= 3, "the busy walk was not split"
    sequential_pages = -(-len(actions) // 50)
    assert scan.requests_made <= 1.3 * sequential_pages + 6


@pytest.mark.asyncio
async def test_without_since_the_scan_covers_the_whole_history_found_with_a_few_probes() -> None:
    actions = history(1500, seed=5)
    fake = FakeVoucherify(actions=actions)
    async with fake, client_for(fake) as client:
        scan = client.scan_async_actions(partitions=4, page_size=50)
        got = [a.id async for a in scan]
    assert len(got) == len(set(got))
    assert set(got) == ids(actions)
    assert 0 < probes(fake) <= 30, "the beginning is found with a few limit=1 requests"
    walked = len(fake.requests) - probes(fake)
    assert walked <= 1.3 * (len(actions) / 50) + 8, "the history was not walked twice"


@pytest.mark.asyncio
async def test_one_partition_without_since_walks_the_history_without_probing_it() -> None:
    """One walk cannot be split: where the history begins does not matter to it."""
    actions = history(300, seed=8)
    fake = FakeVoucherify(actions=actions)
    async with fake, client_for(fake) as client:
        got = [a.id async for a in client.scan_async_actions(partitions=1, page_size=100)]
    assert sorted(got) == sorted(ids(actions))
    assert probes(fake) == 0
    assert len(fake.requests) == 4


@pytest.mark.asyncio
async def test_without_end_date_the_scan_ends_at_the_newest_action_weeks_ago() -> None:
    newest = datetime.now(UTC) - timedelta(days=21)
    actions = history(1200, seed=6, newest=newest)
    fake = FakeVoucherify(actions=actions)
    async with fake, client_for(fake) as client:
        scan = client.scan_async_actions(since=created(actions[-1]), partitions=5, page_size=40)
        got = [a.id async for a in scan]
    assert len(got) == len(set(got))
    assert set(got) == ids(actions)


@pytest.mark.asyncio
async def test_since_and_end_date_bound_the_scan_ties_at_the_edges_included() -> None:
    actions = history(800, seed=7)
    since = created(actions[600])
    end = created(actions[100])
    fake = FakeVoucherify(actions=actions, shuffle_ties=True)
    async with fake, client_for(fake) as client:
        got = [a.id async for a in client.scan_async_actions(since=since, end_date=end)]
    expected = {a["id"] for a in actions if since <= created(a) < end}
    assert len(got) == len(set(got))
    assert set(got) == expected


# --- resuming from the token ------------------------------------------------------------


ACTIONS = history(900, seed=9, burst=0.5)
SINCE = created(ACTIONS[-1])


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(12))
async def test_crashes_at_random_points_then_resuming_yields_the_rest_exactly_once(
    seed: int,
) -> None:
    """A worker that stops (a break, a cancellation, an error, a closed client) at random
    points and starts again from the scan's token, in a new client with other partitions
    and page sizes, yields every action exactly once in the end."""
    rng = random.Random(seed)
    fake = FakeVoucherify(
        actions=ACTIONS,
        end_date_inclusive=rng.random() < 0.5,
        shuffle_ties=True,
        latency=rng.choice([0.0, 0.002]),
    )
    fake.faults.random(rate=rng.choice([0.0, 0.1]), kinds=[Fault.status(503)], seed=seed)
    seen: list[str] = []
    token: str | None = None
    async with fake:
        for _restart in range(60):
            client = client_for(fake, retry=RetryPolicy.instant(max_retries=rng.randint(0, 2)))
            scan = client.scan_async_actions(
                since=SINCE,
                partitions=rng.randint(1, 9),
                page_size=rng.randint(5, 100),
                cursor=token,
            )
            budget = rng.randint(1, 250)
            how = rng.choice(["break", "cancel", "close"])

            async def consume(scan: AsyncActionScan = scan) -> None:
                nonlocal budget
                async for action in scan:
                    seen.append(action.id)
                    budget -= 1
                    if budget == 0:
                        break

            finished = False
            task = asyncio.ensure_future(consume())
            with contextlib.suppress(VoucherifyError, asyncio.CancelledError):
                if how == "cancel":
                    await asyncio.sleep(rng.random() * 0.05)
                    task.cancel()
                await task
                finished = budget > 0
            token = scan.cursor
            if how == "close":
                await client.close()
            else:
                await scan.aclose()
                await client.close()
            if finished:
                break
        fake.faults.clear()
        async with client_for(fake) as client:
            seen += [a.id async for a in client.scan_async_actions(since=SINCE, cursor=token)]
    assert len(seen) == len(set(seen)), "an action was repeated across the restarts"
    assert set(seen) == ids(ACTIONS), "an action was lost across the restarts"


@pytest.mark.asyncio
async def test_the_token_of_a_finished_scan_resumes_to_nothing() -> None:
    fake = FakeVoucherify(actions=ACTIONS)
    async with fake, client_for(fake) as client:
        scan = client.scan_async_actions(since=SINCE, partitions=4)
        assert len([a async for a in scan]) == len(ACTIONS)
        before = len(fake.requests)
        rest = [a async for a in client.scan_async_actions(since=SINCE, cursor=scan.cursor)]
    assert rest == []
    assert len(fake.requests) == before


@pytest.mark.asyncio
async def test_a_token_from_a_scan_with_other_arguments_is_refused_before_any_request(
    mock_api: aioresponses,
) -> None:
    async with VoucherifyClient("a", "b") as client:
        scan = client.scan_async_actions(since="2025-01-01T00:00:00Z")
        token = scan.cursor
        with pytest.raises(ValueError, match="other arguments"):
            client.scan_async_actions(since="2025-01-02T00:00:00Z", cursor=token)
        with pytest.raises(ValueError, match="other arguments"):
            client.scan_async_actions(
                since="2025-01-01T00:00:00Z", end_date="2025-02-01T00:00:00Z", cursor=token
            )
        with pytest.raises(ValueError, match="scan cursor"):
            client.scan_async_actions(
                since="2025-01-01T00:00:00Z", cursor=client.iter_async_actions().cursor
            )
        with pytest.raises(ValueError, match="damaged"):
            client.scan_async_actions(since="2025-01-01T00:00:00Z", cursor=token[:-3] + "AAA")
        await scan.aclose()
    assert not mock_api.requests


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from voucherify_async import VoucherifyClient
    from voucherify_async.testing import FAKE_APP_ID, FAKE_APP_TOKEN

    async def main(base_url, since, log_path, token):
        async with VoucherifyClient(FAKE_APP_ID, FAKE_APP_TOKEN, base_url=base_url) as client:
            scan = client.scan_async_actions(since=since, partitions=6, page_size=20,
                                             cursor=token or None)
            with open(log_path, "a", encoding="utf-8") as log:
                async for action in scan:
                    # One line per action: its id and the token after it, written at once.
                    log.write(f"{action.id} {scan.cursor}\\n")
                    log.flush()
                    await asyncio.sleep(0.001)

    asyncio.run(main(*sys.argv[1:4], sys.argv[4] if len(sys.argv) > 4 else ""))
    """
)


def test_a_worker_process_killed_midway_resumes_from_its_last_token(
    fake_voucherify: FakeVoucherify, tmp_path: Path
) -> None:
    """A real process, killed (SIGKILL) while its walks have requests in flight, and a
    second one started from the last token it wrote: every action exactly once."""
    fake_voucherify.set_actions(ACTIONS)
    fake_voucherify.latency = 0.003
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    log = tmp_path / "log.txt"
    command = [sys.executable, str(script), fake_voucherify.base_url, SINCE.isoformat(), str(log)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=environment)  # noqa: S603  # our own script
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not log.exists() or log.read_text(encoding="utf-8").count("\n") < 150
    ):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    lines = [line for line in log.read_text(encoding="utf-8").split("\n")[:-1] if line]
    assert 150 <= len(lines) < len(ACTIONS), "the worker was not killed midway"
    seen = [line.split(" ")[0] for line in lines]
    token = lines[-1].split(" ")[1]
    log.unlink()
    second = subprocess.run(  # noqa: S603  # our own script
        [*command, token], env=environment, timeout=120, check=True
    )
    assert second.returncode == 0
    seen += [line.split(" ")[0] for line in log.read_text(encoding="utf-8").splitlines()]
    assert len(seen) == len(set(seen)), "an action was repeated after the kill"
    assert set(seen) == ids(ACTIONS), "an action was lost after the kill"


# --- stopping cleanly -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_closing_the_client_ends_a_scan_consumer_with_client_closed_error() -> None:
    fake = FakeVoucherify(actions=ACTIONS, latency=0.05)
    async with fake:
        client = client_for(fake)
        scan = client.scan_async_actions(since=SINCE, partitions=4, page_size=10)
        got: list[str] = []
        started = asyncio.Event()

        async def consume() -> None:
            async for action in scan:
                got.append(action.id)
                started.set()

        task = asyncio.ensure_future(consume())
        await started.wait()
        await client.close()
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(task, timeout=10)
        assert not client._in_flight


@pytest.mark.asyncio
async def test_closing_the_client_after_every_page_arrived_still_ends_the_consumer() -> None:
    """Every page fetched and waiting, no request in flight: the consumer still learns at
    its next page that the client was closed, instead of going on as if nothing happened."""
    fake = FakeVoucherify(actions=ACTIONS[:60])
    async with fake:
        client = client_for(fake)
        scan = client.scan_async_actions(since=created(ACTIONS[59]), partitions=8, page_size=10)
        got = [(await scan.__anext__()).id]
        for _ in range(200):
            if not client._in_flight:
                break
            await asyncio.sleep(0.01)
        assert not client._in_flight, "the walks did not finish"
        await client.close()

        async def consume() -> None:
            async for action in scan:
                got.append(action.id)

        with pytest.raises(ClientClosedError):
            await consume()
    assert len(got) < 60


@pytest.mark.asyncio
async def test_a_scan_dropped_after_a_break_leaves_no_task_and_no_page() -> None:
    """60 scans abandoned by a break, then dropped: once their requests end, no task
    runs and nothing holds their pages."""
    # The fake in a thread of its own: every task of this event loop is the client's.
    with FakeVoucherify(actions=ACTIONS, latency=0.01).run_in_thread() as fake:
        async with client_for(fake) as client:
            baseline = len(asyncio.all_tasks())
            engines = []
            for _ in range(60):
                scan = client.scan_async_actions(since=SINCE, partitions=6, page_size=20)
                async for _action in scan:
                    break
                engines.append(weakref.ref(scan._engine))
                del scan
            gc.collect()
            for _ in range(500):
                if len(asyncio.all_tasks()) <= baseline and not client._in_flight:
                    break
                await asyncio.sleep(0.01)
            gc.collect()
            assert len(asyncio.all_tasks()) <= baseline, "a walk is still running"
            assert not client._in_flight
            assert all(engine() is None for engine in engines), "pages are still held"


@pytest.mark.asyncio
async def test_a_second_task_iterating_the_same_scan_gets_runtime_error_at_once() -> None:
    fake = FakeVoucherify(actions=ACTIONS, latency=0.01)
    async with fake, client_for(fake) as client:
        scan = client.scan_async_actions(since=SINCE, partitions=4, page_size=30)
        first = asyncio.ensure_future(scan.__anext__())
        await asyncio.sleep(0)  # the first task waits for a page
        with pytest.raises(RuntimeError, match="another task"):
            await scan.__anext__()
        got = [(await first).id]
        errors = 0

        async def competitor() -> None:
            nonlocal errors
            for _ in range(200):
                with contextlib.suppress(StopAsyncIteration):
                    try:
                        got.append((await scan.__anext__()).id)
                    except RuntimeError:
                        errors += 1
                await asyncio.sleep(0)

        async def main_consumer() -> None:
            async for action in scan:
                got.append(action.id)

        await asyncio.gather(main_consumer(), competitor())
    assert len(got) == len(set(got)), "an action came twice"
    assert set(got) == ids(ACTIONS), "an action was lost"


# --- the rate limit -------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("partitions", [8, 16])
async def test_many_walks_stay_within_the_rate_limit(partitions: int) -> None:
    """Against a server enforcing 40 requests a second and sending the vendor's headers,
    no error surfaces and at most 2% of the requests collect a 429."""
    fake = FakeVoucherify(actions=ACTIONS, rate_limit=(40, 1.0), latency=0.005)
    async with fake, client_for(fake, retry=RetryPolicy(max_retries=3, max_wait=5)) as client:
        scan = client.scan_async_actions(since=SINCE, partitions=partitions, page_size=5)
        got = [a.id async for a in scan]
    assert set(got) == ids(ACTIONS)
    assert len(got) == len(set(got))
    limited = [r for r in fake.requests if r.rate_limited]
    assert len(fake.requests) > 120, "the scan did not cross several windows"
    assert len(limited) <= 0.02 * len(fake.requests), f"{len(limited)} of {len(fake.requests)}"


# --- the worker recipe of docs/workers.md -------------------------------------------------


def test_the_scan_recipe_crashes_resumes_and_handles_every_action_once(tmp_path: Path) -> None:
    """The recipe of docs/workers.md, as printed, as a process of its own against
    ``voucherify-async fake-server``: it crashes midway, resumes from the stored cursor,
    and ends with every action of the server handled exactly once."""
    text = (ROOT / "docs" / "workers.md").read_text(encoding="utf-8")
    recipe = text.split("<!-- test: scan recipe -->\n```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "scan_worker.py"
    script.write_text(recipe, encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("VOUCHERIFY_")}
    environment["PYTHONPATH"] = str(ROOT)
    server = subprocess.Popen(  # this interpreter, our own command
        [sys.executable, "-m", "voucherify_async", "fake-server", "--actions", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        environment.update(
            VOUCHERIFY_APP_ID=FAKE_APP_ID,
            VOUCHERIFY_APP_TOKEN=FAKE_APP_TOKEN,
            VOUCHERIFY_API_URL=url,
        )
        for _ in range(3):
            result = subprocess.run(  # noqa: S603  # the documented program
                [sys.executable, "-W", "error", str(script)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
                env=environment,
            )
            assert result.returncode == 0, result.stderr
            assert "crashed (the worker dies)" in result.stdout, result.stdout
            assert "3000 actions, 0 handled twice" in result.stdout, result.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
        assert server.stdout is not None
        assert server.stderr is not None
        server.stdout.close()
        server.stderr.close()


def test_the_scan_benchmark_runs(tmp_path: Path) -> None:
    """``docs/benchmarks/scan.py --quick``: the three histories, both partition counts,
    every action counted, the table printed and the plot drawn (nothing here is timed)."""
    pytest.importorskip("matplotlib", reason="the plot needs the bench extra")
    result = subprocess.run(  # noqa: S603  # our own script, with this interpreter
        [
            sys.executable,
            str(ROOT / "docs" / "benchmarks" / "scan.py"),
            "--quick",
            "--plot",
            str(tmp_path / "scan.png"),
            "--json",
            str(tmp_path / "scan.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    for history_name in ("even", "burst", "stale"):
        assert f"| {history_name} | 8 |" in result.stdout
        assert f"| {history_name} | 16 |" in result.stdout
    assert (tmp_path / "scan.png").stat().st_size > 0
