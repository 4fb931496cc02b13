"""Searching jobs by id prefix, command text or last error, on both stores."""

from __future__ import annotations

from queuectl import Queue
from tests.api.conftest import run_once


def test_search_matches_id_prefix_command_and_last_error(queue: Queue) -> None:
    queue.enqueue("make deploy-web", id="web-1")
    queue.enqueue("echo hello", id="deploy-2")
    queue.enqueue("echo 50%_off", id="pct-3")
    failed = run_once(queue, "exit 3", 3, id="err-4", queue="other")
    queue.enqueue("true", id="other-5")
    ids = lambda text: [job.id for job in queue.search(text)]  # noqa: E731
    assert ids("deploy") == ["deploy-2", "web-1"]  # id prefix and command, newest first
    assert ids("DEPLOY-W") == ["web-1"]  # ASCII letters in any case
    assert ids("exit code 3") == [failed]  # the last error's words
    assert ids("50%_") == ["pct-3"]  # % and _ are text, not patterns
    assert ids("%") == ["pct-3"]
    assert ids("_o") == ["pct-3"]
    assert ids("eb-1") == []  # an id matches by its start only
    assert ids("zzz") == []


def test_search_combines_with_state_and_queue(queue: Queue) -> None:
    dead = run_once(queue, "backup logs", 1, id="c", queue="ops")
    queue.enqueue("backup db", id="a", queue="ops")
    queue.enqueue("backup files", id="b", queue="ci")
    assert [j.id for j in queue.search("backup", queue="ops")] == ["a", dead]
    assert [j.id for j in queue.search("backup", state="dead")] == [dead]
    assert [j.id for j in queue.search("backup", state=["pending", "dead"], queue="ci")] == ["b"]


def test_a_search_reads_a_bounded_window_and_says_where_to_read_on(queue: Queue) -> None:
    queue.enqueue("needle one", id="n1")
    queue.enqueue_many([{"command": f"hay {n}"} for n in range(30)])
    queue.enqueue("needle two", id="n2")
    store = queue._store
    first = store.search_jobs("needle", None, None, 10, None, window=10)
    assert [j.id for j in first.jobs] == ["n2"]  # only the newest ten jobs were read
    assert first.next_before is not None
    seen = [j.id for j in first.jobs]
    before = first.next_before
    while before is not None:
        page = store.search_jobs("needle", None, None, 10, before, window=10)
        seen += [j.id for j in page.jobs]
        before = page.next_before
    assert seen == ["n2", "n1"]  # read on to the oldest, then no cursor


def test_search_pages_follow_the_cursor(queue: Queue) -> None:
    queue.enqueue_many([{"command": f"job {n}", "id": f"j{n:02d}"} for n in range(12)])
    jobs, cursor = queue.page(limit=5, search="job")
    assert [j.id for j in jobs] == ["j11", "j10", "j09", "j08", "j07"]
    assert cursor is not None
    more, cursor = queue.page(limit=10, cursor=cursor, search="job")
    assert [j.id for j in more] == [f"j{n:02d}" for n in range(6, -1, -1)]
    assert cursor is None
