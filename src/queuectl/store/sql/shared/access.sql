-- Named queries both stores run as written, for API tokens and the audit (store/access.py).

-- name: token_list
SELECT name, role, created_at FROM api_tokens ORDER BY name
