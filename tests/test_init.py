"""smithing.init: every rule's variance against its formula, structure, determinism, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from smithing import init
from smithing.nn import MLP
from tensortools import gen

OUT, IN = 400, 600  # large enough for the sample variance to be within ~1.5 % (240k entries)


# (name, params, gain, expected variance of W for a (OUT, IN) weight)
VARIANCES = [
    ("uniform", {"a": 0.1}, None, 0.1**2 / 3),
    ("normal", {"sigma": 0.02}, None, 0.02**2),
    ("glorot_uniform", {}, 1.0, 2 / (IN + OUT)),
    ("glorot_uniform", {}, 5 / 3, (5 / 3) ** 2 * 2 / (IN + OUT)),
    ("glorot_normal", {}, 1.0, 2 / (IN + OUT)),
    ("he_normal", {}, "paper", 2 / IN),
    ("he_uniform", {}, "paper", 2 / IN),
    ("he_normal", {"mode": "fan_out"}, "paper", 2 / OUT),
    ("lecun_normal", {}, "paper", 1 / IN),
    ("lecun_uniform", {}, "paper", 1 / IN),
    ("orthogonal", {}, 1.0, 1 / IN),  # wide: W W^T = I, so sum W^2 = OUT
    ("sparse", {"k": 15, "sigma": 1.0}, None, 15 / IN),
]


@pytest.mark.parametrize(("name", "params", "gain", "var"), VARIANCES)
def test_variance_matches_formula(name, params, gain, var):
    w = torch.empty(OUT, IN)
    init.initialize(w, name, generator=gen(1), gain=gain, **params)
    assert w.mean().abs() < 0.01 * math.sqrt(var)  # standard error is 0.002 sd
    assert w.var().item() == pytest.approx(var, rel=0.03)


def test_uniform_and_normal_are_torch_builtins_bitwise():
    w, ref = torch.empty(30, 40), torch.empty(30, 40)
    init.initialize(w, "glorot_uniform", generator=gen(), gain=1.3)
    nn.init.xavier_uniform_(ref, gain=1.3, generator=gen())
    assert torch.equal(w, ref)
    init.initialize(w, "glorot_normal", generator=gen())
    nn.init.xavier_normal_(ref, generator=gen())
    assert torch.equal(w, ref)
    init.initialize(w, "he_normal", generator=gen(), activation="relu")
    nn.init.kaiming_normal_(ref, nonlinearity="relu", generator=gen())
    assert torch.equal(w, ref)
    init.initialize(w, "he_uniform", generator=gen(), activation="relu")
    nn.init.kaiming_uniform_(ref, nonlinearity="relu", generator=gen())
    assert torch.equal(w, ref)


def test_gain_policies():
    w = torch.empty(200, 300)
    bound = math.sqrt(6 / 500)
    init.initialize(w, "glorot_uniform", generator=gen(), gain=4, activation="sigmoid")
    assert w.abs().max() <= 4 * bound and w.abs().max() > 3.9 * bound  # the Theano tutorial's
    init.initialize(w, "glorot_uniform", generator=gen(), activation="tanh")  # the paper: gain 1
    assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    init.initialize(w, "glorot_uniform", generator=gen(), gain="auto", activation="tanh")
    assert w.abs().max() <= 5 / 3 * bound and w.abs().max() > 1.6 * bound  # torch's 5/3
    init.initialize(w, "he_uniform", generator=gen())  # no activation known: paper sqrt 2
    assert w.abs().max() <= math.sqrt(2) * math.sqrt(3 / 300) + 1e-7
    with pytest.raises(ValueError, match=r"gain=.*does not use a gain"):
        init.initialize(w, "uniform", gain=2.0)
    with pytest.raises(ValueError, match=r"gain=-1\.0 is invalid"):
        init.initialize(w, "glorot_normal", gain=-1.0)
    with pytest.raises(ValueError, match=r"gain='auto' is invalid: expected .*activation="):
        init.initialize(w, "glorot_normal", gain="auto")
    with pytest.raises(ValueError, match=r"gain='theano' is invalid.*gain=4"):
        init.initialize(w, "glorot_uniform", gain="theano", activation="sigmoid")


# every fan-based rule on a network of 1000 x 1000 layers: its paper's variance, whatever the
# activation (the default gain is the paper's: 1 for Glorot, LeCun and orthogonal; He's sqrt 2
# is part of He's rule)
N = 1000
PAPER_VARIANCES = {
    "glorot_uniform": 2 / (N + N),
    "glorot_normal": 2 / (N + N),
    "he_uniform": 2 / N,
    "he_normal": 2 / N,
    "lecun_uniform": 1 / N,
    "lecun_normal": 1 / N,
    "orthogonal": 1 / N,  # W = Q: each row has unit norm
}


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu"])
@pytest.mark.parametrize("name", list(PAPER_VARIANCES))
def test_default_gain_is_the_papers_rule_whatever_the_activation(name, activation):
    torch.manual_seed(0)
    model = MLP(N, (N,), 10, activation)
    init.apply(model, name, generator=gen(1))
    w = model.linears[0].weight  # (1000, 1000): 10^6 entries, Var's relative s.e. 0.14 %
    assert w.var().item() == pytest.approx(PAPER_VARIANCES[name], rel=0.01)
    assert w.mean().abs().item() < 5 * math.sqrt(PAPER_VARIANCES[name] / w.numel())


def test_lecun_normal_on_a_tanh_mlp_is_lecun():
    torch.manual_seed(0)
    model = MLP(N, (N,), 10, "tanh")
    init.apply(model, "lecun_normal", generator=gen(2))
    assert model.linears[0].weight.var().item() == pytest.approx(1 / N, rel=0.01)
    ref = torch.empty(N, N)
    nn.init.normal_(ref, 0.0, 1 / math.sqrt(N), generator=gen(2))  # N(0, 1/fan_in)
    assert torch.equal(model.linears[0].weight, ref)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "linear"])
def test_gain_auto_is_torchs_calculate_gain(activation):
    torch.manual_seed(0)
    model = MLP(50, (40,), 10, activation)
    init.apply(model, "glorot_uniform", generator=gen(), gain="auto")
    slope = 0.01 if activation == "leaky_relu" else None  # our leaky_relu's negative slope
    g = nn.init.calculate_gain(activation, slope)
    ref = gen()
    for lin in model.linears:
        expect = nn.init.xavier_uniform_(torch.empty_like(lin.weight), gain=g, generator=ref)
        torch.testing.assert_close(lin.weight, expect, rtol=1e-6, atol=0)
    he = init.initialize(
        torch.empty(30, 40), "he_normal", generator=gen(), gain="auto", activation=activation
    )
    expect = nn.init.kaiming_normal_(
        torch.empty(30, 40), a=slope or 0.0, nonlinearity=activation, generator=gen()
    )
    torch.testing.assert_close(he, expect, rtol=1e-6, atol=0)


def test_explicit_gain_multiplies_the_std():
    w = init.initialize(torch.empty(N, N), "lecun_normal", generator=gen(3), gain=5 / 3)
    assert w.var().item() == pytest.approx((5 / 3) ** 2 / N, rel=0.01)
    w = init.initialize(torch.empty(N, N), "orthogonal", generator=gen(3), gain=0.5)
    torch.testing.assert_close(w @ w.T, 0.25 * torch.eye(N), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", init.names())
def test_every_rule_documents_its_formula_args_returns_references(name):
    spec = init.INITIALIZERS.get(name)
    doc = spec.fn.__doc__ or ""
    for section in ("Args:", "Returns:", "References:"):
        assert section in doc, f"{name}: no {section} section"
    if spec.uses_gain:
        assert "gain" in doc.split("Args:")[0], f"{name}: the formula does not show its gain"


def test_apply_default_and_auto_gain_on_a_relu_model():
    torch.manual_seed(0)
    relu = MLP(50, (200,), 10, "relu")
    init.apply(relu, "lecun_normal", generator=gen())  # LeCun's rule, gain 1
    ref = gen()
    for lin in relu.linears:
        expect = nn.init.kaiming_normal_(
            torch.empty_like(lin.weight), nonlinearity="linear", generator=ref
        )
        assert torch.equal(lin.weight, expect)
        assert torch.count_nonzero(lin.bias) == 0
    init.apply(relu, "lecun_normal", generator=gen(), gain="auto")  # relu's sqrt 2: He's rule
    ref = gen()
    for lin in relu.linears:
        expect = nn.init.kaiming_normal_(
            torch.empty_like(lin.weight), nonlinearity="relu", generator=ref
        )
        assert torch.equal(lin.weight, expect)


@pytest.mark.parametrize(("shape", "gain"), [((50, 50), 1.0), ((30, 80), 2.0), ((80, 30), 0.5)])
def test_orthogonal_rows_or_columns_orthonormal(shape, gain):
    w = torch.empty(shape, dtype=torch.float64)
    init.initialize(w, "orthogonal", generator=gen(), gain=gain)
    rows, cols = shape
    gram = w @ w.T if rows <= cols else w.T @ w  # (min, min)
    torch.testing.assert_close(gram, gain**2 * torch.eye(min(shape), dtype=torch.float64))
    # and it is the SVD factor of the same Gaussian draw (the paper's construction), up to the
    # signs of its columns (rows >= cols) or rows (rows < cols)
    a = torch.randn(rows, cols, generator=gen(), dtype=torch.float64)
    u, _, vh = torch.linalg.svd(a, full_matrices=False)
    q = u if rows >= cols else vh
    torch.testing.assert_close(w.abs(), gain * q.abs())


DRAWS = 4000  # orthogonal draws per shape for the distribution tests


def _orthogonal_draws(shape, rule):
    g = gen(11)
    ws = torch.empty(DRAWS, *shape, dtype=torch.float64)
    for w in ws:  # w: (rows, cols) view
        if rule == "ours":
            init.initialize(w, "orthogonal", generator=g)
        else:
            nn.init.orthogonal_(w, generator=g)  # QR with Mezzadri's sign correction
    return ws  # (DRAWS, rows, cols)


def _haar_entry_cdf(x, m):
    """CDF of one entry of a Haar-distributed orthogonal matrix (or Stiefel frame) whose
    columns / rows lie in R^m: the first coordinate of a uniform point on the sphere S^(m-1),
    x^2 ~ Beta(1/2, (m-1)/2), symmetric about 0."""
    from scipy.special import betainc

    return 0.5 + 0.5 * np.sign(x) * betainc(0.5, (m - 1) / 2, x**2)


@pytest.mark.parametrize("shape", [(4, 4), (5, 5), (6, 3), (3, 6)])
def test_orthogonal_is_haar_distributed(shape):
    """Mezzadri, "How to generate random matrices from the classical compact groups", Notices
    of the AMS 2007: an orthogonal factor is Haar-uniform only with its sign ambiguity fixed
    by a rule that left (right) rotations of the Gaussian do not change."""
    from scipy import stats

    ws = _orthogonal_draws(shape, "ours")
    rows, cols = shape
    m = max(rows, cols)  # the columns (tall) or the rows (wide) are unit vectors in R^m
    se = 1 / math.sqrt(DRAWS)
    if rows == cols:  # det = +-1 with probability 1/2 each: mean 0, s.e. 1/sqrt(DRAWS)
        assert abs(torch.linalg.det(ws).mean().item()) < 4 * se
    # every entry has mean 0 and variance 1/m
    assert ws.mean(0).abs().max().item() < 4.5 * se / math.sqrt(m)
    torch.testing.assert_close(
        ws.var(0), torch.full(shape, 1 / m, dtype=torch.float64), atol=6 * se / m, rtol=0
    )
    # Q[0, 0] (and Q[-1, -1]) follow the Haar marginal, and torch's orthogonal_'s distribution
    ref = _orthogonal_draws(shape, "torch")
    for i, j in ((0, 0), (-1, -1)):
        x = ws[:, i, j].numpy()
        assert stats.kstest(x, lambda t: _haar_entry_cdf(t, m)).pvalue > 1e-3
        assert stats.ks_2samp(x, ref[:, i, j].numpy()).pvalue > 1e-3


def test_identity_exact_and_rectangular():
    w = torch.empty(4, 4)
    init.initialize(w, "identity", scale=0.5)
    assert torch.equal(w, 0.5 * torch.eye(4))
    w = torch.empty(3, 5)
    init.initialize(w, "identity")
    assert torch.equal(w, torch.eye(3, 5))
    w = torch.empty(300, 300)
    init.initialize(w, "identity", generator=gen(), noise=0.01)
    off = w - torch.eye(300)
    assert off.std().item() == pytest.approx(0.01, rel=0.02)


def test_sparse_exactly_k_per_row():
    w = torch.empty(100, 40)
    init.initialize(w, "sparse", generator=gen(), k=15)
    assert ((w != 0).sum(dim=1) == 15).all()
    w = torch.empty(10, 6)
    init.initialize(w, "sparse", generator=gen(), k=15)  # capped at fan_in
    assert ((w != 0).sum(dim=1) == 6).all()


@pytest.mark.parametrize("name", [n for n in init.names() if n not in ("lsuv", "pretrained")])
def test_same_generator_same_weights(name):
    a, b = torch.empty(20, 30), torch.empty(20, 30)
    init.initialize(a, name, generator=gen(7), **({"noise": 0.1} if name == "identity" else {}))
    init.initialize(b, name, generator=gen(7), **({"noise": 0.1} if name == "identity" else {}))
    assert torch.equal(a, b)
    if name not in ("identity", "zeros", "ones", "constant"):  # no randomness by default
        c = init.initialize(torch.empty(20, 30), name, generator=gen(8))
        assert not torch.equal(a, c)


def test_stacked_members_equal_separate_draws():
    w = torch.empty(3, 20, 30)
    init.initialize(w, "he_normal", generator=gen(), stacked=True)
    g = gen()
    for m in range(3):
        ref = init.initialize(torch.empty(20, 30), "he_normal", generator=g)
        assert torch.equal(w[m], ref)


def test_lsuv_unit_output_variance_per_layer():
    torch.manual_seed(0)
    model = MLP(30, (64, 64, 64), 10, "tanh", dropout=0.5)
    model.train()
    x = torch.randn(256, 30, generator=gen(3)) * 3.0
    init.apply(model, "lsuv", data=x, generator=gen(), tol=1e-3)
    assert model.training  # flags restored
    model.eval()
    h = x
    with torch.no_grad():
        for m in model.net:
            h = m(h)
            if isinstance(m, nn.Linear):
                assert h.var().item() == pytest.approx(1.0, abs=1e-3)
                assert torch.count_nonzero(m.bias) == 0
    v = init.lsuv(model, x, generator=gen(), bias="keep")
    assert list(v) == ["net.1", "net.4", "net.7", "net.10"]
    assert all(abs(val - 1) < 0.1 for val in v.values())


def test_lsuv_needs_data():
    with pytest.raises(ValueError, match="data=None is invalid"):
        init.apply(MLP(4, (3,), 2), "lsuv")


def test_pretrained_pairs_and_callable_and_registry():
    model = MLP(6, (5, 4), 3, "sigmoid")
    pairs = [(torch.ones(5, 6), torch.full((5,), 2.0)), (torch.ones(4, 5) * 3, None)]
    before = model.linears[2].weight.clone()
    init.apply(model, "pretrained", source=pairs)
    assert torch.equal(model.linears[0].weight, torch.ones(5, 6))
    assert torch.equal(model.linears[0].bias, torch.full((5,), 2.0))
    assert torch.equal(model.linears[1].bias, torch.zeros(4))
    assert torch.equal(model.linears[2].weight, before)  # rest=None leaves the new layer
    init.apply(
        model,
        "pretrained",
        source=lambda m, layers, generator=None: pairs[:1],
        rest="glorot_uniform",
        generator=gen(),
    )
    assert not torch.equal(model.linears[2].weight, before)

    def fake_stack(model, layers, *, generator=None, value=0.0):
        return [(torch.full(m.weight.shape, value), None) for _, m in layers]

    from smithing.init.pretrained import PRETRAINED

    if "test_fake_stack" not in PRETRAINED:  # re-runnable in one process (mutmut runs it twice)
        init.register_pretrained("test_fake_stack", fake_stack)
    init.apply(model, "pretrained", source="test_fake_stack", value=0.25)
    assert all((lin.weight == 0.25).all() for lin in model.linears)
    with pytest.raises(ValueError, match="unknown pretrained source 'nope'.*import smithing.exp"):
        init.apply(model, "pretrained", source="nope")


def test_init_source_does_not_import_the_pretraining_code():
    """The core's initializers stay below pretrain/: the "dbn" / "sda" sources are registered
    from above (smithing.experiment.pretrained), so init.py never imports smithing.pretrain,
    not even lazily inside a function."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(init))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(f"{node.module}.{a.name}" for a in node.names)
    assert not [n for n in names if n.startswith(("smithing.pretrain", "smithing.data"))]


