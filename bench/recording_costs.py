"""What the execution store spends per recorded run, two source trees side by side, in-process.

    python bench/recording_costs.py --before /tmp/fnbox-before [--rounds 5]
    python bench/recording_costs.py --without-indexes executions_by_status,executions_by_function

Each round starts, for each tree in turn (the order alternating), a Python process that imports
fnbox from that tree, fills a store (with the default bounds of `fnbox serve`) with 100,000 records of a warm hello, then measures in its
own thread's CPU time (steadier than wall time on a shared machine): `to_row` per record,
`write_many` of 500-record batches per record, and the retention that deletes the 10,000 records
past `max_count` per record deleted. Medians of the rounds, and each tree's ratio to the older one;
about 15 s a round. `--without-indexes` measures this tree against itself with those indexes of
the execution table dropped (what each index costs a record, to weigh against the listings it serves).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, os, sys, tempfile, time
from fnbox.executions.bounds import RecordBounds
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore, new_execution_id, to_row
from fnbox.sandboxes.base import RunResult

def hello():
    execution = Execution(
        new_execution_id(), "bench", "pyhello", "v1", "python", {"name": "world"}, status=ExecutionStatus.RUNNING
    )
    execution.started = execution.created
    execution.succeed(RunResult("Hello world", [], 0.05))
    return execution

BATCH = 500
with tempfile.TemporaryDirectory() as folder:
    # The bounds `fnbox serve` applies by default: 1 MB a record, 1 GB in all.
    store = ExecutionStore(os.path.join(folder, "executions.sqlite3"), bounds=RecordBounds(2**20, 2**30))
    for index in filter(None, os.environ.get("FNBOX_BENCH_DROP_INDEXES", "").split(",")):
        store._db.execute(f"DROP INDEX {index}")
    for _ in range(200):
        store.write_many([hello() for _ in range(BATCH)])
    batches = [[hello() for _ in range(BATCH)] for _ in range(20)]
    start = time.thread_time()
    for batch in batches:
        for execution in batch:
            to_row(execution)
    rows = time.thread_time() - start
    start = time.thread_time()
    for batch in batches:
        store.write_many(batch)
    writes = time.thread_time() - start
    start = time.thread_time()
    deleted = store.prune(100_000, None)
    prune = time.thread_time() - start
    store.close()
records = len(batches) * BATCH
print(json.dumps({"to_row": rows / records * 1e6, "write_many": writes / records * 1e6, "prune": prune / deleted * 1e6}))
"""


def measure(tree: Path, drop: str = "") -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "FNBOX_BENCH_DROP_INDEXES": drop}
    out = subprocess.run(
        [sys.executable, "-P", "-c", MEASURE], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--before", type=Path, help="the older checkout")
    chosen.add_argument("--without-indexes", metavar="NAMES", help="indexes to drop, separated by commas")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # label: (tree, indexes dropped); ratios are to the first
    if args.before is not None:
        trees = {"before": (args.before.resolve(), ""), "this tree": (ROOT, "")}
    else:
        trees = {"all indexes": (ROOT, ""), "without": (ROOT, args.without_indexes)}
    results: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
    for round_number in range(args.rounds):
        order = list(trees.items())
        for label, (tree, drop) in order if round_number % 2 == 0 else reversed(order):
            results[label].append(measure(tree, drop))
    print(f"CPU µs per record (thread time), median of {args.rounds} rounds; store of 100,000 records")
    print(f"{'tree':11} {'to_row':>8} {'write_many':>11} {'prune':>8}   ratios to the first")
    first = next(iter(results.values()))
    base = {key: statistics.median(run[key] for run in first) for key in first[0]}
    for label in trees:
        figures = {key: statistics.median(run[key] for run in results[label]) for key in base}
        ratios = " ".join(f"{figures[key] / base[key]:.2f}" for key in base)
        print(f"{label:11} {figures['to_row']:8.2f} {figures['write_many']:11.2f} {figures['prune']:8.2f}   {ratios}")


if __name__ == "__main__":
    main()
