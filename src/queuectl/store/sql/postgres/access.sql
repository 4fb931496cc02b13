-- Named queries of the PostgreSQL store for API tokens and the audit (store/access.py).

-- name: token_add
INSERT INTO api_tokens (name, role, digest, created_at) VALUES (%s, %s, %s, %s::bigint)

-- name: token_revoke
DELETE FROM api_tokens WHERE name = %s

-- name: token_by_digest
SELECT name, role FROM api_tokens WHERE digest = %s

-- name: audit_add
INSERT INTO audit (at, token, client, method, route, target, status)
VALUES (%(at)s::bigint, %(token)s, %(client)s, %(method)s, %(route)s, %(target)s,
        %(status)s::integer)

-- name: audit_since
-- The newest first, from an instant on.
SELECT at, token, client, method, route, target, status FROM audit
WHERE at >= %(since)s::bigint ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: audit_expire
-- One small batch of the oldest entries before an instant, so writers never wait long.
DELETE FROM audit WHERE seq IN (
    SELECT seq FROM audit WHERE at < %(before)s::bigint ORDER BY at LIMIT %(batch)s::bigint
    FOR UPDATE SKIP LOCKED)
