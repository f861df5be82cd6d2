"""The turn of a Python sandbox: handed over in order, runs coming back from a wait first."""

from __future__ import annotations

import threading
import time

from fnbox.sandboxes.python.turns import FairTurn


def _queue(turn: FairTurn, name: str, order: list[str], *, returning: bool = False) -> threading.Thread:
    def take() -> None:
        if turn.acquire(timeout=5, returning=returning):
            order.append(name)
            turn.release()

    thread = threading.Thread(target=take)
    thread.start()
    time.sleep(0.05)  # queued before the next one
    return thread


def test_new_runs_get_the_turn_in_the_order_they_asked_and_returning_ones_first():
    turn = FairTurn()
    assert turn.acquire(timeout=0)
    order: list[str] = []
    threads = [_queue(turn, f"new{i}", order) for i in range(3)]
    threads.append(_queue(turn, "back", order, returning=True))
    turn.release()
    for thread in threads:
        thread.join(5)
    assert order == ["back", "new0", "new1", "new2"]
    assert not turn.locked()


def test_a_wait_that_times_out_leaves_the_queue():
    turn = FairTurn()
    assert turn.acquire(timeout=0)
    assert not turn.acquire(timeout=0.05)
    assert not turn.acquire(timeout=0)
    turn.release()
    assert not turn.locked() and turn.acquire(timeout=0)


def test_runs_of_a_workspace_that_cannot_wait_queue_on_the_loop_not_on_threads():
    """Each queued run would hold a thread, with its stack under the worker's memory cap."""
    import asyncio

    from fnbox.sandboxes.base import FunctionSource, Limits
    from fnbox.sandboxes.languages import sandbox_factories
    from fnbox.sandboxes.pool import SandboxKey, SandboxPool

    def run_threads() -> int:
        return sum(thread.name.startswith("fnbox-python-") for thread in threading.enumerate())

    async def burst(workspace: str, code: str) -> tuple[int, int]:
        pool = SandboxPool(factories=sandbox_factories(), max_sandboxes=4, idle_timeout=60)
        key = SandboxKey(workspace, "python", "v1")
        sources = [FunctionSource("f", code)]
        limits = Limits(timeout=5, memory=64 << 20)
        try:
            before = run_threads()
            outcomes = await asyncio.gather(*(pool.run(key, sources, "f", {}, limits) for _ in range(64)))
            assert [outcome.result for outcome in outcomes] == [1] * 64
            return run_threads() - before, run_threads()
        finally:
            await pool.close()

    started, _ = asyncio.run(burst("busy", "return 1"))
    assert started <= 2
    # Runs that can wait overlap while they wait, each on a thread of its own.
    _, threads = asyncio.run(burst("napping", "import time\ntime.sleep(0.2)\nreturn 1"))
    assert threads >= 16
