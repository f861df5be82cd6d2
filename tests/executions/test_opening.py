"""The execution records open whatever state the data directory is in."""

import contextlib
import logging
import os
import sqlite3

from fnbox.executions.bounds import RecordBounds
from fnbox.executions.opening import open_records
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore
from tests.filesystems import read_only, small_filesystem

INTERRUPTED = "stopped"


def record(id="e1"):
    return Execution(
        id=id, workspace="w", function="f", version="v1", language="python", parameters={},
        status=ExecutionStatus.SUCCESSFUL, created=1.0, result="ok",
    )  # fmt: skip


def damage(path):
    """Overwrite the middle of a real database: its pages no longer make sense."""
    store = ExecutionStore(path)
    store.write_many([record(f"e{i}") for i in range(2000)])
    store.close()
    size = os.path.getsize(path)
    with open(path, "r+b") as file:
        for offset in range(4096, size, 4096):
            file.seek(offset)
            file.write(os.urandom(512))


def test_a_damaged_database_is_moved_aside_and_a_new_one_started(tmp_path, caplog):
    path = tmp_path / "executions.sqlite3"
    damage(path)
    with caplog.at_level(logging.ERROR, logger="fnbox"):
        store, interrupted = open_records(path, RecordBounds(), INTERRUPTED)
    try:
        store.write_many([record("new")])
        assert store.get("new").result == "ok" and interrupted == 0
    finally:
        store.close()
    aside = [p.name for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(aside) == 1 and aside[0].startswith("executions.sqlite3.damaged-20")
    assert "damaged" in caplog.text and aside[0] in caplog.text


def test_a_file_that_is_not_a_database_is_moved_aside(tmp_path, caplog):
    path = tmp_path / "executions.sqlite3"
    path.write_bytes(b"not a database at all " * 1000)
    with caplog.at_level(logging.ERROR, logger="fnbox"):
        store, _ = open_records(path, RecordBounds(), INTERRUPTED)
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM executions").fetchone() == (0,)
    assert "moved aside" in caplog.text


def test_a_read_only_data_directory_gets_records_for_this_run_only(tmp_path, caplog):
    with small_filesystem(tmp_path / "fs") as root:
        path = root / "executions.sqlite3"
        store = ExecutionStore(path)
        store.write_many([record("old")])
        store.close()
        read_only(root)
        with caplog.at_level(logging.ERROR, logger="fnbox"):
            store, _ = open_records(path, RecordBounds(), INTERRUPTED)
        temporary = store.path.parent
        try:
            store.write_many([record("new")])
            assert store.get("new") is not None and temporary != root
        finally:
            store.close()
        assert not temporary.exists()
        assert "cannot write the execution records" in caplog.text
