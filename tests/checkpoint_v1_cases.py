"""Small runs of every resumable trainer, shared by the checkpoint-format test
(``tests/train/test_checkpoint_v1_files.py``) and the script that records the format.

``tests/fixtures/checkpoint_v1_format.json`` is, per case, the structure of the checkpoint the
case's run left when it was killed in the middle of an epoch: every key, every tensor's dtype
and shape, every other value's type. It was recorded from the files the code before
:class:`smithing.checkpoint.Resumable` wrote (commits 957e1cf and, for ``fit_sequence``,
819efc5), so a checkpoint the current code writes must have the same structure. Re-record it
only when the format is meant to change::

    PYTHONPATH=<checkout>/src python tests/checkpoint_v1_cases.py

Every case is ``run(checkpoint=None) -> {name: tensor}`` (the trained parameters and the
history's numbers), deterministic on one thread.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

FORMAT = Path(__file__).parent / "fixtures" / "checkpoint_v1_format.json"


def _history(h, prefix="") -> dict[str, torch.Tensor]:
    out = {}
    for key in sorted({k for r in h.epochs for k in r if k != "seconds"}):
        values = [r.get(key, float("nan")) for r in h.epochs]
        out[f"{prefix}history.{key}"] = torch.tensor(values, dtype=torch.float64)
    return out


def _params(module, prefix="") -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.detach().clone() for k, v in module.state_dict().items()}


def _data():
    from smithing.data.base import Dataset, Split

    g = torch.Generator().manual_seed(0)

    def split(n):
        x = torch.rand(n, 8, generator=g)
        return Split(x, (x[:, :3].sum(1) * 1.2).long().clamp(max=3))

    return Dataset("random", split(60), split(20), split(20), n_classes=4)


def fit_case(checkpoint=None):
    from smithing.nn import MLP
    from smithing.train import EarlyStopping, fit, seed_everything

    seed_everything(1)
    model = MLP(8, [6], 4, "tanh", dropout=0.2)
    h = fit(
        model, _data(), epochs=4, lr=0.1, batch_size=16, optimizer="momentum",
        schedule="cosine", seed=2, early_stopping=EarlyStopping(monitor="valid_loss", patience=5),
        checkpoint=checkpoint,
    )  # fmt: skip
    return {**_params(model), **_history(h)}


def fit_ensemble_case(checkpoint=None):
    from smithing.nn import MLP
    from smithing.train import EarlyStopping, seed_everything
    from smithing.train.ensemble import fit_ensemble

    models = []
    for s in (0, 1):
        seed_everything(s)
        models.append(MLP(8, [6], 4, "tanh", dropout=0.2))
    hists = fit_ensemble(
        models, _data(), seeds=[0, 1], lrs=[0.05, 0.2], epochs=4, batch_size=16,
        optimizer="adam", early_stopping=lambda: EarlyStopping(patience=5), checkpoint=checkpoint,
    )  # fmt: skip
    out: dict[str, torch.Tensor] = {}
    for m, (model, h) in enumerate(zip(models, hists)):
        out |= _params(model, f"{m}.") | _history(h, f"{m}.")
    return out


def autoencoder_case(checkpoint=None):
    from smithing.pretrain.autoencoder import DenoisingAutoencoder, train_autoencoder

    g = torch.Generator().manual_seed(3)
    x = torch.rand(40, 8, generator=g).round()
    dae = DenoisingAutoencoder(8, 5, generator=g)
    h = train_autoencoder(
        dae, x, epochs=4, lr=0.1, batch_size=8, optimizer="momentum",
        optimizer_options={"momentum": 0.5}, rate=0.25, valid_data=x[:10], generator=g,
        checkpoint=checkpoint,
    )  # fmt: skip
    return {**_params(dae), **_history(h)}


def rbm_case(checkpoint=None):
    from smithing.pretrain.rbm import BernoulliRBM, train_rbm

    g = torch.Generator().manual_seed(4)
    x = torch.rand(40, 8, generator=g).round()
    rbm = BernoulliRBM(8, 5, generator=g)
    h = train_rbm(
        rbm, x, epochs=4, lr=0.05, batch_size=8, method="pcd", k=2, momentum="hinton",
        sparsity_target=0.1, sparsity_cost=0.01, monitor_size=20, generator=g,
        checkpoint=checkpoint,
    )  # fmt: skip
    return {**_params(rbm), **_history(h)}


def _labeled(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(3, (n,), generator=g)
    x = (
        torch.nn.functional.one_hot(y, 3).double().repeat(1, 2)
        - 0.1 * torch.rand(n, 6, generator=g)
    ).abs()
    return x, y


def class_rbm_case(checkpoint=None):
    from smithing.pretrain.hybrid import ClassRBM, train_class_rbm

    x, y = _labeled(30, 5)
    xu, _ = _labeled(20, 6)
    g = torch.Generator().manual_seed(7)
    model = ClassRBM(6, 5, 3, generator=g, dtype=torch.float64)
    h = train_class_rbm(
        model, x, y, x_unlabeled=xu, valid=_labeled(12, 8), objective="hybrid", alpha=0.1,
        epochs=4, batch_size=8, lr=0.1, momentum=0.5, method="pcd", n_chains=5, generator=g,
        checkpoint=checkpoint,
    )  # fmt: skip
    return {**_params(model), **_history(h)}


def deep_hybrid_case(checkpoint=None):
    from smithing.pretrain.hybrid import DeepHybridRBM, train_deep_hybrid

    x, y = _labeled(30, 9)
    g = torch.Generator().manual_seed(10)
    torch.manual_seed(11)
    model = DeepHybridRBM([6, 5, 4], 3, dtype=torch.float64)
    h = train_deep_hybrid(
        model, x, y, combine="mean", valid=(x, y), epochs=4, batch_size=8, lr=[0.2, 0.1],
        generator=g, checkpoint=checkpoint,
    )  # fmt: skip
    return {**_params(model), **_history(h)}


def sequence_case(checkpoint=None):
    from smithing.data import load
    from smithing.nn.rnn import readout_from_config
    from smithing.train import fit_sequence

    data = load("adding", "cpu", T=6, n_train=40, n_valid=0, n_test=16, seed=0)
    model = readout_from_config({"hidden": 5, "activation": "relu", "init": "identity"}, 2, 1,
                                "regression", seed=3)  # fmt: skip
    h = fit_sequence(
        model, data, steps=12, lr=1e-2, batch_size=8, eval_every=4, seed=4, clip_norm=1.0,
        checkpoint=checkpoint,
    )  # fmt: skip
    return {**_params(model), **_history(h)}


CASES = {
    "fit": fit_case,
    "fit_ensemble": fit_ensemble_case,
    "train_autoencoder": autoencoder_case,
    "train_rbm": rbm_case,
    "train_class_rbm": class_rbm_case,
    "train_deep_hybrid": deep_hybrid_case,
    "fit_sequence": sequence_case,  # written by commit 819efc5 (before it shared Resumable)
}
#: the save after which each case's run was killed (a mid-epoch one of epoch 2 or 3)
KILL_AFTER = {name: 7 for name in CASES}


class Killed(Exception):
    """Raised by :func:`killed_checkpoint`'s checkpointer after its last save."""


