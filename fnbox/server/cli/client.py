"""The two back ends of the command line, with the same methods and one error type.

`HttpClient` talks to a running server; `LocalClient` works on a data directory through
the Runtime, with no server (for a directory that no running server uses: a server keeps
its workspaces in memory, and a Runtime that starts marks the executions it finds running
as interrupted). Every failure is a `ClientError` whose message says what to do next.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import httpx2 as httpx

from fnbox.sandboxes.errors import FnboxError
from fnbox.server.cli.output import Progress, upload_chunks

if TYPE_CHECKING:  # the Runtime is imported only by --local commands: it costs a quarter of a second
    from fnbox.executions.records import Execution, ExecutionStore
    from fnbox.workspaces.runtime import Runtime, RuntimeOptions

__all__ = ["DEFAULT_URL", "Client", "ClientError", "HttpClient", "LocalClient"]

DEFAULT_URL = "http://127.0.0.1:4000"
#: How long a run or a followed log stream may take before the client gives up, seconds.
LONG_READ = 3600.0
#: Times a log stream cut before its end is resumed.
RECONNECTS = 3
T = TypeVar("T")


class ClientError(Exception):
    """What went wrong, as the server (or the Runtime) said it, and what to try."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        logs: list[dict[str, Any]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.code, self.details, self.logs, self.hint = message, code, details or {}, logs, hint


class Client(Protocol):
    def list_workspaces(self) -> list[str]: ...
    def get_workspace(self, name: str) -> dict[str, Any]: ...
    def import_archive(
        self,
        name: str,
        data: bytes,
        *,
        filename: str | None = None,
        function: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]: ...
    def delete_workspace(self, name: str) -> None: ...
    def export_archive(self, name: str) -> bytes: ...
    def run(self, workspace: str, function: str, parameters: dict[str, Any]) -> dict[str, Any]: ...
    def start(self, workspace: str, function: str, parameters: dict[str, Any]) -> dict[str, Any]: ...
    def get_execution(self, execution_id: str) -> dict[str, Any]: ...
    def list_executions(self, **filters: Any) -> dict[str, Any]: ...
    def follow(self, execution_id: str) -> Iterator[tuple[str, dict[str, Any]]]: ...
    def close(self) -> None: ...


# ---- over HTTP -------------------------------------------------------------------------


