-- Searches (`list --search`, GET /api/jobs?search=, bulk changes by text) find the jobs whose
-- command or last error holds some text (ILIKE) from trigram indexes of both (pg_trgm, in
-- PostgreSQL's contrib, which Debian's postgresql package includes), not by reading every
-- job. Where the extension cannot be made (not installed, or the role may not create it) the
-- store works as before: the same searches read the jobs, slower with many stored. GIN's
-- pending list takes an insert's entries at little cost and merges them later.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'queuectl: pg_trgm unavailable (%): searches read every job', SQLERRM;
END
$$;
-- The operator class named in the extension's own schema, which need not be on this store's
-- search path (another store of the database may have made the extension in its schema).
DO $$
DECLARE
    home TEXT;
BEGIN
    SELECT nspname INTO home FROM pg_extension JOIN pg_namespace ON pg_namespace.oid = extnamespace
    WHERE extname = 'pg_trgm';
    IF home IS NOT NULL THEN
        EXECUTE format('CREATE INDEX jobs_command_trgm ON jobs USING gin (command %I.gin_trgm_ops)', home);
        EXECUTE format('CREATE INDEX jobs_error_trgm ON jobs USING gin (last_error %I.gin_trgm_ops)', home);
    END IF;
END
$$;
-- The ids in byte order (ids_from compares them so, whatever the database's collation): a
-- search, or `show` given an id's first characters, finds the ids that start with them from
-- this index instead of reading every id.
CREATE INDEX jobs_id_bytes ON jobs (id COLLATE "C");
