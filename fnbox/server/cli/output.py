"""What the command line prints for people: aligned tables, log lines, sizes, a progress bar."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

__all__ = ["Progress", "format_log", "format_size", "table", "to_json", "upload_chunks"]

#: Uploads smaller than this finish before a bar would be worth drawing.
PROGRESS_THRESHOLD = 256 * 1024
CHUNK = 64 * 1024


def to_json(value: Any, *, pretty: bool = False) -> str:
    return json.dumps(value, indent=2 if pretty else None, ensure_ascii=False)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned on the widest cell; the last column is not padded."""
    cells = [[str(cell) for cell in row] for row in (headers, *rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def format_log(entry: dict[str, Any]) -> str:
    """`12:00:01.123 info   message`: the local time of day, the level, the message."""
    moment = entry.get("time")
    stamp = (
        datetime.fromtimestamp(moment / 1000).strftime("%H:%M:%S.%f")[:-3]
        if isinstance(moment, (int, float))
        else "--:--:--.---"
    )
    return f"{stamp} {entry.get('level', 'info')!s:<5}  {entry.get('message', '')}"


def format_size(size: float) -> str:
    if size < 1024:
        return f"{size:.0f} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"


class Progress:
    """A one-line bar on a terminal, redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO, *, label: str = "uploading") -> None:
        self.total, self.stream, self.label = max(total, 1), stream, label
        self.done = 0
        self._drawn = 0.0

    @classmethod
    def for_upload(cls, total: int, stream: TextIO) -> Progress | None:
        """A bar only where someone watches (a terminal) and for uploads that take a while."""
        return cls(total, stream) if total >= PROGRESS_THRESHOLD and stream.isatty() else None

    def advance(self, count: int) -> None:
        self.done = min(self.done + count, self.total)
        now = time.monotonic()
        if self.done == self.total or now - self._drawn >= 0.1:
            self._drawn = now
            self.stream.write("\r" + self.render())
            self.stream.flush()

    def render(self) -> str:
        filled = self.WIDTH * self.done // self.total
        percent = 100 * self.done // self.total
        return (
            f"{self.label} [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}% "
            f"{format_size(self.done)} / {format_size(self.total)}"
        )

    def finish(self) -> None:
        """End the bar's line, if one was drawn."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def upload_chunks(data: bytes, progress: Progress | None) -> Iterator[bytes]:
    """`data` in chunks, advancing `progress` as each one is handed to the connection."""
    for start in range(0, len(data), CHUNK):
        chunk = data[start : start + CHUNK]
        yield chunk
        if progress is not None:
            progress.advance(len(chunk))
