-- Searches (`list --search`, GET /api/jobs?search=, bulk changes by text) find the jobs whose
-- command or last error holds some text from an index of the trigrams (every three
-- characters) of both, not by reading every job. Each trigram is indexed once per job
-- (detail=none: no positions, no sizes), which keeps what an enqueue pays for it small; a
-- search looks up the trigrams of its text, then checks each job found as before (LIKE), so
-- it answers exactly what reading every job would. Kept by triggers through every insert,
-- change of either text, and delete (an external-content index: the texts are stored once,
-- in jobs, and a delete gives the old ones back to take out).
CREATE VIRTUAL TABLE jobs_text USING fts5(
    command, last_error, content='jobs', content_rowid='seq', tokenize='trigram',
    detail='none', columnsize=0
);
INSERT INTO jobs_text (jobs_text) VALUES ('rebuild');
CREATE TRIGGER jobs_text_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_text (rowid, command, last_error)
    VALUES (new.seq, new.command, new.last_error);
END;
CREATE TRIGGER jobs_text_update AFTER UPDATE OF command, last_error ON jobs
WHEN old.command IS NOT new.command OR old.last_error IS NOT new.last_error BEGIN
    INSERT INTO jobs_text (jobs_text, rowid, command, last_error)
    VALUES ('delete', old.seq, old.command, old.last_error);
    INSERT INTO jobs_text (rowid, command, last_error)
    VALUES (new.seq, new.command, new.last_error);
END;
CREATE TRIGGER jobs_text_delete AFTER DELETE ON jobs BEGIN
    INSERT INTO jobs_text (jobs_text, rowid, command, last_error)
    VALUES ('delete', old.seq, old.command, old.last_error);
END;
