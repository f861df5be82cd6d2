"""The supervisor and its worker processes, with fake sandboxes inside the workers."""

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits
from fnbox.sandboxes.errors import FunctionError, MemoryLimitExceeded, SandboxCrashed, TimeoutExceeded
from fnbox.sandboxes.pool import SandboxKey
from fnbox.sandboxes.supervisor import CANCEL_GRACE, WorkerOptions, WorkerPool, _Worker

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

LIMITS = Limits(timeout=0.5, memory=2**26)
#: For runs that must answer even while a loaded machine restarts a worker next to them.
PATIENT = Limits(timeout=10, memory=2**26)
#: Seconds past which a run the watch should have ended counts as never ended.
NEVER = 20
FUNCTIONS = [
    FunctionSource(name=name, code=name) for name in ("count", "pid", "hang", "exit", "half", "hog", "fine")
] + [
    FunctionSource(name="nap", code="sleep 1"),
    FunctionSource(name="doze", code="sleep 0.4"),
]


@pytest.fixture(autouse=True)
def workers_find_the_fakes(monkeypatch):
    """Workers start with `python -P`, so the checkout is not on their sys.path; the fakes are."""
    root = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))


def key(workspace: str) -> SandboxKey:
    return SandboxKey(workspace, "javascript", "v1")


def supervised(scenario, **options):
    """Run `scenario(pool)` against a started WorkerPool of fake sandboxes."""
    options = {
        "workers": 2,
        "languages": ("javascript",),
        "factory": "tests.fakes:FakeFactory",
        "grace": 0.3,
        **options,
    }

    async def main():
        pool = WorkerPool(WorkerOptions(**options))
        await pool.start()
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def run(pool, workspace, function, limits=LIMITS):
    return pool.run(key(workspace), FUNCTIONS, function, {}, limits)


def workspaces_on_different_workers(pool_size=2):
    import zlib

    first = "w0"
    for index in range(1, 100):
        other = f"w{index}"
        if zlib.crc32(other.encode()) % pool_size != zlib.crc32(first.encode()) % pool_size:
            return first, other
    raise AssertionError("no pair found")


def test_a_workspace_always_runs_on_the_same_worker_and_keeps_its_cache():
    async def scenario(pool):
        counts = [(await run(pool, "w", "count")).result for _ in range(3)]
        pids = {(await run(pool, "w", "pid")).result for _ in range(3)}
        return counts, pids, pool.worker_pids("javascript")

    counts, pids, workers = supervised(scenario)
    assert counts == [1, 2, 3]
    assert len(pids) == 1 and pids <= set(workers) and len(workers) == 2


def test_a_worker_stuck_past_the_deadline_is_killed_and_restarted():
    async def scenario(pool):
        before = (await run(pool, "w", "pid", PATIENT)).result
        with pytest.raises(TimeoutExceeded):
            await asyncio.wait_for(run(pool, "w", "hang"), NEVER)  # a TimeoutError here: never ended
        after = (await run(pool, "w", "pid", PATIENT)).result
        return before, after

    before, after = supervised(scenario)
    assert before != after


def test_a_neighbour_of_a_killed_run_is_retried_on_the_fresh_worker():
    async def scenario(pool):
        # "w" and "w-b" land on the same worker only if their hashes agree: use two keys of one workspace.
        neighbour = asyncio.create_task(
            pool.run(SandboxKey("w", "javascript", "v0"), FUNCTIONS, "nap", {}, Limits(timeout=5, memory=2**26))
        )
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutExceeded):
            await run(pool, "w", "hang")
        return await neighbour

    assert supervised(scenario).result == "slept"


def test_other_workers_keep_serving_while_one_is_killed():
    a, b = workspaces_on_different_workers()

    async def scenario(pool):
        await run(pool, b, "count", PATIENT)
        hang = asyncio.create_task(run(pool, a, "hang"))
        await asyncio.sleep(0.1)
        during = (await run(pool, b, "count", PATIENT)).result
        with pytest.raises(TimeoutExceeded):
            await asyncio.wait_for(hang, NEVER)
        return during, (await run(pool, b, "count", PATIENT)).result

    assert supervised(scenario) == (2, 3)  # b's cache survived: its worker was never touched


