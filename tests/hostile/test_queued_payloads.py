"""Python calls queued in their sandbox behind a hostile run of the same workspace.

A workspace whose functions cannot wait has its calls queued in its sandbox and run in
turn by one thread (sandboxes.python.runqueue). A run that freezes the worker, loops in
host code or fills the memory must be the one blamed and stopped; the calls queued behind
it are answered, on a fresh sandbox or a restarted worker.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx2 as httpx
import pytest

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

COUNT = "cache['n'] = cache.get('n', 0) + 1\nreturn cache['n']"
HOSTILE = {
    # Backtracks in C holding the GIL: only the supervisor, killing the worker, stops it.
    "nested-re": ("import re\nreturn bool(re.match(r'(a+)+$', 'a' * 40 + 'b'))", "service"),
    # Loops in host Python code that no deadline check reaches: interrupted, its sandbox dropped.
    "host-loop": ("import random\nx = list(range(1000000)) * 4\nwhile True:\n    random.shuffle(x)", "service"),
    # Fills the worker's address space: MemoryError in the run, its sandbox dropped.
    "memory": ("x = []\nwhile True:\n    x.append(bytearray(10**6))", "memory_service"),
}
QUEUED = 4
_names = itertools.count()


def _post(url: str, path: str, outcomes: dict[str, Any], name: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post(path, json={})
        outcomes[name] = answer.json()


@pytest.mark.parametrize("code, fixture", HOSTILE.values(), ids=HOSTILE.keys())
def test_calls_queued_behind_a_hostile_run_of_their_workspace_are_answered(code, fixture, request):
    service = request.getfixturevalue(fixture)
    workspace = f"queued{next(_names)}"
    document = {
        "functions": {"attack": {"language": "python", "code": code}, "count": {"language": "python", "code": COUNT}}
    }
    assert service.client.put(f"/v2/functions/{workspace}", json=document).status_code == 200
    assert service.client.post(f"/v2/functions/{workspace}/run/count", json={}).json()["result"] == 1  # warm
    outcomes: dict[str, Any] = {}
    attack = threading.Thread(
        target=_post, args=(service.url, f"/v2/functions/{workspace}/run/attack", outcomes, "attack")
    )
    attack.start()
    time.sleep(0.2)  # the attack runs; the calls below queue behind it
    queued = [
        threading.Thread(
            target=_post, args=(service.url, f"/v2/functions/{workspace}/run/count", outcomes, f"q{index}")
        )
        for index in range(QUEUED)
    ]
    for thread in queued:
        thread.start()
    for thread in [attack, *queued]:
        thread.join(60)
    assert outcomes["attack"].get("error") in ("TimeoutExceeded", "MemoryLimitExceeded"), outcomes["attack"]
    counts = [outcomes[f"q{index}"] for index in range(QUEUED)]
    assert all("result" in count for count in counts), counts  # none blamed, none lost
    service.check_healthy()


BUSY = (
    "import datetime\n"
    "end = datetime.datetime.now() + datetime.timedelta(seconds=0.3)\n"
    "while datetime.datetime.now() < end:\n"
    "    pass\n"
    "return 1"
)


@pytest.mark.parametrize("code, fixture", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_call_queued_behind_another_of_its_workspace_is_the_one_stopped(code, fixture, request):
    """It starts on the thread the call before it ran on, right after it: its deadline, blame and thread name are its own."""
    service = request.getfixturevalue(fixture)
    workspace = f"queued{next(_names)}"
    document = {
        "functions": {"attack": {"language": "python", "code": code}, "busy": {"language": "python", "code": BUSY}}
    }
    assert service.client.put(f"/v2/functions/{workspace}", json=document).status_code == 200
    assert service.client.post(f"/v2/functions/{workspace}/run/busy", json={}).json()["result"] == 1  # warm
    outcomes: dict[str, Any] = {}
    busy = threading.Thread(target=_post, args=(service.url, f"/v2/functions/{workspace}/run/busy", outcomes, "busy"))
    busy.start()
    time.sleep(0.1)  # the busy call runs; the attack queues behind it
    attack = threading.Thread(
        target=_post, args=(service.url, f"/v2/functions/{workspace}/run/attack", outcomes, "attack")
    )
    attack.start()
    for thread in (busy, attack):
        thread.join(60)
    assert outcomes["busy"].get("result") == 1, outcomes["busy"]
    assert outcomes["attack"].get("error") in ("TimeoutExceeded", "MemoryLimitExceeded"), outcomes["attack"]
    service.check_healthy()
