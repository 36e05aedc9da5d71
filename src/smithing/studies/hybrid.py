"""Study ``hybrid``: single-stage generative + discriminative training of classification RBMs.

**(a) Objectives** (Larochelle & Bengio, "Classification using discriminative restricted
Boltzmann machines", ICML 2008): the same classification RBM (:mod:`smithing.pretrain.hybrid`)
trained on the labeled training set with the generative objective ``log p(y, x)`` (CD-1),
the discriminative ``log p(y | x)`` (exact gradient) and the hybrid
``log p(y | x) + alpha log p(y, x)`` for each ``alpha`` of a small grid; the table reports
every ``alpha`` and marks the one with the lowest mean *validation* error (the test error of
that row is the hybrid's result). Beside them, two deep models of the same hidden sizes:

* ``deep hybrid``: a :class:`~smithing.pretrain.hybrid.DeepHybridRBM` (every layer a hybrid
  classification RBM on the layer below's label-free code, all layers trained together in ONE
  stage; prediction by the top layer, the mean of the layers' ``p(y | .)`` also recorded) in
  the spirit of Ororbia et al.'s deep hybrid Boltzmann models (arXiv 1511.06964, 2015);
* ``DBN + fine-tune``: the two-stage pipeline, greedy CD-1 pretraining of a DBN
  (:func:`smithing.pretrain.stack.pretrain_stack`) then backprop fine-tuning of the unrolled
  sigmoid MLP with a fresh softmax layer (:func:`smithing.train.fit`, momentum SGD).

Every run keeps the parameters of its epoch with the lowest validation error.

**(b) Semi-supervised curve** (Larochelle & Bengio 2008, Sec. 5; Larochelle et al., JMLR 13,
2012): ``n`` labels (a class-balanced random subset, ``n / C`` per class, drawn per seed), the
rest of the training set unlabeled. ``sup n=...`` trains the hybrid objective on the labeled
examples only; ``semi n=...`` adds ``beta log p(x)`` on the unlabeled ones (CD-1, positive-phase
label sampled from ``p(y | x)``). Both take the same number of updates (``steps_per_epoch`` one
pass over the whole training set at ``batch_size``) and select their epoch on the full
labeled validation set (as the papers select hyperparameters; with so few labels this is
optimistic for both arms alike).

Scales: quick = digits (8x8, 1197 train / 300 valid / 300 test), 100 hidden units, CD-1,
batch 50, momentum 0.9; paper = MNIST (50k / 10k / 10k), the paper's label counts 100, 600,
1000, 3000 and hidden sizes after the 2008 paper as we recall it (unverified): 6000 units for
the generative, 500 for the discriminative and 1500 for the hybrid classification RBM. The
paper scale has not been run by us (no GPU was available); its numbers are the papers'.
"""

from __future__ import annotations

import math
import time

import torch

from smithing.experiment import (
    Figure,
    Paper,
    Reproduction,
    RunResult,
    Study,
    StudyResults,
    Table,
    Variant,
    mean_std_ci,
    register,
    register_reproduction,
)
from smithing.plots import learning_curves, plt, save

ALPHAS = {"quick": (0.01, 0.1, 1.0), "paper": (0.001, 0.01, 0.1)}
LABELS = {"quick": (50, 100, 200, 500), "paper": (100, 600, 1000, 3000)}

BASE = {
    "quick": {
        "hidden": 100,
        "lr": 0.1,
        "momentum": 0.9,
        "epochs": 30,
        "batch_size": 50,
        "k": 1,
        "method": "cd",
    },
    "paper": {
        "hidden": 1500,
        "lr": 0.05,  # the recalled learning rate of the discriminative and hybrid models (U)
        "momentum": 0.9,
        "epochs": 30,
        "batch_size": 20,
        "k": 1,
        "method": "cd",
    },
}
SEMI = {"quick": {"alpha": 0.01, "beta": 1.0}, "paper": {"alpha": 0.01, "beta": 0.1}}
DEEP = {"quick": [100, 100], "paper": [500, 500]}

#: Larochelle & Bengio 2008, MNIST test error (%): unverified recollection (REFERENCES.md, U)
PAPER = {"generative": 3.39, "discriminative": 1.81, "hybrid": 1.28}

#: training options of ``smithing.pretrain.hybrid.HybridTraining`` read from a run's config
TRAIN_KEYS = ("objective", "alpha", "beta", "lr", "momentum", "epochs", "batch_size", "k")
TRAIN_KEYS += ("method", "unlabeled_positive", "weight_decay", "steps_per_epoch")


