"""train_rbm with checkpoints: interrupted (in process, and by a real SIGKILL) then resumed, it
ends bitwise equal to the run uninterrupted."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest
import torch

from checkpoint_tools import CrashAfterSave, Interrupted
from smithing.checkpoint import Checkpointer, CheckpointError, load_latest, read_checkpoint
from smithing.pretrain.rbm import BernoulliRBM, GaussianBernoulliRBM, PersistentChains, train_rbm


def _data(n=120, nv=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(4, nv, generator=g) < 0.5).float()
    x = protos[torch.randint(4, (n,), generator=g)]
    flip = torch.rand(n, nv, generator=g) < 0.1
    return torch.where(flip, 1 - x, x)


def _raise_at(k):
    def cb(epoch, record):
        if epoch == k:
            raise Interrupted

    return cb


def _same_history(a, b):
    return a.keys() == b.keys() and all(a[k] == b[k] for k in a if k != "time_s")


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
        lr_schedule=lambda e: 1 / (1 + 0.2 * e),
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
            train_rbm(rbm, data, **kw, **extra, callback=_raise_at(2), checkpoint=ck)
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
    hist.pop("time_s")
    with open(out + ".json", "w") as f:
        json.dump(hist, f)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(*sys.argv[1:])
"""


def kill_and_resume(tmp_path, script_text, until, timeout=60.0):
    """A run of ``script_text`` (``main(out, checkpoint_path, pace)``) SIGKILLed once
    ``until(checkpoint_state)`` holds, then rerun to completion, next to the same run
    uninterrupted without checkpoints (in this process, one thread, while the rerun starts).
    Returns the reference's and the resumed run's output prefixes and the state it resumed from.
    """
    import runpy

    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(script_text))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ckpt = tmp_path / "ckpt" / "run.ckpt"
    ref_out, out = str(tmp_path / "ref"), str(tmp_path / "out")
    victim = subprocess.Popen([sys.executable, str(script), out, str(ckpt), "0.03"], env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert victim.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint to kill at"
            if ckpt.exists():
                try:
                    if until(read_checkpoint(ckpt)):
                        break
                except CheckpointError:  # pragma: no cover - atomic writes prevent this
                    pass
            time.sleep(0.01)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout)
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait(timeout)
    assert victim.returncode == -signal.SIGKILL
    assert not os.path.exists(out + ".json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the atomic writes leave no corrupt file behind
        resumed_from = load_latest(ckpt)
    assert resumed_from is not None
    rerun = subprocess.Popen([sys.executable, str(script), out, str(ckpt), "0"], env=env)
    try:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            runpy.run_path(str(script), run_name="reference")["main"](ref_out, "-", 0)
        finally:
            torch.set_num_threads(threads)
        assert rerun.wait(timeout) == 0
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait(timeout)
    return ref_out, out, resumed_from


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
