"""SERVER_CPU: the server process keeps to one CPU on a small machine, and its workers keep every CPU."""

import json
import os
import subprocess
import sys

import httpx2 as httpx
import pytest

from fnbox.server.affinity import AUTO_MAX_CPUS, parse_server_cpu, server_cpu
from fnbox.server.settings import SettingsError, load_settings
from tests.processes import running_server

ALLOWED = tuple(sorted(os.sched_getaffinity(0)))
#: Two CPUs of this machine (its one, on a machine of one), for a server started on them alone
#: (`auto` keeps to one of 2 to 4): a server's threads keep to TWO[0], its workers' to TWO, on either.
TWO = ALLOWED[:2]

HELLO = {
    "functions": {
        "hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}},
        "pyhello": {"language": "python", "code": 'return "Hello " + name', "parameters": {"name": {"type": "string"}}},
    }
}


def test_the_setting_takes_auto_no_or_a_cpu_number_and_refuses_anything_else():
    assert load_settings({}).server_cpu == "auto"
    assert load_settings({"SERVER_CPU": " No "}).server_cpu == "no"
    assert load_settings({"SERVER_CPU": "1"}).server_cpu == 1
    for bad in ("yes", "-1", "0,1", "one", ""):
        with pytest.raises(SettingsError, match="SERVER_CPU"):
            load_settings({"SERVER_CPU": bad})
    with pytest.raises(ValueError):
        parse_server_cpu("1.5")


def test_auto_keeps_to_the_first_cpu_of_a_small_machine_only():
    assert server_cpu("auto", (2, 3)) == 2
    assert server_cpu("auto", tuple(range(AUTO_MAX_CPUS))) == 0
    assert server_cpu("auto", (5,)) is None  # one CPU: nothing to leave to the workers
    assert server_cpu("auto", tuple(range(AUTO_MAX_CPUS + 1))) is None  # a big machine: the scheduler's
    assert server_cpu("no", (0, 1)) is None
    assert server_cpu("auto", (0, 1), workers=False) is None  # sandboxes in the server's process: every CPU
    assert server_cpu(1, (0, 1), workers=False) == 1  # unless a CPU is named


def test_a_cpu_named_is_kept_to_on_any_machine_if_the_process_may_use_it():
    assert server_cpu(7, tuple(range(64))) == 7
    assert server_cpu(0, (0,)) == 0
    with pytest.raises(ValueError, match="CPU 3 is not one this process may use"):
        server_cpu(3, (0, 1))


def pinned_in_a_child(choice: str | int, cpus: tuple[int, ...]) -> dict[str, object]:
    """pin_server(choice) in a process that may use `cpus`: what it returned, and the CPUs of that
    process and of a thread and a process it started afterwards."""
    script = f"""
import json, os, subprocess, sys, threading
os.sched_setaffinity(0, {set(cpus)!r})
from fnbox.server.affinity import pin_server
before = pin_server({choice!r})
seen = {{}}
thread = threading.Thread(target=lambda: seen.update(thread=sorted(os.sched_getaffinity(0))))
thread.start(); thread.join()
child = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                       capture_output=True, text=True, check=True).stdout
print(json.dumps({{"before": before, "process": sorted(os.sched_getaffinity(0)), "child": json.loads(child), **seen}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_pinning_keeps_the_process_and_what_it_starts_later_to_one_cpu_and_says_what_it_had():
    pinned = pinned_in_a_child("auto", TWO)
    # On a machine of one CPU there is nothing to pin: the process is on that one already.
    had = list(TWO) if len(TWO) == 2 else None
    assert pinned == {"before": had, "process": [TWO[0]], "thread": [TWO[0]], "child": [TWO[0]]}
    left = pinned_in_a_child("no", TWO)
    assert left == {"before": None, "process": list(TWO), "thread": list(TWO), "child": list(TWO)}
    chosen = pinned_in_a_child(TWO[-1], TWO)  # a CPU named: that one, the first or not
    assert chosen == {"before": list(TWO), "process": [TWO[-1]], "thread": [TWO[-1]], "child": [TWO[-1]]}


def cpus_of(pid: int, task: int | None = None) -> list[int]:
    path = f"/proc/{pid}/status" if task is None else f"/proc/{pid}/task/{task}/status"
    with open(path) as status:
        line = next(line for line in status if line.startswith("Cpus_allowed_list:"))
    cpus: list[int] = []
    for part in line.split(":", 1)[1].strip().split(","):
        first, _, last = part.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def workers_of(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def policies_of(pid: int) -> set[int]:
    """The scheduling policies of a process's threads."""
    return {os.sched_getscheduler(int(task)) for task in os.listdir(f"/proc/{pid}/task")}


#: `fnbox serve` on the two CPUs TWO alone, as on a 2-CPU machine.
ON_TWO = (
    sys.executable,
    "-c",
    f"import os, runpy; os.sched_setaffinity(0, {set(TWO)!r}); runpy.run_module('fnbox', run_name='__main__')",
)


@pytest.mark.slow
def test_on_a_small_machine_the_server_keeps_to_one_cpu_and_its_workers_run_on_all(tmp_path):
    with running_server(tmp_path, command=ON_TWO, FUNCTIONS_WORKERS="1", SERVER_CPU="auto") as server:
        assert httpx.post(f"{server.url}/v2/functions/test", json=HELLO).status_code == 200
        for function in ("hello", "pyhello"):
            answer = httpx.post(f"{server.url}/v2/functions/test/run/{function}", json={"parameters": {"name": "you"}})
            assert answer.json()["result"] == "Hello you"
        pid = server.process.pid
        assert {tuple(cpus_of(pid, int(task))) for task in os.listdir(f"/proc/{pid}/task")} == {(TWO[0],)}
        workers = workers_of(pid)
        assert len(workers) == 2
        for worker in workers:  # the JavaScript worker's V8 threads and the Python worker's run threads too
            assert {tuple(cpus_of(worker, int(task))) for task in os.listdir(f"/proc/{worker}/task")} == {TWO}
        # The workers' threads are batch work to the scheduler: woken, they do not take the server's CPU at once.
        assert policies_of(pid) == {os.SCHED_OTHER}
        assert [policies_of(worker) for worker in workers] == [{os.SCHED_BATCH}, {os.SCHED_BATCH}]


@pytest.mark.slow
def test_with_no_the_server_and_its_workers_run_wherever_the_scheduler_puts_them(tmp_path):
    with running_server(tmp_path, command=ON_TWO, FUNCTIONS_WORKERS="1", SERVER_CPU="no") as server:
        answer = httpx.post(f"{server.url}/v2/functions/test", json=HELLO)
        assert answer.status_code == 200
        pid = server.process.pid
        assert cpus_of(pid) == list(TWO)
        assert [cpus_of(worker) for worker in workers_of(pid)] == [list(TWO), list(TWO)]
        assert [policies_of(worker) for worker in workers_of(pid)] == [{os.SCHED_BATCH}, {os.SCHED_BATCH}]


@pytest.mark.slow
def test_a_cpu_the_server_may_not_use_stops_the_start_with_a_message(tmp_path):
    env = {**os.environ, "SERVER_CPU": str(max(ALLOWED) + 1), "PORT": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "fnbox", "serve", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"SERVER_CPU: CPU {max(ALLOWED) + 1} is not one this process may use" in done.stderr
