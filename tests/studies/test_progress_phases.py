"""Custom-run studies report every epoch of every phase to the runner's progress writer, so
``smithing status`` shows e.g. ``layer1 23/50`` for a long reproduction instead of ``-``."""

from __future__ import annotations

import pytest
import torch

from smithing.experiment.study import STUDIES


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _variant(study: str, name: str | None = None) -> dict:
    variants = list(STUDIES.get(study).variants("quick"))
    v = variants[0] if name is None else next(v for v in variants if v.name == name)
    return dict(v.config)


def test_the_dbn_study_reports_each_layer_then_the_fine_tuning():
    from smithing.studies.dbn.measure import run

    cfg = {**_variant("dbn"), "pretrain_epochs": 2, "epochs": 2}
    calls: list = []
    run(cfg, 0, "cpu", progress=lambda e, n, phase: calls.append((phase, e, n)))
    assert calls == [
        ("layer0", 1, 2), ("layer0", 2, 2), ("layer1", 1, 2), ("layer1", 2, 2),
        ("finetune", 1, 2), ("finetune", 2, 2),
    ]  # fmt: skip


def test_the_rbm_and_classification_rbm_studies_report_their_training_epochs():
    from smithing.studies.hybrid.measure import run as run_hybrid
    from smithing.studies.rbm.measure import run as run_rbm

    calls: list = []
    run_rbm({**_variant("rbm"), "epochs": 2}, 0, "cpu", progress=lambda *a: calls.append(a))
    assert calls == [(1, 2, "train"), (2, 2, "train")]
    calls.clear()
    cfg = {**_variant("hybrid", "discriminative"), "epochs": 2}
    run_hybrid(cfg, 0, "cpu", progress=lambda *a: calls.append(a))
    assert calls == [(1, 2, "train"), (2, 2, "train")]
