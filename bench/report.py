"""Write bench/results/README.md (markdown tables) and PNG plots from results.json.

python bench/report.py [bench/results/results.json]      # re-render without re-measuring
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

LANG = {"javascript": "JS", "python": "Python", "none": "-"}


def fmt(value: float, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def series(row: dict[str, Any]) -> str:
    return f"{row['target']} {LANG[row['language']]}".rstrip(" -")


def write(results: dict[str, Any], folder: Path) -> Path:
    plots = _plots(results, folder)
    lines = ["# fnbox benchmark results", ""]
    lines += [
        f"Written by `{results['command']}` in {results['elapsed_s'] / 60:.1f} min "
        f"({'quick smoke mode: 1 short run per figure, not for publishing' if results['quick'] else 'full mode'}). "
        f"Throughput figures are the median of {results['plan']['runs']} wrk run(s) of "
        f"{results['plan']['duration']:g} s each (`wrk -t1 -cN --latency`), after a warm-up.",
        "",
    ]
    if results.get("section_s"):
        lines += ["Time per section (s): " + ", ".join(f"{k} {v:.0f}" for k, v in results["section_s"].items()), ""]
    lines += ["## Machine", ""]
    lines += table(["what", "value"], [[k, str(v)] for k, v in results["machine"].items()])
    if results.get("problems"):
        lines += ["## Not measured", ""] + [f"- {k}: {v}" for k, v in results["problems"].items()] + [""]
    for name, render in (
        ("warm", _warm),
        ("cold", _cold),
        ("memory", _memory),
        ("spread", _spread),
        ("cpu", _cpu),
        ("leak", _leak),
    ):
        if name in results:
            lines += render(results[name])
            if name in plots:
                lines += [f"![{name}]({plots[name]})", ""]
    lines += _notes()
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path


def _warm(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 2. Warm `hello` over HTTP",
        "",
        "Requests/s, p50 and p99 latency (ms) at 1, 16 and 64 connections. Errors are non-2xx answers "
        "and socket errors (connect, read, write, timeout) over all runs; results.json splits them.",
        "",
    ]
    conns = sorted({r["connections"] for r in rows})
    names = list(dict.fromkeys(series(r) for r in rows))
    at = {(series(r), r["connections"]): r for r in rows}
    header = ["service"] + [f"{c} conn: {what}" for c in conns for what in ("req/s", "p50", "p99")] + ["errors"]
    body = [
        [name]
        + [fmt(at[name, c][key], 2 if key != "rps" else 0) for c in conns for key in ("rps", "p50_ms", "p99_ms")]
        + [str(sum(at[name, c]["errors"] for c in conns))]
        for name in names
    ]
    lines += table(header, body)
    mine = [n for n in names if n.startswith("fnbox ") and not n.startswith("fnbox before ")]
    lines += ["Ratios: fnbox's requests/s divided by each other's (above 1: fnbox serves more).", ""]
    header = ["÷ service"] + [f"{m}, {c} conn" for m in mine for c in conns]
    body = [
        [name]
        + [fmt(at[m, c]["rps"] / at[name, c]["rps"], 2) if at[name, c]["rps"] else "n/a" for m in mine for c in conns]
        for name in names
        if name not in mine
    ]
    return lines + table(header, body)


def _cold(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 3. Cold start",
        "",
        "From the start of saving a new workspace to the end of its first run, over HTTP (ms, median of "
        f"{rows[0]['samples'] if rows else 0} new workspaces); then its parts, and the next (warm) run.",
        "",
    ]
    return lines + table(
        ["service", "cold start", "max", "save", "first run", "next run"],
        [
            [
                series(r),
                fmt(r["cold_ms"], 2),
                fmt(r["cold_max_ms"], 2),
                fmt(r["save_ms"], 2),
                fmt(r["first_run_ms"], 2),
                fmt(r["warm_run_ms"], 2),
            ]
            for r in rows
        ],
    )


def _memory(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 4. Memory",
        "",
        "Service memory (MB, all its processes) with n warm workspaces, each saved and run once, on a fresh "
        "service whose LRU holds them all. Cells are RSS summed over the process tree / PSS (shared pages "
        "shared out, what the tree really holds). `~` marks an estimate: the step would have passed the "
        "memory budget, so it is extrapolated from the measured steps. Per warm sandbox: RSS slope from "
        "the second count to the last measured one (the first sandboxes also start an engine per worker "
        "process).",
        "",
    ]
    counts = sorted({p["workspaces"] for r in rows for p in r["points"]})
    body = []
    for r in rows:
        cells = {
            p["workspaces"]: (
                f"{fmt(p['rss_mb'], 0)} / {fmt(p['pss_mb'], 0)}" if p["measured"] else f"~{fmt(p['rss_mb'], 0)}"
            )
            for p in r["points"]
        }
        body.append([series(r)] + [cells.get(c, "") for c in counts] + [f"{fmt(r['per_sandbox_kb'], 0)} KB"])
    return lines + table(["service"] + [f"{c} warm" for c in counts] + ["per warm sandbox"], body)


def _spread(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 5. Spread",
        "",
        "Requests/s (p99 ms) at 16 connections when each call picks one of n workspaces at random, with "
        "the default LRU of 500 warm sandboxes: past 500, calls meet evicted sandboxes.",
        "",
    ]
    counts = sorted({r["workspaces"] for r in rows})
    names = list(dict.fromkeys(series(r) for r in rows))
    at = {(series(r), r["workspaces"]): r for r in rows}
    body = [
        [name]
        + [f"{fmt(at[name, c]['rps'], 0)} ({fmt(at[name, c]['p99_ms'], 1)})" for c in counts]
        + [str(sum(at[name, c]["errors"] for c in counts))]
        for name in names
    ]
    return lines + table(["service"] + [f"{c} workspaces" for c in counts] + ["errors"], body)


def _cpu(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## 6. CPU-bound: recursive `fib(25)`",
        "",
        "Time of one call (ms, median): inside the sandbox as the service reports it (`duration`), the whole "
        "HTTP call, and the sandbox time divided by the same code in plain `node` / `python3` "
        "(timed inside one warm process).",
        "",
    ]
    return lines + table(
        ["runtime", "fib(25) ms", "HTTP call ms", "÷ plain"],
        [[series(r), fmt(r["duration_ms"], 2), fmt(r["wall_ms"], 2), fmt(r["ratio_to_plain"], 2)] for r in rows],
    )


def _leak(result: dict[str, Any]) -> list[str]:
    lines = [
        "## 7. Leaks",
        "",
        f"fnbox's memory after a warm-up, then after {result['runs']:,} warm runs of each language (16 connections).",
        "",
    ]
    steps = result["steps"]
    lines += table(
        ["step", "RSS MB", "PSS MB", "processes", "RSS growth MB"],
        [
            [
                s["step"],
                fmt(s["rss_mb"], 1),
                fmt(s["pss_mb"], 1),
                str(s["processes"]),
                fmt(s["rss_mb"] - steps[0]["rss_mb"], 1),
            ]
            for s in steps
        ],
    )
    lines += ["RSS by process (MB), same steps:", ""]
    commands = list(dict.fromkeys(p["command"] for s in steps for p in s["by_process"]))
    rss = [{p["command"]: p["rss_mb"] for p in s["by_process"]} for s in steps]
    return lines + table(
        ["process"] + [f"step {i + 1}" for i in range(len(steps))],
        [[f"`{c}`"] + [fmt(r.get(c, float("nan")), 1) for r in rss] for c in commands],
    )


def _notes() -> list[str]:
    return [
        "## How it is measured",
        "",
        "- Every service answers the same REST calls (`POST /v2/functions/{ws}` saves, "
        "`POST /v2/functions/{ws}/run/{fn}` runs) and is started by the runner on a free loopback port.",
        "- fnbox runs as `fnbox serve` with its defaults (worker processes per language = CPU count, LRU 500, "
        "ACCESS_LOG as in the environment; EXECUTIONS_RECORD_RUNS=no unless set, since the peers keep no "
        "record of runs: `python bench/recording.py` measures what recording costs). The ceiling is a bare Starlette app on uvicorn with the same "
        "uvicorn options, "
        "reading and parsing the body and answering the same JSON without running anything.",
        "- vm2 peer: Node `http`, one `worker_threads` Worker per workspace running the workspace's generated "
        "script in a vm2 NodeVM, LRU of workers (the model service's design). isolated-vm peer: one isolate "
        "and context per workspace, LRU. Both are JavaScript only, so they have no Python series.",
        "- Process per call: a Starlette server that starts `node -e` / `python3 -c` with the workspace's "
        "functions for each run (no cap on processes at once).",
        "- Latency percentiles come from wrk's `--latency`; wrk runs one client thread on the same 2 cores as "
        "the service, so every figure includes the load generator's own CPU share.",
        "",
    ]


def _plots(results: dict[str, Any], folder: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = {}
    if results.get("warm"):
        rows = results["warm"]
        names = list(dict.fromkeys(series(r) for r in rows))
        conns = sorted({r["connections"] for r in rows})
        at = {(series(r), r["connections"]): r for r in rows}
        figure, axes = plt.subplots(1, 2, figsize=(13, 5))
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            xs = [j + i * width for j in range(len(conns))]
            axes[0].bar(xs, [at[name, c]["rps"] for c in conns], width, label=name)
            axes[1].bar(xs, [at[name, c]["p99_ms"] for c in conns], width, label=name)
        for ax, title in zip(axes, ("requests/s (log)", "p99 latency ms (log)")):
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(conns))], [f"{c} conn" for c in conns])
            ax.set_yscale("log")
            ax.set_title(title)
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
        made["warm"] = _save(figure, folder / "warm.png", bottom=0.14)
    if results.get("cold"):
        rows = results["cold"]
        figure, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh([series(r) for r in rows], [r["cold_ms"] for r in rows])
        ax.set_xlabel("ms from save to end of first run (median)")
        made["cold"] = _save(figure, folder / "cold.png")
    if results.get("memory"):
        figure, ax = plt.subplots(figsize=(7, 4.5))
        for r in results["memory"]:
            points = r["points"]
            line = ax.plot(
                [p["workspaces"] for p in points if p["measured"]],
                [p["rss_mb"] for p in points if p["measured"]],
                marker="o",
                label=series(r),
            )
            guessed = [p for p in points if not p["measured"]]
            if guessed:
                last = [p for p in points if p["measured"]][-1]
                ax.plot(
                    [last["workspaces"]] + [p["workspaces"] for p in guessed],
                    [last["rss_mb"]] + [p["rss_mb"] for p in guessed],
                    ls="--",
                    color=line[0].get_color(),
                )
        ax.set_xlabel("warm workspaces")
        ax.set_ylabel("service RSS, MB (dashed: estimated)")
        ax.legend(fontsize=8)
        made["memory"] = _save(figure, folder / "memory.png")
    if results.get("spread"):
        rows = results["spread"]
        figure, ax = plt.subplots(figsize=(7, 4.5))
        for name in dict.fromkeys(series(r) for r in rows):
            mine = [r for r in rows if series(r) == name]
            ax.plot([r["workspaces"] for r in mine], [r["rps"] for r in mine], marker="o", label=name)
        ax.axvline(500, color="grey", ls=":", label="LRU size")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("workspaces the calls are spread over")
        ax.set_ylabel("requests/s at 16 connections")
        ax.legend(fontsize=8)
        made["spread"] = _save(figure, folder / "spread.png")
    return made


def _save(figure: Any, path: Path, bottom: float = 0.0) -> str:
    figure.tight_layout(rect=(0, bottom, 1, 1))
    figure.savefig(path, dpi=110)
    figure.clf()
    return path.name


if __name__ == "__main__":
    source = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "results.json")
    print(write(json.loads(source.read_text()), source.parent))
