"""Python functions that are short for a while, then hostile, once their runs go to the worker's loop
thread (sandboxes.python.inline): stopped there within moments and run again on a thread up to their
deadline, or their worker killed with the blame on them, and a neighbour's call sent meanwhile
answered: while they go on, unless they hold the GIL in C code."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fnbox.sandboxes.base import FunctionSource, Limits, Parameter, RunResult
from fnbox.sandboxes.errors import TimeoutExceeded
from fnbox.sandboxes.pool import SandboxKey
from fnbox.sandboxes.python.inline import INLINE_AFTER
from fnbox.sandboxes.supervisor import FRAMES_AT_ONCE, WorkerOptions, WorkerPool
from tests.hostile.conftest import SETTINGS, TIMEOUT_MS, Service
from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

#: Code, the neighbour's timeout (ms), and the seconds within which it is answered. A neighbour
#: whose deadline, counted from when it was sent, passed while the hostile run held the loop
#: would tell that its deadline counts from its start. A run in Python code holds the loop
#: for INLINE_HOLD at most: the neighbour, sent 0.3 s after it, is answered while it still runs
#: (its timeout is TIMEOUT_MS). A stall in C code gets the worker killed, and a neighbour overdue
#: as well could only be told apart by the CPU of its thread: that one has the default timeout.
HOSTILE = {
    "user-code-loop": ("while True:\n    pass", 300, 0.85),
    "host-code-loop": (
        "import random\nx = list(range(1000000)) * 8\nfor _ in range(4):\n    random.shuffle(x)",
        300,
        0.85,
    ),
    "c-code-stall": ("import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))", TIMEOUT_MS, TIMEOUT_MS / 1000 + 10),
}
#: The neighbour runs on a thread (it can wait) for a while after the hold.
NEIGHBOUR = "import time\ntime.sleep(0.15)\nreturn n + 1"
_names = itertools.count()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The hostile service, with short Python runs on the workers' loop threads."""
    with running_server(tmp_path_factory.mktemp("inline"), **SETTINGS, PYTHON_INLINE_RUNS="yes") as server:
        service = Service(server.url)
        try:
            yield service
        finally:
            service.client.close()


def _body(code: str) -> str:
    indented = "\n".join("    " + line for line in code.splitlines())
    return f"if n < 0:\n{indented}\nreturn n"


@pytest.mark.parametrize("kind", HOSTILE.keys())
def test_a_function_short_then_hostile_on_the_loop_thread_is_stopped_and_its_neighbour_answered(
    service: Service, kind: str
) -> None:
    code, neighbour_timeout, answered_within = HOSTILE[kind]
    suffix = next(_names)
    hostile, neighbour = f"inline-hostile{suffix}", f"inline-neighbour{suffix}"
    parameters = {"n": {"type": "integer"}}
    document = {"functions": {"f": {"language": "python", "code": _body(code), "parameters": parameters}}}
    assert service.client.put(f"/v2/functions/{hostile}", json=document).status_code == 200
    quick = {"language": "python", "code": NEIGHBOUR, "parameters": parameters, "timeout": neighbour_timeout}
    assert service.client.put(f"/v2/functions/{neighbour}", json={"functions": {"f": quick}}).status_code == 200
    for n in range(INLINE_AFTER + 2):  # short: its runs go to the loop thread
        assert (
            service.client.post(f"/v2/functions/{hostile}/run/f", json={"parameters": {"n": n}}).json()["result"] == n
        )
        assert (
            service.client.post(f"/v2/functions/{neighbour}/run/f", json={"parameters": {"n": n}}).json()["result"]
            == n + 1
        )

    def call(workspace: str, n: int) -> tuple[Any, float]:
        started = time.monotonic()
        answer = service.client.post(f"/v2/functions/{workspace}/run/f", json={"parameters": {"n": n}})
        return answer.json(), time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        attacking = pool.submit(call, hostile, -1)
        time.sleep(0.3)  # the neighbour's call arrives while the hostile run holds the worker
        neighbouring = pool.submit(call, neighbour, 41)
        (attack, attack_took), (answer, answer_took) = attacking.result(), neighbouring.result()

    assert isinstance(attack, dict) and attack.get("error") == "TimeoutExceeded", attack
    assert attack_took < TIMEOUT_MS / 1000 + 1
    assert answer.get("result") == 42, answer  # not blamed, whatever happened to the worker
    assert answer_took < answered_within  # while it runs on, or after its worker's restart and a retry
    service.check_healthy()
    again = service.client.post(f"/v2/functions/{hostile}/run/f", json={"parameters": {"n": 7}})
    assert again.json()["result"] == 7  # the attacker's short calls still work (on threads, or a quarantine worker)


