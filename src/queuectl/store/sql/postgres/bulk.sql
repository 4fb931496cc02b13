-- Named queries of the PostgreSQL store for changes to every job a filter matches
-- (store/actions.py).

-- name: bulk_match
-- The next jobs a filter matches, oldest first, among seq (after, upto]: read outside any write
-- transaction, a window at a time, so a filter that matches few jobs of many scans a bounded
-- window per statement. NULL filters match any; `text` as in search_jobs.
SELECT id, seq FROM jobs
WHERE seq > %(after)s::bigint AND seq <= %(upto)s::bigint
  AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
  AND (%(text)s::text IS NULL OR starts_with(id, %(text)s::text)
       OR command ILIKE %(pattern)s::text ESCAPE '\'
       OR last_error ILIKE %(pattern)s::text ESCAPE '\')
ORDER BY seq LIMIT %(batch)s::bigint

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
