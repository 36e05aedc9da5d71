"""The trainer :func:`train_rbm` (CD-k / PCD, Hinton's guide), resumable through
:mod:`smithing.checkpoint`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from smithing import optim as _optim
from smithing._registry import check
from smithing.checkpoint import Checkpointer, Resumable
from smithing.compiled import compile_step, current_compile
from smithing.history import Callback, History, legacy_callback, renamed, run_callbacks
from smithing.precision import current_precision, mixed
from smithing.pretrain._batches import MemberBatches
from smithing.pretrain.rbm.functional import (
    pseudo_likelihood,
    sample_bernoulli,
    sample_gaussian,
)
from smithing.pretrain.rbm.modules import (
    BernoulliRBM,
    _gaussian_visibles,
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
    lr: float | Sequence[float] = 0.1,
    batch_size: int = 100,
    optimizer: str | torch.optim.Optimizer = "sgd",
    optimizer_options: dict | None = None,
    schedule: str | Callable[[int], float] | None = None,
    schedule_options: dict | None = None,
    method: str = "cd",
    k: int | Sequence[int] = 1,
    n_chains: int | None = None,
    chains: PersistentChains | None = None,
    momentum: float | str | Callable[[int], float] = 0.0,
    weight_decay: float = 0.0,
    sparsity_target: float | None = None,
    sparsity_cost: float = 0.0,
    sparsity_damping: float = 0.9,
    negative_visible: str = "sample",
    binarize_batches: bool = False,
    valid_data: Tensor | None = None,
    monitor_size: int = 1000,
    monitor_reconstruction: bool = True,
    generator: torch.Generator | None = None,
    callbacks: Sequence[Callback] = (),
    progress: Callable[[int, dict], None] | None = None,
    device: torch.device | str | None = None,
    checkpoint: Checkpointer | str | os.PathLike | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    callback: Callable[[int, dict], object] | None = None,
    precision: str | None = None,
    compile: bool | None = None,
) -> History:
    """Train ``rbm`` in place by CD-k or PCD and return its :class:`~smithing.history.History`.

    Update (Hinton's guide, eqs. 9-10 and Sec. 9-11), for every parameter ``theta``::

        g = <d(-E)/d theta>_data - <d(-E)/d theta>_model       (positive phase: p(h|v_data))
            - weight_decay * W                                    (L2 "weight-cost", weights only)
            - sparsity_cost * (q - sparsity_target) * d x / d theta  (on c and W, Sec. 11)
        delta = momentum * delta + lr * schedule(epoch) * g;      theta += delta

    ``q_j = damping * q_j + (1 - damping) * mean_batch p(h_j | v)`` is the running mean
    activity; ``x_j`` the hidden unit's total input (Lee, Ekanadham & Ng, NIPS 2008 use a
    similar penalty on the biases only). ``g`` is :meth:`~BernoulliRBM.cd_gradient` (the
    public :func:`~smithing.pretrain.rbm.cd_gradient` / ``gaussian_cd_gradient``) plus the
    penalties. With ``optimizer="sgd"`` (the default) the step is ``smithing.optim``'s
    ``"momentum"`` (``torch.optim.SGD``) at ``lr=1`` fed ``.grad = -lr * schedule(epoch) * g``:
    exactly the guide's ``delta`` form, also when the learning rate changes (PyTorch's own
    ``lr`` would rescale the whole momentum buffer instead). Any other optimizer (a name of
    :mod:`smithing.optim` with ``optimizer_options``, or a ready ``torch.optim.Optimizer`` over
    ``rbm.parameters()``) is stepped on ``.grad = -g`` (ascent on the likelihood as descent)
    with its own learning rate, ``lr * schedule(epoch)`` for a name.

    Negative phase: ``method="cd"`` runs ``k`` Gibbs sweeps from the data batch (CD-k);
    ``method="pcd"`` runs ``k`` sweeps of ``n_chains`` persistent chains (default
    ``batch_size``) that carry over across batches and epochs (pass ``chains`` to reuse or
    inspect them). The negative hidden statistics are probabilities ``p(h | v_neg)``; the
    negative visibles are the sampled states (``negative_visible="sample"``) or their means
    (``"mean"``, as in Hinton & Salakhutdinov's code).

    Ensembles: for an RBM with ``members=M`` every member has its own batch order (an
    independent permutation) and its own chains; ``lr`` may be a sequence of ``M`` rates (with
    ``optimizer="sgd"``). ``data`` is ``(n, n_visible)`` shared by all members, or ``(M, n,
    n_visible)``. Mini-batches are index slices of the device-resident ``data`` (no
    DataLoader).

    Args:
        rbm: a :class:`BernoulliRBM` or :class:`GaussianBernoulliRBM` (trained in place).
        data: ``(n, n_visible)`` or ``(M, n, n_visible)``, on the RBM's device.
        epochs: the number of passes over ``data``.
        lr: the learning rate: one rate, or ``M`` for an ensemble.
        batch_size: examples per mini-batch.
        optimizer: ``"sgd"`` (Hinton's delta form above, with ``momentum``; no options),
            another :mod:`smithing.optim` name, or a ready optimizer.
        optimizer_options: the named optimizer's options.
        schedule: a :mod:`smithing.optim` schedule name, or a callable ``epoch -> factor``
            (0-based epoch); the learning rate of epoch ``t`` is ``lr * factor(t)``.
        schedule_options: the named schedule's options.
        method: ``"cd"`` or ``"pcd"`` (the negative phase, above).
        k: Gibbs sweeps per update: one int, or one int per epoch (a sequence of ``epochs``
            ints, e.g. ``[min(25, e // 10 + 1) for e in range(250)]``, the
            ``ceil(epoch / 10)`` schedule of copies of Salakhutdinov's ``rbm.m``); the
            record of each epoch holds its ``k``.
        n_chains: persistent chains for ``"pcd"`` (default ``batch_size``).
        chains: :class:`PersistentChains` to reuse or inspect (``"pcd"``).
        negative_visible: ``"sample"`` or ``"mean"`` negative visibles (above).
        binarize_batches: ``data`` holds probabilities in [0, 1] (e.g. grey pixels), and
            each mini-batch is binarized afresh at every use, ``v0 ~ Bernoulli(data[batch])``
            with ``generator`` (as copies of Salakhutdinov's ``rbm.m`` do: ``data > rand``):
            every epoch sees a new binarization. The monitoring subsets are binarized once,
            before training. Bernoulli visibles only.
        momentum: ``optimizer="sgd"`` only: a number, ``"hinton"`` (0.5 for the first 5
            epochs, then 0.9: guide Sec. 9) or a callable ``epoch -> momentum`` (0-based).
        weight_decay: the L2 weight-cost on ``W`` (above).
        sparsity_target: the target activity of the sparsity penalty, or ``None`` (above).
        sparsity_cost: the sparsity penalty's strength (above).
        sparsity_damping: the decay of the running mean activity ``q`` (above).
        valid_data: held-out examples the per-epoch monitoring uses (below).
        monitor_size: examples of each set the monitoring uses (below).
        monitor_reconstruction: record ``recon_error`` (below). With PCD the reconstruction
            is monitoring only (the negative phase runs on the persistent chains), so
            ``False`` saves one hidden-state draw and one matrix product per batch (about a
            quarter of PCD-1's work) and changes the random stream: the runs differ from
            those with ``True``. With CD it only skips the error's sum. The record then has
            no ``recon_error``.
        generator: on ``data``'s device; drives batch order, Gibbs sampling and the
            pseudo-likelihood's flips: same seed, same result.
        callbacks: ``cb(epoch, record, rbm)`` after each epoch (1-based epoch); a truthy
            return stops training (``stop_reason="callback"``).
        progress: ``progress(epoch, record)`` after each epoch.
        device: move ``rbm``, ``data`` and ``valid_data`` there first (default: stay).
        checkpoint: a :class:`~smithing.checkpoint.Checkpointer` or a path; training continues
            from the newest valid checkpoint there and saves as its policy says (epoch ends,
            optionally mid-epoch). It holds the parameters and buffers, the optimizer state
            (momentum buffers), the persistent chains (written into ``chains`` when given), the
            sparsity running mean ``q``, the states of ``generator`` and of the global torch /
            Python / NumPy generators, the history, the epoch and the position in it (the
            permutation, the next batch, the reconstruction-error sum). A resumed run ends
            bitwise equal (on CPU) to the run uninterrupted, wall times aside.
        lr_schedule: deprecated alias of ``schedule`` (a callable); warns.
        callback: deprecated: ``callback(epoch, record)`` with a 0-based ``epoch``, as
            before; warns. Use ``callbacks``.

    Returns:
        a :class:`~smithing.history.History`: one record per epoch with ``epoch`` (1-based),
        ``lr``, ``momentum`` (``optimizer="sgd"``), ``recon_error`` (mean squared ``v -
        E[v | h ~ p(h|v)]``, averaged over the epoch's batches), ``free_energy_train`` (mean
        ``F(v)`` on the first ``monitor_size`` training examples), ``pseudo_likelihood``
        (Bernoulli visibles only; scikit-learn's ``score_samples`` estimator on that subset),
        ``free_energy_valid`` (on ``valid_data[:monitor_size]``, when given; a growing gap
        signals overfitting, guide Sec. 6) and ``seconds`` (cumulative); values are floats,
        or lists of ``M`` floats for an ensemble. ``hist["recon_error"]`` is the curve.
        ``stop_reason`` is ``"max_epochs"``, ``"callback"``, or ``"diverged"`` (with
        ``status="diverged"``) when a single RBM's parameters become non-finite.

    ``precision`` (:mod:`smithing.precision`): ``"bf16"`` runs the CD chain's conditionals
    ``p(h | v)`` and ``E[v | h]`` (their matmuls) under bfloat16 autocast and casts them back,
    so the draws, the statistics and the update stay in the RBM's dtype; ``"tf32"`` allows
    TF32 in those matmuls on CUDA (the statistics' ``v^T h`` stays fp32). ``compile``
    (:mod:`smithing.compiled`) passes those conditionals through ``torch.compile`` (the draws
    with ``generator`` stay eager). PCD's persistent chain runs :func:`gibbs_step` as before.
    None: the setting in force.
    """
    schedule = renamed("train_rbm", "lr_schedule", lr_schedule, "schedule", schedule)
    callbacks = legacy_callback("train_rbm", callback, callbacks, offset=1)
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
    k_at = _k_schedule(k, epochs)
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
    factor_at = _optim.resolve_schedule(schedule, epochs, schedule_options)
    if device is not None:
        rbm.to(device)
        data = data.to(device)
        valid_data = None if valid_data is None else valid_data.to(device)
    M = rbm.members
    batches = MemberBatches(data, rbm.n_visible, M)
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
    if binarize_batches:
        check(
            rbm.visible_type == "bernoulli",
            "binarize_batches",
            binarize_batches,
            "False for an RBM with Gaussian visibles",
        )
        check(
            bool(((data >= 0) & (data <= 1)).all()),
            "data",
            "values outside [0, 1]",
            "probabilities in [0, 1] with binarize_batches=True",
        )
    n = data.shape[-2]
    prec = current_precision(precision)
    hidden_probs_ = mixed(rbm.hidden_probs, prec, dev, dtype)  # bf16 autocast / tf32 matmul
    visible_mean_ = mixed(rbm.visible_mean, prec, dev, dtype)
    if current_compile(compile):
        hidden_probs_ = compile_step(hidden_probs_, dev)
        visible_mean_ = compile_step(visible_mean_, dev)
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
    delta = isinstance(optimizer, str) and optimizer == "sgd"  # Hinton's delta form
    if delta:
        check(
            not optimizer_options,
            "optimizer_options",
            optimizer_options,
            "None with optimizer='sgd' (Hinton's delta form: use momentum= and weight_decay=)",
        )
        opt = _optim.make("momentum", list(params.values()), 1.0, momentum=momentum_at(0))
    else:
        check(
            momentum == 0,  # a callable or "hinton" is never 0
            "momentum",
            momentum,
            "0 unless optimizer='sgd' (give the optimizer's own options in optimizer_options)",
        )
        check(lr_t.dim() == 0, "lr", lr, "one number unless optimizer='sgd'")
        lr0 = float(torch.as_tensor(lr, dtype=torch.float64))  # not rounded to the RBM's dtype
        opt = _optim.resolve(optimizer, list(params.values()), lr0, optimizer_options)
    base_lrs = [group["lr"] for group in opt.param_groups]

    def lr_for(p: Tensor) -> Tensor:  # (M, 1, ..): each member its own rate ((1, 1, ..) for one)
        return lr_t.view(-1, *([1] * (p.dim() - 1)))

    mon_train = data[..., :monitor_size, :]
    if binarize_batches:  # one fixed draw for the monitoring (before a resume restores g)
        mon_train = sample_bernoulli(mon_train, generator)
    mon_valid = None if valid_data is None else valid_data[..., :monitor_size, :].to(dtype)
    lr_given = _to_py(torch.as_tensor(lr, dtype=torch.float64))
    hist = History(config={"epochs": epochs, "lr": lr_given, "batch_size": batch_size})
    q = None  # running mean hidden activity (sparsity)
    signature = {
        "epochs": epochs,
        "batch_size": batch_size,
        "method": method,
        "k": k if isinstance(k, int) else [int(x) for x in k],
        **({"binarize_batches": True} if binarize_batches else {}),
        "n_chains": None if chains is None else list(chains.v.shape),
        "data": list(data.shape),
        "visible_type": rbm.visible_type,
        "parameters": [[name, list(v.shape)] for name, v in rbm.state_dict().items()],
        "lr": _to_py(lr_t),
        "weight_decay": weight_decay,
        **({} if monitor_reconstruction else {"monitor_reconstruction": False}),
        "sparsity": [sparsity_target, sparsity_cost, sparsity_damping],
        "negative_visible": negative_visible,
        "generator": generator is not None,
        "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
        "optimizer_options": repr(optimizer_options or {}),
    }
    run = Resumable(checkpoint, "train_rbm", signature, device=dev)
    run.module("rbm", rbm)
    run.optimizer(opt)

    def put_chains(saved: dict) -> None:  # written into the caller's chains
        if chains is not None:
            chains.v = saved["v"].to(device=dev, dtype=chains.v.dtype)
            chains.updates = saved["updates"]

    run.part(
        "chains",
        lambda: None if chains is None else {"v": chains.v, "updates": chains.updates},
        put_chains,
    )
    run.part("q", lambda: q)
    run.generator(generator)
    run.history(hist)
    state = run.resume()
    if state is not None and state["q"] is not None:
        q = state["q"].to(dev)
    resume = run.position
    for epoch in run.epochs(epochs):  # 0-based here; records 1-based
        factor = 1.0 if factor_at is None else float(factor_at(epoch))
        k_now = k_at(epoch)
        if delta:
            mom = float(momentum_at(epoch))
            for group in opt.param_groups:
                group["momentum"] = mom
        elif factor_at is not None:
            for group, base in zip(opt.param_groups, base_lrs):
                group["lr"] = base * factor
        if resume is not None:  # a mid-epoch checkpoint: the same order, from the next batch
            perm, err_sum = resume["perm"].to(dev), resume["err_sum"].to(dev)
            n_batches, begin, resume = resume["n_batches"], resume["batch"], None
        else:
            perm = batches.order(generator, dev)  # (*M, n): one order per member
            err_sum = torch.zeros(() if M is None else (M,), dtype=dtype, device=dev)
            n_batches, begin = 0, 0
        for start in range(begin, n, batch_size):
            idx = perm[..., start : start + batch_size]  # (*M, B)
            v0 = batches.take(data, idx)  # (*M, B, nv)
            with torch.no_grad():
                if binarize_batches:  # a fresh binarization at every use (rbm.m: data > rand)
                    v0 = sample_bernoulli(v0, generator)
                ph0 = hidden_probs_(v0)  # positive phase: probabilities (guide Sec. 3.2)
                if method == "cd" or monitor_reconstruction:
                    h = sample_bernoulli(ph0, generator)
                    recon = visible_mean_(h)  # (*M, B, nv) first reconstruction
                if method == "cd":
                    mean, v = recon, v0
                    for step in range(k_now):  # CD-k: k sweeps started at the data
                        if step > 0:
                            h = sample_bernoulli(hidden_probs_(v), generator)
                            mean = visible_mean_(h)
                        v = _draw_visible(rbm, mean, generator)
                else:
                    assert chains is not None  # method == "pcd": set up before the loop
                    v = chains.v  # PCD: continue the persistent chains
                    for _ in range(k_now):
                        v, mean = gibbs_step(rbm, v, generator)
                    chains.v = v
                    chains.updates += 1
                v_neg = mean if negative_visible == "mean" else v
                ph_neg = hidden_probs_(v_neg)
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
                    if delta:  # SGD(lr=1) descends -lr g: the guide's delta form
                        p.grad = -(lr_for(p) * factor) * grad[name]
                    else:  # the optimizer descends -g with its own lr: ascent on the likelihood
                        p.grad = -grad[name]
                if monitor_reconstruction:
                    err_sum += reconstruction_error(v0, recon)
                n_batches += 1
            opt.step()
            if delta and mom == 0:  # keep the guide's delta (torch's SGD keeps no buffer at
                for p in params.values():  # momentum 0), so momentum switched on later continues
                    if p.grad is not None:  # (always set above)
                        opt.state[p]["momentum_buffer"] = p.grad.detach().clone()
            if start + batch_size < n and run.due(batches=n_batches):
                pos = {"perm": perm, "batch": start + batch_size, "err_sum": err_sum}
                run.save(epoch, pos | {"n_batches": n_batches})
        with torch.no_grad():
            record: dict[str, Any] = {"epoch": epoch + 1}
            record["lr"] = _to_py(lr_t * factor) if delta else opt.param_groups[0]["lr"]
            if not isinstance(k, int):
                record["k"] = k_now
            if delta:
                record["momentum"] = mom
            if monitor_reconstruction:
                record["recon_error"] = _to_py(err_sum / max(n_batches, 1))
            record["free_energy_train"] = _to_py(rbm.free_energy(mon_train).mean(-1))
            if rbm.visible_type == "bernoulli":
                pl = pseudo_likelihood(rbm.free_energy, mon_train, generator=generator)
                record["pseudo_likelihood"] = _to_py(pl.mean(-1))
            if mon_valid is not None:
                record["free_energy_valid"] = _to_py(rbm.free_energy(mon_valid).mean(-1))
        record["seconds"] = run.seconds()
        hist.epochs.append(record)
        if M is None and not all(bool(torch.isfinite(p).all()) for p in params.values()):
            hist.status = hist.stop_reason = "diverged"
            hist.message = f"non-finite RBM parameters in epoch {epoch + 1}"
            break
        if progress is not None:
            progress(epoch + 1, record)
        if run_callbacks(callbacks, epoch + 1, record, rbm):
            hist.stop_reason = "callback"
            break
        if epoch + 1 < epochs and run.due(epoch_end=True):
            run.save(epoch + 1)
    run.save_final(epochs)
    opt.zero_grad(set_to_none=True)
    hist.best_epoch = hist.epochs_run if hist.status == "done" else None
    hist.seconds = run.seconds()
    return hist


def _k_schedule(k: int | Sequence[int], epochs: int) -> Callable[[int], int]:
    """``epoch -> k`` (0-based epoch) for one int or one int per epoch; bad values raise."""

    def ok(x: object) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= 1

    want = "an int >= 1 or a sequence of epochs ints >= 1"
    if isinstance(k, int):
        check(ok(k), "k", k, want)
        return lambda epoch: k
    check(isinstance(k, Sequence) and not isinstance(k, str), "k", k, want)
    check(all(ok(x) for x in k), "k", k, want)
    check(len(k) == epochs, "len(k)", len(k), f"epochs = {epochs} (one k per epoch)")
    ks = [int(x) for x in k]
    return lambda epoch: ks[epoch]


def _draw_visible(rbm: BernoulliRBM, mean: Tensor, generator: torch.Generator | None) -> Tensor:
    if _gaussian_visibles(rbm):
        return sample_gaussian(mean, rbm.log_var, generator)
    return sample_bernoulli(mean, generator)
