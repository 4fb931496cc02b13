-- API tokens with roles, stored as the SHA-256 of the token (the token itself is shown once,
-- when made), and the audit of every mutating API request.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,            -- read, operate or admin
    digest TEXT NOT NULL UNIQUE,   -- hex SHA-256 of the token
    created_at INTEGER NOT NULL
);

CREATE TABLE audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    token TEXT NOT NULL,           -- the token's name
    client TEXT NOT NULL,          -- the client's address
    method TEXT NOT NULL,
    route TEXT NOT NULL,           -- the route's pattern, /api/jobs/{job_id}/cancel
    target TEXT NOT NULL,          -- what it touched: job ids, a name, a filter
    status INTEGER NOT NULL
);
CREATE INDEX audit_at ON audit (at);
