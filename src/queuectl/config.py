"""The configuration keys stored in the queue: names, defaults and validators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from queuectl.durations import parse_duration
from queuectl.errors import InvalidInputError


def _integer(low: int, high: int | None = None) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool):
            raise InvalidInputError(f"expected an integer, got {value!r}")
        try:
            number = int(str(value).strip()) if not isinstance(value, int) else value
        except ValueError:
            raise InvalidInputError(f"expected an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            bounds = f"{low} to {high}" if high is not None else f">= {low}"
            raise InvalidInputError(f"must be an integer {bounds}, got {number}")
        return number

    return check


def _number(low: float, high: float | None = None) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, bool):
            raise InvalidInputError(f"expected a number, got {value!r}")
        try:
            number = float(str(value).strip()) if not isinstance(value, int | float) else value
        except ValueError:
            raise InvalidInputError(f"expected a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise InvalidInputError(f"expected a finite number, got {value!r}")
        if number < low or (high is not None and number > high):
            bounds = f"{low:g} to {high:g}" if high is not None else f">= {low:g}"
            raise InvalidInputError(f"must be a number {bounds}, got {number:g}")
        return _tidy(number)

    return check


def _seconds(low: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        seconds = parse_duration(value if isinstance(value, int | float) else str(value), "value")
        if seconds < low:
            unit = "second" if low == 1 else "seconds"
            raise InvalidInputError(f"must be at least {low:g} {unit}, got {seconds:g}")
        return _tidy(seconds)

    return check


def _tidy(number: float) -> float:
    """Whole numbers as int so that `config get` prints `5`, not `5.0`."""
    return int(number) if float(number).is_integer() else number


@dataclass(frozen=True)
class Key:
    name: str
    default: float
    validate: Callable[[object], float]
    help: str


KEYS: dict[str, Key] = {
    key.name: key
    for key in (
        Key("max_retries", 3, _integer(0, 100), "retries after the first attempt"),
        Key("backoff_base", 2, _number(1), "wait base ** k seconds after the k-th failure"),
        Key("backoff_max", 3600, _seconds(0), "longest wait between attempts, in seconds"),
        Key("backoff_jitter", 0, _number(0, 1), "each wait times a random factor in [1-j, 1]"),
        Key("job_timeout", 0, _seconds(0), "seconds before an attempt is killed; 0 = none"),
        Key("lease_seconds", 30, _seconds(1), "a runner silent this long loses its jobs"),
        Key("output_limit", 65536, _integer(0), "bytes of output kept per attempt (the tail)"),
        Key(
            "retain_completed",
            604800,
            _seconds(0),
            "seconds completed and cancelled jobs are kept; 0 = forever",
        ),
        Key("retain_dead", 0, _seconds(0), "seconds dead jobs are kept; 0 = forever"),
        Key(
            "retry_not_runnable",
            0,
            _integer(0, 1),
            "1 = retry exit 126 (not executable) and 127 (command not found); 0 = dead at once",
        ),
        Key(
            "retain_audit",
            7776000,
            _seconds(0),
            "seconds the audit of API requests is kept; 0 = forever",
        ),
    )
}

DEFAULTS: dict[str, float] = {name: key.default for name, key in KEYS.items()}


def canonical_key(name: str) -> str:
    """The stored name of a key written with `-` or `_`; refuses unknown keys."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in KEYS:
        raise InvalidInputError(f"unknown config key {name!r} (known: {', '.join(KEYS)})")
    return key


def validate(name: str, value: object) -> tuple[str, float]:
    """The canonical key and the validated value, or InvalidInputError naming the key."""
    key = canonical_key(name)
    try:
        return key, KEYS[key].validate(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"config {key}: {exc}") from None
