"""Searching jobs by id prefix, command text or last error, on both stores."""

from __future__ import annotations

from queuectl import Queue
from queuectl.store import JobFilter
from queuectl.store.reads import PREFIX_IDS, trigram_match
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
    """Text shorter than the index's trigrams is searched by reading windows of jobs."""
    queue.enqueue("needle one", id="n1")
    queue.enqueue_many([{"command": f"hay {n}"} for n in range(30)])
    queue.enqueue("needle two", id="n2")
    store = queue._store
    first = store.search_jobs(JobFilter(text="ne"), 10, None, window=10)
    assert [j.id for j in first.jobs] == ["n2"]  # only the newest ten jobs were read
    assert first.next_before is not None
    seen = [j.id for j in first.jobs]
    before = first.next_before
    while before is not None:
        page = store.search_jobs(JobFilter(text="ne"), 10, before, window=10)
        seen += [j.id for j in page.jobs]
        before = page.next_before
    assert seen == ["n2", "n1"]  # read on to the oldest, then no cursor


def test_a_search_by_the_index_finds_every_match_in_one_page(queue: Queue) -> None:
    """Text of three characters or more is looked up in the index: no window, no cursor
    past the last match, however many jobs lie between the matches."""
    queue.enqueue("needle one", id="n1")
    queue.enqueue_many([{"command": f"hay {n}"} for n in range(30)])
    queue.enqueue("needle two", id="n2")
    store = queue._store
    page = store.search_jobs(JobFilter(text="NEEDLE"), 10, None, window=10)
    assert [j.id for j in page.jobs] == ["n2", "n1"]
    assert page.next_before is None
    first = store.search_jobs(JobFilter(text="needle"), 1, None, window=10)
    assert [j.id for j in first.jobs] == ["n2"]
    assert first.next_before is not None
    rest = store.search_jobs(JobFilter(text="needle"), 10, first.next_before, window=10)
    assert [j.id for j in rest.jobs] == ["n1"]
    assert rest.next_before is None


def test_the_search_index_follows_edits_errors_requeues_and_deletes(queue: Queue) -> None:
    """Every change of a job's command or last error reaches the index, so a search finds
    the job by its text of now, never by its text of before (nor a deleted job)."""
    queue.enqueue("first command", id="e1")
    queue.edit("e1", command="second command")
    ids = lambda text: [job.id for job in queue.search(text)]  # noqa: E731
    assert ids("first command") == []
    assert ids("second command") == ["e1"]
    dead = run_once(queue, "echo doomed", 7, id="d1", queue="doom")
    assert ids("exit code 7") == [dead]
    queue.requeue(dead)  # its last error is gone
    assert ids("exit code 7") == []
    assert ids("echo doomed") == [dead]
    queue.cancel(dead)
    assert ids("cancelled") == [dead]
    queue.purge("cancelled")
    assert ids("doomed") == []
    queue.enqueue("echo doomed again", id="d2")  # a new job, a new seq, the same text
    assert ids("doomed") == ["d2"]


def test_a_search_takes_quotes_and_query_words_as_text(queue: Queue) -> None:
    queue.enqueue('grep "a OR b" NEAR x*', id="q1")
    queue.enqueue("grep plain", id="q2")
    ids = lambda text: [job.id for job in queue.search(text)]  # noqa: E731
    assert ids('"a OR b"') == ["q1"]
    assert ids("NEAR x*") == ["q1"]
    assert ids('b" N') == ["q1"]
    assert ids("grep") == ["q2", "q1"]
    assert ids("OR") == ["q1"]  # two letters: the window's walk, the same answer


def test_search_and_held_combine_with_a_batch(queue: Queue) -> None:
    for n in range(4):
        queue.enqueue(f"render scene {n}", id=f"s{n}", batch="film")
    queue.enqueue("render scene 9", id="other")
    queue.hold("s1", "s2", "other")
    ids = lambda jobs: [job.id for job in jobs]  # noqa: E731
    assert ids(queue.search("render", batch="film")) == ["s3", "s2", "s1", "s0"]
    assert ids(queue.search("scene 2", batch="film")) == ["s2"]
    assert ids(queue.search("re", batch="film", held=True)) == ["s2", "s1"]  # the window's
    assert ids(queue.search("render", held=True)) == ["other", "s2", "s1"]
    assert ids(queue.search("render", batch="film", held=True, state="failed")) == []
    assert ids(queue.list(batch="film", held=True)) == ["s2", "s1"]
    assert ids(queue.list(held=True)) == ["other", "s2", "s1"]
    jobs, cursor = queue.page(limit=1, search="render", batch="film", held=True)
    assert ids(jobs) == ["s2"]
    more, cursor = queue.page(limit=5, cursor=cursor, search="render", batch="film", held=True)
    assert (ids(more), cursor) == (["s1"], None)


def test_search_pages_follow_the_cursor(queue: Queue) -> None:
    queue.enqueue_many([{"command": f"job {n}", "id": f"j{n:02d}"} for n in range(12)])
    jobs, cursor = queue.page(limit=5, search="job")
    assert [j.id for j in jobs] == ["j11", "j10", "j09", "j08", "j07"]
    assert cursor is not None
    more, cursor = queue.page(limit=10, cursor=cursor, search="job")
    assert [j.id for j in more] == [f"j{n:02d}" for n in range(6, -1, -1)]
    assert cursor is None


def test_a_prefix_that_many_ids_share_is_searched_a_window_at_a_time(queue: Queue) -> None:
    """Over PREFIX_IDS ids with the text as their start: the jobs they name, and those whose
    command holds it, are read a window at a time, newest first, every one of them once."""
    queue.enqueue("echo other", id="old")
    many = PREFIX_IDS + 5
    queue.enqueue_many([{"command": "true", "id": f"many-{n:04d}"} for n in range(many)])
    queue.enqueue("echo many-things", id="x-last")
    store = queue._store
    first = store.search_jobs(JobFilter(text="many-"), 3, None)
    assert [j.id for j in first.jobs] == ["x-last", f"many-{many - 1:04d}", f"many-{many - 2:04d}"]
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = store.search_jobs(JobFilter(text="many-"), 2000, before, window=400)
        seen += [j.id for j in page.jobs]
        pages += 1
        if page.next_before is None:
            break
        before = page.next_before
    assert pages > 1
    assert seen == ["x-last", *[f"many-{n:04d}" for n in reversed(range(many))]]


def test_the_full_text_query_covers_the_text_with_quoted_trigrams() -> None:
    assert trigram_match("abc") == '"abc"'
    assert trigram_match("abcd") == '"abc" AND "bcd"'
    assert trigram_match("abcdefg") == '"abc" AND "def" AND "efg"'
    assert trigram_match('a"b OR') == '"a""b" AND " OR"'
