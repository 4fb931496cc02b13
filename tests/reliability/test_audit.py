"""The run-log audit itself: it must see the violations the other tests claim are absent."""

from __future__ import annotations

from pathlib import Path

from tests.reliability.conftest import audit


def audited(tmp_path: Path, *lines: str) -> list[str]:
    log = tmp_path / "runs.log"
    log.write_text("".join(f"{line}\n" for line in lines))
    return audit(log).problems


def test_runs_one_after_another_pass(tmp_path: Path) -> None:
    assert (
        audited(
            tmp_path,
            "S a 1 10 100 h1 1000",
            "E a 1 10 100 h1 2000",
            "S a 2 20 200 h2 3000",
            "E a 2 20 200 h2 4000",
        )
        == []
    )


def test_a_run_that_ends_after_the_next_one_started_is_an_overlap(tmp_path: Path) -> None:
    problems = audited(
        tmp_path,
        "S a 1 10 100 h1 1000",
        "S a 2 20 200 h2 1500",
        "E a 1 10 100 h1 2000",
        "E a 2 20 200 h2 4000",
    )
    assert problems == ["attempts 1 and 2 of a overlapped (lines 1 to 3 and 2)"]


def test_one_attempt_started_twice_is_an_overlap(tmp_path: Path) -> None:
    problems = audited(tmp_path, "S a 1 10 100 h1 1000", "S a 1 20 200 h2 1500")
    assert problems == ["attempt 1 of a started twice (line 2)"]


def test_a_cut_run_is_closed_by_its_runners_kill_only(tmp_path: Path) -> None:
    killed_first = audited(tmp_path, "S a 1 10 100 h1 1000", "K 100 1200", "S a 2 20 200 h2 3000")
    killed_late = audited(tmp_path, "S a 1 10 100 h1 1000", "S a 2 20 200 h2 3000", "K 100 3500")
    never_killed = audited(tmp_path, "S a 1 10 100 h1 1000", "S a 2 20 200 h2 3000")

    assert killed_first == []
    assert killed_late == ["attempts 1 and 2 of a overlapped (lines 1 to 3 and 2)"]
    assert never_killed == ["attempt 1 of a never ended, and its runner 100 was not killed"]