def test_a_worker_that_exits_answers_sandbox_crashed_and_comes_back():
    async def scenario(pool):
        with pytest.raises(SandboxCrashed):
            await run(pool, "w", "exit")
        return (await run(pool, "w", "count")).result

    assert supervised(scenario) == 1


def test_a_worker_dying_in_the_middle_of_an_answer_answers_sandbox_crashed_and_comes_back():
    async def scenario(pool):
        before = (await run(pool, "w", "count")).result
        with pytest.raises(SandboxCrashed):
            await run(pool, "w", "half")
        answers = await asyncio.gather(*(run(pool, "w", "count") for _ in range(20)))
        return before, sorted(answer.result for answer in answers)

    assert supervised(scenario, workers=1) == (1, list(range(1, 21)))  # a fresh worker, its frames read whole


def test_answers_dispatched_from_the_read_callback_reach_their_calls_in_order():
    functions = [*FUNCTIONS, FunctionSource(name="echo", code="echo")]

    async def scenario(pool):
        calls = [pool.run(key("w"), functions, "fine", {}, LIMITS) for _ in range(50)]
        calls += [pool.run(key("w"), functions, "echo", {"n": index}, LIMITS) for index in range(50)]
        return [answer.result for answer in await asyncio.gather(*calls)]

    assert supervised(scenario, workers=1) == ["fine"] * 50 + [{"n": index} for index in range(50)]


def test_a_run_cancelled_after_its_answer_came_leaves_its_worker_alone(monkeypatch):
    """Its caller gave up between the answer and its turn to read it: the worker, which knows the call no
    more, is sent no cancel that it would never answer (and be killed for)."""
    waiting: list[asyncio.Task] = []
    dispatch = _Worker._dispatch

    def dispatch_then_cancel(worker, messages):
        dispatch(worker, messages)
        if waiting and any("result" in message for message in messages):
            waiting.pop().cancel()

    monkeypatch.setattr(_Worker, "_dispatch", dispatch_then_cancel)

    async def scenario(pool):
        pid = (await run(pool, "w", "pid")).result
        waiting.append(asyncio.create_task(run(pool, "w", "fine")))
        with pytest.raises(asyncio.CancelledError):
            await waiting[0]
        await asyncio.sleep(CANCEL_GRACE + 0.5)
        return pid, (await run(pool, "w", "pid")).result

    pid, later = supervised(scenario, workers=1)
    assert later == pid


def test_a_worker_over_its_rss_cap_is_killed():
    async def scenario(pool):
        with pytest.raises(MemoryLimitExceeded):
            await run(pool, "w", "hog", Limits(timeout=10, memory=2**26))
        return (await run(pool, "w", "fine")).result

    assert supervised(scenario, js_rss_mb=300) == "fine"


def test_close_leaves_no_worker_behind():
    import os

    async def scenario(pool):
        await run(pool, "w", "fine")
        return pool.worker_pids("javascript")

    pids = supervised(scenario)
    time.sleep(0.1)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_deadline_counts_from_the_start_of_a_run_not_from_its_queueing():
    async def scenario(pool):
        # Two runs of one workspace take turns: the second ends 0.8 s after it was sent,
        # past its timeout plus grace (0.7 s), and must still not be killed.
        return await asyncio.gather(*(run(pool, "w", "doze") for _ in range(2)))

    assert [r.result for r in supervised(scenario, grace=0.2)] == ["slept"] * 2


def test_only_the_call_that_froze_a_worker_is_blamed():
    async def scenario(pool):
        for version in ("v0", "v1"):  # warm: the hang starts as soon as it arrives
            await pool.compile(SandboxKey("w", "javascript", version), FUNCTIONS)
        hang = asyncio.create_task(run(pool, "w", "hang"))
        await asyncio.sleep(0.02)
        # Sent while the worker is frozen: its deadline passes in the same watch as the culprit's.
        innocent = asyncio.create_task(pool.run(SandboxKey("w", "javascript", "v0"), FUNCTIONS, "fine", {}, LIMITS))
        return await asyncio.gather(hang, innocent, return_exceptions=True)

    hang, innocent = supervised(scenario)
    assert isinstance(hang, TimeoutExceeded)
    assert innocent.result == "fine"


