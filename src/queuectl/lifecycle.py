"""What happens to a job after an attempt: pure decisions, applied by the store."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from queuectl.exits import NOT_RUNNABLE, exit_error
from queuectl.models import COMPLETED, DEAD, FAILED
from queuectl.retry import backoff_delay


@dataclass(frozen=True)
class Fence:
    """What the store holds of an attempt still under this runner: its number, its claim's
    token and its retry rules."""

    attempt: int
    token: int
    max_retries: int
    no_retry_exit_codes: list[int]


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended, as reported by the runner that owned it."""

    job_id: str
    attempt: int
    exit_code: int | None
    error: str | None
    duration_ms: int | None  # measured on the runner's monotonic clock; None: unknown
    output: bytes | None = None
    #: When the attempt ended, on the runner's monotonic clock: the store turns it into an
    #: instant of its own clock, however long the result waited to be written.
    ended_mono: float | None = None
    output_dropped: int = 0  # bytes written before `output` (the kept tail)
    #: The attempt's retry rules as its claim returned them (they never change once a job is
    #: enqueued): the store can then decide the settlement before it writes, in one round trip
    #: on PostgreSQL. None: the store reads them.
    fence: Fence | None = None
    #: The runner killed the attempt as no longer its own (cancelled): nothing to settle; it
    #: reports that the attempt's processes are gone, letting go of what they held.
    abandoned: bool = False
    #: The claim's token (see store.Claim): what the store fences the result by.
    token: int = field(kw_only=True)
    #: What the attempt cost: CPU time of its processes, and its peak memory (None: unknown).
    cpu_ms: int | None = field(default=None, kw_only=True)
    max_rss_bytes: int | None = field(default=None, kw_only=True)

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.exit_code == 0

    def gone(self) -> Outcome:
        """The same attempt as abandoned: nothing to settle, its processes are gone."""
        return Outcome(
            self.job_id,
            self.attempt,
            self.exit_code,
            self.error,
            None,
            abandoned=True,
            token=self.token,
        )


@dataclass(frozen=True)
class Settlement:
    state: str
    run_at_ms: int | None  # the next attempt's earliest start, for FAILED
    last_error: str | None
    retry_in_s: float = 0.0  # the backoff before that start, for FAILED


def settle(
    outcome: Outcome,
    max_retries: int,
    no_retry_exit_codes: list[int],
    config: Mapping[str, float],
    rand: float,
    finished_at_ms: int,
) -> Settlement:
    """The job's next state after `outcome`, its `attempt`-th run, ended at `finished_at_ms`."""
    if outcome.succeeded:
        return Settlement(COMPLETED, None, None)
    error = outcome.error or exit_error(outcome.exit_code, outcome.output)
    if outcome.error is None and (
        outcome.exit_code in no_retry_exit_codes
        or (outcome.exit_code in NOT_RUNNABLE and not config.get("retry_not_runnable"))
    ):
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
    delay_ms = round(delay_s * 1000)
    return Settlement(FAILED, finished_at_ms + delay_ms, error, delay_ms / 1000)


def settle_ours(
    outcomes: Sequence[Outcome],
    ours: Mapping[str, Fence],
    config: Mapping[str, float],
    rand: Callable[[], float],
    finished_at_ms: Callable[[Outcome], int],
) -> list[tuple[Outcome, Settlement]]:
    """Each outcome whose attempt is still ours, with how it settles; the rest are fenced out
    (cancelled, or reclaimed after the lease expired) and change nothing."""
    decided = []
    for outcome in outcomes:
        fence = ours.get(outcome.job_id)
        if fence is not None and fence.token == outcome.token:
            settlement = settle(
                outcome,
                fence.max_retries,
                fence.no_retry_exit_codes,
                config,
                rand(),
                finished_at_ms(outcome),
            )
            decided.append((outcome, settlement))
    return decided


def settle_params(
    outcome: Outcome, settlement: Settlement, owner: str, now_ms: int, finished_at_ms: int
) -> dict[str, object]:
    """The parameters of the store's `settle_job` statement (a null duration is computed there
    from the attempt's start)."""
    return {
        "state": settlement.state,
        "run_at": settlement.run_at_ms,
        "finished_at": finished_at_ms,
        "exit_code": outcome.exit_code,
        "last_error": settlement.last_error,
        "duration_ms": None if outcome.duration_ms is None else max(0, outcome.duration_ms),
        "now": now_ms,
        "id": outcome.job_id,
        "owner": owner,
        "token": outcome.token,
        "cpu_ms": outcome.cpu_ms,
        "max_rss_bytes": outcome.max_rss_bytes,
    }
