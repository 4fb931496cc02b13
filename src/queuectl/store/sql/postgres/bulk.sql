-- Named queries of the PostgreSQL store for changes to every job a filter matches
-- (store/actions.py).

-- name: bulk_match
-- The next jobs a filter matches, oldest first, among seq (after, upto]: read outside any write
-- transaction, a window at a time, so a filter that matches few jobs of many scans a bounded
-- window per statement.
SELECT id, seq FROM jobs
WHERE seq > %(after)s::bigint AND seq <= %(upto)s::bigint AND {job_filter} AND {text_filter}
ORDER BY seq LIMIT %(batch)s::bigint

-- name: bulk_recheck
-- Those of the jobs found that the filter still matches, locked in id order (as settlements
-- lock) in the transaction that changes them: one changed by another client since it was
-- found (moved to another queue, edited) is matched no more; one being changed now is read
-- once that change commits.
SELECT id FROM jobs WHERE id = ANY(%(ids)s::text[]) AND {job_filter} AND {text_filter}
ORDER BY id FOR UPDATE

-- name: bulk_hold
-- Held as hold_jobs holds them: those still in one of `states` (waiting ones) and not held.
UPDATE jobs SET held = true, scheduled = true, updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND state = ANY(%(states)s::text[]) AND NOT held
RETURNING id

-- name: bulk_release
-- Released as release_jobs releases them, those still in one of `states`.
UPDATE jobs SET held = false, scheduled = true, updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND state = ANY(%(states)s::text[]) AND held
RETURNING id

-- name: bulk_delete
-- The jobs named that are still in one of `states` (finished ones), deleted with their
-- history; a cancelled job whose processes still live is kept (see expire_finished). SKIP
-- LOCKED: a row a runner or retention holds now is left (matched, not changed).
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE id = ANY(%(ids)s::text[]) AND state = ANY(%(states)s::text[])
      AND lease_owner IS NULL
    FOR UPDATE SKIP LOCKED)
RETURNING id
