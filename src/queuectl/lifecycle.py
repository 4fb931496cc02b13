"""What happens to a job after an attempt (SPEC section 3): pure decisions, applied by the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from queuectl.models import COMPLETED, DEAD, FAILED
from queuectl.retry import backoff_delay


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, as reported by the runner that owned it."""

    job_id: str
    attempt: int
    exit_code: int | None
    error: str | None
    started_at_ms: int
    finished_at_ms: int
    output: bytes | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.exit_code == 0


@dataclass(frozen=True)
class Settlement:
    state: str
    run_at_ms: int | None  # the next attempt's earliest start, for FAILED
    last_error: str | None


def settle(
    outcome: Outcome,
    max_retries: int,
    no_retry_exit_codes: list[int],
    config: Mapping[str, float],
    rand: float,
) -> Settlement:
    """The job's next state after `outcome`, its `attempt`-th run, ended."""
    if outcome.succeeded:
        return Settlement(COMPLETED, None, None)
    error = outcome.error or f"exit code {outcome.exit_code}"
    if outcome.error is None and outcome.exit_code in no_retry_exit_codes:
        return Settlement(DEAD, None, f"{error} (not retried)")
    if outcome.attempt > max_retries:
        return Settlement(DEAD, None, error)
    delay_s = backoff_delay(
        outcome.attempt,
        float(config["backoff_base"]),
        float(config["backoff_max"]),
        float(config["backoff_jitter"]),
        rand,
    )
    return Settlement(FAILED, outcome.finished_at_ms + round(delay_s * 1000), error)
