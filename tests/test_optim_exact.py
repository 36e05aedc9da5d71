"""Exact answers for ``smithing.optim``'s edges: every option of every optimizer reaches the
torch optimizer, every invalid option has its full message, and the schedules' boundaries.

Written for the mutation score of ``smithing.optim`` (issue 15), with the registered factories
mutated too (scripts/mutate.py rewrites their decorators).
"""

from __future__ import annotations

import pytest
import torch

from smithing import optim
from smithing.optim import optimizers as O

#: one valid, non-default value for every option of every optimizer
NON_DEFAULT = {
    "sgd": {"weight_decay": 0.3},
    "momentum": {"momentum": 0.5, "dampening": 1.0, "weight_decay": 0.3},
    "nesterov": {"momentum": 0.5, "weight_decay": 0.3},
    "adagrad": {"eps": 1e-3, "initial_accumulator_value": 0.2, "lr_decay": 0.1,
                "weight_decay": 0.3},
    "rmsprop": {"alpha": 0.5, "eps": 1e-3, "momentum": 0.4, "centered": True,
                "weight_decay": 0.3},
    "adam": {"betas": (0.0, 0.5), "eps": 1e-3, "weight_decay": 0.3, "amsgrad": True},
    "adadelta": {"rho": 0.5, "eps": 1e-3, "weight_decay": 0.3},
    "adamw": {"betas": (0.5, 0.0), "eps": 1e-3, "weight_decay": 0.3, "amsgrad": True},
}  # fmt: skip


def _params():
    return [torch.nn.Parameter(torch.ones(2))]


def test_the_table_covers_every_option_of_every_optimizer():
    assert set(NON_DEFAULT) == set(O.names())
    for name, opts in NON_DEFAULT.items():
        assert sorted(opts) == sorted(O._option_names(O.OPTIMIZERS.get(name))), name


@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_every_option_reaches_the_torch_optimizer(name):
    opt = optim.make(name, _params(), 0.25, **NON_DEFAULT[name])
    assert opt.defaults["lr"] == 0.25
    for key, value in NON_DEFAULT[name].items():
        got = opt.defaults[key]
        assert (tuple(got) if key == "betas" else got) == value, (name, key)
    if name == "nesterov":
        assert opt.defaults["nesterov"] is True


NONNEG = "a finite number >= 0"
UNIT = "a number in [0, 1)"
BAD = [
    ("sgd", "weight_decay", -1.0, NONNEG),
    ("momentum", "momentum", 1.0, UNIT),
    ("momentum", "dampening", 1.5, "a number in [0, 1]"),
    ("momentum", "dampening", -0.1, "a number in [0, 1]"),
    ("momentum", "dampening", "0.5", "a number in [0, 1]"),
    ("momentum", "weight_decay", -1.0, NONNEG),
    ("nesterov", "momentum", 1.0, "a number in (0, 1)"),
    ("nesterov", "momentum", 0.0, "a number in (0, 1)"),
    ("nesterov", "weight_decay", -1.0, NONNEG),
    ("adagrad", "eps", -1.0, NONNEG),
    ("adagrad", "initial_accumulator_value", -1.0, NONNEG),
    ("adagrad", "lr_decay", -1.0, NONNEG),
    ("adagrad", "weight_decay", float("inf"), NONNEG),
    ("rmsprop", "alpha", 1.0, UNIT),
    ("rmsprop", "eps", -1.0, NONNEG),
    ("rmsprop", "momentum", 1.0, UNIT),
    ("rmsprop", "centered", 1, "True or False"),
    ("rmsprop", "weight_decay", -1.0, NONNEG),
    ("adam", "betas", (0.9, 1.0), "a pair (beta1, beta2) of numbers in [0, 1)"),
    ("adam", "betas", (0.9,), "a pair (beta1, beta2) of numbers in [0, 1)"),
    ("adam", "eps", -1.0, NONNEG),
    ("adam", "weight_decay", -1.0, NONNEG),
    ("adam", "amsgrad", "yes", "True or False"),
    ("adadelta", "rho", 1.0, UNIT),
    ("adadelta", "eps", 0.0, "a number > 0 (with eps = 0 AdaDelta never moves)"),
    ("adadelta", "weight_decay", -1.0, NONNEG),
    ("adamw", "betas", (-0.1, 0.9), "a pair (beta1, beta2) of numbers in [0, 1)"),
    ("adamw", "eps", -1.0, NONNEG),
    ("adamw", "weight_decay", -1.0, NONNEG),
    ("adamw", "amsgrad", None, "True or False"),
]


