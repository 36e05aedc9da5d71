"""End to end: a study with a custom run kind (``rbm``), interrupted through the runner after a
checkpoint, then run again, stores exactly the results of a run never interrupted."""

from __future__ import annotations

import pytest
import torch

import smithing.studies  # noqa: F401  (registers the studies)
from smithing.checkpoint import Checkpointer
from smithing.experiment.store import Store
from smithing.runner import run_study

TINY = {
    "n_hidden": 8,
    "epochs": 3,
    "n_train": 300,
    "monitor_size": 200,
    "ais_betas": 200,
    "ais_runs": 20,
    "n_samples": 3,
    "sample_steps": [1, 5],
}
KW = dict(seeds=1, quiet=True, overrides=TINY, variants=["cd-1", "pcd-1"], checkpoint_interval=0)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Killed(BaseException):
    """Not an Exception: the runner does not turn it into a failed run (like Ctrl-C)."""


def _stored(out):
    with Store(out) as store:
        res = store.results("rbm")
    out = {}
    for r in res.runs:
        epochs = [{k: v for k, v in e.items() if k != "seconds"} for e in r.epochs]
        out[(r.variant, r.seed)] = (r.status, r.final, r.extra, epochs)
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    run_study("rbm", out=str(out), **KW)
    return _stored(out)


# 3 epochs at interval 0: saves after epochs 1 and 2, then the final one (save 3): killed after
# save 2 the first run resumes mid-training; after save 3 it only redoes AIS and the samples
@pytest.mark.parametrize("kill_after", [2, 3])
def test_interrupted_study_resumes_to_the_same_results(
    tmp_path, monkeypatch, uninterrupted, kill_after
):
    save, load = Checkpointer.save, Checkpointer.load
    saves, loaded = [], []

    def dying_save(self, state):
        dt = save(self, state)
        saves.append(self.path)
        if len(saves) == kill_after:
            raise Killed
        return dt

    def spying_load(self):
        state = load(self)
        if state is not None:
            loaded.append((self.path.name, state["epoch"], state["finished"]))
        return state

    monkeypatch.setattr(Checkpointer, "save", dying_save)
    with pytest.raises(Killed):
        run_study("rbm", out=str(tmp_path), **KW)
    files = sorted(p.name for p in (tmp_path / "checkpoints" / "rbm").iterdir())
    assert files and all(name.startswith("group-") for name in files)
    with Store(tmp_path) as store:
        assert "done" not in store.counts("rbm")

    monkeypatch.setattr(Checkpointer, "save", save)
    monkeypatch.setattr(Checkpointer, "load", spying_load)
    run_study("rbm", out=str(tmp_path), **KW)
    assert len(loaded) == 1
    _, epoch, finished = loaded[0]
    assert (epoch, finished) == ((2, False) if kill_after == 2 else (3, True))
    assert _stored(tmp_path) == uninterrupted
    assert list((tmp_path / "checkpoints" / "rbm").iterdir()) == []  # removed once recorded
