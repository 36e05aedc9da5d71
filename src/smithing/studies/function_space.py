"""Study ``function-space``: trajectories of networks with and without pretraining in function
space, embedded in 2-D by t-SNE (Erhan et al. 2010, Fig. 5).

Erhan, Bengio, Courville, Manzagol, Vincent & Bengio, "Why does unsupervised pre-training help
deep learning?", JMLR 11, 2010, Sec. 6.3: a network *is* its function; represent it by the
concatenation of its outputs on a fixed set of test inputs, record that vector as supervised
training proceeds, and embed every recorded vector of 50 networks with and 50 without
pretraining together with t-SNE (van der Maaten & Hinton, JMLR 9, 2008). The two families
start, travel and end in different regions: pretraining puts the networks in a different basin
of attraction, and the random-init networks scatter more (each ends in its own local minimum).

Runs (kind ``"family"``): one run trains ``n_nets`` same-shape networks of one family as one
batched ensemble (``fit_ensemble``; member ``i`` of seed ``s`` has seed ``s * 1000 + i``) and
records, before training and after every epoch, each member's softmax outputs on the first
``n_probe`` test inputs. Family ``pretrained``: one ensemble of ``n_nets`` independent stacked
denoising autoencoders (:func:`~smithing.pretrain.stack.pretrain_stack` of an ``"sda"``
:class:`~smithing.pretrain.stack.StackSpec` with ``members``) unrolled member by member with
``Stack.to_mlp``; family ``random init``: PyTorch's default
``U(+-1/sqrt(fan_in))``. The vectors are stored as float16 (a fixed Gaussian random projection
to ``project_dim`` dimensions first at paper scale: t-SNE only needs distances, which such a
projection keeps up to a few percent, Johnson & Lindenstrauss).

The figure embeds all vectors of all stored runs (PCA to 50 dimensions, then
``sklearn.manifold.TSNE`` with ``random_state=0``), coloured by epoch with the 'jet' colormap
(dark blue -> cyan -> red), one marker per family. The table also gives the 5-nearest-neighbour
family purity of the final functions in the original output space (1 = the families are
separated).

Quick scale: ``digits``, 10 + 10 networks 64-100-100-10 sigmoid, 200 probe inputs, fine-tuning
SGD lr 0.3, batch 32, 25 epochs. Paper scale: MNIST, 50 + 50 networks 784-1000-1000-10 (two
hidden layers, as the paper's figure; U), 1,000 probe inputs projected to 500 dimensions, 50
epochs.
"""

from __future__ import annotations

import base64
import math
import time

import numpy as np
import torch

from smithing._optional import require
from smithing.checkpoint import phase
from smithing.experiment import Figure, RunResult, Study, Table, Variant, register

FAMILIES = {"pretrained": "sda", "random init": "none"}
MARKERS = {"pretrained": "o", "random init": "^"}

SETUP = {
    "quick": {
        "n_nets": 10,
        "hidden": [100, 100],
        "n_probe": 200,
        "project_dim": None,
        "pretrain_options": {"epochs": 5, "lr": 0.1, "batch_size": 20, "rate": 0.2},
        "lr": 0.3,
        "batch_size": 32,
        "epochs": 25,
    },
    "paper": {
        "n_nets": 50,
        "hidden": [1000, 1000],
        "n_probe": 1000,
        "project_dim": 500,
        "pretrain_options": {"epochs": 10, "lr": 0.01, "batch_size": 10, "rate": 0.2},
        "lr": 0.05,
        "batch_size": 10,
        "epochs": 50,
    },
}


def variants(scale: str) -> list[Variant]:
    base = {**SETUP[scale], "activation": "sigmoid"}
    return [
        Variant(name, {**base, "pretraining": method}, kind="family")
        for name, method in FAMILIES.items()
    ]


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(a.astype(np.float16).tobytes()).decode("ascii")


def _decode(s: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=np.float16).reshape(shape).astype(np.float32)


def _build_models(config: dict, data, seed: int, device: str, checkpoint=None) -> list:
    from smithing.nn import MLP
    from smithing.pretrain.stack import StackSpec, pretrain_stack
    from smithing.train import seed_everything

    n, sizes = int(config["n_nets"]), [data.n_inputs, *config["hidden"]]
    seeds = [seed * 1000 + i for i in range(n)]
    method = config.get("pretraining", "none")
    if method == "none":
        models = []
        for s in seeds:
            with torch.random.fork_rng(devices=[]):
                seed_everything(s)
                models.append(MLP(sizes[0], sizes[1:], data.n_outputs, config["activation"]))
        return [m.to(device) for m in models]
    x = data.train.x.reshape(len(data.train), -1)
    g = torch.Generator(device=x.device).manual_seed(seed)
    spec = StackSpec(
        method,
        sizes,
        config.get("pretrain_options"),
        activation=config["activation"],
        members=n,
    )
    stack = pretrain_stack(spec, x, generator=g, checkpoint=checkpoint)
    return [
        stack.to_mlp(data.n_outputs, member=i, generator=torch.Generator().manual_seed(s)).to(
            device
        )
        for i, s in enumerate(seeds)
    ]


