"""Enqueue: jobs in, one batch or a stream of batches a transaction, unique keys and
dependencies decided by the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from queuectl.errors import DuplicateJobError, InvalidInputError, StoreError
from queuectl.models import CANCELLED, COMPLETED, PENDING, Job, NewJob, condition_met
from queuectl.store import rows
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.rows import JobRow, new_id, new_ids

#: How a job waiting for a batch that finished with a job not completed names its end.
BATCH_NOT_COMPLETED = "finished, not all completed"

#: A unique_key taken by a concurrent enqueue between our look and our insert is looked up
#: again; this many times at most.
CONFLICT_RETRIES = 5


class Enqueue(Flow):
    """Inserting jobs; the rows of hook and schedule jobs are made here too."""

    def __init__(self, db: Dialect) -> None:
        super().__init__(db)
        self._empty_list, self._empty_dict = db.json([]), db.json({})

    @operation(replayable=False)
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        db = self.db
        now = db.now()
        tried: list[str] = []  # the ids inserted, for naming a duplicate
        try:
            with db.transaction() as conn:
                default_retries = int(db.read_config(conn)["max_retries"])
                limited = self.open_batches(conn, jobs, now)
                if _plain(jobs):
                    # Nothing is decided by the database: the rows are the jobs, no read-back.
                    fresh = iter(new_ids(len(jobs)))
                    tried = [job.id or next(fresh) for job in jobs]
                    created = self._insert_plain(conn, jobs, tried, now, default_retries, limited)
                else:
                    ids: list[str] = []  # a unique_key's holder stands for the job not inserted
                    for job in jobs:
                        job_id = job.id or new_id()
                        tried.append(job_id)
                        held = self.insert_one(
                            conn, job, job_id, now, default_retries, job.batch in limited
                        )
                        if held is not None:
                            tried.pop()
                        ids.append(held or job_id)
                    created = self._read_back(conn, ids)
                db.wake(conn)
        except db.unique_violation:
            raise self._duplicate(tried) from None
        return created

    @operation(replayable=False)
    def enqueue_batches(
        self,
        batches: Iterable[Sequence[tuple[str, NewJob]]],
        each: Callable[[list[Job]], None],
    ) -> int:
        """Enqueue every batch of (label, job) in one transaction, or none: a stream of any
        length in the memory of one batch. `each` gets each batch's jobs once inserted (before
        the commit); an error is prefixed with the label of the job it concerns.

        A job may depend only on jobs already stored or earlier in the stream, so no cycle can
        form. Each batch runs in a savepoint, so a duplicate id can be named from inside the
        transaction: a rolled-back batch leaves the earlier ones there to look at.
        """
        db = self.db
        now = db.now()
        total = 0
        try:
            with db.transaction() as conn:
                default_retries = int(db.read_config(conn)["max_retries"])
                for batch in batches:
                    conn.execute(db.q["savepoint"])
                    try:
                        created = self._insert_batch(conn, batch, now, default_retries)
                    except db.unique_violation:
                        conn.execute(db.q["rollback_savepoint"])
                        taken = {job.id for job in self.jobs_by_ids(conn, _ids(batch))}
                        raise _StreamDuplicate(batch, taken) from None
                    conn.execute(db.q["release_savepoint"])
                    each(created)
                    total += len(created)
                if total:
                    db.wake(conn)
        except _StreamDuplicate as duplicate:
            raise self._stream_duplicate(duplicate) from None
        return total

    def jobs_by_ids(self, conn: Any, ids: Sequence[str]) -> list[Job]:
        found = conn.execute(self.db.q["jobs_by_ids"], (self.db.array(ids),))
        return [rows.job(r, self.db.from_json) for r in found]

    def _read_back(self, conn: Any, ids: Sequence[str]) -> list[Job]:
        """The jobs of these ids, as inserted, in their order."""
        found = {job.id: job for job in self.jobs_by_ids(conn, ids)}
        return [found[job_id] for job_id in ids]

    def _stream_duplicate(self, duplicate: _StreamDuplicate) -> DuplicateJobError:
        """The error for a refused stream (rolled back by now), naming the first id of the
        failing batch that was stored before the stream, or earlier in it."""
        stored = self.jobs_by_ids(self.db.connection(), _ids(duplicate.batch))
        existing = {job.id for job in stored}
        seen: set[str] = set()
        for label, job in duplicate.batch:
            where = f"{label}: " if label else ""
            if job.id in existing:
                return DuplicateJobError(f"{where}job {job.id!r} already exists")
            if job.id in duplicate.taken or job.id in seen:
                return DuplicateJobError(f"{where}job {job.id!r} appears twice in the batch")
            if job.id is not None:
                seen.add(job.id)
        return DuplicateJobError("a job in the batch already exists")

    def _insert_batch(
        self, conn: Any, batch: Sequence[tuple[str, NewJob]], now: int, default_retries: int
    ) -> list[Job]:
        """One batch of a stream, as enqueue_many inserts its jobs."""
        jobs = [job for _, job in batch]
        limited = self.open_batches(conn, jobs, now)
        if _plain(jobs):
            fresh = iter(new_ids(len(jobs)))
            ids = [job.id or next(fresh) for job in jobs]
            return self._insert_plain(conn, jobs, ids, now, default_retries, limited)
        ids = []
        for label, job in batch:
            job_id = job.id or new_id()
            try:
                held = self.insert_one(
                    conn, job, job_id, now, default_retries, job.batch in limited
                )
            except InvalidInputError as exc:
                raise InvalidInputError(f"{label}: {exc}" if label else str(exc)) from None
            ids.append(held or job_id)
        return self._read_back(conn, ids)

    def _insert_plain(
        self,
        conn: Any,
        jobs: Sequence[NewJob],
        ids: Sequence[str],
        now: int,
        retries: int,
        limited: set[str],
    ) -> list[Job]:
        """Insert jobs that nothing can refuse but a duplicate id, and count them, once for the
        batch; the jobs inserted."""
        inserted = [
            self.row(job, job_id, now, retries, 0, None, job.batch in limited)
            for job, job_id in zip(jobs, ids, strict=True)
        ]
        self.db.insert_jobs(conn, inserted)
        self.db.count_inserted(conn, Counter((row.queue, row.state) for row in inserted))
        self.count_batches(conn, inserted)
        return [rows.inserted_job(job, row) for job, row in zip(jobs, inserted, strict=True)]

    def row(
        self,
        job: NewJob,
        job_id: str,
        now: int,
        default_retries: int,
        waiting_on: int,
        cancelled_by: str | None,
        batch_limited: bool = False,
    ) -> JobRow:
        """The job's row as inserted."""
        # Once per job of a bulk enqueue: the common case (due now, empty lists) without calls.
        run_at = now if job.run_at_ms is None and not job.delay_s else job.first_run_at(now)
        json = self.db.json
        return JobRow(
            id=job_id,
            command=job.command,
            state=CANCELLED if cancelled_by else PENDING,
            queue=job.queue,
            priority=job.priority,
            max_retries=default_retries if job.max_retries is None else job.max_retries,
            timeout=job.timeout,
            run_at=run_at,
            depends_on=json(job.depends_on) if job.depends_on else self._empty_list,
            waiting_on=waiting_on,
            no_retry_exit_codes=(
                json(job.no_retry_exit_codes) if job.no_retry_exit_codes else self._empty_list
            ),
            unique_key=job.unique_key,
            cwd=job.cwd,
            env=json(job.env) if job.env else self._empty_dict,
            created_at=now,
            updated_at=now,
            finished_at=now if cancelled_by else None,
            last_error=cancelled_by,
            scheduled=run_at > now or job.held,
            lock_key=job.lock,
            memory=job.memory,
            cpus=job.cpus,
            max_procs=job.max_procs,
            batch=job.batch,
            batch_limited=batch_limited,
            held=job.held,
            expires_at=job.expires_at(now),
            max_retries_set=job.max_retries is not None,
            requires=self.db.array(job.requires) if job.requires else None,
            silence_timeout=job.silence_timeout,
        )

    def open_batches(self, conn: Any, jobs: Iterable[NewJob], now: int) -> set[str]:
        """Make the batches these jobs join (on first use), setting the limits they bring; the
        names of those that have a concurrency limit."""
        wanted: dict[str, int | None] = {}
        for job in jobs:
            if job.batch is not None and (job.batch not in wanted or job.batch_limit is not None):
                wanted[job.batch] = job.batch_limit
        limited: set[str] = set()
        for name in sorted(wanted):  # one lock order for every enqueuer
            limit = wanted[name]
            params = {
                "name": name,
                "concurrency": limit,
                "now": now,
                "set_limit": limit is not None,
            }
            if self.db.value(conn, "batch_open", params) is not None:
                limited.add(name)
            if limit is not None:
                conn.execute(self.db.q["batch_limit_jobs"], {"name": name, "limited": True})
        return limited

    def count_batches(self, conn: Any, inserted: Sequence[JobRow]) -> None:
        """Count the jobs just inserted into batches, once per batch and state."""
        counts = Counter((row.batch, row.state) for row in inserted if row.batch is not None)
        if counts:
            self.db.many(
                conn,
                "batch_count_inserted",
                [{"batch": b, "state": s, "n": n} for (b, s), n in sorted(counts.items())],
            )

    def insert_one(
        self,
        conn: Any,
        job: NewJob,
        job_id: str,
        now: int,
        default_retries: int,
        batch_limited: bool = False,
    ) -> str | None:
        """Insert one job with its dependencies; the id of its unique_key's holder, if any."""
        db = self.db
        waiting_on, cancelled_by = 0, None
        if job.depends_on:
            states = {
                r["id"]: r["state"]
                for r in conn.execute(db.q["dep_states"], (db.array(job.depends_on),))
            }
            unknown = [dep for dep in job.depends_on if dep not in states]
            if unknown:
                raise InvalidInputError(
                    f"depends_on: no job {unknown[0]!r} (a job may depend on jobs already "
                    f"enqueued or on earlier jobs of its batch)"
                )
            for dep in job.depends_on:
                met = condition_met(job.conditions.get(dep, COMPLETED), states[dep])
                if met is None:
                    waiting_on += 1
                elif not met and cancelled_by is None:
                    cancelled_by = f"dependency {dep} is {states[dep]}"
        for name in job.after_batch:
            conn.execute(db.q["lock_batch"], {"name": name})
            found = conn.execute(db.q["batch_state"], {"name": name}).fetchone()
            if found is None:
                raise InvalidInputError(f"after_batch: no batch {name!r}")
            if found["finished_at"] is None:
                waiting_on += 1
            elif not found["completed"] and cancelled_by is None:
                cancelled_by = f"dependency batch {name} is {BATCH_NOT_COMPLETED}"
        row = self.row(job, job_id, now, default_retries, waiting_on, cancelled_by, batch_limited)
        # A concurrent enqueue may take the key between our look and our insert: the insert
        # then does nothing (ON CONFLICT), and the next look finds the new holder.
        for _ in range(CONFLICT_RETRIES):
            if job.unique_key is not None:
                held = conn.execute(db.q["find_unique"], (job.unique_key,)).fetchone()
                if held:
                    return str(held["id"])
            if conn.execute(db.q["insert_job"], row).fetchone() is not None:
                db.count_inserted(conn, {(job.queue, row.state): 1})
                self.count_batches(conn, [row])
                break
        else:
            raise StoreError(f"unique_key {job.unique_key!r} kept changing hands; try again")
        if job.depends_on:
            edges = [(dep, job_id, job.conditions.get(dep, COMPLETED)) for dep in job.depends_on]
            db.many(conn, "insert_dep", edges)
        if job.after_batch and cancelled_by is None:
            waits = [{"batch": name, "job_id": job_id} for name in job.after_batch]
            db.many(conn, "insert_batch_dep", waits)
        return None

    def _duplicate(self, tried: list[str]) -> DuplicateJobError:
        """The error for a refused batch (rolled back by now), naming the id that failed: the
        first that exists already or repeats an earlier one, in insertion order."""
        existing = {job.id for job in self.jobs_by_ids(self.db.connection(), tried)}
        seen: set[str] = set()
        for job_id in tried:
            if job_id in existing:
                return DuplicateJobError(f"job {job_id!r} already exists")
            if job_id in seen:
                return DuplicateJobError(f"job {job_id!r} appears twice in the batch")
            seen.add(job_id)
        return DuplicateJobError("a job in the batch already exists")


def _plain(jobs: Iterable[NewJob]) -> bool:
    """Whether no job of the batch has anything for the database to decide."""
    return all(
        not job.depends_on and job.unique_key is None and not job.after_batch for job in jobs
    )


class _StreamDuplicate(Exception):
    """A batch of a stream met a duplicate id; `taken`: its ids already stored at the time
    (before the stream, or earlier in it), told apart once the transaction is rolled back."""

    def __init__(self, batch: Sequence[tuple[str, NewJob]], taken: set[str]) -> None:
        self.batch, self.taken = batch, taken


def _ids(batch: Sequence[tuple[str, NewJob]]) -> list[str]:
    return [job.id for _, job in batch if job.id is not None]
