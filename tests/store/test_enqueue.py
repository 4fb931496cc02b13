"""enqueue_batches: a stream of batches in one transaction, all or nothing, errors labelled."""

from __future__ import annotations

from typing import Any

import pytest

from queuectl.errors import DuplicateJobError, InvalidInputError
from queuectl.models import Job, new_job
from queuectl.store import Store


def stream(*batches: list[dict[str, Any]]) -> list[list[tuple[str, Any]]]:
    n = 0
    out = []
    for batch in batches:
        labelled = []
        for item in batch:
            n += 1
            labelled.append((f"line {n}", new_job({"command": "true", **item})))
        out.append(labelled)
    return out


def enqueue(store: Store, *batches: list[dict[str, Any]]) -> list[Job]:
    seen: list[Job] = []
    assert store.enqueue_batches(stream(*batches), seen.extend) == len(seen)
    return seen


def test_batches_land_in_order_with_dependencies_across_them(store: Store) -> None:
    jobs = enqueue(
        store, [{"id": "a"}, {"id": "b"}], [{"id": "c", "depends_on": ["a"]}, {"unique_key": "k"}]
    )
    assert [job.id for job in jobs[:3]] == ["a", "b", "c"]
    assert enqueue(store, [{"unique_key": "k"}])[0].id == jobs[3].id  # the key's holder
    assert store.counts() == {"default": {"pending": 4}}


@pytest.mark.parametrize(
    ("batches", "error", "message"),
    [
        (
            [[{"id": "x"}], [{"id": "new"}, {"id": "old"}]],
            DuplicateJobError,
            "line 3: job 'old' already exists",
        ),
        (
            [[{"id": "x"}, {"id": "y"}], [{"id": "z"}, {"id": "x"}]],
            DuplicateJobError,
            "line 4: job 'x' appears twice in the batch",
        ),
        (
            [[{"id": "x"}], [{"id": "y", "depends_on": ["later"]}], [{"id": "later"}]],
            InvalidInputError,
            "line 2: depends_on: no job 'later'",
        ),
    ],
)
def test_a_bad_batch_anywhere_changes_nothing(
    store: Store, batches: list[list[dict[str, Any]]], error: type[Exception], message: str
) -> None:
    enqueue(store, [{"id": "old"}])
    with pytest.raises(error) as raised:
        enqueue(store, *batches)
    assert str(raised.value).startswith(message)
    assert [job.id for job in store.list_jobs().jobs] == ["old"]
    assert store.counts() == {"default": {"pending": 1}}