def killed_checkpoint(name: str, path: Path) -> Path:
    """Run case ``name``, killed after its ``KILL_AFTER``-th save (every batch saves); the
    checkpoint it left is ``path``."""
    from smithing.checkpoint import Checkpointer

    class KillAfter(Checkpointer):
        def __init__(self, path, n):
            super().__init__(path, min_interval_s=0, every_batches=1, keep_previous=False)
            self.n = n

        def save(self, state):
            dt = super().save(state)
            if self.saves == self.n:
                raise Killed
            return dt

    try:
        CASES[name](checkpoint=KillAfter(path, KILL_AFTER[name]))
    except Killed:
        return path
    raise RuntimeError(f"{name}: the run ended before its kill")


def describe(value):
    """The structure of a checkpoint's value: keys, tensors' dtype and shape, other types."""
    if isinstance(value, torch.Tensor):
        return f"tensor {str(value.dtype).removeprefix('torch.')} {list(value.shape)}"
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    return type(value).__name__


def record(path: Path = FORMAT) -> None:
    """Write every case's checkpoint structure to ``path`` (``tests/fixtures``'s JSON)."""
    from smithing.checkpoint import read_checkpoint

    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            state = read_checkpoint(killed_checkpoint(name, Path(tmp) / f"{name}.safetensors"))
            out[name] = describe(state)
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    record()
