"""Dropout as model averaging: all ``2^n`` thinned networks of a small net enumerated against the
weight-scaled network (computed when the figures are drawn, on digits)."""

from __future__ import annotations

import torch

__all__ = [
    "AVERAGING",
    "averaging_data",
    "averaging_figure",
]

#: the model-averaging figure's networks (hidden units under dropout, training epochs); the
#: figure reads this module's value (set ``smithing.studies.regularization.averaging.AVERAGING``
#: to change it)
AVERAGING = {"n_units": 12, "epochs": 60}


def _train_small(model, data, epochs: int, seed: int):
    from smithing.train import fit

    fit(
        model,
        data,
        epochs=epochs,
        lr=0.05,
        batch_size=32,
        optimizer="momentum",
        optimizer_options={"momentum": 0.9},
        seed=seed,
    )
    return model.eval()


def averaging_data(n_units: int = 12, epochs: int = 60, seed: int = 0) -> dict:
    """Dropout as model averaging on digits, by brute force over all ``2^n_units`` masks.

    Two networks trained with dropout 0.5 on ``n_units`` hidden units:

    * ``softmax``: 64-n-10, the dropped units feed the softmax layer directly; the normalized
      geometric mean of the ``2^n`` thinned networks equals the weight-scaled network exactly
      (Srivastava et al. 2014, Sec. 7.5 / Hinton et al. 2012);
    * ``hidden``: 64-n-32-10, a ReLU layer follows the dropped units; the equality is only
      approximate and the gap is measured.

    Returns the probabilities of the test set under the weight-scaled network, the geometric
    and arithmetic means, and the test errors of 1000 random thinned networks.
    """
    from torch import nn

    from smithing.data import load
    from smithing.nn import MLP
    from smithing.nn.dropout import enumerate_subnetworks, mc_predict
    from smithing.train import seed_everything

    data = load("digits")
    x, y = data.test.x, data.test.y
    out = {}
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        nets = {
            "softmax": MLP(64, [n_units], 10, dropout=0.5),
            "hidden": nn.Sequential(
                nn.Linear(64, n_units),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(n_units, 32),
                nn.ReLU(),
                nn.Linear(32, 10),
            ),
        }
        for name, net in nets.items():
            _train_small(net, data, epochs, seed)
            avg = enumerate_subnetworks(net, x)
            probs = mc_predict(
                net, x, 1000, generator=torch.Generator().manual_seed(seed), return_samples=True
            )  # (1000, batch, classes)
            errs = (probs.argmax(-1) != y).double().mean(1)  # (1000,)

            def err(p):
                return float((p.argmax(-1) != y).double().mean())

            out[name] = {
                "weight_scaled": avg.weight_scaled,
                "geometric": avg.geometric_mean,
                "arithmetic": avg.arithmetic_mean,
                "gap": avg.gap,
                "arithmetic_gap": avg.arithmetic_gap,
                "n_subnetworks": avg.n_subnetworks,
                "n_units": avg.n_units,
                "errors": {
                    "weight_scaled": err(avg.weight_scaled),
                    "geometric": err(avg.geometric_mean),
                    "arithmetic": err(avg.arithmetic_mean),
                },
                "single_errors": errs.numpy(),
            }
    return out


def averaging_figure(out_dir: str) -> tuple[str, str]:
    from smithing.plots import plt, save

    res = averaging_data(**AVERAGING)
    p = plt()
    fig, axes = p.subplots(1, 3, figsize=(14, 4.3))
    titles = {
        "softmax": "dropped units feed the softmax",
        "hidden": "a ReLU layer follows the dropped units",
    }
    for ax, name in zip(axes[:2], ("softmax", "hidden")):
        r = res[name]
        ws = r["weight_scaled"].double().clamp_min(1e-12).log10().reshape(-1).numpy()
        ge = r["geometric"].double().clamp_min(1e-12).log10().reshape(-1).numpy()
        ar = r["arithmetic"].double().clamp_min(1e-12).log10().reshape(-1).numpy()
        ax.scatter(ws, ar, s=4, alpha=0.35, color="tab:orange", label="arithmetic mean")
        ax.scatter(ws, ge, s=4, alpha=0.6, color="tab:blue", label="normalized geometric mean")
        lo = min(ws.min(), ge.min(), ar.min())
        ax.plot([lo, 0], [lo, 0], color="k", lw=0.8)
        ax.set_xlabel("log10 p, weight-scaled network (p clipped at 1e-12)")
        ax.set_ylabel(f"log10 p, average over all {r['n_subnetworks']} thinned nets")
        ax.set_title(
            f"{titles[name]}\nmax |geometric − weight-scaled| = {r['gap']:.1e}", fontsize=9.5
        )
        ax.legend(fontsize=8, markerscale=3, loc="upper left")
        ax.grid(alpha=0.3)
    ax = axes[2]
    for name, color in (("softmax", "tab:green"), ("hidden", "tab:purple")):
        r = res[name]
        ax.hist(
            100 * r["single_errors"],
            bins=30,
            alpha=0.45,
            color=color,
            label=f"{name}: one random thinned net",
        )
        for key, style in (("weight_scaled", "-"), ("geometric", ":")):
            ax.axvline(100 * r["errors"][key], color=color, ls=style, lw=1.6)
    ax.plot([], [], "k-", label="weight-scaled net")
    ax.plot([], [], "k:", label="geometric mean of all")
    ax.set_xlabel("test error (%)")
    ax.set_ylabel("thinned networks (of 1000 drawn)")
    ax.set_title("each thinned network vs their average", fontsize=9.5)
    ax.legend(fontsize=7.5)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    s, h = res["softmax"], res["hidden"]
    se, he = s["errors"], h["errors"]
    caption = (
        f"Dropout as model averaging (digits, dropout 0.5 on {s['n_units']} hidden units; all "
        f"{s['n_subnetworks']} thinned networks enumerated for each of the "
        f"{len(s['weight_scaled'])} test digits; every class probability is one point). Left: "
        "the dropped units feed the softmax directly, and the normalized geometric mean of the "
        "thinned networks equals the weight-scaled network (max difference "
        f"{s['gap']:.1e}: rounding). Middle: a ReLU layer follows the dropped units and the "
        f"equality is only an approximation (max difference {h['gap']:.2f}; test error "
        f"{100 * he['weight_scaled']:.1f} % weight-scaled vs {100 * he['geometric']:.1f} % "
        "geometric mean). The arithmetic mean (orange) is a different average. Right: the test "
        "errors of 1000 random single thinned networks against the weight-scaled networks "
        f"({100 * se['weight_scaled']:.1f} % and {100 * he['weight_scaled']:.1f} %)."
    )
    return save(fig, out_dir, "averaging.png"), caption
