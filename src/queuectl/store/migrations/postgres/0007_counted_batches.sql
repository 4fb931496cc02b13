-- Nothing to change on PostgreSQL: its statement-level trigger (0004) already appends one
-- delta row per INSERT or COPY, so a bulk batch is counted once. The number keeps both
-- dialects' schema versions in step (SQLite's 0007 drops its per-row insert trigger).
SELECT 1;
