"""LOGS_LOCATION: each ended execution's logs as one object, `<workspace>/<function>/<execution id>.json`.

The location is a directory or `s3://bucket/prefix`. Ends are queued without waiting and
written by one background task, so a slow or unreachable store never delays an answer;
a write that fails is logged and dropped (the record keeps the logs either way), and a
full queue drops the newest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from fnbox.executions.records import Execution
from fnbox.objects import S3Location, is_s3, s3_client

__all__ = ["LogSink", "log_object"]

logger = logging.getLogger("fnbox")

MAX_PENDING = 10_000


def log_object(execution: Execution) -> tuple[str, bytes]:
    """The object's key (relative to the location) and its JSON."""
    record = execution.to_json()
    body = {key: record[key] for key in ("id", "workspace", "function", "version", "status", "logs", "error")}
    body.update(created=record["created"], finished=record["finished"], duration=record["duration"])
    key = f"{execution.workspace}/{execution.function}/{execution.id}.json"
    return key, json.dumps(body, ensure_ascii=False).encode()


class LogSink:
    def __init__(self, location: str) -> None:
        self.location = location
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(MAX_PENDING)
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._s3 = S3Location(location) if is_s3(location) else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="fnbox-log-sink")

    def put(self, execution: Execution) -> None:
        """Queue an ended execution's logs (from the event loop; never waits)."""
        try:
            self._queue.put_nowait(log_object(execution))
        except asyncio.QueueFull:
            logger.warning(
                "the logs of execution %s were not written to %s: too many wait", execution.id, self.location
            )

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _write_loop(self) -> None:
        while True:
            key, data = await self._queue.get()
            try:
                await asyncio.to_thread(self._write, key, data)
            except Exception as exc:
                logger.warning("the logs %s were not written to %s: %s", key, self.location, exc)
            finally:
                self._queue.task_done()

    def _write(self, key: str, data: bytes) -> None:
        if self._s3 is not None:
            if self._client is None:
                self._client = s3_client()
            self._client.put_object(
                Bucket=self._s3.bucket, Key=self._s3.key(key), Body=data, ContentType="application/json"
            )
            return
        path = Path(self.location) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".logs-", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
