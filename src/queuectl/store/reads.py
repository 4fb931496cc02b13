"""Reads: jobs, their output and history, and the counts and totals that status and metrics
show."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from queuectl.models import CANCELLED, COMPLETED, DEAD, FINISHED_STATES, Job
from queuectl.store import rows as rows_
from queuectl.store.dialect import Flow, operation
from queuectl.store.records import (
    EVERY_JOB,
    OVER_ALL_BOUNDS,
    Attempt,
    Bucket,
    JobFilter,
    Output,
    Page,
    Totals,
)
from queuectl.usage import Usage

FAR_FUTURE = 2**62
#: The jobs (by seq) one search reads at most, newest first: a search that matches few jobs
#: answers within this window, with a cursor to read on past it, instead of reading them all.
SEARCH_WINDOW = 500_000
#: The characters of each entry of the text index: a search for fewer cannot use it.
TRIGRAM = 3
#: The ids that start with a search's text that it takes from the id index; a prefix more
#: share is searched by the bounded walk instead.
PREFIX_IDS = 1000
#: `list_jobs` by (state given, queue given): one query per combination, each walking its index.
LIST_QUERIES = {
    (False, False): "list_jobs",
    (True, False): "list_jobs_by_state",
    (False, True): "list_jobs_by_queue",
    (True, True): "list_jobs_by_queue_state",
}


def trigram_match(text: str) -> str:
    """The full-text query (SQLite's FTS5) for the rows that hold every trigram of `text`
    needed to cover it: one every three characters, and the last. Each is quoted, so that no
    character of the text is read as query syntax."""
    starts = sorted({*range(0, len(text) - TRIGRAM + 1, TRIGRAM), len(text) - TRIGRAM})
    quoted = ('"' + text[i : i + TRIGRAM].replace('"', '""') + '"' for i in starts)
    return " AND ".join(quoted)


def _newest(walks: Sequence[Sequence[Any]], limit: int) -> list[Any]:
    """The newest `limit` rows of walks that are each newest first, each job once."""
    merged = heapq.merge(*walks, key=lambda row: int(row["seq"]), reverse=True)
    rows: list[Any] = []
    for row in merged:
        if len(rows) == limit:
            break
        if not rows or rows[-1]["seq"] != row["seq"]:
            rows.append(row)
    return rows


def _names(names: Sequence[str] | None) -> Sequence[str] | None:
    """A lone name is a Sequence[str] too, of letters: take it as the one name it is."""
    return [names] if isinstance(names, str) else names


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escaped by a backslash) for the values that hold `text` as it is."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class Reads(Flow):
    """What the CLI, the API and metrics read; none of it writes but the counters' compaction."""

    #: Whether the store has its text index (see _text_index); None: not asked yet.
    text_index: bool | None = None

    @operation()
    def get(self, job_id: str) -> Job | None:
        row = self.db.connection().execute(self.db.q["get_job"], (job_id,)).fetchone()
        return None if row is None else rows_.job(row, self.db.from_json)

    @operation()
    def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        # U+10FFFF sorts after every character an id may hold, byte-wise in UTF-8 too.
        bounds = (prefix, prefix + "\U0010ffff", limit)
        return [row["id"] for row in self.db.connection().execute(self.db.q["ids_from"], bounds)]

    @operation()
    def list_jobs(
        self, where: JobFilter = EVERY_JOB, limit: int | None = None, before: int | None = None
    ) -> Page:
        states, queues = _names(where.states), _names(where.queues)
        params: dict[str, Any] = {
            "limit": FAR_FUTURE if limit is None else limit,
            "before": FAR_FUTURE if before is None else before,
            "batch": where.batch,
        }
        conn = self.db.connection()
        any_: list[str | None] = [None]
        # Several states or queues (`list --state a --state b`, the union): one walk of an index
        # per pair, merged newest first. One query over all of them could walk no index in
        # `seq` order, and would read every matching job to sort them.
        if where.held:  # held jobs are few next to the rest, and their own index holds them
            names = dict.fromkeys(LIST_QUERIES, "list_held")
        elif where.batch is None:
            names = LIST_QUERIES
        else:  # a batch's own index, the queue a filter of it
            names = dict.fromkeys(LIST_QUERIES, "list_jobs_by_batch")
            names.update({(True, False): "list_jobs_by_batch_state"})
            names[True, True] = "list_jobs_by_batch_state"
        walks = [
            conn.execute(
                self.db.q[names[state is not None, queue is not None]],
                {**params, "state": state, "queue": queue},
            ).fetchall()
            for state in dict.fromkeys(states or any_)
            for queue in dict.fromkeys(queues or any_)
        ]
        # a job that changed state between two walks is seen twice, or not at all
        return self._page(_newest(walks, params["limit"]), params["limit"], None)

    @operation()
    def search_jobs(
        self, where: JobFilter, limit: int, before: int | None, window: int = SEARCH_WINDOW
    ) -> Page:
        conn = self.db.connection()
        states, queues, text = _names(where.states), _names(where.queues), where.text or ""
        params: dict[str, Any] = {
            "states": self.db.array(states) if states else None,
            "queues": self.db.array(queues) if queues else None,
            "in_batch": where.batch,
            "held": where.held,
            "text": text,
            "pattern": contains_pattern(text),
            "limit": limit,
        }
        if len(text) >= TRIGRAM and self._text_index(conn):
            # The ids that start with the text come from the id index, when few do. A prefix
            # many ids share (their first characters are the time they were made) is found by
            # walking a window of jobs newest first, which soon finds such common matches.
            bounds = (text, text + "\U0010ffff", PREFIX_IDS + 1)
            ids = [row["id"] for row in conn.execute(self.db.q["ids_from"], bounds)]
            if len(ids) <= PREFIX_IDS:
                params.update(before=FAR_FUTURE if before is None else before, floor=0)
                walks = [self._text_walk(conn, params)]
                if ids:
                    given = {**params, "ids": self.db.array(ids)}
                    walks.append(conn.execute(self.db.q["search_ids"], given).fetchall())
                return self._page(_newest(walks, limit), limit, None)
            before = int(self.db.value(conn, "newest_seq")) + 1 if before is None else before
            floor = max(0, before - window)
            params.update(before=before, floor=floor)
            prefixed = conn.execute(self.db.q["search_prefix"], params).fetchall()
            walks = [self._text_walk(conn, params), prefixed]
            return self._page(_newest(walks, limit), limit, self._read_on(conn, floor))
        if before is None:
            before = int(self.db.value(conn, "newest_seq")) + 1
        floor = max(0, before - window)
        params.update(before=before, floor=floor)
        rows = conn.execute(self.db.q["search_jobs"], params).fetchall()
        return self._page(rows, limit, self._read_on(conn, floor))

    def _text_walk(self, conn: Any, params: dict[str, Any]) -> list[Any]:
        """The jobs whose command or last error holds the text, found through the index."""
        found = {**params, "match": trigram_match(params["text"])}
        if self.db.kind == "postgres":
            # Each text wants its own plan (the trigram indexes for rare text, the newest-first
            # walk for text most jobs hold): a prepared statement's generic plan, which the
            # driver would use after a few searches, takes one for all.
            return list(conn.execute(self.db.q["search_text"], found, prepare=False).fetchall())
        return list(conn.execute(self.db.q["search_text"], found).fetchall())

    def _read_on(self, conn: Any, floor: int) -> int | None:
        """Where a search that read a window down to `floor` reads on, if older jobs remain."""
        return floor if floor > int(self.db.value(conn, "oldest_seq")) else None

    def _page(self, rows: Sequence[Any], limit: int, read_on: int | None) -> Page:
        """A page of a search: the next one starts below its last job if it is full, else
        where the window it read ended (`read_on`; None: no more)."""
        full = limit > 0 and len(rows) == limit
        jobs = [rows_.job(r, self.db.from_json) for r in rows]
        return Page(jobs, int(rows[-1]["seq"]) if full else read_on)

    def _text_index(self, conn: Any) -> bool:
        """Whether the store has the text index of migration 0019 (PostgreSQL may lack
        pg_trgm), asked once."""
        if self.text_index is None:
            self.text_index = bool(int(self.db.value(conn, "text_index")))
        return self.text_index

    @operation()
    def output(self, job_id: str, nth: int | None = None) -> Output | None:
        conn = self.db.connection()
        if nth is None:
            row = conn.execute(self.db.q["last_output"], (job_id,)).fetchone()
        else:
            row = conn.execute(self.db.q["nth_output"], {"id": job_id, "n": nth}).fetchone()
        if row is None:
            return None
        data = b"" if row["output"] is None else bytes(row["output"])
        return Output(row["attempt"], data, int(row["output_dropped"]))

    @operation()
    def history(self, job_id: str) -> list[Attempt]:
        return [
            Attempt(
                attempt=row["attempt"],
                runner=row["runner"],
                host=row["host"],
                started_at_ms=row["started_at"],
                finished_at_ms=row["finished_at"],
                exit_code=row["exit_code"],
                error=row["error"],
                duration_ms=row["duration_ms"],
                token=row["token"],
                cpu_ms=row["cpu_ms"],
                max_rss_bytes=row["max_rss_bytes"],
            )
            for row in self.db.connection().execute(self.db.q["history"], (job_id,))
        ]

    @operation()
    def counts(self) -> dict[str, dict[str, int]]:
        return self._counters("n")

    def _counters(self, column: str) -> dict[str, dict[str, int]]:
        """`column` ("n" or "attempts") of the counters per queue and state with jobs."""
        rows = self.db.connection().execute(self.db.q["counts"]).fetchall()
        deltas = sum(int(row["deltas"]) for row in rows)
        if deltas > self.db.compact_after:
            self.db.compact_counts(deltas)
        result: dict[str, dict[str, int]] = {}
        for row in rows:
            if int(row["n"]) > 0:
                result.setdefault(row["queue"], {})[row["state"]] = int(row[column])
        return result

    @operation()
    def done_since(self, since_ms: int) -> int:
        return int(self.db.value(self.db.connection(), "done_since", (since_ms,)))

    @operation()
    def finished_per_minute(self, since_ms: int) -> dict[int, dict[str, int]]:
        result: dict[int, dict[str, int]] = {}
        rows = self.db.connection().execute(self.db.q["finished_per_minute"], {"since": since_ms})
        for row in rows:
            result.setdefault(int(row["minute"]), {})[row["state"]] = int(row["n"])
        return result

    @operation()
    def attempts_by_queue(self) -> dict[str, dict[str, int]]:
        return self._counters("attempts")

    @operation()
    def recent_durations(self, since_ms: int) -> dict[str, list[Bucket]]:
        result: dict[str, list[Bucket]] = {}
        rows = self.db.connection().execute(self.db.q["recent_durations"], {"since": since_ms})
        for row in rows:
            bound = int(row["bound_ms"])
            total = int(row["total_ms"])
            bucket = Bucket(None if bound == OVER_ALL_BOUNDS else bound, int(row["n"]), total)
            result.setdefault(row["queue"], []).append(bucket)
        return result

    @operation()
    def totals(self) -> Totals:
        rows = self.db.connection().execute(self.db.q["counters"]).fetchall()
        deltas = sum(int(row["deltas"]) for row in rows)
        if deltas > self.db.compact_after:
            self.db.compact_counts(deltas)
        totals = Totals()
        for row in rows:
            queue, state, n = row["queue"], row["state"], int(row["n"])
            if row["what"] == "enqueued":
                totals.enqueued[queue] = totals.enqueued.get(queue, 0) + n
            if state in FINISHED_STATES:
                states = totals.finished.setdefault(queue, {})
                states[state] = states.get(state, 0) + n
            if row["what"] == "attempt":
                outcomes = totals.attempts.setdefault(queue, {})
                outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + n
                bound = int(row["bound_ms"])
                bucket = Bucket(None if bound < 0 else bound, n, int(row["total_ms"]))
                totals.durations.setdefault(queue, []).append(bucket)
        return totals

    @operation()
    def oldest_due(self, now_ms: int) -> dict[str, int]:
        rows = self.db.connection().execute(self.db.q["oldest_due"], {"now": now_ms})
        return {row["queue"]: int(row["run_at"]) for row in rows}

    @operation()
    def dependencies(self, job_id: str) -> dict[str, str]:
        rows = self.db.connection().execute(
            self.db.q["dependencies_of"], (self.db.array([job_id]),)
        )
        return {row["dep_id"]: row["state"] for row in rows}

    @operation()
    def usage_totals(self) -> list[Usage]:
        return [
            Usage(
                row["queue"],
                int(row["bound_bytes"]),
                int(row["n"]),
                int(row["cpu_ms"]),
                int(row["peak_bytes"]),
            )
            for row in self.db.connection().execute(self.db.q["usage_totals"])
        ]

    @operation()
    def cpu_since(self, since_ms: int) -> int:
        return int(self.db.value(self.db.connection(), "cpu_since", {"since": since_ms}) or 0)

    def conditions(self, job_id: str) -> dict[str, str]:
        rows = self.db.connection().execute(
            self.db.q["dependencies_of"], (self.db.array([job_id]),)
        )
        return {row["dep_id"]: row["cond"] for row in rows}

    @operation()
    def finished_since(self, since_ms: int) -> dict[str, int]:
        counts = dict.fromkeys((COMPLETED, DEAD, CANCELLED), 0)
        for row in self.db.connection().execute(self.db.q["finished_since"], (since_ms,)):
            counts[row["state"]] = int(row["n"])
        return counts
