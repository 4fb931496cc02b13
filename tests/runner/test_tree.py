"""Processes that left the job's process group (setsid, a double fork) die with the job (SPEC 9.7).

Each test runs with each mechanism this machine offers: a cgroup per job that the job's shell
is born in (clone3), the same with the shell moving itself there first (posix_spawn and a
prologue, forced by QUEUECTL_NO_CLONE3=1), and the subreaper that follows a job's descendants
through /proc (forced by QUEUECTL_NO_CGROUP=1).
"""

from __future__ import annotations

import glob
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.runner.executor import NO_CLONE3_ENV
from queuectl.runner.tree import NO_CGROUP_ENV, CgroupTree, own_cgroup, populated
from tests.support.runners import alive, read_pid, tagged, wait_until

pytestmark = pytest.mark.backends("sqlite")  # the store plays no part

# A daemon of each kind, each recording its pid: one made by setsid in a background job of the
# shell, one double-forked (its parent, a subshell, exits at once: it is orphaned).
DAEMONS = (
    "setsid sh -c 'echo $$ > \"$PIDS/setsid\"; exec sleep 600' & "
    "( setsid sh -c 'echo $$ > \"$PIDS/double\"; exec sleep 600' & ); "
)
# The subreaper finds a job's new processes every 0.2 s: a job says it is ready after that.
READY = 'sleep 0.6; echo ok > "$PIDS/ready"; '


def cgroups_writable() -> bool:
    made = CgroupTree.make()
    if made is None:
        return False
    made.close()
    return True


@pytest.fixture(params=["cgroup", "cgroup-prologue", "subreaper"])
def mechanism(request: pytest.FixtureRequest) -> dict[str, str]:
    """The runner's environment that selects the mechanism under test (whatever the suite's)."""
    if request.param == "subreaper":
        return {NO_CGROUP_ENV: "1"}
    if not cgroups_writable():
        pytest.skip("cgroup v2 is not writable here")
    return {NO_CGROUP_ENV: "", NO_CLONE3_ENV: "1" if request.param == "cgroup-prologue" else ""}


def subreaper(mechanism: dict[str, str]) -> bool:
    return mechanism[NO_CGROUP_ENV] == "1"


def daemon_pids(pids: Path) -> list[int]:
    return [read_pid(pids / "setsid"), read_pid(pids / "double")]


def leftover_cgroups(runner_pid: int) -> list[str]:
    own = own_cgroup()
    return glob.glob(f"{own}/queuectl-{runner_pid}-*") if own else []


def check_contained(daemons: list[int], runner_pid: int, mechanism: dict[str, str]) -> None:
    """The daemons really left the job's group, and the mechanism under test holds them."""
    for pid in daemons:
        assert alive(pid)
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        if subreaper(mechanism):
            assert f"queuectl-{runner_pid}-" not in cgroup
        else:
            assert f"queuectl-{runner_pid}-" in cgroup
    if subreaper(mechanism):  # the double-forked one was orphaned to the runner, not to init
        stat = Path(f"/proc/{daemons[1]}/stat").read_text()
        assert int(stat[stat.rindex(")") + 2 :].split()[1]) == runner_pid


def all_dead(pids: list[int]) -> bool:
    return not any(alive(pid) for pid in pids)


def test_a_timeout_kills_the_jobs_daemons(
    queue: Queue, start_runner, mechanism: dict[str, str], tmp_path: Path
) -> None:
    job = queue.enqueue(DAEMONS + "sleep 600", env={"PIDS": str(tmp_path)}, timeout=1)
    runner = start_runner(env=mechanism)
    daemons = daemon_pids(tmp_path)
    check_contained(daemons, runner.pid, mechanism)

    wait_until(lambda: queue.get(job.id).state != "processing", 10, "the timeout")
    wait_until(lambda: all_dead(daemons), 3, "the daemons to die with the job")
    assert "timed out" in (queue.get(job.id).last_error or "")


def test_cancel_kills_the_jobs_daemons(
    queue: Queue, start_runner, mechanism: dict[str, str], tmp_path: Path
) -> None:
    job = queue.enqueue(DAEMONS + "sleep 600", env={"PIDS": str(tmp_path)})
    runner = start_runner(env=mechanism)
    daemons = daemon_pids(tmp_path)
    check_contained(daemons, runner.pid, mechanism)
    runner.logged(f"started {job.id}")

    queue.cancel(job.id)
    wait_until(lambda: all_dead(daemons), 5, "the daemons to die with the cancelled job")
    assert queue.get(job.id).state == "cancelled"