def test_pretrained_shape_errors():
    model = MLP(6, (5,), 3)
    with pytest.raises(ValueError, match=r"W 0 has shape \(6, 5\).*'net.1'.*\(5, 6\).*pass W.T"):
        init.apply(model, "pretrained", source=[(torch.ones(6, 5), None)])
    with pytest.raises(ValueError, match=r"b 0 has shape \(4,\)"):
        init.apply(model, "pretrained", source=[(torch.ones(5, 6), torch.ones(4))])
    with pytest.raises(ValueError, match="3 \\(W, b\\) pairs but the model has only 2"):
        init.apply(model, "pretrained", source=[(torch.ones(5, 6), None)] * 3)


def test_errors_name_valid_choices():
    with pytest.raises(ValueError, match=r"unknown initializer 'xavier'; valid: .*glorot_normal"):
        init.initialize(torch.empty(2, 2), "xavier")
    with pytest.raises(ValueError, match=r"sigma=3 is invalid: expected a parameter of 'uniform'"):
        init.initialize(torch.empty(2, 2), "uniform", sigma=3)
    with pytest.raises(ValueError, match="needs a model"):
        init.initialize(torch.empty(2, 2), "lsuv")
    with pytest.raises(ValueError, match="bias='random' is invalid"):
        init.apply(MLP(2, (2,), 2), "normal", bias="random")
    with pytest.raises(ValueError, match="layers=.* matches no module"):
        init.apply(MLP(2, (2,), 2), "normal", layers=(nn.Conv2d,))


