"""Run fnbox's benchmark suite; write bench/results/README.md, PNG plots and results.json.

    . .venv/bin/activate && pip install -e . && python bench/run.py      # full, under 10 min on 2 cores
    python bench/run.py --quick                                         # smoke: 1 short run per figure
    python bench/run.py --only warm,cold --runs 5 --duration 10         # some sections, longer runs
    python bench/run.py --before ../fnbox-before --only warm,cold      # an older checkout side by side
    python bench/report.py                                              # re-render results.json

It installs what it needs itself: `npm ci` for the Node peers (bench/peers/), matplotlib into
the current venv if it is missing, and wrk with apt-get if it is missing (needs root).
Sections: warm, cold, memory, spread, cpu, leak.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import measure
import report
import servers

SECTIONS = ("warm", "cold", "memory", "spread", "cpu", "leak")
#: Sections that share one set of running services.
SHARED = tuple(measure.SHARED_TARGETS)


def ensure_tools() -> None:
    if not servers.have("wrk"):
        if os.geteuid() != 0:
            sys.exit("wrk is missing: install it (apt-get install wrk) and run again")
        print("installing wrk: apt-get install -y wrk", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(f"installing matplotlib into {sys.prefix} (pip install matplotlib)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="fnbox benchmark suite")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1 run of 1 s per figure, smaller counts")
    parser.add_argument("--runs", type=int, help="wrk runs per figure, the median is kept (default 3)")
    parser.add_argument(
        "--duration", type=float, help="seconds per wrk run (default 3, at least 3 for process per call)"
    )
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--skip", default="", help=f"comma-separated services to leave out, of {servers.KINDS}")
    parser.add_argument("--leak-runs", type=int, help="warm runs per language in the leak section (default 100000)")
    parser.add_argument(
        "--memory-budget-mb",
        type=float,
        help="most RSS one service may reach in the memory section; past it, figures are extrapolated (default 4000)",
    )
    parser.add_argument("--fnbox", type=Path, default=servers.ROOT, help="fnbox checkout to serve (default this repo)")
    parser.add_argument(
        "--before",
        type=Path,
        help="an older fnbox checkout (git worktree add ../fnbox-before COMMIT), served side by side "
        "in the warm and cold sections as `fnbox before`",
    )
    parser.add_argument("--out", type=Path, default=servers.BENCH / "results")
    args = parser.parse_args(argv)
    unknown = set(args.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    servers.fnbox_dir = args.fnbox.resolve()
    servers.before_dir = args.before.resolve() if args.before else None
    started = time.monotonic()
    sections = [s for s in SECTIONS if s in args.only.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    log_dir = args.out / "logs"
    log_dir.mkdir(exist_ok=True)
    ensure_tools()

    problems: dict[str, str] = {}
    skipped = {k for k in args.skip.split(",") if k}
    if args.before is None:
        skipped.add("fnbox-before")
    problems.update({k: "left out with --skip" for k in skipped if k != "fnbox-before" or args.before})
    if servers.have("node"):
        problems.update(servers.install_peers(log_dir))
    else:
        problems.update({peer: "node is not installed" for peer in servers.PEERS})
    kinds = tuple(k for k in servers.KINDS if k not in problems and k not in skipped)

    changes = {
        k: v
        for k, v in {
            "runs": args.runs,
            "duration": args.duration,
            "leak_runs": args.leak_runs,
            "memory_budget_mb": args.memory_budget_mb,
        }.items()
        if v is not None
    }
    plan = measure.Plan.quick(**changes) if args.quick else measure.Plan(**changes)
    plan.log_dir, plan.kinds = log_dir, kinds
    command = "python bench/run.py" + (" " + shlex.join(argv if argv is not None else sys.argv[1:])).rstrip()
    results: dict = {
        "command": command.strip(),
        "quick": args.quick,
        "machine": measure.machine(),
        "plan": {k: v for k, v in asdict(plan).items() if k not in ("log_dir", "progress")},
        "problems": problems,
    }

    def keep(name: str, value: object) -> None:
        results[name] = value
        if name in SECTIONS:
            results.setdefault("section_s", {})[name] = time.monotonic() - section_started[0]
        section_started[0] = time.monotonic()
        results["elapsed_s"] = time.monotonic() - started
        (args.out / "results.json").write_text(json.dumps(results, indent=1, default=str))

    section_started = [time.monotonic()]
    shared = [s for s in SHARED if s in sections]
    if shared:
        wanted = {kind for name in shared for _, kind, _ in measure.SHARED_TARGETS[name]}
        needed = [k for k in kinds if k in wanted]
        running = {}
        try:
            for kind in needed:
                print(f"starting {kind}", flush=True)
                try:
                    running[kind] = servers.start(kind, log_dir)
                except servers.ServiceError as exc:
                    problems[kind] = str(exc)
            plan.kinds = tuple(running)
            for name in shared:
                print(f"== {name}", flush=True)
                keep(name, getattr(measure, name)(plan, running))
        finally:
            for service in running.values():
                service.stop()
    for name in ("memory", "leak"):
        if name in sections:
            print(f"== {name}", flush=True)
            plan.kinds = kinds
            keep(name, getattr(measure, name)(plan))
    results["machine"]["load_average"] += f" at start; {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end"
    keep("problems", problems)
    path = report.write(results, args.out)
    print(f"wrote {path} in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