def test_a_graceful_stop_past_its_grace_kills_the_jobs_daemons(
    queue: Queue, start_runner, mechanism: dict[str, str], tmp_path: Path
) -> None:
    job = queue.enqueue(DAEMONS + "sleep 600", env={"PIDS": str(tmp_path)})
    runner = start_runner("--grace", "1", env=mechanism)
    daemons = daemon_pids(tmp_path)
    check_contained(daemons, runner.pid, mechanism)

    runner.send(signal.SIGTERM)
    assert runner.wait(10) == 0
    wait_until(lambda: all_dead(daemons), 3, "the daemons to die with the released job")
    assert queue.get(job.id).state == "pending"
    assert leftover_cgroups(runner.pid) == []


def test_a_sigkilled_runner_takes_the_jobs_daemons(
    queue: Queue, start_runner, mechanism: dict[str, str], tmp_path: Path
) -> None:
    queue.enqueue(DAEMONS + READY + "sleep 600", env={"PIDS": str(tmp_path)})
    runner = start_runner(env=mechanism)
    daemons = daemon_pids(tmp_path)
    check_contained(daemons, runner.pid, mechanism)
    wait_until((tmp_path / "ready").exists, 10, "the job to be ready")

    runner.send(signal.SIGKILL)
    wait_until(lambda: all_dead(daemons), 2, "the daemons to die with the runner")
    wait_until(lambda: not leftover_cgroups(runner.pid), 5, "the runner's cgroups to go")


def test_a_jobs_daemons_die_when_its_shell_exits(
    queue: Queue, start_runner, mechanism: dict[str, str], tmp_path: Path
) -> None:
    # Also a background child left in the job's own group, and a job too short to be walked.
    command = DAEMONS + "sh -c 'echo $$ > \"$PIDS/child\"; exec sleep 600' & "
    files = ("setsid", "double", "child")
    wait_for = (
        f"while {' || '.join(f'[ ! -s $PIDS/{name} ]' for name in files)}; do sleep 0.01; done"
    )
    job = queue.enqueue(command + wait_for, env={"PIDS": str(tmp_path)})
    runner = start_runner(env=mechanism)

    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the job to complete")
    daemons = [*daemon_pids(tmp_path), read_pid(tmp_path / "child")]
    wait_until(lambda: all_dead(daemons), 3, "the daemons to die with the ended job")
    assert runner.process.poll() is None


def test_the_command_runs_as_if_given_to_sh_alone(
    queue: Queue, start_runner, mechanism: dict[str, str]
) -> None:
    # The cgroup's prologue shares the script's first line: line numbers, syntax errors and
    # exit codes are the shell's own, and nothing the prologue does reaches the output.
    commands = [
        'echo "line $LINENO"\necho "line $LINENO"; exit 3',
        "echo before\nif then",
        "echo (",
        "# only a comment",
    ]
    jobs = [queue.enqueue(command, max_retries=0) for command in commands]
    start_runner(env=mechanism)
    for job, command in zip(jobs, commands, strict=True):
        wait_until(lambda job=job: queue.get(job.id).state in ("completed", "dead"), 10, "a job")
        alone = subprocess.run(["/bin/sh", "-c", command], capture_output=True, check=False)
        assert queue.get(job.id).exit_code == alone.returncode
        assert queue.output(job.id) == alone.stdout + alone.stderr


def test_jobs_after_the_first_are_contained_too(
    queue: Queue, start_runner, mechanism: dict[str, str], tmp_path: Path
) -> None:
    # One slot, jobs one after another, each leaving daemons: a cgroup that was killed is not
    # used again (a kernel may kill whatever is born into it), and is removed once empty.
    dirs = [tmp_path / str(n) for n in range(4)]
    for folder in dirs:
        folder.mkdir()
    jobs = [queue.enqueue(DAEMONS + "sleep 0.3", env={"PIDS": str(d)}) for d in dirs]
    runner = start_runner("--count", "1", env=mechanism)
    for job, folder in zip(jobs, dirs, strict=True):
        daemons = daemon_pids(folder)
        check_contained(daemons, runner.pid, mechanism)
        wait_until(lambda job=job: queue.get(job.id).state == "completed", 10, "the job to end")
        wait_until(lambda daemons=daemons: all_dead(daemons), 3, "its daemons to die with it")
    if not subreaper(mechanism):
        killed = lambda: glob.glob(f"{own_cgroup()}/queuectl-{runner.pid}-*/job-*")  # noqa: E731
        wait_until(lambda: killed() == [], 5, "the killed cgroups to be removed")