def test_a_call_alone_on_a_worker_it_crashed_is_not_run_twice(caplog):
    async def scenario(pool):
        with pytest.raises(SandboxCrashed):
            await run(pool, "w", "exit")
        return (await run(pool, "w", "fine")).result

    with caplog.at_level("WARNING", logger="fnbox"):
        assert supervised(scenario) == "fine"
    assert sum("restarting" in record.getMessage() for record in caplog.records) == 1


def test_a_worker_killing_call_is_tried_twice_at_most_even_when_the_fresh_worker_is_cold(caplog):
    async def scenario(pool):
        await pool.compile(SandboxKey("w", "javascript", "v1"), FUNCTIONS)  # warm, so the first try finds it
        nap = asyncio.create_task(
            pool.run(SandboxKey("w", "javascript", "v0"), FUNCTIONS, "nap", {}, Limits(timeout=5, memory=2**26))
        )
        await asyncio.sleep(0.2)
        with pytest.raises(SandboxCrashed):
            await pool.run(SandboxKey("w", "javascript", "v1"), FUNCTIONS, "exit", {}, LIMITS)
        await asyncio.gather(nap, return_exceptions=True)
        await asyncio.sleep(0.5)

    with caplog.at_level("WARNING", logger="fnbox"):
        supervised(scenario)
    assert sum("restarting" in record.getMessage() for record in caplog.records) == 2


# Live logs and cancelling


def test_log_frames_reach_on_log_while_the_run_goes_on():
    async def scenario(pool):
        seen, first = [], asyncio.Event()

        def on_log(entry):
            seen.append(entry)
            first.set()

        sources = [FunctionSource(name="talk", code="talk 0.5")]
        task = asyncio.create_task(pool.run(key("w"), sources, "talk", {}, LIMITS, on_log=on_log))
        await asyncio.wait_for(first.wait(), 5)
        during = [entry["message"] for entry in seen], task.done()
        return during, seen, await task

    during, seen, outcome = supervised(scenario)
    assert during == (["one"], False)
    assert seen == outcome.logs


def test_a_neighbour_that_already_logged_is_not_run_again_when_its_worker_is_killed():
    """Retrying it would hand its caller the same entries twice, from a second run."""

    async def scenario(pool):
        seen = []
        sources = [FunctionSource(name="talk", code="talk 5")]
        talk = asyncio.create_task(
            pool.run(
                SandboxKey("w", "javascript", "v0"),
                sources,
                "talk",
                {},
                Limits(timeout=10, memory=2**26),
                on_log=seen.append,
            )
        )
        await asyncio.sleep(0.2)
        with pytest.raises(TimeoutExceeded):
            await run(pool, "w", "hang")
        with pytest.raises(SandboxCrashed) as died:
            await talk
        await asyncio.sleep(0.5)  # a retried run would have logged "one" again by now
        return [entry["message"] for entry in seen], str(died.value)

    messages, error = supervised(scenario)
    assert messages == ["one"]
    assert "worker died" in error


def test_a_cancelled_run_stops_in_its_worker_which_goes_on():
    async def scenario(pool):
        before = (await run(pool, "w", "pid")).result
        await run(pool, "w", "count")
        nap = asyncio.create_task(run(pool, "w", "nap", Limits(timeout=5, memory=2**26)))
        await asyncio.sleep(0.2)
        nap.cancel()
        with pytest.raises(asyncio.CancelledError):
            await nap
        count = (await asyncio.wait_for(run(pool, "w", "count"), 0.5)).result
        return before, (await run(pool, "w", "pid")).result, count

    before, after, count = supervised(scenario)
    assert before == after and count == 2


def test_a_cancelled_call_queued_in_its_worker_never_runs():
    async def scenario(pool):
        await run(pool, "w", "count")
        nap = asyncio.create_task(run(pool, "w", "doze"))
        await asyncio.sleep(0.1)
        queued = asyncio.create_task(run(pool, "w", "count"))
        await asyncio.sleep(0.1)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        await nap
        return (await run(pool, "w", "count")).result

    assert supervised(scenario) == 2