def test_bias_policies_and_layer_predicate():
    model = MLP(5, (4,), 3)
    with torch.no_grad():
        for lin in model.linears:
            lin.bias.fill_(7.0)
    init.apply(model, "normal", bias="keep", layers=lambda name, m: name == "net.3")
    assert (model.linears[0].bias == 7).all() and (model.linears[1].bias == 7).all()
    init.apply(model, "normal", bias=0.5)
    assert all((lin.bias == 0.5).all() for lin in model.linears)


# torch.nn.init's and keras.initializers' names for our rules (the rule with our defaults)
ALIASES = {
    "xavier_uniform": "glorot_uniform",
    "xavier_uniform_": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_uniform": "he_uniform",
    "kaiming_normal_": "he_normal",
    "orthogonal_": "orthogonal",
    "eye": "identity",
    "eye_": "identity",
    "uniform_": "uniform",
    "normal_": "normal",
    "random_uniform": "uniform",
    "random_normal": "normal",
    "zeros_": "zeros",
    "ones_": "ones",
    "constant_": "constant",
}


@pytest.mark.parametrize(("alias", "rule"), list(ALIASES.items()))
def test_torch_and_keras_names_are_aliases_of_our_rules(alias, rule):
    assert init.INITIALIZERS.canonical(alias) == rule
    a = init.initialize(torch.empty(20, 30), alias, generator=gen(4))
    b = init.initialize(torch.empty(20, 30), rule, generator=gen(4))
    assert torch.equal(a, b)
    model, ref = MLP(6, (5,), 3, "tanh"), MLP(6, (5,), 3, "tanh")
    init.apply(model, alias, generator=gen(4))
    init.apply(ref, rule, generator=gen(4))
    for x, y in zip(model.linears, ref.linears, strict=True):
        assert torch.equal(x.weight, y.weight)
    assert alias not in init.names()


