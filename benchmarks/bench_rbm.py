"""RBM training: ``smithing.pretrain.rbm.train_rbm`` vs scikit-learn's ``BernoulliRBM`` vs a
naive PyTorch loop, same data and settings, parity and speed measured in the same run.

scikit-learn's ``BernoulliRBM.fit`` is stochastic maximum likelihood, i.e. PCD-1 (Tieleman
2008): ``batch_size`` persistent chains (stored as hidden samples ``h_samples_``), positive and
negative hidden statistics as probabilities, sampled negative visibles, plain SGD with
``learning_rate`` times the batch-mean gradient, ``W ~ N(0, 0.01^2)`` and zero biases. So the
comparison is with our ``method="pcd", k=1, n_chains=batch_size, momentum=0`` and no data-based
visible-bias init. Remaining differences: scikit-learn visits the mini-batches in the same
order every epoch (no shuffling) and starts its chains from ``h = 0``; ``train_rbm`` draws a new
permutation per epoch, starts the chains at uniform random visibles and also monitors the
reconstruction error, a pseudo-likelihood and free energies after every epoch (included in its
time); the ``sklearn+shuffle`` row applies scikit-learn's own update (``partial_fit``) to the
mini-batches of a new permutation every epoch, to isolate the effect of the batch order. The
naive loop is what a PyTorch tutorial writes: a ``DataLoader`` over a
``TensorDataset``, and ``loss = mean F(v_data) - mean F(v_model)`` through autograd with
``torch.optim.SGD`` (its gradient is the same PCD-1 estimator).

Parity: every trained model is scored with the same estimators on the same binary data (at
most ``--eval-size`` examples): the full pseudo-log-likelihood ``sum_i log p(v_i | v_-i)`` of
training examples (deterministic), scikit-learn's one-flip ``score_samples`` estimate of it,
and the AIS test log-probability (``--ais-betas`` uniform betas, 100 runs). Data: the embedded
8x8 digits, binarized stochastically once (seed 0), or ``--dataset mnist-binarized``. Defaults
are scikit-learn's RBM example (100 components, learning rate 0.06, batch 10, 10 iterations).

    python benchmarks/bench_rbm.py [--seeds 3] [--n-components 100] [--epochs 10] [--threads 1]
    python benchmarks/bench_rbm.py --dataset mnist-binarized --n-components 500 \
        --batch-size 100 --epochs 1 --seeds 1 --n-train 10000

``--speed-only`` times ``train_rbm`` alone on ``--device`` (e.g. cuda) with ``--method``
(``cd`` for the GPU table's CD-1), ``--precision`` and ``--compile``, and skips the other
implementations and the scoring (random binary MNIST-shaped data when the files are absent):

    python benchmarks/bench_rbm.py --speed-only --device cuda --dataset mnist --method cd \
        --n-components 500 --batch-size 100 --epochs 1 --lr 0.05
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from common import machine
from torch.utils.data import DataLoader, TensorDataset

from smithing.precision import PRECISIONS
from smithing.pretrain.ais import ais_log_z, average_log_prob
from smithing.pretrain.rbm import BernoulliRBM, free_energy, train_rbm
from smithing.studies.rbm import binary_splits


def speed_only(args) -> None:
    """ms per epoch of train_rbm on args.device: one warm-up epoch, then args.seeds timed."""
    from common import sync

    device = torch.device(args.device)
    try:
        x = binary_splits(args.dataset, device, n_train=args.n_train)[0]["train"]
        name = args.dataset
    except Exception as err:  # noqa: BLE001 - no files on this machine: time the shapes
        print(f"NOTE: {args.dataset} unavailable ({type(err).__name__}); random binary data")
        g = torch.Generator().manual_seed(0)
        x = torch.bernoulli(torch.full((args.n_train or 60000, 784), 0.13), generator=g)
        x, name = x.to(device), "random-binary"

    def once(epochs, seed):
        g = torch.Generator(device=device).manual_seed(seed)
        rbm = BernoulliRBM(x.shape[1], args.n_components, generator=g, device=device)
        sync(device)
        t0 = time.perf_counter()
        train_rbm(
            rbm,
            x,
            epochs=epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            method=args.method,
            k=1,
            momentum=0.0,
            generator=g,
            precision=args.precision,
            compile=args.compile,
        )
        sync(device)
        return (time.perf_counter() - t0) / epochs

    once(1, 0)  # warm-up: kernel set-up, compilation
    times = sorted(once(args.epochs, s) for s in range(args.seeds))
    print(f"machine: {machine(device)}")
    print(
        f"RBM {x.shape[1]}-{args.n_components} on {name} ({x.shape[0]} examples), "
        f"{args.method.upper()}-1, batch {args.batch_size}, precision {args.precision}"
        + (", compiled" if args.compile else "")
    )
    print(
        f"train_rbm: {1e3 * times[len(times) // 2]:.1f} ms/epoch (median of {args.seeds}; "
        "includes the per-epoch monitoring)"
    )


@torch.no_grad()
def full_pseudo_likelihood(rbm: BernoulliRBM, v: torch.Tensor) -> float:
    """Mean over examples of ``sum_i log p(v_i | v_-i) = sum_i log sigmoid(F(v~_i) - F(v))``
    (``v~_i``: ``v`` with bit ``i`` flipped), float64. Flipping bit ``i`` by ``d = 1 - 2 v_i``
    moves the hidden inputs ``x = c + v W`` by ``d W[i]``, so
    ``F(v~_i) - F(v) = -d b_i - sum_j [softplus(x_j + d W_ij) - softplus(x_j)]``."""
    W, b, c = (t.detach().double() for t in (rbm.W, rbm.b, rbm.c))
    v = v.double()
    x = v @ W + c  # (n, n_hidden)
    sp = torch.nn.functional.softplus(x).sum(-1)  # (n,)
    total = torch.zeros(v.shape[0], dtype=torch.float64)
    for i in range(v.shape[1]):
        d = 1 - 2 * v[:, i]  # (n,)
        sp_flip = torch.nn.functional.softplus(x + d[:, None] * W[i]).sum(-1)
        total += torch.nn.functional.logsigmoid(-d * b[i] - (sp_flip - sp))
    return float(total.mean())


def sklearn_pl(rbm: BernoulliRBM, v: torch.Tensor, seed: int) -> float:
    """scikit-learn's ``score_samples`` (one random flip per example) on our parameters."""
    from sklearn.neural_network import BernoulliRBM as SkRBM

    sk = SkRBM(n_components=rbm.n_hidden, random_state=seed)
    sk.components_ = rbm.W.detach().T.double().numpy()
    sk.intercept_hidden_ = rbm.c.detach().double().numpy()
    sk.intercept_visible_ = rbm.b.detach().double().numpy()
    sk.n_features_in_ = rbm.n_visible
    return float(sk.score_samples(v.double().numpy()).mean())


