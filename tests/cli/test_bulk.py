"""A big batch through `queuectl enqueue --file -`: one transaction, all or nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable

from queuectl.store import Store

Cli = Callable[..., subprocess.CompletedProcess[str]]
COUNT = 20_000


def lines(bad_at: int | None = None) -> str:
    return "".join(
        '{"command":"true","priority":"high"}\n'
        if n == bad_at
        else json.dumps({"id": f"bulk-{n:05}", "command": f"echo {n}"}) + "\n"
        for n in range(COUNT)
    )


def test_twenty_thousand_json_lines_all_land(cli: Cli, store: Store) -> None:
    result = cli("enqueue", "--file", "-", input=lines())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"bulk-{n:05}" for n in range(COUNT)]
    assert store.counts() == {"default": {"pending": COUNT}}
    job = store.get("bulk-12345")
    assert job is not None
    assert job.command == "echo 12345"


def test_one_bad_line_lands_none(cli: Cli, store: Store) -> None:
    result = cli("enqueue", "--file", "-", input=lines(bad_at=COUNT - 3))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: line {COUNT - 2}: priority")
    assert len(result.stderr.splitlines()) == 1
    assert store.counts() == {}


def test_one_duplicate_id_lands_none(cli: Cli, store: Store) -> None:
    text = lines() + '{"id":"bulk-00007","command":"again"}\n'
    result = cli("enqueue", "--file", "-", input=text)
    assert result.returncode == 1
    assert (
        result.stderr == f"error: line {COUNT + 1}: job 'bulk-00007' appears twice in the batch\n"
    )
    assert store.counts() == {}


def test_each_line_is_exactly_one_json_value(cli: Cli, store: Store) -> None:
    # Lines parsed the fast way and the slow way (leading whitespace, CRLF) alike; a value with
    # anything after it on its line, or cut short, is refused with json's words and its line.
    ok = (
        '{"id":"a","command":"true"}\n  {"id":"b","command":"true"}\t\r\n\n{"id":"c","command":"x"}'
    )
    result = cli("enqueue", "--file", "-", input=ok)
    assert (result.returncode, result.stdout) == (0, "a\nb\nc\n"), result.stderr
    for bad, why in (
        ('{"command":"true"} {"command":"true"}', "Extra data"),
        ('{"command":"true"}x', "Extra data"),
        ('{"command":"true",', "Expecting property name enclosed in double quotes"),
        ('{"command": tru}', "Expecting value"),
    ):
        text = '{"command":"true"}\n' * 3 + bad + "\n" + '{"command":"true"}\n'
        result = cli("enqueue", "--file", "-", input=text)
        assert (result.returncode, result.stdout) == (2, ""), bad
        assert result.stderr == f"error: line 4: invalid JSON: {why}\n", bad
    assert store.counts() == {"default": {"pending": 3}}


def test_line_numbers_hold_across_reads(cli: Cli, store: Store) -> None:
    # --file is read 8,192 characters at a time and split into lines by queuectl: a CRLF cut
    # between two reads, CR and CRLF endings, and lines longer than a read keep their numbers.
    first = json.dumps({"id": "first", "command": "true"})
    first = first[:-1] + " " * (8191 - len(first)) + "}\r\n"  # its CR ends the first read
    endings = ["\n", "\r\n", "\r"]
    rest = [
        json.dumps({"id": f"n{n}", "command": "x" * (20_000 if n % 400 == 7 else n)})
        + endings[n % 3]
        for n in range(2, 1500)
    ]
    result = cli("enqueue", "--file", "-", input=first + "".join(rest))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["first", *(f"n{n}" for n in range(2, 1500))]
    rest[1000] = '{"command": "true", "priority": "high"}\n'
    result = cli("enqueue", "--file", "-", input=first.replace("first", "again") + "".join(rest))
    assert result.returncode == 2
    assert result.stderr.startswith("error: line 1002: priority")
    assert store.counts() == {"default": {"pending": 1499}}
