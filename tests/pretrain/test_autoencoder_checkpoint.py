"""train_autoencoder with checkpoints: interrupted (at an epoch end, mid-epoch) then resumed, it
ends bitwise equal to the run uninterrupted; a finished run's checkpoint skips training."""

from __future__ import annotations

import pytest
import torch

from checkpoint_tools import CrashAfterSave, Interrupted
from smithing.checkpoint import Checkpointer, CheckpointError, read_checkpoint
from smithing.pretrain.autoencoder import DenoisingAutoencoder, train_autoencoder


def _data(n=90, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(3, d, generator=g) < 0.5).float()
    return protos[torch.randint(3, (n,), generator=g)]


def _generator_case():
    def make():
        torch.manual_seed(7)  # as the runner seeds globally
        g = torch.Generator().manual_seed(1)
        return DenoisingAutoencoder(12, 6, generator=g), {"generator": g}

    kw = dict(
        epochs=4,
        batch_size=20,
        lr=0.1,
        optimizer="momentum",
        optimizer_options={"momentum": 0.9},
        corruption="salt_and_pepper",
        rate=0.3,
        emphasis=(1.0, 0.5),
        contractive=0.01,
        valid_data=_data(30, seed=1),
    )
    return make, kw


def _members_global_rng_case():
    def make():
        torch.manual_seed(3)  # no generator: order and corruption from the global one
        model = DenoisingAutoencoder(12, 5, members=3, tied=False, loss="squared_error")
        return model, {}

    kw = dict(epochs=4, batch_size=16, lr=0.05, optimizer="adam", corruption="gaussian", rate=0.2)
    return make, kw


CASES = {"generator": _generator_case, "members-global-rng": _members_global_rng_case}


def _raise_at(k):
    def cb(epoch, record, model):  # epoch is 1-based: dies at the end of epoch k
        if epoch == k:
            raise Interrupted

    return cb


def _timeless(h):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs]


def _same_history(a, b):
    return _timeless(a) == _timeless(b) and (a.status, a.stop_reason) == (b.status, b.stop_reason)


def _same_params(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("where", ["epoch-end", "mid-epoch"])
def test_train_autoencoder_resumes_bitwise(tmp_path, case, where):
    data = _data()
    make, kw = CASES[case]()
    ref, ref_extra = make()
    h_ref = train_autoencoder(ref, data, **kw, **ref_extra)
    after_ref = torch.rand(2)

    path = tmp_path / "dae.ckpt"
    model, extra = make()
    with pytest.raises(Interrupted):
        if where == "epoch-end":
            ck = Checkpointer(path, min_interval_s=0)
            train_autoencoder(model, data, **kw, **extra, callbacks=[_raise_at(3)], checkpoint=ck)
        else:  # dies right after a mid-epoch save in the third epoch
            n_batches = -(-data.shape[-2] // kw["batch_size"])
            ck = CrashAfterSave(path, 2 * n_batches + 2, min_interval_s=0, every_batches=1)
            train_autoencoder(model, data, **kw, **extra, checkpoint=ck)
    state = read_checkpoint(path)
    assert state["epoch"] == 2 and (state["position"] is None) == (where == "epoch-end")

    torch.manual_seed(99)  # a new process: other global RNG states
    fresh, fresh_extra = make()
    torch.manual_seed(98)
    ck = Checkpointer(path, min_interval_s=0, every_batches=1)
    h = train_autoencoder(fresh, data, **kw, **fresh_extra, checkpoint=ck)
    assert ck.loaded_from == path
    assert _same_params(ref, fresh) and _same_history(h_ref, h)
    assert torch.equal(torch.rand(2), after_ref)

    # finished: a rerun returns the same history and the final parameters, without training
    again, again_extra = make()
    ck = Checkpointer(path, min_interval_s=0)
    h2 = train_autoencoder(again, data, **kw, **again_extra, checkpoint=ck)
    assert ck.saves == 0 and _same_history(h_ref, h2) and _same_params(ref, again)
    assert torch.equal(torch.rand(2), after_ref)


def test_checkpointing_does_not_change_the_numbers(tmp_path):
    data = _data()
    make, kw = _generator_case()
    ref, ref_extra = make()
    h_ref = train_autoencoder(ref, data, **kw, **ref_extra)
    model, extra = make()
    ck = Checkpointer(tmp_path / "c", min_interval_s=0, every_batches=2)
    h = train_autoencoder(model, data, **kw, **extra, checkpoint=ck)
    assert ck.saves > kw["epochs"] and _same_params(ref, model) and _same_history(h_ref, h)


def test_train_autoencoder_refuses_another_runs_checkpoint(tmp_path):
    data = _data()
    path = tmp_path / "dae.ckpt"
    train_autoencoder(DenoisingAutoencoder(12, 4), data, epochs=1, checkpoint=path)
    with pytest.raises(CheckpointError, match=r"belongs to another run \(corruption: "):
        train_autoencoder(DenoisingAutoencoder(12, 4), data, epochs=1, rate=0.1, checkpoint=path)
