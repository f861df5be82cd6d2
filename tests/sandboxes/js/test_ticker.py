"""The one timer a sandbox's runs share: moved only when a run needs it sooner, lapsing when idle."""

from __future__ import annotations

import asyncio

from fnbox.sandboxes.js.ticker import Ticker


def test_a_tick_due_later_than_asked_is_moved_sooner_and_one_due_sooner_is_kept() -> None:
    ticks: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ticker = Ticker(lambda: ticks.append(loop.time()))
        ticker.within(loop, 60.0)
        ticker.within(loop, 0.01)  # a run with a short deadline: sooner
        await asyncio.sleep(0.2)
        assert len(ticks) == 1
        ticker.within(loop, 0.01)
        ticker.within(loop, 60.0)  # already due sooner: kept, so no second timer
        await asyncio.sleep(0.2)
        assert len(ticks) == 2
        await asyncio.sleep(0.1)  # nothing asked since: it lapsed
        assert len(ticks) == 2

    asyncio.run(main())


def test_a_tick_asked_on_another_loop_moves_there() -> None:
    ticks: list[asyncio.AbstractEventLoop] = []
    ticker = Ticker(lambda: ticks.append(asyncio.get_running_loop()))

    async def arm(delay: float, wait: float) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        ticker.within(loop, delay)
        await asyncio.sleep(wait)
        return loop

    asyncio.run(arm(60.0, 0.0))  # left armed on a loop that is gone
    second = asyncio.run(arm(0.01, 0.2))
    assert ticks == [second]


def test_a_cancelled_ticker_does_not_tick_until_asked_again() -> None:
    ticks: list[float] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ticker = Ticker(lambda: ticks.append(loop.time()))
        ticker.within(loop, 0.01)
        ticker.cancel()
        await asyncio.sleep(0.05)
        assert ticks == []
        ticker.within(loop, 0.01)
        await asyncio.sleep(0.05)
        assert len(ticks) == 1

    asyncio.run(main())
