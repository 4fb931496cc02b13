"""What a failed attempt's exit says to a person: the code, its common meaning, and the last
line the command printed (where the reason usually is)."""

from __future__ import annotations

import re
import signal

#: Exit codes that retrying the same command will not change (the shell could not run it).
NOT_RUNNABLE = (126, 127)

_MEANINGS = {126: "not executable", 127: "command not found"}
#: The longest last line kept in an error: enough for a message, not a dump.
LINE_LIMIT = 200


#: Terminal styles (colours) a command may print, and the other control characters.
_STYLES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def meaning(code: int) -> str | None:
    """`command not found`, `killed by signal 9 (KILL)`, or None for an ordinary code."""
    if code in _MEANINGS:
        return _MEANINGS[code]
    if 128 < code < 128 + signal.NSIG:
        try:
            name = signal.Signals(code - 128).name.removeprefix("SIG")
        except ValueError:
            return f"killed by signal {code - 128}"
        return f"killed by signal {code - 128} ({name})"
    return None


def printable(text: str) -> str:
    """`text` without terminal styles and control characters (NUL included, which no
    PostgreSQL text holds), each run of whitespace one space."""
    return " ".join(_CONTROLS.sub("", _STYLES.sub("", text)).split())


def last_line(output: bytes | None) -> str | None:
    """The last non-empty line of an attempt's output, stripped and bounded."""
    if not output:
        return None
    for raw in reversed(output[-64 * 1024 :].splitlines()):
        line = printable(raw.decode("utf-8", "replace"))
        if line.replace("\ufffd", ""):  # bytes that are no text say nothing
            if len(line) > LINE_LIMIT:
                line = line[: LINE_LIMIT - 1] + "…"
            return line
    return None


def exit_error(code: int | None, output: bytes | None) -> str:
    """`exit code 2: psql: error: connection refused`, `exit code 137 (killed by signal 9
    (KILL))`: the code, what it commonly means, and the last thing the command said."""
    text = f"exit code {code}"
    if code is not None and (named := meaning(code)) is not None:
        text += f" ({named})"
    line = last_line(output)
    return text if line is None else f"{text}: {line}"
