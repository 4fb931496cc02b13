-- Named queries of the SQLite store for changes to every job a filter matches (store/actions.py).

-- name: bulk_match
-- The next jobs a filter matches, oldest first, among seq (after, upto]: read outside any write
-- transaction, a window at a time, so a filter that matches few jobs of many never holds the
-- write lock while it looks. NULL filters match any; `states` and `queues` are JSON lists;
-- `text` as in search_jobs.
SELECT id, seq FROM jobs
WHERE seq > :after AND seq <= :upto
  AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:text IS NULL OR substr(id, 1, length(:text)) = :text
       OR command LIKE :pattern ESCAPE '\' OR last_error LIKE :pattern ESCAPE '\')
ORDER BY seq LIMIT :batch

-- name: bulk_delete
-- The jobs named (a JSON list) that are still in one of `states` (finished ones), deleted with
-- their history; a cancelled job whose processes still live is kept (see expire_finished).
DELETE FROM jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND +state IN (SELECT value FROM json_each(:states)) AND lease_owner IS NULL
RETURNING id
