"""The claim token a test reports an attempt's end with, as the runner that claimed it would."""

from __future__ import annotations

from typing import Any


def token_of(store: Any, job_id: str) -> int:
    """The token of the job's latest claim (its last history entry's)."""
    attempts = store.history(job_id)
    assert attempts, f"{job_id} was never claimed"
    token = attempts[-1].token
    assert token is not None, f"{job_id}'s last attempt has no token"
    return int(token)