def run(config: dict, seed: int, device: str, *_, checkpoint=None) -> RunResult:
    """One family of networks: pretrain (or not), fine-tune as one ensemble, record each
    network's function on the probe inputs after every epoch.

    ``checkpoint`` (the runner's): each pretrained layer resumes from its child ``layer<l>``,
    the fine-tuning from ``finetune``, which also carries the trajectory recorded so far
    (``Checkpointer.carry``: a resumed ensemble does not replay its earlier epochs)."""
    from torch.func import functional_call

    from smithing.data import load
    from smithing.pretrain.stack import finetune
    from smithing.train.ensemble import MemberHooks, fit_ensemble

    t0 = time.perf_counter()
    data = load(config["dataset"], device=device).subset(config.get("n_train"))
    probe = data.test.x[: int(config["n_probe"])]
    models = _build_models(config, data, seed, device, checkpoint)
    n = len(models)
    proj = None
    if config.get("project_dim"):
        d = probe.shape[0] * data.n_outputs
        gp = torch.Generator().manual_seed(2010)  # one projection for every run
        proj = torch.randn((d, int(config["project_dim"])), generator=gp) / math.sqrt(
            int(config["project_dim"])
        )
        proj = proj.to(device)

    def functions(outs: torch.Tensor) -> np.ndarray:
        f = torch.softmax(outs, -1).reshape(n, -1)  # (nets, n_probe * classes)
        if proj is not None:
            f = f @ proj  # (nets, project_dim)
        return f.float().cpu().numpy()

    with torch.no_grad():
        traj = [functions(torch.stack([m.eval()(probe) for m in models]))]
    state: dict = {}

    def capture(params, lrs):  # after each step: keep a handle on the stacked parameters
        state["params"] = params

    def on_epoch(epoch, recs):
        with torch.no_grad():
            p = state["params"]
            outs = torch.stack(
                [
                    functional_call(models[0], {k: v[m] for k, v in p.items()}, (probe,))
                    for m in range(n)
                ]
            )
        traj.append(functions(outs))

    def restore(saved) -> None:  # the epochs a resumed ensemble does not replay
        traj[:] = list(saved)

    ft_checkpoint = phase(checkpoint, "finetune")
    if ft_checkpoint is not None:
        ft_checkpoint.carry("trajectory", lambda: list(traj), restore)
    hists = finetune(
        models,
        data,
        fit=fit_ensemble,
        seeds=[seed * 1000 + i for i in range(n)],
        lrs=[float(config["lr"])] * n,
        epochs=int(config["epochs"]),
        batch_size=int(config["batch_size"]),
        regularizer=MemberHooks(after_step=capture),
        progress=on_epoch,
        device=device,
        checkpoint=ft_checkpoint,
    )
    arr = np.stack(traj)  # (epochs + 1, nets, dims)
    test_err = [h.final["test_error"] for h in hists]
    epochs = []
    for e in range(min(len(h.epochs) for h in hists)):
        epochs.append(
            {
                "epoch": e + 1,
                "train_loss": float(np.mean([h.epochs[e]["train_loss"] for h in hists])),
                "valid_error": float(np.mean([h.epochs[e]["valid_error"] for h in hists])),
            }
        )
    finite = [v for v in test_err if math.isfinite(v)]
    final = {
        "test_error": float(np.mean(finite)) if finite else math.nan,
        "test_error_std": float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0,
        "train_error": float(np.mean([h.final["train_error"] for h in hists])),
    }
    extra = {
        "shape": list(arr.shape),
        "functions": _encode(arr),
        "test_errors": test_err,
        "diverged": sum(h.status != "done" for h in hists),
    }
    return RunResult("done", final, epochs, extra, "", time.perf_counter() - t0)


def _trajectories(results):
    """``[(family, run, array (epochs + 1, nets, dims))]`` of the finished runs."""
    out = []
    for v in results.variants():
        for r in results.of(v):
            if r.status == "done" and "functions" in r.extra:
                out.append((v, r, _decode(r.extra["functions"], r.extra["shape"])))
    return out


