"""Instructions of recording a synchronous run, split by thread, two source trees side by side.

    python bench/recording_path.py --before /tmp/fnbox-before [--calls 20000] [--rounds 1]

For each tree (the order alternating), a Python process that imports fnbox from that tree runs
under valgrind's callgrind, one output per thread: on its event loop it makes `--calls` records
of a warm hello as `Runtime.run` does (an id, an `Execution`, `Recorder.record`) into a store
of 100,000 records (made by that tree), and yields to the loop between them so that the
recorder writes them in batches as it does in a server. The same loop without records is
subtracted from the event loop's count; every other thread's count is the writer's. Retention is off (see
`recording_costs.py` for its cost): its runs fall where the timing puts them. Instruction
counts do not move with the load on a shared machine, as CPU times do by ±10%. About a minute
a process.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILL = r"""
import sys
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore, new_execution_id
from fnbox.sandboxes.base import RunResult

store = ExecutionStore(sys.argv[1])
for _ in range(200):
    batch = []
    for _ in range(500):
        execution = Execution(new_execution_id(), "bench", "pyhello", "v1", "python", {"name": "world"})
        execution.started = execution.created
        execution.succeed(RunResult("Hello world", [], 0.05))
        batch.append(execution)
    store.write_many(batch)
store.close()
"""

CALLS = r"""
import asyncio, shutil, sys, time
from fnbox.executions.bounds import RecordBounds
from fnbox.executions.recorder import Recorder
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore, new_execution_id
from fnbox.server import collector

collector.tune()  # as `fnbox serve` does: records waiting for their batch are not walked every few calls
template, path, calls, record = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "yes"
shutil.copy(template, path)


async def main():
    store = ExecutionStore(path, bounds=RecordBounds(2**20, 2**30))  # the bounds of `fnbox serve`
    recorder = Recorder(store)
    recorder.start()
    parameters = {"name": "world"}
    for number in range(calls):
        if record:
            execution_id, started = new_execution_id(), time.time()
            recorder.record(Execution(
                execution_id, "bench", "pyhello", "v1", "python", parameters, ExecutionStatus.SUCCESSFUL,
                started, started, time.time(), "Hello world", [], 0.05, None, None,
            ))
        await asyncio.sleep(0)
        if number % 500 == 499:
            await asyncio.sleep(0.002)  # a batch's worth of calls, then the writer's turn
    await recorder.close()
    store.close()


asyncio.run(main())
"""


def counts(tree: Path, template: Path, calls: int, record: bool, folder: Path) -> tuple[int, int]:
    """Instructions of the event loop's thread and of all the others, for one process."""
    out = Path(tempfile.mkdtemp(dir=folder))
    argv = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}/cg"]
    argv += [sys.executable, "-P", "-c", CALLS, str(template), str(out / "store.sqlite3"), str(calls)]
    argv.append("yes" if record else "no")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(argv, cwd=tree, env=env, check=True, capture_output=True)
    threads = {}
    for name in glob.glob(f"{out}/cg*"):
        with open(name) as text:
            found = re.search(r"^(?:summary|totals): (\d+)", text.read(), re.MULTILINE)
        if found:
            threads[int(name.rsplit("-", 1)[-1])] = int(found.group(1))
    shutil.rmtree(out)
    return threads[1], sum(count for thread, count in threads.items() if thread != 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the older checkout")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    trees = {"before": args.before.resolve(), "this tree": ROOT}
    results: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
    with tempfile.TemporaryDirectory(prefix="fnbox-recording-path-") as folder:
        templates = {}
        for label, tree in trees.items():  # each tree's own store (its page size, say)
            templates[label] = Path(folder) / f"template-{len(templates)}.sqlite3"
            env = {**os.environ, "PYTHONPATH": str(tree)}
            subprocess.run([sys.executable, "-P", "-c", FILL, str(templates[label])], env=env, cwd=tree, check=True)
        for round_number in range(args.rounds):
            order = list(trees.items())
            for label, tree in order if round_number % 2 == 0 else reversed(order):
                idle, _ = counts(tree, templates[label], args.calls, False, Path(folder))
                loop, writer = counts(tree, templates[label], args.calls, True, Path(folder))
                results[label].append(((loop - idle) / args.calls, writer / args.calls))
    print(f"instructions per recorded run (callgrind), {args.calls} runs into 100,000 records, median of {args.rounds}")
    print(f"{'tree':10} {'event loop':>11} {'writer':>9}   ratios to before")
    base = [statistics.median(run[i] for run in results["before"]) for i in (0, 1)]
    for label in trees:
        loop, writer = (statistics.median(run[i] for run in results[label]) for i in (0, 1))
        print(f"{label:10} {loop:11,.0f} {writer:9,.0f}   {loop / base[0]:.2f} {writer / base[1]:.2f}")


if __name__ == "__main__":
    main()
