-- Nothing to change on PostgreSQL: job_deps has been indexed by the dependant since 0001. The
-- number keeps both dialects' schema versions in step (SQLite's 0010 adds that index).
SELECT 1;
