"""Random bytes for ids: from the operating system, never handed out twice, never shared with a fork."""

import os

import pytest

from fnbox.randomness import DRAW, random_bytes, random_hex


def test_ids_are_of_the_size_asked_and_never_repeat_across_draws():
    ids = [random_hex(16) for _ in range(3 * DRAW // 16 + 7)]
    assert all(len(each) == 32 and int(each, 16) >= 0 for each in ids)
    assert len(set(ids)) == len(ids)


def test_a_request_bigger_than_a_draw_is_served_whole():
    assert len(random_bytes(DRAW + 1)) == DRAW + 1


@pytest.mark.slow
def test_a_forked_child_never_hands_out_its_parents_bytes():
    random_bytes(1)  # the parent holds a draw
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(writer, random_bytes(16))
        os._exit(0)
    os.close(writer)
    try:
        child = os.read(reader, 16)
    finally:
        os.close(reader)
        os.waitpid(pid, 0)
    assert len(child) == 16 and child != random_bytes(16)
