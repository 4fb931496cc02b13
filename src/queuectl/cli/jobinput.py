"""Jobs read from what a person typed or piped: a JSON object, array or JSON Lines (streamed
from a file in constant memory), and the hint for JSON that a shell's quoting mangled."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import click

from queuectl.errors import InvalidInputError
from queuectl.models import NEW_JOB_FIELDS, parse_json, scan_json


def parse_jobs_text(text: str) -> list[dict[str, Any]]:
    """A JSON object, a JSON array of objects, or JSON Lines (one object a line)."""
    stripped = text.strip()
    if not stripped:
        raise InvalidInputError("no job given (the input is empty)")
    try:
        whole = parse_json(stripped)
    except json.JSONDecodeError as exc:
        # Several lines that fail as one document may be JSON Lines: parsed line by line below.
        if "Extra data" not in exc.msg and "\n" not in stripped:
            raise InvalidInputError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
        whole = None
    else:
        if isinstance(whole, dict):
            return [whole]
        if isinstance(whole, list):
            for n, item in enumerate(whole, 1):
                if not isinstance(item, dict):
                    raise InvalidInputError(f"item {n}: a job must be a JSON object")
            if not whole:
                raise InvalidInputError("no job given (the array is empty)")
            return whole
        raise InvalidInputError("a job must be a JSON object, an array of them, or JSON Lines")
    jobs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        jobs.append(_line_job(n, line, parse_json))
    return jobs


def _line_job(n: int, line: str, parse: Any) -> dict[str, Any]:
    """The job on line `n` of JSON Lines, or one line saying what is wrong with it."""
    try:
        item = parse(line)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"line {n}: invalid JSON: {exc.msg}") from None
    if not isinstance(item, dict):
        raise InvalidInputError(f"line {n}: a job must be a JSON object")
    return item


def stream_job_lines(file: Any) -> tuple[Iterator[tuple[str, dict[str, Any]]] | None, str]:
    """The jobs of --file as they are read, labelled ("line 7", "item 3"; no label for a lone
    job): JSON Lines a line at a time, a JSON array an item at a time. When the file is neither
    (an object over several lines, nothing at all), no iterator but the whole file's text, for
    parse_jobs_text."""
    chunks = _chunks(file)
    blank = 0  # lines before the first value
    start = ""
    for chunk in chunks:
        start = chunk.lstrip(JSON_WHITESPACE)
        blank += chunk.count("\n", 0, len(chunk) - len(start))
        if start:
            break
    if start.startswith("["):
        return _array_items(start, chunks), ""
    lines = enumerate(_lines(start, chunks), blank + 1)
    first, read = next(lines, (blank + 1, ""))
    try:
        item = parse_json(read) if read.strip() else None
    except json.JSONDecodeError:
        item = None
    if not isinstance(item, dict):
        return None, "\n" * blank + read + "".join(line for _, line in lines)

    def items() -> Iterator[tuple[str, dict[str, Any]]]:
        pending: dict[str, Any] | None = item
        for n, line in lines:
            if not line.strip():
                continue
            parsed = _line_job(n, line, _json_value)
            if pending is not None:
                yield f"line {first}", pending
                pending = None
            yield f"line {n}", parsed
        if pending is not None:  # the only job of the file
            yield "", pending

    return items(), read


JSON_WHITESPACE = " \t\n\r"  # all that json.loads skips around a value
_JSON_SPACE = re.compile(r"[ \t\n\r]*")


def _json_value(line: str) -> Any:
    """json.loads(line), the C scanner called directly when the line starts with its value and
    ends with it but for JSON whitespace: json.loads' own handling of that whitespace costs
    three times the parse of a short job. Anything else, and every error, is json.loads'."""
    try:
        value, end = scan_json(line, 0)
    except (StopIteration, json.JSONDecodeError):
        return parse_json(line)
    if line[end:].strip(JSON_WHITESPACE):
        return parse_json(line)
    return value


#: Characters read from --file at a time, split into lines here: a readline per line costs
#: more than parsing the line's job (on stdin, click's wrapper looks up an attribute in Python
#: at every call). The file's own chunk size, so a decoding error names the same byte.
READ_CHARS = 8192


def _chunks(file: Any) -> Iterator[str]:
    """The file's text, READ_CHARS characters at a time."""
    while True:
        try:
            chunk = file.read(READ_CHARS)
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"--file: not UTF-8 text (byte {exc.start})") from None
        if not chunk:
            return
        yield chunk


