-- Named queries of the SQLite store for API tokens and the audit (store/access.py).

-- name: token_add
INSERT INTO api_tokens (name, role, digest, created_at) VALUES (?, ?, ?, ?)

-- name: token_revoke
DELETE FROM api_tokens WHERE name = ?

-- name: token_by_digest
SELECT name, role FROM api_tokens WHERE digest = ?

-- name: audit_add
INSERT INTO audit (at, token, client, method, route, target, status)
VALUES (:at, :token, :client, :method, :route, :target, :status)

-- name: audit_since
-- The newest first, from an instant on.
SELECT at, token, client, method, route, target, status FROM audit
WHERE at >= :since ORDER BY seq DESC LIMIT :limit

-- name: audit_expire
-- One small batch of the oldest entries before an instant, so writers never wait long.
DELETE FROM audit WHERE seq IN (
    SELECT seq FROM audit WHERE at < :before ORDER BY at LIMIT :batch)
