"""Client input at the edges of what the stores hold: 64-bit cursors and limits, and one byte
limit for unique keys on both backends. Refused as invalid input, never a 5xx or a traceback."""

from __future__ import annotations

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError
from tests.support.cli import assert_clean_error, run

KEY_LIMIT = 1024  # bytes of UTF-8, documented in models.py


@pytest.mark.parametrize("cursor", ["\u00b2", "99999999999999999999999", "9223372036854775808"])
def test_a_cursor_outside_the_stores_keys_is_invalid_input(queue: Queue, cursor: str) -> None:
    queue.enqueue("true")
    with pytest.raises(InvalidInputError, match="cursor"):
        queue.page(limit=1, cursor=cursor)


def test_the_largest_cursor_and_limit_are_accepted(queue: Queue) -> None:
    job = queue.enqueue("true")
    jobs, _ = queue.page(limit=2**63 - 1, cursor=str(2**63 - 1))
    assert [j.id for j in jobs] == [job.id]


def test_a_huge_limit_on_the_command_line_is_exit_2(target: str) -> None:
    run(["enqueue", "--command", "true"], target)
    for args in (["list"], ["dlq", "list"]):
        result = run([*args, "--limit", "99999999999999999999"], target)
        assert_clean_error(result, 2, "limit")


def test_unique_keys_have_one_byte_limit_on_every_store(queue: Queue, target: str) -> None:
    emoji = "\U0001f600"
    fits = emoji * (KEY_LIMIT // 4)
    job = queue.enqueue("true", unique_key=fits)
    assert queue.get(job.id).unique_key == fits
    for key in (emoji * 1024, "x" * (KEY_LIMIT + 1)):
        with pytest.raises(InvalidInputError, match="unique_key: longer than 1024 bytes"):
            queue.enqueue("true", unique_key=key)
    result = run(["enqueue", "--command", "true", "--unique-key", emoji * 1024], target)
    assert_clean_error(result, 2, "unique_key")