def from_sklearn(sk) -> BernoulliRBM:
    rbm = BernoulliRBM(sk.components_.shape[1], sk.components_.shape[0])
    with torch.no_grad():
        rbm.W.copy_(torch.from_numpy(sk.components_.T.astype(np.float32)))
        rbm.b.copy_(torch.from_numpy(sk.intercept_visible_.astype(np.float32)))
        rbm.c.copy_(torch.from_numpy(sk.intercept_hidden_.astype(np.float32)))
    return rbm


def train_ours(x, args, seed):
    g = torch.Generator().manual_seed(seed)
    rbm = BernoulliRBM(x.shape[1], args.n_components, init_std=0.01, generator=g)
    t0 = time.perf_counter()
    train_rbm(
        rbm,
        x,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        method="pcd",
        k=1,
        n_chains=args.batch_size,
        momentum=0.0,
        generator=g,
    )
    return rbm, time.perf_counter() - t0


def train_sklearn(x, args, seed):
    from sklearn.neural_network import BernoulliRBM as SkRBM

    sk = SkRBM(
        n_components=args.n_components,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        n_iter=args.epochs,
        random_state=seed,
    )
    xn = x.numpy()  # float32: scikit-learn keeps float32 inputs in float32
    t0 = time.perf_counter()
    sk.fit(xn)
    return from_sklearn(sk), time.perf_counter() - t0


def train_sklearn_shuffled(x, args, seed):
    """scikit-learn's update with a new batch order every epoch: ``partial_fit`` on each
    mini-batch of a permutation (float64, and input validation on every call: a parity row,
    not a speed row)."""
    from sklearn.neural_network import BernoulliRBM as SkRBM

    sk = SkRBM(n_components=args.n_components, learning_rate=args.lr, batch_size=args.batch_size)
    sk.random_state = seed
    rng = np.random.RandomState(seed)
    xn = x.numpy()
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = rng.permutation(len(xn))
        for i in range(0, len(xn), args.batch_size):
            sk.partial_fit(xn[perm[i : i + args.batch_size]])
    return from_sklearn(sk), time.perf_counter() - t0


