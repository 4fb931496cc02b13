"""The configuration keys: names, defaults and validators."""

from __future__ import annotations

import pytest

from queuectl import config
from queuectl.errors import InvalidInputError


def test_defaults_are_the_specs() -> None:
    assert config.DEFAULTS == {
        "max_retries": 3,
        "backoff_base": 2,
        "backoff_max": 3600,
        "backoff_jitter": 0,
        "job_timeout": 0,
        "lease_seconds": 30,
        "output_limit": 65536,
        "retain_completed": 604800,
        "retain_dead": 0,
        "retry_not_runnable": 0,
        "retain_audit": 7776000,
    }


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("max_retries", "max_retries"),
        ("max-retries", "max_retries"),
        ("Backoff-Base", "backoff_base"),
        (" lease_seconds ", "lease_seconds"),
    ],
)
def test_keys_with_dash_or_underscore(name: str, key: str) -> None:
    assert config.canonical_key(name) == key


@pytest.mark.parametrize("name", ["", "nope", "max__retries", "maxretries", "timeout"])
def test_unknown_keys_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError, match="unknown config key"):
        config.canonical_key(name)


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("max_retries", "0", 0),
        ("max_retries", "100", 100),
        ("max_retries", 7, 7),
        ("backoff_base", "1", 1),
        ("backoff_base", "1.5", 1.5),
        ("backoff_base", 3.0, 3),
        ("backoff_max", "0", 0),
        ("backoff_max", "1h", 3600),
        ("backoff_max", "500ms", 0.5),
        ("backoff_jitter", "0", 0),
        ("backoff_jitter", "0.25", 0.25),
        ("backoff_jitter", "1", 1),
        ("job_timeout", "0", 0),
        ("job_timeout", "30s", 30),
        ("job_timeout", "5m", 300),
        ("lease_seconds", "1", 1),
        ("lease_seconds", "2m", 120),
        ("output_limit", "0", 0),
        ("output_limit", "1048576", 1048576),
    ],
)
def test_valid_values(key: str, value: object, stored: float) -> None:
    name, checked = config.validate(key, value)
    assert (name, checked) == (key, stored)
    assert type(checked) is type(stored)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_retries", "-1"),
        ("max_retries", "101"),
        ("max_retries", "1.5"),
        ("max_retries", "x"),
        ("max_retries", True),
        ("max_retries", ""),
        ("backoff_base", "0.5"),
        ("backoff_base", "0"),
        ("backoff_base", "nan"),
        ("backoff_base", "inf"),
        ("backoff_base", "x"),
        ("backoff_base", False),
        ("backoff_max", "-1"),
        ("backoff_max", "soon"),
        ("backoff_max", "99999999999d"),
        ("backoff_jitter", "-0.1"),
        ("backoff_jitter", "1.5"),
        ("backoff_jitter", "half"),
        ("job_timeout", "-5s"),
        ("job_timeout", "x"),
        ("lease_seconds", "0"),
        ("lease_seconds", "500ms"),
        ("lease_seconds", "x"),
        ("output_limit", "-1"),
        ("output_limit", "1k"),
        ("output_limit", "1.5"),
    ],
)
def test_invalid_values_name_the_key(key: str, value: object) -> None:
    with pytest.raises(InvalidInputError, match=f"config {key}"):
        config.validate(key, value)
