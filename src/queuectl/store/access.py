"""API tokens and the audit of mutating requests: who may call the API, and what they did."""

from __future__ import annotations

import dataclasses

from queuectl.errors import ConflictError
from queuectl.store.dialect import Flow, operation
from queuectl.store.records import AuditEntry, Token


class Access(Flow):
    """Tokens by name and role, found by their digest; the audit's entries."""

    @operation(replayable=False)
    def add_token(self, name: str, role: str, digest: str) -> Token:
        now = self.db.now()
        try:
            with self.db.transaction() as conn:
                conn.execute(self.db.q["token_add"], (name, role, digest, now))
        except self.db.unique_violation:
            raise ConflictError(f"a token named {name!r} exists; revoke it first") from None
        return Token(name, role, now)

    @operation()
    def tokens(self) -> list[Token]:
        rows = self.db.connection().execute(self.db.q["token_list"])
        return [Token(r["name"], r["role"], int(r["created_at"])) for r in rows]

    @operation()
    def revoke_token(self, name: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(self.db.q["token_revoke"], (name,)).rowcount)

    @operation()
    def token_role(self, digest: str) -> tuple[str, str] | None:
        row = self.db.connection().execute(self.db.q["token_by_digest"], (digest,)).fetchone()
        return None if row is None else (row["name"], row["role"])

    @operation(replayable=False)
    def record_audit(self, entry: AuditEntry) -> None:
        params = {**dataclasses.asdict(entry), "at": entry.at_ms or self.db.now()}
        with self.db.transaction() as conn:
            conn.execute(self.db.q["audit_add"], params)

    @operation()
    def audit(self, since_ms: int, limit: int) -> list[AuditEntry]:
        rows = self.db.connection().execute(
            self.db.q["audit_since"], {"since": since_ms, "limit": limit}
        )
        return [
            AuditEntry(
                int(r["at"]),
                r["token"],
                r["client"],
                r["method"],
                r["route"],
                r["target"],
                int(r["status"]),
            )
            for r in rows
        ]

    @operation()
    def expire_audit(self, before_ms: int, batch: int) -> int:
        with self.db.transaction() as conn:
            params = {"before": before_ms, "batch": batch}
            return int(conn.execute(self.db.q["audit_expire"], params).rowcount)
