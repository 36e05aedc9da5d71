import pytest
import torch
from torch import nn

from smithing.regularize import MaxNorm, max_norm_, unit_norms

D = torch.float64


def test_axis_is_incoming_rows_of_linear_weight():
    # rows (incoming vectors of the 2 output units) have norms 5 and 0.5;
    # columns have norms sqrt(9.0625)=3.01 and sqrt(16.1875)=4.02: a wrong axis shows
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=D)
    max_norm_(w, 1.0)
    assert torch.allclose(w, torch.tensor([[0.6, 0.8], [0.3, 0.4]], dtype=D))
    assert torch.allclose(torch.linalg.vector_norm(w, dim=1), torch.tensor([1.0, 0.5], dtype=D))
    lin = nn.Linear(2, 2).to(D)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 4.0], [0.3, 0.4]], dtype=D))
    x = torch.eye(2, dtype=D)
    MaxNorm(c=1.0).apply_after_step(lin.named_parameters())
    # unit j's incoming weights = how input i affects output j
    assert torch.allclose(lin(x) - lin.bias, torch.tensor([[0.6, 0.3], [0.8, 0.4]], dtype=D))


def test_matches_torch_renorm_with_opposite_dim_name():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, generator=g, dtype=D) * 2
    ours = max_norm_(w.clone(), 2.0, dim=1)
    ref = torch.renorm(w, p=2, dim=0, maxnorm=2.0)  # renorm's dim indexes the sub-tensors
    assert torch.allclose(ours, ref, rtol=1e-6, atol=0)
    assert unit_norms(ours).max() <= 2.0 + 1e-12
    small = w / 100
    assert torch.equal(max_norm_(small.clone(), 2.0), small)  # inside the ball: unchanged


def test_per_member_radius_on_stacked_weights():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(3, 4, 5, generator=g, dtype=D) * 3  # (members, out, in)
    c = torch.tensor([0.5, 1.0, 100.0], dtype=D)
    out = max_norm_(w.clone(), c, members_axis=True)
    for m in range(3):
        assert torch.allclose(out[m], max_norm_(w[m].clone(), float(c[m])))
    assert torch.equal(out[2], w[2])
    assert torch.equal(max_norm_(w.clone(), c, dim=1, members_axis=True), out)  # per member dim


def test_maxnorm_skips_biases_and_exclude_and_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(10.0)
    MaxNorm(c=1.0, exclude=("2",)).apply_after_step(model.named_parameters())
    assert torch.allclose(unit_norms(model[0].weight), torch.ones(4, 1))
    assert torch.all(model[0].bias == 10.0) and torch.all(model[2].weight == 10.0)
    MaxNorm(c=1.0, only=("2.weight",)).apply_after_step(model.named_parameters())
    assert torch.allclose(unit_norms(model[2].weight), torch.ones(2, 1))


def test_zero_rows_stay_zero_and_validation():
    w = torch.zeros(2, 3)
    assert torch.equal(max_norm_(w, 1.0), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"c=0.0 is invalid: expected a positive radius"):
        max_norm_(torch.ones(2, 2), 0.0)
    with pytest.raises(ValueError, match=r"dim=2 is invalid"):
        max_norm_(torch.ones(2, 2), 1.0, dim=2)
    with pytest.raises(ValueError, match=r"weight=\(3,\) is invalid"):
        max_norm_(torch.ones(3), 1.0)
    with pytest.raises(ValueError, match=r"c=-1 is invalid"):
        MaxNorm(c=-1)


def _transcribed_max_norm(w, c):
    """Srivastava et al. 2014, Sec. 5.1, per unit j: w_j <- w_j min(1, c / ||w_j||), where w_j is
    everything unit j receives (a row of a Linear weight, (in, kh, kw) of a Conv2d channel)."""
    out = w.clone()
    for j in range(w.shape[0]):
        norm = torch.sqrt((w[j] ** 2).sum())
        out[j] = w[j] * min(1.0, c / float(norm))
    return out


