"""Local HTTP targets on 127.0.0.1 for outbound requests: a real server in a thread, with routes as plain functions."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: A route reads the request (its body as `handler.body`) and answers (status, headers, body),
#: or None once it has written its answer itself (a slow drip, say).
Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes] | None]


@contextmanager
def http_target(routes: dict[str, Route]) -> Iterator[str]:
    """Serve `routes` (by path) on a free port of 127.0.0.1; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""  # read, so the next request starts clean
            route = routes.get(self.path.split("?")[0])
            answer = (404, {}, b"no such route") if route is None else route(self)
            if answer is None:  # the route wrote its answer itself
                return
            status, headers, body = answer
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client went away: an attack test's usual end
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = handle_one

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client went away before its request was read: an attack test's usual end
        super().handle_error(request, client_address)
