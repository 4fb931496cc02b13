"""The compiled spawn (queuectl.runner._spawn) on its own: what the job's shell is given."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl.runner.tree import CgroupTree

spawn_module = pytest.importorskip("queuectl.runner._spawn", reason="the spawn is not built")
pytestmark = pytest.mark.backends("sqlite")  # the store plays no part

SHELL = "/bin/sh"


def run(script: str, env: list[str] | None = None, cgroup: int = -1) -> tuple[int, str]:
    """Spawn `sh -c script` with stdout and stderr on a pipe; its exit code and output."""
    read_end, write_end = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = spawn_module.spawn(
            SHELL,
            [SHELL, "-c", script],
            env if env is not None else ["PATH=/usr/bin:/bin"],
            null,
            write_end,
            write_end,
            cgroup,
            (signal.SIGPIPE, signal.SIGXFSZ),
        )
    finally:
        os.close(write_end)
        os.close(null)
    with os.fdopen(read_end, "rb") as output:
        text = output.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), text


def test_the_shell_gets_its_arguments_environment_and_streams() -> None:
    code, text = run('echo "$A $B"; echo err >&2; read -r x; exit 3', ["A=1", "B=two words"])
    assert code == 3
    assert text == "1 two words\nerr\n"


def test_the_shell_leads_a_session_of_its_own() -> None:
    code, text = run("ps -o sid= -p $$; echo $$")
    session, pid = text.split()
    assert code == 0
    assert session == pid
    assert os.getsid(0) != int(pid)


def test_the_shell_starts_with_default_signals_and_none_blocked() -> None:
    """Python ignores SIGPIPE and SIGXFSZ; a signal the runner blocks is not blocked there."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        # Builtins only: the shell blocks every signal while it waits for a child of its own.
        code, text = run(
            "while read -r k v; do case $k in SigIgn:|SigBlk:) echo $k$v;; esac; "
            "done < /proc/$$/status"
        )
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
    assert code == 0
    masks = dict(line.split(":") for line in text.splitlines())
    ignored, blocked = int(masks["SigIgn"], 16), int(masks["SigBlk"], 16)
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))
    assert blocked == 0


def test_an_exec_that_fails_raises_with_its_reason() -> None:
    with pytest.raises(FileNotFoundError) as caught:
        spawn_module.spawn("/no/such/shell", ["x"], [], 0, 1, 2, -1, ())
    assert caught.value.filename == "/no/such/shell"
    with pytest.raises(OSError, match="Argument list too long"):
        run("#" + "x" * 200_000)


@pytest.fixture
def job_cgroup() -> Iterator[tuple[int, Path]]:
    """A job cgroup of a runner's tree, open as clone3 takes it."""
    tree = CgroupTree.make()
    if tree is None:
        pytest.skip("cgroup v2 is not writable here")
    job = tree.new_job("test", 1)
    try:
        yield tree.birthplace(job), Path(tree.jobs[job] or "")
    finally:
        tree.close()


def test_the_shell_is_born_in_the_cgroup_given(job_cgroup: tuple[int, Path]) -> None:
    fd, path = job_cgroup
    code, text = run("grep '^0::' /proc/$$/cgroup", cgroup=fd)
    assert code == 0
    assert text.strip().endswith(f"/{path.parent.name}/{path.name}")
    code, text = run("grep '^0::' /proc/$$/cgroup")
    assert path.parent.name not in text
