"""train_rbm with checkpoints: interrupted (in process, and by a real SIGKILL) then resumed, it
ends bitwise equal to the run uninterrupted."""

import json

import pytest
import torch

from checkpoint_tools import CrashAfterSave, Interrupted, kill_and_resume
from smithing.checkpoint import Checkpointer, CheckpointError, read_checkpoint
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM, PersistentChains, train_rbm


def _data(n=120, nv=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, nv, generator=g) < 0.5).float()
    x = protos[torch.randint(4, (n,), generator=g)]
    flip = torch.rand(n, nv, generator=g) < 0.1
    return torch.where(flip, 1 - x, x)


def _raise_at(k):
    def cb(epoch, record, model):  # epoch is 1-based: dies at the end of epoch k
        if epoch == k:
            raise Interrupted

    return cb


def _timeless(h):
    return [{k: v for k, v in e.items() if k != "seconds"} for e in h.epochs]


def _same_history(a, b):
    return _timeless(a) == _timeless(b) and (a.status, a.stop_reason) == (b.status, b.stop_reason)


def _pcd():
    data = _data()

    def make():
        rbm = BernoulliRBM(20, 12, generator=torch.Generator().manual_seed(1))
        return rbm, {"generator": torch.Generator().manual_seed(2)}

    kw = dict(
        epochs=6,
        batch_size=10,
        lr=0.05,
        method="pcd",
        k=2,
        n_chains=15,
        momentum="hinton",
        weight_decay=1e-3,
        sparsity_target=0.2,
        sparsity_cost=0.1,
        schedule=lambda e: 1 / (1 + 0.2 * e),
        valid_data=_data(40, seed=1),
    )
    return data, make, kw


def _cd_members():
    data = _data()

    def make():
        torch.manual_seed(3)
        return BernoulliRBM(20, 8, members=3), {}  # the global generator drives sampling

    kw = dict(epochs=4, batch_size=16, lr=[0.02, 0.05, 0.1], method="cd", k=3, momentum=0.5)
    return data, make, kw


def _gaussian_chains():
    data = torch.randn(100, 6, generator=torch.Generator().manual_seed(4))

    def make():
        g = torch.Generator().manual_seed(5)
        rbm = GaussianBernoulliRBM(6, 5, learn_variance=True, generator=g)
        chains = PersistentChains.init(rbm, 10, generator=g)
        return rbm, {"generator": g, "chains": chains}

    kw = dict(epochs=4, batch_size=20, lr=0.01, method="pcd", momentum=0.9)
    return data, make, kw


CASES = {"pcd": _pcd, "cd-members": _cd_members, "gaussian-chains": _gaussian_chains}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("where", ["epoch-end", "mid-epoch"])
def test_train_rbm_resumes_bitwise(tmp_path, case, where):
    data, make, kw = CASES[case]()
    ref, ref_extra = make()
    h_ref = train_rbm(ref, data, **kw, **ref_extra)

    path = tmp_path / "rbm.ckpt"
    rbm, extra = make()
    with pytest.raises(Interrupted):
        if where == "epoch-end":
            ck = Checkpointer(path, min_interval_s=0)
            train_rbm(rbm, data, **kw, **extra, callbacks=[_raise_at(3)], checkpoint=ck)
        else:  # dies right after a mid-epoch save in the third epoch
            n_batches = -(-data.shape[-2] // kw["batch_size"])
            ck = CrashAfterSave(path, 2 * n_batches + 2, min_interval_s=0, every_batches=1)
            train_rbm(rbm, data, **kw, **extra, checkpoint=ck)
    state = read_checkpoint(path)
    assert state["epoch"] == 2 and (state["position"] is None) == (where == "epoch-end")

    torch.manual_seed(99)  # a new process: other global RNG states
    fresh, fresh_extra = make()
    ck = Checkpointer(path, min_interval_s=0, every_batches=1)
    h = train_rbm(fresh, data, **kw, **fresh_extra, checkpoint=ck)
    assert ck.loaded_from == path
    for name, p in ref.state_dict().items():
        assert torch.equal(p, fresh.state_dict()[name]), name
    assert _same_history(h_ref, h)
    if "chains" in ref_extra:
        assert torch.equal(ref_extra["chains"].v, fresh_extra["chains"].v)
        assert ref_extra["chains"].updates == fresh_extra["chains"].updates

    # finished: a rerun returns the same history and leaves the parameters alone
    again, again_extra = make()
    ck = Checkpointer(path, min_interval_s=0)
    h2 = train_rbm(again, data, **kw, **again_extra, checkpoint=ck)
    assert ck.saves == 0 and _same_history(h_ref, h2)
    assert all(torch.equal(p, q) for p, q in zip(ref.parameters(), again.parameters()))


def test_train_rbm_refuses_another_runs_checkpoint(tmp_path):
    data = _data()
    path = tmp_path / "rbm.ckpt"
    train_rbm(BernoulliRBM(20, 4), data, epochs=1, checkpoint=path)
    with pytest.raises(CheckpointError, match=r"rbm.ckpt: belongs to another run \(k: "):
        train_rbm(BernoulliRBM(20, 4), data, epochs=1, k=2, checkpoint=path)
    with pytest.raises(CheckpointError, match="rbm.ckpt: belongs to another run"):
        train_rbm(BernoulliRBM(20, 5), data, epochs=1, checkpoint=path)


# ------------------------------------------------------------------ a real SIGKILL

RBM_SCRIPT = """
import json, sys, time
import torch
from safetensors.torch import save_file
from smithing.pretrain.rbm import BernoulliRBM, train_rbm
from smithing.checkpoint import Checkpointer


class Paced(Checkpointer):  # slows the first run down so that the test can kill it mid-epoch
    pace = 0.0

    def save(self, state):
        dt = super().save(state)
        time.sleep(self.pace)
        return dt


def main(out, path, pace):
    g = torch.Generator().manual_seed(0)
    protos = (torch.rand(5, 36, generator=g) < 0.5).float()
    x = protos[torch.randint(5, (200,), generator=g)]
    data = torch.where(torch.rand(x.shape, generator=g) < 0.05, 1 - x, x)
    rbm = BernoulliRBM(36, 16, generator=g)
    ck = None
    if path != "-":
        ck = Paced(path, min_interval_s=0, every_batches=1)
        ck.pace = float(pace)
    hist = train_rbm(
        rbm, data, epochs=6, batch_size=10, lr=0.05, method="pcd", n_chains=20,
        momentum="hinton", sparsity_target=0.1, sparsity_cost=0.05, generator=g, checkpoint=ck,
    )
    save_file({k: v.detach().contiguous() for k, v in rbm.state_dict().items()},
              out + ".safetensors")
    with open(out + ".json", "w") as f:
        json.dump([{k: v for k, v in e.items() if k != "seconds"} for e in hist.epochs], f)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
"""


def test_sigkill_mid_epoch_then_resume_train_rbm_pcd(tmp_path):
    from safetensors.torch import load_file

    ref, out, state = kill_and_resume(
        tmp_path, RBM_SCRIPT, lambda s: s["epoch"] >= 2 and s["position"] is not None
    )
    assert state["epoch"] >= 2 and not state["finished"]
    ref_t, t = load_file(ref + ".safetensors"), load_file(out + ".safetensors")
    assert list(ref_t) == list(t) and all(torch.equal(ref_t[k], t[k]) for k in t)
    with open(ref + ".json") as f, open(out + ".json") as g:
        assert json.load(f) == json.load(g)
