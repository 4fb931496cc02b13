-- Inserts are counted by the store once per batch, in the batch's transaction
-- (sqlite_count_inserted, sqlite_count_inserted_ids), no longer by a trigger per row: any
-- AFTER INSERT trigger, even one whose WHEN is false, ran for every row and cost a bulk
-- enqueue two thirds of its time. Updates and deletes keep their triggers.
DROP TRIGGER job_counts_insert;
