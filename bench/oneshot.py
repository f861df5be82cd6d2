"""The old way: one process per call, as executors that start a process per call run functions.

    python bench/oneshot.py --port 4400

Same routes and answers as fnbox. Each run writes the workspace's functions of the called
language into one script and starts `node -e SCRIPT PARAMS` or `python3 -c SCRIPT PARAMS`;
`duration` is the wall time of that process. No limit on processes at once, like a naive
executor: 64 connections start 64 processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import textwrap
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

NODE = "node"
#: The plain interpreter under the venv, as a host's `python3` would be.
PYTHON = getattr(sys, "_base_executable", sys.executable)

JS_PRELUDE = """
const cache = {};
const __logs = [];
const __logger = (level) => (...args) => __logs.push({ level, time: Date.now(),
  message: args.map((arg) => (typeof arg === 'string' ? arg : JSON.stringify(arg))).join(' ') });
for (const level of ['log', 'info', 'warn', 'error', 'debug']) console[level] = __logger(level === 'log' ? 'info' : level);
"""
JS_CALL = """
%s(JSON.parse(process.argv[1])).then(
  (result) => process.stdout.write(JSON.stringify({ result: result === undefined ? null : result, logs: __logs })),
  (error) => { process.stderr.write(String(error && error.message ? error.message : error)); process.exit(1); });
"""
PY_PRELUDE = """
import json, sys, time
cache = {}
__logs = []
def print(*args, **kwargs):
    __logs.append({"level": "info", "message": " ".join(map(str, args)), "time": int(time.time() * 1000)})
"""
PY_CALL = """
sys.stdout.write(json.dumps({"result": %s(**json.loads(sys.argv[1])), "logs": __logs}))
"""

documents: dict[str, dict[str, Any]] = {}


def language(spec: dict[str, Any]) -> str:
    return "python" if spec.get("language") == "python" else "javascript"


def script(functions: dict[str, Any], lang: str, name: str) -> str:
    parts = [JS_PRELUDE if lang == "javascript" else PY_PRELUDE]
    for fname, spec in functions.items():
        if language(spec) != lang:
            continue
        params = spec.get("parameters") or {}
        if lang == "javascript":
            names = [p if "default" not in s else f"{p} = {json.dumps(s['default'])}" for p, s in params.items()]
            parts.append(f"async function {fname}({{{', '.join(names)}}} = {{}}) {{\n{spec['code']}\n}}\n")
        else:
            names = [f"{p}={s.get('default')!r}" for p, s in params.items()]
            parts.append(f"def {fname}({', '.join(names)}):\n{textwrap.indent(spec['code'], '    ')}\n    pass\n")
    parts.append((JS_CALL if lang == "javascript" else PY_CALL) % name)
    return "".join(parts)


async def healthcheck(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def save(request: Request) -> Response:
    document = json.loads(await request.body())
    documents[request.path_params["workspace"]] = document
    return JSONResponse(document)


async def run(request: Request) -> Response:
    body = json.loads(await request.body() or b"{}")
    functions = documents.get(request.path_params["workspace"], {}).get("functions", {})
    name = request.path_params["function"]
    if name not in functions:
        return JSONResponse({"error": "NotFound", "message": f"no function {name}", "details": {}}, status_code=404)
    spec = functions[name]
    lang = language(spec)
    declared = spec.get("parameters") or {}
    parameters = {k: v for k, v in (body.get("parameters") or {}).items() if k in declared and v is not None}
    argv = [NODE, "-e"] if lang == "javascript" else [PYTHON, "-c"]
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv,
        script(functions, lang, name),
        json.dumps(parameters),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    duration = (time.perf_counter() - started) * 1000
    if process.returncode != 0:
        message = err.decode(errors="replace")[-500:]
        return JSONResponse(
            {"error": "FunctionError", "message": message, "details": {}, "logs": [], "duration": duration}, 500
        )
    answer = json.loads(out)
    return JSONResponse({**answer, "duration": duration})


app = Starlette(
    routes=[
        Route("/sys/healthcheck", healthcheck, methods=["GET"]),
        Route("/v2/functions/{workspace}", save, methods=["POST", "PUT"]),
        Route("/v2/functions/{workspace}/run/{function}", run, methods=["POST"]),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4400)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