def test_a_cancelled_run_that_does_not_stop_gets_its_worker_killed_and_its_neighbours_retried():
    async def scenario(pool):
        before = (await run(pool, "w", "pid")).result
        long = Limits(timeout=30, memory=2**26)
        neighbour = asyncio.create_task(pool.run(SandboxKey("w", "javascript", "v0"), FUNCTIONS, "nap", {}, long))
        await asyncio.sleep(0.1)
        hang = asyncio.create_task(run(pool, "w", "hang", long))
        await asyncio.sleep(0.1)
        cancelled = time.monotonic()
        hang.cancel()
        with pytest.raises(asyncio.CancelledError):
            await hang
        after = (await run(pool, "w", "pid")).result  # on the restarted worker
        return before, after, time.monotonic() - cancelled, (await neighbour).result

    before, after, took, neighbour = supervised(scenario)
    # Killed after CANCEL_GRACE, not the run's 30 s timeout: then the answer waits for a fresh
    # worker to start, which a busy machine slows (2.5 s was passed under load).
    assert before != after and took < 10
    assert neighbour == "slept"


def test_log_frames_are_checked_and_capped():
    from fnbox.sandboxes.base import MAX_LOG_ENTRIES, MAX_LOG_MESSAGE
    from fnbox.sandboxes.supervisor import _Call

    async def scenario():
        seen = []
        call = _Call(asyncio.get_running_loop().create_future(), 0.0, 1.0, seen.append)
        for bad in (
            "text",
            {"level": "evil", "message": "m", "time": 1},
            {"level": "info", "message": 1, "time": 1},
            {"level": "info", "message": "m", "time": "now"},
        ):
            call.log(bad)
        call.log({"level": "info", "message": "x" * (10 * MAX_LOG_MESSAGE), "time": 1, "extra": True})
        for _ in range(MAX_LOG_ENTRIES + 10):
            call.log({"level": "warn", "message": "m", "time": 2})
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) == MAX_LOG_ENTRIES
    assert set(seen[0]) == {"level", "message", "time"} and len(seen[0]["message"]) <= MAX_LOG_MESSAGE + 64


def test_a_javascript_worker_with_an_isolate_stuck_in_native_code_recycles_itself():
    """Sorting a big typed array is one native loop that outlives its run's timeout."""
    fill = "cache.a = new Float64Array(2e7); for (let i = 0; i < cache.a.length; i++) cache.a[i] = Math.random(); return 1;"
    sources = [
        FunctionSource(name="fill", code=fill),
        FunctionSource(name="sort", code="cache.a.sort();"),
        FunctionSource(name="count", code="cache.n = (cache.n || 0) + 1; return cache.n;"),
    ]

    async def scenario(pool):
        js = SandboxKey("w", "javascript", "v1")
        await pool.run(js, sources, "count", {}, Limits(timeout=5, memory=2**28))
        before = pool.worker_pids("javascript")
        assert (await pool.run(js, sources, "fill", {}, Limits(timeout=10, memory=2**28))).result == 1
        with pytest.raises(TimeoutExceeded):
            await pool.run(js, sources, "sort", {}, Limits(timeout=0.05, memory=2**28))
        deadline = time.monotonic() + 10
        while pool.worker_pids("javascript") == before and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        after = pool.worker_pids("javascript")
        return before, after, (await pool.run(js, sources, "count", {}, Limits(timeout=5, memory=2**28))).result

    before, after, count = supervised(scenario, workers=1, factory=None, js_stuck_after=0.2)
    assert after != before and len(after) == 1
    assert count == 1  # a fresh worker: the stuck isolate, and the workspace's cache, went with the old one


