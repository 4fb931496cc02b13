"""Database passwords never reach a user's terminal: errors that quote a store URL are redacted,
and a PostgreSQL URL that cannot be parsed is refused as invalid input."""

from __future__ import annotations

import pytest

from queuectl.errors import InvalidInputError
from queuectl.urls import check_postgres_url, redact_url
from tests.support.cli import run

MALFORMED = [
    "postgresql://u:secret@[::1:5432/x",
    "postgresql://u:secret@127.0.0.1/%ZZ",
    "postgresql://u:secret@127.0.0.1/x?nosuchparameter=1",
    "postgresql://u:secret@127.0.0.1:abc/x",
]
RAW_AT = "postgres://u:s@cret'@127.0.0.1:5432/x"  # libpq takes `cret'@127.0.0.1` for the host


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ('URI: "postgresql://u:secret@[::1:5432/x"', 'URI: "postgresql://u:***@[::1:5432/x"'),
        ("postgresql://u:sec@r'et@h/x", "postgresql://u:***@h/x"),
        (
            "postgresql://u@h/x?password=secret&sslmode=off",
            "postgresql://u@h/x?password=***&sslmode=off",
        ),
        ("host=h password='se cret' user=u", "host=h password=*** user=u"),
        ("a://u:p@h and b://v:q@h2", "a://u:***@h and b://v:***@h2"),
        ("postgresql://h/x?sslmode=off", "postgresql://h/x?sslmode=off"),
    ],
)
def test_redact_url_hides_every_password(text: str, redacted: str) -> None:
    assert redact_url(text) == redacted


@pytest.mark.parametrize("url", [*MALFORMED, RAW_AT])
def test_a_malformed_postgres_url_is_invalid_input_without_its_password(url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_postgres_url(url)
    assert "secret" not in str(caught.value)
    assert "s@cret" not in str(caught.value)
    assert str(caught.value).startswith("--db: ")


def test_well_formed_postgres_urls_pass() -> None:
    for url in (
        "postgresql://u:secret@h1:5432,h2:5433/x?target_session_attrs=read-write",
        "postgresql:///x",
        "postgresql://[::1]:5432/x",
    ):
        check_postgres_url(url)


@pytest.mark.parametrize("command", [["status"], ["worker", "start"], ["serve", "--port", "1"]])
@pytest.mark.parametrize("url", MALFORMED)
def test_no_command_prints_the_password_of_a_bad_url(command: list[str], url: str) -> None:
    result = run(["--db", url, *command], timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode in (1, 2), output
    assert "secret" not in output
    assert "Traceback" not in output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output


@pytest.mark.parametrize("url", [*MALFORMED, RAW_AT])
def test_a_malformed_url_exits_2_and_never_names_its_password(url: str) -> None:
    result = run(["--db", url, "status"])
    assert result.returncode == 2
    assert "cret" not in result.stdout + result.stderr
