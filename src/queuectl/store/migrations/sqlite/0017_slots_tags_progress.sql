-- Changes claims: a job that requires tags is claimed only by a runner that has them all.
-- `requires`: the job's required tags (a JSON list), NULL for a job that requires none, so
-- that the claim checks nothing for it. `tags`: a runner's tags (a JSON list, NULL: none).
-- `silence_timeout`: seconds without output after which an attempt is killed (NULL: never).
-- `progress`: the last report of the attempt whose claim token it names (a JSON object).
ALTER TABLE jobs ADD COLUMN requires TEXT;
ALTER TABLE jobs ADD COLUMN silence_timeout REAL;
ALTER TABLE jobs ADD COLUMN progress TEXT;
ALTER TABLE runners ADD COLUMN tags TEXT;