@pytest.mark.parametrize(("name", "key", "value", "allowed"), BAD)
def test_invalid_options_have_their_full_message(name, key, value, allowed):
    with pytest.raises(ValueError) as info:
        optim.make(name, _params(), 0.1, **{key: value})
    assert str(info.value) == f"{key}={value!r} is invalid: expected {allowed}"


def test_boundary_values_that_are_valid():
    optim.make("momentum", _params(), 0.1, dampening=1.0)  # [0, 1] is closed
    optim.make("momentum", _params(), 0.1, dampening=0)
    optim.make("nesterov", _params(), 0.1, momentum=0.999)
    opt = optim.make("adam", _params(), 0.1, betas=(0, 0))  # [0, 1) includes 0; ints are
    assert opt.defaults["betas"] == (0.0, 0.0)  # passed as floats (torch refuses (0, 0.9))
    optim.make("adamw", _params(), 0.1, betas=[0, 0.9]).step()
    optim.make("adagrad", _params(), 0.1, eps=0, lr_decay=0, initial_accumulator_value=0)


def test_lr_and_unknown_option_messages():
    with pytest.raises(ValueError) as info:
        optim.make("sgd", _params(), -1)
    assert str(info.value) == "lr=-1 is invalid: expected a finite number > 0"
    with pytest.raises(ValueError) as info:
        optim.make("adagrad", _params(), 0.1, acc_value=1.0)  # close only at cutoff 0.5
    assert str(info.value) == (
        "optimizer 'adagrad' has no option 'acc_value'; valid options: eps, "
        "initial_accumulator_value, lr_decay, weight_decay "
        "(did you mean 'initial_accumulator_value'?)"
    )
    with pytest.raises(ValueError) as info:
        optim.make("sgd", _params(), 0.1, zzz=1)
    assert str(info.value) == "optimizer 'sgd' has no option 'zzz'; valid options: weight_decay"


def test_lr_scales_update_is_false_for_an_optimizer_registered_later(monkeypatch):
    monkeypatch.setitem(O.OPTIMIZERS._entries, "user-opt", O.OPTIMIZERS._entries["sgd"])
    assert O.lr_scales_update("user-opt") is False  # no entry in the table: not assumed
    assert all(O.lr_scales_update(n) is True for n in NON_DEFAULT)
    with pytest.raises(ValueError, match="unknown optimizer 'no-such'"):
        O.lr_scales_update("no-such")


def test_schedule_boundaries_and_messages():
    # epochs below 1 count as one epoch, for the checks and for the factor alike
    f = optim.resolve_schedule("cosine", 0)
    assert f is not None and [f(0), f(1)] == [1.0, 0.0]  # period 1: 0 at the end
    with pytest.raises(ValueError) as info:
        optim.resolve_schedule("warmup-cosine", 1, {"warmup": 1})
    assert str(info.value) == "warmup=1 is invalid: expected an integer < epochs=1"
    opt = torch.optim.SGD(
        [{"params": _params(), "lr": 0.1}, {"params": _params(), "lr": 0.2}], lr=0.1
    )
    with pytest.raises(ValueError) as info:
        optim.make_schedule("cosine", opt, epochs=10, min_factor=0.1)
    assert str(info.value) == (
        "min_factor=0.1 is invalid: expected 0 when param groups have different learning "
        "rates (CosineAnnealingLR's eta_min is one absolute value)"
    )
    with pytest.raises(ValueError) as info:
        optim.make_schedule("cosine", "sgd", epochs=10)
    assert str(info.value) == "optimizer='str' is invalid: expected a torch.optim.Optimizer"


def test_describe_of_an_undocumented_optimizer_is_empty(monkeypatch):
    def bare(params, lr):
        return torch.optim.SGD(params, lr=lr)

    monkeypatch.setitem(O.OPTIMIZERS._entries, "bare", type(O.OPTIMIZERS._entries["sgd"])(
        "bare", bare, ""))  # fmt: skip
    assert O.describe("bare") == ""
    assert O.describe("sgd").startswith("Steepest descent on mini-batches: ``x += -lr * dx``.")
