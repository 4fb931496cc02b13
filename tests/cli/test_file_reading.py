"""`enqueue --file` reads in time linear in the file and in memory of about its largest job:
a long line is not copied again at every read, a value longer than a read is not parsed again
at every read, and a JSON array is enqueued an item at a time, not parsed whole."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from queuectl.cli import jobinput
from queuectl.cli.jobinput import stream_job_lines
from queuectl.errors import InvalidInputError
from tests.support.cli import QUEUECTL

MiB = 1 << 20


class Counted(str):
    """A chunk of text that tallies the characters copied when it is concatenated."""

    copied = 0

    def __add__(self, other: str) -> str:  # type: ignore[override]
        Counted.copied += len(self) + len(other)
        return str.__add__(self, other)

    def __radd__(self, other: str) -> str:
        Counted.copied += len(other) + len(self)
        return str.__add__(other, self)


class CountedFile:
    """A text file whose reads come back as Counted chunks."""

    def __init__(self, text: str) -> None:
        self.file = io.StringIO(text)

    def read(self, size: int = -1) -> str:
        return Counted(self.file.read(size))


def read_all(text: str | CountedFile) -> list[tuple[str, dict[str, Any]]]:
    file = text if isinstance(text, CountedFile) else io.StringIO(text)
    stream, rest = stream_job_lines(file)
    assert stream is not None, rest[:100]
    return list(stream)


def test_a_long_line_is_copied_a_bounded_number_of_times() -> None:
    line = json.dumps({"command": "true", "env": {"A": "x" * (4 * MiB)}}) + "\n"
    Counted.copied = 0
    [(label, job)] = read_all(CountedFile(line + '{"command":"next"}\n'))[:1]
    assert label == "line 1"
    assert len(job["env"]["A"]) == 4 * MiB
    # Joining the pieces of a line once copies it once; adding each read to what was read
    # before copies it as many times as there were reads (a quadratic total).
    assert Counted.copied <= 3 * len(line)


def test_a_long_array_item_is_parsed_a_bounded_number_of_times(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scanned = 0
    scan = jobinput.scan_json

    def counting(text: str, at: int) -> tuple[Any, int]:
        nonlocal scanned
        scanned += len(text) - at
        return scan(text, at)

    monkeypatch.setattr(jobinput, "scan_json", counting)
    item = json.dumps({"command": "true", "env": {"A": "x" * (4 * MiB)}})
    text = f'[{{"command": "first"}},\n {item} ,{{"command":"last"}}]\n'
    got = read_all(text)
    assert [label for label, _ in got] == ["item 1", "item 2", "item 3"]
    assert got[1][1]["env"]["A"] == "x" * (4 * MiB)
    # Parsing again after each read of 8,192 characters would offer the scanner the item
    # about 500 times over.
    assert scanned <= 4 * len(text)


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 8191, 8192, 8193])
def test_array_items_cut_anywhere_by_reads_parse_alike(cut: int) -> None:
    # Values whose text a read may cut: literals, numbers, escapes, strings, nesting.
    items = [
        {"command": 'echo "\\u00e9 \u00e9"', "priority": -12345, "env": {"A": "1"}},
        {"command": "x" * cut, "max_retries": 7, "timeout": 1.5e1, "depends_on": None},
        {"command": "y", "queue": "q", "lock": None, "env": {}},
    ]
    for sep in ("", " ", "\n", " " * cut):
        text = "[" + sep + ("," + sep).join(json.dumps(i, ensure_ascii=True) for i in items)
        got = read_all(" " * cut + text + sep + "]" + sep)
        assert [job for _, job in got] == items


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[]", "no job given (the array is empty)"),
        ("  [ \n ]  ", "no job given (the array is empty)"),
        ('[{"command":"a"},1]', "item 2: a job must be a JSON object"),
        ('[{"command":"a"} {"command":"b"}]', "after item 1: invalid JSON: Expecting ',' "),
        ('[{"command":"a"}] x', "after item 1: invalid JSON: Extra data"),
        ('[{"command":"a"},', "item 2: invalid JSON: Expecting value"),
        ('[{"command":"a"', "item 1: invalid JSON: Expecting ',' delimiter"),
        ('[{"command":"' + "a" * 20_000, "item 1: invalid JSON: Unterminated string"),
        ('[{"command":"a"},' + "[" * 100_000, "item 2: invalid JSON: nested too deeply"),
    ],
)
def test_a_bad_array_is_refused_in_one_line(text: str, error: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        read_all(text)
    assert str(caught.value).startswith(error)


def _peak_rss_kib(argv: list[str]) -> int:
    """The peak resident size of `argv` run alone as a child of a fresh interpreter."""
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
        "assert done.returncode == 0\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_a_one_line_array_is_enqueued_in_the_memory_of_a_few_jobs(tmp_path: Path) -> None:
    count = 140_000
    array = tmp_path / "jobs.json"
    array.write_text("[" + ",".join('{"command":"t"}' for _ in range(count)) + "]")
    one = tmp_path / "one.json"
    one.write_text('[{"command":"t"}]')
    db = str(tmp_path / "queue.db")
    alone = _peak_rss_kib([QUEUECTL, "--db", db, "enqueue", "--file", str(one)])
    many = _peak_rss_kib([QUEUECTL, "--db", db, "enqueue", "--file", str(array)])
    # Parsed whole, the array's 2.2 MB became about 170 MB of objects before any was stored.
    assert many - alone < 24 * 1024, (alone, many)
    listed = subprocess.run(
        [QUEUECTL, "--db", db, "status", "--json"], capture_output=True, text=True, timeout=60
    )
    assert json.loads(listed.stdout)["counts"]["pending"] == count + 1


def test_a_held_unique_key_is_noted_for_arrays_and_lines_alike(cli) -> None:
    first = cli("enqueue", '{"id": "first", "command": "a", "unique_key": "k"}')
    assert first.returncode == 0, first.stderr
    again = '{"id": "again", "command": "b", "unique_key": "k"}'
    note = (
        "note: job first already holds unique key 'k'; "
        "its id is printed and no job again was added\n"
    )
    for text in (f"[{again}]", f"{again}\n", f'{again}\n{{"id": "new", "command": "c"}}\n'):
        result = cli("enqueue", "--file", "-", input=text)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[0] == "first"
        assert result.stderr == note
