"""The engine's lifetime: closing an isolate while V8's thread still has work, or still calls back."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path
from typing import Any

import py_mini_racer
import pytest

from fnbox.sandboxes.js import engine as js_engine
from fnbox.sandboxes.js import handoff
from fnbox.sandboxes.js.engine import Engine, EngineError

ROOT = Path(__file__).resolve().parents[3]
SHIM = Path(__file__).with_name("native") / "pause_eval.c"


def test_close_frees_only_once_the_tasks_already_posted_are_over() -> None:
    for _ in range(20):
        engine = Engine()
        answers: list[Any] = []
        for code in ("1 + 1", "for (let i = 0; i < 1e5; i++); 2", "while (true) {}", "3"):
            engine.start_eval(code, answers.append)
        engine.close(wait=5.0)
        assert engine._closed.is_set()
        assert engine._unpinned.is_set()  # the last eval's callback came before the freeing
        assert engine._thread is not None  # known from its first task


def test_close_frees_an_isolate_whose_left_behind_work_no_cancel_reaches() -> None:
    engine = Engine()
    assert engine.eval("Promise.resolve().then(() => { for (;;) {} }); 1", timeout=5.0) == 1
    engine.close(wait=5.0)  # the microtask spins on V8's thread: no task is running to cancel
    assert engine._closed.is_set()


def test_closed_engines_take_no_more_work() -> None:
    engine = Engine()
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.start_eval("1", lambda value: None)


class _MakesAnEngineAsTheSlotIsFreed:
    """`_handoff`, but an engine is made right as a slot is let go (as the spare blank's thread may)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.made: list[Engine] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._native, name)

    def close_slot(self, slot: int) -> None:
        # Take every free slot below this one first, so that the engine made next gets it.
        fillers = []
        while (filler := self._native.open_slot()) < slot:
            fillers.append(filler)
        self._native.close_slot(filler)
        self._native.close_slot(slot)
        self.made.append(Engine())
        for filler in fillers:
            self._native.close_slot(filler)


def test_an_engine_made_as_another_lets_go_of_its_slot_keeps_its_routes() -> None:
    assert handoff.native is not None
    first = Engine()
    wrapper = _MakesAnEngineAsTheSlotIsFreed(handoff.native)
    first._native = wrapper
    first.close(wait=5.0)
    [second] = wrapper.made
    try:
        assert second._slot == first._slot
        assert second.eval("6 * 7", timeout=5.0) == 42  # its callbacks still reach it
    finally:
        second.close()


def test_a_sealed_slot_hands_quiet_completions_to_python_and_frees_none() -> None:
    assert handoff.native is not None
    engine = Engine()
    try:
        dll = js_engine._load_v8()
        heard: list[Any] = []
        done = threading.Event()

        def on_done(value: Any) -> None:
            heard.append(value)
            done.set()

        engine.start_eval("1", on_done, quiet=True)
        assert not done.wait(0.2)  # unsealed, the C side frees a quiet success itself
        values = dll.mr_value_count(engine._ctx)
        handoff.native.seal(engine._slot)
        engine.start_eval("2", on_done, quiet=True)
        assert done.wait(5.0) and heard == [2]  # sealed: Python hears of it, and decodes it
        assert dll.mr_value_count(engine._ctx) == values  # (freed by Python, not by the C side)
    finally:
        engine.close()


def _build_shim(directory: Path) -> Path:
    shim = directory / "pause_eval.so"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    subprocess.run([*compiler, "-shared", "-fPIC", "-O2", "-o", str(shim), str(SHIM), "-ldl"], check=True)
    return shim


@pytest.mark.slow  # a compiler and a subprocess
def test_an_eval_just_begun_when_its_isolate_is_freed_does_not_crash_the_process(tmp_path: Path) -> None:
    # mini-racer's freeing does not wait for a task that has just started: that eval then
    # reads a context already taken apart (SIGSEGV on V8's thread). The shim holds each eval
    # there for 0.4 s, longer than the engine looks for a stuck thread (UNPIN_WAIT).
    script = """
import time
from fnbox.sandboxes.js.engine import Engine
engine = Engine()
engine.start_eval("1 + 1", lambda value: None)
time.sleep(0.05)  # V8's thread is in the eval, paused by the shim
engine.close(wait=5.0)
print("closed" if engine._closed.is_set() else "not closed")
"""
    library = Path(py_mini_racer.__file__).with_name("libmini_racer.so")
    env = {
        **os.environ,
        "LD_PRELOAD": str(_build_shim(tmp_path)),
        "MR_LIBRARY": str(library),
        "PAUSE_EVAL_US": "400000",
    }
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "pause_eval: pausing" in done.stderr  # the shim is in place
    assert (done.returncode, done.stdout) == (0, "closed\n"), done.stderr


def test_an_eval_async_cancelled_in_the_loop_turn_its_answer_comes_raises_cancelled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller was cancelled as the eval's answer came: it hears of the cancel, and does not go on."""
    waiting: list[asyncio.Task[Any]] = []
    resolve = js_engine.resolve

    def resolve_then_cancel(future: asyncio.Future[Any], value: Any) -> None:
        resolve(future, value)  # the answer, and the cancel in the same callback: one loop turn
        waiting.pop().cancel()

    monkeypatch.setattr(js_engine, "resolve", resolve_then_cancel)

    async def main() -> str:
        waiting.append(asyncio.create_task(engine.eval_async("6 * 7", timeout=30.0)))
        try:
            await waiting[0]
        except asyncio.CancelledError:
            return "cancelled"
        return "went on"

    engine = Engine()
    try:
        assert asyncio.run(main()) == "cancelled"
        assert not waiting  # the answer came, and the cancel with it
    finally:
        engine.close(wait=5.0)