@pytest.mark.parametrize("layer", ["linear", "conv2d"])
def test_each_units_whole_incoming_vector_is_constrained(layer):
    g = torch.Generator().manual_seed(3)
    shape = (5, 4) if layer == "linear" else (6, 3, 3, 3)  # (out, in) / (out, in, kh, kw)
    w = torch.randn(shape, generator=g, dtype=D)
    w[0] *= 0.01  # one unit inside the ball
    expected = _transcribed_max_norm(w, 1.5)
    assert torch.allclose(max_norm_(w.clone(), 1.5), expected, rtol=0, atol=1e-14)
    assert torch.allclose(unit_norms(expected).flatten(), expected.flatten(1).norm(dim=1))
    assert torch.allclose(expected, torch.renorm(w, 2, 0, 1.5), rtol=1e-6, atol=0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.Flatten(), nn.Linear(6 * 2 * 2, 5)).to(D)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    conv_w, lin_w = model[0].weight.detach().clone(), model[2].weight.detach().clone()
    MaxNorm(c=1.5).apply_after_step(model)
    assert torch.allclose(model[0].weight, _transcribed_max_norm(conv_w, 1.5), rtol=0, atol=1e-14)
    assert torch.allclose(model[2].weight, _transcribed_max_norm(lin_w, 1.5), rtol=0, atol=1e-14)
    # stacked members: each member's channels on their own radius
    stacked = torch.stack([conv_w, 2 * conv_w])  # (members, out, in, kh, kw)
    c = torch.tensor([1.5, 0.5], dtype=D)
    out = max_norm_(stacked.clone(), c, members_axis=True)
    for m in range(2):
        assert torch.allclose(out[m], _transcribed_max_norm(stacked[m], float(c[m])), atol=1e-14)


def test_a_meaningless_axis_is_refused():
    conv = torch.ones(6, 3, 3, 3)
    # the norm must reduce over every axis but the one that indexes the units
    with pytest.raises(ValueError, match=r"dim=-1 is invalid: expected .*every dimension but one"):
        max_norm_(conv.clone(), 1.0, dim=-1)  # kernel rows only
    with pytest.raises(ValueError, match=r"dim=\(1, 2\) is invalid"):
        max_norm_(conv.clone(), 1.0, dim=(1, 2))
    with pytest.raises(ValueError, match=r"dim=\(0, 1\) is invalid"):
        max_norm_(torch.ones(3, 2), 1.0, dim=(0, 1))  # the whole matrix: no unit left
    with pytest.raises(ValueError, match=r"dim=\(1, 1\) is invalid"):
        max_norm_(torch.ones(3, 2), 1.0, dim=(1, 1))
    for bad in (True, 1.0, "in"):
        with pytest.raises(ValueError, match=r"dim=.* is invalid: expected None, an int"):
            MaxNorm(c=1.0, dim=bad)
    # the transposed (Keras) layout (in, out) is one axis, so it is allowed: reduce over dim 0
    w = torch.tensor([[3.0, 0.3], [4.0, 0.4]], dtype=D)
    assert torch.allclose(
        max_norm_(w.clone(), 1.0, dim=0), torch.tensor([[0.6, 0.3], [0.8, 0.4]], dtype=D)
    )


# ---------------------------------------------------------------- invalid inputs, as a table
# (each row: the call, and the exact message it must raise; the checks' messages are the API)
_W = torch.ones(3, 4)
ERROR_INPUTS = [
    (lambda: MaxNorm(c=0.0), "c=0.0 is invalid: expected a positive radius"),
    (lambda: MaxNorm(c=-1.0), "c=-1.0 is invalid: expected a positive radius"),
    (lambda: MaxNorm(c=torch.tensor([1.0, 0.0])), "is invalid: expected a positive radius"),
    (
        lambda: MaxNorm(dim=[]),
        "dim=[] is invalid: expected None, an int or a tuple of ints (the dimensions the norm "
        "reduces over)",
    ),
    (lambda: MaxNorm(dim=(1, "a")), "dim=(1, 'a') is invalid: expected None, an int or a tuple"),
    (lambda: MaxNorm(dim=True), "dim=True is invalid: expected None, an int or a tuple"),
    (lambda: MaxNorm(dim=1.0), "dim=1.0 is invalid"),
    (lambda: max_norm_(_W, 0.0), "c=0.0 is invalid: expected a positive radius"),
    (
        lambda: max_norm_(torch.ones(4), 1.0),
        "weight=(4,) is invalid: expected a weight with >= 2 dims per member",
    ),
    (
        lambda: max_norm_(_W, 1.0, dim=(0, 1)),
        "dim=(0, 1) is invalid: expected the dimensions the norm reduces over, every dimension "
        "but one (the one indexing the units) of the per-member weight of shape (3, 4); None: "
        "all but the first, each unit's whole incoming vector",
    ),
    (lambda: max_norm_(_W, 1.0, dim=[2]), "dim=(2,) is invalid"),
    (lambda: max_norm_(_W, 1.0, dim=-3), "dim=-3 is invalid"),
    (lambda: max_norm_(torch.ones(2, 3, 4), 1.0, dim=(1, 1)), "dim=(1, 1) is invalid"),
    (
        lambda: max_norm_(torch.ones(2, 3, 4), 1.0, dim=(1, 2), members_axis=True),
        "of the per-member weight of shape (3, 4)",
    ),
]


