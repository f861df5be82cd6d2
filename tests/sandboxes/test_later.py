"""Callbacks due a fixed delay after each is armed, on one timer: in order, once, cancellable."""

from __future__ import annotations

import asyncio

from fnbox.sandboxes.later import FixedDelay


def test_callbacks_run_once_each_in_the_order_armed_and_a_cancelled_one_never() -> None:
    ran: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        later = FixedDelay(loop, 0.02)
        started = loop.time()
        later.arm(lambda: ran.append("a"))
        later.arm(lambda: ran.append("b")).cancel()
        await asyncio.sleep(0.01)
        later.arm(lambda: ran.append("c"))
        await asyncio.sleep(0.015)
        assert ran == ["a"]  # "c" is not due yet
        await asyncio.sleep(0.05)
        assert ran == ["a", "c"]
        assert loop.time() - started >= 0.02
        assert len(later) == 0  # nothing left armed, and no timer

    asyncio.run(main())


def test_a_failing_callback_costs_the_others_nothing() -> None:
    ran: list[int] = []
    errors: list[object] = []

    def fail() -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda loop, context: errors.append(context.get("exception")))
        later = FixedDelay(loop, 0.01)
        later.arm(fail)
        later.arm(lambda: ran.append(1))
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert ran == [1]
    assert len(errors) == 1 and isinstance(errors[0], RuntimeError)


def test_close_drops_what_is_armed() -> None:
    ran: list[int] = []

    async def main() -> None:
        later = FixedDelay(asyncio.get_running_loop(), 0.01)
        later.arm(lambda: ran.append(1))
        later.close()
        await asyncio.sleep(0.03)

    asyncio.run(main())
    assert ran == []