def hybrid_name(alpha: float) -> str:
    return f"hybrid a={alpha:g}"


def variants(scale: str) -> list[Variant]:
    """The study's variants; each config names its kind under ``"run"`` too (for ``run``)."""
    return [Variant(v.name, {**v.config, "run": v.kind}, v.kind) for v in _variants(scale)]


def _variants(scale: str) -> list[Variant]:
    base = BASE[scale]
    out = [
        Variant(
            "generative",
            {
                **base,
                "objective": "generative",
                **({"hidden": 6000, "lr": 0.005} if scale == "paper" else {}),
            },
            "classrbm",
        ),  # fmt: skip
        Variant(
            "discriminative",
            {
                **base,
                "objective": "discriminative",
                **({"hidden": 500} if scale == "paper" else {}),
            },
            "classrbm",
        ),  # fmt: skip
    ]
    for a in ALPHAS[scale]:
        out.append(Variant(hybrid_name(a), {**base, "objective": "hybrid", "alpha": a}, "classrbm"))
    deep = {**base, "hidden": DEEP[scale], "objective": "hybrid", "alpha": SEMI[scale]["alpha"]}
    out.append(Variant("deep hybrid", {**deep, "combine": "top"}, "deep-hybrid"))
    dbn = {
        "hidden": DEEP[scale],
        "pretrain_epochs": 20 if scale == "quick" else 50,
        "pretrain_lr": 0.05,
        "epochs": base["epochs"],
        "lr": 0.1,
        "batch_size": base["batch_size"],
    }
    out.append(Variant("DBN + fine-tune", dbn, "dbn"))
    semi = {**base, "objective": "hybrid", **SEMI[scale], "full_epoch_steps": True}
    for n in LABELS[scale]:
        out.append(Variant(f"sup n={n}", {**semi, "n_labels": n, "semi": False}, "classrbm"))
        out.append(Variant(f"semi n={n}", {**semi, "n_labels": n, "semi": True}, "classrbm"))
    return out


# ----------------------------------------------------------------------------- runs


def _data(config: dict, device: str):
    from smithing.data import load

    return load(config.get("dataset", "digits"), device)


