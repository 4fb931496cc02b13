"""Job ids as people give them: a unique prefix, or @last, on both stores."""

from __future__ import annotations

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError, NotFoundError
from queuectl.models import new_job
from queuectl.store import Store

IDS = ["ab12", "ab13", "ab2", "b_x", "bax", "z:1"]


def test_ids_with_prefix_are_the_ids_that_start_with_it(store: Store) -> None:
    store.enqueue_many([new_job({"id": job_id, "command": "true"}) for job_id in IDS])
    assert store.ids_with_prefix("ab1", 10) == ["ab12", "ab13"]
    assert store.ids_with_prefix("ab", 2) == ["ab12", "ab13"]  # at most the limit, in order
    assert store.ids_with_prefix("b_", 10) == ["b_x"]  # "_" is no pattern here
    assert store.ids_with_prefix("z", 10) == ["z:1"]
    assert store.ids_with_prefix("c", 10) == []


def test_resolve_takes_an_id_a_unique_prefix_or_last(queue: Queue) -> None:
    with pytest.raises(NotFoundError, match="@last: this store holds no job yet"):
        queue.resolve("@last")
    for job_id in IDS:
        queue.enqueue("true", id=job_id)
    assert queue.resolve("ab2") == "ab2"  # whole
    assert queue.resolve("ab12") == "ab12"
    assert queue.resolve("z:") == "z:1"  # a unique prefix
    assert queue.resolve("@last") == "z:1"  # the newest
    with pytest.raises(InvalidInputError, match="'ab1' starts more than one job id: ab12, ab13;"):
        queue.resolve("ab1")
    with pytest.raises(NotFoundError, match="no job 'q'"):
        queue.resolve("q")
