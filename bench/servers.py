"""The services under test: install, start on a free loopback port, stop; memory of a process tree.

Kinds: `fnbox` (the real service), `fnbox-before` (another checkout of it, for before/after
figures), `ceiling` (bench/ceiling.py) and `ceiling-hop` (the same through a child process),
`oneshot` (bench/oneshot.py, one process per call), and the Node peers `vm2` and `isolated-vm`
(bench/peers/).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = ("vm2", "isolated-vm")
KINDS = ("fnbox", "fnbox-before", "ceiling", "ceiling-hop", "oneshot", *PEERS)
#: The fnbox checkout that is served; run.py --fnbox DIR points it at another one.
fnbox_dir = ROOT
#: The older checkout served as `fnbox-before` (run.py --before DIR); None leaves it out.
before_dir: Path | None = None


class ServiceError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def install_peers(log_dir: Path) -> dict[str, str]:
    """`npm ci` each peer whose node_modules is missing or older than its lockfile.

    Returns the problems, by peer; a peer that cannot be installed is left out of the run.
    """
    problems = {}
    for peer in PEERS:
        folder = BENCH / "peers" / peer
        marker = folder / "node_modules" / ".package-lock.json"
        if marker.exists() and marker.stat().st_mtime >= (folder / "package-lock.json").stat().st_mtime:
            continue
        note = " (builds isolated-vm natively: a few minutes)" if peer == "isolated-vm" else ""
        print(f"installing the {peer} peer: npm ci{note}", flush=True)
        log = log_dir / f"npm-{peer}.log"
        with open(log, "w") as out:
            done = subprocess.run(["npm", "ci"], cwd=folder, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            problems[peer] = f"`npm ci` failed (exit {done.returncode}), see {log}"
    return problems


@dataclass
class Service:
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    data_dir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def memory(self) -> tuple[float, float, int]:
        return tree_memory(self.pid)

    def settle(self, timeout: float = 60) -> None:
        """Wait for the process-per-call server's children: wrk leaves its last calls running."""
        if self.kind != "oneshot":
            return
        deadline = time.monotonic() + timeout
        while len(descendants(self.pid)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.data_dir is not None:
            self.data_dir.cleanup()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def command(kind: str, port: int, data_dir: str | None) -> tuple[list[str], Path]:
    """The command line and working directory of a kind of service."""
    if kind in ("fnbox", "fnbox-before"):
        # -m with that checkout as working directory: its packages come first on sys.path
        folder = fnbox_dir if kind == "fnbox" else before_dir
        if folder is None:
            raise ValueError("fnbox-before needs run.py --before DIR")
        return [sys.executable, "-m", "fnbox", "serve", "--port", str(port), "--data-dir", str(data_dir)], folder
    if kind in ("ceiling", "oneshot"):
        return [sys.executable, str(BENCH / f"{kind}.py"), "--port", str(port)], ROOT
    if kind == "ceiling-hop":
        return [sys.executable, str(BENCH / "ceiling.py"), "--port", str(port), "--hop"], ROOT
    if kind == "vm2":
        return ["node", "server.js"], BENCH / "peers" / "vm2"
    if kind == "isolated-vm":
        return ["node", "--no-node-snapshot", "server.js"], BENCH / "peers" / "isolated-vm"
    raise ValueError(kind)


def start(
    kind: str,
    log_dir: Path,
    *,
    env: dict[str, str] | None = None,
    tag: str = "",
    path: Path | None = None,
    options: Sequence[str] = (),
) -> Service:
    """Start a service on a free port and wait until it answers its healthcheck.

    `path` goes first on a fnbox service's PYTHONPATH, before its tree (and so reaches its workers);
    `options` go at the end of its command line.
    """
    port = free_port()
    data_dir = tempfile.TemporaryDirectory(prefix="fnbox-bench-") if kind.startswith("fnbox") else None
    argv, cwd = command(kind, port, data_dir.name if data_dir else None)
    argv = [*argv, *options]
    log = log_dir / f"{kind}{tag}.log"
    environ = {**os.environ, "PORT": str(port), "SHUTDOWN_GRACE_PERIOD": "2", **(env or {})}
    if kind.startswith("fnbox"):
        # Worker processes start with `python -P`: without this they would import the installed
        # fnbox (the editable checkout), not the tree this service is served from.
        environ["PYTHONPATH"] = str(cwd) if path is None else os.pathsep.join((str(path), str(cwd)))
    # Like for like: the peers keep no record of runs. bench/recording.py measures what it costs.
    environ.setdefault("EXECUTIONS_RECORD_RUNS", "no")
    with open(log, "w") as out:
        process = subprocess.Popen(argv, cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT)
    service = Service(kind, port, process, log, data_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            service.stop()
            raise ServiceError(f"{kind} exited with {process.returncode} at start: {_tail(log)}")
        if _healthy(port):
            return service
        time.sleep(0.05)
    service.stop()
    raise ServiceError(f"{kind} did not answer within 60 s: {_tail(log)}")


def _healthy(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/sys/healthcheck")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-1500:]


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_memory(pid: int) -> tuple[float, float, int]:
    """(RSS MB, PSS MB, process count) summed over a process tree.

    RSS counts pages shared between processes (libraries, fork copies) once per process;
    PSS shares them out, so its sum is what the tree really holds.
    """
    return tree_memory_of(descendants(pid))


def tree_memory_of(pids: list[int]) -> tuple[float, float, int]:
    rss = pss = 0
    for each in pids:
        try:
            with open(f"/proc/{each}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024, len(pids)


def available_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def have(program: str) -> bool:
    return shutil.which(program) is not None


def process_table(pid: int) -> list[dict[str, object]]:
    """RSS of each process of a tree, with the start of its command line."""
    rows = []
    for each in descendants(pid):
        try:
            with open(f"/proc/{each}/cmdline", "rb") as cmdline:
                argv = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
            rss, _, _ = tree_memory_of([each])
        except OSError:
            continue
        rows.append({"pid": each, "command": f"{argv[:70]} (pid {each})", "rss_mb": rss})
    return rows