def _lines(start: str, chunks: Iterator[str]) -> Iterator[str]:
    """The lines of `start` and the chunks after it, each with its newline (the last may have
    none), as readline gives them: the text layer has made every line end "\n" already. A line
    longer than a read is kept in pieces and joined once, when it ends."""
    pieces: list[str] = []
    for chunk in itertools.chain((start,), chunks):
        if "\n" not in chunk:
            pieces.append(chunk)
            continue
        lines = chunk.split("\n")
        if pieces:
            pieces.append(lines[0])
            lines[0] = "".join(pieces)
        pieces = [lines.pop()]
        for line in lines:
            yield line + "\n"
    last = "".join(pieces)
    if last:
        yield last


#: Characters from the end of what is read within which a parse error may only mean the value
#: goes on past it (a literal such as `false` or a \\uXXXX escape cut in two).
_CUT_SLACK = 16


class _JsonText:
    """JSON text read from chunks as far as the value being parsed needs: what was parsed is
    dropped, and a value that goes on past what was read is parsed again after reading as much
    again, so each character is parsed a bounded number of times and memory holds the value
    being parsed and at most as much again, whatever the length of the whole."""

    def __init__(self, text: str, chunks: Iterator[str]) -> None:
        self.text = text
        self.at = 0
        self.chunks = chunks
        self.ended = False

    def _read(self, at_least: int) -> None:
        pieces = [self.text[self.at :]]
        got = 0
        for chunk in self.chunks:
            pieces.append(chunk)
            got += len(chunk)
            if got >= at_least:
                break
        else:
            self.ended = True
        self.text, self.at = "".join(pieces), 0

    def peek(self) -> str:
        """The next character but for JSON whitespace ("" at the end of the text)."""
        while True:
            self.at = _JSON_SPACE.match(self.text, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.text) or self.ended:
                return self.text[self.at : self.at + 1]
            self._read(READ_CHARS)

    def value(self) -> Any:
        """The JSON value that comes next, parsed."""
        self.peek()
        while True:
            error: json.JSONDecodeError | None = None
            try:
                value, end = scan_json(self.text, self.at)
            except StopIteration:
                error = json.JSONDecodeError("Expecting value", self.text, self.at)
            except json.JSONDecodeError as exc:
                error = exc
            else:
                if end < len(self.text) or self.ended:  # a number may go on past the read
                    self.at = end
                    return value
            if error is not None and (self.ended or not self._maybe_cut(error)):
                raise error
            self._read(max(len(self.text) - self.at, READ_CHARS))

    def _maybe_cut(self, error: json.JSONDecodeError) -> bool:
        """Whether the error may only say that the value goes on past what was read."""
        return error.msg.startswith("Unterminated string") or (
            error.pos >= len(self.text) - _CUT_SLACK
        )