@pytest.mark.parametrize("call,message", ERROR_INPUTS, ids=[m[:40] for _, m in ERROR_INPUTS])
def test_invalid_inputs_raise_their_messages(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)


def test_edge_values_are_accepted():
    MaxNorm(c=0.5)  # radii below 1 are fine
    MaxNorm(c=torch.tensor([0.5, 2.0]))
    w = torch.ones(3, 4)
    max_norm_(w, 1.0, dim=-1)  # -ndim <= dim < ndim: both ends of the range
    max_norm_(torch.ones(3, 4), 1.0, dim=-2)
    torch.testing.assert_close(w, torch.full((3, 4), 0.5))


def test_lists_become_tuples_and_the_dim_is_used():
    m = MaxNorm(c=1.0, dim=[0], only=["a"], exclude=["b"])
    assert (m.dim, m.only, m.exclude) == ((0,), ("a",), ("b",))
    hash(m)  # frozen and hashable, so lists were converted
    # dim=0 (a matrix stored (in, out)): each column is a unit's incoming vector
    w = torch.tensor([[3.0, 0.0], [4.0, 1.0]])
    m.apply_after_step({"a": w, "b": torch.ones(2, 2)})
    torch.testing.assert_close(w, torch.tensor([[0.6, 0.0], [0.8, 1.0]]))


def test_params_choice_biases_exclude_and_only():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    names = lambda m: [n for n, _ in m.params(model)]  # noqa: E731
    assert names(MaxNorm()) == ["0.weight", "1.weight"]
    assert names(MaxNorm(exclude=("1.weight",))) == ["0.weight"]
    assert names(MaxNorm(only=("1.weight",))) == ["1.weight"]
    # biases are 1-D: never a max-norm target even when included
    assert names(MaxNorm(include_biases=True)) == ["0.weight", "1.weight"]


def test_unit_norms_one_dim_returns_int_reduction_keepdim():
    w = torch.arange(12.0).reshape(3, 4)
    torch.testing.assert_close(unit_norms(w), w.norm(dim=1, keepdim=True))
    torch.testing.assert_close(unit_norms(w, dim=0), w.norm(dim=0, keepdim=True))
    conv = torch.randn(5, 2, 3, 3)
    torch.testing.assert_close(unit_norms(conv), conv.flatten(1).norm(dim=1).view(5, 1, 1, 1))


def test_for_members_and_the_protocol_hook():
    m = MaxNorm(c=1.0)
    e = m.for_members(3)
    assert e.members_axis and e.c == 1.0 and e.for_members(3) is e
    radii = MaxNorm(c=torch.tensor([1.0, 2.0, 3.0])).for_members(3)
    w = torch.ones(3, 2, 4)  # 3 members of a (2, 4) weight, row norms 2
    radii.after_step({"w": w}, lr=0.1)
    torch.testing.assert_close(w.norm(dim=-1), torch.tensor([[1.0, 1.0], [2.0, 2.0], [2.0, 2.0]]))
    MaxNorm(c=torch.tensor(2.0)).for_members(3)  # one radius for all
    with pytest.raises(ValueError, match=r"c=\(2,\) is invalid: expected a float or a tensor of "):
        MaxNorm(c=torch.tensor([1.0, 2.0])).for_members(3)
