"""The real-world JavaScript suite (tests/sandboxes/js/realworld.py) on plain Node and on fnbox.

    python bench/js_realworld.py [--tree /work/main] [--table]

Prints how many bodies answer on fnbox what they answer on Node, for the fnbox of `--tree`
(default: this checkout), and with `--table` one row per body. Node is /usr/bin/node.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "tests" / "sandboxes" / "js" / "realworld.py"


def _fnbox_results(tree: Path) -> dict[str, dict[str, object]]:
    """The bodies' outcomes on the fnbox of `tree`, in a process of its own."""
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('realworld', {str(SUITE)!r})\n"
        "realworld = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(realworld)\n"
        "print(json.dumps(realworld.fnbox_results()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd="/", capture_output=True, text=True, check=True)
    results: dict[str, dict[str, object]] = json.loads(done.stdout)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", default=str(ROOT), help="the source tree whose fnbox runs the bodies")
    parser.add_argument("--table", action="store_true", help="one row per body")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.sandboxes.js import realworld

    node = realworld.node_results()
    fnbox = _fnbox_results(Path(args.tree))
    same = [name for name in realworld.BODIES if node[name] == fnbox[name]]
    if args.table:
        print("| body | Node | fnbox | same |\n|---|---|---|---|")
        for name in realworld.BODIES:
            mark = lambda outcome: "ok" if outcome["ok"] else "fails"  # noqa: E731
            print(f"| {name} | {mark(node[name])} | {mark(fnbox[name])} | {'yes' if name in same else 'no'} |")
    print(
        f"{args.tree}: {len(same)} of {len(realworld.BODIES)} bodies answer as on Node ({sum(1 for r in node.values() if r['ok'])} run on Node)"
    )


if __name__ == "__main__":
    main()
