"""smithing.sklearn vs scikit-learn, same data and settings, measured in the same run.

1. ``smithing.sklearn.MLPClassifier`` vs ``sklearn.neural_network.MLPClassifier`` on MNIST,
   784-500-10 ReLU, Adam (lr 1e-3, PyTorch's and scikit-learn's default betas and epsilon), the
   same batch size and the same number of epochs (no early stop: ``tol=0`` and
   ``n_iter_no_change`` above the epoch count; no L2 on either side: scikit-learn's
   ``alpha=0``). Both train in float32 on the 50,000 training images and are scored on the
   10,000 test images. Our initialization is ``--init`` (default ``glorot_uniform``, the rule
   scikit-learn uses for ReLU weights; scikit-learn also draws its biases from it, ours start at
   0; ``--init torch`` keeps ``nn.Linear``'s default). Scikit-learn keeps its own loss
   bookkeeping per epoch; ours evaluates one row as its validation split per epoch
   (negligible). Seeds are interleaved (ours, scikit-learn, ours, ...); each estimator first
   fits 2,000 images for one epoch, untimed (first-call set-up: thread pools, allocator).
2. ``smithing.sklearn.RBM`` vs ``sklearn.neural_network.BernoulliRBM`` on binarized MNIST (the
   first ``--rbm-train`` training images): both PCD-1 with ``batch_size`` chains, plain SGD,
   the same learning rate, components and epochs. Seconds per epoch (ours includes
   ``train_rbm``'s per-epoch monitoring), and each trained model scored by the same estimators:
   scikit-learn's one-flip pseudo-log-likelihood (``BernoulliRBM.score_samples`` on float64
   copies of each model's weights, the same flips for both) on the test images, and the AIS
   test log-probability (:func:`smithing.pretrain.ais_log_z` on each model's weights,
   ``--ais-betas`` uniform inverse temperatures, 100 runs; indicative at few betas).

    cd benchmarks && SMITHING_DATA_DIR=../../shared/data python bench_sklearn.py --threads 1 \
        --seeds 3
    python bench_sklearn.py --epochs 2 --rbm-train 2000 --rbm-epochs 1   # a quick look
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from common import machine
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from smithing.data import load
from smithing.pretrain import BernoulliRBM, ais_log_z, average_log_prob
from smithing.sklearn import RBM, MLPClassifier


def mlp_race(args) -> None:
    from sklearn.neural_network import MLPClassifier as SkMLP

    data = load("mnist")
    Xtr, ytr = data.train.x.numpy(), data.train.y.numpy()
    Xte, yte = data.test.x.numpy(), data.test.y.numpy()
    E, B = args.epochs, args.batch_size
    ours = MLPClassifier(
        (500,),
        init=None if args.init == "torch" else args.init,
        optimizer="adam",
        learning_rate_init=1e-3,
        batch_size=B,
        max_iter=E,
        tol=0.0,
        n_iter_no_change=E + 1,
        random_state=0,
        device="cpu",
    )
    theirs = SkMLP(
        (500,),
        solver="adam",
        learning_rate_init=1e-3,
        alpha=0.0,
        batch_size=B,
        max_iter=E,
        tol=0.0,
        n_iter_no_change=E + 1,
        random_state=0,
    )
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "sklearn": []}
    for seed in range(args.seeds):  # interleaved: a change of machine load hits both alike
        for key, est in (("ours", ours), ("sklearn", theirs)):
            est = clone(est).set_params(random_state=seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                if seed == 0:  # warm-up, untimed
                    clone(est).set_params(max_iter=1).fit(Xtr[:2000], ytr[:2000])
                t0 = time.perf_counter()
                est.fit(Xtr, ytr)
                seconds = time.perf_counter() - t0
            assert est.n_iter_ == E, (key, est.n_iter_)
            runs[key].append((seconds / E, est.score(Xte, yte)))
    print(
        f"\nMNIST 784-500-10 relu, Adam lr 1e-3, batch {B}, {E} epochs, float32, "
        f"{args.seeds} seed(s), our init {args.init}"
    )
    print(f"{'estimator':32s} {'s/epoch (median)':>16s} {'test accuracy':>16s}")
    names = {"ours": "smithing.sklearn.MLPClassifier", "sklearn": "sklearn MLPClassifier"}
    for key, rows in runs.items():
        spe, acc = np.median([r[0] for r in rows]), 100 * np.array([r[1] for r in rows])
        print(f"{names[key]:32s} {spe:16.2f} {acc.mean():10.2f} +- {acc.std():.2f} %")
    ratio = np.median([r[0] for r in runs["sklearn"]]) / np.median([r[0] for r in runs["ours"]])
    print(f"time ratio (scikit-learn / ours): {ratio:.2f}x")
    ours_acc, sk_acc = (100 * np.array([r[1] for r in runs[k]]) for k in ("ours", "sklearn"))
    print("per seed (ours, scikit-learn): " + ", ".join(
        f"{a:.2f}/{b:.2f}" for a, b in zip(ours_acc, sk_acc)
    ))  # fmt: skip
    if len(ours_acc) > 1:  # Welch's standard error of the difference of the means
        se = np.sqrt(ours_acc.var(ddof=1) / len(ours_acc) + sk_acc.var(ddof=1) / len(sk_acc))
        diff = ours_acc.mean() - sk_acc.mean()
        print(f"accuracy difference (ours - scikit-learn): {diff:+.3f} points, SE {se:.3f}")


def _sk_pseudo_likelihood(components, c, b, X, seed: int) -> float:
    """scikit-learn's ``score_samples`` on float64 copies of a model's parameters."""
    from sklearn.neural_network import BernoulliRBM as SkRBM

    ref = SkRBM(n_components=components.shape[0], random_state=seed)
    ref.components_ = components.astype(np.float64)
    ref.intercept_hidden_ = c.astype(np.float64)
    ref.intercept_visible_ = b.astype(np.float64)
    ref.n_features_in_ = components.shape[1]
    return float(ref.score_samples(X.astype(np.float64)).mean())


def _ais_log_prob(components, c, b, Xtr, Xte, betas: int) -> float:
    """Mean AIS ``log p(v)`` of ``Xte`` under a model with these parameters (float64, 100 runs,
    ``betas`` uniform inverse temperatures, base-rate model of ``Xtr``)."""
    rbm = BernoulliRBM(components.shape[1], components.shape[0], dtype=torch.float64)
    with torch.no_grad():
        rbm.W.copy_(torch.from_numpy(components.T.astype(np.float64)))
        rbm.c.copy_(torch.from_numpy(c.astype(np.float64)))
        rbm.b.copy_(torch.from_numpy(b.astype(np.float64)))
    g = torch.Generator().manual_seed(0)
    log_z = ais_log_z(rbm, data=torch.from_numpy(Xtr), betas=betas, generator=g)
    return float(average_log_prob(rbm, torch.from_numpy(Xte), log_z))


def rbm_race(args) -> None:
    from sklearn.neural_network import BernoulliRBM as SkRBM

    data = load("mnist-binarized")
    Xtr = data.train.x[: args.rbm_train].numpy()  # float32, both keep float32
    Xte = data.test.x.numpy()
    kw = {
        "n_components": args.rbm_components,
        "learning_rate": args.rbm_lr,
        "batch_size": args.rbm_batch_size,
        "n_iter": args.rbm_epochs,
        "random_state": 0,
    }
    rows = []
    for name, est in (("smithing.sklearn.RBM", RBM(**kw, device="cpu")),
                      ("sklearn BernoulliRBM", SkRBM(**kw))):  # fmt: skip
        clone(est).set_params(n_iter=1).fit(Xtr[:500])  # warm-up, untimed
        t0 = time.perf_counter()
        est.fit(Xtr)
        seconds = time.perf_counter() - t0
        params = (est.components_, est.intercept_hidden_, est.intercept_visible_)
        pl = _sk_pseudo_likelihood(*params, Xte, seed=0)
        ais = _ais_log_prob(*params, Xtr, Xte, args.ais_betas) if args.ais_betas else np.nan
        rows.append((name, seconds / args.rbm_epochs, pl, ais))
    print(
        f"\nbinarized MNIST, {args.rbm_train} training images, 784-{args.rbm_components} PCD-1, "
        f"lr {args.rbm_lr}, batch {args.rbm_batch_size}, {args.rbm_epochs} epochs, float32"
    )
    print(f"{'estimator':24s} {'s/epoch':>8s} {'PL (test)':>10s} {'AIS log p (test)':>17s}")
    for name, spe, pl, ais in rows:
        print(f"{name:24s} {spe:8.2f} {pl:10.2f} {ais:17.2f}")
    print(f"time per epoch ratio (scikit-learn / ours): {rows[1][1] / rows[0][1]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--rbm-train", type=int, default=10000)
    ap.add_argument("--rbm-components", type=int, default=500)
    ap.add_argument("--rbm-lr", type=float, default=0.05)
    ap.add_argument("--rbm-batch-size", type=int, default=100)
    ap.add_argument("--rbm-epochs", type=int, default=3)
    ap.add_argument("--ais-betas", type=int, default=1000, help="0 skips the AIS column")
    ap.add_argument("--seeds", type=int, default=1, help="MLP seeds (RBM: seed 0)")
    ap.add_argument(
        "--init",
        default="glorot_uniform",
        help="our MLP's initializer (smithing.init name; 'torch': nn.Linear's default)",
    )
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--skip-rbm", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(args.threads)  # scikit-learn's BLAS too
        except ImportError:  # pragma: no cover
            pass
    print(f"machine: {machine(torch.device('cpu'))}")
    if not args.skip_mlp:
        mlp_race(args)
    if not args.skip_rbm:
        rbm_race(args)


if __name__ == "__main__":
    main()
