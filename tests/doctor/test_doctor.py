"""smithing doctor: different, correct advice for a sick and a healthy network; the CLI verb."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from smithing.cli import main
from smithing.doctor import diagnose, doctor, lr_range_test, match_initializer


def sigmoid_net(n_inputs: int = 64, n_classes: int = 10) -> nn.Module:
    """10 sigmoid layers, N(0, 1e-2) weights: the classic vanishing-gradient net."""
    g = torch.Generator().manual_seed(0)
    layers, n = [], n_inputs
    for _ in range(10):
        layers += [nn.Linear(n, 100), nn.Sigmoid()]
        n = 100
    net = nn.Sequential(*layers, nn.Linear(n, n_classes))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1e-2, generator=g)
            nn.init.zeros_(m.bias)
    return net


def relu_net(n_inputs: int = 64, n_classes: int = 10) -> nn.Module:
    """4 ReLU layers, He-normal weights, zero biases: healthy."""
    g = torch.Generator().manual_seed(0)
    layers, n = [], n_inputs
    for _ in range(4):
        layers += [nn.Linear(n, 100), nn.ReLU()]
        n = 100
    net = nn.Sequential(*layers, nn.Linear(n, n_classes))
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, generator=g)
            nn.init.zeros_(m.bias)
    return net


NOT_A_MODULE = 3


def returns_a_list():
    return [1, 2]


@pytest.fixture(scope="module")
def batch():
    import smithing.data

    d = smithing.data.load("digits")
    return d.train.x[:256], d.train.y[:256]


@pytest.fixture(scope="module")
def sick(batch):
    return diagnose(sigmoid_net(), batch, lr_steps=30)


@pytest.fixture(scope="module")
def healthy(batch):
    return diagnose(relu_net(), batch, lr_steps=30)


def test_the_sick_net_has_vanishing_gradients_and_gets_glorot_or_lsuv(sick):
    f = sick.finding("vanishing_gradients")
    assert f is not None and f.severity == "error"
    assert sick.first_last_ratio < 1e-6
    assert sick.activation == "sigmoid" and sick.recommended_init == "glorot_uniform"
    assert "glorot_uniform" in f.advice and "lsuv" in f.advice
    # the advice was tried on copies and it helps: orders of magnitude better gradient flow
    assert sick.what_if["glorot_uniform"] > 1e3 * sick.first_last_ratio
    assert sick.what_if["lsuv"] > 1e3 * sick.first_last_ratio
    # ... but only swapping the sigmoids for ReLU + He brings it into the healthy range
    assert f.data["fixes"] == ["relu+he_normal"] and "ReLU" in f.advice
    assert "init_mismatch" in sick.codes and "healthy_gradients" not in sick.codes
    # N(0, 1e-2) matches no fan-based rule
    assert all(r.init.best is None for r in sick.layers)
    assert sick.finding("lr_range_none") is not None  # nothing learns yet


def test_the_healthy_net_is_told_so(healthy):
    assert "healthy_gradients" in healthy.codes and "init_ok" in healthy.codes
    for bad in ("vanishing_gradients", "exploding_gradients", "non_finite", "init_mismatch"):
        assert bad not in healthy.codes
    assert all(r.init.best == "he_normal" for r in healthy.layers)
    assert 1e-2 < healthy.first_last_ratio < 1e2
    lr = healthy.finding("lr_range")
    assert lr is not None and 1e-4 < lr.data["lower"] <= lr.data["upper"] < 10


def test_exploding_and_non_finite_gradients(batch):
    net = relu_net()
    for m in net:
        if isinstance(m, nn.Linear):
            m.weight.data.mul_(8.0)  # 8x He: activations and gradients blow up
    d = diagnose(net, batch, lr_test=False)
    assert "exploding_gradients" in d.codes
    assert "clip_grad_norm" in d.finding("exploding_gradients").advice
    x, y = batch
    x = x.clone()
    x[0, 0] = float("nan")
    d = diagnose(relu_net(), (x, y), lr_test=False)
    assert "non_finite" in d.codes and d.finding("non_finite").severity == "error"


def test_saturation_and_dead_units(batch):
    net = sigmoid_net()
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 1.0)  # huge weights: sigmoids stuck at 0 or 1
    assert "saturation" in diagnose(net, batch, lr_test=False).codes
    net = relu_net()
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.bias, -10.0)  # every unit off
    d = diagnose(net, batch, lr_test=False)
    assert "dead_units" in d.codes and d.finding("dead_units").data["worst"] == 1.0


def test_diagnosis_leaves_the_model_unchanged(batch):
    net = relu_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()
    diagnose(net, batch, lr_steps=10)
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize(
    "rule, expected",
    [
        (lambda w, g: nn.init.xavier_uniform_(w, generator=g), "glorot_uniform"),
        (lambda w, g: nn.init.xavier_normal_(w, generator=g), "glorot_normal"),
        (lambda w, g: nn.init.kaiming_uniform_(w, generator=g), "he_uniform"),
        (lambda w, g: nn.init.kaiming_normal_(w, generator=g), "he_normal"),
        (lambda w, g: nn.init.normal_(w, 0, 300**-0.5, generator=g), "lecun_normal"),
        (lambda w, g: nn.init.kaiming_uniform_(w, a=5**0.5, generator=g), "torch_default"),
        (lambda w, g: nn.init.orthogonal_(w, generator=g), "orthogonal"),
        (lambda w, g: nn.init.normal_(w, 0, 1e-2, generator=g), None),
    ],
)
def test_match_initializer(rule, expected):
    w = torch.empty(200, 300)
    rule(w, torch.Generator().manual_seed(0))
    assert match_initializer(w).best == expected


def test_lr_range_test_runs_on_a_copy_and_finds_a_range(batch):
    net = relu_net()
    before = [p.clone() for p in net.parameters()]
    x, y = batch
    r = lr_range_test(net, [(x[:64], y[:64]), (x[64:128], y[64:128])], nn.functional.cross_entropy)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert r.found and r.lower <= r.upper
    assert r.lrs == sorted(r.lrs)
    with pytest.raises(ValueError, match="steps"):
        lr_range_test(net, [(x, y)], nn.functional.cross_entropy, steps=2)


def test_doctor_writes_one_self_contained_page(tmp_path, batch):
    d = doctor(sigmoid_net(), batch, out=tmp_path / "doc", lr_steps=10)
    page = (tmp_path / "doc" / "doctor.html").read_text()
    assert d.page == str(tmp_path / "doc" / "doctor.html")
    assert "data-code='vanishing_gradients'" in page and "<title>smithing doctor: " in page
    assert "<img" in page and "src='data:image/png;base64," in page
    assert "src='http" not in page and "<link" not in page  # nothing outside the file
    assert list((tmp_path / "doc").iterdir()) == [tmp_path / "doc" / "doctor.html"]


def test_smithing_doctor_is_callable(tmp_path, batch):
    import smithing

    d = smithing.doctor(relu_net(), batch, out=tmp_path, lr_test=False)
    assert "healthy_gradients" in d.codes and d.page == str(tmp_path / "doctor.html")


def test_cli_doctor_through_main(tmp_path, capsys):
    out = tmp_path / "sick"
    rc = main(
        ["doctor", f"{__name__}:sigmoid_net", "--out", str(out), "--lr-steps", "10", "--json"]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    codes = [f["code"] for f in report["findings"]]
    assert "vanishing_gradients" in codes
    assert report["page"] == str(out / "doctor.html")
    assert f"smithing doctor: {__name__}:sigmoid_net on digits" in (out / "doctor.html").read_text()
    rc = main(["doctor", f"{__name__}:relu_net", "--out", str(tmp_path / "ok"), "--no-lr-test"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "healthy_gradients" in text and "vanishing_gradients" not in text


@pytest.mark.parametrize(
    "factory, message",
    [
        ("no_colon_here", "is invalid: expected PACKAGE.MODULE:FACTORY"),
        ("a.b:c:d", "is invalid: expected PACKAGE.MODULE:FACTORY"),
        (":make", "is invalid: expected PACKAGE.MODULE:FACTORY"),
        ("no_such_pkg_xyz.models:make", "cannot import module 'no_such_pkg_xyz.models'"),
        (f"{__name__}:no_such_factory", "has no attribute 'no_such_factory'"),
        (f"{__name__}:NOT_A_MODULE", "'NOT_A_MODULE' is a int, not callable"),
        (f"{__name__}:returns_a_list", "returned a list, expected a torch.nn.Module"),
    ],
)
def test_bad_factory_is_one_clear_line(factory, message, capsys, tmp_path):
    rc = main(["doctor", factory, "--out", str(tmp_path), "--no-lr-test"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("smithing doctor: error: ")
    assert message in err
