"""One training vocabulary, checked as a table (PyTorch's ``OptimizerInfo`` idea): every trainer
takes the same names for the same things and returns the same :class:`~smithing.history.History`.

Each row of :data:`TRAINERS` says how to call one trainer on a tiny problem and what it takes;
the shared tests loop over the table, so a new trainer gets them by adding a row.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch

from smithing.callbacks import EarlyStopping
from smithing.data.base import Dataset, Split
from smithing.history import History
from smithing.nn import MLP
from smithing.pretrain.autoencoder import (
    DenoisingAutoencoder,
    StackedDAE,
    train_autoencoder,
    train_sda,
)
from smithing.pretrain.dbn import DBN, train_dbn
from smithing.pretrain.hybrid import ClassRBM, DeepHybridRBM, train_class_rbm, train_deep_hybrid
from smithing.pretrain.rbm import BernoulliRBM, train_rbm
from smithing.train import fit, fit_sequence, seed_everything
from smithing.train.ensemble import fit_ensemble

LR = 0.01


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _binary(n: int = 40, d: int = 6, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, d, generator=_gen(seed)) < 0.5).double()


def _labels(n: int = 40, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, (n,), generator=_gen(seed))


def _dataset() -> Dataset:
    def split(n, seed):
        return Split(_binary(n, 6, seed).float(), _labels(n, seed + 1))

    return Dataset(
        "toy", split(40, 0), split(16, 3), split(16, 5), task="classification", n_classes=3,
        input_shape=(6,),
    )  # fmt: skip


def _mlp(seed: int = 0) -> MLP:
    seed_everything(seed)
    return MLP(6, [5], 3, "tanh")


# ------------------------------------------------------------------ how to call each trainer
# Each runner builds a fresh model (same seeds every call) and returns (result, model).
# ``ready=True`` replaces ``optimizer`` by a ready torch.optim.Adam over the model's parameters.


def _adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=LR)


def _run_fit(ready=False, **kw):
    m = _mlp()
    if ready:
        kw["optimizer"] = _adam(m.parameters())
    return fit(m, _dataset(), final_eval=False, **kw), m


def _run_fit_ensemble(ready=False, **kw):
    ms = [_mlp(0), _mlp(1)]
    return fit_ensemble(ms, _dataset(), seeds=[0, 1], lrs=[kw.pop("lr"), LR], final_eval=False,
                        **kw), ms[0]  # fmt: skip


def _run_fit_sequence(ready=False, **kw):
    m = _mlp()
    if ready:
        kw["optimizer"] = _adam(m.parameters())
    kw["steps"] = 2 * kw.pop("epochs")
    return fit_sequence(m, _dataset(), eval_every=2, **kw), m


def _run_rbm(ready=False, **kw):
    g = _gen(2)
    rbm = BernoulliRBM(6, 4, generator=g, dtype=torch.float64)
    if ready:
        kw["optimizer"] = _adam(rbm.parameters())
    return train_rbm(rbm, _binary(), generator=g, **kw), rbm


def _run_autoencoder(ready=False, **kw):
    g = _gen(3)
    dae = DenoisingAutoencoder(6, 4, generator=g, dtype=torch.float64)
    if ready:
        kw["optimizer"] = _adam(dae.parameters())
    kw.setdefault("rate", 0.25)
    return train_autoencoder(dae, _binary(), valid_data=_binary(16, seed=4), generator=g,
                             **kw), dae  # fmt: skip


def _run_class_rbm(ready=False, **kw):
    g = _gen(4)
    m = ClassRBM(6, 4, 3, generator=g, dtype=torch.float64)
    if ready:
        kw["optimizer"] = _adam(m.parameters())
    valid = (_binary(16, seed=5), _labels(16, seed=6))
    return train_class_rbm(m, _binary(), _labels(), valid=valid, generator=g, **kw), m


def _run_deep_hybrid(ready=False, **kw):
    g = _gen(5)
    m = DeepHybridRBM([6, 5, 4], 3, generator=g, dtype=torch.float64)
    if ready:
        kw["optimizer"] = _adam(m.parameters())
    valid = (_binary(16, seed=5), _labels(16, seed=6))
    return train_deep_hybrid(m, _binary(), _labels(), valid=valid, generator=g, **kw), m


def _run_dbn(ready=False, **kw):
    g = _gen(6)
    dbn = DBN([6, 5, 4], generator=g, dtype=torch.float64)
    if ready:  # a ready optimizer belongs to one layer's parameters
        kw.pop("optimizer")
        kw["layers"] = [{"optimizer": _adam(r.parameters())} for r in dbn.rbms]
    return train_dbn(dbn, _binary(), generator=g, **kw), dbn


def _run_sda(ready=False, **kw):
    g = _gen(7)
    sda = StackedDAE([6, 5, 4], generator=g, dtype=torch.float64)
    if ready:
        kw.pop("optimizer")
        kw["layers"] = [{"optimizer": _adam(d.parameters())} for d in sda.daes]
    return train_sda(sda, _binary(), generator=g, **kw), sda


SHARED = {
    "lr",
    "batch_size",
    "optimizer",
    "optimizer_options",
    "callbacks",
    "progress",
    "device",
    "checkpoint",
}


@dataclass
class TrainerInfo:
    """One trainer: how to run it, which shared names it takes, its deprecated aliases."""

    name: str
    trainer: Callable
    run: Callable
    names: set[str]
    randomness: str = "generator"  # or "seed"
    epoch_key: str = "epoch"  # fit_sequence's records are evaluations, by "step"
    ready_optimizer: bool = True  # fit_ensemble stacks the members: a name only
    #: how it takes early stopping, given a factory of fresh EarlyStopping objects (None: it
    #: has no validation signal and no such argument)
    early_stopping: Callable[[Callable[[], EarlyStopping]], object] | None = None
    monitor: str = "valid_loss"
    #: deprecated name -> (its value, the new name, the new name's equivalent value)
    aliases: dict[str, tuple] = field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name


def _schedule(epoch: int) -> float:
    return 1.0 / (1 + epoch)


_CALLBACK_ALIAS = ("callback", lambda e, rec: True, "callbacks", [lambda e, rec, m: True])
_LAYER_CALLBACK_ALIAS = ("callback", lambda i, layer, h: None, "layer_callback", None)

TRAINERS = [
    TrainerInfo("fit", fit, _run_fit, SHARED | {"epochs", "schedule", "early_stopping"},
                randomness="seed", early_stopping=lambda make: make()),
    TrainerInfo("fit_ensemble", fit_ensemble, _run_fit_ensemble,
                (SHARED - {"lr"}) | {"lrs", "epochs", "schedule", "early_stopping"},
                randomness="seeds", ready_optimizer=False, early_stopping=lambda make: make),
    TrainerInfo("fit_sequence", fit_sequence, _run_fit_sequence, SHARED | {"steps"},
                randomness="seed", epoch_key="step"),
    TrainerInfo("train_rbm", train_rbm, _run_rbm, SHARED | {"epochs", "schedule"},
                aliases={"lr_schedule": ("lr_schedule", _schedule, "schedule", _schedule),
                         "callback": _CALLBACK_ALIAS}),
    TrainerInfo("train_autoencoder", train_autoencoder, _run_autoencoder,
                SHARED | {"epochs", "schedule", "early_stopping"},
                early_stopping=lambda make: make(), monitor="recon_loss_valid",
                aliases={"callback": _CALLBACK_ALIAS}),
    TrainerInfo("train_class_rbm", train_class_rbm, _run_class_rbm,
                SHARED | {"schedule", "early_stopping"}, early_stopping=lambda make: make(),
                aliases={"lr_schedule": ("lr_schedule", _schedule, "schedule", _schedule),
                         "callback": _CALLBACK_ALIAS}),
    TrainerInfo("train_deep_hybrid", train_deep_hybrid, _run_deep_hybrid,
                SHARED | {"schedule", "early_stopping"}, early_stopping=lambda make: make(),
                aliases={"lr_schedule": ("lr_schedule", _schedule, "schedule", _schedule),
                         "callback": _CALLBACK_ALIAS}),
    TrainerInfo("train_dbn", train_dbn, _run_dbn, SHARED | {"epochs", "schedule"},
                aliases={"callback": _LAYER_CALLBACK_ALIAS}),
    TrainerInfo("train_sda", train_sda, _run_sda, SHARED | {"epochs", "schedule"},
                aliases={"callback": _LAYER_CALLBACK_ALIAS}),
]  # fmt: skip


def _histories(result) -> list[History]:
    return list(result) if isinstance(result, list) else [result]


def _base(info: TrainerInfo, **kw) -> dict:
    out = {"epochs": 2, "lr": LR, "batch_size": 10}
    out.update(kw)
    return out


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------ the shared tests


@pytest.mark.parametrize("info", TRAINERS, ids=repr)
def test_signature_takes_the_shared_names(info):
    params = inspect.signature(info.trainer).parameters
    # the hybrid trainers take epochs / lr / batch_size as fields of HybridTraining (**options)
    named = set(params) | (
        {"epochs", "lr", "batch_size"} if "options" in params else set()
    )  # fmt: skip
    missing = sorted(info.names - named)
    assert not missing, f"{info.name} lacks {missing}"
    assert info.randomness in params, f"{info.name} takes neither seed nor generator"
    if info.early_stopping is None:  # no validation signal: the name is left out, not ignored
        assert "early_stopping" not in params
    if info.name != "fit_ensemble":
        assert params["optimizer"].annotation.count("Optimizer") >= 1  # a name or a ready one


@pytest.mark.parametrize("info", TRAINERS, ids=repr)
def test_returns_histories_with_one_based_epochs_and_seconds(info, tmp_path):
    calls = []
    kw = {"optimizer": "adam", "device": "cpu", "checkpoint": tmp_path / "run.ckpt"}
    if "schedule" in info.names:
        kw["schedule"] = "constant"
    result, _ = info.run(**_base(info, progress=lambda e, rec: calls.append(e), **kw))
    hists = _histories(result)
    assert hists and all(isinstance(h, History) for h in hists)
    for h in hists:
        assert h.status == "done" and h.stop_reason in ("max_epochs", "max_steps")
        assert h.seconds > 0
        if info.epoch_key == "epoch":
            assert [e["epoch"] for e in h.epochs] == [1, 2]
            seconds = h["seconds"]
            assert all(0 <= a <= b for a, b in zip(seconds, seconds[1:]))
        else:  # fit_sequence: evaluation records at steps 0, 2, 4
            assert [e["step"] for e in h.epochs] == [0, 2, 4]
    if info.name == "fit_ensemble":
        assert calls == [1, 2]  # progress(epoch, records) once per epoch for all members
    elif info.epoch_key == "epoch":
        assert calls == [1, 2] * len(hists)  # the stack trainers: every layer reports
    assert any(p.is_file() for p in tmp_path.rglob("*"))  # it checkpointed


@pytest.mark.parametrize("info", TRAINERS, ids=repr)
def test_a_callback_returning_true_stops_with_reason_callback(info):
    seen = []

    def stop(epoch, record, model):
        seen.append(epoch)
        return True

    result, _ = info.run(**_base(info, epochs=3, callbacks=[stop]))
    for h in _histories(result):
        assert h.stop_reason == "callback" and h.status == "done"
        assert len([e for e in h.epochs if e.get(info.epoch_key, 0) > 0]) == 1
    assert seen and seen[0] == (2 if info.epoch_key == "step" else 1)


@pytest.mark.parametrize("info", TRAINERS, ids=repr)
def test_an_optimizer_by_name_or_ready(info):
    by_name, m1 = info.run(**_base(info, optimizer="adam"))
    assert all(h.status == "done" for h in _histories(by_name))
    if not info.ready_optimizer:
        with pytest.raises(ValueError, match="optimizer"):
            info.run(**_base(info, optimizer=_adam(_mlp().parameters())))
        return
    ready, m2 = info.run(ready=True, **_base(info, optimizer="adam"))
    for p, q in zip(m1.parameters(), m2.parameters()):  # the same Adam: the same numbers
        assert torch.equal(p, q)
    fresh = info.run(**_base(info, epochs=1, optimizer="sgd"))[1]
    assert any(not torch.equal(p, q) for p, q in zip(_params(fresh), _params(m2)))


@pytest.mark.parametrize("info", [i for i in TRAINERS if i.early_stopping], ids=repr)
def test_early_stopping_stops_with_reason_patience(info):
    def make():  # only epoch 1 improves (from inf); epoch 2 does not beat it by 1e9
        return EarlyStopping(monitor=info.monitor, patience=0, min_delta=1e9)

    result, _ = info.run(**_base(info, epochs=4, early_stopping=info.early_stopping(make)))
    for h in _histories(result):
        assert h.stop_reason == "patience" and h.epochs_run == 2 and h.best_epoch == 1
    if info.name == "fit_ensemble":
        return
    other = "valid_error" if info.monitor == "recon_loss_valid" else "recon_loss"
    with pytest.raises(ValueError, match="monitor"):  # a metric it does not record
        info.run(**_base(info, early_stopping=info.early_stopping(lambda: EarlyStopping(other))))


ALIASES = [(info, old) for info in TRAINERS for old in info.aliases]


@pytest.mark.parametrize("info, old", ALIASES, ids=[f"{i.name}-{o}" for i, o in ALIASES])
def test_deprecated_aliases_warn_and_mean_the_same(info, old):
    old_name, old_value, new_name, new_value = info.aliases[old]
    with pytest.warns(DeprecationWarning, match=f"{old_name}="):
        a, ma = info.run(**_base(info, **{old_name: old_value}))
    kw = {} if new_value is None else {new_name: new_value}
    b, mb = info.run(**_base(info, **kw))
    for p, q in zip(ma.parameters(), mb.parameters()):
        assert torch.equal(p, q)
    assert [h.stop_reason for h in _histories(a)] == [h.stop_reason for h in _histories(b)]
    if new_value is not None and new_name != "callbacks":
        with pytest.raises(ValueError, match="not both"):
            info.run(**_base(info, **{old_name: old_value, new_name: new_value}))


def test_the_old_callback_keeps_its_zero_based_epochs():
    seen = []
    with pytest.warns(DeprecationWarning):
        _run_rbm(epochs=3, batch_size=10, callback=lambda e, rec: seen.append((e, rec["epoch"])))
    assert seen == [(0, 1), (1, 2), (2, 3)]  # the old epoch index; the record counts from 1


def test_a_stack_trainer_refuses_a_shared_ready_optimizer():
    dbn = DBN([6, 5, 4], generator=_gen(0), dtype=torch.float64)
    with pytest.raises(ValueError, match="optimizer"):
        train_dbn(dbn, _binary(), optimizer=_adam(dbn.parameters()))


def test_stack_settings_layer_entries_override_the_shared_ones():
    hists, _ = _run_dbn(epochs=3, lr=LR, layers=[{}, {"epochs": 1}])
    assert [h.epochs_run for h in hists] == [3, 1]


# ------------------------------------------------------------------ History


def test_history_items_are_the_per_epoch_curves_read_only():
    hist, _ = _run_rbm(epochs=3, batch_size=10)
    assert hist["recon_error"] == [e["recon_error"] for e in hist.epochs]
    assert hist["epoch"] == [1, 2, 3] and "recon_error" in hist and "nope" not in hist
    assert set(hist.keys()) >= {"epoch", "lr", "recon_error", "free_energy_train", "seconds"}
    with pytest.raises(KeyError, match="recon_error"):  # the message lists what there is
        hist["nope"]
    with pytest.raises(TypeError):
        hist["recon_error"] = [0.0]  # read-only


def test_the_old_homes_of_history_and_early_stopping_still_work():
    import smithing.callbacks
    import smithing.history
    from smithing.train import EarlyStopping as TrainEarlyStopping
    from smithing.train import History as TrainHistory
    from smithing.train.history import History as OldHistory

    assert TrainHistory is OldHistory is smithing.history.History
    assert TrainEarlyStopping is smithing.callbacks.EarlyStopping


# ------------------------------------------------------------------ train_rbm, not SGD


def test_train_rbm_one_adam_step_on_the_cd_gradient_float64():
    """One step of Adam (Kingma & Ba, Algorithm 1) on ``-g``, ``g`` the CD-1 gradient the
    trainer computed (captured from the public ``cd_gradient`` it calls), by hand."""
    g = _gen(11)
    rbm = BernoulliRBM(6, 4, generator=g, dtype=torch.float64)
    x = _binary(12, 6, seed=12)
    before = {k: v.detach().clone() for k, v in rbm.named_parameters()}
    seen = []
    original = rbm.cd_gradient

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        seen.append({k: v.clone() for k, v in out.items()})
        return out

    rbm.cd_gradient = spy
    lr, (b1, b2), eps = 0.05, (0.8, 0.99), 1e-6
    opts = {"betas": (b1, b2), "eps": eps}
    hist = train_rbm(rbm, x, epochs=1, batch_size=12, lr=lr, optimizer="adam",
                     optimizer_options=opts, generator=g)  # fmt: skip
    assert len(seen) == 1 and hist["lr"] == [lr] and "momentum" not in hist
    for name, p in rbm.named_parameters():
        d = -seen[0][name]  # descent on -g: ascent on the likelihood
        m = (1 - b1) * d  # m_1 = b1 m_0 + (1 - b1) d, m_0 = 0
        v = (1 - b2) * d * d  # v_1 = b2 v_0 + (1 - b2) d^2
        m_hat, v_hat = m / (1 - b1), v / (1 - b2)  # bias correction at t = 1
        expected = before[name] - lr * m_hat / (v_hat.sqrt() + eps)
        torch.testing.assert_close(p.detach(), expected, rtol=1e-13, atol=1e-15)


def test_train_rbm_sgd_default_is_the_delta_form_unchanged():
    """The default keeps Hinton's delta form: ``delta = mu delta + lr f(t) g`` (also when the
    rate changes), not PyTorch's momentum with the rate applied to the whole buffer."""
    g = _gen(13)
    rbm = BernoulliRBM(6, 4, generator=g, dtype=torch.float64)
    x = _binary(10, 6, seed=14)
    grads = []
    original = rbm.cd_gradient

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        grads.append({k: v.clone() for k, v in out.items()})
        return out

    rbm.cd_gradient = spy
    p0 = {k: v.detach().clone() for k, v in rbm.named_parameters()}
    lr, mu = 0.1, 0.5
    train_rbm(rbm, x, epochs=3, batch_size=10, lr=lr, momentum=mu, schedule=_schedule,
              generator=g)  # fmt: skip
    for name, p in rbm.named_parameters():
        delta, theta = torch.zeros_like(p0[name]), p0[name].clone()
        for t, gr in enumerate(grads):
            delta = mu * delta + lr * _schedule(t) * gr[name]
            theta = theta + delta
        torch.testing.assert_close(p.detach(), theta, rtol=1e-12, atol=1e-14)


def test_train_rbm_refuses_momentum_with_another_optimizer():
    with pytest.raises(ValueError, match="momentum"):
        _run_rbm(optimizer="adam", momentum=0.5)
    with pytest.raises(ValueError, match="optimizer_options"):
        _run_rbm(optimizer="sgd", optimizer_options={"weight_decay": 0.1})


def test_a_named_schedule_scales_every_trainers_rate():
    hist, _ = _run_rbm(epochs=3, batch_size=10, lr=0.2, schedule="step",
                       schedule_options={"step_size": 1, "gamma": 0.5})  # fmt: skip
    assert hist["lr"] == pytest.approx([0.2, 0.1, 0.05])
    hist, _ = _run_autoencoder(epochs=3, batch_size=10, lr=0.2, optimizer="adam",
                               schedule="exponential", schedule_options={"gamma": 0.5})  # fmt: skip
    assert hist["lr"] == pytest.approx([0.2, 0.1, 0.05])
    assert all(math.isfinite(v) for v in hist["recon_loss"])
