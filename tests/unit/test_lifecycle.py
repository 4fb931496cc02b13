"""What happens to a job after an attempt: retry with backoff, dead, completed."""

from __future__ import annotations

import pytest

from queuectl.config import DEFAULTS
from queuectl.lifecycle import Outcome, settle
from queuectl.models import COMPLETED, DEAD, FAILED

T0 = 1_800_000_000_000


def outcome(attempt: int, exit_code: int | None = 1, error: str | None = None) -> Outcome:
    return Outcome("j", attempt, exit_code, error, 500, token=attempt)


def test_success_completes() -> None:
    result = settle(outcome(1, 0), 3, [], DEFAULTS, 0.5, T0)
    assert (result.state, result.run_at_ms, result.last_error) == (COMPLETED, None, None)


def test_success_on_the_last_allowed_attempt_completes() -> None:
    assert settle(outcome(4, 0), 3, [], DEFAULTS, 0.5, T0).state == COMPLETED


@pytest.mark.parametrize(("attempt", "wait_s"), [(1, 2), (2, 4), (3, 8)])
def test_failures_wait_base_to_the_k_with_defaults(attempt: int, wait_s: int) -> None:
    result = settle(outcome(attempt), 3, [], DEFAULTS, 0.5, T0)
    assert result.state == FAILED
    assert result.last_error == "exit code 1"
    assert result.run_at_ms == T0 + wait_s * 1000


def test_backoff_max_caps_the_wait() -> None:
    config = {**DEFAULTS, "backoff_max": 5}
    assert settle(outcome(3), 10, [], config, 0.0, T0).run_at_ms == T0 + 5000


def test_backoff_base_is_configurable() -> None:
    config = {**DEFAULTS, "backoff_base": 3}
    assert settle(outcome(2), 10, [], config, 0.0, T0).run_at_ms == T0 + 9000


@pytest.mark.parametrize("rand", [0.0, 0.3, 0.999])
def test_jitter_keeps_the_wait_within_one_minus_j_and_one(rand: float) -> None:
    config = {**DEFAULTS, "backoff_jitter": 0.5}
    run_at = settle(outcome(3), 3, [], config, rand, T0).run_at_ms
    assert run_at is not None
    assert T0 + 4000 <= run_at <= T0 + 8000
    assert run_at == T0 + round(8000 * (1 - 0.5 * rand))


@pytest.mark.parametrize("max_retries", [0, 1, 3, 5])
def test_dead_after_one_plus_max_retries_runs(max_retries: int) -> None:
    states = [
        settle(outcome(n), max_retries, [], DEFAULTS, 0.0, T0).state
        for n in range(1, max_retries + 2)
    ]
    assert states == [FAILED] * max_retries + [DEAD]
    last = settle(outcome(max_retries + 1), max_retries, [], DEFAULTS, 0.0, T0)
    assert (last.run_at_ms, last.last_error) == (None, "exit code 1")


def test_no_retry_exit_code_is_dead_at_once() -> None:
    result = settle(outcome(1, 2), 5, [2, 3], DEFAULTS, 0.0, T0)
    assert result.state == DEAD
    assert result.last_error is not None
    assert result.last_error.startswith("exit code 2")


def test_other_exit_codes_still_retry() -> None:
    assert settle(outcome(1, 1), 5, [2, 3], DEFAULTS, 0.0, T0).state == FAILED


def test_timeout_and_worker_lost_are_retried_with_their_error() -> None:
    timed_out = settle(outcome(1, None, "timed out after 1s"), 3, [], DEFAULTS, 0.0, T0)
    assert (timed_out.state, timed_out.last_error) == (FAILED, "timed out after 1s")
    lost = settle(outcome(4, None, "worker lost"), 3, [], DEFAULTS, 0.0, T0)
    assert (lost.state, lost.last_error) == (DEAD, "worker lost")


def test_an_error_is_a_failure_even_with_exit_code_zero() -> None:
    # A timeout kills the process; whatever code it reports, the attempt failed.
    assert settle(outcome(1, 0, "timed out after 1s"), 3, [0], DEFAULTS, 0.0, T0).state == FAILED


def failed_with(code: int, output: bytes | None) -> Outcome:
    return Outcome("j", 1, code, None, 500, output=output, token=1)


def test_the_error_carries_the_last_line_the_command_printed() -> None:
    said = b"starting\npsql: error: connection refused\n\n  \n"
    result = settle(failed_with(2, said), 3, [], DEFAULTS, 0.0, T0)
    assert result.last_error == "exit code 2: psql: error: connection refused"


@pytest.mark.parametrize(
    ("code", "named"),
    [
        (127, "exit code 127 (command not found)"),
        (126, "exit code 126 (not executable)"),
        (137, "exit code 137 (killed by signal 9 (KILL))"),
        (143, "exit code 143 (killed by signal 15 (TERM))"),
        (1, "exit code 1"),
    ],
)
def test_common_exit_codes_are_named(code: int, named: str) -> None:
    result = settle(failed_with(code, b""), 3, [], {**DEFAULTS, "retry_not_runnable": 1}, 0, T0)
    assert result.last_error == named


def test_a_long_last_line_is_bounded() -> None:
    result = settle(failed_with(1, b"x" * 5000), 3, [], DEFAULTS, 0.0, T0)
    assert result.last_error is not None
    assert result.last_error == "exit code 1: " + "x" * 199 + "…"


@pytest.mark.parametrize("code", [126, 127])
def test_a_command_that_cannot_run_is_not_retried_by_default(code: int) -> None:
    result = settle(failed_with(code, b"sh: 1: nope: not found\n"), 5, [], DEFAULTS, 0.0, T0)
    assert result.state == DEAD
    assert result.last_error is not None
    assert result.last_error.endswith("(not retried)")
    again = {**DEFAULTS, "retry_not_runnable": 1}
    assert settle(failed_with(code, None), 5, [], again, 0.0, T0).state == FAILED


def test_the_last_line_is_text_without_styles_or_controls() -> None:
    said = b"\x1b[31merror:\x1b[0m disk\x07 full\n\xff\xfe\n"
    result = settle(failed_with(1, said), 3, [], DEFAULTS, 0.0, T0)
    assert result.last_error == "exit code 1: error: disk full"