def test_a_python_run_freezing_its_worker_is_blamed_even_when_a_neighbour_started_first():
    """A regular expression backtracking in C holds the GIL: the nap that started before it
    cannot finish either, and is the older overdue call; the thread on the CPU tells them apart."""
    sources = [
        FunctionSource(name="nap", code="import time\ntime.sleep(0.3)\nreturn 'slept'"),
        FunctionSource(name="backtrack", code="import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))"),
    ]
    limits = Limits(timeout=1, memory=2**28)

    async def scenario(pool):
        neighbour, attacker = SandboxKey("neighbour", "python", "v1"), SandboxKey("attacker", "python", "v1")
        nap = asyncio.create_task(pool.run(neighbour, sources, "nap", {}, limits))
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutExceeded):
            await pool.run(attacker, sources, "backtrack", {}, limits)
        return (await nap).result

    assert (
        supervised(scenario, workers=1, languages=("python",), factory=None, python_modules=("re", "time")) == "slept"
    )


def test_a_python_call_that_waited_for_its_turn_and_froze_its_worker_as_it_started_is_blamed():
    """Its 'started' frame may never leave the loop it froze: the thread bearing its name tells that it started."""
    sources = [
        FunctionSource(
            name="busy",
            code="import datetime\nend = datetime.datetime.now() + datetime.timedelta(seconds=0.3)\n"
            "while datetime.datetime.now() < end:\n    pass\nreturn 'busy'",
        ),
        FunctionSource(name="backtrack", code="import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))"),
    ]
    limits = Limits(timeout=1, memory=2**28)

    async def scenario(pool):
        workspace = SandboxKey("attacker", "python", "v1")
        await pool.run(workspace, sources, "busy", {}, limits)  # warm
        busy = asyncio.create_task(pool.run(workspace, sources, "busy", {}, limits))
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutExceeded):  # queued behind `busy`, it waits, then starts and freezes
            await asyncio.wait_for(pool.run(workspace, sources, "backtrack", {}, limits), 20)
        return (await busy).result

    assert supervised(scenario, workers=1, languages=("python",), factory=None, python_modules=("re", "datetime")) == (
        "busy"
    )


def test_node_modules_reach_the_javascript_workers():
    """NODE_BUILTIN_MODULES goes settings -> RuntimeOptions -> WorkerOptions -> the worker's command line."""
    sources = [
        FunctionSource(name="parse", code='return typeof require("url").parse;'),
        FunctionSource(name="hashing", code='const name = "crypto"; return require(name);'),
    ]
    js = SandboxKey("modules", "javascript", "v1")
    limits = Limits(timeout=5, memory=2**28)

    async def scenario(pool):
        answer = (await pool.run(js, sources, "parse", {}, limits)).result
        with pytest.raises(FunctionError) as info:
            await pool.run(js, sources, "hashing", {}, limits)
        return answer, info.value.message

    answer, message = supervised(scenario, workers=1, factory=None, node_modules=("url", "path"))
    assert answer == "function"
    assert message == "Error: module 'crypto' is not available in fnbox (available: url, path)"


def test_a_run_whose_worker_is_killed_for_its_timeout_answers_its_logs_and_duration():
    sources = [FunctionSource(name="babble", code="babble")]

    async def scenario(pool):
        errors = []
        for on_log in (lambda entry: None, None):
            with pytest.raises(TimeoutExceeded) as caught:
                await pool.run(key("w"), sources, "babble", {}, LIMITS, on_log=on_log)
            errors.append(caught.value)
        return errors

    followed, quiet = supervised(scenario)
    assert [entry["message"] for entry in followed.logs] == ["one"]
    assert quiet.logs == []  # no log frames were asked for: none were received
    for error in (followed, quiet):
        assert error.duration >= LIMITS.timeout * 1000
        assert {"logs", "duration"} <= error.to_json().keys()


def test_a_call_alone_on_a_worker_that_aborts_after_a_timed_out_run_is_retried_and_the_culprit_quarantined():
    sources = [FunctionSource(name="linger", code="linger"), FunctionSource(name="nap", code="sleep 1")]
    limits = Limits(timeout=2, memory=2**26)

    async def scenario(pool):
        with pytest.raises(TimeoutExceeded):
            await pool.run(key("w"), sources, "linger", {}, LIMITS)
        before = pool.worker_pids("javascript")
        slept = (await pool.run(key("other"), sources, "nap", {}, limits)).result  # alone when the worker aborts
        return before, pool.worker_pids("javascript"), slept, ("javascript", "w") in pool._quarantine

    before, after, slept, quarantined = supervised(scenario, workers=1, factory="tests.fakes:FakeFactory")
    assert slept == "slept" and before != after and quarantined


