"""The ``hybrid`` study: a smoke run into tmp_path, the labeled subsets, the alpha selection."""

from __future__ import annotations

import pytest
import torch

from smithing.experiment.store import Store
from smithing.studies import hybrid as S
from studytools import run_study


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny matmuls gain nothing from threads, and oversubscribed cores stall them badly."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_smoke_run_writes_store_figures_and_table(tmp_path):
    tiny = {"epochs": 2, "pretrain_epochs": 1, "batch_size": 100}
    summary = run_study("hybrid", seeds=1, out=str(tmp_path), quiet=True, overrides=tiny)
    names = [v.name for v in S.variants("quick")]
    assert list(summary["variants"]) == names
    assert all(v["done"] == 1 for v in summary["variants"].values()), summary
    with Store(tmp_path) as store:
        res = store.results("hybrid")
    for r in res.runs:
        assert len(r.epochs) == 2 and "valid_error" in r.epochs[0], r.variant
        assert 0 <= r.final["test_error"] <= 1
        if r.variant.startswith(("sup n=", "semi n=")):
            n = int(r.variant.split("=")[1])
            assert r.extra["n_labels"] == n
            assert (r.extra["n_unlabeled"] > 0) == r.variant.startswith("semi")
            assert r.extra["steps_per_epoch"] == 12  # ceil(1197 / 100) for both arms
    deep = res.of("deep hybrid")[0]
    assert {"test_error_top", "test_error_mean"} <= set(deep.final)
    assert len(deep.extra["layer_test_error"]) == 2
    report = tmp_path / "report"
    for name in ("errors.png", "semi.png", "curves.png"):
        assert (report / "hybrid" / name).stat().st_size > 1000, name
    page = (report / "hybrid.html").read_text()
    assert "selected on validation" in page and "1.28" in page and "class='err'" not in page


def test_labeled_subset_is_balanced_disjoint_and_seeded():
    y = torch.arange(10).repeat(30)  # 300 labels, 30 per class
    lab, rest = S.labeled_subset(y, 50, 10, seed=3)
    assert len(lab) == 50 and len(rest) == 250
    assert torch.bincount(y[lab], minlength=10).tolist() == [5] * 10
    assert set(lab.tolist()).isdisjoint(rest.tolist())
    assert torch.equal(lab, S.labeled_subset(y, 50, 10, seed=3)[0])
    assert not torch.equal(lab, S.labeled_subset(y, 50, 10, seed=4)[0])


def test_run_dispatch_rejects_unknown_kind():
    with pytest.raises(ValueError, match=r"config\['run'\].*classrbm"):
        S.run({"run": "svm"}, seed=0)
    kinds = {v.kind for v in S.variants("paper")}
    assert kinds == set(S.RUNNERS)
    assert [v for v in S.variants("paper") if v.name.startswith("semi")][0].config[
        "n_labels"
    ] == 100
