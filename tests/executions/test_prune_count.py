"""Retention by count in the SQLite store: the newest ended records stay, whatever active ones lie among them."""

import random

import pytest

from fnbox.executions.records import ENDED, Execution, ExecutionStatus, ExecutionStore

T0 = 1_795_428_000.0
STATUSES = [status.value for status in ExecutionStatus]


@pytest.fixture
def store(tmp_path):
    store = ExecutionStore(tmp_path / "executions.sqlite3")
    yield store
    store.close()


def record(index: int, status: str, created: float) -> Execution:
    return Execution(
        id=f"r{index:04d}", workspace="w", function="f", version="v1", language="python",
        status=ExecutionStatus(status), created=created,
    )  # fmt: skip


def expected_after(records: list[Execution], keep: int) -> set[str]:
    """What retention by count keeps: every active record, and the newest `keep` ended ones."""
    ended = sorted((r for r in records if r.status in ENDED), key=lambda r: (r.created, r.id), reverse=True)
    return {r.id for r in records if r.status not in ENDED} | {r.id for r in ended[:keep]}


def stored_ids(store: ExecutionStore) -> set[str]:
    return {row[0] for row in store._db.execute("SELECT id FROM executions")}


@pytest.mark.parametrize("seed", range(12))
def test_prune_by_count_keeps_exactly_the_newest_ended_records(store, seed):
    rng = random.Random(seed)
    # Ties in time (ordered by id), active records anywhere: old, new and around the cut.
    records = [
        record(i, rng.choice(STATUSES), T0 + rng.randrange(60) + rng.choice([0.0, 0.25]))
        for i in range(rng.randrange(1, 120))
    ]
    store.write_many(records)
    keep = rng.randrange(0, len(records) + 3)
    wanted = expected_after(records, keep)
    assert store.prune(max_count=keep) == len(records) - len(wanted)
    assert stored_ids(store) == wanted
    assert store.prune(max_count=keep) == 0


def test_active_records_newer_than_the_cut_do_not_count_as_kept(store):
    ended = [record(i, "successful", T0 + i) for i in range(5)]
    active = [record(10 + i, "running", T0 + 100 + i) for i in range(3)]
    store.write_many(ended + active)
    assert store.prune(max_count=2) == 3
    assert stored_ids(store) == {"r0003", "r0004", "r0010", "r0011", "r0012"}


def test_fewer_ended_records_than_kept_leave_everything(store):
    store.write_many([record(0, "failed", T0), record(1, "accepted", T0 - 5), record(2, "dismissed", T0 + 1)])
    assert store.prune(max_count=2) == 0
    assert len(stored_ids(store)) == 3