def embed(points: np.ndarray, random_state: int = 0) -> np.ndarray:
    """2-D t-SNE of ``points (n, d)``: PCA to at most 50 dimensions, then scikit-learn's TSNE."""
    TSNE = require("sklearn.manifold", "the function-space study's t-SNE").TSNE

    x = points - points.mean(0)
    k = min(50, x.shape[1], x.shape[0])
    if x.shape[1] > k:  # PCA scores from the eigenvectors of the smaller Gram matrix
        if x.shape[0] <= x.shape[1]:
            w, v = np.linalg.eigh(x @ x.T)  # (n, n): x x^T = U S^2 U^T
            top = np.argsort(w)[::-1][:k]
            x = v[:, top] * np.sqrt(np.clip(w[top], 0, None))  # U S
        else:
            w, v = np.linalg.eigh(x.T @ x)  # (d, d): x^T x = V S^2 V^T
            x = x @ v[:, np.argsort(w)[::-1][:k]]  # X V = U S
    perplexity = min(30.0, max(2.0, (x.shape[0] - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=random_state)
    return tsne.fit_transform(x)


def _figure(results, out_dir: str) -> str | None:
    from smithing.plots import plt, save

    trajs = _trajectories(results)
    if not trajs:
        return None
    points, fams, epochs, nets = [], [], [], []
    for k, (fam, _, arr) in enumerate(trajs):
        E, N, _ = arr.shape
        points.append(arr.reshape(E * N, -1))
        fams += [fam] * (E * N)
        epochs += [e for e in range(E) for _ in range(N)]
        nets += [(k, i) for _ in range(E) for i in range(N)]
    dims = min(p.shape[1] for p in points)
    y = embed(np.concatenate([p[:, :dims] for p in points]).astype(np.float64))
    fams, epochs = np.array(fams), np.array(epochs)
    p = plt()
    fig, ax = p.subplots(figsize=(7.2, 6.0))
    for key in sorted(set(nets)):  # faint lines: each network's path
        idx = [i for i, nk in enumerate(nets) if nk == key]
        ax.plot(y[idx, 0], y[idx, 1], color="grey", lw=0.4, alpha=0.18, zorder=1)
    sc = None
    for fam in dict.fromkeys(fams):
        m = fams == fam
        sc = ax.scatter(
            y[m, 0],
            y[m, 1],
            c=epochs[m],
            cmap="jet",
            vmin=0,
            vmax=epochs.max(),
            marker=MARKERS.get(fam, "s"),
            s=16,
            alpha=0.85,
            edgecolors="none",
            zorder=2,
        )
        ax.scatter([], [], c="grey", marker=MARKERS.get(fam, "s"), label=fam)
    fig.colorbar(sc, ax=ax, label="epoch (0 = initialization)")
    ax.set_title("networks in function space (t-SNE of outputs on fixed test inputs)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend()
    fig.tight_layout()
    return save(fig, out_dir, "tsne.png")


def figures(results, out_dir: str) -> list[Figure]:
    from smithing.plots import learning_curves

    out = []
    path = _figure(results, out_dir)
    if path:
        out.append(
            Figure(
                path,
                "t-SNE of every recorded function (softmax outputs on the fixed probe inputs) of "
                "every network, coloured by training epoch (dark blue: initialization, red: "
                "end); circles: pretrained (SdA), triangles: random init; grey lines join one "
                "network's path. Erhan et al. 2010, Fig. 5.",
            )
        )
    out.append(
        Figure(
            learning_curves(
                results,
                ("train_loss", "valid_error"),
                out_dir,
                "curves.png",
                "mean over the networks of each family",
            ),
            "Training loss and validation error per epoch, mean over each family's networks.",
        )
    )
    return out


def family_purity(trajs, k: int = 5) -> dict[str, float]:
    """Fraction of each family's final functions whose ``k`` nearest neighbours (Euclidean,
    original output space, all families pooled) belong to the same family."""
    finals, fams = [], []
    for fam, _, arr in trajs:
        finals.append(arr[-1])
        fams += [fam] * arr.shape[1]
    if not finals:
        return {}
    dims = min(f.shape[1] for f in finals)
    x = np.concatenate([f[:, :dims] for f in finals]).astype(np.float64)
    fams = np.array(fams)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    k = min(k, len(x) - 1)
    nn_idx = np.argsort(d, 1)[:, :k]
    same = (fams[nn_idx] == fams[:, None]).mean(1)
    return {f: float(same[fams == f].mean()) for f in dict.fromkeys(fams)}


def table(results) -> Table:
    trajs = _trajectories(results)
    purity = family_purity(trajs)
    rows = []
    for v in results.variants():
        errs = [e for r in results.of(v) if r.status == "done" for e in r.extra["test_errors"]]
        errs = [e for e in errs if math.isfinite(e)]
        m = 100 * float(np.mean(errs)) if errs else math.nan
        s = 100 * float(np.std(errs, ddof=1)) if len(errs) > 1 else 0.0
        rows.append([v, len(errs), f"{m:.2f} ± {s:.2f}", f"{purity.get(v, math.nan):.2f}"])
    return Table(
        ["family", "networks", "test error (%)", "5-NN family purity (final functions)"],
        rows,
        "Test error of the networks (mean ± std over networks) and how separated the "
        "families' final functions are (fraction of 5 nearest neighbours of the same family).",
    )


REFERENCES = """
**Erhan et al. 2010 (JMLR 11), Sec. 6.3, Fig. 5 and 6** (U: qualitative): 50 networks with and
50 without (SDAE) pretraining on MNIST; each network's function is the vector of its outputs on
a fixed set of test examples, recorded as supervised training proceeds; t-SNE (Fig. 5) and
ISOMAP (Fig. 6) of all of them. The two families never overlap: they start apart and move
into different regions; the random-init networks spread out more and end in many different
places ("each trajectory moves into a different apparent local minimum").
"""

STUDY = register(
    Study(
        name="function-space",
        description="Erhan et al. 2010 Fig. 5: t-SNE of network functions during training, "
        "with vs without pretraining",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 1, "paper": 1},
        extra_keys=("n_train",),
        run=run,
        references=REFERENCES,
    )
)
