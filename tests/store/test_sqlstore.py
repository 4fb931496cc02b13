"""SQLStore lends every method of the Store protocol, with the protocol's signature, from the
flow that has it; a flow is made at the first use of one of its methods."""

from __future__ import annotations

import inspect

import pytest

from queuectl.models import new_job
from queuectl.store import Store
from queuectl.store.sqlstore import DIALECT_LENDS, FLOWS, LENDER, SQLStore


def protocol_methods() -> dict[str, inspect.Signature]:
    """The Store's methods that a flow or the dialect lends (those SQLStore defines itself
    left out)."""
    found = {}
    for role in Store.__mro__:
        if role.__module__ != "queuectl.store":
            continue
        for name, value in vars(role).items():
            if (
                inspect.isfunction(value)
                and not name.startswith("_")
                and name not in vars(SQLStore)
            ):
                found.setdefault(name, inspect.signature(value))
    return found


def without_self(signature: inspect.Signature) -> list[tuple[str, object, bool]]:
    """Each parameter's name, kind and whether it has a default (the protocol writes `...`)."""
    return [
        (p.name, p.kind, p.default is not p.empty)
        for p in signature.parameters.values()
        if p.name != "self"
    ]


def test_every_protocol_method_is_lent_and_nothing_else() -> None:
    assert sorted(protocol_methods()) == sorted({*LENDER, *DIALECT_LENDS})
    assert set(LENDER.values()) <= set(FLOWS)


@pytest.mark.backends("sqlite")
def test_each_lent_method_has_the_protocol_signature(store: Store) -> None:
    for name, signature in protocol_methods().items():
        lent = without_self(inspect.signature(getattr(store, name)))
        promised = without_self(signature)
        # A flow may take more, with defaults (tuning that tests lower), after what is promised.
        assert lent[: len(promised)] == promised, name
        assert all(has_default for _, _, has_default in lent[len(promised) :]), name


@pytest.mark.backends("sqlite")
def test_an_enqueue_makes_the_enqueue_flow_alone(store: Store) -> None:
    assert isinstance(store, SQLStore)
    assert store._flows == {}  # opened and migrated: no flow yet
    store.enqueue_many([new_job({"command": "true"})])
    assert set(store._flows) == {"enqueue"}
    with pytest.raises(AttributeError):
        store.no_such_method  # noqa: B018 - the attribute access is the test