def test_keras_names_are_ours():
    for name in (
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "lecun_uniform",
        "lecun_normal",
        "orthogonal",
        "identity",
        "zeros",
        "ones",
        "constant",
    ):
        assert name in init.names()


def test_constant_rules():
    w = torch.randn(4, 5)
    assert torch.equal(init.initialize(w, "zeros"), torch.zeros(4, 5))
    assert torch.equal(init.initialize(w, "ones"), torch.ones(4, 5))
    assert torch.equal(init.initialize(w, "constant", value=0.25), torch.full((4, 5), 0.25))
    with pytest.raises(ValueError, match=r"value=nan is invalid"):
        init.initialize(w, "constant", value=float("nan"))


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("xavier_unifrom", r"'xavier_uniform', an alias of 'glorot_uniform'"),
        ("xavier_normall", r"'xavier_normal', an alias of 'glorot_normal'"),
        ("kaiming_normla", r"'kaiming_normal', an alias of 'he_normal'"),
        ("glorot_unifrom", r"'glorot_uniform'"),
        ("GlorotUniform", r"'glorot_uniform'"),
        ("LecunNormal", r"'lecun_normal'"),
    ],
)
def test_did_you_mean_points_at_the_right_rule(typed, hint):
    with pytest.raises(ValueError, match=rf"unknown initializer '{typed}'.*did you mean {hint}\?"):
        init.initialize(torch.empty(2, 2), typed)
