"""Start the real `fnbox serve` on a free port, for tests that need a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_server(
    data_dir: Path,
    *,
    args: Sequence[str] = (),
    command: Sequence[str] = (sys.executable, "-m", "fnbox"),
    cwd: Path = ROOT,
    **environ: str,
) -> Iterator[RunningServer]:
    """`fnbox serve [args]` on a free port; its stderr goes to a file (a pipe nobody reads could fill up).

    `command` starts fnbox (the `fnbox` script, say) from `cwd`.
    """
    port = free_port()
    env = {**os.environ, "PORT": str(port), "FUNCTIONS_STORAGE_FILESYSTEM_DIRPATH": str(data_dir), **environ}
    log_path = Path(tempfile.mkstemp(prefix="fnbox-server-", suffix=".log")[1])
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*command, "serve", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    server = RunningServer(url, process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/sys/healthcheck", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log_path.unlink(missing_ok=True)
