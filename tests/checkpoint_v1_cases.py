"""Small runs of every resumable trainer, shared by the old-checkpoint test
(``tests/train/test_checkpoint_v1_files.py``) and the script that wrote its files.

``tests/fixtures/checkpoints_v1/<case>.safetensors`` is the checkpoint each case's run left when it
was killed in the middle of an epoch, written by the code of commit 957e1cf (before the
trainers shared :class:`smithing.checkpoint.Resumable`) under torch 2.13 on CPU. Rewrite them
(only when the format is meant to change) from a checkout of the old code::

    PYTHONPATH=<old checkout>/src python tests/checkpoint_v1_cases.py \
        tests/fixtures/checkpoints_v1 [CASE ...]

Every case is ``run(checkpoint=None) -> {name: tensor}`` (the trained parameters and the
history's numbers), deterministic on one thread.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

FOLDER = Path(__file__).parent / "fixtures" / "checkpoints_v1"
TORCH = "2.13"  # the torch the files were written with (its generators' streams)


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


def write(folder: Path, names: list[str] | None = None) -> None:
    """Run every case (or those ``names``), killed after its ``KILL_AFTER``-th save (every
    batch saves), and keep the checkpoint it left as ``<folder>/<case>.safetensors``."""
    from smithing.checkpoint import Checkpointer

    class Killed(Exception):
        pass

    class KillAfter(Checkpointer):
        def __init__(self, path, n):
            super().__init__(path, min_interval_s=0, every_batches=1, keep_previous=False)
            self.n = n

        def save(self, state):
            dt = super().save(state)
            if self.saves == self.n:
                raise Killed
            return dt

    folder.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for name, case in CASES.items():
        if names and name not in names:
            continue
        scratch = folder / f"{name}.tmp.safetensors"
        try:
            case(checkpoint=KillAfter(scratch, KILL_AFTER[name]))
        except Killed:
            pass
        else:
            raise RuntimeError(f"{name}: the run ended before its kill")
        shutil.move(scratch, folder / f"{name}.safetensors")


if __name__ == "__main__":
    write(Path(sys.argv[1]), sys.argv[2:])
