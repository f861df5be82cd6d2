"""The real service: `fnbox serve` with worker processes, on a real socket."""

import os
import signal
import threading
import time

import httpx2 as httpx
import pytest

from tests.processes import running_server

pytestmark = pytest.mark.slow  # a real server, worker processes or a subprocess

HELLO = {
    "functions": {
        "hello": {"code": 'return "Hello " + name;', "parameters": {"name": {"type": "string"}}},
        "pyhello": {"language": "python", "code": 'return "Hello " + name', "parameters": {"name": {"type": "string"}}},
        "slow": {"language": "python", "code": "import time\ntime.sleep(1.5)\nreturn 'done'"},
    }
}


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.add(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


def test_the_service_runs_both_languages_in_workers_and_keeps_workspaces_across_restarts(tmp_path):
    with running_server(tmp_path, FUNCTIONS_WORKERS="1") as server:
        url, process = server.url, server.process
        assert httpx.post(f"{url}/v2/functions/test", json=HELLO).json() == HELLO
        for function in ("hello", "pyhello"):
            answer = httpx.post(f"{url}/v2/functions/test/run/{function}", json={"parameters": {"name": "world"}})
            assert answer.json()["result"] == "Hello world"
        assert len(children_of(process.pid)) == 2  # one worker per language
    with running_server(tmp_path, FUNCTIONS_WORKERS="1") as server:
        url = server.url
        assert httpx.get(f"{url}/v2/functions").json() == ["test"]
        assert (
            httpx.post(f"{url}/v2/functions/test/run/hello", json={"parameters": {"name": "again"}}).json()["result"]
            == "Hello again"
        )


def test_sigterm_lets_runs_in_flight_finish_then_leaves_no_worker_behind(tmp_path):
    with running_server(tmp_path, FUNCTIONS_WORKERS="1", SHUTDOWN_GRACE_PERIOD="10") as server:
        url, process = server.url, server.process
        httpx.post(f"{url}/v2/functions/test", json=HELLO)
        workers = children_of(process.pid)
        answers = []
        slow = threading.Thread(
            target=lambda: answers.append(httpx.post(f"{url}/v2/functions/test/run/slow", json={}, timeout=10))
        )
        slow.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        slow.join(timeout=10)
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once done
        assert answers and answers[0].json()["result"] == "done"
        time.sleep(0.2)
        assert workers and not any(os.path.exists(f"/proc/{pid}") for pid in workers)


def test_update_scripts_on_startup_recompiles_through_the_workers(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "workspace.yaml").write_text(
        "functions:\n  bad:\n    code: 'let x = ;'\n  good:\n    code: 'return 1;'\n"
    )
    with running_server(tmp_path, FUNCTIONS_WORKERS="1", UPDATE_SCRIPTS_ON_STARTUP="yes") as server:
        assert httpx.post(f"{server.url}/v2/functions/old/run/good", json={}).json()["result"] == 1
        assert httpx.post(f"{server.url}/v2/functions/old/run/bad", json={}).json()["error"] == "CompilationError"
        assert "function 'bad' does not compile" in server.log()


def test_serve_takes_host_port_and_data_dir_flags(tmp_path):
    import subprocess
    import sys

    from tests.processes import ROOT, free_port

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "fnbox",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, "FUNCTIONS_WORKERS": "0"}, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                httpx.put(f"http://127.0.0.1:{port}/v2/functions/flags", json=HELLO)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert (tmp_path / "flags" / "workspace.yaml").is_file()
    finally:
        process.kill()
        process.wait()


def test_a_bad_setting_stops_the_start_with_a_message_naming_it():
    import subprocess
    import sys

    from tests.processes import ROOT

    done = subprocess.run(
        [sys.executable, "-m", "fnbox", "serve"],
        cwd=ROOT,
        env={**os.environ, "PORT": "http"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "PORT" in done.stderr
