"""train_rbm's documented details on tiny problems: its table of invalid inputs with the full
messages and the accepted edges, the named-optimizer path against the delta form it equals,
weight decay and the sparsity penalty against a float64 transcription, the history records,
callbacks / progress, divergence and reconstruction_error."""

from __future__ import annotations

import math

import pytest
import torch

from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM, train_rbm
from smithing.pretrain.rbm.sampling import PersistentChains
from smithing.pretrain.rbm.training import _momentum_schedule, reconstruction_error

D = torch.float64


def rbm_and_data(seed=0, members=None, nv=4, nh=3, n=6):
    g = torch.Generator().manual_seed(seed)
    rbm = BernoulliRBM(nv, nh, members=members, init_std=0.5, dtype=D, generator=g)
    data = torch.bernoulli(torch.full((n, nv), 0.5, dtype=D), generator=g)
    return rbm, data


INVALID = [
    ({"method": "sml"}, "method='sml' is invalid: expected 'cd' or 'pcd'"),
    ({"negative_visible": "means"},
     "negative_visible='means' is invalid: expected 'sample' or 'mean'"),
    ({"epochs": -1}, "epochs=-1 is invalid: expected an int >= 0"),
    ({"epochs": 1.0}, "epochs=1.0 is invalid: expected an int >= 0"),
    ({"batch_size": 0}, "batch_size=0 is invalid: expected a positive int"),
    ({"batch_size": 2.0}, "batch_size=2.0 is invalid: expected a positive int"),
    ({"k": 0}, "k=0 is invalid: expected an int >= 1"),
    ({"k": 1.0}, "k=1.0 is invalid: expected an int >= 1"),
    ({"weight_decay": -0.1}, "weight_decay=-0.1 is invalid: expected a non-negative number"),
    ({"sparsity_cost": -0.1}, "sparsity_cost=-0.1 is invalid: expected a non-negative number"),
    ({"sparsity_target": 0.0}, "sparsity_target=0.0 is invalid: expected None or a number in "
     "(0, 1)"),
    ({"sparsity_target": 1.0}, "sparsity_target=1.0 is invalid: expected None or a number in "
     "(0, 1)"),
    ({"sparsity_damping": -0.1}, "sparsity_damping=-0.1 is invalid: expected a number in [0, 1)"),
    ({"sparsity_damping": 1.0}, "sparsity_damping=1.0 is invalid: expected a number in [0, 1)"),
    ({"monitor_size": 0}, "monitor_size=0 is invalid: expected a positive int"),
    ({"momentum": "nesterov"}, "momentum='nesterov' is invalid: expected a number in [0, 1), "
     "'hinton' or a callable epoch -> momentum"),
    ({"momentum": 1.0}, "momentum=1.0 is invalid: expected a number in [0, 1)"),
    ({"momentum": -0.1}, "momentum=-0.1 is invalid: expected a number in [0, 1)"),
    ({"lr": [0.1, 0.2]}, "lr=[0.1, 0.2] is invalid: expected a number$"),
    ({"lr": 0.0}, "lr=0.0 is invalid: expected positive learning rates"),
    ({"lr": -0.1}, "lr=-0.1 is invalid: expected positive learning rates"),
    ({"optimizer_options": {"momentum": 0.5}}, "optimizer_options={'momentum': 0.5} is invalid: "
     "expected None with optimizer='sgd' (Hinton's delta form: use momentum= and weight_decay=)"),
    ({"optimizer": "adam", "momentum": 0.5}, "momentum=0.5 is invalid: expected 0 unless "
     "optimizer='sgd' (give the optimizer's own options in optimizer_options)"),
    ({"optimizer": "adam", "momentum": lambda e: 0.0}, "unless optimizer='sgd'"),
    ({"method": "pcd", "chains": PersistentChains(torch.zeros(3, 5, dtype=D))},
     "chains.v.shape=(3, 5) is invalid: expected (*members, n_chains, n_visible) with (4,)"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs, message", INVALID, ids=[f"case{i}" for i in range(len(INVALID))])
def test_invalid_inputs_and_their_messages(kwargs, message):
    rbm, data = rbm_and_data()
    with pytest.raises(ValueError) as err:
        train_rbm(rbm, data, **kwargs)
    if message.endswith("$"):  # the whole message
        assert str(err.value) == message[:-1]
    assert message.rstrip("$") in str(err.value)


def test_ensemble_learning_rates():
    rbm, data = rbm_and_data(members=2)
    with pytest.raises(ValueError) as err:
        train_rbm(rbm, data, lr=[0.1, 0.2, 0.3])
    assert (
        str(err.value)
        == "lr=[0.1, 0.2, 0.3] is invalid: expected a number or a sequence of 2 numbers"
    )
    with pytest.raises(ValueError, match=r"lr=\[0.1, 0.0\] is invalid: expected positive"):
        train_rbm(rbm, data, lr=[0.1, 0.0])
    with pytest.raises(ValueError, match=r"lr=\[0.1, 0.2\] is invalid: expected one number unless"):
        train_rbm(rbm, data, lr=[0.1, 0.2], optimizer="adam")
    # a rate per member: member m trained with lr[m] is the member trained alone with that rate
    g = torch.Generator().manual_seed(1)
    a = BernoulliRBM(4, 3, members=2, init_std=0.5, dtype=D, generator=g)
    data2 = torch.bernoulli(torch.full((2, 6, 4), 0.5, dtype=D), generator=g)
    b = BernoulliRBM(4, 3, members=2, dtype=D)
    b.load_state_dict(a.state_dict())
    h = train_rbm(
        a, data2, epochs=1, batch_size=3, lr=[0.1, 0.3], generator=torch.Generator().manual_seed(2)
    )
    train_rbm(b, data2, epochs=1, batch_size=3, lr=0.1, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.W[0], b.W[0]) and not torch.equal(a.W[1], b.W[1])
    assert h.config["lr"] == [0.1, 0.3] and h.epochs[0]["lr"] == pytest.approx([0.1, 0.3])


def test_accepted_edges():
    rbm, data = rbm_and_data()
    h = train_rbm(rbm, data, epochs=0)
    assert h.epochs == [] and h.status == "done"
    kw = dict(epochs=1, batch_size=1, monitor_size=1, generator=torch.Generator().manual_seed(0))
    train_rbm(rbm, data, k=1, weight_decay=0, sparsity_cost=0, sparsity_damping=0.0,
              momentum=0.0, **kw)  # fmt: skip
    train_rbm(rbm, data, sparsity_target=0.5, sparsity_cost=0.1, momentum="hinton", **kw)
    train_rbm(rbm, data, momentum=0.99, **kw)


def test_momentum_schedules():
    assert _momentum_schedule(0.3)(7) == 0.3 and isinstance(_momentum_schedule(0)(0), float)
    f = lambda e: 0.1 * e  # noqa: E731
    assert _momentum_schedule(f) is f
    at = _momentum_schedule("hinton")
    assert (at(4), at(5)) == (0.5, 0.9)


def test_reconstruction_error():
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]])
    r = torch.tensor([[[0.5, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
    assert torch.equal(reconstruction_error(v, r), torch.tensor([0.0625, 0.5]))
    assert reconstruction_error(v[0], r[0]).shape == ()


def test_named_optimizer_equals_the_delta_form_it_reduces_to():
    """'momentum' (torch SGD) at a constant rate is the guide's delta form; momentum 0 with a
    schedule too (the rate multiplies the gradient only). A ready optimizer as well."""
    kw = dict(epochs=2, batch_size=3, generator=None)
    runs = {}
    for name, opts in {
        "delta": dict(lr=0.2, momentum=0.5),
        "named": dict(lr=0.2, optimizer="momentum", optimizer_options={"momentum": 0.5}),
        "delta-sched": dict(lr=0.2, schedule=lambda e: [1.0, 0.5][e]),
        "named-sched": dict(lr=0.2, optimizer="momentum", optimizer_options={"momentum": 0.0},
                            schedule=lambda e: [1.0, 0.5][e]),
    }.items():  # fmt: skip
        rbm, data = rbm_and_data(seed=3)
        h = train_rbm(rbm, data, **(kw | {"generator": torch.Generator().manual_seed(4)}), **opts)
        runs[name] = (rbm, h)
    rbm, data = rbm_and_data(seed=3)
    opt = torch.optim.SGD(rbm.parameters(), lr=0.2)
    train_rbm(rbm, data, optimizer=opt, **(kw | {"generator": torch.Generator().manual_seed(4)}))
    runs["ready"] = (rbm, None)
    for a, b in (("delta", "named"), ("delta-sched", "named-sched"), ("delta-sched", "ready")):
        if b == "ready":
            continue
        for p, q in zip(runs[a][0].parameters(), runs[b][0].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13, msg=f"{a} vs {b}")
    assert runs["delta"][1]["momentum"] == [0.5, 0.5]
    assert runs["named"][1]["lr"] == [0.2, 0.2] and "momentum" not in runs["named"][1].epochs[0]
    assert runs["named-sched"][1]["lr"] == pytest.approx([0.2, 0.1])
    assert runs["delta-sched"][1]["lr"] == pytest.approx([0.2, 0.1])
    # a ready plain SGD at 0.2 is the delta form at 0.2 without momentum or schedule
    rbm, data = rbm_and_data(seed=3)
    train_rbm(rbm, data, lr=0.2, **(kw | {"generator": torch.Generator().manual_seed(4)}))
    for p, q in zip(rbm.parameters(), runs["ready"][0].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)


def test_weight_decay_and_sparsity_match_a_transcription():
    """Two CD-1 batches with weight-cost and the sparsity penalty (running mean q, damping),
    written out from the docstring's update."""
    rbm, data = rbm_and_data(seed=5)
    W, b, c = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    lr, wd, target, cost, damp = 0.1, 0.05, 0.2, 0.3, 0.6
    g = torch.Generator().manual_seed(6)
    perm = torch.randperm(6, generator=g)
    q = None
    for start in (0, 3):
        v0 = data[perm[start : start + 3]]
        ph0 = torch.sigmoid(v0 @ W + c)
        h = torch.bernoulli(ph0, generator=g)
        v = torch.bernoulli(torch.sigmoid(h @ W.T + b), generator=g)
        phn = torch.sigmoid(v @ W + c)
        gW = v0.T @ ph0 / 3 - v.T @ phn / 3 - wd * W
        gb = v0.mean(0) - v.mean(0)
        gc = ph0.mean(0) - phn.mean(0)
        q = ph0.mean(0) if q is None else damp * q + (1 - damp) * ph0.mean(0)
        gc = gc - cost * (q - target)
        gW = gW - cost * v0.mean(0)[:, None] * (q - target)[None, :]
        W, b, c = W + lr * gW, b + lr * gb, c + lr * gc
    g = torch.Generator().manual_seed(6)
    train_rbm(rbm, data, epochs=1, batch_size=3, lr=lr, weight_decay=wd, sparsity_target=target,
              sparsity_cost=cost, sparsity_damping=damp, generator=g)  # fmt: skip
    torch.testing.assert_close(rbm.W.detach(), W, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(rbm.b.detach(), b, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(rbm.c.detach(), c, rtol=1e-12, atol=1e-13)
    # a target without a cost is no penalty at all
    r1, _ = rbm_and_data(seed=5)
    r2, _ = rbm_and_data(seed=5)
    train_rbm(r1, data, epochs=1, batch_size=3, generator=torch.Generator().manual_seed(6))
    train_rbm(r2, data, epochs=1, batch_size=3, sparsity_target=0.2,
              generator=torch.Generator().manual_seed(6))  # fmt: skip
    assert torch.equal(r1.W, r2.W)


def test_gaussian_sparsity_uses_the_visible_drive():
    """For Gaussian visibles the penalty's dW term is the drive v / sigma^2, not v."""
    g = torch.Generator().manual_seed(7)
    rbm = GaussianBernoulliRBM(3, 2, log_var_init=math.log(4.0), init_std=0.5, dtype=D, generator=g)
    data = torch.randn(3, 3, generator=g, dtype=D)
    W0, c0 = rbm.W.detach().clone(), rbm.c.detach().clone()
    ref = GaussianBernoulliRBM(3, 2, log_var_init=math.log(4.0), dtype=D)
    ref.load_state_dict(rbm.state_dict())
    kw = dict(epochs=1, batch_size=3, lr=0.1, generator=None)
    train_rbm(rbm, data, sparsity_target=0.1, sparsity_cost=0.5,
              **(kw | {"generator": torch.Generator().manual_seed(8)}))  # fmt: skip
    train_rbm(ref, data, **(kw | {"generator": torch.Generator().manual_seed(8)}))
    q = torch.sigmoid((data / 4.0) @ W0 + c0).mean(0)
    dW = -0.1 * 0.5 * (data / 4.0).mean(0)[:, None] * (q - 0.1)[None, :]
    torch.testing.assert_close(rbm.W.detach() - ref.W.detach(), dW, rtol=1e-10, atol=1e-13)
    torch.testing.assert_close(rbm.c.detach() - ref.c.detach(), -0.1 * 0.5 * (q - 0.1),
                               rtol=1e-10, atol=1e-13)  # fmt: skip


def test_history_records_monitors_and_callbacks():
    rbm, data = rbm_and_data(seed=9)
    valid = data[:2].flip(-1)
    seen = []
    h = train_rbm(rbm, data, epochs=3, batch_size=4, lr=0.1, valid_data=valid, monitor_size=5,
                  progress=lambda e, r: seen.append(("p", e)),
                  callbacks=[lambda e, r, m: seen.append(("c", e)) or e == 2],
                  generator=torch.Generator().manual_seed(10))  # fmt: skip
    assert seen == [("p", 1), ("c", 1), ("p", 2), ("c", 2)]
    assert h.stop_reason == "callback" and len(h.epochs) == 2 and h.epochs_run == 2
    assert h.best_epoch == 2 and h.status == "done"
    assert h.config == {"epochs": 3, "lr": 0.1, "batch_size": 4}
    r = h.epochs[-1]
    assert r["epoch"] == 2 and set(r) == {"epoch", "lr", "momentum", "recon_error",
                                          "free_energy_train", "pseudo_likelihood",
                                          "free_energy_valid", "seconds"}  # fmt: skip
    with torch.no_grad():
        assert r["free_energy_train"] == pytest.approx(float(rbm.free_energy(data[:5]).mean()))
        assert r["free_energy_valid"] == pytest.approx(float(rbm.free_energy(valid).mean()))
    assert 0 < r["recon_error"] < 1 and r["seconds"] >= 0 and h.seconds >= r["seconds"]
    assert r["lr"] == 0.1 and r["momentum"] == 0.0
    g = GaussianBernoulliRBM(4, 3, dtype=D)
    hg = train_rbm(g, data, epochs=1, batch_size=3, generator=torch.Generator().manual_seed(1))
    assert "pseudo_likelihood" not in hg.epochs[0] and "free_energy_valid" not in hg.epochs[0]
    assert hg.stop_reason == "max_epochs" and hg.best_epoch == 1


def test_recon_error_is_the_mean_over_batches():
    rbm, data = rbm_and_data(seed=11, n=5)
    W, b, c = (t.detach().clone() for t in (rbm.W, rbm.b, rbm.c))
    g = torch.Generator().manual_seed(12)
    perm = torch.randperm(5, generator=g)
    errs = []
    for start in (0, 3):  # batches of 3 and 2
        v0 = data[perm[start : start + 3]]
        ph0 = torch.sigmoid(v0 @ W + c)
        h = torch.bernoulli(ph0, generator=g)
        recon = torch.sigmoid(h @ W.T + b)
        errs.append(((v0 - recon) ** 2).mean())
        v = torch.bernoulli(recon, generator=g)
        phn = torch.sigmoid(v @ W + c)
        n0, n1 = len(v0), len(v)
        W = W + 0.1 * (v0.T @ ph0 / n0 - v.T @ phn / n1)
        b = b + 0.1 * (v0.mean(0) - v.mean(0))
        c = c + 0.1 * (ph0.mean(0) - phn.mean(0))
    h = train_rbm(
        rbm, data, epochs=1, batch_size=3, lr=0.1, generator=torch.Generator().manual_seed(12)
    )
    assert h.epochs[0]["recon_error"] == pytest.approx(float(sum(errs) / 2), rel=1e-12)
    torch.testing.assert_close(rbm.W.detach(), W, rtol=1e-12, atol=1e-13)


def test_divergence_stops_a_single_rbm():
    rbm, _ = rbm_and_data(seed=13)
    huge = torch.full((6, 4), 1e300, dtype=D)  # one batch whose update overflows W
    h = train_rbm(rbm, huge, epochs=3, batch_size=6, lr=1e10,
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert not torch.isfinite(rbm.W).all()
    assert h.status == h.stop_reason == "diverged" and len(h.epochs) == 1
    assert h.message == "non-finite RBM parameters in epoch 1" and h.best_epoch is None


def test_pcd_default_chain_count_and_updates():
    rbm, data = rbm_and_data(seed=14)
    chains = PersistentChains.init(rbm, 3, generator=torch.Generator().manual_seed(0))
    train_rbm(rbm, data, epochs=2, batch_size=3, method="pcd", chains=chains, k=2,
              generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert chains.updates == 4 and chains.v.shape == (3, 4)
    # without chains, n_chains defaults to batch_size (the same run as chains of batch_size)
    a, _ = rbm_and_data(seed=15)
    b, _ = rbm_and_data(seed=15)
    train_rbm(
        a, data, epochs=1, batch_size=2, method="pcd", generator=torch.Generator().manual_seed(2)
    )
    g = torch.Generator().manual_seed(2)
    train_rbm(b, data, epochs=1, batch_size=2, method="pcd",
              chains=PersistentChains.init(b, 2, generator=g), generator=g)  # fmt: skip
    assert torch.equal(a.W, b.W)
    c, _ = rbm_and_data(seed=15)
    g = torch.Generator().manual_seed(2)
    train_rbm(c, data, epochs=1, batch_size=2, method="pcd", n_chains=5, generator=g)
    assert not torch.equal(a.W, c.W)
