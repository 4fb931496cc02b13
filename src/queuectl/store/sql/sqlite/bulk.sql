-- Named queries of the SQLite store for changes to every job a filter matches (store/actions.py).

-- name: bulk_match
-- The next jobs a filter matches, oldest first, among seq (after, upto]: read outside any write
-- transaction, a window at a time, so a filter that matches few jobs of many never holds the
-- write lock while it looks.
SELECT id, seq FROM jobs
WHERE seq > :after AND seq <= :upto AND {job_filter} AND {text_filter}
ORDER BY seq LIMIT :batch

-- name: bulk_recheck
-- Those of the jobs found (a JSON list) that the filter still matches, read again in the
-- transaction that changes them: one changed by another client since it was found (moved to
-- another queue, edited) is matched no more.
SELECT id FROM jobs WHERE id IN (SELECT value FROM json_each(:ids)) AND {job_filter} AND {text_filter}

-- name: bulk_hold
-- Held as hold_jobs holds them: those still in one of `states` (waiting ones) and not held.
UPDATE jobs SET held = 1, scheduled = 1, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN (SELECT value FROM json_each(:states))
  AND held = 0
RETURNING id

-- name: bulk_release
-- Released as release_jobs releases them, those still in one of `states`.
UPDATE jobs SET held = 0, scheduled = 1, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN (SELECT value FROM json_each(:states))
  AND held = 1
RETURNING id

-- name: bulk_delete
-- The jobs named (a JSON list) that are still in one of `states` (finished ones), deleted with
-- their history; a cancelled job whose processes still live is kept (see expire_finished).
DELETE FROM jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND +state IN (SELECT value FROM json_each(:states)) AND lease_owner IS NULL
RETURNING id
