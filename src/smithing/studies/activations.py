"""Study ``activations``: sigmoid vs tanh vs relu vs softsign on the same MLP.

The same architecture, initialization rule, optimizer and data order for each activation,
several seeds each: learning curves (mean and spread) and the final test error with its 95 %
interval. Sigmoid units (derivative at most 1/4, outputs not centred) learn slowest; tanh and
softsign (centred, derivative up to 1) and relu (derivative 1 where active) faster — the
observation behind Glorot & Bengio (2010) and Nair & Hinton (2010).
"""

from __future__ import annotations

from smithing.experiment import Figure, Study, Variant, error_table, register
from smithing.plots import final_box, learning_curves

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softsign")


def variants(scale: str) -> list[Variant]:
    if scale == "quick":
        base = {
            "hidden": [100],
            "optimizer": "momentum",
            "lr": 0.05,
            "epochs": 30,
            "batch_size": 32,
        }
    else:
        base = {
            "hidden": [500, 500],
            "optimizer": "momentum",
            "lr": 0.05,
            "epochs": 30,
            "batch_size": 100,
        }
    return [Variant(a, {**base, "activation": a}) for a in ACTIVATIONS]


def figures(results, out_dir: str) -> list[Figure]:
    return [
        Figure(
            learning_curves(
                results,
                ("train_loss", "valid_error"),
                out_dir,
                "curves.png",
                "activations: mean over seeds, band = ±1 std",
            ),
            "Training loss (log scale) and validation error per epoch, mean ± std over seeds.",
        ),
        Figure(
            final_box(results, "test_error", out_dir, "final.png"),
            "Final test error per seed (box: quartiles; triangle: mean).",
        ),
    ]


def table(results):
    return error_table(
        results,
        "test_error",
        "Final test error (%): mean ± sample std over seeds; 95 % Student-t interval of the mean.",
    )


STUDY = register(
    Study(
        name="activations",
        description="sigmoid vs tanh vs relu vs softsign on the same MLP: learning curves and "
        "final error",
        variants=variants,
        figures=figures,
        table=table,
        seeds={"quick": 5, "paper": 5},
    )
)