def test_calls_queued_behind_a_run_that_broke_its_sandbox_get_a_rebuilt_one_with_every_function():
    sources = [
        FunctionSource(name="wedge", code="let a = []; for (;;) a.push(new Array(1e6).fill(0));"),
        FunctionSource(name="hello", code="return 'hi';"),
    ]
    limits = Limits(timeout=2, memory=2**26)

    async def scenario(pool):
        await pool.run(key("w"), sources, "hello", {}, limits)  # warm: the calls below carry no sources
        stuck = asyncio.create_task(pool.run(key("w"), sources, "wedge", {}, limits))
        await asyncio.sleep(0.05)
        queued = [
            asyncio.create_task(pool.run(key("w"), sources, "hello", {}, Limits(timeout=5, memory=2**27)))
            for _ in range(3)
        ]
        results = await asyncio.gather(stuck, *queued, return_exceptions=True)
        later = (await pool.run(key("w"), sources, "hello", {}, limits)).result
        return [getattr(r, "result", type(r).__name__) for r in results], later

    results, later = supervised(scenario, workers=1, factory=None)
    assert results[1:] == ["hi"] * 3 and later == "hi"


@pytest.mark.parametrize(
    "language, busy",
    [
        ("javascript", "const end = Date.now() + 850; while (Date.now() < end) {} return 'done';"),
        (
            "python",
            "import time\nend = time.perf_counter() + 0.85\nwhile time.perf_counter() < end:\n    pass\nreturn 'done'",
        ),
    ],
)
def test_a_call_waiting_inside_its_sandbox_for_a_turn_has_its_deadline_from_its_start(language, busy):
    # Runs of a sandbox may overlap (they wait inside it for their turn): the supervisor's
    # deadline of a call counts from when it gets the turn, not from when it was let in.
    sources = [FunctionSource(name="busy", code=busy)]
    limits = Limits(timeout=1.0, memory=2**26)

    async def scenario(pool):
        calls = [pool.run(SandboxKey("w", language, "v1"), sources, "busy", {}, limits) for _ in range(2)]
        return [outcome.result for outcome in await asyncio.gather(*calls)]

    assert supervised(scenario, workers=1, factory=None, languages=(language,)) == ["done", "done"]


def test_close_during_a_restart_kills_and_reaps_the_process_the_restart_spawned(monkeypatch):
    """A worker dies and the watch is restarting it, its new process spawned and the pipes to it not yet
    connected, when the pool closes: that process is killed and reaped before close returns."""
    started: list[subprocess.Popen] = []

    class Recorded(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recorded)

    async def main():
        pool = WorkerPool(WorkerOptions(workers=1, languages=("javascript",), factory="tests.fakes:FakeFactory"))
        await pool.start()
        loop = asyncio.get_running_loop()
        connect_write_pipe = loop.connect_write_pipe
        spawned, release = asyncio.Event(), asyncio.Event()

        async def held(protocol_factory, pipe):
            # The restart's process runs, and its start waits for the pipes to it: it stays there.
            spawned.set()
            await release.wait()
            return await connect_write_pipe(protocol_factory, pipe)

        loop.connect_write_pipe = held
        try:
            os.kill(pool.worker_pids("javascript")[0], signal.SIGKILL)
            await spawned.wait()
            closing = asyncio.create_task(pool.close())
            # Callbacks run in the order they were scheduled: close's first step (which cancels
            # the watch) runs before the pipes are let through, as when close comes mid-restart.
            loop.call_soon(release.set)
            await closing
            return len(started), [process.pid for process in started if process.returncode is None]
        finally:
            del loop.connect_write_pipe
            release.set()

    count, left = asyncio.run(main())
    assert count == 2  # the first worker and the one the restart spawned
    assert left == []  # each killed and reaped, none left to the end of the loop