def labeled_subset(y: torch.Tensor, n: int, n_classes: int, seed: int):
    """``n // n_classes`` random examples of each class (seeded), and the rest's indices."""
    g = torch.Generator().manual_seed(1000 + int(seed))
    yc = y.cpu()
    parts = []
    for c in range(n_classes):
        idx = (yc == c).nonzero().squeeze(1)
        parts.append(idx[torch.randperm(len(idx), generator=g)[: n // n_classes]])
    lab = torch.cat(parts)
    rest = torch.ones(len(yc), dtype=torch.bool)
    rest[lab] = False
    return lab.to(y.device), rest.nonzero().squeeze(1).to(y.device)


def _generator(seed: int, device: str) -> torch.Generator:
    return torch.Generator(torch.device(device)).manual_seed(int(seed))


def _final(log_proba_fn, data) -> dict:
    from smithing.pretrain.hybrid import chunked

    out = {}
    with torch.no_grad():
        for split in ("train", "valid", "test"):
            s = data.split(split)
            lp = chunked(log_proba_fn, s.x)  # (n, C), 512 rows at a time
            out[f"{split}_loss"] = float(-lp.gather(-1, s.y.unsqueeze(-1)).mean())
            out[f"{split}_error"] = float((lp.argmax(-1) != s.y).double().mean())
    return out


def _phase(checkpoint, name: str):
    """The run's checkpoint for one of its phases (None: no checkpoints)."""
    return None if checkpoint is None else checkpoint.sub(name)


def run_classrbm(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """One classification RBM (any objective; ``n_labels`` / ``semi`` for the curve)."""
    from smithing.pretrain.hybrid import ClassRBM, train_class_rbm

    t0 = time.perf_counter()
    data = _data(config, device)
    x, y = data.train.x, data.train.y
    g = _generator(seed, device)
    opts = {k: config[k] for k in TRAIN_KEYS if k in config}
    xu, extra = None, {}
    if config.get("n_labels"):
        lab, rest = labeled_subset(y, int(config["n_labels"]), data.n_classes, seed)
        x, y = x[lab], y[lab]
        xu = data.train.x[rest] if config.get("semi") else None
        extra = {"n_labels": len(lab), "n_unlabeled": 0 if xu is None else len(rest)}
        if config.get("full_epoch_steps"):  # the same number of updates for sup and semi
            opts["steps_per_epoch"] = math.ceil(len(data.train) / config["batch_size"])
    model = ClassRBM(data.n_inputs, int(config["hidden"]), data.n_classes, generator=g,
                     device=device)  # fmt: skip
    model.init_visible_bias_(data.train.x)
    hist = train_class_rbm(
        model, x, y, x_unlabeled=xu, valid=(data.valid.x, data.valid.y), generator=g,
        monitor_size=500, checkpoint=checkpoint, **opts,
    )  # fmt: skip
    extra.update(best_epoch=hist.best_epoch, steps_per_epoch=hist.config["steps_per_epoch"])
    return RunResult(hist.status, _final(model.log_proba, data), hist.epochs, extra,
                     hist.message, time.perf_counter() - t0)  # fmt: skip


def run_deep_hybrid(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """A deep hybrid stack trained in one stage; final metrics for ``combine`` (top/mean)."""
    from smithing.pretrain.hybrid import DeepHybridRBM, chunked, train_deep_hybrid

    t0 = time.perf_counter()
    data = _data(config, device)
    g = _generator(seed, device)
    sizes = [data.n_inputs, *[int(h) for h in config["hidden"]]]
    model = DeepHybridRBM(sizes, data.n_classes, generator=g, device=device)
    model.layers[0].init_visible_bias_(data.train.x)
    combine = config.get("combine", "top")
    opts = {k: config[k] for k in TRAIN_KEYS if k in config}
    hist = train_deep_hybrid(
        model, data.train.x, data.train.y, combine=combine,
        valid=(data.valid.x, data.valid.y), generator=g, monitor_size=500,
        checkpoint=checkpoint, **opts,
    )  # fmt: skip
    final = _final(lambda v: model.log_proba(v, combine), data)
    for how in ("top", "mean"):
        lp = _final(lambda v, how=how: model.log_proba(v, how), data)
        final[f"test_error_{how}"], final[f"valid_error_{how}"] = (
            lp["test_error"],
            lp["valid_error"],
        )
    with torch.no_grad():
        lps = chunked(lambda v: torch.stack(model.layer_log_proba(v), 1), data.test.x)
        layer_err = (lps.argmax(-1) != data.test.y.unsqueeze(-1)).double().mean(0).tolist()
    extra = {"best_epoch": hist.best_epoch, "layer_test_error": layer_err}
    return RunResult(hist.status, final, hist.epochs, extra, hist.message,
                     time.perf_counter() - t0)  # fmt: skip


def run_dbn(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """The two-stage pipeline: greedy CD-1 DBN pretraining, then backprop fine-tuning
    (:func:`smithing.pretrain.stack.pretrain_stack`, ``to_mlp``, ``finetune``); with a
    ``checkpoint``, each RBM resumes from its child ``layer<l>``, fine-tuning from
    ``finetune``."""
    from smithing.pretrain.stack import StackSpec, finetune, pretrain_stack
    from smithing.train import EarlyStopping, fit, seed_everything

    t0 = time.perf_counter()
    data = _data(config, device)
    g = _generator(seed, device)
    seed_everything(int(seed))
    sizes = [data.n_inputs, *[int(h) for h in config["hidden"]]]
    layer_opts = {"epochs": int(config["pretrain_epochs"]), "lr": float(config["pretrain_lr"]),
                  "batch_size": int(config["batch_size"]), "momentum": "hinton"}  # fmt: skip
    spec = StackSpec("dbn", sizes, layer_opts)
    stack = pretrain_stack(spec, data.train.x, generator=g, checkpoint=checkpoint)
    mlp = stack.to_mlp(data.n_classes, "sigmoid", generator=g)
    stop = EarlyStopping(monitor="valid_error", patience=10**6, restore_best_weights=True)
    hist = finetune(
        mlp, data, fit=fit, epochs=int(config["epochs"]), lr=float(config["lr"]),
        batch_size=int(config["batch_size"]), optimizer="momentum", seed=int(seed),
        early_stopping=stop, device=device, checkpoint=_phase(checkpoint, "finetune"),
    )  # fmt: skip
    extra = {
        "best_epoch": hist.best_epoch,
        "pretrain_recon_error": [h["recon_error"][-1] for h in stack.histories],
    }
    return RunResult(hist.status, hist.final, hist.epochs, extra, hist.message,
                     time.perf_counter() - t0)  # fmt: skip


RUNNERS = {"classrbm": run_classrbm, "deep-hybrid": run_deep_hybrid, "dbn": run_dbn}


def run(config: dict, seed: int, device: str = "cpu", *, checkpoint=None) -> RunResult:
    """The study's ``run``: dispatch on ``config["run"]`` (the variant's kind, see RUNNERS);
    ``checkpoint`` (the runner's) makes every kind resumable."""
    from smithing._registry import check

    kind = config.get("run")
    check(kind in RUNNERS, "config['run']", kind, f"one of {tuple(RUNNERS)}")
    return RUNNERS[kind](config, seed, device, checkpoint=checkpoint)


# ----------------------------------------------------------------------------- results


def _mean(results: StudyResults, variant: str, key: str) -> float:
    return mean_std_ci(results.finals(variant, key))[0]


def chosen_alpha(results: StudyResults) -> str | None:
    """The hybrid variant with the lowest mean validation error (ties: validation loss)."""
    hybrids = [v for v in results.variants() if v.startswith("hybrid a=")]
    scored = [
        ((_mean(results, v, "valid_error"), _mean(results, v, "valid_loss")), v)
        for v in hybrids
        if math.isfinite(_mean(results, v, "valid_error"))
    ]
    return min(scored)[1] if scored else None


def _pct(results: StudyResults, v: str, key: str = "test_error") -> tuple[str, str, int]:
    mean, std, half, n = mean_std_ci(results.finals(v, key))
    if not n:
        return "n/a", "n/a", 0
    ci = f"[{100 * (mean - half):.2f}, {100 * (mean + half):.2f}]" if n > 1 else "n/a"
    return f"{100 * mean:.2f} ± {100 * std:.2f}", ci, n


def _paper(variant: str, best: str | None) -> float | None:
    """The paper's number for a variant (the hybrid's only beside the selected alpha)."""
    if variant.startswith("hybrid a="):
        return PAPER["hybrid"] if variant == best else None
    return PAPER.get(variant)


def table(results: StudyResults) -> Table:
    best = chosen_alpha(results)
    rows = []
    for v in results.variants():
        test, ci, n = _pct(results, v)
        valid = _mean(results, v, "valid_error")
        paper = _paper(v, best)
        note = "selected on validation" if v == best else ""
        rows.append([
            v, test, ci, f"{100 * valid:.2f}" if math.isfinite(valid) else "n/a", n,
            "" if paper is None else f"{paper:.2f} (MNIST, unverified recollection)", note,
        ])  # fmt: skip
    return Table(
        ["variant", "test error (%) mean ± std", "95 % interval", "valid error (%)", "runs",
         "Larochelle & Bengio 2008 (%)", "note"],
        rows,
        "Test error of the epoch with the lowest validation error, mean ± sample std over "
        "seeds. The hybrid's alpha is the grid value with the lowest mean validation error. "
        "sup / semi n=...: n labels, supervised hybrid vs semi-supervised hybrid (+ beta log "
        "p(x) on the rest of the training set).",
    )  # fmt: skip


def _semi_points(results: StudyResults, prefix: str):
    pts = []
    for v in results.variants():
        if v.startswith(prefix + " n="):
            errs = [100 * e for e in results.finals(v, "test_error") if math.isfinite(e)]
            if errs:
                m = sum(errs) / len(errs)
                s = (sum((e - m) ** 2 for e in errs) / max(len(errs) - 1, 1)) ** 0.5
                pts.append((int(v.split("=")[1]), m, s))
    return sorted(pts)


def semi_figure(results: StudyResults, out_dir: str, name: str = "semi.png") -> str:
    p = plt()
    fig, ax = p.subplots(figsize=(5.6, 3.9))
    for prefix, label in (("sup", "supervised hybrid (labels only)"),
                          ("semi", "semi-supervised hybrid (+ unlabeled)")):  # fmt: skip
        pts = _semi_points(results, prefix)
        if pts:
            n, m, s = zip(*pts)
            ax.errorbar(n, m, yerr=s, marker="o", capsize=3, label=label)
    for v, style in (("discriminative", ":"), (chosen_alpha(results), "--")):
        if v is not None and v in results.variants():
            m = 100 * _mean(results, v, "test_error")
            ax.axhline(m, color="grey", ls=style, lw=1, label=f"{v}, all labels")
    ax.set_xscale("log")
    ns = sorted({n for prefix in ("sup", "semi") for n, _, _ in _semi_points(results, prefix)})
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_xlabel("number of labeled training examples")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("semi-supervised classification RBM: mean ± std over seeds", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, name)


def bars_figure(results: StudyResults, out_dir: str, name: str = "errors.png") -> str:
    p = plt()
    vs = [v for v in results.variants() if not v.startswith(("sup n=", "semi n="))]
    best = chosen_alpha(results)
    fig, ax = p.subplots(figsize=(1.15 * max(5, len(vs)) + 1, 3.9))
    for i, v in enumerate(vs):
        errs = [100 * e for e in results.finals(v, "test_error") if math.isfinite(e)]
        if not errs:
            continue
        m = sum(errs) / len(errs)
        color = "C1" if v == best else ("C2" if v in ("deep hybrid", "DBN + fine-tune") else "C0")
        ax.bar(i, m, color=color, alpha=0.75)
        ax.plot([i] * len(errs), errs, "k.", ms=4)
        paper = _paper(v, best)
        if paper is not None:
            ax.plot(i, paper, marker="_", color="red", ms=22, mew=2)
    ax.plot([], [], marker="_", color="red", ms=12, mew=2, ls="", label="paper, MNIST "
            "(unverified recollection)")  # fmt: skip
    ax.set_xticks(range(len(vs)), vs, rotation=20, ha="right")
    ax.set_ylabel("test error (%)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("bars: mean over seeds, dots: seeds; orange: alpha chosen on validation",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    return save(fig, out_dir, name)


def figures(results: StudyResults, out_dir: str) -> list[Figure]:
    keep = ["generative", "discriminative", chosen_alpha(results), "deep hybrid",
            "DBN + fine-tune"]  # fmt: skip
    sub = StudyResults(results.study, [r for r in results.runs if r.variant in keep])
    curves = learning_curves(
        sub, ("train_loss", "valid_error"), out_dir, "curves.png",
        "hybrid: mean over seeds, band = ±1 std", logy=(True, True),
    )  # fmt: skip
    return [
        Figure(
            bars_figure(results, out_dir),
            "Test error of every objective (dots: seeds), "
            "with Larochelle & Bengio's MNIST numbers (red, unverified recollection; a "
            "different data set at the quick scale).",
        ),  # fmt: skip
        Figure(
            semi_figure(results, out_dir),
            "Semi-supervised curve: test error vs number "
            "of labels, hybrid training on the labels only vs with the unlabeled rest of "
            "the training set (mean ± std over seeds).",
        ),  # fmt: skip
        Figure(
            curves,
            "Learning curves: training -log p(y|x) (log scale; for the DBN the "
            "fine-tuning loss) and validation error per epoch.",
        ),  # fmt: skip
    ]


REFERENCES = """
Larochelle & Bengio, "Classification using discriminative restricted Boltzmann machines", ICML 2008 — MNIST test error (%), unverified recollection (REFERENCES.md marks them U; not confirmed in the paper by us):

| model | test error (%) |
|---|---|
| ClassRBM, generative training | 3.39 |
| ClassRBM, discriminative training | 1.81 |
| ClassRBM, hybrid training | 1.28 |
| sparse hybrid ClassRBM | 1.16 |
| RBM features + neural net | 1.41 |

Paper scale, as we recall Larochelle & Bengio's Table 1 (unverified: the experiments section could not be read here): generative training with 6000 hidden units and learning rate 0.005; discriminative with 500 hidden units and learning rate 0.05; hybrid with 1500 hidden units, learning rate 0.05 and alpha chosen on validation (0.01 in their table). MNIST 50k / 10k / 10k; the epoch with the lowest validation error is kept (early stopping on validation). Departures: momentum 0.9 (the paper's use of momentum is not known to us); at most 30 epochs at batch 20; the generative gradient is CD-1; a run of only some variants (e.g. `--variants 'hybrid a=0.01'`) does not choose alpha on validation, and says so.

Semi-supervised results (MNIST with 100 / 600 / 1000 / 3000 labels) are in Larochelle, Mandel, Pascanu & Bengio, "Learning algorithms for the classification restricted Boltzmann machine", JMLR 13, 2012; we have not read the numbers from the paper, so none are quoted here.
The deep hybrid model follows Ororbia, Giles & Reitter, "Online semi-supervised learning with deep hybrid Boltzmann machines and denoising autoencoders", arXiv 1511.06964 (2015), simplified: local per-layer hybrid objectives, label-free mean codes between layers, top-layer prediction (see smithing.pretrain.hybrid).
"""  # noqa: E501

STUDY = register(
    Study(
        name="hybrid",
        description="classification RBM trained generatively, discriminatively and hybrid "
        "(alpha on validation), a one-stage deep hybrid stack vs DBN pretraining + fine-tuning, "
        "and semi-supervised training with few labels",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 2, "paper": 3},
        run=run,
        references=REFERENCES,
    )
)


__all__ = ["STUDY", "chosen_alpha", "labeled_subset", "run", "semi_figure", "variants"]

# ----------------------------------------------------------------------------- reproductions

LAROCHELLE_BENGIO = Paper(
    "Larochelle & Bengio",
    "Classification using discriminative restricted Boltzmann machines",
    "ICML",
    2008,
)
#: what every classification-RBM reproduction departs from (or cannot confirm in) the paper
_CLASSRBM_DEPARTURES = (
    "the recipe is a recollection of Larochelle & Bengio's Table 1, not confirmed in the "
    "paper (U): its experiments section could not be read",
    "momentum 0.9 throughout (the paper's use of momentum is not known)",
    "a fixed 30 epochs at batch 20, keeping the epoch with the lowest validation error (the "
    "paper's epochs, batch size and stopping rule are not known)",
    "visible biases start at logit(mean pixel) (the paper's initialization is not known)",
    "MNIST split 50k train / 10k validation / 10k test (believed to be the paper's, U)",
)
_CLASSRBM_STATUS = "hyperparameters recalled from the paper's Table 1, unverified (U)"

register_reproduction(
    Reproduction(
        name="classrbm-generative",
        paper=LAROCHELLE_BENGIO,
        result="classification RBM, generative training, MNIST test error",
        published=3.39,
        target=("<=", 4.0),
        study=STUDY.name,
        variants=("generative",),
        metric="test_error",
        seeds=1,  # a run takes more than an hour on the 2-core CPU
        cpu_time="about 2 h (estimate)",
        time_basis="75,000 CD-1 updates of a 6000-unit classification RBM, ~0.1 s each (timed "
        "on this CPU)",
        gpu_time="a few minutes (estimate)",
        departures=(
            *_CLASSRBM_DEPARTURES,
            "6000 hidden units and learning rate 0.005, as recalled (U)",
            "the generative gradient is CD-1 (the paper's k is not known)",
            "1 seed: one run takes more than an hour on the 2-core CPU",
        ),
        recipe_status=_CLASSRBM_STATUS,
    )
)
register_reproduction(
    Reproduction(
        name="classrbm-discriminative",
        paper=LAROCHELLE_BENGIO,
        result="classification RBM, discriminative training, MNIST test error",
        published=1.81,
        target=("<=", 2.0),
        study=STUDY.name,
        variants=("discriminative",),
        metric="test_error",
        seeds=3,
        cpu_time="5-10 min (estimate)",
        time_basis="75,000 updates at 2-8 ms (timed on this CPU); issue 16 measured about 1.8 % "
        "in under 2 min of one core for 25 epochs",
        gpu_time="1-2 min (estimate)",
        departures=(
            *_CLASSRBM_DEPARTURES,
            "500 hidden units and learning rate 0.05, as recalled (U)",
        ),
        recipe_status=_CLASSRBM_STATUS,
    )
)
register_reproduction(
    Reproduction(
        name="classrbm-hybrid",
        paper=LAROCHELLE_BENGIO,
        result="classification RBM, hybrid training (alpha chosen on validation), MNIST test error",
        published=1.28,
        target=("<=", 1.5),
        study=STUDY.name,
        variants=("hybrid a=*",),
        metric="test_error",
        select_on=("valid_error", "valid_loss"),
        seeds=3,
        cpu_time="about 1 h (estimate)",
        time_basis="3 alphas x 75,000 updates of a 1500-unit classification RBM, ~16 ms each "
        "(timed on this CPU)",
        gpu_time="about 5 min (estimate)",
        departures=(
            *_CLASSRBM_DEPARTURES,
            "1500 hidden units and learning rate 0.05, as recalled (U); the generative part "
            "of the gradient is CD-1",
            "alpha from the grid " + ", ".join(f"{a:g}" for a in ALPHAS["paper"]) + ", chosen "
            "per seed on the validation error (ties: validation loss); the paper's grid is not "
            "known (its chosen alpha recalled as 0.01, U). The study's own table chooses one "
            "alpha for all seeds by the mean validation error",
        ),
        recipe_status=_CLASSRBM_STATUS,
    )
)