class HttpClient:
    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.Client(
            base_url=self.url, timeout=httpx.Timeout(30.0, connect=5.0), transport=transport, headers=headers
        )

    def close(self) -> None:
        self._http.close()

    def list_workspaces(self) -> list[str]:
        names: list[str] = self._json("GET", "/v2/functions")
        return names

    def get_workspace(self, name: str) -> dict[str, Any]:
        return self._json("GET", f"/v2/functions/{_seg(name)}")

    def import_archive(
        self,
        name: str,
        data: bytes,
        *,
        filename: str | None = None,
        function: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        if filename:
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{urllib.parse.quote(filename)}"
        return self._json(
            "PUT",
            f"/v2/functions/{_seg(name)}/archive",
            content=upload_chunks(data, progress),
            headers=headers,
            params={} if function is None else {"function": function},
            timeout=httpx.Timeout(30.0, connect=5.0, read=LONG_READ),
        )

    def delete_workspace(self, name: str) -> None:
        self._send("DELETE", f"/v2/functions/{_seg(name)}")

    def export_archive(self, name: str) -> bytes:
        return self._send("GET", f"/v2/functions/{_seg(name)}/archive").content

    def set_secret(self, workspace: str, name: str, value: str) -> dict[str, Any]:
        return self._json("PUT", f"/v2/functions/{_seg(workspace)}/secrets/{_seg(name)}", json=value)

    def list_secrets(self, workspace: str) -> list[dict[str, Any]]:
        secrets: list[dict[str, Any]] = self._json("GET", f"/v2/functions/{_seg(workspace)}/secrets")["secrets"]
        return secrets

    def delete_secret(self, workspace: str, name: str) -> None:
        self._send("DELETE", f"/v2/functions/{_seg(workspace)}/secrets/{_seg(name)}")

    def run(self, workspace: str, function: str, parameters: dict[str, Any]) -> dict[str, Any]:
        response = self._send(
            "POST",
            f"/v2/functions/{_seg(workspace)}/run/{_seg(function)}",
            json={"parameters": parameters},
            timeout=httpx.Timeout(30.0, connect=5.0, read=LONG_READ),
        )
        body: dict[str, Any] = response.json()
        if "x-execution-id" in response.headers:
            body["execution"] = response.headers["x-execution-id"]
        return body

    def start(self, workspace: str, function: str, parameters: dict[str, Any]) -> dict[str, Any]:
        return self._json(
            "POST",
            f"/v2/functions/{_seg(workspace)}/run/{_seg(function)}",
            json={"parameters": parameters},
            headers={"Prefer": "respond-async"},
        )

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v2/executions/{_seg(execution_id)}")

    def list_executions(self, **filters: Any) -> dict[str, Any]:
        params = {key: value for key, value in filters.items() if value is not None}
        return self._json("GET", "/v2/executions", params=params)

    def follow(self, execution_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """("log", entry) as each entry is logged, then ("end", {"id", "status", "duration", "error"}).

        A stream cut before its end is resumed after the last entry received (Last-Event-ID).
        """
        last: str | None = None
        for attempt in range(RECONNECTS + 1):
            if attempt:
                time.sleep(0.5 * attempt)
            headers = {} if last is None else {"Last-Event-ID": last}
            try:
                with self._http.sse(
                    f"/v2/executions/{_seg(execution_id)}/logs",
                    params={"follow": "true"},
                    headers=headers,
                    timeout=httpx.Timeout(30.0, connect=5.0, read=LONG_READ),
                ) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise self._error(source.response)
                    for event in source:
                        if event.event == "log":
                            last = event.id or last
                            yield "log", cast(dict[str, Any], event.json())
                        elif event.event == "end":
                            yield "end", cast(dict[str, Any], event.json())
                            return
            except httpx.TransportError as exc:
                if attempt == RECONNECTS or (isinstance(exc, httpx.ConnectError) and last is None):
                    raise self._unreachable(exc) from exc
        raise ClientError(
            f"the log stream of execution {execution_id} closed before its end",
            hint=f"run `fnbox logs {execution_id} -f` again to resume",
        )

    def _json(self, method: str, path: str, **options: Any) -> Any:
        response = self._send(method, path, **options)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.url}{path} did not answer JSON; is {self.url} a fnbox server?") from None

    def _send(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> ClientError:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "error" not in body:
            return ClientError(
                f"{response.request.method} {response.request.url} answered {response.status_code}",
                hint=f"is {self.url} a fnbox server?",
            )
        return error_from(body.get("error"), str(body.get("message", "")), body.get("details"), body.get("logs"))

    def _unreachable(self, exc: httpx.TransportError) -> ClientError:
        if isinstance(exc, httpx.ConnectError):
            return ClientError(
                f"cannot reach fnbox at {self.url}: {exc}",
                hint="is the server running? start it with `fnbox serve`, or pass --url URL (or FNBOX_URL), or --local",
            )
        if isinstance(exc, httpx.TimeoutException):
            return ClientError(
                f"fnbox at {self.url} did not answer in time: {exc!r}", hint="try again, or check the server's log"
            )
        return ClientError(f"the connection to {self.url} failed: {exc}", hint="check the server's log, then try again")


def _seg(value: str) -> str:
    """One path segment: a name with `/`, `?` or `..` in it stays one segment (and gets a 404)."""
    return urllib.parse.quote(value, safe="")


def error_from(code: Any, message: str, details: Any, logs: Any) -> ClientError:
    """A fnbox error (one of the codes of fnbox.sandboxes.errors) as the command line shows it."""
    details = details if isinstance(details, dict) else {}
    return ClientError(message, code=str(code), details=details, logs=logs if isinstance(logs, list) else None)


# ---- on a data directory, through the Runtime -------------------------------------------


class LocalClient:
    """The Runtime on a data directory, started for each call and closed after it.

    Runs use one supervised worker process per language (unless `options.workers` is 0),
    so a function gets the same hard limits as on a server.
    """

    def __init__(self, data_dir: str, options: RuntimeOptions) -> None:
        self.data_dir = data_dir
        # Compiling and running use a worker, as on a server; deleting runs nothing.
        self.options = replace(options, workers=min(options.workers, 1))
        self._quiet = replace(options, workers=0)

    def close(self) -> None:
        pass

    def list_workspaces(self) -> list[str]:
        return self._call(lambda runtime: _ready(runtime.list_workspaces()), start=False)

    def get_workspace(self, name: str) -> dict[str, Any]:
        return self._call(lambda runtime: _ready(runtime.get_workspace(name).document), start=False)

    def import_archive(
        self,
        name: str,
        data: bytes,
        *,
        filename: str | None = None,
        function: str | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        async def call(runtime: Runtime) -> dict[str, Any]:
            workspace = await runtime.import_archive(name, data, filename=filename, function=function)
            return workspace.document

        return self._call(call)

    def delete_workspace(self, name: str) -> None:
        self._call(lambda runtime: runtime.delete_workspace(name), options=self._quiet)

    def export_archive(self, name: str) -> bytes:
        from fnbox.archives.archive import write_archive

        return self._call(lambda runtime: _ready(write_archive(runtime.get_workspace(name).document)), start=False)

    def run(self, workspace: str, function: str, parameters: dict[str, Any]) -> dict[str, Any]:
        async def call(runtime: Runtime) -> dict[str, Any]:
            outcome = await runtime.run(workspace, function, parameters)
            return {
                "result": outcome.result,
                "logs": outcome.logs,
                "duration": outcome.duration,
                "execution": outcome.execution_id,
            }

        return self._call(call)

    def start(self, workspace: str, function: str, parameters: dict[str, Any]) -> dict[str, Any]:
        """Without a server to keep it going, the execution is waited for before the command ends."""

        async def call(runtime: Runtime) -> dict[str, Any]:
            execution = await runtime.start_run(workspace, function, parameters)
            await runtime.wait_execution(execution.id, LONG_READ)
            return {"id": execution.id, "status": "accepted"}

        return self._call(call)

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return self._execution(execution_id).to_json()

    def list_executions(self, **filters: Any) -> dict[str, Any]:
        store = self._store()
        if store is None:
            return {"executions": [], "next": None}
        try:
            items, cursor = store.list(**{key: value for key, value in filters.items() if value is not None})
        except FnboxError as exc:
            raise error_from(exc.code, exc.message, exc.details, exc.logs) from None
        finally:
            store.close()
        return {"executions": [item.to_json() for item in items], "next": cursor}

    def follow(self, execution_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The record's entries as they are stored, until it ends (a server writes them at the end)."""
        sent = 0
        while True:
            execution = self._execution(execution_id)
            for entry in execution.logs[sent:]:
                yield "log", entry
            sent = max(sent, len(execution.logs))
            if execution.ended:
                yield (
                    "end",
                    {
                        "id": execution.id,
                        "status": str(execution.status),
                        "duration": execution.duration,
                        "error": execution.error,
                    },
                )
                return
            time.sleep(0.5)

    def _execution(self, execution_id: str) -> Execution:
        store = self._store()
        try:
            found = None if store is None else store.get(execution_id)
        finally:
            if store is not None:
                store.close()
        if found is None:
            raise error_from(
                "NotFound", f"no execution {execution_id!r} in {self.data_dir}", {"id": execution_id}, None
            )
        return found

    def _store(self) -> ExecutionStore | None:
        """The execution records, read directly: starting a Runtime would mark running ones interrupted."""
        from fnbox.executions.records import ExecutionStore
        from fnbox.workspaces.runtime import EXECUTIONS_FILENAME

        path = Path(self.data_dir) / EXECUTIONS_FILENAME
        return ExecutionStore(path) if path.is_file() else None

    def _call(
        self, call: Callable[[Runtime], Awaitable[T]], *, start: bool = True, options: RuntimeOptions | None = None
    ) -> T:
        """`call` with a Runtime on the data directory; started (pool, records) unless `start` is False."""
        from fnbox.workspaces.runtime import Runtime

        async def main() -> T:
            runtime = Runtime(self.data_dir, options=options or self.options)
            if not start:
                return await call(runtime)
            async with runtime:
                return await call(runtime)

        try:
            return asyncio.run(main())
        except FnboxError as exc:
            raise error_from(exc.code, exc.message, exc.details, exc.logs) from None


async def _ready(value: T) -> T:
    return value