def train_naive(x, args, seed):
    """The tutorial loop: DataLoader + autograd on the free-energy difference + torch.optim."""
    torch.manual_seed(seed)
    nv, nh = x.shape[1], args.n_components
    W = torch.nn.Parameter(torch.randn(nv, nh) * 0.01)
    b = torch.nn.Parameter(torch.zeros(nv))
    c = torch.nn.Parameter(torch.zeros(nh))
    opt = torch.optim.SGD([W, b, c], lr=args.lr)
    loader = DataLoader(TensorDataset(x), batch_size=args.batch_size, shuffle=True)
    chains = torch.bernoulli(torch.full((args.batch_size, nv), 0.5))
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        for (v0,) in loader:
            with torch.no_grad():  # one Gibbs sweep of the persistent chains
                h = torch.bernoulli(torch.sigmoid(chains @ W + c))
                chains = torch.bernoulli(torch.sigmoid(h @ W.T + b))
            loss = free_energy(v0, W, b, c).mean() - free_energy(chains, W, b, c).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    rbm = BernoulliRBM(nv, nh)
    with torch.no_grad():
        rbm.W.copy_(W)
        rbm.b.copy_(b)
        rbm.c.copy_(c)
    return rbm, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--n-components", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.06)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n-train", type=int, default=None, help="first n training examples")
    ap.add_argument("--eval-size", type=int, default=2000, help="examples scored by PL / AIS")
    ap.add_argument("--ais-betas", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--speed-only", action="store_true", help="time train_rbm alone")
    ap.add_argument("--device", default="cpu", help="with --speed-only")
    ap.add_argument("--method", choices=["cd", "pcd"], default="cd", help="with --speed-only")
    ap.add_argument("--precision", choices=PRECISIONS.names(), default="fp32")
    ap.add_argument("--compile", action="store_true", help="train_rbm's compiled conditionals")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.speed_only:
        speed_only(args)
        return
    splits, _ = binary_splits(args.dataset, "cpu", n_train=args.n_train)
    x = splits["train"]
    x_eval, x_test = x[: args.eval_size], splits["test"][: args.eval_size]
    impls = {
        "smithing": train_ours,
        "scikit-learn": train_sklearn,
        "sklearn+shuffle": train_sklearn_shuffled,
        "naive torch": train_naive,
    }
    rows = {name: {"t": [], "pl": [], "skpl": [], "ll": []} for name in impls}
    warm = argparse.Namespace(**{**vars(args), "epochs": 1})
    for fn in impls.values():  # untimed: lazy imports (torch.optim pulls in dynamo), caches
        fn(x, warm, 0)
    for seed in range(args.seeds):
        for name, fn in impls.items():
            rbm, seconds = fn(x, args, seed)
            r = rows[name]
            r["t"].append(seconds / args.epochs)
            r["pl"].append(full_pseudo_likelihood(rbm, x_eval))
            r["skpl"].append(sklearn_pl(rbm, x_eval, seed))
            g = torch.Generator().manual_seed(seed)
            ais = ais_log_z(rbm, data=x, n_runs=100, betas=args.ais_betas, generator=g)
            r["ll"].append(float(average_log_prob(rbm, x_test, ais)))

    def pm(xs, f="{:.2f}"):
        s = statistics.stdev(xs) if len(xs) > 1 else 0.0
        return f"{f.format(statistics.mean(xs))} ± {f.format(s)}"

    print(
        f"RBM {x.shape[1]}-{args.n_components} on {args.dataset} ({x.shape[0]} binary training "
        f"examples), PCD-1, lr {args.lr}, batch {args.batch_size}, {args.epochs} epochs, "
        f"{args.seeds} seeds (after one untimed warm-up epoch each)"
    )
    print(f"machine: {machine(torch.device('cpu'))}")
    ours = statistics.median(rows["smithing"]["t"])
    head = (
        f"{'implementation':<15} {'ms/epoch':>9} {'time / ours':>11} {'full PL (train)':>17} "
        f"{'sklearn PL':>16} {'AIS test log p':>16}"
    )
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        t = statistics.median(r["t"])
        print(
            f"{name:<15} {1e3 * t:>9.1f} {t / ours:>11.2f} {pm(r['pl']):>17} "
            f"{pm(r['skpl']):>16} {pm(r['ll']):>16}"
        )
    print(
        "ms/epoch: median over seeds of training time / epochs (smithing includes its per-epoch "
        "monitoring; sklearn+shuffle is partial_fit per batch, float64, not a speed row); PL and "
        "log p: mean ± std over seeds, nats per example."
    )


if __name__ == "__main__":
    main()
