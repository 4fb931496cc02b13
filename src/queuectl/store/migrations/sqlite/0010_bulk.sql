-- A job's dependency edges found by the dependant too: deleting a job (purge, retention) drops
-- the edges where it is the dependant without reading every edge, and requeue counts the
-- dependencies a job still has from its edges.
CREATE INDEX job_deps_job ON job_deps (job_id);
