"""Execution records bounded in bytes: one record, and the whole database."""

import json

import pytest

from fnbox.executions.bounds import RecordBounds, cap_row
from fnbox.executions.records import Execution, ExecutionStatus, ExecutionStore, to_row
from fnbox.sandboxes.errors import InsufficientStorage
from tests.filesystems import fill, small_filesystem

KB = 1024


def ended(id, result=None, logs=(), created=1.0):
    return Execution(
        id=id, workspace="w", function="f", version="v1", language="python", parameters={},
        status=ExecutionStatus.SUCCESSFUL, created=created, result=result, logs=list(logs), duration=1.0,
    )  # fmt: skip


def log_flood(count, size=8 * KB):
    return [{"level": "info", "message": "x" * size, "time": 1000 + i} for i in range(count)]


def test_a_record_under_the_cap_is_stored_unchanged():
    row = to_row(ended("e", result="small", logs=log_flood(2, 10)))
    assert cap_row(row, 64 * KB) == row


def test_a_big_result_is_stored_as_a_marker_with_its_size(tmp_path):
    store = ExecutionStore(tmp_path / "x.sqlite3", bounds=RecordBounds(max_record_bytes=64 * KB))
    try:
        store.write_many([ended("e", result="r" * (200 * KB))])
        assert store.get("e").result == {"truncated": True, "size": 200 * KB + 2}
    finally:
        store.close()


def test_cut_logs_keep_their_first_entries_and_say_how_many_there_were(tmp_path):
    store = ExecutionStore(tmp_path / "x.sqlite3", bounds=RecordBounds(max_record_bytes=64 * KB))
    try:
        store.write_many([ended("e", result="ok", logs=log_flood(1000))])
        logs = store.get("e").logs
        assert store.get("e").result == "ok"
        assert 2 <= len(logs) < 10 and logs[0] == log_flood(1)[0]
        assert logs[-1]["level"] == "warn"
        assert f"{len(logs) - 1} of 1000 entries kept" in logs[-1]["message"]
        assert len(json.dumps(logs)) <= 64 * KB
    finally:
        store.close()


def test_in_a_batch_only_the_records_over_the_cap_are_cut(tmp_path):
    # A batch of small records skips the one-by-one check; one big record among them turns it back on.
    store = ExecutionStore(tmp_path / "x.sqlite3", bounds=RecordBounds(max_record_bytes=16 * KB))
    wide = "é€" * (2 * KB)  # 4 K characters, 10 KB in UTF-8: under the cap, though 4 bytes a character would pass it
    try:
        small = [ended(f"s{i:03}", result="ok", logs=log_flood(1, 10)) for i in range(120)]
        store.write_many([*small[:70], ended("big", result="r" * (20 * KB)), ended("wide", result=wide), *small[70:]])
        assert store.get("big").result == {"truncated": True, "size": 20 * KB + 2}
        assert store.get("wide").result == wide
        assert [store.get(e.id).logs for e in small] == [e.logs for e in small]
        store.write_many([ended("wide-alone", result=wide)])
        assert store.get("wide-alone").result == wide
    finally:
        store.close()


def test_an_execution_inserted_and_updated_is_capped_too(tmp_path):
    store = ExecutionStore(tmp_path / "x.sqlite3", bounds=RecordBounds(max_record_bytes=16 * KB))
    try:
        running = ended("e", result=None)
        running.status = ExecutionStatus.RUNNING
        assert store.insert(running)
        running.status, running.result = ExecutionStatus.SUCCESSFUL, ["y" * 100] * 1000
        assert store.update(running)
        assert store.get("e").result == {
            "truncated": True,
            "size": len(json.dumps(running.result, separators=(",", ":"))),
        }
    finally:
        store.close()


def test_the_whole_store_stays_under_its_byte_cap_dropping_the_oldest_ended_records(tmp_path):
    bounds = RecordBounds(max_record_bytes=64 * KB, max_bytes=2 * 1024 * KB)
    store = ExecutionStore(tmp_path / "x.sqlite3", bounds=bounds)
    try:
        for batch in range(20):
            store.write_many(
                [ended(f"e{batch:02}-{i}", result="r" * (50 * KB), created=batch + i / 10) for i in range(10)]
            )
        kept = [execution.id for execution in store.list(limit=1000)[0]]
        assert "e19-9" in kept and "e00-0" not in kept
        assert len(kept) * 50 * KB <= 2 * 1024 * KB + bounds.prune_after + 64 * KB
    finally:
        store.close()


def test_an_asynchronous_execution_on_a_full_disk_is_refused_with_insufficient_storage(tmp_path):
    with small_filesystem(tmp_path / "fs", "1m") as root:
        store = ExecutionStore(root / "x.sqlite3")
        try:
            fill(root)
            with pytest.raises(InsufficientStorage):
                for i in range(200):
                    store.insert(ended(f"e{i}", result="r" * (8 * KB)))
        finally:
            store.close()
