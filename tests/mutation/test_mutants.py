"""The list of planted bugs stays applicable: each names one place in today's code."""

from __future__ import annotations

from tests.mutation.mutants import MUTANTS, SRC, stale


def test_each_mutant_changes_exactly_one_place() -> None:
    assert [(m.name, count) for m, count in stale(MUTANTS)] == []
    for mutant in MUTANTS:
        assert mutant.old != mutant.new, mutant.name
        assert (SRC / mutant.file).is_file(), mutant.name
        assert mutant.tests, mutant.name


def test_mutant_names_are_unique() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