def test_a_stall_in_c_code_right_after_neighbours_ran_inline_in_the_same_read_is_blamed_on_it_alone() -> None:
    """Between two inline runs of one turn the loop's thread still bears the name of the call before
    (it takes its own back at the turn's end). A run that then holds the GIL in C code must be
    blamed by its own name: the neighbours of its read, whose answers die unsent with the
    worker, are run again and answered, and the attacker alone times out."""
    attacked, answers, after = _in_one_read(HOSTILE["c-code-stall"][0], before=FRAMES_AT_ONCE - 1, after=0)
    assert isinstance(attacked, TimeoutExceeded), attacked
    assert [getattr(answer, "result", answer) for answer in answers] == list(range(1, FRAMES_AT_ONCE)), answers
    assert after == 42


@pytest.mark.parametrize(
    "code",
    [
        "import threading\nreturn threading.current_thread().name",
        "import os\nreturn os.listdir('/proc/self/task')",
        "import ctypes\nreturn ctypes.CDLL(None).prctl(16, 0, 0, 0, 0)",
        "return [t for t in __builtins__]",
    ],
)
def test_a_function_cannot_read_the_name_another_call_left_on_its_thread(service: Service, code: str) -> None:
    """The loop's thread bears the last inline run's call id until the turn ends: no way to read it."""
    workspace = f"inline-name{next(_names)}"
    document = {"functions": {"f": {"language": "python", "code": code}}}
    answer = service.client.put(f"/v2/functions/{workspace}", json=document)
    assert answer.status_code == 400 and answer.json()["error"] == "CompilationError", answer.json()


#: Hostile runs made in the read that brought their frame (worker.Calls with `at_once`), between
#: neighbours of the same read: what each answers, and a neighbour's frames still answered.
IN_THE_READ = {
    "unbounded-recursion": ("def down(k):\n    return down(k + 1)\nreturn down(0)", "FunctionError"),
    "user-code-loop": ("while True:\n    pass", "TimeoutExceeded"),
    "huge-answer": ("return ['x' * 1000000] * 14", None),  # past the writer's backlog: later frames wait for the pipe
}


@pytest.mark.parametrize("kind", IN_THE_READ.keys())
def test_a_hostile_run_made_in_the_read_answers_alone_and_the_neighbours_of_its_read_are_answered(kind: str) -> None:
    code, error = IN_THE_READ[kind]
    attacked, answers, after = _in_one_read(code, before=1, after=2)
    if error is None:
        assert isinstance(attacked, RunResult) and attacked.result == ["x" * 1000000] * 14
    else:
        assert type(attacked).__name__ == error, attacked
    assert [getattr(answer, "result", answer) for answer in answers] == [1, 2, 3], answers
    assert after == 42


def _in_one_read(code: str, *, before: int, after: int) -> tuple[Any, list[Any], int]:
    """A real worker pool with one Python worker, where an attacker's workspace and a neighbour's
    are warm and short (their runs go to the loop's thread). Then, made in one turn of the loop so
    that the worker gets them in one write: `before` neighbour calls, the attacker's call (its
    `code` runs), `after` more neighbour calls. Returns the attacker's outcome, the neighbours'
    in order (each `n + 1` for n = 0, 1, ...), and a neighbour's answer after all that."""
    parameter = (Parameter("n", type="integer"),)
    hostile_sources = [FunctionSource("f", _body(code), parameter)]
    quick = [FunctionSource("f", "return n + 1", parameter)]
    hostile, neighbour = SandboxKey("attacker", "python", "v1"), SandboxKey("neighbour", "python", "v1")
    limits = Limits(timeout=1.0, memory=64 * 2**20)

    async def scenario() -> tuple[Any, list[Any], int]:
        pool = WorkerPool(WorkerOptions(workers=1, languages=("python",)))
        await pool.start()
        try:
            for n in range(INLINE_AFTER + 2):  # both short: their runs go to the loop thread
                assert (await pool.run(hostile, hostile_sources, "f", {"n": n}, limits)).result == n
                assert (await pool.run(neighbour, quick, "f", {"n": n}, limits)).result == n + 1
            # Frames leave in the order their calls' tasks start: gather's order.
            calls = [pool.run(neighbour, quick, "f", {"n": n}, limits) for n in range(before + after)]
            calls.insert(before, pool.run(hostile, hostile_sources, "f", {"n": -1}, limits))
            outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), TIMEOUT_MS / 1000 + 20)
            attacked = outcomes.pop(before)
            last = (await pool.run(neighbour, quick, "f", {"n": 41}, limits)).result
            return attacked, outcomes, last
        finally:
            await pool.close()

    return asyncio.run(scenario())
