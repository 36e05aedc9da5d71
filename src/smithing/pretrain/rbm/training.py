"""The trainer :func:`train_rbm` (CD-k / PCD, Hinton's guide), resumable through
:mod:`smithing.checkpoint`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from smithing._registry import check
from smithing.checkpoint import (
    Checkpointer,
    as_checkpointer,
    check_signature,
    rng_state,
    set_rng_state,
)
from smithing.pretrain.rbm.functional import (
    pseudo_likelihood,
    sample_bernoulli,
    sample_gaussian,
)
from smithing.pretrain.rbm.modules import (
    BernoulliRBM,
)
from smithing.pretrain.rbm.sampling import (
    PersistentChains,
    gibbs_step,
)

__all__ = [
    "reconstruction_error",
    "train_rbm",
]

# ------------------------------------------------------------------ training


def reconstruction_error(v: Tensor, recon: Tensor) -> Tensor:
    """Mean squared error ``mean((v - recon)^2)`` over batch and visibles; ``(*M,)``."""
    return ((v - recon) ** 2).mean((-2, -1))


def _momentum_schedule(momentum: float | str | Callable[[int], float]) -> Callable[[int], float]:
    if callable(momentum):
        return momentum
    if isinstance(momentum, str):
        check(
            momentum == "hinton",
            "momentum",
            momentum,
            "a number in [0, 1), 'hinton' or a callable epoch -> momentum",
        )
        return lambda epoch: 0.5 if epoch < 5 else 0.9  # Hinton's guide, Sec. 9
    check(0.0 <= momentum < 1.0, "momentum", momentum, "a number in [0, 1)")
    return lambda epoch: float(momentum)


def _to_py(t: Tensor) -> float | list[float]:
    return t.detach().cpu().tolist()


def train_rbm(
    rbm: BernoulliRBM,
    data: Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 100,
    lr: float | Sequence[float] = 0.1,
    method: str = "cd",
    k: int = 1,
    n_chains: int | None = None,
    chains: PersistentChains | None = None,
    momentum: float | str | Callable[[int], float] = 0.0,
    weight_decay: float = 0.0,
    sparsity_target: float | None = None,
    sparsity_cost: float = 0.0,
    sparsity_damping: float = 0.9,
    lr_schedule: Callable[[int], float] | None = None,
    negative_visible: str = "sample",
    valid_data: Tensor | None = None,
    monitor_size: int = 1000,
    generator: torch.Generator | None = None,
    callback: Callable[[int, dict], object] | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
) -> dict[str, list]:
    """Train ``rbm`` in place by CD-k or PCD and return the per-epoch history.

    Update (Hinton's guide, eqs. 9-10 and Sec. 9-11), for every parameter ``theta``::

        g = <d(-E)/d theta>_data - <d(-E)/d theta>_model       (positive phase: p(h|v_data))
            - weight_decay * W                                    (L2 "weight-cost", weights only)
            - sparsity_cost * (q - sparsity_target) * d x / d theta  (on c and W, Sec. 11)
        delta = momentum * delta + lr * lr_schedule(epoch) * g;   theta += delta

    ``q_j = damping * q_j + (1 - damping) * mean_batch p(h_j | v)`` is the running mean
    activity; ``x_j`` the hidden unit's total input (Lee, Ekanadham & Ng, NIPS 2008 use a
    similar penalty on the biases only). The step is ``torch.optim.SGD(lr=1, momentum)`` fed
    ``.grad = -lr * g``: exactly the guide's ``delta`` form, also when the learning rate changes
    (PyTorch's own ``lr`` would rescale the whole momentum buffer instead).

    Negative phase: ``method="cd"`` runs ``k`` Gibbs sweeps from the data batch (CD-k);
    ``method="pcd"`` runs ``k`` sweeps of ``n_chains`` persistent chains (default
    ``batch_size``) that carry over across batches and epochs (pass ``chains`` to reuse or
    inspect them). The negative hidden statistics are probabilities ``p(h | v_neg)``; the
    negative visibles are the sampled states (``negative_visible="sample"``) or their means
    (``"mean"``, as in Hinton & Salakhutdinov's code).

    ``momentum`` is a number, ``"hinton"`` (0.5 for the first 5 epochs, then 0.9: guide
    Sec. 9) or a callable ``epoch -> momentum``; ``lr_schedule`` a callable ``epoch -> factor``.
    ``generator`` (on ``data``'s device) drives batch order, Gibbs sampling and the
    pseudo-likelihood's flips: same seed, same result.

    Ensembles: for an RBM with ``members=M`` every member has its own batch order (an
    independent permutation) and its own chains; ``lr`` may be a sequence of ``M`` rates.
    ``data`` is ``(n, n_visible)`` shared by all members, or ``(M, n, n_visible)``. Mini-batches
    are index slices of the device-resident ``data`` (no DataLoader).

    Monitoring per epoch (cheap): ``recon_error`` (mean squared ``v - E[v | h ~ p(h|v)]``,
    averaged over the epoch's batches), ``pseudo_likelihood`` (Bernoulli only; scikit-learn's
    ``score_samples`` estimator, mean over the first ``monitor_size`` training examples),
    ``free_energy_train`` / ``free_energy_valid`` (mean ``F(v)`` on that subset and on
    ``valid_data[:monitor_size]``; a growing gap signals overfitting, guide Sec. 6). Values are
    floats, or lists of ``M`` floats for an ensemble. ``callback(epoch, record)`` runs after each
    epoch; a truthy return stops training.

    ``checkpoint`` (a :class:`~smithing.checkpoint.Checkpointer` or a path) makes the run
    resumable: training continues from the newest valid checkpoint there and saves as its
    policy says (epoch ends, optionally mid-epoch). It holds the parameters and buffers, the
    momentum buffers, the persistent chains (written into ``chains`` when given), the sparsity
    running mean ``q``, the states of ``generator`` and of the global torch / Python / NumPy
    generators, the history, the epoch and the position in it (the permutation, the next
    batch, the reconstruction-error sum). A resumed run ends bitwise equal (on CPU) to the
    run uninterrupted, ``time_s`` aside.
    """
    check(method in ("cd", "pcd"), "method", method, "'cd' or 'pcd'")
    check(
        negative_visible in ("sample", "mean"),
        "negative_visible",
        negative_visible,
        "'sample' or 'mean'",
    )
    check(isinstance(epochs, int) and epochs >= 0, "epochs", epochs, "an int >= 0")
    check(
        isinstance(batch_size, int) and batch_size > 0, "batch_size", batch_size, "a positive int"
    )
    check(isinstance(k, int) and k >= 1, "k", k, "an int >= 1")
    check(weight_decay >= 0, "weight_decay", weight_decay, "a non-negative number")
    check(sparsity_cost >= 0, "sparsity_cost", sparsity_cost, "a non-negative number")
    check(
        sparsity_target is None or 0 < sparsity_target < 1,
        "sparsity_target",
        sparsity_target,
        "None or a number in (0, 1)",
    )
    check(0 <= sparsity_damping < 1, "sparsity_damping", sparsity_damping, "a number in [0, 1)")
    check(monitor_size > 0, "monitor_size", monitor_size, "a positive int")
    M = rbm.members
    expected = f"(n, {rbm.n_visible})" + ("" if M is None else f" or ({M}, n, {rbm.n_visible})")
    shared = data.dim() == 2
    check(
        data.shape[-1] == rbm.n_visible
        and (shared or (M is not None and data.dim() == 3 and data.shape[0] == M)),
        "data.shape",
        tuple(data.shape),
        expected,
    )
    check(
        data.device == rbm.W.device, "data.device", data.device, f"the RBM's device {rbm.W.device}"
    )
    momentum_at = _momentum_schedule(momentum)
    dev, dtype = rbm.W.device, rbm.W.dtype
    lr_t = torch.as_tensor(lr, dtype=dtype, device=dev)
    check(
        lr_t.dim() == 0 or (M is not None and lr_t.shape == (M,)),
        "lr",
        lr,
        "a number" + ("" if M is None else f" or a sequence of {M} numbers"),
    )
    check(bool((lr_t > 0).all()), "lr", lr, "positive learning rates")
    data = data.to(dtype)
    n = data.shape[-2]
    if method == "pcd":
        if chains is None:
            chains = PersistentChains.init(rbm, n_chains or batch_size, generator=generator)
        want = (*(() if M is None else (M,)), rbm.n_visible)
        check(
            chains.v.shape[:-2] + chains.v.shape[-1:] == want,
            "chains.v.shape",
            tuple(chains.v.shape),
            f"(*members, n_chains, n_visible) with {want}",
        )

    params = dict(rbm.named_parameters())
    opt = torch.optim.SGD(list(params.values()), lr=1.0, momentum=momentum_at(0))

    def lr_for(p: Tensor) -> Tensor:  # (M, 1, ..) so each member gets its own rate
        return lr_t if lr_t.dim() == 0 else lr_t.view(-1, *([1] * (p.dim() - 1)))

    mon_train = data[..., :monitor_size, :]
    mon_valid = None if valid_data is None else valid_data[..., :monitor_size, :].to(dtype)
    history: dict[str, list] = {
        "epoch": [],
        "lr": [],
        "momentum": [],
        "recon_error": [],
        "free_energy_train": [],
        "time_s": [],
    }
    if rbm.visible_type == "bernoulli":
        history["pseudo_likelihood"] = []
    if mon_valid is not None:
        history["free_energy_valid"] = []
    q = None  # running mean hidden activity (sparsity)
    members_idx = None if M is None else torch.arange(M, device=dev).unsqueeze(-1)  # (M, 1)
    ckpt = as_checkpointer(checkpoint)
    signature = {
        "epochs": epochs,
        "batch_size": batch_size,
        "method": method,
        "k": k,
        "n_chains": None if chains is None else list(chains.v.shape),
        "data": list(data.shape),
        "visible_type": rbm.visible_type,
        "parameters": [[name, list(v.shape)] for name, v in rbm.state_dict().items()],
        "lr": _to_py(lr_t),
        "weight_decay": weight_decay,
        "sparsity": [sparsity_target, sparsity_cost, sparsity_damping],
        "negative_visible": negative_visible,
        "generator": generator is not None,
    }
    first_epoch, resume, finished = 0, None, False

    def snapshot(epoch: int, position: dict | None = None, done: bool = False) -> dict:
        return {
            "trainer": "train_rbm",
            "signature": signature,
            "epoch": epoch,
            "position": position,
            "finished": done,
            "rbm": rbm.state_dict(),
            "optimizer": opt.state_dict(),
            "chains": None if chains is None else {"v": chains.v, "updates": chains.updates},
            "q": q,
            "generator": None if generator is None else generator.get_state(),
            "rng": rng_state(dev),
            "history": history,
        }

    state = None if ckpt is None else ckpt.load()
    if state is not None:
        check_signature(ckpt, state, "train_rbm", signature)
        with torch.no_grad():
            rbm.load_state_dict(state["rbm"])
        opt.load_state_dict(state["optimizer"])
        if chains is not None:
            chains.v = state["chains"]["v"].to(device=dev, dtype=chains.v.dtype)
            chains.updates = state["chains"]["updates"]
        q = None if state["q"] is None else state["q"].to(dev)
        if generator is not None:
            generator.set_state(state["generator"])
        for key, values in state["history"].items():
            history[key][:] = values
        first_epoch, resume, finished = state["epoch"], state["position"], state["finished"]
        set_rng_state(state["rng"])  # last: nothing may draw from the global generators after
    if ckpt is not None:
        ckpt.start()
    for epoch in range(first_epoch, 0 if finished else epochs):
        t0 = time.perf_counter()
        factor = 1.0 if lr_schedule is None else float(lr_schedule(epoch))
        mom = float(momentum_at(epoch))
        for group in opt.param_groups:
            group["momentum"] = mom
        if resume is not None:  # a mid-epoch checkpoint: the same order, from the next batch
            perm, err_sum = resume["perm"].to(dev), resume["err_sum"].to(dev)
            n_batches, begin, resume = resume["n_batches"], resume["batch"], None
        else:
            if M is None:
                perm = torch.randperm(n, generator=generator, device=dev)  # (n,)
            else:  # an independent order per member
                perm = torch.rand((M, n), generator=generator, device=dev).argsort(-1)  # (M, n)
            err_sum = torch.zeros(() if M is None else (M,), dtype=dtype, device=dev)
            n_batches, begin = 0, 0
        for start in range(begin, n, batch_size):
            idx = perm[..., start : start + batch_size]  # (*M, B)
            if M is None:
                v0 = data[idx]  # (B, nv)
            elif shared:
                v0 = data[idx]  # (M, B, nv)
            else:
                v0 = data[members_idx, idx]  # (M, B, nv)
            with torch.no_grad():
                ph0 = rbm.hidden_probs(v0)  # positive phase: probabilities (guide Sec. 3.2)
                h = sample_bernoulli(ph0, generator)
                recon = rbm.visible_mean(h)  # (*M, B, nv) first reconstruction
                if method == "cd":
                    mean, v = recon, v0
                    for step in range(k):  # CD-k: k sweeps started at the data
                        if step > 0:
                            h = sample_bernoulli(rbm.hidden_probs(v), generator)
                            mean = rbm.visible_mean(h)
                        v = _draw_visible(rbm, mean, generator)
                else:
                    v = chains.v  # PCD: continue the persistent chains
                    for _ in range(k):
                        v, mean = gibbs_step(rbm, v, generator)
                    chains.v = v
                    chains.updates += 1
                v_neg = mean if negative_visible == "mean" else v
                ph_neg = rbm.hidden_probs(v_neg)
                grad = rbm.cd_gradient(v0, ph0, v_neg, ph_neg)  # <.>_data - <.>_model
                if weight_decay:
                    grad["W"] = grad["W"] - weight_decay * rbm.W  # L2 weight-cost (Sec. 10)
                if sparsity_target is not None and sparsity_cost > 0:
                    batch_q = ph0.mean(-2)  # (*M, nh)
                    if q is None:
                        q = batch_q
                    else:  # q <- damping q + (1 - damping) q_batch   (guide Sec. 11.1)
                        q = sparsity_damping * q + (1 - sparsity_damping) * batch_q
                    d = q - sparsity_target  # d CE / d x_j (guide Sec. 11.1)
                    grad["c"] = grad["c"] - sparsity_cost * d
                    drive = rbm.visible_drive(v0).mean(-2)  # (*M, nv)
                    grad["W"] = grad["W"] - sparsity_cost * drive.unsqueeze(-1) * d.unsqueeze(-2)
                for name, p in params.items():
                    p.grad = -(lr_for(p) * factor) * grad[name]  # SGD descends -g
                err_sum += reconstruction_error(v0, recon)
                n_batches += 1
            opt.step()
            if mom == 0:  # keep the guide's delta (torch's SGD keeps no buffer at momentum 0),
                for p in params.values():  # so momentum switched on later continues from it
                    opt.state[p]["momentum_buffer"] = p.grad.detach().clone()
            if ckpt is not None and start + batch_size < n and ckpt.due(batches=n_batches):
                pos = {"perm": perm, "batch": start + batch_size, "err_sum": err_sum}
                ckpt.save(snapshot(epoch, pos | {"n_batches": n_batches}))
        with torch.no_grad():
            record = {
                "epoch": epoch,
                "lr": _to_py(lr_t * factor),
                "momentum": mom,
                "recon_error": _to_py(err_sum / max(n_batches, 1)),
                "free_energy_train": _to_py(rbm.free_energy(mon_train).mean(-1)),
            }
            if rbm.visible_type == "bernoulli":
                pl = pseudo_likelihood(rbm.free_energy, mon_train, generator=generator)
                record["pseudo_likelihood"] = _to_py(pl.mean(-1))
            if mon_valid is not None:
                record["free_energy_valid"] = _to_py(rbm.free_energy(mon_valid).mean(-1))
        record["time_s"] = time.perf_counter() - t0
        for key, value in record.items():
            history[key].append(value)
        if callback is not None and callback(epoch, record):
            break
        if ckpt is not None and epoch + 1 < epochs and ckpt.due(epoch_end=True):
            ckpt.save(snapshot(epoch + 1))
    if ckpt is not None and ckpt.save_final and not finished:
        ckpt.save(snapshot(epochs, done=True))
    opt.zero_grad(set_to_none=True)
    return history


def _draw_visible(rbm: BernoulliRBM, mean: Tensor, generator: torch.Generator | None) -> Tensor:
    if rbm.visible_type == "gaussian":
        return sample_gaussian(mean, rbm.log_var, generator)
    return sample_bernoulli(mean, generator)
