"""smithing.optim schedules: the pure schedule_factor against the torch scheduler, epoch by epoch,
closed forms, and validation."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from smithing import optim

CASES = [
    ("constant", {}),
    ("step", {}),
    ("step", {"step_size": 3, "gamma": 0.5}),
    ("exponential", {"gamma": 0.8}),
    ("inverse-time", {"decay": 0.5}),
    ("cosine", {}),
    ("cosine", {"min_factor": 0.1}),
    ("warmup", {}),
    ("warmup", {"warmup": 4, "start_factor": 0.25}),
    ("warmup-cosine", {}),
    ("warmup-cosine", {"warmup": 3, "start_factor": 0.2, "min_factor": 0.05}),
]


def _torch_lrs(name, epochs, lrs, **options):
    """Each group's lr at epochs 0..epochs, stepping the scheduler once per epoch."""
    params = [torch.zeros(2, requires_grad=True) for _ in lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)])
    sched = optim.make_schedule(name, opt, epochs=epochs, **options)
    out = [[g["lr"] for g in opt.param_groups]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "step order" or deprecation warnings
        for _ in range(epochs):
            opt.step()
            sched.step()
            out.append([g["lr"] for g in opt.param_groups])
    return out  # (epochs + 1, groups)


@pytest.mark.parametrize(("name", "options"), CASES)
@pytest.mark.parametrize("epochs", [7, 20])
def test_factor_equals_torch_scheduler(name, options, epochs):
    lrs = [0.3] if options.get("min_factor", 0) else [0.3, 0.05]
    got = _torch_lrs(name, epochs, lrs, **options)
    for t, row in enumerate(got):
        f = optim.schedule_factor(name, t, epochs=epochs, **options)
        for lr0, lr in zip(lrs, row, strict=True):
            assert lr == pytest.approx(lr0 * f, rel=1e-12, abs=1e-15), (t, lr, lr0 * f)


def test_closed_forms():
    f = optim.schedule_factor
    assert f("constant", 5, epochs=10) == 1.0
    assert f("step", 9, epochs=30, step_size=10, gamma=0.1) == 1.0
    assert f("step", 25, epochs=30, step_size=10, gamma=0.1) == pytest.approx(0.01)
    assert f("exponential", 3, epochs=10, gamma=0.5) == 0.125
    assert f("inverse-time", 4, epochs=10, decay=0.5) == pytest.approx(1 / 3)
    assert f("cosine", 0, epochs=10) == 1.0
    assert f("cosine", 5, epochs=10) == pytest.approx(0.5)
    assert f("cosine", 10, epochs=10, min_factor=0.1) == pytest.approx(0.1)
    assert f("warmup", 0, epochs=10, warmup=4, start_factor=0.2) == pytest.approx(0.2)
    assert f("warmup", 2, epochs=10, warmup=4, start_factor=0.2) == pytest.approx(0.6)
    assert f("warmup", 9, epochs=10, warmup=4, start_factor=0.2) == 1.0
    wc = {"epochs": 10, "warmup": 2, "start_factor": 0.5}
    assert [f("warmup-cosine", t, **wc) for t in (0, 1, 2)] == pytest.approx([0.5, 0.75, 1.0])
    assert f("warmup-cosine", 6, **wc) == pytest.approx((1 + math.cos(math.pi / 2)) / 2)
    assert f("warmup-cosine", 10, **wc) == pytest.approx(0.0, abs=1e-15)


def test_registry_and_descriptions():
    assert optim.schedule_names() == [
        "constant", "step", "exponential", "inverse-time", "cosine", "warmup", "warmup-cosine"
    ]  # fmt: skip
    for name in optim.schedule_names():
        assert optim.describe_schedule(name)
        assert optim.SCHEDULES.entry(name).description == optim.describe_schedule(name)
    assert "1 + decay * t" in optim.describe_schedule("inverse-time")
    assert optim.schedule_defaults("step") == {"step_size": 10, "gamma": 0.1}


def test_unknown_schedule_lists_valid_names():
    match = r"unknown schedule 'cosin'; valid: constant, cosine, .*did you mean 'cosine'"
    with pytest.raises(ValueError, match=match):
        optim.schedule_factor("cosin", 0, epochs=5)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        optim.make_schedule("linear", opt, epochs=5)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("step", {"gama": 0.5}, "schedule 'step' has no option 'gama'.*did you mean 'gamma'"),
        ("constant", {"gamma": 0.5}, "'constant' has no option 'gamma'; valid options: none"),
        ("cosine", {"eta_min": 0.01}, "has no option 'eta_min'; valid options: min_factor"),
        ("step", {"step_size": 0}, "step_size=0 is invalid: expected an integer >= 1"),
        ("step", {"step_size": 2.5}, "step_size=2.5 is invalid"),
        ("exponential", {"gamma": 0.0}, "gamma=0.0 is invalid: expected a finite number > 0"),
        ("inverse-time", {"decay": -1}, "decay=-1 is invalid"),
        ("cosine", {"min_factor": 1.5}, r"min_factor=1.5 is invalid: .* in \[0, 1\]"),
        ("warmup", {"start_factor": 0.0}, r"start_factor=0.0 is invalid: .* in \(0, 1\]"),
        ("warmup-cosine", {"warmup": 10}, "warmup=10 is invalid: expected an integer < epochs=10"),
    ],
)  # fmt: skip
def test_bad_options_raise_naming_them(name, options, match):
    with pytest.raises(ValueError, match=match):
        optim.schedule_factor(name, 0, epochs=10, **options)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match=match):
        optim.make_schedule(name, opt, epochs=10, **options)


def test_bad_epochs_and_epoch():
    with pytest.raises(ValueError, match="epochs=0 is invalid: expected an integer >= 1"):
        optim.schedule_factor("cosine", 0, epochs=0)
    with pytest.raises(ValueError, match="epoch=-1 is invalid: expected an integer >= 0"):
        optim.schedule_factor("cosine", -1, epochs=5)


def test_cosine_floor_needs_one_lr_across_groups():
    p, q = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([{"params": [p], "lr": 0.1}, {"params": [q], "lr": 0.2}])
    with pytest.raises(ValueError, match="min_factor=0.1 is invalid: expected 0 when param groups"):
        optim.make_schedule("cosine", opt, epochs=5, min_factor=0.1)
    optim.make_schedule("cosine", opt, epochs=5)  # min_factor 0 is fine


def test_scheduler_state_dict_round_trips():
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1)
    sched = optim.make_schedule("warmup-cosine", opt, epochs=10, warmup=3)
    for _ in range(4):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched2 = optim.make_schedule("warmup-cosine", opt2, epochs=10, warmup=3)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for _ in range(3):
        opt.step(), sched.step(), opt2.step(), sched2.step()
        assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
