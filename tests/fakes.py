"""A fake sandbox for testing the layers above the real ones.

A function's code is a tiny script of our own: `echo` returns its parameters,
`sleep 0.2` sleeps then returns "slept", `count` increments a per-sandbox counter,
`talk 0.3` logs "one", sleeps, logs "two" and returns "talked", `followed` returns whether
the worker read a run for the same sandbox right after it (sandboxes.arrivals), `break` marks the sandbox
broken, `syntax error` fails to compile. In worker processes:
`hang` blocks the whole worker (like C code holding the GIL), `linger` answers
TimeoutExceeded then aborts its worker 0.3 s later (as V8's native work of a timed-out run
can), `babble` logs "one" then
hangs so, `exit` kills it, and
`hog` touches 400 MB of memory and holds it.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fnbox.sandboxes import arrivals
from fnbox.sandboxes.base import FunctionSource, Limits, LogCollector, OnLog, RunResult
from fnbox.sandboxes.errors import CompilationError, NotFound, TimeoutExceeded


def _frames_fd() -> int:
    """The worker's end of its answer pipe (fd 1 points at stderr in a worker): its one writable pipe past 2."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            if fd > 2 and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
                    return fd
        except OSError:
            continue
    raise AssertionError("no answer pipe")


class FakeSandbox:
    def __init__(self, functions: Sequence[FunctionSource]) -> None:
        self.functions = {f.name: f for f in functions}
        self.errors = {
            f.name: CompilationError(f"{f.name}: syntax error", details={"function": f.name, "line": 1})
            for f in functions
            if f.code == "syntax error"
        }
        self.broken = False
        self.closed = False
        self.counter = 0
        self.runs: list[str] = []

    async def run(
        self, function: str, parameters: Mapping[str, Any], limits: Limits, *, on_log: OnLog | None = None
    ) -> RunResult:
        if self.closed:
            raise AssertionError("run on a closed sandbox")
        if function not in self.functions:
            raise NotFound(function)
        if function in self.errors:
            raise self.errors[function]
        self.runs.append(function)
        code = self.functions[function].code
        if code == "echo":
            return RunResult(result=dict(parameters), logs=[], duration=0.1)
        if code.startswith("sleep"):
            seconds = float(code.split()[1])
            if seconds > limits.timeout:
                await asyncio.sleep(limits.timeout)
                raise TimeoutExceeded("too slow", logs=[], duration=limits.timeout * 1000)
            await asyncio.sleep(seconds)
            return RunResult(result="slept", logs=[], duration=seconds * 1000)
        if code == "linger":
            threading.Timer(0.3, os.abort).start()
            raise TimeoutExceeded("too slow", logs=[], duration=limits.timeout * 1000)
        if code == "babble":
            LogCollector(live=on_log).add("info", "one")
            time.sleep(3600)
        if code.startswith("talk"):
            logs = LogCollector(live=on_log)
            logs.add("info", "one")
            await asyncio.sleep(float(code.split()[1]))
            logs.add("warn", "two")
            return RunResult(result="talked", logs=logs.finish(), duration=0.1)
        if code == "count":
            self.counter += 1
            return RunResult(result=self.counter, logs=[], duration=0.1)
        if code == "hang":
            time.sleep(3600)
        if code == "exit":
            os._exit(3)
        if code.startswith("frame "):  # bytes of its own on the worker's stdout, in the middle of the frames
            os.write(_frames_fd(), bytes.fromhex(code[6:]))
            await asyncio.sleep(3600)
        if code == "half":  # the start of an answer frame on the worker's stdout, then death
            os.write(_frames_fd(), (1000).to_bytes(4, "big") + b'{"id": 0, "result": "')
            os._exit(3)
        if code == "hog":
            self.hog = bytearray(400 * 1024 * 1024)
            for offset in range(0, len(self.hog), 4096):
                self.hog[offset] = 1
            await asyncio.sleep(3600)
        if code == "pid":
            return RunResult(result=os.getpid(), logs=[], duration=0.1)
        if code == "followed":
            return RunResult(result=arrivals.followed(), logs=[], duration=0.1)
        if code == "break":
            self.broken = True
            raise TimeoutExceeded("wedged", logs=[], duration=1.0)
        return RunResult(result=code, logs=[], duration=0.1)

    def close(self) -> None:
        self.closed = True


class FakeFactory:
    """Builds fake sandboxes and remembers them, so tests can look at what was built."""

    def __init__(self) -> None:
        self.built: list[FakeSandbox] = []

    def __call__(self, functions: Sequence[FunctionSource]) -> FakeSandbox:
        sandbox = FakeSandbox(functions)
        self.built.append(sandbox)
        return sandbox