def test_a_daemon_that_cleared_its_environment_dies_with_its_job_without_cgroups(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    # No QUEUECTL_JOB_ID in its environment: only the walk from the job's shell, while the job
    # ran, tells whose it is; after the job's end, only the record of its dying processes.
    pid_file = tmp_path / "daemon"
    daemon = f"setsid env -i sh -c 'sleep 600 & echo $! > {pid_file}; wait' & "
    ready = f"while [ ! -s {pid_file} ]; do sleep 0.01; done; " + READY
    job = queue.enqueue(daemon + ready, env={"PIDS": str(tmp_path)})
    runner = start_runner(env={NO_CGROUP_ENV: "1"})

    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the job to complete")
    sleeper = read_pid(pid_file)
    environ = Path(f"/proc/{sleeper}/environ").read_bytes() if alive(sleeper) else b""
    assert b"QUEUECTL_JOB_ID" not in environ
    wait_until(lambda: not alive(sleeper), 3, "the daemon to die with the ended job")
    assert runner.process.poll() is None


# Builtins only up to the cgroup line: the shell reads its own cgroup before it forks anything.
OWN_CGROUP = (
    'while read -r line; do case $line in 0::*) echo "$line";; esac; done < /proc/$$/cgroup; '
    "tr '\\0' '\\n' < /proc/$$/cmdline"
)


@pytest.mark.parametrize("clone3", [True, False])
def test_a_jobs_shell_is_born_in_its_cgroup(queue: Queue, start_runner, clone3: bool) -> None:
    """With the compiled spawn, the job's shell is in the job's cgroup from its first
    instruction and runs the command alone; without it, a prologue moves it there first."""
    if not cgroups_writable():
        pytest.skip("cgroup v2 is not writable here")
    if clone3:
        pytest.importorskip("queuectl.runner._spawn", reason="the spawn extension is not built")
    job = queue.enqueue(OWN_CGROUP)
    runner = start_runner(env={NO_CGROUP_ENV: "", NO_CLONE3_ENV: "" if clone3 else "1"})

    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the job to complete")
    cgroup, *argv = queue.output(job.id).decode().splitlines()
    assert re.fullmatch(rf"0::/(.+/)?queuectl-{runner.pid}-[0-9a-f]+/job-\d+", cgroup)
    assert argv[:2] == ["/bin/sh", "-c"]
    assert (argv[2] == OWN_CGROUP) == clone3  # else the prologue comes first
    assert argv[2].endswith(OWN_CGROUP)


@pytest.fixture
def killed_home() -> Iterator[str]:
    """This test's process (and so the runners it starts) in a cgroup that once had a
    cgroup.kill; the cgroup's path."""
    if not cgroups_writable():
        pytest.skip("cgroup v2 is not writable here")
    own = own_cgroup()
    home = f"{own}/killed-home-{os.getpid()}-{os.urandom(3).hex()}"
    os.mkdir(home)
    Path(f"{home}/cgroup.kill").write_text("1")
    Path(f"{home}/cgroup.procs").write_text(str(os.getpid()))
    try:
        yield home
    finally:
        Path(f"{own}/cgroup.procs").write_text(str(os.getpid()))
        # The runner's watchdog, there too, removes its cgroups once the runner was killed.
        wait_until(lambda: not populated(home), 10, "the runner and its watchdog to go")
        wait_until(lambda: not glob.glob(f"{home}/*/"), 10, "the runner's cgroups to go")
        os.rmdir(home)


def test_jobs_run_in_their_cgroups_where_one_born_there_would_be_killed(
    queue: Queue, killed_home: str, start_runner
) -> None:
    """Some kernels (6.18) kill a process born by clone3 into a cgroup whose kill count differs
    from its parent's: the runner sees it at start and has its jobs' shells move instead."""
    job = queue.enqueue(OWN_CGROUP)
    runner = start_runner(env={NO_CGROUP_ENV: "", NO_CLONE3_ENV: ""})

    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the job to complete")
    cgroup = queue.output(job.id).decode().splitlines()[0]
    assert f"/{os.path.basename(killed_home)}/queuectl-{runner.pid}-" in cgroup


def test_a_runner_killed_as_its_job_makes_a_daemon_takes_the_daemon(
    queue: Queue,
    start_runner,
    mechanism: dict[str, str],
    tmp_path: Path,
    tag: str,
    request: pytest.FixtureRequest,
) -> None:
    """The runner SIGKILLed (here by its own job) a moment after the job made a daemon, before
    any scan of the job's processes: the daemon dies with the runner too."""
    runner = start_runner(env=mechanism)
    queue.enqueue(
        "setsid sh -c 'echo $$ > \"$PIDS/setsid\"; exec sleep 600' & "
        'until [ -s "$PIDS/setsid" ]; do :; done; kill -9 $PPID; sleep 600',
        env={"PIDS": str(tmp_path)},
    )
    daemon = read_pid(tmp_path / "setsid")
    assert runner.wait() == -signal.SIGKILL
    wait_until(lambda: not tagged(tag), 2, "every process of the job to die with the runner")
    assert not alive(daemon)
