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
