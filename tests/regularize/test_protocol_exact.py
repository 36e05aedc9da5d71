"""Exact behaviour of the regularizer protocol: composition order, summed penalties, hooks that
are absent or None, ensembles' ``for_members``, and the validation messages in full.

Written for the mutation score of ``smithing.regularize.protocol`` (issue 15).
"""

import pytest
import torch
from torch import nn

from smithing.regularize.protocol import (
    HOOKS,
    Regularizer,
    Regularizers,
    as_regularizer,
    for_members,
    hook,
    hooks,
    named_params,
    parts,
    stateful_objects,
)


class _Log:
    """A regularizer that records its calls in a shared log."""

    def __init__(self, name, log, value=1.0, members=None):
        self.name, self.log, self.value, self.members = name, log, value, members

    def penalty(self, params):
        self.log.append((self.name, "penalty", params))
        return self.value

    def before_step(self, params, lr):
        self.log.append((self.name, "before", params, lr))

    def after_step(self, params, lr):
        self.log.append((self.name, "after", params, lr))

    def for_members(self, n):
        return _Log(self.name, self.log, self.value, members=n)

    def __repr__(self):
        return f"_Log({self.name!r})"


class _AfterOnly:
    penalty = None  # an unset field: counts as absent

    def __init__(self, log):
        self.log = log

    def after_step(self, params, lr):
        self.log.append(("after-only", params, lr))


def test_hooks_and_regularizer_protocol():
    assert HOOKS == ("penalty", "before_step", "after_step")
    log = []
    a, b = _Log("a", log), _AfterOnly(log)
    assert hooks([a, b], "penalty") == [a.penalty]
    assert hooks([a, b], "after_step") == [a.after_step, b.after_step]
    assert hooks([b, object()], "before_step") == []
    assert hook(a, "penalty") == a.penalty and hook(b, "penalty") is None
    assert hook(None, "penalty") is None and hook(b, "missing") is None
    assert isinstance(a, Regularizer) and not isinstance(object(), Regularizer)


def test_composition_order_sum_and_flattening():
    log = []
    a, b, c = _Log("a", log, 1.5), _Log("b", log, torch.tensor(2.0)), _AfterOnly(log)
    inner = Regularizers([a, b])
    reg = Regularizers([inner, c])
    assert reg.parts == [a, b, c]  # nested Regularizers are flattened
    assert repr(reg) == f"Regularizers([_Log('a'), _Log('b'), {c!r}])"
    total = reg.penalty("P")
    assert torch.equal(total, torch.tensor(3.5))
    assert log == [("a", "penalty", "P"), ("b", "penalty", "P")]
    log.clear()
    reg.before_step("P", 0.1)
    reg.after_step("P", 0.2)
    assert log == [("a", "before", "P", 0.1), ("b", "before", "P", 0.1),
                   ("a", "after", "P", 0.2), ("b", "after", "P", 0.2),
                   ("after-only", "P", 0.2)]  # fmt: skip
    assert Regularizers([c]).penalty("P") == 0.0  # no penalty at all
    assert Regularizers([_Log("x", [], 0.25)]).penalty(None) == 0.25
    assert Regularizers([_Log("x", [], 0.0), _Log("y", [], 0.5)]).penalty(None) == 0.5
    m = reg.for_members(3)
    assert isinstance(m, Regularizers) and [p.members for p in m.parts[:2]] == [3, 3]
    assert m.parts[2] is c  # no for_members: itself


def test_as_regularizer():
    log = []
    a = _Log("a", log)
    assert (
        as_regularizer(None) is None and as_regularizer([]) is None and as_regularizer(()) is None
    )
    assert as_regularizer(a) is a
    both = as_regularizer([a, _AfterOnly(log)])
    assert isinstance(both, Regularizers) and len(both.parts) == 2
    assert isinstance(as_regularizer((a,)), Regularizers)
    with pytest.raises(ValueError) as err:
        as_regularizer("l2")
    assert str(err.value) == (
        "regularizer='l2' is invalid: expected an object with penalty(params), "
        "before_step(params, lr) and/or after_step(params, lr) (smithing.regularize: Penalty, "
        "MaxNorm, PruneMask), or a list of them"
    )
    with pytest.raises(ValueError):
        Regularizers([a, object()])  # each part is checked
    with pytest.raises(ValueError):
        as_regularizer(type("P", (), {"penalty": None})())  # None is not a method


def test_for_members_parts_and_stateful():
    log = []
    a, c = _Log("a", log), _AfterOnly(log)
    assert for_members(a, 4).members == 4 and for_members(c, 4) is c
    assert parts(None) == [] and parts(a) == [a]
    reg = Regularizers([a, c])
    got = parts(reg)
    assert got == [a, c] and got is not reg.parts

    class S:
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    s = S()
    assert stateful_objects([a, s, c, None]) == [s]


def test_named_params():
    m = nn.Linear(2, 1)
    assert [n for n, _ in named_params(m)] == ["weight", "bias"]
    t = torch.zeros(2)
    assert named_params({"w": t}) == [("w", t)]
    assert named_params([("w", t)]) == [("w", t)]
    assert named_params(iter([("w", t)])) == [("w", t)]
    for bad, name in ((t, "Tensor"), ("w", "str"), (3, "int")):
        with pytest.raises(ValueError) as err:
            named_params(bad)
        assert str(err.value) == (
            f"params={name!r} is invalid: expected an nn.Module, a dict name -> tensor or "
            "(name, tensor) pairs"
        )


def test_a_non_callable_attribute_is_not_a_hook():
    class Fields:
        penalty = 0.5  # a field, not a method
        after_step = None

    assert hook(Fields(), "penalty") is None and hook(Fields(), "after_step") is None
    assert hooks([Fields()], "penalty") == []
