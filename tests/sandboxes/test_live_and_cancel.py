"""Live logs (`on_log`) and cancellation through both pools, with the real sandboxes of both
languages: in process (SandboxPool) and in worker processes (WorkerPool)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fnbox.sandboxes import protocol
from fnbox.sandboxes.base import FunctionSource, Limits, LogEntry
from fnbox.sandboxes.languages import sandbox_factories
from fnbox.sandboxes.pool import Pool, SandboxKey, SandboxPool
from fnbox.sandboxes.supervisor import WorkerOptions, WorkerPool

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

LIMITS = Limits(timeout=10.0, memory=64 << 20)

FUNCTIONS = {
    "javascript": {
        "talk": "console.log('a'); await new Promise((r) => setTimeout(r, 400)); console.warn('b'); return 'done';",
        "spin": "while (true) {}",
        "nap": "await new Promise((r) => setTimeout(r, 60000));",
        "count": "cache.n = (cache.n || 0) + 1; return cache.n;",
    },
    "python": {
        "talk": (
            "import time\nprint('a')\nend = time.monotonic() + 0.4\nwhile time.monotonic() < end:\n    pass\n"
            "log.warning('b')\nreturn 'done'"
        ),
        "spin": "while True:\n    pass",
        "nap": "import time\ntime.sleep(60)",
        "count": "cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']",
    },
}


def sources(language: str) -> list[FunctionSource]:
    return [FunctionSource(name, code) for name, code in FUNCTIONS[language].items()]


@contextlib.asynccontextmanager
async def started_pool(kind: str, language: str) -> AsyncIterator[Pool]:
    pool: Any
    if kind == "in-process":
        pool = SandboxPool(factories=sandbox_factories(), max_sandboxes=10, idle_timeout=60)
    else:
        pool = WorkerPool(WorkerOptions(workers=1, languages=(language,), python_modules=("time",)))
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


def scenario(kind: str, language: str, body: Any) -> Any:
    async def main() -> Any:
        async with started_pool(kind, language) as pool:
            return await body(pool)

    return asyncio.run(main())


KINDS = pytest.mark.parametrize("kind", ["in-process", "workers"])
LANGUAGES = pytest.mark.parametrize("language", ["javascript", "python"])


@KINDS
@LANGUAGES
def test_on_log_gets_each_entry_while_the_run_goes_on(kind: str, language: str) -> None:
    key = SandboxKey("w", language, "v1")

    async def body(pool: Pool) -> Any:
        await pool.run(key, sources(language), "count", {}, LIMITS)  # warm
        seen: list[tuple[float, LogEntry]] = []
        started = time.monotonic()
        result = await pool.run(
            key, sources(language), "talk", {}, LIMITS, on_log=lambda e: seen.append((time.monotonic() - started, e))
        )
        return seen, result, time.monotonic() - started

    seen, result, took = scenario(kind, language, body)
    assert result.result == "done"
    assert [(e["level"], e["message"]) for _, e in seen] == [("info", "a"), ("warn", "b")]
    assert [e for _, e in seen] == result.logs
    assert took - seen[0][0] > 0.25  # 'a' came well before the end (the function waits 0.4 s after it)


@KINDS
@LANGUAGES
def test_a_cancelled_busy_loop_stops_and_both_workspaces_run_on(kind: str, language: str) -> None:
    key, other = SandboxKey("w", language, "v1"), SandboxKey("other", language, "v1")

    async def body(pool: Pool) -> Any:
        pids = pool.worker_pids(language) if isinstance(pool, WorkerPool) else []
        first = (await pool.run(key, sources(language), "count", {}, LIMITS)).result
        spin = asyncio.create_task(pool.run(key, sources(language), "spin", {}, LIMITS))
        await asyncio.sleep(0.3)
        cancelled = time.monotonic()
        spin.cancel()
        with pytest.raises(asyncio.CancelledError):
            await spin
        stopped = time.monotonic() - cancelled
        again = (await asyncio.wait_for(pool.run(key, sources(language), "count", {}, LIMITS), 1.0)).result
        elsewhere = (await pool.run(other, sources(language), "count", {}, LIMITS)).result
        same_pids = pids == (pool.worker_pids(language) if isinstance(pool, WorkerPool) else [])
        return first, stopped, again, elsewhere, same_pids

    first, stopped, again, elsewhere, same_pids = scenario(kind, language, body)
    assert stopped < 1.0
    assert (first, again, elsewhere) == (1, 2, 1)  # the sandbox was kept, with its cache
    assert same_pids  # no worker was restarted


@KINDS
@LANGUAGES
def test_a_cancelled_wait_stops(kind: str, language: str) -> None:
    key = SandboxKey("w", language, "v1")

    async def body(pool: Pool) -> Any:
        await pool.run(key, sources(language), "count", {}, LIMITS)
        nap = asyncio.create_task(pool.run(key, sources(language), "nap", {}, LIMITS))
        await asyncio.sleep(0.3)
        cancelled = time.monotonic()
        nap.cancel()
        with pytest.raises(asyncio.CancelledError):
            await nap
        stopped = time.monotonic() - cancelled
        return stopped, (await asyncio.wait_for(pool.run(key, sources(language), "count", {}, LIMITS), 1.0)).result

    stopped, count = scenario(kind, language, body)
    assert stopped < 1.0 and count == 2


@KINDS
@LANGUAGES
def test_a_cancelled_call_still_queued_never_runs(kind: str, language: str) -> None:
    key = SandboxKey("w", language, "v1")

    async def body(pool: Pool) -> Any:
        await pool.run(key, sources(language), "count", {}, LIMITS)
        talk = asyncio.create_task(pool.run(key, sources(language), "talk", {}, LIMITS))
        await asyncio.sleep(0.1)
        queued = asyncio.create_task(pool.run(key, sources(language), "count", {}, LIMITS))
        await asyncio.sleep(0.1)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await talk
        return (await pool.run(key, sources(language), "count", {}, LIMITS)).result

    assert scenario(kind, language, body) == 2  # not 3: the cancelled count never ran


@LANGUAGES
def test_a_worker_gets_log_frames_only_for_runs_that_ask(language: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frames: list[dict[str, Any]] = []
    feed = protocol.FrameParser.feed

    def spy(parser: protocol.FrameParser, chunk: bytes) -> list[dict[str, Any]]:
        messages = feed(parser, chunk)
        frames.extend(messages)
        return messages

    monkeypatch.setattr(protocol.FrameParser, "feed", spy)
    key = SandboxKey("w", language, "v1")

    async def body(pool: Pool) -> Any:
        quiet = await pool.run(key, sources(language), "talk", {}, LIMITS)
        logs_without = sum("log" in frame for frame in frames)
        await pool.run(key, sources(language), "talk", {}, LIMITS, on_log=lambda entry: None)
        return quiet, logs_without, sum("log" in frame for frame in frames)

    quiet, logs_without, logs_with = scenario("workers", language, body)
    assert [entry["message"] for entry in quiet.logs] == ["a", "b"]
    assert (logs_without, logs_with) == (0, 2)
