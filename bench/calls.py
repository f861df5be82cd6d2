"""Python calls per warm call in the server's and the workers' event loops, this tree against an older one.

    python bench/calls.py --before /tmp/fnbox-before [--duration 5] [--top 12]

Serves each tree with its defaults (runs recorded), loads a warm hello in each language with
wrk (16 connections), and counts with cProfile every Python function call (and call of a
builtin) on the event loop's thread of the server and of the worker that runs it, divided by
the requests wrk completed. A count, unlike a time, does not move with the machine's load:
it shows what a change to the hot path adds or takes away, layer by layer, in one run of a
few seconds. Per process, the modules (or builtins) with the most calls follow, for both trees.

How: a `sitecustomize` put first on the services' PYTHONPATH (which their workers inherit)
starts a profile of the main thread on SIGUSR1 and writes it on SIGUSR2; the script signals
every process of a service before and after the measured wrk run. Threads other than the
main one (a Python worker's run threads, V8's, the recorder's writer) are not counted.
"""

from __future__ import annotations

import argparse
import collections
import os
import pstats
import signal
import tempfile
import time
from pathlib import Path

import loadgen
import servers
from recording import HELLO

FUNCTIONS = {"hello": "javascript", "pyhello": "python"}

SITECUSTOMIZE = """
import os, signal

_OUT = os.environ.get("FNBOX_BENCH_PROFILE")
if _OUT:
    import cProfile

    _profiles = []

    def _start(signum, frame):
        _profiles.append(cProfile.Profile())
        _profiles[-1].enable()

    def _stop(signum, frame):
        if _profiles:
            profile = _profiles.pop()
            profile.disable()
            profile.dump_stats(os.path.join(_OUT, f"{os.getpid()}.prof"))

    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
"""


def role(pid: int, server: int) -> str:
    """'server', or the language of a worker process (from its command line)."""
    if pid == server:
        return "server"
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        argv = cmdline.read().decode(errors="replace").split("\0")
    return argv[argv.index("--language") + 1] if "--language" in argv else "other"


def group(path: str, name: str) -> str:
    """A function's module (`fnbox.server.runpath`, `uvicorn...`) or, for a builtin, its name."""
    if path == "~":
        return name.strip("<>")
    parts = Path(path).with_suffix("").parts
    for top in ("fnbox", "uvicorn", "starlette", "asyncio", "prometheus_client"):
        if top in parts:
            return ".".join(parts[parts.index(top) :])
    file = Path(path)
    return file.parent.name if file.stem == "__init__" else file.stem


def measure(
    tree: Path, function: str, duration: float, hook: Path, log_dir: Path
) -> dict[str, collections.Counter[str]]:
    """Calls per request by role and module, for one tree and function."""
    servers.fnbox_dir = tree
    with tempfile.TemporaryDirectory(prefix="fnbox-calls-") as out:
        env = {"EXECUTIONS_RECORD_RUNS": "yes", "FNBOX_BENCH_PROFILE": out}
        with servers.start("fnbox", log_dir, env=env, path=hook, tag=f"-{tree.name}-{function}") as service:
            loadgen.Client(service.port).post("/v2/functions/bench", HELLO)
            url = service.url(f"/v2/functions/bench/run/{function}")
            loadgen.wrk(url, connections=16, duration=1)
            pids = servers.descendants(service.pid)
            roles = {pid: role(pid, service.pid) for pid in pids}
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)
            time.sleep(0.2)
            run = loadgen.wrk(url, connections=16, duration=duration)
            for pid in pids:
                os.kill(pid, signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while len(os.listdir(out)) < len(pids) and time.monotonic() < deadline:
                time.sleep(0.1)
        counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for name in os.listdir(out):
            stats = pstats.Stats(os.path.join(out, name)).stats  # type: ignore[attr-defined]
            counter = counts[roles.get(int(name.split(".")[0]), "other")]
            for (path, _, function_name), (_, calls, *_) in stats.items():
                counter[group(path, function_name)] += calls / run.requests
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the older checkout")
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--top", type=int, default=12, help="modules listed per process")
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="fnbox-calls-"))
    hook = log_dir / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    trees = {"before": args.before.resolve(), "this tree": servers.ROOT}
    print(f"Python calls per request on the event loops' threads (cProfile), wrk 16 connections, {args.duration:g} s")
    for function, language in FUNCTIONS.items():
        counts = {label: measure(tree, function, args.duration, hook, log_dir) for label, tree in trees.items()}
        for process in ("server", language):
            before, after = counts["before"][process], counts["this tree"][process]
            total_before, total_after = sum(before.values()), sum(after.values())
            print(f"\n{function} · {process}: {total_before:.1f} → {total_after:.1f} calls per request")
            for module, _ in (before + after).most_common(args.top):
                print(f"  {before[module]:7.1f} → {after[module]:7.1f}  {module}")


if __name__ == "__main__":
    main()
