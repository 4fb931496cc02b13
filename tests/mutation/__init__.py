"""Planted bugs in the store's SQL, the store core and the runner (`make mutate-core`).

mutmut (`make mutate`) mutates the pure modules operator by operator; it cannot reach SQL
text, and its mutants of the runner mostly break nothing that matters. Here each mutant is a
bug chosen by hand, of the kinds that lose or duplicate work (fences, counts, state
conditions, slot and lock release, time comparisons, liveness, kill escalation), run against
the few tests that should catch it. See `mutants.py` for the list and `__main__.py` to run it.
"""
