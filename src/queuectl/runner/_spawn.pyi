from collections.abc import Sequence

def spawn(
    path: str,
    argv: Sequence[str],
    env: Sequence[str],
    stdin: int,
    stdout: int,
    stderr: int,
    cgroup: int,
    default_signals: Sequence[int],
) -> int: ...
