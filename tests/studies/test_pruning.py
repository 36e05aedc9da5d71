"""The pruning study: its Gauss-Newton OBS pieces and a smoke run."""

import copy
import math

import pytest
import torch
from torch.nn import functional as F

from smithing.experiment.store import Store
from smithing.nn import MLP
from smithing.regularize.prune import full_hessian, gauss_newton_matrix, make_objective
from smithing.studies import pruning as P
from studytools import run_study


def _tiny(hidden=(3,), seed=0):
    torch.manual_seed(seed)
    model = MLP(4, list(hidden), 3).double()
    x = torch.randn(11, 4, dtype=torch.float64)
    return model.eval(), x


def test_gauss_newton_matches_a_per_example_transcription():
    model, x = _tiny()
    names = ["net.1.weight", "net.3.weight"]
    g = gauss_newton_matrix(model, names, x)
    params = dict(model.named_parameters())
    flat0 = torch.cat([params[n].detach().reshape(-1) for n in names])
    want = torch.zeros(len(flat0), len(flat0), dtype=torch.float64)
    for i in range(x.shape[0]):

        def logits(flat, xi=x[i]):
            w1 = flat[:12].reshape(3, 4)
            w2 = flat[12:].reshape(3, 3)
            h = torch.relu(xi @ w1.T + params["net.1.bias"].detach())
            return h @ w2.T + params["net.3.bias"].detach()

        j = torch.autograd.functional.jacobian(logits, flat0)  # (C, n)
        q = torch.softmax(logits(flat0), -1)
        want += j.T @ (torch.diag(q) - torch.outer(q, q)) @ j
    torch.testing.assert_close(g, want / x.shape[0])
    assert torch.linalg.eigvalsh(g).min() > -1e-12  # positive semi-definite


def test_gauss_newton_is_the_hessian_of_softmax_regression():
    model, x = _tiny(hidden=())
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    w = {"net.1.weight": model.net[1].weight.detach()}
    with torch.no_grad():
        h = full_hessian(make_objective(model, F.cross_entropy, x, y), w)
    torch.testing.assert_close(gauss_newton_matrix(model, ["net.1.weight"], x), h)


def test_iterative_obs_step_is_the_library_prune_with_gauss_newton():
    """The study's prune-retrain OBS step is smithing.regularize.prune on the Gauss-Newton
    matrix of all the Hessian examples (one chunk), extending the previous mask."""
    from smithing.regularize import prune

    model, x = _tiny()
    y = torch.arange(11) % 3
    opts = {**P.DEFAULTS, "obs_damping": 1e-2}
    names = ["net.1.weight", "net.3.weight"]
    w0 = P._flat_weights(model, names)
    m1 = copy.deepcopy(model)
    mask = P._prune_more(m1, "obs", 0.25, None, x, y, opts, torch.Generator())
    mask = P._prune_more(m1, "obs", 0.5, mask, x, y, opts, torch.Generator())
    assert mask.n_pruned() == round(0.5 * 21)
    w = P._flat_weights(m1, names)
    removed = ~torch.cat([mask.masks[n].reshape(-1) for n in names])
    assert torch.all(w[removed] == 0)
    assert not torch.equal(w[~removed], w0[~removed])  # the compensating update moved them
    m2 = copy.deepcopy(model)
    kw = {"data": (x, y), "hessian": "gauss_newton", "damping": 1e-2, "chunk": None}
    with torch.no_grad():
        ref, _ = prune(m2, "obs", 0.25, **kw)
        ref, _ = prune(m2, "obs", 0.5, mask=ref, **kw)
    for n in names:
        assert torch.equal(mask.masks[n], ref.masks[n])
        assert torch.equal(m1.get_parameter(n), m2.get_parameter(n))


def test_run_validates_its_options():
    with pytest.raises(ValueError, match="fractions"):
        P.run({"hidden": [4], "epochs": 1, "fractions": [0, 1.5]}, 0)
    with pytest.raises(ValueError, match="pruning method"):
        P.run({"hidden": [4], "epochs": 1, "methods": ["obx"]}, 0)


def test_one_shot_curves_leave_the_base_untouched():
    torch.manual_seed(0)
    from smithing.data import load

    data = load("digits")
    model = MLP(64, [4], 10).eval()
    xh, yh = data.train.x[:50], data.train.y[:50]
    before = copy.deepcopy(model.state_dict())
    for method in P.METHODS:
        gen = torch.Generator().manual_seed(0)
        res = P._one_shot(model, method, [0.0, 0.5, 0.9], data, xh, yh, P.DEFAULTS, gen)
        assert len(res["test_error"]) == 3
        assert all(math.isfinite(v) for v in res["train_loss"] + res["test_error"])
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_study_smoke(tmp_path):
    overrides = {
        "epochs": 3,
        "hidden": [4],
        "fractions": [0.0, 0.5, 0.9],
        "retrain_epochs": 1,
        "hessian_examples": 100,
    }
    summary = run_study("pruning", seeds=1, out=str(tmp_path), quiet=True, overrides=overrides)
    assert summary["variants"]["prune"]["done"] == 1
    with Store(tmp_path) as store:
        assert store.counts("pruning") == {"done": 1}
        (r,) = store.results("pruning").runs
    assert r.extra["fractions"] == [0.0, 0.5, 0.9]
    assert r.extra["n_weights"] == 64 * 4 + 4 * 10
    assert set(r.extra["curves"]) == {"magnitude", "obd", "obs"}
    for curve in r.extra["curves"].values():
        for key in ("test_error", "test_error_retrained", "train_loss"):
            assert len(curve[key]) == 3
        # fraction 0 is the base network itself
        assert curve["test_error"][0] == pytest.approx(r.final["test_error"])
        assert curve["test_error_retrained"][0] == pytest.approx(r.final["test_error"])
    assert (tmp_path / "report" / "pruning" / "pruning.png").stat().st_size > 5000
    assert "<table>" in (tmp_path / "report" / "pruning.html").read_text()