def _array_items(text: str, chunks: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The jobs of a JSON array (`text` starts with its "["), labelled "item N"."""
    source = _JsonText(text[1:], chunks)
    n = 0
    where = "item 1"
    try:
        if source.peek() == "]":
            raise InvalidInputError("no job given (the array is empty)")
        while True:
            n += 1
            where = f"item {n}"
            item = source.value()
            if not isinstance(item, dict):
                raise InvalidInputError(f"{where}: a job must be a JSON object")
            yield where, item
            where = f"after item {n}"
            after = source.peek()
            source.at += 1
            if after == "]":
                break
            if after != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", source.text, source.at - 1)
        if source.peek():
            raise json.JSONDecodeError("Extra data", source.text, source.at)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{where}: invalid JSON: {exc.msg}") from None


#: Variables --env-all leaves out unless named with --env: secrets by the look of their name,
#: queuectl's own (its store's URL may carry a password), and the shell's bookkeeping.


def parse_json_words(words: tuple[str, ...]) -> list[dict[str, Any]]:
    """The jobs of enqueue's JSON argument; one that a shell's quoting mangled on its way
    (split into words, its double quotes taken, or its outer quotes kept) is refused with the
    forms that reach queuectl whole, rather than a JSON parser's complaint."""
    text = words[0] if len(words) == 1 else " ".join(words)
    how = _mangled(words)
    if how is not None:
        raise InvalidInputError(
            f"the JSON job was mangled by the shell's quoting: {how} "
            f"(got {text if text.isprintable() else repr(text)})\n" + quoting_hint(words)
        )
    if len(words) != 1:
        raise click.UsageError("give the JSON job as one argument (quote it), or use -- CMD ARGS")
    if not words[0].lstrip().startswith(("{", "[")):
        raise InvalidInputError(
            f"{words[0]!r} is not a JSON job; a plain command goes after --command or --: "
            f"queuectl enqueue -- {words[0]}"
        )
    return parse_jobs_text(words[0])


#: A word that begins as a job's JSON does, or as one of its `key:` pairs does once a shell has
#: taken its quotes and split it at its commas (bash's brace expansion of `{"a":1,"b":2}`).
_FIELD_NAMES = "|".join(sorted(NEW_JOB_FIELDS))
_JSON_START = re.compile(
    r"""^\s*['"]?\s*[{\[]|^\s*[{\[]?\s*"?(?:""" + _FIELD_NAMES + r""")"?\s*:"""
)


def _mangled(words: tuple[str, ...]) -> str | None:
    """How a shell mangled the JSON job given as these words, or None if it did not look
    like JSON or came through whole."""
    first = words[0]
    if not _JSON_START.match(first):
        return None
    text = " ".join(words)
    stripped = text.strip()
    if len(words) > 1:
        lost = "" if '"' in text else " and took its double quotes"
        return f"the shell split it into {len(words)} words{lost}"
    if len(stripped) > 1 and stripped[0] == stripped[-1] and stripped[0] in "'\"":
        return "the quotes around it came through as part of it"
    if stripped[:1] in "{[" and '"' not in stripped and ":" in stripped:
        return "its double quotes were taken"
    if stripped[:1] not in "{[":
        return "its braces and double quotes were taken"
    return None


#: The job the quoting hint shows when the mangled one cannot be read back.
_EXAMPLE_JOB = {"id": "job1", "command": "sleep 2"}
#: What a hint may show unquoted, or within single quotes, alike in bash and PowerShell (`,`
#: and `@` mean something unquoted in PowerShell; `'` would need quoting in each its own way).
_PLAIN = re.compile(r"[\w./:=%+-]+")
_SAFE_IN_QUOTES = re.compile(r"[\w./:=@%+,\- ]+")
#: Options that give a job's field as enqueue's own.
_FIELD_OPTIONS = {
    "id": "--id",
    "queue": "--queue",
    "priority": "--priority",
    "max_retries": "--max-retries",
    "timeout": "--timeout",
    "delay": "--delay",
    "run_at": "--run-at",
    "unique_key": "--unique-key",
    "lock": "--lock",
    "cwd": "--cwd",
    "expires": "--expires",
    "memory": "--memory",
    "cpus": "--cpus",
    "max_procs": "--max-procs",
}


def quoting_hint(words: tuple[str, ...]) -> str:
    """The forms of the job that no shell mangles (the user's own job where it can be read
    back from what came through, else an example): options with --command, the command after
    --, and the JSON piped to --file -. Each works as shown in bash and in PowerShell."""
    job = _read_back(words)
    example = " (with an example job)" if job is None else ""
    job = job or _EXAMPLE_JOB
    command = job["command"]
    options = "".join(
        f" {_FIELD_OPTIONS[key]} {_quoted(str(value))}"
        for key, value in job.items()
        if key != "command"
    )
    dashdash = command if _PLAIN.fullmatch(command.replace(" ", "")) else None
    piped = json.dumps(job, ensure_ascii=False)
    lines = [
        f"hint: these forms reach queuectl whole, in bash and in PowerShell alike{example}:",
        f"  queuectl enqueue{options} --command {_quoted(command)}",
    ]
    if dashdash is not None:
        lines.append(f"  queuectl enqueue{options} -- {dashdash}")
    else:
        lines.append(f"  queuectl enqueue{options} -- CMD ARGS...")
    lines.append(f"  echo '{piped}' | queuectl enqueue --file -")
    return "\n".join(lines)


#: Fields whose JSON is a number: read back as one.
_NUMBERS = frozenset({"priority", "max_retries", "timeout"})


def _quoted(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else f"'{value}'"


def _read_back(words: tuple[str, ...]) -> dict[str, Any] | None:
    """The job a shell mangled, read back from its `key:value` pairs when each is plain
    enough to show again in a hint; None when it is not."""
    text = " ".join(words).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        try:
            whole = parse_json(text[1:-1])
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            pairs = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in whole.items()]
            return _plain_job(pairs)
        text = text[1:-1]
    if text.startswith("{") and text.endswith("}"):
        pieces = text[1:-1].split(",")
    elif "{" in text or "}" in text:
        return None
    else:
        pieces = list(words)
    pairs = []
    for piece in pieces:
        key, colon, value = piece.partition(":")
        if not colon:
            return None
        pairs.append((key.strip().strip('"'), value.strip().strip('"')))
    return _plain_job(pairs)


def _plain_job(pairs: list[tuple[str, str]]) -> dict[str, Any] | None:
    """The job of these pairs, when each is a field with a value a hint can show as it is."""
    job: dict[str, Any] = {}
    for key, value in pairs:
        if key != "command" and key not in _FIELD_OPTIONS:
            return None
        if not value or not _SAFE_IN_QUOTES.fullmatch(value):
            return None
        job[key] = int(value) if key in _NUMBERS and re.fullmatch(r"-?\d+", value) else value
    if "command" not in job:
        return None
    return job
